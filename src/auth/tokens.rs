//! Opaque secrets: API keys and refresh tokens. Only their SHA-256 is ever stored.

use rand::rngs::OsRng;
use rand::Rng;
use sha2::{Digest, Sha256};
use uuid::Uuid;

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Prefix that marks a Rampart API key (and lets secret scanners recognise leaked ones).
pub const API_KEY_PREFIX: &str = "rmp_";
/// Random characters after the prefix: 40 × log2(62) ≈ 238 bits.
const API_KEY_RANDOM_LEN: usize = 40;
/// Characters of the key kept in clear for display (`rmp_` + 6).
const DISPLAY_PREFIX_LEN: usize = 10;

/// `len` characters from the OS CSPRNG, uniformly over base62.
pub fn random_base62(len: usize) -> String {
    let mut rng = OsRng;
    (0..len)
        .map(|_| BASE62[rng.gen_range(0..BASE62.len())] as char)
        .collect()
}

/// Lowercase hex SHA-256.
pub fn sha256_hex(value: &str) -> String {
    hex::encode(Sha256::digest(value.as_bytes()))
}

/// A freshly minted API key: the plaintext (shown once) and what is stored.
pub struct NewApiKey {
    pub plaintext: String,
    pub display_prefix: String,
    pub hash: String,
}

pub fn new_api_key() -> NewApiKey {
    let plaintext = format!("{API_KEY_PREFIX}{}", random_base62(API_KEY_RANDOM_LEN));
    NewApiKey {
        display_prefix: plaintext[..DISPLAY_PREFIX_LEN].to_string(),
        hash: sha256_hex(&plaintext),
        plaintext,
    }
}

/// True when `value` has the shape of a Rampart API key.
pub fn looks_like_api_key(value: &str) -> bool {
    value.len() == API_KEY_PREFIX.len() + API_KEY_RANDOM_LEN
        && value.starts_with(API_KEY_PREFIX)
        && value[API_KEY_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_alphanumeric())
}

/// A refresh token names its session so a presented token can be checked against the
/// session's current secret: a mismatch on a live session means an old token is being reused.
pub struct RefreshToken {
    pub session_id: Uuid,
    pub secret: String,
}

impl RefreshToken {
    pub fn mint(session_id: Uuid) -> Self {
        Self {
            session_id,
            secret: random_base62(43),
        }
    }

    pub fn encode(&self) -> String {
        format!("rt_{}.{}", self.session_id.simple(), self.secret)
    }

    pub fn parse(token: &str) -> Option<Self> {
        let rest = token.strip_prefix("rt_")?;
        let (id, secret) = rest.split_once('.')?;
        let session_id = Uuid::try_parse(id).ok()?;
        (secret.len() == 43 && secret.bytes().all(|b| b.is_ascii_alphanumeric())).then(|| Self {
            session_id,
            secret: secret.to_string(),
        })
    }

    pub fn hash(&self) -> String {
        sha256_hex(&self.secret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_keys_have_the_contract_shape() {
        let key = new_api_key();
        assert!(key.plaintext.starts_with("rmp_"));
        assert_eq!(key.plaintext.len(), 44);
        assert!(looks_like_api_key(&key.plaintext));
        assert!(key.plaintext.starts_with(&key.display_prefix));
        assert_eq!(key.hash, sha256_hex(&key.plaintext));
        assert_ne!(new_api_key().plaintext, key.plaintext);
        assert!(!looks_like_api_key("rmp_short"));
    }

    #[test]
    fn refresh_tokens_round_trip() {
        let token = RefreshToken::mint(Uuid::new_v4());
        let parsed = RefreshToken::parse(&token.encode()).unwrap();
        assert_eq!(parsed.session_id, token.session_id);
        assert_eq!(parsed.hash(), token.hash());
        assert!(RefreshToken::parse("rt_nonsense").is_none());
        assert!(RefreshToken::parse(&token.encode().replace("rt_", "xx_")).is_none());
    }
}
