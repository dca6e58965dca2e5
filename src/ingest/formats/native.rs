//! The native Rampart scan report (`docs/report-formats.md` has its JSON Schema): a target, a
//! scanner, a policy tier, an optional score, and checks that passed or failed. Failed checks
//! become findings; passed and failed checks are counted (the score is passed / (passed +
//! failed) × 100 when the report gives none).
//!
//! Passes: the first validates, counts and records identities; the second emits.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::common::{
    non_blank, run_meta_pass, run_passes, FormatPasses, JsonDe, PassCtx, Phase, Text,
};
use super::{FormatParser, HeadKeys, OpenFn, ReportFormat, SinkFn};
use crate::ingest::error::IngestError;
use crate::ingest::finding::{
    cwe_from_digits, extract_cves, extract_cwes, one_line_title, push_unique, NormalizedFinding,
    ReportMeta, Severity,
};
use crate::ingest::fingerprint::IdentityHasher;

/// The version of the native format this parser reads.
pub const NATIVE_VERSION: &str = "1";

/// The native Rampart report parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct NativeParser;

impl FormatParser for NativeParser {
    fn format(&self) -> ReportFormat {
        ReportFormat::Native
    }

    fn claims(&self, keys: &HeadKeys) -> bool {
        keys.has("rampart_report")
    }

    /// Reads until target, scanner, policy tier and score are known (the whole report when one
    /// is missing); counts and a computed score need [`FormatParser::parse`].
    fn read_meta(&self, reader: &mut dyn Read) -> Result<ReportMeta, IngestError> {
        let mut state = NativeState::default();
        run_meta_pass(&mut state, reader)?;
        Ok(state.meta())
    }

    fn parse(
        &self,
        open: &mut OpenFn<'_>,
        sink: &mut SinkFn<'_>,
    ) -> Result<ReportMeta, IngestError> {
        let mut state = NativeState::default();
        run_passes(&mut state, open, sink)?;
        Ok(state.meta())
    }
}

#[derive(Debug, Default)]
struct NativeState {
    target_name: Option<String>,
    target_kind: Option<String>,
    target_metadata: Option<serde_json::Map<String, serde_json::Value>>,
    scanner_name: Option<String>,
    scanner_version: Option<String>,
    policy_tier: Option<String>,
    score: Option<f64>,
    passed: u64,
    failed: u64,
    counted: bool,
}

impl NativeState {
    fn meta(&self) -> ReportMeta {
        let mut meta = ReportMeta::new(
            ReportFormat::Native,
            self.scanner_name
                .clone()
                .unwrap_or_else(|| "rampart".into()),
        );
        meta.scanner_version = self.scanner_version.clone();
        meta.target_name = self.target_name.clone();
        meta.target_kind = self.target_kind.clone();
        meta.target_metadata = self.target_metadata.clone();
        meta.policy_tier = self.policy_tier.clone();
        meta.score = self.score;
        if self.counted {
            let total = self.passed + self.failed;
            meta.checks_total = Some(total);
            meta.checks_passed = Some(self.passed);
            if meta.score.is_none() && total > 0 {
                meta.score = Some(self.passed as f64 * 100.0 / total as f64);
            }
        }
        meta
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum TopKey {
    RampartReport,
    Target,
    Scanner,
    PolicyTier,
    Score,
    Checks,
    #[serde(other)]
    Other,
}

/// At most this many keys in a report's `target.metadata`.
pub const TARGET_METADATA_MAX_KEYS: usize = 64;
/// At most this many bytes of JSON in a report's `target.metadata`.
pub const TARGET_METADATA_MAX_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
struct RawTarget {
    name: String,
    kind: Option<String>,
    /// An object of facts about the target; `null` is the same as absent.
    metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize)]
struct RawScanner {
    name: String,
    version: Option<String>,
}

/// Check outcome.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Status {
    Pass,
    Fail,
    Skip,
    Error,
}

#[derive(Deserialize)]
struct RawCheck {
    id: String,
    title: Option<String>,
    status: Status,
    severity: Severity,
    resource: Option<String>,
    description: Option<String>,
    remediation: Option<String>,
    #[serde(default)]
    cve_ids: Vec<String>,
    #[serde(default)]
    cwe_ids: Vec<String>,
    fingerprint: Option<String>,
    location: Option<RawLocation>,
    component: Option<String>,
}

#[derive(Deserialize)]
struct RawLocation {
    path: Option<String>,
    line: Option<u32>,
}

impl FormatPasses for NativeState {
    const FORMAT: ReportFormat = ReportFormat::Native;

    fn pass(&mut self, de: &mut JsonDe<'_>, px: &mut PassCtx<'_>) -> Result<(), serde_json::Error> {
        de.deserialize_map(ReportVisitor { st: self, px })
    }

    fn needs_identify_pass(&self) -> bool {
        false
    }
}

