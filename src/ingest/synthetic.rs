//! Synthetic reports with known content, for tests, benchmarks and demo data: the project makes
//! its own fixtures rather than shipping files.

use std::io::{self, Write};

/// One SARIF result to generate.
#[derive(Clone, Debug)]
pub struct SyntheticResult {
    pub rule: String,
    pub path: String,
    pub line: u32,
    pub snippet: String,
    /// `error`, `warning` or `note`.
    pub level: &'static str,
}

impl SyntheticResult {
    /// The `n`th of a family of distinct results spread over rules and files.
    pub fn numbered(n: u64) -> Self {
        Self {
            rule: format!("rampart.synthetic.rule-{}", n % 50),
            path: format!("src/module_{}/file_{}.py", n % 97, n % 1009),
            line: (n % 5000) as u32 + 1,
            snippet: format!("value_{n} = compute(request.args['q{n}'])"),
            level: ["error", "warning", "note"][(n % 3) as usize],
        }
    }
}

/// Writes a SARIF 2.1.0 log of one run of `tool` with `results`, streaming.
///
/// # Errors
/// When writing fails.
pub fn write_sarif(
    out: &mut impl Write,
    tool: &str,
    results: impl IntoIterator<Item = SyntheticResult>,
) -> io::Result<()> {
    let esc = |s: &str| serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into());
    write!(
        out,
        r#"{{"$schema":"https://json.schemastore.org/sarif-2.1.0.json","version":"2.1.0","runs":[{{"tool":{{"driver":{{"name":{},"version":"1.0.0","rules":["#,
        esc(tool)
    )?;
    for n in 0..50 {
        if n > 0 {
            out.write_all(b",")?;
        }
        write!(
            out,
            r#"{{"id":"rampart.synthetic.rule-{n}","shortDescription":{{"text":"Synthetic rule {n}"}},"help":{{"text":"Fix rule {n}"}},"properties":{{"tags":["security","external/cwe/cwe-{}"]}}}}"#,
            79 + n
        )?;
    }
    out.write_all(br#"]}},"results":["#)?;
    for (i, r) in results.into_iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(
            out,
            r#"{{"ruleId":{},"level":"{}","message":{{"text":{}}},"locations":[{{"physicalLocation":{{"artifactLocation":{{"uri":{}}},"region":{{"startLine":{},"snippet":{{"text":{}}}}}}}}}]}}"#,
            esc(&r.rule),
            r.level,
            esc(&format!("Synthetic finding for {}", r.rule)),
            esc(&r.path),
            r.line,
            esc(&r.snippet)
        )?;
    }
    out.write_all(b"]}]}")?;
    Ok(())
}

/// A SARIF log in memory (for small tests).
pub fn sarif(tool: &str, results: impl IntoIterator<Item = SyntheticResult>) -> Vec<u8> {
    let mut out = Vec::new();
    write_sarif(&mut out, tool, results).expect("writing to memory");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sarif_parses_into_its_results() {
        let log = sarif("synth", (0..120).map(SyntheticResult::numbered));
        assert_eq!(
            super::super::detect(&log),
            Some(super::super::ReportFormat::Sarif)
        );
        let mut found = Vec::new();
        let mut open = || -> io::Result<Box<dyn io::Read + Send>> {
            Ok(Box::new(io::Cursor::new(log.clone())))
        };
        let meta = super::super::parse_report(None, &mut open, &mut |f| {
            found.push(f);
            Ok(())
        })
        .unwrap();
        assert_eq!(meta.scanner_name, "synth");
        assert_eq!(found.len(), 120);
    }
}
