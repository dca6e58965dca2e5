//! The request context: who is calling, for which org, with what rights. Resolved once per
//! request (HTTP, WebSocket `connection_init`, REST) by `auth::resolve`, and passed as the first
//! argument of every service function, so tenancy and permissions cannot be forgotten.

use std::net::IpAddr;
use std::sync::Arc;

use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// A role in an organization, strongest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, async_graphql::Enum)]
pub enum Role {
    /// Everything, including managing owners and the organization itself.
    Owner,
    /// Manages members, API keys and deletions.
    Admin,
    /// Uploads reports and triages findings.
    Member,
    /// Reads.
    Viewer,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Owner => "owner",
            Self::Admin => "admin",
            Self::Member => "member",
            Self::Viewer => "viewer",
        }
    }

    /// # Errors
    /// When `value` names no role.
    pub fn parse(value: &str) -> AppResult<Self> {
        match value {
            "owner" => Ok(Self::Owner),
            "admin" => Ok(Self::Admin),
            "member" => Ok(Self::Member),
            "viewer" => Ok(Self::Viewer),
            other => Err(AppError::invalid(
                "role",
                format!("unknown role {other:?}; expected owner, admin, member or viewer"),
            )),
        }
    }

    fn grants(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Write => self <= Self::Member,
            Permission::Admin | Permission::Engines => self <= Self::Admin,
            Permission::Owner => self == Self::Owner,
        }
    }
}

/// What an API key may do: `read`, `write` (which includes read), or `engines` (which
/// includes write).
#[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
pub enum Scope {
    /// Read everything of the org.
    Read,
    /// Read, upload reports and triage findings.
    Write,
    /// Write, and start engine scans of server-side directories.
    Engines,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Read => "read",
            Self::Write => "write",
            Self::Engines => "engines",
        }
    }

    /// # Errors
    /// When `value` names no scope.
    pub fn parse(value: &str) -> AppResult<Self> {
        match value {
            "read" => Ok(Self::Read),
            "write" => Ok(Self::Write),
            "engines" => Ok(Self::Engines),
            other => Err(AppError::invalid(
                "scopes",
                format!("unknown scope {other:?}; expected read, write or engines"),
            )),
        }
    }

    fn grants(self, permission: Permission) -> bool {
        match permission {
            Permission::Read => true,
            Permission::Write => self != Self::Read,
            Permission::Engines => self == Self::Engines,
            Permission::Admin | Permission::Owner => false,
        }
    }
}

/// What an operation needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission {
    /// viewer / `read`
    Read,
    /// member / `write`: ingest and triage
    Write,
    /// admin: keys, users, deletions
    Admin,
    /// owner: granting or taking away ownership
    Owner,
    /// admin, or a key with the `engines` scope: engine scans of server-side directories
    Engines,
}

/// Who is calling.
#[derive(Clone, Debug)]
pub enum Actor {
    /// A person signed in with a session.
    User {
        user_id: Uuid,
        session_id: Uuid,
        email: String,
        role: Role,
    },
    /// A machine credential of one org.
    ApiKey {
        key_id: Uuid,
        label: String,
        scope: Scope,
    },
}

/// Facts about the request that exist whether or not anyone is signed in.
#[derive(Clone, Debug)]
pub struct RequestMeta {
    pub request_id: Arc<str>,
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl RequestMeta {
    /// For work that does not come from a request (start-up, workers, tests).
    pub fn internal(what: &str) -> Self {
        Self {
            request_id: Arc::from(what),
            ip: None,
            user_agent: None,
        }
    }
}

/// An authenticated caller acting in one org.
#[derive(Clone, Debug)]
pub struct Ctx {
    pub actor: Actor,
    pub org_id: Uuid,
    pub meta: RequestMeta,
    /// An admin or owner of an org that requires MFA, who has not enabled it: every permission
    /// check refuses with `MFA_REQUIRED` until they enrol (src/auth/mfa).
    pub mfa_enrolment_required: bool,
}

impl Ctx {
    /// # Errors
    /// `FORBIDDEN` when the caller's role or scope does not grant `permission`;
    /// `MFA_REQUIRED` for an admin who must enrol in MFA first.
    pub fn require(&self, permission: Permission) -> AppResult<()> {
        if self.mfa_enrolment_required {
            return Err(AppError::mfa_required());
        }
        let granted = match &self.actor {
            Actor::User { role, .. } => role.grants(permission),
            Actor::ApiKey { scope, .. } => scope.grants(permission),
        };
        if granted {
            Ok(())
        } else {
            Err(AppError::forbidden(match permission {
                Permission::Read => "this action needs read access",
                Permission::Write => "this action needs the member role or a write key",
                Permission::Admin => "this action needs the admin role",
                Permission::Owner => "this action needs the owner role",
                Permission::Engines => {
                    "this action needs the admin role or a key with the engines scope"
                }
            }))
        }
    }

