//! The service error: stable codes, mapped once to the REST envelope (here) and to GraphQL
//! `extensions` (by the GraphQL layer through [`AppError::code`] and [`AppError::status`]).

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;

/// Result of service and HTTP code.
pub type AppResult<T> = Result<T, AppError>;

/// A field that failed validation, reported in `details`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The offending field, as the client spelled it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// The contract's error codes. The string form is the wire form.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ErrorCode {
    BadRequest,
    ValidationFailed,
    Unauthenticated,
    Forbidden,
    SessionRequired,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    UnsupportedFormat,
    RateLimited,
    ServiceUnavailable,
    Internal,
}

impl ErrorCode {
    /// The HTTP status every surface answers with for this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden | Self::SessionRequired => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict => StatusCode::CONFLICT,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedFormat => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::RateLimited => StatusCode::TOO_MANY_REQUESTS,
            Self::ServiceUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The code that best describes a bare HTTP status (for errors raised below our handlers,
    /// such as body-limit or extractor rejections).
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            401 => Self::Unauthenticated,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedFormat,
            422 => Self::ValidationFailed,
            429 => Self::RateLimited,
            503 => Self::ServiceUnavailable,
            400..=499 => Self::BadRequest,
            _ => Self::Internal,
        }
    }

    /// The wire spelling, e.g. `NOT_FOUND`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "BAD_REQUEST",
            Self::ValidationFailed => "VALIDATION_FAILED",
            Self::Unauthenticated => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::SessionRequired => "SESSION_REQUIRED",
            Self::NotFound => "NOT_FOUND",
            Self::MethodNotAllowed => "METHOD_NOT_ALLOWED",
            Self::Conflict => "CONFLICT",
            Self::PayloadTooLarge => "PAYLOAD_TOO_LARGE",
            Self::UnsupportedFormat => "UNSUPPORTED_FORMAT",
            Self::RateLimited => "RATE_LIMITED",
            Self::ServiceUnavailable => "SERVICE_UNAVAILABLE",
            Self::Internal => "INTERNAL",
        }
    }
}

/// An error a client may see (its message is safe to show), or an internal one whose cause is
/// logged and masked.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{message}")]
    Client {
        code: ErrorCode,
        message: String,
        details: Vec<FieldError>,
    },
    #[error("internal error: {0:#}")]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    fn client(code: ErrorCode, message: impl Into<String>) -> Self {
        Self::Client {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// `what` does not exist, or belongs to another org (indistinguishable on purpose).
    pub fn not_found(what: &str) -> Self {
        Self::client(ErrorCode::NotFound, format!("{what} not found"))
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::BadRequest, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::Conflict, message)
    }

    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::Unauthenticated, message)
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::Forbidden, message)
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::ServiceUnavailable, message)
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::PayloadTooLarge, message)
    }

    pub fn method_not_allowed() -> Self {
        Self::client(ErrorCode::MethodNotAllowed, "method not allowed on this path")
    }

    /// Input that parsed but broke a rule; each field says why.
    pub fn validation(details: Vec<FieldError>) -> Self {
        let message = match details.as_slice() {
            [one] => format!("{}: {}", one.field, one.message),
            _ => "validation failed".to_string(),
        };
        Self::Client {
            code: ErrorCode::ValidationFailed,
            message,
            details,
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Client { code, .. } => *code,
            Self::Internal(_) => ErrorCode::Internal,
        }
    }

    pub fn status(&self) -> StatusCode {
        self.code().status()
    }

    /// The message a client may see: internal causes are never shown.
    pub fn public_message(&self) -> String {
        match self {
            Self::Client { message, .. } => message.clone(),
            Self::Internal(_) => "internal server error".to_string(),
        }
    }

    pub fn details(&self) -> &[FieldError] {
        match self {
            Self::Client { details, .. } => details,
            Self::Internal(_) => &[],
        }
    }

    /// The contract's envelope for this error.
    pub fn envelope(&self) -> ErrorEnvelope {
        ErrorEnvelope {
            error: self.public_message(),
            status_code: self.status().as_u16(),
            code: self.code(),
            details: (!self.details().is_empty()).then(|| self.details().to_vec()),
        }
    }
}

impl From<sea_orm::DbErr> for AppError {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Internal(anyhow::Error::new(err).context("database"))
    }
}

/// `{"error", "statusCode", "code", "details"}`: the body of every error answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ErrorEnvelope {
    /// What went wrong, for people.
    pub error: String,
    /// The HTTP status, repeated for clients that only see the body.
    #[serde(rename = "statusCode")]
    pub status_code: u16,
    /// Stable machine-readable code.
    pub code: ErrorCode,
    /// Per-field problems, only for validation errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<Vec<FieldError>>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        if let Self::Internal(cause) = &self {
            // The request id is on the enclosing span, so this line can be matched to the request.
            tracing::error!(error = format!("{cause:#}"), "internal error");
        }
        (self.status(), Json(self.envelope())).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_are_masked() {
        let err = AppError::Internal(anyhow::anyhow!("password=hunter2 leaked"));
        let env = serde_json::to_value(err.envelope()).unwrap();
        assert_eq!(env["error"], "internal server error");
        assert_eq!(env["code"], "INTERNAL");
        assert_eq!(env["statusCode"], 500);
        assert!(env.get("details").is_none());
    }

    #[test]
    fn validation_lists_fields() {
        let err = AppError::validation(vec![FieldError {
            field: "email".into(),
            message: "is not an email address".into(),
        }]);
        let env = serde_json::to_value(err.envelope()).unwrap();
        assert_eq!(env["statusCode"], 422);
        assert_eq!(env["details"][0]["field"], "email");
    }
}
