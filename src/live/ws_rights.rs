//! What keeps a GraphQL WebSocket connection within its caller's rights after
//! `connection_init`: the credential checked again on every operation, periodically and on
//! revocation events (`auth::revocation`), the connection closed at the credential's expiry,
//! and operations spending the caller's HTTP rate-limit budget.

use std::time::Duration;

use crate::app::AppState;
use crate::auth::resolve::{authenticate, Credential};
use crate::context::{Actor, Ctx, RequestMeta};
use crate::error::{AppError, ErrorCode};

/// How often an open connection's credential is checked again even when no operation and no
/// revocation event came (events may be lost, e.g. while Redis reconnects).
pub const RECHECK_EVERY: Duration = Duration::from_secs(60);
/// The close code of a connection whose credential stopped granting it (graphql-ws's
/// "Forbidden").
pub const CLOSE_FORBIDDEN: u16 = 4403;

/// The credential a connection was opened with, kept to check it again: on every operation,
/// on a revocation event, periodically, and at its expiry.
pub struct Authorised {
    pub credential: Credential,
    pub ctx: Ctx,
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// Whether two resolutions of a credential grant the same rights (same actor, session, org,
/// role or scope, and the same MFA hold). A connection whose rights changed is closed; the client reconnects.
fn same_rights(a: &Ctx, b: &Ctx) -> bool {
    a.org_id == b.org_id
        && a.mfa_enrolment_required == b.mfa_enrolment_required
        && match (&a.actor, &b.actor) {
            (
                Actor::User {
                    user_id: u1,
                    session_id: s1,
                    role: r1,
                    ..
                },
                Actor::User {
                    user_id: u2,
                    session_id: s2,
                    role: r2,
                    ..
                },
            ) => u1 == u2 && s1 == s2 && r1 == r2,
            (
                Actor::ApiKey {
                    key_id: k1,
                    scope: c1,
                    ..
                },
                Actor::ApiKey {
                    key_id: k2,
                    scope: c2,
                    ..
                },
            ) => k1 == k2 && c1 == c2,
            _ => false,
        }
}

/// Checks the connection's credential again. `Err` when it no longer grants what the
/// connection was opened with.
pub async fn recheck(
    state: &AppState,
    meta: &RequestMeta,
    auth: &Authorised,
) -> Result<(), AppError> {
    let now = authenticate(state, &auth.credential, meta.clone()).await?;
    if same_rights(&auth.ctx, &now) {
        Ok(())
    } else {
        Err(AppError::unauthenticated(
            "the credential's rights changed; connect again",
        ))
    }
}

/// The `error` answer to an operation refused by the rate limiter.
pub fn rate_limited_message(transport_ws: bool, quoted_id: &str, retry_after: u64) -> String {
    let err = AppError::rate_limited(retry_after);
    let error = serde_json::json!({
        "message": err.public_message(),
        "extensions": {
            "code": ErrorCode::RateLimited.as_str(),
            "statusCode": err.status().as_u16(),
            "retryAfter": retry_after,
        },
    });
    let payload = if transport_ws {
        serde_json::json!([error])
    } else {
        error
    };
    format!(r#"{{"type":"error","id":{quoted_id},"payload":{payload}}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{Role, Scope};
    use uuid::Uuid;

    fn user(session: Uuid, role: Role) -> Ctx {
        Ctx {
            actor: Actor::User {
                user_id: Uuid::nil(),
                session_id: session,
                email: "a@b.c".into(),
                role,
            },
            org_id: Uuid::nil(),
            meta: RequestMeta::internal("test"),
            mfa_enrolment_required: false,
        }
    }

    #[test]
    fn rights_change_with_role_session_org_or_scope() {
        let session = Uuid::now_v7();
        let member = user(session, Role::Member);
        assert!(same_rights(&member, &user(session, Role::Member)));
        assert!(!same_rights(&member, &user(session, Role::Viewer)));
        assert!(!same_rights(&member, &user(Uuid::now_v7(), Role::Member)));
        let mut elsewhere = user(session, Role::Member);
        elsewhere.org_id = Uuid::now_v7();
        assert!(!same_rights(&member, &elsewhere));
        let mut held = user(session, Role::Member);
        held.mfa_enrolment_required = true;
        assert!(!same_rights(&member, &held));
        let key = |scope| Ctx {
            actor: Actor::ApiKey {
                key_id: Uuid::nil(),
                label: "ci".into(),
                scope,
            },
            org_id: Uuid::nil(),
            meta: RequestMeta::internal("test"),
            mfa_enrolment_required: false,
        };
        assert!(same_rights(&key(Scope::Read), &key(Scope::Read)));
        assert!(!same_rights(&key(Scope::Write), &key(Scope::Read)));
        assert!(!same_rights(&key(Scope::Read), &member));
    }

    #[test]
    fn refusals_are_spelled_per_protocol() {
        let modern: serde_json::Value =
            serde_json::from_str(&rate_limited_message(true, "\"1\"", 7)).unwrap();
        assert_eq!(modern["type"], "error");
        assert_eq!(modern["id"], "1");
        assert_eq!(modern["payload"][0]["extensions"]["code"], "RATE_LIMITED");
        assert_eq!(modern["payload"][0]["extensions"]["retryAfter"], 7);
        let legacy: serde_json::Value =
            serde_json::from_str(&rate_limited_message(false, "\"1\"", 7)).unwrap();
        assert_eq!(legacy["payload"]["extensions"]["statusCode"], 429);
    }
}
