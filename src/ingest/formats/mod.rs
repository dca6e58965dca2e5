//! Report formats: the [`ReportFormat`] names, the [`FormatParser`] trait every format
//! implements (one file each), and content detection.
//!
//! Adding a format is adding a file with a [`FormatParser`] and one variant in [`ReportFormat`]
//! (its name and its parser in [`ReportFormat::parser`]).

use std::fmt;
use std::io::{self, Read};
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::error::{IngestError, SinkError};
use super::finding::{NormalizedFinding, ReportMeta};

pub(crate) mod common;
pub mod cyclonedx;
pub mod detect;
pub mod detect_secrets;
pub mod native;
pub mod sarif;
pub mod trivy;

pub use detect::{head_keys, HeadKeys, HeadValue};

/// Opens the report from its beginning, once per pass (the object store's raw report).
pub type OpenFn<'a> = dyn FnMut() -> io::Result<Box<dyn Read + Send>> + 'a;

/// Receives each finding; an error stops the parse and is returned as [`IngestError::Sink`].
pub type SinkFn<'a> = dyn FnMut(NormalizedFinding) -> Result<(), SinkError> + 'a;

/// A report format Rampart reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// The native Rampart scan report (`docs/report-formats.md`).
    Native,
    /// SARIF 2.1.0.
    Sarif,
    /// CycloneDX 1.4–1.6 JSON with `vulnerabilities`.
    CycloneDx,
    /// Trivy JSON (schema 2).
    Trivy,
    /// detect-secrets JSON (`detect-secrets scan`, and its baselines).
    #[serde(rename = "detect_secrets")]
    DetectSecrets,
}

impl ReportFormat {
    /// Every format, in detection order.
    pub const ALL: [ReportFormat; 5] = [
        ReportFormat::Native,
        ReportFormat::CycloneDx,
        ReportFormat::Trivy,
        ReportFormat::DetectSecrets,
        ReportFormat::Sarif,
    ];

    /// The lowercase name used in APIs (`?format=`): `native`, `sarif`, `cyclonedx`, `trivy`,
    /// `detect_secrets`.
    pub fn as_str(self) -> &'static str {
        match self {
            ReportFormat::Native => "native",
            ReportFormat::Sarif => "sarif",
            ReportFormat::CycloneDx => "cyclonedx",
            ReportFormat::Trivy => "trivy",
            ReportFormat::DetectSecrets => "detect_secrets",
        }
    }

    /// Parses a format name, case-insensitively; also accepts `rampart` for native.
    pub fn parse_name(name: &str) -> Option<ReportFormat> {
        let name = name.trim();
        if name.eq_ignore_ascii_case("rampart") {
            return Some(ReportFormat::Native);
        }
        ReportFormat::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(name))
    }

    /// Human name used in messages (`SARIF`, `CycloneDX`, `Trivy report`, `Rampart report`).
    pub fn display_name(self) -> &'static str {
        match self {
            ReportFormat::Native => "Rampart report",
            ReportFormat::Sarif => "SARIF",
            ReportFormat::CycloneDx => "CycloneDX",
            ReportFormat::Trivy => "Trivy report",
            ReportFormat::DetectSecrets => "detect-secrets report",
        }
    }

    /// The format's parser.
    pub fn parser(self) -> &'static dyn FormatParser {
        match self {
            ReportFormat::Native => &native::NativeParser,
            ReportFormat::Sarif => &sarif::SarifParser,
            ReportFormat::CycloneDx => &cyclonedx::CycloneDxParser,
            ReportFormat::Trivy => &trivy::TrivyParser,
            ReportFormat::DetectSecrets => &detect_secrets::DetectSecretsParser,
        }
    }
}

impl fmt::Display for ReportFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`ReportFormat::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown report format `{0}` (expected native, sarif, cyclonedx, trivy or detect_secrets)")]
pub struct UnknownFormat(pub String);

impl FromStr for ReportFormat {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ReportFormat::parse_name(s).ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

/// One report format: recognizes it, reads its metadata, and streams its findings.
///
/// Parsers are synchronous over [`Read`] (the pipeline runs them in `spawn_blocking` over a
/// stream bridged from the object store) and stream: arrays of results are deserialized element
/// by element, never collected; unknown fields are skipped.
pub trait FormatParser: Sync {
    /// The format this parser reads.
    fn format(&self) -> ReportFormat;

    /// Whether the top-level keys at the head of a JSON object identify this format.
    fn claims(&self, keys: &HeadKeys) -> bool;

    /// Reads the report's metadata, stopping as soon as it is known where the format allows.
    ///
    /// # Errors
    /// [`IngestError::Parse`] when the report is broken, [`IngestError::Io`] when reading fails.
    fn read_meta(&self, reader: &mut dyn Read) -> Result<ReportMeta, IngestError>;

    /// Parses the whole report, handing each finding to `sink`, and returns its metadata.
    /// Calls `open` once per pass: two passes (identities, then findings), a third when a side
    /// table the identities need comes after the results in the document, and one only when no
    /// result is a finding.
    ///
    /// # Errors
    /// See [`IngestError`].
    fn parse(
        &self,
        open: &mut OpenFn<'_>,
        sink: &mut SinkFn<'_>,
    ) -> Result<ReportMeta, IngestError>;
}

/// Detects the format from the first bytes of a report (a few KB are plenty for every format
/// Rampart reads; a BOM is skipped). `None` when the head is not a JSON object, or its top-level
/// keys seen so far identify no format.
pub fn detect(head: &[u8]) -> Option<ReportFormat> {
    detect_keys(&head_keys(head)?)
}

/// The format whose parser claims these top-level keys.
pub(crate) fn detect_keys(keys: &HeadKeys) -> Option<ReportFormat> {
    ReportFormat::ALL
        .into_iter()
        .find(|f| f.parser().claims(keys))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for f in ReportFormat::ALL {
            assert_eq!(ReportFormat::parse_name(f.as_str()), Some(f));
            assert_eq!(f.as_str().parse::<ReportFormat>(), Ok(f));
            assert_eq!(f.parser().format(), f);
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::Value::String(f.as_str().into())
            );
        }
        assert_eq!(ReportFormat::parse_name("SARIF"), Some(ReportFormat::Sarif));
        assert_eq!(
            ReportFormat::parse_name("CycloneDX"),
            Some(ReportFormat::CycloneDx)
        );
        assert!(ReportFormat::parse_name("spdx").is_none());
    }

    #[test]
    fn detection_from_head() {
        let sarif = br#"{"$schema": "https://json.schemastore.org/sarif-2.1.0.json", "version": "2.1.0", "runs": [{"#;
        assert_eq!(detect(sarif), Some(ReportFormat::Sarif));
        assert_eq!(
            detect(br#"{"version":"2.1.0","runs":[]}"#),
            Some(ReportFormat::Sarif)
        );
        assert_eq!(
            detect(br#"{"bomFormat": "CycloneDX", "specVersion": "1.5""#),
            Some(ReportFormat::CycloneDx)
        );
        assert_eq!(
            detect(br#"{"SchemaVersion": 2, "CreatedAt": "x", "ArtifactName": "alpine:3""#),
            Some(ReportFormat::Trivy)
        );
        assert_eq!(
            detect(br#"{"rampart_report": "1""#),
            Some(ReportFormat::Native)
        );
        assert_eq!(detect(b"{}"), None);
        assert_eq!(detect(br#"{"foo": 1}"#), None);
        assert_eq!(detect(b"\x00\x01"), None);
    }
}
