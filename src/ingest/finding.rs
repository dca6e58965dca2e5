//! The normalized finding every parser produces, its severity scale, the report metadata, and
//! small text helpers shared by the parsers (CWE / CVE extraction, titles).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::formats::ReportFormat;

/// How bad a finding is, on the one scale Rampart uses for every scanner.
///
/// Ordered from least to most severe, so `max()` picks the worst.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    async_graphql::Enum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational: nothing to fix by itself (also SARIF `none`, CycloneDX `none`/`unknown`,
    /// Trivy `UNKNOWN`).
    Info,
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

impl Severity {
    /// Higher is worse; used for ordering in SQL.
    pub fn rank(self) -> i32 {
        self as i32 + 1
    }

    /// The stored spelling parsed, or `VALIDATION_FAILED` on `severity`.
    ///
    /// # Errors
    /// When `value` is not a severity.
    pub fn parse(value: &str) -> crate::error::AppResult<Self> {
        Self::from_str(value)
            .map_err(|e| crate::error::AppError::invalid("severity", e.to_string()))
    }

    /// All severities, most severe first.
    pub const ALL: [Severity; 5] = [
        Severity::Critical,
        Severity::High,
        Severity::Medium,
        Severity::Low,
        Severity::Info,
    ];

    /// The lowercase name (`critical`, `high`, `medium`, `low`, `info`).
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Critical => "critical",
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
            Severity::Info => "info",
        }
    }

    /// Parses a severity name as scanners spell them, case-insensitively: the five names plus
    /// `informational`, `none`, `unknown` (→ info), `moderate` (→ medium), `important` (→ high),
    /// `negligible` (→ low).
    pub fn parse_name(s: &str) -> Option<Severity> {
        let s = s.trim();
        let eq = |name: &str| s.eq_ignore_ascii_case(name);
        if eq("critical") {
            Some(Severity::Critical)
        } else if eq("high") || eq("important") {
            Some(Severity::High)
        } else if eq("medium") || eq("moderate") {
            Some(Severity::Medium)
        } else if eq("low") || eq("negligible") {
            Some(Severity::Low)
        } else if eq("info") || eq("informational") || eq("none") || eq("unknown") {
            Some(Severity::Info)
        } else {
            None
        }
    }

    /// Maps a CVSS-like score (0–10) the way GitHub maps SARIF `security-severity`:
    /// ≥ 9.0 critical, ≥ 7.0 high, ≥ 4.0 medium, > 0 low, else info.
    pub fn from_score(score: f64) -> Severity {
        if score >= 9.0 {
            Severity::Critical
        } else if score >= 7.0 {
            Severity::High
        } else if score >= 4.0 {
            Severity::Medium
        } else if score > 0.0 {
            Severity::Low
        } else {
            Severity::Info
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Error of [`Severity::from_str`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown severity `{0}` (expected critical, high, medium, low or info)")]
pub struct UnknownSeverity(pub String);

impl FromStr for Severity {
    type Err = UnknownSeverity;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Severity::parse_name(s).ok_or_else(|| UnknownSeverity(s.to_owned()))
    }
}

/// One finding as every format normalizes to it: what the pipeline matches, stores and serves.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NormalizedFinding {
    /// Stable identity of the finding within its (target, scanner); see `docs/fingerprints.md`.
    pub fingerprint: String,
    /// The tool that reported it (SARIF `tool.driver.name` of its run, `trivy`, …).
    pub scanner: String,
    /// The rule, check or vulnerability id (SARIF rule id, CVE id, native check id).
    pub rule_id: String,
    /// One line, at most [`TITLE_MAX_CHARS`] characters.
    pub title: String,
    /// Normalized severity.
    pub severity: Severity,
    /// `CVE-YYYY-N…` ids, upper case, de-duplicated, in order of appearance.
    pub cve_ids: Vec<String>,
    /// `CWE-N` ids (no leading zeros), de-duplicated, in order of appearance.
    pub cwe_ids: Vec<String>,
    /// File (or image target) the finding is in, when the format has one.
    pub location_path: Option<String>,
    /// 1-based line in `location_path`, when known. Not part of the fingerprint.
    pub location_line: Option<u32>,
    /// Affected component (package URL or `name@version`), for dependency findings.
    pub component: Option<String>,
    /// What is wrong, as the scanner says it of this result.
    pub description: String,
    /// What the scanner says of the rule itself (SARIF `fullDescription`), shared by all its
    /// results: stored once per rule and shown after `description`
    /// ([`NormalizedFinding::shown_description`]).
    pub rule_description: Option<String>,
    /// How to fix it, when the scanner says.
    pub remediation: Option<String>,
    /// How many results of the report were this same finding (same in every identifying
    /// respect: rule, file, line and content). At least 1.
    pub occurrences: u32,
}

impl NormalizedFinding {
    /// The description readers see: the result's own text, then its rule's when that adds
    /// something.
    pub fn shown_description(&self) -> String {
        shown_description(&self.description, self.rule_description.as_deref())
    }
}

/// A finding's own text joined with its rule's description, as every reader shows it. The
/// schema migration that moved rule texts out of findings joins them the same way.
pub fn shown_description(own: &str, rule: Option<&str>) -> String {
    match rule {
        Some(rule) if rule.trim() != own.trim() => {
            if own.is_empty() {
                rule.to_string()
            } else {
                format!("{own}\n\n{rule}")
            }
        }
        _ => own.to_string(),
    }
}

/// What a report says about itself: which format and scanner, which target, the policy and the
/// score. Filled as far as the format has it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReportMeta {
    /// The format the report was parsed as.
    pub format: ReportFormat,
    /// Scanner name (SARIF first run's driver, CycloneDX tool, `trivy`, native `scanner.name`).
    pub scanner_name: String,
    /// Scanner version, when the report names one.
    pub scanner_version: Option<String>,
    /// Target name inferred from the report (repository URI, image name, cluster name, …).
    pub target_name: Option<String>,
    /// Kind of target: `repository`, `container_image`, `application`, `kafka_cluster`, … .
    pub target_kind: Option<String>,
    /// Policy tier the scan ran under (native reports).
    pub policy_tier: Option<String>,
    /// Compliance score 0–100 (native reports; computed from the checks when not given).
    pub score: Option<f64>,
    /// Checks evaluated (passed + failed; native reports, filled by a full parse).
    pub checks_total: Option<u64>,
    /// Checks passed (native reports, filled by a full parse).
    pub checks_passed: Option<u64>,
    /// Facts about the target the report carries (native `target.metadata`, e.g. a Kafka
    /// cluster's `bootstrap_servers`), stored on the target when the scan completes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_metadata: Option<serde_json::Map<String, serde_json::Value>>,
}

