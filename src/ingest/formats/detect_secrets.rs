//! detect-secrets JSON (Yelp's `detect-secrets scan` output, also its baseline files):
//! `{"version", "plugins_used", "filters_used", "results": {file: [secret, ...]}, ...}`.
//!
//! One pass, streaming: each secret is a finding as soon as it is read. Its identity is the
//! detector type, the file and the secret's SHA-1 (`hashed_secret`, which the tool writes in
//! place of the secret), so it survives the code moving; the line is not part of it. A
//! report listing the same identity twice gives one finding, counted twice.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::common::{json_deserializer, map_json_error};
use super::{FormatParser, HeadKeys, OpenFn, ReportFormat, SinkFn};
use crate::ingest::error::{IngestError, SinkError};
use crate::ingest::finding::{one_line_title, NormalizedFinding, ReportMeta, Severity};
use crate::ingest::fingerprint::IdentityHasher;

const FORMAT: &str = "detect-secrets JSON";
/// The scanner name its findings carry (and so what "fixed" is judged against).
pub const SCANNER: &str = "detect-secrets";

/// The detect-secrets JSON parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct DetectSecretsParser;

impl FormatParser for DetectSecretsParser {
    fn format(&self) -> ReportFormat {
        ReportFormat::DetectSecrets
    }

    fn claims(&self, keys: &HeadKeys) -> bool {
        keys.has("plugins_used") || keys.has("filters_used")
    }

    fn read_meta(&self, reader: &mut dyn Read) -> Result<ReportMeta, IngestError> {
        let mut state = State::default();
        run(&mut state, reader, None)?;
        Ok(state.meta())
    }

    fn parse(
        &self,
        open: &mut OpenFn<'_>,
        sink: &mut SinkFn<'_>,
    ) -> Result<ReportMeta, IngestError> {
        // Two passes so that a secret listed twice is emitted once with its count: the first
        // counts identities (16 bytes each), the second emits.
        let mut state = State {
            counting: true,
            ..State::default()
        };
        let mut reader = open()?;
        run(&mut state, &mut *reader, None)?;
        state.counting = false;
        let mut reader = open()?;
        run(&mut state, &mut *reader, Some(sink))?;
        Ok(state.meta())
    }
}

#[derive(Default)]
struct State {
    version: Option<String>,
    counting: bool,
    /// Occurrences per identity; an emitted identity is set to 0.
    seen: HashMap<[u8; 16], u32>,
    sink_error: Option<SinkError>,
}

impl State {
    fn meta(&self) -> ReportMeta {
        let mut meta = ReportMeta::new(ReportFormat::DetectSecrets, SCANNER);
        meta.scanner_version = self.version.clone();
        meta
    }
}

fn run(
    state: &mut State,
    reader: &mut dyn Read,
    sink: Option<&mut SinkFn<'_>>,
) -> Result<(), IngestError> {
    let mut de = json_deserializer(reader)?;
    let res = de
        .deserialize_map(Top { state, sink })
        .and_then(|()| de.end());
    match res {
        Ok(()) => Ok(()),
        Err(err) => match state.sink_error.take() {
            Some(stop) => Err(IngestError::Sink(stop)),
            None => Err(map_json_error(err, FORMAT)),
        },
    }
}

struct Top<'a, 's, 'f> {
    state: &'a mut State,
    sink: Option<&'s mut SinkFn<'f>>,
}

impl<'de> Visitor<'de> for Top<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a detect-secrets report object")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "version" => self.state.version = map.next_value::<Option<String>>()?,
                "results" => map.next_value_seed(Files {
                    state: self.state,
                    sink: self.sink.as_deref_mut(),
                })?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// `results`: file name → its secrets.
struct Files<'a, 's, 'f> {
    state: &'a mut State,
    sink: Option<&'s mut SinkFn<'f>>,
}

impl<'de> DeserializeSeed<'de> for Files<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Files<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object of files and their secrets")
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<(), A::Error> {
        while let Some(file) = map.next_key::<String>()? {
            map.next_value_seed(Secrets {
                file: &file,
                state: self.state,
                sink: self.sink.as_deref_mut(),
            })?;
        }
        Ok(())
    }
}

/// One file's secrets.
struct Secrets<'a, 's, 'f> {
    file: &'a str,
    state: &'a mut State,
    sink: Option<&'s mut SinkFn<'f>>,
}

#[derive(Deserialize)]
struct Secret {
    #[serde(rename = "type")]
    kind: String,
    filename: Option<String>,
    hashed_secret: Option<String>,
    line_number: Option<u64>,
    is_verified: Option<bool>,
}

