//! The compliance frameworks Rampart ships, as data: one JSON file per framework under
//! `frameworks/`, compiled into the binary. A framework is a list of controls; each control
//! names what maps to it: CWE ids (the weakness a finding's rule names), native check ids (for
//! a scanner's own checks, e.g. KafkaGuard's), or every finding carrying a CVE id (known
//! vulnerabilities). `docs/compliance.md` names the public source of each mapping.

use std::collections::{HashMap, HashSet};
use std::sync::LazyLock;

use serde::Deserialize;

/// The shipped files, in the order `complianceFrameworks` lists them.
const FILES: &[(&str, &str)] = &[
    (
        "owasp-top10-2021.json",
        include_str!("frameworks/owasp-top10-2021.json"),
    ),
    (
        "cwe-top25-2024.json",
        include_str!("frameworks/cwe-top25-2024.json"),
    ),
    (
        "pci-dss-4.0.json",
        include_str!("frameworks/pci-dss-4.0.json"),
    ),
    (
        "nist-800-53-r5.json",
        include_str!("frameworks/nist-800-53-r5.json"),
    ),
    (
        "kafkaguard-baseline-dev.json",
        include_str!("frameworks/kafkaguard-baseline-dev.json"),
    ),
    (
        "kafkaguard-enterprise-default.json",
        include_str!("frameworks/kafkaguard-enterprise-default.json"),
    ),
    (
        "kafkaguard-finance-iso.json",
        include_str!("frameworks/kafkaguard-finance-iso.json"),
    ),
];

/// One framework as shipped.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Framework {
    /// Stable id used in the API (`owasp-top10-2021`).
    pub id: String,
    pub name: String,
    pub version: String,
    pub description: String,
    /// Where the framework is published.
    pub source: String,
    /// How findings map to its controls, and on whose authority.
    pub mapping: String,
    /// For frameworks of native checks: the scanner whose check ids the controls are
    /// (compared case-insensitively with the finding's and the scan's scanner).
    #[serde(default)]
    pub scanner: Option<String>,
    /// For frameworks of native checks: the policy tier whose scans run these checks.
    #[serde(default)]
    pub policy_tier: Option<String>,
    pub controls: Vec<Control>,
}

/// One control (requirement, category, weakness or check) of a framework.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Control {
    /// Unique within the framework.
    pub id: String,
    pub title: String,
    /// Where this control is published.
    pub source: String,
    /// CWE ids (`CWE-79`) whose findings map here.
    #[serde(default)]
    pub cwes: Vec<String>,
    /// Native check ids whose findings map here.
    #[serde(default)]
    pub checks: Vec<String>,
    /// Findings that carry a CVE id map here too.
    #[serde(default)]
    pub known_vulnerabilities: bool,
}

impl Framework {
    /// Whether this framework's controls are native check ids rather than CWE ids.
    pub fn is_native(&self) -> bool {
        self.scanner.is_some()
    }

    /// Indices of the controls a finding with these CWE ids (and CVE ids or not) maps to,
    /// each once.
    pub fn controls_for_cwes<'a>(
        &self,
        cwes: impl IntoIterator<Item = &'a str>,
        has_cve: bool,
    ) -> Vec<usize> {
        let cwes: HashSet<&str> = cwes.into_iter().collect();
        self.controls
            .iter()
            .enumerate()
            .filter(|(_, c)| {
                (has_cve && c.known_vulnerabilities)
                    || c.cwes.iter().any(|id| cwes.contains(id.as_str()))
            })
            .map(|(i, _)| i)
            .collect()
    }

    /// Indices of the controls a native check id maps to.
    pub fn controls_for_check(&self, check: &str) -> Vec<usize> {
        self.controls
            .iter()
            .enumerate()
            .filter(|(_, c)| c.checks.iter().any(|id| id == check))
            .map(|(i, _)| i)
            .collect()
    }

    /// Every native check id of the framework.
    pub fn check_ids(&self) -> Vec<&str> {
        self.controls
            .iter()
            .flat_map(|c| c.checks.iter().map(String::as_str))
            .collect()
    }
}

