use async_graphql::{Context, Enum, Object, Result, SimpleObject};
use axum::http::header::{CACHE_CONTROL, SET_COOKIE};
use uuid::Uuid;

use super::cookies;
use super::sessions::{self, AuthPayload, LoginAttempt, LoginOutcome, SessionUser};
use crate::context::{Actor, Role, Scope};
use crate::graphql::{caller, meta, state};
use crate::keys::ApiKey;
use crate::orgs::{Member, Organization};

/// What kind of credential the caller used.
#[derive(Clone, Copy, PartialEq, Eq, Enum)]
pub enum CallerKind {
    /// A signed-in person.
    User,
    /// A machine credential.
    ApiKey,
}

/// The caller, as the server sees them.
#[derive(SimpleObject)]
pub struct Me {
    pub kind: CallerKind,
    /// The signed-in person (absent for API keys).
    pub user: Option<Member>,
    /// The API key used (absent for sessions).
    pub api_key: Option<ApiKey>,
    /// The org the caller acts in.
    pub organization: Organization,
    /// The person's role in that org.
    pub role: Option<Role>,
    /// The key's scope.
    pub scopes: Option<Scope>,
}

#[derive(Default)]
pub struct AuthQuery;

#[Object]
impl AuthQuery {
    /// Who is calling, in which org, with what rights.
    async fn me(&self, ctx: &Context<'_>) -> Result<Me> {
        let caller = caller(ctx)?;
        let state = state(ctx);
        let organization = crate::orgs::current(caller, state).await?;
        Ok(match &caller.actor {
            Actor::User { role, .. } => Me {
                kind: CallerKind::User,
                user: crate::orgs::me_user(caller, state).await?,
                api_key: None,
                organization,
                role: Some(*role),
                scopes: None,
            },
            Actor::ApiKey { scope, .. } => Me {
                kind: CallerKind::ApiKey,
                user: None,
                api_key: Some(crate::keys::current(caller, state).await?),
                organization,
                role: None,
                scopes: Some(*scope),
            },
        })
    }
}

/// An answer that carries a secret (tokens, a new API key) must not be kept by any cache.
pub fn no_store(ctx: &Context<'_>) {
    ctx.insert_http_header(CACHE_CONTROL, "no-store");
}

pub(crate) fn set_session_cookies(ctx: &Context<'_>, payload: &AuthPayload) {
    no_store(ctx);
    for value in cookies::for_session(payload, &state(ctx).config) {
        ctx.append_http_header(SET_COOKIE, value);
    }
}

/// The answer of the password step: the session, or, for an account with MFA, a challenge
/// that `completeLogin` exchanges with a code for the session.
#[derive(SimpleObject)]
pub struct LoginPayload {
    /// JWT access token for `Authorization: Bearer` (absent when `mfaRequired`).
    pub token: Option<String>,
    /// Opaque refresh token (absent when `mfaRequired`).
    pub refresh_token: Option<String>,
    /// Seconds until the access token expires (absent when `mfaRequired`).
    pub expires_in: Option<i64>,
    /// Absent when `mfaRequired`.
    pub user: Option<SessionUser>,
    /// The account has MFA: no session yet; send `mfaChallenge` and a code to `completeLogin`.
    pub mfa_required: bool,
    /// The second step's challenge, valid for `mfaChallengeExpiresIn` seconds.
    pub mfa_challenge: Option<String>,
    pub mfa_challenge_expires_in: Option<i64>,
}

impl From<LoginOutcome> for LoginPayload {
    fn from(outcome: LoginOutcome) -> Self {
        match outcome {
            LoginOutcome::Session(p) => Self {
                token: Some(p.token),
                refresh_token: Some(p.refresh_token),
                expires_in: Some(p.expires_in),
                user: Some(p.user),
                mfa_required: false,
                mfa_challenge: None,
                mfa_challenge_expires_in: None,
            },
            LoginOutcome::MfaChallenge(c) => Self {
                token: None,
                refresh_token: None,
                expires_in: None,
                user: None,
                mfa_required: true,
                mfa_challenge: Some(c.token),
                mfa_challenge_expires_in: Some(c.expires_in),
            },
        }
    }
}

/// Reports the login budget an attempt spent (instead of the general budget) and gives its
/// outcome.
fn spent<T>(ctx: &Context<'_>, attempt: LoginAttempt<T>) -> crate::error::AppResult<T> {
    let mut budget = axum::http::HeaderMap::new();
    attempt.budget.write_headers(&mut budget);
    for (name, value) in &budget {
        ctx.insert_http_header(name.clone(), value.clone());
    }
    attempt.outcome
}

#[derive(Default)]
pub struct AuthMutation;

#[Object]
impl AuthMutation {
    /// Signs in with email and password; also sets the session cookies. Wrong email and wrong
    /// password give the same error. For an account with MFA the answer is a challenge instead
    /// of a session (`mfaRequired`), completed by `completeLogin`.
    async fn login(
        &self,
        ctx: &Context<'_>,
        email: String,
        password: String,
    ) -> Result<LoginPayload> {
        let attempt = sessions::login(state(ctx), &meta(ctx), &email, &password).await;
        // The login budget is what this route spends: it is what the headers report.
        let outcome = spent(ctx, attempt)?;
        match &outcome {
            LoginOutcome::Session(payload) => set_session_cookies(ctx, payload),
            LoginOutcome::MfaChallenge(_) => no_store(ctx),
        }
        Ok(outcome.into())
    }

    /// The second step of a login with MFA: the challenge `login` answered and a current code
    /// of the authenticator, or an unused recovery code (each works once). Answers the session
    /// as `login` does without MFA, cookies included. A wrong code counts as a failed login.
    async fn complete_login(
        &self,
        ctx: &Context<'_>,
        challenge: String,
        code: String,
    ) -> Result<AuthPayload> {
        let attempt = super::mfa::complete_login(state(ctx), &meta(ctx), &challenge, &code).await;
        let payload = spent(ctx, attempt)?;
        set_session_cookies(ctx, &payload);
        Ok(payload)
    }

    /// Rotates a refresh token into a new pair. Reusing an old refresh token ends the session.
    async fn refresh_session(
        &self,
        ctx: &Context<'_>,
        refresh_token: String,
    ) -> Result<AuthPayload> {
        let payload = sessions::refresh(state(ctx), &meta(ctx), &refresh_token).await?;
        set_session_cookies(ctx, &payload);
        Ok(payload)
    }

    /// Ends the caller's session.
    async fn logout(&self, ctx: &Context<'_>) -> Result<bool> {
        sessions::logout(caller(ctx)?, state(ctx)).await?;
        for value in cookies::cleared() {
            ctx.append_http_header(SET_COOKIE, value);
        }
        Ok(true)
    }

    /// Moves the session to another org the caller belongs to, with tokens for it.
    async fn switch_organization(&self, ctx: &Context<'_>, org_id: Uuid) -> Result<AuthPayload> {
        let payload = sessions::switch_org(caller(ctx)?, state(ctx), org_id).await?;
        set_session_cookies(ctx, &payload);
        Ok(payload)
    }
}