impl<'de> DeserializeSeed<'de> for Secrets<'_, '_, '_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for Secrets<'_, '_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of secrets")
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<(), A::Error> {
        while let Some(secret) = seq.next_element::<Secret>()? {
            let path = secret.filename.as_deref().unwrap_or(self.file);
            let mut hasher = IdentityHasher::new("detect-secrets");
            hasher.field(&secret.kind);
            hasher.field(path);
            hasher.opt_field(secret.hashed_secret.as_deref());
            let id = hasher.finish();
            let key: [u8; 16] = hex_key(&id.fingerprint(0, false));
            if self.state.counting {
                *self.state.seen.entry(key).or_insert(0) += 1;
                continue;
            }
            let occurrences = match self.state.seen.get_mut(&key) {
                Some(0) => continue,
                Some(n) => std::mem::replace(n, 0),
                None => 1,
            };
            let Some(sink) = self.sink.as_deref_mut() else {
                continue;
            };
            let verified = if secret.is_verified == Some(true) {
                " It was verified as a live credential."
            } else {
                ""
            };
            let finding = NormalizedFinding {
                fingerprint: id.fingerprint(0, false),
                scanner: SCANNER.into(),
                rule_id: secret.kind.clone(),
                title: one_line_title(&format!("{} in {path}", secret.kind)),
                severity: Severity::High,
                cve_ids: Vec::new(),
                cwe_ids: vec!["CWE-798".into()],
                location_path: Some(path.to_string()),
                location_line: secret.line_number.and_then(|n| u32::try_from(n).ok()),
                component: None,
                description: format!(
                    "detect-secrets found what looks like a secret ({}) in {path}.{verified}",
                    secret.kind
                ),
                rule_description: None,
                remediation: Some(
                    "Revoke and rotate the credential, remove it from the code and its history, \
                     and load it from the environment or a secret store."
                        .into(),
                ),
                occurrences,
            };
            if let Err(stop) = sink(finding) {
                self.state.sink_error = Some(stop);
                return Err(de::Error::custom("stopped by the sink"));
            }
        }
        Ok(())
    }
}

fn hex_key(fingerprint: &str) -> [u8; 16] {
    let mut key = [0u8; 16];
    if let Ok(bytes) = hex::decode(fingerprint) {
        let n = bytes.len().min(16);
        key[..n].copy_from_slice(&bytes[..n]);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{detect, parse_report};
    use std::io::Cursor;

    const REPORT: &str = r#"{
      "version": "1.5.0",
      "plugins_used": [{"name": "AWSKeyDetector"}],
      "filters_used": [],
      "results": {
        "creds.py": [
          {"type": "AWS Access Key", "filename": "creds.py", "hashed_secret": "25910f981e85ca04baf359199dd0bd4a3ae738b6", "is_verified": false, "line_number": 1},
          {"type": "Secret Keyword", "filename": "creds.py", "hashed_secret": "d70eab08607a4d05faa2d0d6647206599e9abc65", "is_verified": false, "line_number": 2},
          {"type": "Secret Keyword", "filename": "creds.py", "hashed_secret": "d70eab08607a4d05faa2d0d6647206599e9abc65", "is_verified": false, "line_number": 9}
        ]
      },
      "generated_at": "2026-12-01T06:33:01Z"
    }"#;

    fn parse(report: &str) -> (ReportMeta, Vec<NormalizedFinding>) {
        let mut found = Vec::new();
        let mut open = || -> std::io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(Cursor::new(report.as_bytes().to_vec())))
        };
        let meta = parse_report(None, &mut open, &mut |f| {
            found.push(f);
            Ok(())
        })
        .unwrap();
        (meta, found)
    }

    #[test]
    fn secrets_become_findings_keyed_without_their_line() {
        assert_eq!(detect(REPORT.as_bytes()), Some(ReportFormat::DetectSecrets));
        let (meta, found) = parse(REPORT);
        assert_eq!(meta.format, ReportFormat::DetectSecrets);
        assert_eq!(meta.scanner_name, "detect-secrets");
        assert_eq!(meta.scanner_version.as_deref(), Some("1.5.0"));
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].rule_id, "AWS Access Key");
        assert_eq!(found[0].title, "AWS Access Key in creds.py");
        assert_eq!(found[0].severity, Severity::High);
        assert_eq!(found[0].location_line, Some(1));
        assert_eq!(
            found[1].occurrences, 2,
            "the same secret twice is one finding"
        );
        // Golden: fingerprints must not change between versions.
        assert_eq!(found[0].fingerprint, "bd6848e77d52bd51036bc7d50fd1e6b1");

        let moved = REPORT.replace("\"line_number\": 1}", "\"line_number\": 40}");
        let (_, again) = parse(&moved);
        assert_eq!(again[0].fingerprint, found[0].fingerprint);
    }

    #[test]
    fn a_broken_report_says_where() {
        let mut open = || -> std::io::Result<Box<dyn Read + Send>> {
            Ok(Box::new(Cursor::new(
                br#"{"plugins_used": [], "results": {"a": [{"type": 1}]}}"#.to_vec(),
            )))
        };
        let err = parse_report(None, &mut open, &mut |_| Ok(())).unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
    }
}
