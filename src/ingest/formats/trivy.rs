//! Trivy JSON (schema 2): `Results[].Vulnerabilities`, `Misconfigurations` and `Secrets`.
//!
//! Passes: the first reads the artifact and each result's `Target` and records identities; the
//! second emits. Trivy writes `Target` before the findings of a result; when a report does not,
//! an extra identity pass runs with the targets known.

use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::common::{
    as_u32, name_at_version, non_blank, run_meta_pass, run_passes, ArrayElements, FormatPasses,
    JsonDe, NullableArray, PassCtx, Phase, Text, Texts,
};
use super::{FormatParser, HeadKeys, OpenFn, ReportFormat, SinkFn};
use crate::ingest::error::IngestError;
use crate::ingest::finding::{
    extract_cves, extract_cwes, one_line_title, NormalizedFinding, ReportMeta, Severity,
};
use crate::ingest::fingerprint::IdentityHasher;

/// The Trivy JSON parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct TrivyParser;

impl FormatParser for TrivyParser {
    fn format(&self) -> ReportFormat {
        ReportFormat::Trivy
    }

    fn claims(&self, keys: &HeadKeys) -> bool {
        keys.has("ArtifactName")
            || keys.has("ArtifactType")
            || (keys.has("SchemaVersion") && keys.has("Results"))
    }

    /// Reads until `ArtifactName` and `ArtifactType` are known, then stops.
    fn read_meta(&self, reader: &mut dyn Read) -> Result<ReportMeta, IngestError> {
        let mut state = TrivyState::default();
        run_meta_pass(&mut state, reader)?;
        Ok(state.meta())
    }

    fn parse(
        &self,
        open: &mut OpenFn<'_>,
        sink: &mut SinkFn<'_>,
    ) -> Result<ReportMeta, IngestError> {
        let mut state = TrivyState::default();
        run_passes(&mut state, open, sink)?;
        Ok(state.meta())
    }
}

#[derive(Debug, Default)]
struct TrivyState {
    artifact_name: Option<String>,
    artifact_type: Option<String>,
    version: Option<String>,
    /// `Target` of each element of `Results`.
    targets: Vec<Option<String>>,
    needs_identify: bool,
}

