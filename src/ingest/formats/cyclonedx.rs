//! CycloneDX 1.4–1.6 JSON `vulnerabilities`: one finding per vulnerability × affected
//! component, the component named by its package URL (`affects[].ref` joined to the
//! components' `bom-ref`), severity from the ratings.
//!
//! Passes: the first reads `metadata` and `components` (a `bom-ref` → purl table) and records
//! identities; the second emits. `components` usually comes before `vulnerabilities`; when it
//! comes after, identities recorded before it used the bare refs, so an extra identity pass runs
//! with the complete table.

use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use super::common::{
    name_at_version, non_blank, run_meta_pass, run_passes, ArrayElements, First, FormatPasses,
    JsonDe, NullableArray, Number, PassCtx, Phase, Text, Texts,
};
use super::{FormatParser, HeadKeys, OpenFn, ReportFormat, SinkFn};
use crate::ingest::error::IngestError;
use crate::ingest::finding::{
    cwe_from_digits, extract_cves, extract_cwes, first_line_title, one_line_title, push_unique,
    NormalizedFinding, ReportMeta, Severity,
};
use crate::ingest::fingerprint::IdentityHasher;

/// The CycloneDX parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct CycloneDxParser;

impl FormatParser for CycloneDxParser {
    fn format(&self) -> ReportFormat {
        ReportFormat::CycloneDx
    }

    fn claims(&self, keys: &HeadKeys) -> bool {
        keys.str("bomFormat")
            .is_some_and(|f| f.trim().eq_ignore_ascii_case("cyclonedx"))
            || keys
                .str("$schema")
                .is_some_and(|s| s.to_ascii_lowercase().contains("cyclonedx"))
    }

    /// Reads up to the end of `metadata`, then stops.
    fn read_meta(&self, reader: &mut dyn Read) -> Result<ReportMeta, IngestError> {
        let mut state = CdxState::default();
        run_meta_pass(&mut state, reader)?;
        Ok(state.meta())
    }

    fn parse(
        &self,
        open: &mut OpenFn<'_>,
        sink: &mut SinkFn<'_>,
    ) -> Result<ReportMeta, IngestError> {
        let mut state = CdxState::default();
        run_passes(&mut state, open, sink)?;
        Ok(state.meta())
    }
}

#[derive(Debug, Default)]
struct CdxState {
    tool_name: Option<String>,
    tool_version: Option<String>,
    target_name: Option<String>,
    target_kind: Option<String>,
    /// `bom-ref` → package URL (or `name@version` when the component has no purl).
    components: HashMap<String, String>,
    vulns_seen: bool,
    needs_identify: bool,
}

impl CdxState {
    fn meta(&self) -> ReportMeta {
        let mut meta = ReportMeta::new(
            ReportFormat::CycloneDx,
            self.tool_name.clone().unwrap_or_else(|| "cyclonedx".into()),
        );
        meta.scanner_version = self.tool_version.clone();
        meta.target_name = self.target_name.clone();
        meta.target_kind = self.target_kind.clone();
        meta
    }

