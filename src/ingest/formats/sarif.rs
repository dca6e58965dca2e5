//! SARIF 2.1.0: every run, rule metadata (driver and extensions), `level` resolution through
//! `kind`, the result and the rule's default configuration, GitHub's `security-severity`
//! mapping, suppressions, and fingerprints (`docs/fingerprints.md`).
//!
//! Passes: the first gathers each run's tool (rules), artifacts and version-control provenance
//! and records result identities; the second emits. A result that names its rule only by index
//! or by message (gitleaks), or its file only by artifact index, needs the run's tables: when
//! they come after the results in the document (SARIF does not fix key order), an extra
//! identity pass runs.

mod raw;

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::io::Read;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use self::raw::{
    LogKey, RawArtifact, RawLocation, RawMessage, RawProps, RawResult, RawRule, RawTool, RawVcp,
    RunKey,
};
use super::common::{
    as_u32, non_blank, run_meta_pass, run_passes, ArrayElements, First, FormatPasses, JsonDe,
    NullableArray, PassCtx, Phase, Text,
};
use super::{FormatParser, HeadKeys, HeadValue, OpenFn, ReportFormat, SinkFn};
use crate::ingest::error::IngestError;
use crate::ingest::finding::{
    extract_cves, extract_cwes, first_line_title, one_line_title, NormalizedFinding, ReportMeta,
    Severity,
};
use crate::ingest::fingerprint::{message_key, Identity, IdentityHasher};

/// The SARIF parser.
#[derive(Debug, Clone, Copy, Default)]
pub struct SarifParser;

impl FormatParser for SarifParser {
    fn format(&self) -> ReportFormat {
        ReportFormat::Sarif
    }

    fn claims(&self, keys: &HeadKeys) -> bool {
        let schema = keys
            .str("$schema")
            .is_some_and(|s| s.to_ascii_lowercase().contains("sarif"));
        schema || matches!(keys.get("runs"), Some(HeadValue::Array | HeadValue::Cut))
    }

    /// Reads the first run's tool and version-control provenance, then stops.
    fn read_meta(&self, reader: &mut dyn Read) -> Result<ReportMeta, IngestError> {
        let mut state = SarifState::default();
        run_meta_pass(&mut state, reader)?;
        Ok(state.meta())
    }

    fn parse(
        &self,
        open: &mut OpenFn<'_>,
        sink: &mut SinkFn<'_>,
    ) -> Result<ReportMeta, IngestError> {
        let mut state = SarifState::default();
        run_passes(&mut state, open, sink)?;
        Ok(state.meta())
    }
}

/// A rule, as much of it as findings need.
#[derive(Debug, Default)]
struct RuleInfo {
    id: String,
    title: Option<String>,
    full_description: Option<String>,
    help: Option<String>,
    default_level: Option<String>,
    security_severity: Option<Severity>,
    cwe_ids: Vec<String>,
    cve_ids: Vec<String>,
}

impl RuleInfo {
    fn from_raw(rule: RawRule) -> Self {
        let id = rule.id.0.unwrap_or_default();
        let short = rule.short_description.as_ref().and_then(message_plain);
        let title = non_blank(short)
            .or(non_blank(rule.name.as_deref()))
            .map(one_line_title);
        let mut cwe_ids = Vec::new();
        let mut cve_ids = Vec::new();
        extract_cves(&id, &mut cve_ids);
        let props = rule.properties.unwrap_or_default();
        for tag in props.tags.0.iter().chain(props.cwe.0.iter()) {
            extract_cwes(tag, &mut cwe_ids);
            extract_cves(tag, &mut cve_ids);
        }
        RuleInfo {
            title,
            full_description: rule
                .full_description
                .as_ref()
                .and_then(message_plain)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned),
            help: rule
                .help
                .as_ref()
                .and_then(message_plain)
                .filter(|s| !s.trim().is_empty())
                .map(str::to_owned),
            default_level: rule.default_configuration.and_then(|c| c.level.0),
            security_severity: security_severity(&props),
            cwe_ids,
            cve_ids,
            id,
        }
    }
}