impl ReportMeta {
    /// Empty metadata for `format`, with `scanner_name` as given.
    pub fn new(format: ReportFormat, scanner_name: impl Into<String>) -> Self {
        ReportMeta {
            format,
            scanner_name: scanner_name.into(),
            scanner_version: None,
            target_name: None,
            target_kind: None,
            policy_tier: None,
            score: None,
            checks_total: None,
            checks_passed: None,
            target_metadata: None,
        }
    }
}

/// Longest title kept, in characters.
pub const TITLE_MAX_CHARS: usize = 200;

/// Makes a one-line title: whitespace runs (newlines included) become one space, and text past
/// [`TITLE_MAX_CHARS`] is cut with an ellipsis.
pub(crate) fn one_line_title(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(TITLE_MAX_CHARS + 4));
    let mut chars = 0usize;
    for word in text.split_whitespace() {
        if !out.is_empty() {
            if chars + 1 > TITLE_MAX_CHARS {
                out.push('…');
                return out;
            }
            out.push(' ');
            chars += 1;
        }
        for c in word.chars() {
            if chars >= TITLE_MAX_CHARS {
                out.push('…');
                return out;
            }
            out.push(c);
            chars += 1;
        }
    }
    out
}

/// First line of `text` (trimmed), as a title.
pub(crate) fn first_line_title(text: &str) -> String {
    let line = text.trim().lines().next().unwrap_or("");
    one_line_title(line)
}

/// Pushes `id` into `ids` unless already present.
pub(crate) fn push_unique(ids: &mut Vec<String>, id: String) {
    if !ids.contains(&id) {
        ids.push(id);
    }
}

