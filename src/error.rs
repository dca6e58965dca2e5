//! The service error: stable codes, mapped once to the REST envelope (here) and to GraphQL
//! `extensions` (by the GraphQL layer through [`AppError::code`] and [`AppError::status`]).

use async_graphql::ErrorExtensions;
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
    /// The password is right but an admin required a new one: set it (`renewPassword`).
    PasswordResetRequired,
    /// An admin of an org that requires MFA has not enabled it yet: only enrolment is open.
    MfaRequired,
}

impl ErrorCode {
    /// The HTTP status every surface answers with for this code.
    pub fn status(self) -> StatusCode {
        match self {
            Self::BadRequest => StatusCode::BAD_REQUEST,
            Self::ValidationFailed => StatusCode::UNPROCESSABLE_ENTITY,
            Self::Unauthenticated => StatusCode::UNAUTHORIZED,
            Self::Forbidden
            | Self::SessionRequired
            | Self::PasswordResetRequired
            | Self::MfaRequired => StatusCode::FORBIDDEN,
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
            Self::PasswordResetRequired => "PASSWORD_RESET_REQUIRED",
            Self::MfaRequired => "MFA_REQUIRED",
        }
    }
}

/// An error a client may see (its message is safe to show), or an internal one whose cause is
/// logged and masked.
///
/// Deliberately not `Display`: that keeps async-graphql's blanket `From<impl Display>` away, so
/// `?` in a resolver goes through [`From<AppError> for async_graphql::Error`], which carries the
/// code into `extensions`.
#[derive(Debug)]
pub enum AppError {
    Client {
        code: ErrorCode,
        message: String,
        details: Vec<FieldError>,
    },
    /// Too many requests; retry after this many seconds.
    RateLimited {
        retry_after: u64,
    },
    /// A backend the request needs cannot be reached; the cause is logged, never shown.
    Unavailable {
        backend: Backend,
        cause: anyhow::Error,
    },
    Internal(anyhow::Error),
}

/// A backend a request may depend on, as 503 answers name it: never its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Database,
    ObjectStore,
    EventBus,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Self::Database => "database",
            Self::ObjectStore => "object store",
            Self::EventBus => "event bus",
        }
    }
}

/// What `Retry-After` says when a backend is unavailable: outages worth answering 503 for are
/// restarts and fail-overs, seconds long.
pub const UNAVAILABLE_RETRY_AFTER_SECS: u64 = 2;

impl From<anyhow::Error> for AppError {
    /// Internal, unless a database error in its chain says the database cannot be reached.
    fn from(err: anyhow::Error) -> Self {
        let unreachable = err.chain().any(|cause| {
            cause
                .downcast_ref::<sea_orm::DbErr>()
                .is_some_and(database_unreachable)
                || cause
                    .downcast_ref::<sea_orm::sqlx::Error>()
                    .is_some_and(sqlx_unreachable)
        });
        if unreachable {
            Self::backend_unavailable(Backend::Database, err)
        } else {
            Self::Internal(err)
        }
    }
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

    /// `backend` failed or cannot be reached: 503 with `Retry-After`, naming the backend only.
    pub fn backend_unavailable(backend: Backend, cause: impl Into<anyhow::Error>) -> Self {
        Self::Unavailable {
            backend,
            cause: cause.into(),
        }
    }

    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::client(ErrorCode::PayloadTooLarge, message)
    }

    pub fn method_not_allowed() -> Self {
        Self::client(
            ErrorCode::MethodNotAllowed,
            "method not allowed on this path",
        )
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

    pub fn rate_limited(retry_after: u64) -> Self {
        Self::RateLimited { retry_after }
    }

    /// The sign-in was right, but the account must choose a new password first.
    pub fn password_reset_required() -> Self {
        Self::client(
            ErrorCode::PasswordResetRequired,
            "an administrator requires a new password: set one with renewPassword (POST /api/v1/auth/password/renew)",
        )
    }

    pub fn session_required() -> Self {
        Self::client(
            ErrorCode::SessionRequired,
            "this action needs a signed-in session; API keys cannot perform it",
        )
    }

    /// The org requires MFA of admins and this one has not enabled it: every operation but
    /// MFA enrolment is refused until they do.
    pub fn mfa_required() -> Self {
        Self::client(
            ErrorCode::MfaRequired,
            "this organization requires MFA for admins: enable it (enrolMfa, then confirmMfa) before anything else",
        )
    }

    /// A single invalid field.
    pub fn invalid(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError {
            field: field.to_string(),
            message: message.into(),
        }])
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::Client { code, .. } => *code,
            Self::RateLimited { .. } => ErrorCode::RateLimited,
            Self::Unavailable { .. } => ErrorCode::ServiceUnavailable,
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
            Self::RateLimited { retry_after } => {
                format!("too many requests; retry in {retry_after} s")
            }
            Self::Unavailable { backend, .. } => {
                format!("the {} is unavailable; retry later", backend.name())
            }
            Self::Internal(_) => "internal server error".to_string(),
        }
    }

    pub fn details(&self) -> &[FieldError] {
        match self {
            Self::Client { details, .. } => details,
            _ => &[],
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
        if database_unreachable(&err) {
            return Self::backend_unavailable(Backend::Database, err);
        }
        Self::Internal(anyhow::Error::new(err).context("database"))
    }
}

