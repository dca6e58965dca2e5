//! The cryptography of MFA: TOTP codes (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps, one
//! step of clock drift either way), the enrolment QR code, sealing the stored secrets, and
//! recovery codes.

use base64::Engine as _;
use rand::{Rng, RngCore};
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::hkdf;
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use crate::error::{AppError, AppResult};

/// Seconds per TOTP time step.
pub const STEP_SECS: u64 = 30;
const DIGITS: usize = 6;
/// Steps of clock drift accepted either side of the current one.
const DRIFT_STEPS: u64 = 1;
/// Secret length: 160 bits, the HMAC-SHA1 block the RFC recommends.
const SECRET_LEN: usize = 20;
/// The issuer shown by authenticator apps.
const ISSUER: &str = "Rampart";

/// A fresh random TOTP secret.
pub fn new_secret() -> Vec<u8> {
    let mut secret = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

fn totp(secret: &[u8], account: &str) -> AppResult<TOTP> {
    TOTP::new(
        Algorithm::SHA1,
        DIGITS,
        0,
        STEP_SECS,
        secret.to_vec(),
        Some(ISSUER.into()),
        account.into(),
    )
    .map_err(|e| AppError::Internal(anyhow::anyhow!("totp: {e:?}")))
}

/// What an authenticator app needs: the secret in base32 (typed by hand), the `otpauth://`
/// URL, and that URL as a QR code (an SVG `data:` URL).
pub struct Provisioning {
    pub secret_base32: String,
    pub otpauth_url: String,
    pub qr_code: String,
}

/// # Errors
/// Only if the TOTP parameters or the QR encoder fail.
pub fn provisioning(secret: &[u8], account: &str) -> AppResult<Provisioning> {
    let totp = totp(secret, account)?;
    let otpauth_url = totp.get_url();
    let svg = qrcode::QrCode::new(otpauth_url.as_bytes())
        .map_err(|e| AppError::Internal(anyhow::anyhow!("qr code: {e}")))?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(240, 240)
        .build();
    let qr_code = format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    );
    Ok(Provisioning {
        secret_base32: totp.get_secret_base32(),
        otpauth_url,
        qr_code,
    })
}

/// The time step whose code `code` is, among the current one and its neighbours, at
/// `unix_secs`. Every candidate is computed and compared in constant time, so the answer's
/// timing says nothing about which digits matched.
///
/// # Errors
/// Only if the TOTP parameters fail.
pub fn matching_step(secret: &[u8], code: &str, unix_secs: u64) -> AppResult<Option<u64>> {
    let code = code.trim();
    if code.len() != DIGITS || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Ok(None);
    }
    let totp = totp(secret, "check")?;
    let now = unix_secs / STEP_SECS;
    let mut found = None;
    for step in now.saturating_sub(DRIFT_STEPS)..=now + DRIFT_STEPS {
        let expected = totp.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    Ok(found)
}

/// Whether `code` has the shape of a TOTP code (rather than a recovery code).
pub fn looks_like_totp(code: &str) -> bool {
    let code = code.trim();
    code.len() == DIGITS && code.bytes().all(|b| b.is_ascii_digit())
}

/// AES-256-GCM over the stored TOTP secrets, keyed by HKDF-SHA256 of the server secret (the
/// JWT secret), and bound to the user they belong to (the user id is the associated data), so
/// a database dump alone reveals no secret and a sealed secret cannot be moved to another user.
pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(***)")
    }
}

const SEALED_PREFIX: &str = "v1:";

impl SecretBox {
    pub fn derive(server_secret: &[u8]) -> Self {
        let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, b"rampart mfa").extract(server_secret);
        let mut key = [0u8; 32];
        // 32 bytes is far below HKDF's output limit: the expansion cannot fail.
        prk.expand(&[b"totp secret sealing v1"], &AES_256_GCM)
            .and_then(|okm| okm.fill(&mut key))
            .expect("hkdf expand of 32 bytes");
        let unbound = UnboundKey::new(&AES_256_GCM, &key).expect("a 32-byte AES-256 key");
        Self {
            key: LessSafeKey::new(unbound),
        }
    }

    /// # Errors
    /// Only if sealing fails.
    pub fn seal(&self, user_id: Uuid, secret: &[u8]) -> AppResult<String> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let mut data = secret.to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(user_id.as_bytes()),
                &mut data,
            )
            .map_err(|_| AppError::Internal(anyhow::anyhow!("sealing an MFA secret failed")))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        ))
    }

    /// # Errors
    /// `INTERNAL` when the stored value is not one this key sealed for this user (e.g. the
    /// server secret changed).
    pub fn open(&self, user_id: Uuid, sealed: &str) -> AppResult<Vec<u8>> {
        let broken = || {
            AppError::Internal(anyhow::anyhow!(
                "a stored MFA secret cannot be opened (was the server secret changed?)"
            ))
        };
        let bytes = sealed
            .strip_prefix(SEALED_PREFIX)
            .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
            .filter(|b| b.len() > NONCE_LEN)
            .ok_or_else(broken)?;
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| broken())?;
        let mut data = data.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(user_id.as_bytes()), &mut data)
            .map_err(|_| broken())?;
        Ok(plain.to_vec())
    }
}

