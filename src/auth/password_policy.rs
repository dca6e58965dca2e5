//! The password policy, applied everywhere a password is set (sign-up with an invitation, the
//! bootstrap administrator, changing and resetting one): at least [`MIN_LEN`] characters, not
//! one of the common passwords bundled with Rampart, not the account's email or its local part.

use std::collections::HashSet;
use std::sync::OnceLock;

use crate::error::{AppError, AppResult};

/// Shortest password accepted, in characters.
pub const MIN_LEN: usize = 12;
/// Longest password accepted, in bytes (caps hashing cost per request).
pub const MAX_LEN: usize = 1024;

/// Our own list (see the file's header); lowercased, one per line.
const COMMON: &str = include_str!("common_passwords.txt");

fn common() -> &'static HashSet<&'static str> {
    static SET: OnceLock<HashSet<&'static str>> = OnceLock::new();
    SET.get_or_init(|| {
        COMMON
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with('#'))
            .collect()
    })
}

/// Checks `password` for the account `email` (already normalised or not: compared lowercased).
///
/// # Errors
/// `VALIDATION_FAILED` naming `field`, saying which rule failed.
pub fn check(field: &str, password: &str, email: &str) -> AppResult<()> {
    if password.chars().count() < MIN_LEN {
        return Err(AppError::invalid(
            field,
            format!("must be at least {MIN_LEN} characters"),
        ));
    }
    if password.len() > MAX_LEN {
        return Err(AppError::invalid(
            field,
            format!("must be at most {MAX_LEN} bytes"),
        ));
    }
    let lowered = password.trim().to_lowercase();
    if common().contains(lowered.as_str()) {
        return Err(AppError::invalid(
            field,
            "is one of the most common passwords; choose another",
        ));
    }
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if lowered == email || (!local.is_empty() && lowered == local) {
        return Err(AppError::invalid(
            field,
            "must not be the account's email address or its name part",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn length_bounds() {
        assert!(check("p", "eleven-char", "a@b.test").is_err());
        assert!(check("p", "twelve-chars", "a@b.test").is_ok());
        assert!(check("p", &"x".repeat(MAX_LEN + 1), "a@b.test").is_err());
    }

    #[test]
    fn common_passwords_are_refused_whatever_their_case() {
        assert!(check("p", "Password1234", "a@b.test").is_err());
        assert!(check("p", "QWERTY123456", "a@b.test").is_err());
        assert!(common().len() > 50);
        assert!(common().iter().all(|p| p.chars().count() >= MIN_LEN));
    }

    #[test]
    fn the_email_and_its_local_part_are_refused() {
        let err = check(
            "p",
            "Alice.Longname@Example.test",
            "alice.longname@example.test",
        );
        assert!(err.is_err());
        assert!(check("p", "alice.longname", "alice.longname@example.test").is_err());
        assert!(check("p", "alice.longname!", "alice.longname@example.test").is_ok());
    }
}