    fn add_component(&mut self, c: RawComponent) {
        let label = non_blank(c.purl.as_deref()).map(str::to_owned).or_else(|| {
            non_blank(c.name.as_deref()).map(|n| name_at_version(n, c.version.as_deref()))
        });
        if let (Some(bom_ref), Some(label)) = (non_blank(c.bom_ref.as_deref()), label) {
            self.components.entry(bom_ref.to_owned()).or_insert(label);
        }
        for child in c.components.into_iter().flatten() {
            self.add_component(child);
        }
    }
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
enum BomKey {
    BomFormat,
    SpecVersion,
    Metadata,
    Components,
    Vulnerabilities,
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawComponent {
    #[serde(rename = "bom-ref")]
    bom_ref: Text,
    #[serde(rename = "type")]
    kind: Text,
    name: Text,
    version: Text,
    purl: Text,
    components: Option<Vec<RawComponent>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawTool {
    name: Text,
    version: Text,
}

/// `metadata.tools`: a 1.4 array of tools, or the 1.5+ `{components, services}` object.
#[derive(Default)]
struct Tools(Option<RawTool>);

impl<'de> Deserialize<'de> for Tools {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ToolsVisitor)
    }
}

struct ToolsVisitor;

impl<'de> Visitor<'de> for ToolsVisitor {
    type Value = Tools;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("tools")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Tools, E> {
        Ok(Tools(None))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Tools, A::Error> {
        let first = seq.next_element::<RawTool>()?;
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Tools(first))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Tools, A::Error> {
        let mut found = None;
        while let Some(key) = map.next_key::<String>()? {
            if (key == "components" || key == "services") && found.is_none() {
                found = map.next_value::<First<RawTool>>()?.0;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(Tools(found))
    }
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawMetadata {
    tools: Tools,
    component: Option<RawComponent>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawVulnerability {
    id: Text,
    #[serde(rename = "bom-ref")]
    bom_ref: Text,
    ratings: Option<Vec<RawRating>>,
    cwes: Texts,
    description: Text,
    detail: Text,
    recommendation: Text,
    references: Option<Vec<RawReference>>,
    affects: Option<Vec<RawAffect>>,
    analysis: Option<RawAnalysis>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawRating {
    severity: Text,
    score: Number,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawReference {
    id: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAffect {
    #[serde(rename = "ref")]
    reference: Text,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct RawAnalysis {
    state: Text,
}

impl FormatPasses for CdxState {
    const FORMAT: ReportFormat = ReportFormat::CycloneDx;

    fn pass(&mut self, de: &mut JsonDe<'_>, px: &mut PassCtx<'_>) -> Result<(), serde_json::Error> {
        de.deserialize_map(BomVisitor { st: self, px })
    }

    fn needs_identify_pass(&self) -> bool {
        self.needs_identify
    }
}

struct BomVisitor<'a, 's> {
    st: &'a mut CdxState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> Visitor<'de> for BomVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a CycloneDX BOM object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let BomVisitor { st, px } = self;
        while let Some(key) = map.next_key::<BomKey>()? {
            match key {
                BomKey::BomFormat => {
                    let Text(f) = map.next_value()?;
                    if let Some(f) = f.filter(|f| !f.eq_ignore_ascii_case("cyclonedx")) {
                        return Err(de::Error::custom(format!(
                            "`bomFormat` is `{f}`, not `CycloneDX`"
                        )));
                    }
                }
                BomKey::SpecVersion => {
                    let Text(v) = map.next_value()?;
                    if let Some(v) = v.filter(|v| !v.starts_with("1.")) {
                        return Err(de::Error::custom(format!(
                            "unsupported CycloneDX version `{v}` (Rampart reads 1.4 to 1.6)"
                        )));
                    }
                }
                BomKey::Metadata if px.collects() => {
                    let meta: Option<RawMetadata> = map.next_value()?;
                    let meta = meta.unwrap_or_default();
                    if let Some(tool) = meta.tools.0 {
                        st.tool_name = tool.name.0.filter(|n| !n.trim().is_empty());
                        st.tool_version = tool.version.0;
                    }
                    if let Some(c) = meta.component {
                        if let Some(name) = non_blank(c.name.as_deref()) {
                            st.target_name = Some(name_at_version(name, c.version.as_deref()));
                            st.target_kind = Some(
                                if c.kind.as_deref() == Some("container") {
                                    "container_image"
                                } else {
                                    "application"
                                }
                                .into(),
                            );
                        }
                        st.add_component(c);
                    }
                    if px.phase() == Phase::Meta {
                        return Err(px.stop());
                    }
                }
                BomKey::Components if px.phase() == Phase::Collect => {
                    let before = st.components.len();
                    map.next_value_seed(NullableArray(ComponentsSeed { st: &mut *st }))?;
                    if st.vulns_seen && st.components.len() > before {
                        st.needs_identify = true;
                    }
                }
                BomKey::Vulnerabilities if px.wants_results() => {
                    map.next_value_seed(NullableArray(VulnsSeed {
                        st: &mut *st,
                        px: &mut *px,
                    }))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct ComponentsSeed<'a> {
    st: &'a mut CdxState,
}

impl<'de> ArrayElements<'de> for ComponentsSeed<'_> {
    const EXPECTING: &'static str = "an array of components";

    fn read<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(c) = seq.next_element::<RawComponent>()? {
            self.st.add_component(c);
        }
        Ok(())
    }
}

struct VulnsSeed<'a, 's> {
    st: &'a mut CdxState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> ArrayElements<'de> for VulnsSeed<'_, '_> {
    const EXPECTING: &'static str = "an array of vulnerabilities";

    fn read<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(v) = seq.next_element::<RawVulnerability>()? {
            self.st.vulns_seen = true;
            on_vulnerability(self.st, self.px, v)?;
        }
        Ok(())
    }
}

/// Not a finding when the BOM's own analysis says so (VEX): `not_affected`, `false_positive`,
/// `resolved`.
fn is_finding(v: &RawVulnerability) -> bool {
    !matches!(
        v.analysis.as_ref().and_then(|a| a.state.as_deref()),
        Some("not_affected" | "false_positive" | "resolved")
    )
}

fn on_vulnerability<E: de::Error>(
    st: &CdxState,
    px: &mut PassCtx<'_>,
    v: RawVulnerability,
) -> Result<(), E> {
    if !is_finding(&v) {
        return Ok(());
    }
    let id = non_blank(v.id.as_deref())
        .or(non_blank(v.bom_ref.as_deref()))
        .unwrap_or("unknown-vulnerability")
        .trim()
        .to_string();
    let refs: Vec<Option<&str>> = match v.affects.as_deref() {
        Some(affects) if !affects.is_empty() => affects
            .iter()
            .map(|a| non_blank(a.reference.as_deref()))
            .collect(),
        _ => vec![None],
    };
    for reference in refs {
        let component = reference.map(|r| st.components.get(r).map_or(r, String::as_str));
        let mut h = IdentityHasher::new("cyclonedx");
        h.field(&id);
        h.opt_field(component);
        let identity = h.finish();
        if let Some(slot) = px.place(&identity, 0, 0)? {
            let mut finding = build_finding(
                &v,
                &id,
                component,
                identity.fingerprint(slot.index, false),
                slot.occurrences,
            );
            finding.scanner = st.tool_name.clone().unwrap_or_else(|| "cyclonedx".into());
            px.emit(finding)?;
        }
    }
    Ok(())
}

/// Highest severity among the ratings; a rating without a usable severity (absent, `none`,
/// `unknown`) counts by its score; info when nothing tells.
fn severity(ratings: Option<&[RawRating]>) -> Severity {
    ratings
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            let named = r
                .severity
                .as_deref()
                .filter(|s| !s.eq_ignore_ascii_case("none") && !s.eq_ignore_ascii_case("unknown"))
                .and_then(Severity::parse_name);
            named.or(r.score.0.map(Severity::from_score))
        })
        .max()
        .unwrap_or(Severity::Info)
}

fn build_finding(
    v: &RawVulnerability,
    id: &str,
    component: Option<&str>,
    fingerprint: String,
    occurrences: u32,
) -> NormalizedFinding {
    let mut cve_ids = Vec::new();
    extract_cves(id, &mut cve_ids);
    for reference in v.references.iter().flatten() {
        if let Some(rid) = reference.id.as_deref() {
            extract_cves(rid, &mut cve_ids);
        }
    }
    let mut cwe_ids = Vec::new();
    for cwe in &v.cwes.0 {
        match cwe_from_digits(cwe.trim()) {
            Some(c) => push_unique(&mut cwe_ids, c),
            None => extract_cwes(cwe, &mut cwe_ids),
        }
    }
    let description_text = non_blank(v.description.as_deref()).or(non_blank(v.detail.as_deref()));
    let title = match description_text {
        Some(d) => one_line_title(&format!("{id}: {}", first_line_title(d))),
        None => one_line_title(id),
    };
    let mut description = description_text.unwrap_or("").trim().to_string();
    if let (Some(detail), Some(_)) = (
        non_blank(v.detail.as_deref()),
        non_blank(v.description.as_deref()),
    ) {
        description.push_str("\n\n");
        description.push_str(detail.trim());
    }
    NormalizedFinding {
        fingerprint,
        scanner: String::new(),
        rule_id: id.to_string(),
        title,
        severity: severity(v.ratings.as_deref()),
        cve_ids,
        cwe_ids,
        location_path: None,
        location_line: None,
        component: component.map(str::to_owned),
        description,
        rule_description: None,
        remediation: non_blank(v.recommendation.as_deref()).map(|s| s.trim().to_owned()),
        occurrences,
    }
}

#[cfg(test)]
mod tests;