/// How many recovery codes a user holds after enabling MFA or regenerating them.
pub const RECOVERY_CODES: usize = 10;
/// Lowercase letters and digits without the look-alikes `0`, `1`, `l`, `o`: 32 symbols.
const RECOVERY_ALPHABET: &[u8] = b"23456789abcdefghijkmnpqrstuvwxyz";

/// Ten fresh recovery codes, `xxxxx-xxxxx-xx` (12 symbols of 5 bits: 60 bits each).
pub fn new_recovery_codes() -> Vec<String> {
    let mut rng = rand::rngs::OsRng;
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw: String = (0..12)
                .map(|_| RECOVERY_ALPHABET[rng.gen_range(0..RECOVERY_ALPHABET.len())] as char)
                .collect();
            format!("{}-{}-{}", &raw[..5], &raw[5..10], &raw[10..])
        })
        .collect()
}

/// The stored digest of a recovery code, as typed (case, spaces and dashes do not matter).
pub fn recovery_code_hash(code: &str) -> String {
    let normalised: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect();
    super::super::tokens::sha256_hex(&normalised)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238, appendix B: the SHA-1 secret and its 8-digit codes; the 6-digit codes are
    /// their last six digits.
    #[test]
    fn codes_match_the_rfc_test_vectors() {
        let secret = b"12345678901234567890";
        for (time, eight) in [
            (59u64, "94287082"),
            (1_111_111_109, "07081804"),
            (1_111_111_111, "14050471"),
            (1_234_567_890, "89005924"),
            (2_000_000_000, "69279037"),
        ] {
            let code = &eight[2..];
            assert_eq!(
                matching_step(secret, code, time).unwrap(),
                Some(time / STEP_SECS)
            );
        }
        assert_eq!(matching_step(secret, "000000", 59).unwrap(), None);
        assert_eq!(matching_step(secret, "28708", 59).unwrap(), None);
    }

    #[test]
    fn a_neighbouring_step_is_accepted_and_one_further_is_not() {
        let secret = new_secret();
        let t = totp(&secret, "a@b.c").unwrap();
        let now = 1_700_000_000u64;
        let previous = t.generate(now - STEP_SECS);
        assert_eq!(
            matching_step(&secret, &previous, now).unwrap(),
            Some(now / STEP_SECS - 1)
        );
        let older = t.generate(now - 3 * STEP_SECS);
        assert_eq!(matching_step(&secret, &older, now).unwrap(), None);
    }

    #[test]
    fn sealed_secrets_open_for_their_user_and_key_only() {
        let sealer = SecretBox::derive(b"0123456789abcdef0123456789abcdef");
        let user = Uuid::new_v4();
        let secret = new_secret();
        let sealed = sealer.seal(user, &secret).unwrap();
        assert!(!sealed.contains(&hex::encode(&secret)));
        assert_eq!(sealer.open(user, &sealed).unwrap(), secret);
        assert!(sealer.open(Uuid::new_v4(), &sealed).is_err());
        let other = SecretBox::derive(b"another-secret-another-secret-xx");
        assert!(other.open(user, &sealed).is_err());
    }

    #[test]
    fn recovery_codes_are_distinct_and_hash_as_typed() {
        let codes = new_recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let unique: std::collections::HashSet<_> = codes.iter().collect();
        assert_eq!(unique.len(), RECOVERY_CODES);
        let code = &codes[0];
        assert_eq!(
            recovery_code_hash(code),
            recovery_code_hash(&format!(" {} ", code.to_uppercase().replace('-', "")))
        );
    }

    #[test]
    fn provisioning_gives_an_otpauth_url_and_an_svg_qr_code() {
        let p = provisioning(&new_secret(), "admin@example.com").unwrap();
        assert!(p
            .otpauth_url
            .starts_with("otpauth://totp/Rampart:admin%40example.com?"));
        assert!(p.qr_code.starts_with("data:image/svg+xml;base64,"));
        assert_eq!(p.secret_base32.len(), 32);
    }
}
