//! The parts of SARIF 2.1.0 that ingest reads, as serde types. Everything else is skipped by
//! serde's derive (unknown fields are read as `IgnoredAny`). Free-form scalars use the lenient
//! [`Text`] so an odd property bag does not fail a report.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::ingest::formats::common::{First, Text, Texts};

/// Keys of the top-level `sarifLog` object.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
pub(super) enum LogKey {
    Runs,
    Version,
    #[serde(other)]
    Other,
}

/// Keys of a `run` object.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "camelCase")]
pub(super) enum RunKey {
    Tool,
    Results,
    Artifacts,
    VersionControlProvenance,
    #[serde(other)]
    Other,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawTool {
    pub driver: Option<RawComponent>,
    pub extensions: Option<Vec<RawComponent>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawComponent {
    pub name: Text,
    pub version: Text,
    pub semantic_version: Text,
    pub rules: Option<Vec<RawRule>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawRule {
    pub id: Text,
    pub name: Text,
    pub short_description: Option<RawMessage>,
    pub full_description: Option<RawMessage>,
    pub help: Option<RawMessage>,
    pub default_configuration: Option<RawConfiguration>,
    pub properties: Option<RawProps>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawConfiguration {
    pub level: Text,
}

/// `message` / `multiformatMessageString`.
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawMessage {
    pub text: Text,
    pub markdown: Text,
    pub id: Text,
    pub arguments: Texts,
}

/// The property bag fields ingest reads (rule or result).
#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawProps {
    #[serde(rename = "security-severity")]
    pub security_severity: Text,
    pub tags: Texts,
    pub cwe: Texts,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawArtifact {
    pub location: Option<RawArtifactLocation>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawVcp {
    pub repository_uri: Text,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawResult {
    pub rule_id: Text,
    pub rule_index: Option<i64>,
    pub rule: Option<RawRuleRef>,
    pub kind: Text,
    pub level: Text,
    pub message: Option<RawMessage>,
    pub locations: First<RawLocation>,
    pub fingerprints: Option<BTreeMap<String, Text>>,
    pub partial_fingerprints: Option<BTreeMap<String, Text>>,
    pub suppressions: Option<Vec<RawSuppression>>,
    pub baseline_state: Text,
    pub properties: Option<RawProps>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawRuleRef {
    pub id: Text,
    pub index: Option<i64>,
    pub tool_component: Option<RawComponentRef>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawComponentRef {
    pub index: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawSuppression {
    pub status: Text,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawLocation {
    pub physical_location: Option<RawPhysical>,
    pub logical_locations: First<RawLogical>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawPhysical {
    pub artifact_location: Option<RawArtifactLocation>,
    pub region: Option<RawRegion>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawArtifactLocation {
    pub uri: Text,
    pub index: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawRegion {
    pub start_line: Option<i64>,
    pub start_column: Option<i64>,
    pub char_offset: Option<i64>,
    pub snippet: Option<RawContent>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub(super) struct RawContent {
    pub text: Text,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
pub(super) struct RawLogical {
    pub fully_qualified_name: Text,
    pub name: Text,
}