/// Finds CWE ids in free text: every `cwe-<digits>` (case-insensitive) not preceded by a letter
/// or digit, e.g. `external/cwe/cwe-079` → `CWE-79`, `CWE-346: Origin…` → `CWE-346`.
pub(crate) fn extract_cwes(text: &str, out: &mut Vec<String>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if bytes[i..i + 4].eq_ignore_ascii_case(b"cwe-")
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
        {
            let start = i + 4;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            if end > start {
                if let Some(id) = cwe_from_digits(&text[start..end]) {
                    push_unique(out, id);
                }
                i = end;
                continue;
            }
        }
        i += 1;
    }
}

/// `CWE-<n>` from a digit string, dropping leading zeros; `None` when not a number.
pub(crate) fn cwe_from_digits(digits: &str) -> Option<String> {
    let trimmed = digits.trim_start_matches('0');
    if trimmed.is_empty() || trimmed.len() > 9 || !trimmed.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!("CWE-{trimmed}"))
}

/// Finds CVE ids in free text: `CVE-dddd-dddd…` (case-insensitive, at least 4 digits after the
/// year), not preceded by a letter or digit. Returned upper case.
pub(crate) fn extract_cves(text: &str, out: &mut Vec<String>) {
    let bytes = text.as_bytes();
    let mut i = 0;
    while i + 4 <= bytes.len() {
        if bytes[i..i + 4].eq_ignore_ascii_case(b"cve-")
            && (i == 0 || !bytes[i - 1].is_ascii_alphanumeric())
        {
            let year_start = i + 4;
            let year_end = year_start + 4;
            if year_end < bytes.len()
                && bytes[year_start..year_end].iter().all(u8::is_ascii_digit)
                && bytes[year_end] == b'-'
            {
                let num_start = year_end + 1;
                let mut num_end = num_start;
                while num_end < bytes.len() && bytes[num_end].is_ascii_digit() {
                    num_end += 1;
                }
                if num_end - num_start >= 4 {
                    let id = format!(
                        "CVE-{}-{}",
                        &text[year_start..year_end],
                        &text[num_start..num_end]
                    );
                    push_unique(out, id);
                    i = num_end;
                    continue;
                }
            }
        }
        i += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_names_and_scores() {
        assert_eq!(Severity::parse_name("HIGH"), Some(Severity::High));
        assert_eq!(Severity::parse_name("Unknown"), Some(Severity::Info));
        assert_eq!(Severity::parse_name("bogus"), None);
        assert_eq!(Severity::from_score(9.0), Severity::Critical);
        assert_eq!(Severity::from_score(8.9), Severity::High);
        assert_eq!(Severity::from_score(4.0), Severity::Medium);
        assert_eq!(Severity::from_score(0.1), Severity::Low);
        assert_eq!(Severity::from_score(0.0), Severity::Info);
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
        assert_eq!("medium".parse::<Severity>(), Ok(Severity::Medium));
    }

    #[test]
    fn cwe_and_cve_extraction() {
        let mut cwes = Vec::new();
        extract_cwes("external/cwe/cwe-079", &mut cwes);
        extract_cwes("CWE-346", &mut cwes);
        extract_cwes("CWE-22: Improper Limitation; cwe-79 again", &mut cwes);
        extract_cwes("notcwe-5 cwe- cwe-x", &mut cwes);
        assert_eq!(cwes, vec!["CWE-79", "CWE-346", "CWE-22"]);

        let mut cves = Vec::new();
        extract_cves("python.lang.cve-2021-44228.rule", &mut cves);
        extract_cves(
            "CVE-2016-2781 and cve-2016-2781 and CVE-99-1 XCVE-2020-12345",
            &mut cves,
        );
        assert_eq!(cves, vec!["CVE-2021-44228", "CVE-2016-2781"]);
    }

    #[test]
    fn titles_are_one_line_and_bounded() {
        assert_eq!(one_line_title("  a\n  b\tc "), "a b c");
        let long = "x".repeat(500);
        let t = one_line_title(&long);
        assert_eq!(t.chars().count(), TITLE_MAX_CHARS + 1);
        assert!(t.ends_with('…'));
        assert_eq!(first_line_title("first\nsecond"), "first");
    }
}
