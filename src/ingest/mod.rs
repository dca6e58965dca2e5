//! Ingest, format layer: turns a raw scanner report (native Rampart JSON, SARIF 2.1.0,
//! CycloneDX 1.4–1.6 JSON, Trivy JSON) into [`NormalizedFinding`]s with stable fingerprints,
//! streaming, in memory independent of the report's size.
//!
//! - [`parse_report`]: the whole report, finding by finding, for the ingest worker.
//! - [`read_meta`]: only what the report says about itself (scanner, target), at upload time.
//! - [`detect`]: the format from the first bytes.
//!
//! Formats are described in `docs/report-formats.md`, fingerprints in `docs/fingerprints.md`.

pub mod batch;
pub mod error;
pub mod finding;
pub mod fingerprint;
pub mod fleet;
pub mod formats;
pub mod graphql;
pub mod jobs;
pub mod pipeline;
pub mod rules;
pub mod sweep;
pub mod synthetic;
pub mod upload;
pub mod worker;

use std::io::{self, Cursor, Read};

pub use error::{IngestError, ParseError, SinkError};
pub use finding::{NormalizedFinding, ReportMeta, Severity};
pub use formats::{detect, FormatParser, OpenFn, ReportFormat, SinkFn};

use formats::detect::{check_head, head_keys, scan_keys};
use formats::{detect_keys, HeadKeys};

/// How much of the body is read up front for the empty / binary / JSON checks and detection.
pub const HEAD_BYTES: usize = 64 * 1024;

/// Parses a whole report, handing each finding to `sink`, and returns the report's metadata.
///
/// `format` is the format the client named, or `None` to detect it from the content. `open`
/// opens the raw report from its beginning: it is called once per pass (see
/// [`FormatParser::parse`]: usually twice; three times when a side table comes after the results
/// that need it, or when the format's telling keys are not within the first [`HEAD_BYTES`]). The
/// first reader is also used for detection, so no pass is spent on it.
///
/// Duplicate results are folded into one finding with `occurrences`; every emitted finding has a
/// distinct fingerprint.
///
/// # Errors
/// - [`IngestError::Parse`]: the report is empty, binary, not JSON, of no supported format, or
///   broken (the message says where: line and column).
/// - [`IngestError::Io`]: `open` or a read failed.
/// - [`IngestError::Sink`]: `sink` returned an error (it stops the parse at once).
pub fn parse_report(
    format: Option<ReportFormat>,
    open: &mut OpenFn<'_>,
    sink: &mut SinkFn<'_>,
) -> Result<ReportMeta, IngestError> {
    let mut first = open()?;
    let (head, at_eof) = read_head(&mut *first)?;
    check_head(&head, at_eof)?;
    let mut pending: Option<Box<dyn Read + Send>> =
        Some(Box::new(Cursor::new(head.clone()).chain(first)));
    let format = match format {
        Some(f) => f,
        None => match detect(&head) {
            Some(f) => f,
            None => {
                let keys = match head_keys(&head) {
                    None => return Err(unsupported(&head, &HeadKeys::default())),
                    Some(keys) if keys.complete => keys,
                    Some(_) => {
                        let mut reader = match pending.take() {
                            Some(reader) => reader,
                            None => open()?,
                        };
                        scan_keys(&mut *reader)?
                    }
                };
                detect_keys(&keys).ok_or_else(|| unsupported(&head, &keys))?
            }
        },
    };
    let mut open_again = || -> io::Result<Box<dyn Read + Send>> {
        match pending.take() {
            Some(reader) => Ok(reader),
            None => open(),
        }
    };
    format.parser().parse(&mut open_again, sink)
}

/// Reads what a report says about itself (format, scanner, target, policy) without parsing its
/// findings: used at upload time when the client did not name the target. Stops reading as soon
/// as the metadata is known where the format allows (SARIF: after the first run; CycloneDX:
/// after `metadata`; Trivy: once `ArtifactName` and `ArtifactType` are read; native: once
/// target, scanner, policy tier and score are read). `checks_total`/`checks_passed` (and a
/// computed score) need the checks, which only [`parse_report`] reads.
///
/// # Errors
/// As [`parse_report`], without [`IngestError::Sink`].
pub fn read_meta(
    format: Option<ReportFormat>,
    reader: impl Read,
) -> Result<ReportMeta, IngestError> {
    let mut reader = reader;
    let (head, at_eof) = read_head(&mut reader)?;
    check_head(&head, at_eof)?;
    let mut whole = Cursor::new(head.as_slice()).chain(reader);
    let format = match format {
        Some(f) => f,
        None => match detect(&head) {
            Some(f) => f,
            None => {
                let keys = match head_keys(&head) {
                    None => return Err(unsupported(&head, &HeadKeys::default())),
                    Some(keys) if keys.complete => keys,
                    Some(_) => scan_keys(&mut whole)?,
                };
                // The reader is spent: the metadata is what the top-level keys told.
                let format = detect_keys(&keys).ok_or_else(|| unsupported(&head, &keys))?;
                return Ok(ReportMeta::new(format, format.as_str()));
            }
        },
    };
    format.parser().read_meta(&mut whole)
}

/// Reads up to [`HEAD_BYTES`]; tells whether that was the whole body.
fn read_head(reader: &mut dyn Read) -> io::Result<(Vec<u8>, bool)> {
    let mut head = Vec::with_capacity(8 * 1024);
    let read = reader.take(HEAD_BYTES as u64).read_to_end(&mut head)?;
    Ok((head, read < HEAD_BYTES))
}

fn unsupported(head: &[u8], keys: &HeadKeys) -> IngestError {
    let first = formats::detect::strip_bom(head)
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .copied();
    let message = if first == Some(b'[') {
        "the JSON document is an array, not a SARIF, CycloneDX, Trivy or Rampart report".to_string()
    } else {
        format!(
            "JSON document is not a SARIF, CycloneDX, Trivy or Rampart report (top-level keys: {})",
            keys.summary()
        )
    };
    IngestError::Parse(ParseError::Unsupported(message))
}

#[cfg(test)]
mod golden;
#[cfg(test)]
pub(crate) mod test_support;
#[cfg(test)]
mod tests;