/// What the passes know about one run.
#[derive(Debug, Default)]
struct RunCtx {
    driver_name: Option<String>,
    driver_version: Option<String>,
    /// Rules of the driver (`[0]`) and of each extension (`[1 + i]`).
    components: Vec<Vec<RuleInfo>>,
    rule_by_id: HashMap<String, (usize, usize)>,
    artifacts: Vec<Option<String>>,
    repository_uri: Option<String>,
    /// A result needed the rules before the tool was read (first pass).
    needed_rules_early: bool,
    /// A result needed the artifacts before they were read (first pass).
    needed_artifacts_early: bool,
    tool_seen: bool,
    artifacts_seen: bool,
}

impl RunCtx {
    fn set_tool(&mut self, tool: RawTool) {
        self.tool_seen = true;
        let driver = tool.driver.unwrap_or_default();
        self.driver_name = driver.name.0;
        self.driver_version = driver.version.0.or(driver.semantic_version.0);
        self.components.clear();
        self.rule_by_id.clear();
        let extensions = tool.extensions.unwrap_or_default();
        let rule_lists =
            std::iter::once(driver.rules).chain(extensions.into_iter().map(|e| e.rules));
        for (ci, rules) in rule_lists.enumerate() {
            let rules: Vec<RuleInfo> = rules
                .unwrap_or_default()
                .into_iter()
                .map(RuleInfo::from_raw)
                .collect();
            for (ri, rule) in rules.iter().enumerate() {
                if !rule.id.is_empty() {
                    self.rule_by_id.entry(rule.id.clone()).or_insert((ci, ri));
                }
            }
            self.components.push(rules);
        }
    }

    fn rule(&self, pos: (usize, usize)) -> Option<&RuleInfo> {
        self.components.get(pos.0)?.get(pos.1)
    }

    fn find_id(&self, id: &str) -> Option<(usize, usize)> {
        self.rule_by_id.get(id).copied().or_else(|| {
            // Hierarchical rule ids (`C2001/local-variable`) name sub-rules of `C2001`.
            let (parent, _) = id.split_once('/')?;
            self.rule_by_id.get(parent).copied()
        })
    }

    /// The rule whose id is the longest word-boundary prefix of `message` (gitleaks writes
    /// `AWS Access Key secret detected` for rule `AWS Access Key`).
    fn find_by_message(&self, message: &str) -> Option<(usize, usize)> {
        let text = message.trim_start();
        let mut found = self.rule_by_id.get(text.trim_end()).copied();
        if found.is_some() {
            return found;
        }
        for (i, c) in text.char_indices().take(256) {
            if c.is_whitespace() || matches!(c, ':' | '.' | ',' | ';' | '(' | '-') {
                if let Some(pos) = self.rule_by_id.get(text[..i].trim_end()) {
                    found = Some(*pos);
                }
            }
        }
        found
    }
}

#[derive(Debug, Default)]
struct SarifState {
    runs: Vec<RunCtx>,
    needs_identify: bool,
}

impl SarifState {
    fn meta(&self) -> ReportMeta {
        let first = self.runs.first();
        let mut meta = ReportMeta::new(
            ReportFormat::Sarif,
            first
                .and_then(|r| r.driver_name.clone())
                .unwrap_or_else(|| "sarif".into()),
        );
        meta.scanner_version = first.and_then(|r| r.driver_version.clone());
        if let Some(uri) = self.runs.iter().find_map(|r| r.repository_uri.clone()) {
            meta.target_name = Some(uri);
            meta.target_kind = Some("repository".into());
        }
        meta
    }
}

impl FormatPasses for SarifState {
    const FORMAT: ReportFormat = ReportFormat::Sarif;

    fn pass(&mut self, de: &mut JsonDe<'_>, px: &mut PassCtx<'_>) -> Result<(), serde_json::Error> {
        de.deserialize_map(LogVisitor { st: self, px })
    }

    fn needs_identify_pass(&self) -> bool {
        self.needs_identify
    }
}

