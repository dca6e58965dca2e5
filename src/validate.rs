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
