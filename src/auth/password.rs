//! Password hashing with argon2id, off the async runtime's worker threads.

use std::sync::OnceLock;

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::Argon2;

use crate::error::{AppError, AppResult};

pub use super::password_policy::MAX_LEN;

/// Hashes with argon2id and a fresh salt (PHC string).
///
/// # Errors
/// Only if the hasher itself fails.
pub async fn hash(password: &str) -> AppResult<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || {
        Argon2::default()
            .hash_password(password.as_bytes())
            .map(|h| h.to_string())
            .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))
    })
    .await
    .map_err(|e| anyhow::anyhow!("hash task: {e}"))?
    .map_err(AppError::from)
}

/// True when `password` matches `phc`. With `phc = None` a dummy hash is checked instead, so a
/// login for an unknown email costs as much time as one for a known email.
///
/// # Errors
/// Only if the hashing task fails.
pub async fn verify(password: &str, phc: Option<&str>) -> AppResult<bool> {
    let password = password.to_owned();
    let phc = phc.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let (stored, real) = match &phc {
            Some(p) => (p.as_str(), true),
            None => (dummy_hash(), false),
        };
        let Ok(parsed) = PasswordHash::new(stored) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && real
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("verify task: {e}")))
}

fn dummy_hash() -> &'static str {
    static DUMMY: OnceLock<String> = OnceLock::new();
    DUMMY.get_or_init(|| {
        Argon2::default()
            .hash_password(b"rampart-timing-equaliser")
            .map(|h| h.to_string())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ() {
        let a = hash("correct horse").await.unwrap();
        let b = hash("correct horse").await.unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify("correct horse", Some(&a)).await.unwrap());
        assert!(!verify("wrong horse", Some(&a)).await.unwrap());
        assert!(!verify("correct horse", None).await.unwrap());
    }
}