impl TrivyState {
    fn meta(&self) -> ReportMeta {
        let mut meta = ReportMeta::new(ReportFormat::Trivy, "trivy");
        meta.scanner_version = self.version.clone();
        meta.target_name = self.artifact_name.clone();
        meta.target_kind = self.artifact_type.as_deref().map(|t| {
            match t {
                "container_image" => "container_image",
                "filesystem" | "repository" => "repository",
                "vm" => "host",
                other => other,
            }
            .to_string()
        });
        meta
    }
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum TopKey {
    ArtifactName,
    ArtifactType,
    Results,
    Trivy,
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(field_identifier)]
enum ResultKey {
    Target,
    Vulnerabilities,
    Misconfigurations,
    Secrets,
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTrivyInfo {
    #[serde(rename = "Version")]
    version: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawVulnerability {
    #[serde(rename = "VulnerabilityID")]
    id: Text,
    #[serde(rename = "PkgName")]
    pkg_name: Text,
    #[serde(rename = "PkgPath")]
    pkg_path: Text,
    #[serde(rename = "PkgIdentifier")]
    pkg_identifier: Option<RawPkgIdentifier>,
    #[serde(rename = "InstalledVersion")]
    installed_version: Text,
    #[serde(rename = "FixedVersion")]
    fixed_version: Text,
    #[serde(rename = "Status")]
    status: Text,
    #[serde(rename = "Title")]
    title: Text,
    #[serde(rename = "Description")]
    description: Text,
    #[serde(rename = "Severity")]
    severity: Text,
    #[serde(rename = "CweIDs")]
    cwe_ids: Texts,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawPkgIdentifier {
    #[serde(rename = "PURL")]
    purl: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMisconfiguration {
    #[serde(rename = "ID")]
    id: Text,
    #[serde(rename = "AVDID")]
    avd_id: Text,
    #[serde(rename = "Title")]
    title: Text,
    #[serde(rename = "Description")]
    description: Text,
    #[serde(rename = "Message")]
    message: Text,
    #[serde(rename = "Resolution")]
    resolution: Text,
    #[serde(rename = "Severity")]
    severity: Text,
    #[serde(rename = "Status")]
    status: Text,
    #[serde(rename = "CauseMetadata")]
    cause: Option<RawCause>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawCause {
    #[serde(rename = "Resource")]
    resource: Text,
    #[serde(rename = "StartLine")]
    start_line: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawSecret {
    #[serde(rename = "RuleID")]
    rule_id: Text,
    #[serde(rename = "Category")]
    category: Text,
    #[serde(rename = "Severity")]
    severity: Text,
    #[serde(rename = "Title")]
    title: Text,
    #[serde(rename = "StartLine")]
    start_line: Option<i64>,
    #[serde(rename = "Match")]
    matched: Text,
}

impl FormatPasses for TrivyState {
    const FORMAT: ReportFormat = ReportFormat::Trivy;

    fn pass(&mut self, de: &mut JsonDe<'_>, px: &mut PassCtx<'_>) -> Result<(), serde_json::Error> {
        de.deserialize_map(ReportVisitor { st: self, px })
    }

    fn needs_identify_pass(&self) -> bool {
        self.needs_identify
    }
}

struct ReportVisitor<'a, 's> {
    st: &'a mut TrivyState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> Visitor<'de> for ReportVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Trivy report object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ReportVisitor { st, px } = self;
        let meta_done = |st: &TrivyState| st.artifact_name.is_some() && st.artifact_type.is_some();
        while let Some(key) = map.next_key::<TopKey>()? {
            match key {
                TopKey::ArtifactName if px.collects() => {
                    st.artifact_name = map.next_value::<Text>()?.0.filter(|n| !n.trim().is_empty());
                }
                TopKey::ArtifactType if px.collects() => {
                    st.artifact_type = map.next_value::<Text>()?.0.filter(|n| !n.trim().is_empty());
                }
                TopKey::Trivy if px.collects() => {
                    let info: Option<RawTrivyInfo> = map.next_value()?;
                    st.version = info.and_then(|i| i.version.0);
                }
                TopKey::Results if px.wants_results() => {
                    map.next_value_seed(NullableArray(ResultsSeed {
                        st: &mut *st,
                        px: &mut *px,
                    }))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
            if px.phase() == Phase::Meta && meta_done(st) {
                return Err(px.stop());
            }
        }
        Ok(())
    }
}

struct ResultsSeed<'a, 's> {
    st: &'a mut TrivyState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> ArrayElements<'de> for ResultsSeed<'_, '_> {
    const EXPECTING: &'static str = "an array of results";

    fn read<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(ResultSeed {
                st: &mut *self.st,
                px: &mut *self.px,
                index,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }
}

struct ResultSeed<'a, 's> {
    st: &'a mut TrivyState,
    px: &'a mut PassCtx<'s>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for ResultSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

/// Which array of a result is being read.
#[derive(Clone, Copy)]
enum Kind {
    Vulnerability,
    Misconfiguration,
    Secret,
}

impl<'de> Visitor<'de> for ResultSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a Trivy result object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let ResultSeed { st, px, index } = self;
        if st.targets.len() <= index {
            st.targets.resize(index + 1, None);
        }
        let mut findings_seen = false;
        while let Some(key) = map.next_key::<ResultKey>()? {
            let kind = match key {
                ResultKey::Target => {
                    let Text(target) = map.next_value()?;
                    if px.phase() == Phase::Collect {
                        st.targets[index] = target;
                        if findings_seen {
                            st.needs_identify = true;
                        }
                    }
                    continue;
                }
                ResultKey::Vulnerabilities => Kind::Vulnerability,
                ResultKey::Misconfigurations => Kind::Misconfiguration,
                ResultKey::Secrets => Kind::Secret,
                ResultKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                    continue;
                }
            };
            findings_seen = true;
            map.next_value_seed(NullableArray(ItemsSeed {
                st: &mut *st,
                px: &mut *px,
                index,
                kind,
            }))?;
        }
        Ok(())
    }
}

struct ItemsSeed<'a, 's> {
    st: &'a mut TrivyState,
    px: &'a mut PassCtx<'s>,
    index: usize,
    kind: Kind,
}

impl<'de> ArrayElements<'de> for ItemsSeed<'_, '_> {
    const EXPECTING: &'static str = "an array";

    fn read<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let target = self.st.targets.get(self.index).cloned().flatten();
        let target = target.as_deref();
        match self.kind {
            Kind::Vulnerability => {
                while let Some(v) = seq.next_element::<RawVulnerability>()? {
                    on_vulnerability(self.px, target, v)?;
                }
            }
            Kind::Misconfiguration => {
                while let Some(m) = seq.next_element::<RawMisconfiguration>()? {
                    on_misconfiguration(self.px, target, m)?;
                }
            }
            Kind::Secret => {
                while let Some(s) = seq.next_element::<RawSecret>()? {
                    on_secret(self.px, target, s)?;
                }
            }
        }
        Ok(())
    }
}

/// Trivy severity (`CRITICAL` … `LOW`, `UNKNOWN` → info).
fn severity(s: &Text) -> Severity {
    s.as_deref()
        .and_then(Severity::parse_name)
        .unwrap_or(Severity::Info)
}

fn finding(rule_id: &str, title: &str, severity: Severity) -> NormalizedFinding {
    NormalizedFinding {
        fingerprint: String::new(),
        scanner: "trivy".into(),
        rule_id: rule_id.to_string(),
        title: one_line_title(if title.trim().is_empty() {
            rule_id
        } else {
            title
        }),
        severity,
        cve_ids: Vec::new(),
        cwe_ids: Vec::new(),
        location_path: None,
        location_line: None,
        component: None,
        description: String::new(),
        rule_description: None,
        remediation: None,
        occurrences: 1,
    }
}

fn on_vulnerability<E: de::Error>(
    px: &mut PassCtx<'_>,
    target: Option<&str>,
    v: RawVulnerability,
) -> Result<(), E> {
    if v.status.as_deref() == Some("not_affected") {
        return Ok(());
    }
    let id = non_blank(v.id.as_deref())
        .unwrap_or("unknown-vulnerability")
        .trim();
    let pkg = v.pkg_name.as_deref().unwrap_or("");
    let installed = v.installed_version.as_deref().unwrap_or("");
    let pkg_path = non_blank(v.pkg_path.as_deref());
    let mut h = IdentityHasher::new("trivy/vulnerability");
    h.field(id);
    h.field(pkg);
    h.field(installed);
    h.opt_field(target);
    h.opt_field(pkg_path);
    let identity = h.finish();
    let Some(slot) = px.place(&identity, 0, 0)? else {
        return Ok(());
    };
    let mut f = finding(id, v.title.as_deref().unwrap_or(""), severity(&v.severity));
    f.fingerprint = identity.fingerprint(slot.index, false);
    f.occurrences = slot.occurrences;
    extract_cves(id, &mut f.cve_ids);
    for cwe in &v.cwe_ids.0 {
        extract_cwes(cwe, &mut f.cwe_ids);
    }
    f.location_path = pkg_path.or(target).map(str::to_owned);
    f.component = non_blank(v.pkg_identifier.as_ref().and_then(|p| p.purl.as_deref()))
        .map(str::to_owned)
        .or_else(|| non_blank(Some(pkg)).map(|p| name_at_version(p, Some(installed))));
    f.description = v.description.0.unwrap_or_default();
    f.remediation = non_blank(v.fixed_version.as_deref())
        .map(|fixed| format!("Upgrade {pkg} from {installed} to {fixed}."));
    px.emit(f)
}

fn on_misconfiguration<E: de::Error>(
    px: &mut PassCtx<'_>,
    target: Option<&str>,
    m: RawMisconfiguration,
) -> Result<(), E> {
    if m.status
        .as_deref()
        .is_some_and(|s| !s.eq_ignore_ascii_case("fail"))
    {
        return Ok(());
    }
    let id = non_blank(m.id.as_deref())
        .or(non_blank(m.avd_id.as_deref()))
        .unwrap_or("unknown-check")
        .trim();
    let cause = m.cause.unwrap_or_default();
    let resource = non_blank(cause.resource.as_deref());
    let message = m.message.as_deref().unwrap_or("");
    let mut h = IdentityHasher::new("trivy/misconfiguration");
    h.field(id);
    h.opt_field(target);
    h.opt_field(resource);
    h.normalized_message(message);
    let identity = h.finish();
    let line = as_u32(cause.start_line);
    let Some(slot) = px.place(&identity, line, 0)? else {
        return Ok(());
    };
    let mut f = finding(id, m.title.as_deref().unwrap_or(""), severity(&m.severity));
    f.fingerprint = identity.fingerprint(slot.index, false);
    f.occurrences = slot.occurrences;
    f.location_path = target.map(str::to_owned);
    f.location_line = (line > 0).then_some(line);
    f.component = resource.map(str::to_owned);
    let mut description = m.description.0.unwrap_or_default();
    if !message.trim().is_empty() {
        if !description.is_empty() {
            description.push_str("\n\n");
        }
        description.push_str(message.trim());
    }
    f.description = description;
    f.remediation = m.resolution.0.filter(|r| !r.trim().is_empty());
    px.emit(f)
}

fn on_secret<E: de::Error>(
    px: &mut PassCtx<'_>,
    target: Option<&str>,
    s: RawSecret,
) -> Result<(), E> {
    let rule = non_blank(s.rule_id.as_deref()).unwrap_or("secret").trim();
    let matched = s.matched.as_deref().unwrap_or("");
    let mut h = IdentityHasher::new("trivy/secret");
    h.field(rule);
    h.opt_field(target);
    h.normalized_snippet(matched);
    let identity = h.finish();
    let line = as_u32(s.start_line);
    let Some(slot) = px.place(&identity, line, 0)? else {
        return Ok(());
    };
    let mut f = finding(
        rule,
        s.title.as_deref().unwrap_or(""),
        severity(&s.severity),
    );
    f.fingerprint = identity.fingerprint(slot.index, false);
    f.occurrences = slot.occurrences;
    f.location_path = target.map(str::to_owned);
    f.location_line = (line > 0).then_some(line);
    let category = s.category.as_deref().unwrap_or("secret");
    f.description = if matched.trim().is_empty() {
        format!("{category} secret found")
    } else {
        format!("{category} secret found: {}", matched.trim())
    };
    f.remediation = Some("Remove the secret from the code and rotate it.".into());
    px.emit(f)
}

#[cfg(test)]
mod tests;