struct LogVisitor<'a, 's> {
    st: &'a mut SarifState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> Visitor<'de> for LogVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF log object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut saw_runs = false;
        while let Some(key) = map.next_key::<LogKey>()? {
            match key {
                LogKey::Runs => {
                    saw_runs = true;
                    map.next_value_seed(NullableArray(RunsSeed {
                        st: &mut *self.st,
                        px: &mut *self.px,
                    }))?;
                }
                LogKey::Version => {
                    let Text(version) = map.next_value()?;
                    if let Some(v) = version.filter(|v| !v.starts_with("2.")) {
                        return Err(de::Error::custom(format!(
                            "unsupported SARIF version `{v}` (Rampart reads 2.1.0)"
                        )));
                    }
                }
                LogKey::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        if !saw_runs {
            return Err(de::Error::missing_field("runs"));
        }
        Ok(())
    }
}

struct RunsSeed<'a, 's> {
    st: &'a mut SarifState,
    px: &'a mut PassCtx<'s>,
}

impl<'de> ArrayElements<'de> for RunsSeed<'_, '_> {
    const EXPECTING: &'static str = "an array of runs";

    fn read<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0usize;
        while seq
            .next_element_seed(RunSeed {
                st: &mut *self.st,
                px: &mut *self.px,
                index,
            })?
            .is_some()
        {
            index += 1;
            if self.px.phase() == Phase::Meta {
                return Err(self.px.stop());
            }
        }
        Ok(())
    }
}

struct RunSeed<'a, 's> {
    st: &'a mut SarifState,
    px: &'a mut PassCtx<'s>,
    index: usize,
}

