//! Access tokens: HS256 JWTs with a fixed issuer and audience, verified strictly.

use chrono::Utc;
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

pub const ISSUER: &str = "rampart";
pub const ACCESS_AUDIENCE: &str = "rampart-api";
/// Event tokens are a different audience, so one can never pass as an access token.
pub const EVENTS_AUDIENCE: &str = "rampart-scan-events";
/// MFA challenges (the answer of a password step on an account with MFA) are a third
/// audience: a challenge is no access token, and no access token completes a login.
pub const MFA_CHALLENGE_AUDIENCE: &str = "rampart-mfa-challenge";

/// What an MFA challenge says: this user passed the password step for this org, a moment ago.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MfaChallengeClaims {
    pub sub: Uuid,
    pub org: Uuid,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
}

/// What an event token says: one scan's events, for a short while.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EventClaims {
    pub org: Uuid,
    pub scan: Uuid,
    pub iss: String,
    pub aud: String,
    pub exp: i64,
}

/// What an access token says.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AccessClaims {
    /// The user.
    pub sub: Uuid,
    /// The org the session acts in.
    pub org: Uuid,
    /// The role at issue time (re-checked against the membership on every request).
    pub role: String,
    /// The session (refresh-token family).
    pub sid: Uuid,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
}

/// Signing and verification keys, built once from the secret.
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    events_validation: Validation,
    mfa_validation: Validation,
    /// Seals the stored TOTP secrets, with a key derived from the same server secret.
    pub mfa_secrets: super::mfa::SecretBox,
}

impl JwtKeys {
    pub fn new(secret: &[u8]) -> Self {
        // Only HS256 is accepted: no `none`, no switching to another algorithm family.
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[ISSUER]);
        validation.set_audience(&[ACCESS_AUDIENCE]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = 5;
        let mut events_validation = validation.clone();
        events_validation.set_audience(&[EVENTS_AUDIENCE]);
        events_validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        events_validation.leeway = 0;
        let mut mfa_validation = events_validation.clone();
        mfa_validation.set_audience(&[MFA_CHALLENGE_AUDIENCE]);
        mfa_validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            events_validation,
            mfa_validation,
            mfa_secrets: super::mfa::SecretBox::derive(secret),
        }
    }

    /// # Errors
    /// Only if signing fails.
    pub fn issue_access(
        &self,
        user_id: Uuid,
        org_id: Uuid,
        role: &str,
        session_id: Uuid,
        ttl_secs: i64,
    ) -> AppResult<String> {
        let now = Utc::now().timestamp();
        let claims = AccessClaims {
            sub: user_id,
            org: org_id,
            role: role.to_string(),
            sid: session_id,
            iss: ISSUER.into(),
            aud: ACCESS_AUDIENCE.into(),
            iat: now,
            exp: now + ttl_secs,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("jwt encode: {e}")))
    }

    /// A token for one scan's event stream, usable where headers cannot be set (`EventSource`).
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn issue_events(&self, org: Uuid, scan: Uuid, ttl_secs: i64) -> AppResult<String> {
        let claims = EventClaims {
            org,
            scan,
            iss: ISSUER.into(),
            aud: EVENTS_AUDIENCE.into(),
            exp: Utc::now().timestamp() + ttl_secs,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("jwt encode: {e}")))
    }

    /// # Errors
    /// `UNAUTHENTICATED` for anything but a valid, unexpired event token.
    pub fn verify_events(&self, token: &str) -> AppResult<EventClaims> {
        decode::<EventClaims>(token, &self.decoding, &self.events_validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                AppError::unauthenticated(match e.kind() {
                    ErrorKind::ExpiredSignature => "event token expired",
                    _ => "invalid event token",
                })
            })
    }

    /// The answer of a password step on an account with MFA: only the second step takes it.
    ///
    /// # Errors
    /// Only if signing fails.
    pub fn issue_mfa_challenge(&self, user: Uuid, org: Uuid, ttl_secs: i64) -> AppResult<String> {
        let claims = MfaChallengeClaims {
            sub: user,
            org,
            iss: ISSUER.into(),
            aud: MFA_CHALLENGE_AUDIENCE.into(),
            exp: Utc::now().timestamp() + ttl_secs,
        };
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(anyhow::anyhow!("jwt encode: {e}")))
    }

    /// # Errors
    /// `UNAUTHENTICATED` for anything but a valid, unexpired MFA challenge.
    pub fn verify_mfa_challenge(&self, token: &str) -> AppResult<MfaChallengeClaims> {
        decode::<MfaChallengeClaims>(token, &self.decoding, &self.mfa_validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                AppError::unauthenticated(match e.kind() {
                    ErrorKind::ExpiredSignature => "MFA challenge expired; sign in again",
                    _ => "invalid MFA challenge",
                })
            })
    }

    /// # Errors
    /// `UNAUTHENTICATED` for a bad signature, algorithm, issuer, audience or an expired token.
    pub fn verify_access(&self, token: &str) -> AppResult<AccessClaims> {
        decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| {
                use jsonwebtoken::errors::ErrorKind;
                AppError::unauthenticated(match e.kind() {
                    ErrorKind::ExpiredSignature => "access token expired",
                    _ => "invalid access token",
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;

    fn keys() -> JwtKeys {
        JwtKeys::new(b"0123456789abcdef0123456789abcdef")
    }

    #[test]
    fn issued_tokens_verify() {
        let (user, org, sid) = (Uuid::new_v4(), Uuid::new_v4(), Uuid::new_v4());
        let token = keys().issue_access(user, org, "admin", sid, 60).unwrap();
        let claims = keys().verify_access(&token).unwrap();
        assert_eq!((claims.sub, claims.org, claims.sid), (user, org, sid));
        assert_eq!(claims.role, "admin");
    }

    #[test]
    fn wrong_secret_expired_and_alg_none_are_rejected() {
        let token = keys()
            .issue_access(Uuid::new_v4(), Uuid::new_v4(), "admin", Uuid::new_v4(), 60)
            .unwrap();
        assert!(JwtKeys::new(b"another-secret-another-secret-xx")
            .verify_access(&token)
            .is_err());

        let expired = keys()
            .issue_access(Uuid::new_v4(), Uuid::new_v4(), "admin", Uuid::new_v4(), -60)
            .unwrap();
        assert!(keys().verify_access(&expired).is_err());

        let payload = token.split('.').nth(1).unwrap();
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        assert!(keys()
            .verify_access(&format!("{header}.{payload}."))
            .is_err());
    }

    #[test]
    fn mfa_challenges_and_access_tokens_do_not_pass_for_each_other() {
        let (user, org) = (Uuid::new_v4(), Uuid::new_v4());
        let challenge = keys().issue_mfa_challenge(user, org, 60).unwrap();
        let claims = keys().verify_mfa_challenge(&challenge).unwrap();
        assert_eq!((claims.sub, claims.org), (user, org));
        assert!(keys().verify_access(&challenge).is_err());
        let access = keys()
            .issue_access(user, org, "admin", Uuid::new_v4(), 60)
            .unwrap();
        assert!(keys().verify_mfa_challenge(&access).is_err());
        let expired = keys().issue_mfa_challenge(user, org, -60).unwrap();
        assert!(keys().verify_mfa_challenge(&expired).is_err());
    }
}
