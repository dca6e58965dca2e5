//! Engines: external scanners Rampart runs itself (triggered scans), and everything around a
//! run — where the code comes from ([`sources`]), the process ([`process`]), the queued job
//! ([`job`]), and the API that starts them ([`service`], [`graphql`], [`rest`]).
//!
//! Adding an engine is one module here with an [`Engine`] (how to invoke it, which exit codes
//! mean success, which ingest format reads its output) and its line in [`ALL`].

pub mod bandit;
pub mod checkov;
pub mod detect_secrets;
pub mod graphql;
pub mod job;
pub mod prepare;
pub mod process;
pub mod registry;
pub mod rest;
pub mod schedules;
pub mod semgrep;
pub mod service;
pub mod sources;

use std::ffi::OsString;
use std::path::Path;

use crate::ingest::ReportFormat;

pub use registry::{EngineInfo, EngineStatus, Registry};

/// Every engine Rampart knows, in the order they are listed.
pub const ALL: [&dyn Engine; 4] = [
    &bandit::Bandit,
    &semgrep::Semgrep,
    &checkov::Checkov,
    &detect_secrets::DetectSecrets,
];

/// The engine of this name.
pub fn by_name(name: &str) -> Option<&'static dyn Engine> {
    ALL.into_iter()
        .find(|e| e.name().eq_ignore_ascii_case(name.trim()))
}

/// What a scan run gives an engine.
pub struct Invocation<'a> {
    /// Where the files this engine ships ([`Engine::files`]) were written, outside the source,
    /// relative to the working directory (`..`): a relative path keeps absolute scratch paths
    /// out of what engines derive from it (Semgrep prefixes rule ids with the rules file's
    /// directories).
    pub assets: &'a Path,
}

/// One external scanner: how to find it, run it and read what it writes.
///
/// Every engine runs with a copy of the source as its working directory and scans `.`, so the
/// paths in its report (and so the fingerprints) do not depend on where the source was put.
pub trait Engine: Sync {
    /// The name clients use (`bandit`); lowercase.
    fn name(&self) -> &'static str;

    /// What it finds, for people choosing engines.
    fn description(&self) -> &'static str;

    /// The executable looked up on the PATH (or configured with `RAMPART_ENGINE_PATHS`).
    fn program(&self) -> &'static str;

    /// Arguments that make it print its version.
    fn version_args(&self) -> &'static [&'static str] {
        &["--version"]
    }

    /// The version in what [`Self::version_args`] printed.
    fn parse_version(&self, output: &str) -> Option<String> {
        first_version(output)
    }

    /// Files written beside the run (rules, configuration), by name and content.
    fn files(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Where the engine writes its report, relative to the run directory (the working
    /// directory's parent); `None` when it prints it on standard output.
    fn report_file(&self) -> Option<&'static str> {
        None
    }

    /// Arguments of a scan of `.`, writing the report to standard output or
    /// [`Self::report_file`].
    fn scan_args(&self, invocation: &Invocation<'_>) -> Vec<OsString>;

    /// Environment variables the run needs besides the minimal one every engine gets.
    fn env(&self) -> &'static [(&'static str, &'static str)] {
        &[]
    }

    /// Whether an exit code means the scan ran (many scanners exit 1 when they found
    /// something).
    fn succeeded(&self, code: i32) -> bool {
        code == 0
    }

    /// The ingest format its report is read with.
    fn report_format(&self) -> ReportFormat;
}

/// The first word of `output` that looks like a version (`1.9.4`, `v3.2.1`).
pub fn first_version(output: &str) -> Option<String> {
    output
        .split(|c: char| c.is_whitespace() || c == ',' || c == '(' || c == ')')
        .map(|w| w.trim_start_matches('v'))
        .find(|w| {
            w.starts_with(|c: char| c.is_ascii_digit())
                && w.contains('.')
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-+".contains(c))
        })
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_what_engines_print() {
        let bandit = "bandit 1.9.4\n  python version = 3.11.7 (main, May  9 2026) [GCC 12.2.0]";
        assert_eq!(first_version(bandit).as_deref(), Some("1.9.4"));
        assert_eq!(first_version("1.185.0\n").as_deref(), Some("1.185.0"));
        assert_eq!(first_version("v3.3.30").as_deref(), Some("3.3.30"));
        assert_eq!(first_version("no version here"), None);
    }

    #[test]
    fn engines_have_distinct_lowercase_names() {
        let names: std::collections::HashSet<_> = ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), ALL.len());
        for engine in ALL {
            assert_eq!(engine.name(), engine.name().to_ascii_lowercase());
            assert_eq!(by_name(engine.name()).unwrap().name(), engine.name());
        }
        assert!(by_name("nmap").is_none());
    }
}