    /// The signed-in user, or `SESSION_REQUIRED` for API keys.
    ///
    /// # Errors
    /// When the caller is an API key.
    pub fn require_session(&self) -> AppResult<(Uuid, Uuid)> {
        match &self.actor {
            Actor::User {
                user_id,
                session_id,
                ..
            } => Ok((*user_id, *session_id)),
            Actor::ApiKey { .. } => Err(AppError::session_required()),
        }
    }

    /// `require_session` then `require(permission)`: the rule for managing keys and users.
    ///
    /// # Errors
    /// `SESSION_REQUIRED` or `FORBIDDEN`.
    pub fn require_session_with(&self, permission: Permission) -> AppResult<Uuid> {
        let (user_id, _) = self.require_session()?;
        self.require(permission)?;
        Ok(user_id)
    }

    pub fn user_id(&self) -> Option<Uuid> {
        match &self.actor {
            Actor::User { user_id, .. } => Some(*user_id),
            Actor::ApiKey { .. } => None,
        }
    }

    pub fn api_key_id(&self) -> Option<Uuid> {
        match &self.actor {
            Actor::ApiKey { key_id, .. } => Some(*key_id),
            Actor::User { .. } => None,
        }
    }

    /// How the actor is named in history rows (audit, comments, triage).
    pub fn actor_label(&self) -> String {
        match &self.actor {
            Actor::User { email, .. } => email.clone(),
            Actor::ApiKey { label, .. } => format!("api-key:{label}"),
        }
    }

    pub fn role(&self) -> Option<Role> {
        match &self.actor {
            Actor::User { role, .. } => Some(*role),
            Actor::ApiKey { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(actor: Actor) -> Ctx {
        Ctx {
            actor,
            org_id: Uuid::nil(),
            meta: RequestMeta::internal("test"),
            mfa_enrolment_required: false,
        }
    }

    fn user(role: Role) -> Ctx {
        ctx(Actor::User {
            user_id: Uuid::nil(),
            session_id: Uuid::nil(),
            email: "a@b.c".into(),
            role,
        })
    }

    fn key(scope: Scope) -> Ctx {
        ctx(Actor::ApiKey {
            key_id: Uuid::nil(),
            label: "ci".into(),
            scope,
        })
    }

    #[test]
    fn permission_table() {
        use Permission::*;
        let table = [
            (user(Role::Owner), [true, true, true, true]),
            (user(Role::Admin), [true, true, true, false]),
            (user(Role::Member), [true, true, false, false]),
            (user(Role::Viewer), [true, false, false, false]),
            (key(Scope::Write), [true, true, false, false]),
            (key(Scope::Read), [true, false, false, false]),
        ];
        for (caller, expected) in table {
            for (permission, allowed) in [Read, Write, Admin, Owner].into_iter().zip(expected) {
                assert_eq!(
                    caller.require(permission).is_ok(),
                    allowed,
                    "{:?} {permission:?}",
                    caller.actor
                );
            }
        }
    }

    #[test]
    fn keys_never_pass_for_a_session() {
        let err = key(Scope::Write).require_session().unwrap_err();
        assert_eq!(err.code().as_str(), "SESSION_REQUIRED");
        assert!(user(Role::Viewer).require_session().is_ok());
    }
}