struct ReportVisitor<'a, 's> {
    st: &'a mut NativeState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> Visitor<'de> for ReportVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Rampart report object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ReportVisitor { st, px } = self;
        let (mut version, mut target, mut scanner, mut checks, mut tier, mut score) =
            (false, false, false, false, false, false);
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::RampartReport => {
                    let Text(v) = map.next_value()?;
                    if v.as_deref() != Some(NATIVE_VERSION) {
                        return Err(de::Error::custom(format!(
                            "unsupported `rampart_report` version `{}` (Rampart reads \"{NATIVE_VERSION}\")",
                            v.unwrap_or_default()
                        )));
                    }
                    version = true;
                }
                TopKey::Target => {
                    let t: RawTarget = map.next_value()?;
                    if t.name.trim().is_empty() {
                        return Err(de::Error::invalid_value(
                            de::Unexpected::Str(""),
                            &"a target name",
                        ));
                    }
                    st.target_name = Some(t.name);
                    st.target_kind = t.kind.filter(|k| !k.trim().is_empty());
                    if let Some(metadata) = &t.metadata {
                        let bytes = serde_json::to_string(metadata).map_or(0, |j| j.len());
                        if metadata.len() > TARGET_METADATA_MAX_KEYS
                            || bytes > TARGET_METADATA_MAX_BYTES
                        {
                            return Err(de::Error::custom(format!(
                                "`target.metadata` is too large: at most {TARGET_METADATA_MAX_KEYS} keys and {TARGET_METADATA_MAX_BYTES} bytes"
                            )));
                        }
                    }
                    st.target_metadata = t.metadata.filter(|m| !m.is_empty());
                    target = true;
                }
                TopKey::Scanner => {
                    let s: RawScanner = map.next_value()?;
                    if s.name.trim().is_empty() {
                        return Err(de::Error::invalid_value(
                            de::Unexpected::Str(""),
                            &"a scanner name",
                        ));
                    }
                    st.scanner_name = Some(s.name);
                    st.scanner_version = s.version;
                    scanner = true;
                }
                TopKey::PolicyTier => {
                    st.policy_tier = map.next_value::<Option<String>>()?;
                    tier = true;
                }
                TopKey::Score => {
                    let value: Option<f64> = map.next_value()?;
                    if let Some(v) = value.filter(|v| !(0.0..=100.0).contains(v)) {
                        return Err(de::Error::invalid_value(
                            de::Unexpected::Float(v),
                            &"a score from 0 to 100",
                        ));
                    }
                    st.score = value;
                    score = true;
                }
                TopKey::Checks if px.wants_results() => {
                    checks = true;
                    map.next_value_seed(ChecksSeed {
                        st: &mut *st,
                        px: &mut *px,
                    })?;
                }
                TopKey::Checks => {
                    checks = true;
                    map.next_value::<IgnoredAny>()?;
                }
                TopKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if px.phase() == Phase::Meta && target && scanner && tier && score {
                return Err(px.stop());
            }
        }
        for (present, field) in [
            (version, "rampart_report"),
            (target, "target"),
            (scanner, "scanner"),
            (checks, "checks"),
        ] {
            if !present {
                return Err(de::Error::missing_field(field));
            }
        }
        if px.phase() == Phase::Collect {
            st.counted = true;
        }
        Ok(())
    }
}

struct ChecksSeed<'a, 's> {
    st: &'a mut NativeState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> DeserializeSeed<'de> for ChecksSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChecksSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of checks")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let collect = self.px.phase() == Phase::Collect;
        while let Some(check) = seq.next_element::<RawCheck>()? {
            if check.id.trim().is_empty() {
                return Err(de::Error::invalid_value(
                    de::Unexpected::Str(""),
                    &"a check id",
                ));
            }
            match check.status {
                Status::Pass if collect => self.st.passed += 1,
                Status::Fail => {
                    if collect {
                        self.st.failed += 1;
                    }
                    on_failed(self.st, self.px, check)?;
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn on_failed<E: de::Error>(st: &NativeState, px: &mut PassCtx<'_>, c: RawCheck) -> Result<(), E> {
    let resource = non_blank(c.resource.as_deref());
    let identity = match non_blank(c.fingerprint.as_deref()) {
        Some(given) => {
            let mut h = IdentityHasher::new("native/given");
            h.field(given);
            h.finish()
        }
        None => {
            let mut h = IdentityHasher::new("native");
            h.field(c.id.trim());
            h.opt_field(resource);
            h.finish()
        }
    };
    let Some(slot) = px.place(&identity, 0, 0)? else {
        return Ok(());
    };
    let mut cve_ids = Vec::new();
    for cve in &c.cve_ids {
        extract_cves(cve, &mut cve_ids);
    }
    let mut cwe_ids = Vec::new();
    for cwe in &c.cwe_ids {
        match cwe_from_digits(cwe.trim()) {
            Some(id) => push_unique(&mut cwe_ids, id),
            None => extract_cwes(cwe, &mut cwe_ids),
        }
    }
    let location = c.location.as_ref();
    let finding = NormalizedFinding {
        fingerprint: identity.fingerprint(slot.index, false),
        scanner: st.scanner_name.clone().unwrap_or_else(|| "rampart".into()),
        title: one_line_title(non_blank(c.title.as_deref()).unwrap_or(&c.id)),
        severity: c.severity,
        cve_ids,
        cwe_ids,
        location_path: location
            .and_then(|l| non_blank(l.path.as_deref()))
            .or(resource)
            .map(str::to_owned),
        location_line: location.and_then(|l| l.line).filter(|&l| l > 0),
        component: c.component.filter(|s| !s.trim().is_empty()),
        description: c.description.unwrap_or_default(),
        rule_description: None,
        remediation: c.remediation.filter(|s| !s.trim().is_empty()),
        occurrences: slot.occurrences,
        rule_id: c.id.trim().to_string(),
    };
    px.emit(finding)
}

#[cfg(test)]
mod tests;
