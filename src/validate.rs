//! Small input rules shared by several domain modules.

use crate::error::{AppError, AppResult};

/// # Errors
/// `VALIDATION_FAILED` on `field` when empty or longer than `max` characters.
pub fn bounded_text(field: &str, value: &str, max: usize) -> AppResult<String> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(AppError::invalid(field, "must not be empty"));
    }
    if trimmed.chars().count() > max {
        return Err(AppError::invalid(
            field,
            format!("must be at most {max} characters"),
        ));
    }
    Ok(trimmed.to_string())
}

/// A name a person chose for something others will see (a target, an org, an API key, a
/// display name): [`bounded_text`], on one line, written so that what is shown is what is
/// stored. Control characters would break logs and terminals; bidirectional overrides make a
/// name read differently from its bytes ("Trojan Source"); a name of only invisible characters
/// looks empty in every list. Every user-named thing goes through here, on every surface.
///
/// # Errors
/// `VALIDATION_FAILED` on `field`, saying which of these rules the value breaks.
pub fn name(field: &str, value: &str, max: usize) -> AppResult<String> {
    if value.chars().any(char::is_control) {
        return Err(AppError::invalid(
            field,
            "must not contain control characters (such as newlines, tabs or escapes)",
        ));
    }
    if value.chars().any(is_bidi_control) {
        return Err(AppError::invalid(
            field,
            "must not contain bidirectional text controls (U+200E, U+200F, U+202A-U+202E, U+2066-U+2069)",
        ));
    }
    let trimmed = bounded_text(field, value, max)?;
    if trimmed.chars().all(is_invisible) {
        return Err(AppError::invalid(
            field,
            "must contain a visible character, not only spaces or invisible characters",
        ));
    }
    Ok(trimmed)
}

/// Characters that change the direction text is displayed in.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{061C}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Characters that draw nothing: white space, zero-width and other format characters, and the
/// blank fillers some scripts have.
fn is_invisible(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '\u{00AD}'
                | '\u{034F}'
                | '\u{115F}'
                | '\u{1160}'
                | '\u{17B4}'
                | '\u{17B5}'
                | '\u{180B}'..='\u{180F}'
                | '\u{200B}'..='\u{200D}'
                | '\u{2060}'..='\u{2064}'
                | '\u{206A}'..='\u{206F}'
                | '\u{2800}'
                | '\u{3164}'
                | '\u{FE00}'..='\u{FE0F}'
                | '\u{FEFF}'
                | '\u{FFA0}'
                | '\u{FFF9}'..='\u{FFFB}'
                | '\u{E0000}'..='\u{E007F}'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_visible_single_line_text() {
        assert_eq!(name("name", "  prod-eu  ", 10).unwrap(), "prod-eu");
        assert_eq!(name("name", "Zürich 東京", 20).unwrap(), "Zürich 東京");
        // A zero-width joiner inside visible text (emoji sequences) is fine.
        assert!(name("name", "team 👩\u{200D}💻", 20).is_ok());
        for bad in [
            "a\nb",
            "a\tb",
            "\u{1b}[31mred",
            "a\u{7f}",
            "abc\u{202E}txt.exe",
            "\u{2066}x\u{2069}",
            "x\u{200F}",
            "\u{200B}",
            "\u{200B}\u{2060}\u{FEFF}",
            " \u{3000} ",
            "\u{2800}",
            "",
        ] {
            let err = name("name", bad, 100).expect_err(bad);
            assert_eq!(err.code().as_str(), "VALIDATION_FAILED", "{bad:?}");
        }
    }
}