impl<'de> DeserializeSeed<'de> for RunSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RunSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a SARIF run object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let RunSeed { st, px, index } = self;
        if st.runs.len() <= index {
            st.runs.resize_with(index + 1, RunCtx::default);
        }
        while let Some(key) = map.next_key::<RunKey>()? {
            match key {
                RunKey::Tool if px.collects() => {
                    let tool: RawTool = map.next_value()?;
                    let run = &mut st.runs[index];
                    run.set_tool(tool);
                    if run.needed_rules_early {
                        st.needs_identify = true;
                    }
                }
                RunKey::Artifacts if px.phase() == Phase::Collect => {
                    let artifacts: Option<Vec<RawArtifact>> = map.next_value()?;
                    let run = &mut st.runs[index];
                    run.artifacts_seen = true;
                    run.artifacts = artifacts
                        .unwrap_or_default()
                        .into_iter()
                        .map(|a| a.location.and_then(|l| l.uri.0).map(|u| normalize_uri(&u)))
                        .collect();
                    if run.needed_artifacts_early {
                        st.needs_identify = true;
                    }
                }
                RunKey::VersionControlProvenance if px.collects() => {
                    let First(vcp): First<RawVcp> = map.next_value()?;
                    st.runs[index].repository_uri = vcp
                        .and_then(|v| v.repository_uri.0)
                        .filter(|u| !u.trim().is_empty());
                }
                RunKey::Results if px.wants_results() => {
                    map.next_value_seed(NullableArray(ResultsSeed {
                        st: &mut *st,
                        px: &mut *px,
                        index,
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

struct ResultsSeed<'a, 's> {
    st: &'a mut SarifState,
    px: &'a mut PassCtx<'s>,
    index: usize,
}

impl<'de> ArrayElements<'de> for ResultsSeed<'_, '_> {
    const EXPECTING: &'static str = "an array of results";

    fn read<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(result) = seq.next_element::<RawResult>()? {
            on_result(self.st, self.px, self.index, result)?;
        }
        Ok(())
    }
}

/// Whether a result is a finding: `kind` absent or `fail`, not suppressed (a non-empty
/// `suppressions` with any status other than `rejected`), not `baselineState: absent`.
fn is_finding(r: &RawResult) -> bool {
    if r.kind.as_deref().is_some_and(|k| k != "fail") {
        return false;
    }
    if let Some(suppressions) = &r.suppressions {
        if suppressions
            .iter()
            .any(|s| s.status.as_deref() != Some("rejected"))
        {
            return false;
        }
    }
    r.baseline_state.as_deref() != Some("absent")
}

fn on_result<E: de::Error>(
    st: &mut SarifState,
    px: &mut PassCtx<'_>,
    index: usize,
    r: RawResult,
) -> Result<(), E> {
    if !is_finding(&r) {
        return Ok(());
    }
    let Some(run) = st.runs.get_mut(index) else {
        return Ok(());
    };
    let message = r
        .message
        .as_ref()
        .map(message_text)
        .unwrap_or(Cow::Borrowed(""));
    let (rule_id, rule_pos, needed_rules) = resolve_rule(run, &r, &message);
    let location = r.locations.0.as_ref();
    let (path, needed_artifacts) = resolve_path(run, location);
    if px.phase() == Phase::Collect {
        run.needed_rules_early |= needed_rules && !run.tool_seen;
        run.needed_artifacts_early |= needed_artifacts && !run.artifacts_seen;
    }
    let region = location
        .and_then(|l| l.physical_location.as_ref())
        .and_then(|p| p.region.as_ref());
    let line = as_u32(region.and_then(|g| g.start_line));
    let col = as_u32(region.and_then(|g| g.start_column.or(g.char_offset)));
    let (id, always_index) = identity(&rule_id, path.as_deref(), location, &r, &message);
    let Some(slot) = px.place_detailed(&id, || message_key(&message), line, col)? else {
        return Ok(());
    };
    let id = if slot.distinct {
        distinct_identity(&id, &message)
    } else {
        id
    };
    let run = &st.runs[index];
    let rule = rule_pos.and_then(|pos| run.rule(pos));
    let finding = build_finding(
        run,
        rule,
        rule_id,
        path,
        line,
        &r,
        &message,
        id.fingerprint(slot.index, always_index),
        slot.occurrences,
    );
    px.emit(finding)
}

/// The rule id and rule of a result: `ruleId`, `rule.id`, `rule.index`/`ruleIndex` into the
/// run's rules, or the rule whose id starts the message. The flag tells whether the run's rules
/// were needed to know the id.
fn resolve_rule(
    run: &RunCtx,
    r: &RawResult,
    message: &str,
) -> (String, Option<(usize, usize)>, bool) {
    let rule_ref = r.rule.as_ref();
    let component = rule_ref
        .and_then(|x| x.tool_component.as_ref())
        .and_then(|c| c.index)
        .and_then(|i| usize::try_from(i).ok())
        .map_or(0, |i| i.saturating_add(1));
    let index = rule_ref
        .and_then(|x| x.index)
        .or(r.rule_index)
        .and_then(|i| usize::try_from(i).ok());
    let explicit =
        non_blank(r.rule_id.as_deref()).or(non_blank(rule_ref.and_then(|x| x.id.as_deref())));
    if let Some(id) = explicit {
        let by_index = index.map(|i| (component, i)).filter(|&pos| {
            run.rule(pos)
                .is_some_and(|rule| rule.id == id || rule.id.is_empty())
        });
        return (id.to_string(), by_index.or_else(|| run.find_id(id)), false);
    }
    if let Some(i) = index {
        if let Some(rule) = run.rule((component, i)) {
            return (rule.id.clone(), Some((component, i)), true);
        }
        return (String::new(), None, true);
    }
    if !message.trim().is_empty() {
        if let Some(pos) = run.find_by_message(message) {
            let id = run
                .rule(pos)
                .map(|rule| rule.id.clone())
                .unwrap_or_default();
            return (id, Some(pos), true);
        }
        return (String::new(), None, true);
    }
    (String::new(), None, false)
}

/// The artifact path of a location (its `uri`, or the run's artifact at `index`), and whether
/// the run's artifacts were needed.
fn resolve_path(run: &RunCtx, location: Option<&RawLocation>) -> (Option<String>, bool) {
    let Some(artifact) = location
        .and_then(|l| l.physical_location.as_ref())
        .and_then(|p| p.artifact_location.as_ref())
    else {
        return (None, false);
    };
    if let Some(uri) = non_blank(artifact.uri.as_deref()) {
        return (Some(normalize_uri(uri)), false);
    }
    match artifact.index.and_then(|i| usize::try_from(i).ok()) {
        Some(i) => (run.artifacts.get(i).cloned().flatten(), true),
        None => (None, false),
    }
}

/// A repository-relative path from an artifact URI: `file://` scheme and host dropped, a
/// leading `./` dropped, percent-escapes decoded (when they decode to UTF-8).
pub(crate) fn normalize_uri(uri: &str) -> String {
    let mut s = uri.trim();
    if let Some(rest) = s.strip_prefix("file://") {
        s = match rest.find('/') {
            Some(slash) => &rest[slash..],
            None => rest,
        };
    }
    while let Some(rest) = s.strip_prefix("./") {
        s = rest;
    }
    if s.contains('%') {
        if let Some(decoded) = percent_decode(s) {
            return decoded;
        }
    }
    s.to_string()
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The identity of a result (see `docs/fingerprints.md`), and whether its fingerprint always
/// carries the occurrence index (hashed results do; tool fingerprints only when needed).
fn identity(
    rule_id: &str,
    path: Option<&str>,
    location: Option<&RawLocation>,
    r: &RawResult,
    message: &str,
) -> (Identity, bool) {
    let tool_fps = chosen_fingerprints(r.fingerprints.as_ref());
    let tool_fps = if tool_fps.is_empty() {
        chosen_fingerprints(r.partial_fingerprints.as_ref())
    } else {
        tool_fps
    };
    if !tool_fps.is_empty() {
        let mut h = IdentityHasher::new("sarif/fingerprints");
        h.field(rule_id);
        h.opt_field(path);
        for (key, value) in tool_fps {
            h.field(key);
            h.field(value);
        }
        return (h.finish(), false);
    }
    let mut h = IdentityHasher::new("sarif");
    h.field(rule_id);
    h.opt_field(path);
    let logical = location.and_then(|l| l.logical_locations.0.as_ref());
    h.opt_field(logical.and_then(|l| {
        non_blank(l.fully_qualified_name.as_deref()).or(non_blank(l.name.as_deref()))
    }));
    let snippet = location
        .and_then(|l| l.physical_location.as_ref())
        .and_then(|p| p.region.as_ref())
        .and_then(|g| g.snippet.as_ref())
        .and_then(|s| non_blank(s.text.as_deref()));
    match snippet {
        Some(code) => h.normalized_snippet(code),
        None => h.normalized_message(message),
    }
    (h.finish(), true)
}

/// The identity of a result with the identity and position of an earlier result of the report
/// but another message (Bandit's B105 once per compared string on one line): the earlier
/// result's identity and this one's normalized message. The earlier result keeps the plain
/// identity, which all of them had when such results were merged into one finding.
fn distinct_identity(id: &Identity, message: &str) -> Identity {
    let mut h = IdentityHasher::new("sarif/distinct");
    h.identity(id);
    h.normalized_message(message);
    h.finish()
}

/// The fingerprints to use, sorted by name: for each fingerprint name (`name/vN` is version N
/// of `name`), the highest version the result carries.
fn chosen_fingerprints(
    map: Option<&std::collections::BTreeMap<String, Text>>,
) -> Vec<(&str, &str)> {
    let Some(map) = map else {
        return Vec::new();
    };
    let mut best: Vec<(&str, u64, &str, &str)> = Vec::new();
    for (key, value) in map {
        let Some(value) = non_blank(value.as_deref()) else {
            continue;
        };
        let (base, version) = split_version(key);
        match best.iter_mut().find(|(b, ..)| *b == base) {
            Some(entry) if version > entry.1 => *entry = (base, version, key.as_str(), value),
            Some(_) => {}
            None => best.push((base, version, key.as_str(), value)),
        }
    }
    best.sort_unstable_by(|a, b| a.0.cmp(b.0));
    best.into_iter()
        .map(|(_, _, key, value)| (key, value))
        .collect()
}

/// `("name", N)` for `name/vN`; `(key, 0)` otherwise.
fn split_version(key: &str) -> (&str, u64) {
    if let Some((base, version)) = key.rsplit_once("/v") {
        if let Ok(n) = version.parse::<u64>() {
            return (base, n);
        }
    }
    (key, 0)
}

/// A message's text: `text`, else `markdown`, else its `id`; `{N}` placeholders replaced by
/// `arguments[N]`.
fn message_text(m: &RawMessage) -> Cow<'_, str> {
    let raw = m
        .text
        .as_deref()
        .or(m.markdown.as_deref())
        .or(m.id.as_deref())
        .unwrap_or("");
    if m.arguments.0.is_empty() || !raw.contains('{') {
        return Cow::Borrowed(raw);
    }
    let mut out = String::with_capacity(raw.len() + 32);
    let mut rest = raw;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let close = after.find('}');
        let arg = close
            .and_then(|c| after[..c].parse::<usize>().ok())
            .and_then(|n| m.arguments.0.get(n));
        match (close, arg) {
            (Some(c), Some(arg)) => {
                out.push_str(arg);
                rest = &after[c + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Cow::Owned(out)
}

/// Plain text of a rule's description or help: `text`, else `markdown`.
fn message_plain(m: &RawMessage) -> Option<&str> {
    non_blank(m.text.as_deref()).or(non_blank(m.markdown.as_deref()))
}

/// `security-severity` as GitHub maps it (a 0–10 score), or a severity name some tools put
/// there instead (Semgrep: `MEDIUM`).
fn security_severity(props: &RawProps) -> Option<Severity> {
    let text = props.security_severity.as_deref()?.trim();
    match text.parse::<f64>() {
        Ok(score) if score.is_finite() => Some(Severity::from_score(score)),
        _ => Severity::parse_name(text),
    }
}

/// SARIF level → severity: error → high, warning → medium, note → low, none → info.
fn level_severity(level: &str) -> Severity {
    match level.trim() {
        "error" => Severity::High,
        "note" => Severity::Low,
        "none" => Severity::Info,
        _ => Severity::Medium,
    }
}

#[allow(clippy::too_many_arguments)]
fn build_finding(
    run: &RunCtx,
    rule: Option<&RuleInfo>,
    rule_id: String,
    path: Option<String>,
    line: u32,
    r: &RawResult,
    message: &str,
    fingerprint: String,
    occurrences: u32,
) -> NormalizedFinding {
    let result_props = r.properties.as_ref();
    let severity = result_props
        .and_then(security_severity)
        .or(rule.and_then(|x| x.security_severity))
        .unwrap_or_else(|| {
            let level = r
                .level
                .as_deref()
                .or(rule.and_then(|x| x.default_level.as_deref()))
                .unwrap_or("warning");
            level_severity(level)
        });
    let mut cwe_ids = rule.map(|x| x.cwe_ids.clone()).unwrap_or_default();
    let mut cve_ids = rule.map(|x| x.cve_ids.clone()).unwrap_or_default();
    if rule.is_none() {
        extract_cves(&rule_id, &mut cve_ids);
    }
    if let Some(props) = result_props {
        for tag in props.tags.0.iter().chain(props.cwe.0.iter()) {
            extract_cwes(tag, &mut cwe_ids);
            extract_cves(tag, &mut cve_ids);
        }
    }
    let title = rule
        .and_then(|x| x.title.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| first_line_title(message));
    let title = if title.is_empty() {
        one_line_title(if rule_id.is_empty() {
            "SARIF result"
        } else {
            &rule_id
        })
    } else {
        title
    };
    let description = message.trim_end().to_string();
    let rule_description = rule
        .and_then(|x| x.full_description.as_deref())
        .map(|full| full.trim_end().to_string());
    NormalizedFinding {
        fingerprint,
        scanner: run.driver_name.clone().unwrap_or_else(|| "sarif".into()),
        rule_id: if rule_id.is_empty() {
            "unknown-rule".into()
        } else {
            rule_id
        },
        title,
        severity,
        cve_ids,
        cwe_ids,
        location_path: path,
        location_line: (line > 0).then_some(line),
        component: None,
        description,
        rule_description,
        remediation: rule.and_then(|x| x.help.clone()),
        occurrences,
    }
}

#[cfg(test)]
mod tests;
