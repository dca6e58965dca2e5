use async_graphql::SimpleObject;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// One of the signed-in person's open sessions (a sign-in on some device).
#[derive(Clone, Debug, SimpleObject)]
pub struct UserSession {
    pub id: Uuid,
    /// The `User-Agent` of the sign-in (the device or client).
    pub user_agent: Option<String>,
    /// The client address of the sign-in.
    pub ip: Option<String>,
    /// The org the session acts in.
    pub organization_id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The session's last sign-in or token refresh.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the session ends unless refreshed.
    pub expires_at: DateTime<Utc>,
    /// Whether this is the session making the request.
    pub current: bool,
}

impl UserSession {
    pub(crate) fn of(row: entity::session::Model, current: Uuid) -> Self {
        Self {
            current: row.id == current,
            id: row.id,
            user_agent: row.user_agent,
            ip: row.ip,
            organization_id: row.org_id,
            created_at: row.created_at,
            last_used_at: row.last_used_at,
            expires_at: row.expires_at,
        }
    }
}

/// The answer to a password-reset request: always the same, whether or not the address has an
/// account.
#[derive(Clone, Debug, SimpleObject)]
pub struct PasswordResetRequested {
    pub message: String,
}
