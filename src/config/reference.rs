//! The configuration reference of `docs/operations.md`, generated from the flags' own
//! definitions (`rampart config-reference`), so the document cannot drift from the code: a
//! test compares the two.

use clap::{Args, Command};

/// The generated part of `docs/operations.md` lies between these markers.
pub const START: &str = "<!-- config-reference:start -->";
pub const END: &str = "<!-- config-reference:end -->";

/// One table row per `rampart serve` flag: flag, environment variable, default and meaning.
pub fn markdown() -> String {
    let command = super::Config::augment_args(Command::new("serve"));
    let mut out =
        String::from("| Flag | Environment variable | Default | Meaning |\n|---|---|---|---|\n");
    for arg in command.get_arguments() {
        let Some(long) = arg.get_long() else {
            continue;
        };
        let env = arg
            .get_env()
            .map(|e| format!("`{}`", e.to_string_lossy()))
            .unwrap_or_default();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|v| v.to_string_lossy().into_owned())
            .collect();
        let default = if defaults.is_empty() {
            "—".to_string()
        } else {
            format!("`{}`", defaults.join(","))
        };
        let help = arg
            .get_long_help()
            .or_else(|| arg.get_help())
            .map(|h| h.to_string())
            .unwrap_or_default();
        let mut meaning = help.split_whitespace().collect::<Vec<_>>().join(" ");
        if !meaning.is_empty() && !meaning.ends_with('.') {
            meaning.push('.');
        }
        // The values of an enumerated setting, each with its own description.
        let choices: Vec<String> = arg
            .get_possible_values()
            .iter()
            .filter(|v| !v.is_hide_set() && !matches!(v.get_name(), "true" | "false"))
            .map(|v| match v.get_help() {
                Some(help) => format!(
                    "`{}` ({})",
                    v.get_name(),
                    help.to_string().trim_end_matches('.')
                ),
                None => format!("`{}`", v.get_name()),
            })
            .collect();
        if !choices.is_empty() {
            meaning.push_str(&format!(" One of {}.", choices.join(", ")));
        }
        out.push_str(&format!(
            "| `--{long}` | {env} | {default} | {} |\n",
            meaning.replace('|', "\\|")
        ));
    }
    out
}

/// `document` with its generated part replaced by the current [`markdown`].
///
/// # Errors
/// When the document lacks the markers.
pub fn splice(document: &str) -> Result<String, String> {
    let start = document
        .find(START)
        .ok_or_else(|| format!("no {START} marker"))?
        + START.len();
    let end = document
        .find(END)
        .filter(|end| *end >= start)
        .ok_or_else(|| format!("no {END} marker after {START}"))?;
    Ok(format!(
        "{}\n{}{}",
        &document[..start],
        markdown(),
        &document[end..]
    ))
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_flag_has_a_row_with_its_variable() {
        let table = super::markdown();
        assert!(table.contains("| `--bind` | `RAMPART_BIND` | `127.0.0.1:8080` |"));
        assert!(table.contains("| `--metrics-token` | `RAMPART_METRICS_TOKEN` | — |"));
        assert!(table.contains("Log format. One of `pretty` (Human-readable, coloured when a terminal is attached), `json`"));
        let spliced = super::splice(
            "a\n<!-- config-reference:start -->\nold\n<!-- config-reference:end -->\nb",
        )
        .unwrap();
        assert!(spliced.starts_with("a\n<!-- config-reference:start -->\n| Flag"));
        assert!(spliced.ends_with("<!-- config-reference:end -->\nb"));
        assert!(super::splice("no markers").is_err());
    }
}