static FRAMEWORKS: LazyLock<Vec<Framework>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, text)| {
            // The unit tests below parse and check every shipped file, so this cannot fail in
            // a built binary.
            serde_json::from_str(text)
                .unwrap_or_else(|e| panic!("shipped framework {name} does not parse: {e}"))
        })
        .collect()
});

/// Every shipped framework, in listing order.
pub fn all() -> &'static [Framework] {
    &FRAMEWORKS
}

/// The framework with this id.
pub fn find(id: &str) -> Option<&'static Framework> {
    all().iter().find(|f| f.id == id)
}

/// For native checks: which check ids the scans of each policy tier of `scanner` run, from
/// the frameworks that describe the tiers.
pub fn tier_checks(scanner: &str) -> HashMap<&'static str, HashSet<&'static str>> {
    all()
        .iter()
        .filter(|f| {
            f.scanner
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(scanner))
        })
        .filter_map(|f| {
            Some((
                f.policy_tier.as_deref()?,
                f.check_ids().into_iter().collect(),
            ))
        })
        .collect()
}

/// The problems of one framework's data, empty when it is well-formed.
#[cfg(test)]
fn problems(f: &Framework) -> Vec<String> {
    let mut out = Vec::new();
    let is_cwe = |s: &str| {
        s.strip_prefix("CWE-").is_some_and(|d| {
            !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit()) && !d.starts_with('0')
        })
    };
    let is_url = |s: &str| s.starts_with("https://") && s.len() > "https://".len() + 3;
    if f.id.is_empty()
        || !f
            .id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
    {
        out.push(format!(
            "{}: id must be lowercase letters, digits, - and .",
            f.id
        ));
    }
    if !is_url(&f.source) {
        out.push(format!("{}: framework source is not an https URL", f.id));
    }
    if f.mapping.trim().is_empty() || f.description.trim().is_empty() {
        out.push(format!("{}: mapping and description are required", f.id));
    }
    if f.scanner.is_some() != f.policy_tier.is_some() {
        out.push(format!("{}: scanner and policy_tier go together", f.id));
    }
    if f.controls.is_empty() {
        out.push(format!("{}: no controls", f.id));
    }
    let mut seen = HashSet::new();
    for c in &f.controls {
        if !seen.insert(c.id.as_str()) {
            out.push(format!("{}: duplicate control id {}", f.id, c.id));
        }
        if !is_url(&c.source) {
            out.push(format!(
                "{} {}: control source is not an https URL",
                f.id, c.id
            ));
        }
        if c.title.trim().is_empty() {
            out.push(format!("{} {}: no title", f.id, c.id));
        }
        for cwe in &c.cwes {
            if !is_cwe(cwe) {
                out.push(format!("{} {}: malformed CWE id {cwe:?}", f.id, c.id));
            }
        }
        let mut own = HashSet::new();
        for id in c.cwes.iter().chain(&c.checks) {
            if !own.insert(id) {
                out.push(format!("{} {}: {id} listed twice", f.id, c.id));
            }
        }
        let maps_something = !c.cwes.is_empty() || !c.checks.is_empty() || c.known_vulnerabilities;
        if !maps_something {
            out.push(format!("{} {}: maps nothing", f.id, c.id));
        }
        if f.is_native() && (!c.cwes.is_empty() || c.known_vulnerabilities) {
            out.push(format!(
                "{} {}: a native framework maps check ids only",
                f.id, c.id
            ));
        }
        if !f.is_native() && !c.checks.is_empty() {
            out.push(format!("{} {}: check ids need a scanner", f.id, c.id));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_framework_is_well_formed() {
        assert_eq!(all().len(), FILES.len());
        let mut ids = HashSet::new();
        for f in all() {
            assert!(ids.insert(f.id.as_str()), "duplicate framework {}", f.id);
            let problems = problems(f);
            assert!(problems.is_empty(), "{problems:#?}");
        }
    }

    #[test]
    fn the_checker_catches_what_it_should() {
        let mut f = find("owasp-top10-2021").unwrap().clone();
        assert!(problems(&f).is_empty());
        f.controls[0].cwes.push("CWE-079".into());
        f.controls[1].cwes.push("cwe-89".into());
        f.controls[2].source = String::new();
        f.controls[3].id = f.controls[4].id.clone();
        let found = problems(&f).join("\n");
        for expected in [
            "malformed CWE id \"CWE-079\"",
            "malformed CWE id \"cwe-89\"",
            "control source is not an https URL",
            "duplicate control id A05:2021",
        ] {
            assert!(found.contains(expected), "{expected} in {found}");
        }
    }

    #[test]
    fn framework_sizes_are_those_of_the_public_lists() {
        let sizes: Vec<(&str, usize)> = all()
            .iter()
            .map(|f| (f.id.as_str(), f.controls.len()))
            .collect();
        assert_eq!(
            sizes,
            [
                ("owasp-top10-2021", 10),
                ("cwe-top25-2024", 25),
                ("pci-dss-4.0", 6),
                ("nist-800-53-r5", 18),
                ("kafkaguard-baseline-dev", 31),
                ("kafkaguard-enterprise-default", 46),
                ("kafkaguard-finance-iso", 56),
            ]
        );
        // OWASP's published counts of mapped CWEs per category.
        let owasp: Vec<usize> = find("owasp-top10-2021")
            .unwrap()
            .controls
            .iter()
            .map(|c| c.cwes.len())
            .collect();
        assert_eq!(owasp, [34, 29, 33, 40, 20, 3, 22, 10, 4, 1]);
    }

    #[test]
    fn owasp_puts_each_cwe_in_one_category() {
        let f = find("owasp-top10-2021").unwrap();
        let mut seen = HashMap::new();
        for c in &f.controls {
            for cwe in &c.cwes {
                assert!(
                    seen.insert(cwe.as_str(), c.id.as_str()).is_none(),
                    "{cwe} twice"
                );
            }
        }
    }

    #[test]
    fn cwes_map_to_controls() {
        let owasp = find("owasp-top10-2021").unwrap();
        let ids = |v: Vec<usize>| -> Vec<&str> {
            v.into_iter()
                .map(|i| owasp.controls[i].id.as_str())
                .collect()
        };
        assert_eq!(
            ids(owasp.controls_for_cwes(["CWE-89"], false)),
            ["A03:2021"]
        );
        assert_eq!(
            ids(owasp.controls_for_cwes(["CWE-79", "CWE-89", "CWE-22"], false)),
            ["A01:2021", "A03:2021"]
        );
        assert_eq!(ids(owasp.controls_for_cwes([], true)), ["A06:2021"]);
        assert!(owasp.controls_for_cwes(["CWE-999999"], false).is_empty());
        let top25 = find("cwe-top25-2024").unwrap();
        assert_eq!(top25.controls[0].id, "CWE-79");
        assert_eq!(top25.controls[24].id, "CWE-306");
    }

    #[test]
    fn kafkaguard_tiers_nest() {
        let tiers = tier_checks("KafkaGuard");
        assert_eq!(tiers.len(), 3);
        let (base, ent, fin) = (
            &tiers["baseline-dev"],
            &tiers["enterprise-default"],
            &tiers["finance-iso"],
        );
        assert!(base.is_subset(ent) && ent.is_subset(fin));
        assert!(!base.contains("KG-001") && ent.contains("KG-001") && ent.contains("KG-015"));
        assert!(!ent.contains("KG-016") && fin.contains("KG-025"));
        assert!(base.contains("KG-052") && base.contains("KG-056"));
        let kg = find("kafkaguard-finance-iso").unwrap();
        assert_eq!(kg.controls_for_check("KG-014").len(), 1);
        assert!(kg.controls_for_check("KG-999").is_empty());
    }
}