/// Whether a database error means the database cannot be reached (down, restarting, refusing
/// connections, the connection lost), as opposed to a statement that failed: the one place
/// that tells an outage (503) from a fault (500).
pub fn database_unreachable(err: &sea_orm::DbErr) -> bool {
    use sea_orm::{DbErr, RuntimeErr};
    match err {
        // No connection could be had from the pool in time, or none could be opened.
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            sqlx_unreachable(e)
        }
        _ => false,
    }
}

fn sqlx_unreachable(err: &sea_orm::sqlx::Error) -> bool {
    use sea_orm::sqlx::Error;
    match err {
        Error::Io(_) | Error::Tls(_) | Error::PoolTimedOut | Error::PoolClosed => true,
        Error::WorkerCrashed => true,
        // PostgreSQL: connection exceptions (class 08), the server shutting down or starting
        // up, or out of connection slots.
        Error::Database(db) => db.code().is_some_and(|code| {
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03" | "53300")
        }),
        _ => false,
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

impl AppError {
    /// Logs an internal cause once, where it is turned into an answer. The request id is on the
    /// enclosing span, so the line can be matched to the request.
    fn log_if_internal(&self) {
        match self {
            Self::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
            }
            Self::Unavailable { backend, cause } => {
                tracing::warn!(
                    backend = backend.name(),
                    error = format!("{cause:#}"),
                    "backend unavailable"
                );
            }
            _ => {}
        }
    }

    /// Seconds the client should wait before trying again, for errors that ask it to.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            Self::RateLimited { retry_after } => Some(*retry_after),
            Self::Unavailable { .. } => Some(UNAVAILABLE_RETRY_AFTER_SECS),
            Self::Client { code, .. } if *code == ErrorCode::ServiceUnavailable => {
                Some(UNAVAILABLE_RETRY_AFTER_SECS)
            }
            _ => None,
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        self.log_if_internal();
        let mut res = (self.status(), Json(self.envelope())).into_response();
        if let Some(retry_after) = self.retry_after() {
            res.headers_mut()
                .insert(axum::http::header::RETRY_AFTER, retry_after.into());
        }
        res
    }
}

impl From<AppError> for async_graphql::Error {
    fn from(err: AppError) -> Self {
        err.log_if_internal();
        let mut gql = async_graphql::Error::new(err.public_message());
        gql = gql.extend_with(|_, ext| {
            ext.set("code", err.code().as_str());
            ext.set("statusCode", err.status().as_u16());
            if let Some(retry_after) = err.retry_after() {
                ext.set("retryAfter", retry_after);
            }
            if !err.details().is_empty() {
                let details: Vec<async_graphql::Value> = err
                    .details()
                    .iter()
                    .map(|d| {
                        let mut map = async_graphql::indexmap::IndexMap::new();
                        map.insert(async_graphql::Name::new("field"), d.field.clone().into());
                        map.insert(
                            async_graphql::Name::new("message"),
                            d.message.clone().into(),
                        );
                        async_graphql::Value::Object(map)
                    })
                    .collect();
                ext.set("details", details);
            }
        });
        gql
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

    #[test]
    fn unreachable_database_is_a_503_naming_only_the_database() {
        use sea_orm::{ConnAcquireErr, DbErr, RuntimeErr};
        let refused = std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connect to 10.0.0.7:5432 refused",
        );
        let outages = [
            DbErr::ConnectionAcquire(ConnAcquireErr::Timeout),
            DbErr::Conn(RuntimeErr::Internal("db.internal:5432".into())),
            DbErr::Query(RuntimeErr::SqlxError(std::sync::Arc::new(
                sea_orm::sqlx::Error::Io(refused),
            ))),
        ];
        for outage in outages {
            let err = AppError::from(outage);
            let env = serde_json::to_value(err.envelope()).unwrap();
            assert_eq!(env["statusCode"], 503, "{env}");
            assert_eq!(env["code"], "SERVICE_UNAVAILABLE");
            assert_eq!(env["error"], "the database is unavailable; retry later");
            assert_eq!(err.retry_after(), Some(UNAVAILABLE_RETRY_AFTER_SECS));
        }
        // The same when wrapped on its way up.
        let wrapped = anyhow::Error::new(DbErr::ConnectionAcquire(ConnAcquireErr::Timeout))
            .context("loading the scan");
        assert_eq!(
            AppError::from(wrapped).status(),
            StatusCode::SERVICE_UNAVAILABLE
        );
        // A statement that failed is a fault, not an outage.
        let fault = AppError::from(DbErr::Custom("syntax error".into()));
        assert_eq!(fault.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(fault.retry_after(), None);
    }
}
