//! TOTP MFA over HTTP: enrolment, confirmation, two-step login, recovery codes, replay,
//! disabling, the account budget, and an org requiring MFA of its admins.
//!
//! The codes are computed here from the enrolment's base32 secret by an RFC 6238
//! implementation of the test's own (HMAC-SHA1 from the `hmac` and `sha1` crates), checked
//! against the RFC's test vectors, never by the server's code.

use std::time::{SystemTime, UNIX_EPOCH};

use hmac::{Hmac, Mac};
use sea_orm::EntityTrait;
use serde_json::{json, Value};

use crate::support::{
    assert_envelope, Auth, TestApp, ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD,
};

const STEP: u64 = 30;

/// RFC 4648 base32 (upper case, no padding), as authenticator apps read the secret.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut bits = 0u64;
    let mut count = 0;
    let mut out = Vec::new();
    for c in text.trim_end_matches('=').bytes() {
        let value = ALPHABET
            .iter()
            .position(|&a| a == c.to_ascii_uppercase())
            .expect("base32 character") as u64;
        bits = (bits << 5) | value;
        count += 5;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
            bits &= (1 << count) - 1;
        }
    }
    out
}

/// RFC 4226 HOTP with HMAC-SHA1, `digits` digits.
fn hotp(secret: &[u8], counter: u64, digits: u32) -> String {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret).expect("any key length");
    mac.update(&counter.to_be_bytes());
    let hash = mac.finalize().into_bytes();
    let offset = (hash[19] & 0x0f) as usize;
    let binary = u32::from_be_bytes([
        hash[offset] & 0x7f,
        hash[offset + 1],
        hash[offset + 2],
        hash[offset + 3],
    ]);
    format!(
        "{:0width$}",
        binary % 10u32.pow(digits),
        width = digits as usize
    )
}

fn current_step() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
        / STEP
}

/// The test's authenticator app. Each code it gives is for a time step after the last one
/// given, never before the current step and at most one step ahead: the server accepts one
/// step of drift, and a step boundary passing between here and the server keeps such a code
/// within its window. So a fresh authenticator gives at most two codes without waiting.
struct Authenticator {
    secret: Vec<u8>,
    last_step: Option<u64>,
    last_code: Option<String>,
}

impl Authenticator {
    fn new(base32: &str) -> Self {
        Self {
            secret: base32_decode(base32),
            last_step: None,
            last_code: None,
        }
    }

    fn next_code(&mut self) -> String {
        let now = current_step();
        let step = self.last_step.map_or(now, |last| (last + 1).max(now));
        assert!(
            step <= now + 1,
            "this test uses more codes than its window holds"
        );
        let code = hotp(&self.secret, step, 6);
        self.last_step = Some(step);
        self.last_code = Some(code.clone());
        code
    }

    /// A 6-digit code that matches no step in the server's window.
    fn wrong_code(&self) -> String {
        let now = current_step();
        let valid: Vec<String> = (now - 2..=now + 2)
            .map(|s| hotp(&self.secret, s, 6))
            .collect();
        (0..)
            .map(|n| format!("{:06}", (123_456 + n * 7_919) % 1_000_000))
            .find(|c| !valid.contains(c))
            .expect("a wrong code")
    }
}

#[test]
fn the_tests_totp_is_rfc_6238() {
    // RFC 6238 appendix B, SHA-1, 8 digits; the secret is the ASCII "12345678901234567890".
    let secret = b"12345678901234567890";
    for (time, code) in [
        (59u64, "94287082"),
        (1_111_111_109, "07081804"),
        (1_111_111_111, "14050471"),
        (1_234_567_890, "89005924"),
        (2_000_000_000, "69279037"),
        (20_000_000_000, "65353130"),
    ] {
        assert_eq!(hotp(secret, time / STEP, 8), code, "T = {time}");
    }
    assert_eq!(
        base32_decode("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"),
        secret.to_vec()
    );
}

async fn rest(
    app: &TestApp,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Value,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
    let mut req = app.http.request(method, app.url(path)).json(&body);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).expect("JSON body")
    };
    (status, headers, body)
}

/// Enrols `token`'s user: checks what the enrolment shows and returns the authenticator.
async fn enrol(app: &TestApp, token: &str) -> Authenticator {
    let res = app
        .gql(
            Auth::Bearer(token),
            "mutation { enrolMfa { secret otpauthUrl qrCode } }",
            json!({}),
        )
        .await;
    let enrolment = res.data("enrolMfa");
    let secret = enrolment["secret"].as_str().expect("secret");
    let url = enrolment["otpauthUrl"].as_str().expect("otpauth URL");
    assert!(url.starts_with("otpauth://totp/Rampart:"), "{url}");
    assert!(url.contains(&format!("secret={secret}")), "{url}");
    let qr = enrolment["qrCode"].as_str().expect("QR code");
    let svg = qr
        .strip_prefix("data:image/svg+xml;base64,")
        .expect("an SVG data URL");
    use base64::Engine as _;
    let svg = base64::engine::general_purpose::STANDARD
        .decode(svg)
        .expect("base64");
    assert!(String::from_utf8_lossy(&svg).contains("<svg"));
    Authenticator::new(secret)
}

/// Confirms the enrolment with the authenticator's next code; returns the recovery codes.
async fn confirm(app: &TestApp, token: &str, authenticator: &mut Authenticator) -> Vec<String> {
    let res = app
        .gql(
            Auth::Bearer(token),
            "mutation($c: String!) { confirmMfa(code: $c) { codes } }",
            json!({"c": authenticator.next_code()}),
        )
        .await;
    res.data("confirmMfa")["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_string())
        .collect()
}

/// The password step over REST; returns the whole answer.
async fn password_step(
    app: &TestApp,
    email: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    rest(
        app,
        "POST",
        "/api/v1/auth/login",
        None,
        json!({"email": email, "password": password}),
    )
    .await
}

/// The password step of an account with MFA: a challenge and no session.
async fn challenge(app: &TestApp, email: &str, password: &str) -> String {
    let (status, headers, body) = password_step(app, email, password).await;
    assert_eq!(status, 200, "{body}");
    let data = &body["data"];
    assert_eq!(data["mfa_required"], true, "{body}");
    assert!(
        data["token"].is_null() && data["refresh_token"].is_null(),
        "{body}"
    );
    assert!(
        headers.get("set-cookie").is_none(),
        "no session cookie before the second step"
    );
    data["mfa_challenge"]
        .as_str()
        .expect("challenge")
        .to_string()
}

async fn second_step(
    app: &TestApp,
    challenge: &str,
    code: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    rest(
        app,
        "POST",
        "/api/v1/auth/login/mfa",
        None,
        json!({"challenge": challenge, "code": code}),
    )
    .await
}

#[tokio::test]
async fn enrol_confirm_then_sign_in_in_two_steps_and_a_replayed_code_is_refused() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let mut authenticator = enrol(&app, &token).await;

    // Not enabled until confirmed: the password step still answers a session.
    let (_, _, body) = password_step(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(body["data"]["mfa_required"], false, "{body}");
    assert!(body["data"]["token"].is_string());

    let wrong = app
        .gql(
            Auth::Bearer(&token),
            "mutation($c: String!) { confirmMfa(code: $c) { codes } }",
            json!({"c": authenticator.wrong_code()}),
        )
        .await;
    assert_eq!(wrong.code(), Some("VALIDATION_FAILED"), "{:?}", wrong.body);

    let codes = confirm(&app, &token, &mut authenticator).await;
    assert_eq!(codes.len(), 10);
    let status = app
        .gql(
            Auth::Bearer(&token),
            "{ mfaStatus { enabled pending recoveryCodesLeft enrolmentRequired } }",
            json!({}),
        )
        .await;
    assert_eq!(
        status.data("mfaStatus"),
        &json!({"enabled": true, "pending": false, "recoveryCodesLeft": 10, "enrolmentRequired": false})
    );
    // The secret is never shown again, and is not stored as it was shown.
    let again = app
        .gql(
            Auth::Bearer(&token),
            "mutation { enrolMfa { secret } }",
            json!({}),
        )
        .await;
    assert_eq!(again.code(), Some("CONFLICT"), "{:?}", again.body);
    let stored = entity::mfa_factor::Entity::find()
        .all(&app.state.db)
        .await
        .expect("factors");
    assert_eq!(stored.len(), 1);
    let shown = authenticator_secret_base32(&authenticator);
    assert!(!stored[0].secret_sealed.contains(&shown));
    assert!(!stored[0]
        .secret_sealed
        .contains(&hex::encode(&authenticator.secret)));

    // Two steps: a challenge, then the session with its cookies.
    let challenge_token = challenge(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, _, body) = second_step(&app, &challenge_token, "12345").await;
    assert_eq!(status, 401, "{body}");
    let code = authenticator.next_code();
    let (status, headers, body) = second_step(&app, &challenge_token, &code).await;
    assert_eq!(status, 200, "{body}");
    let cookies: Vec<_> = headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(
        cookies.iter().any(|c| c.starts_with("token=")),
        "{cookies:?}"
    );
    assert!(
        cookies.iter().any(|c| c.starts_with("refresh_token=")),
        "{cookies:?}"
    );
    let session = body["data"]["token"].as_str().expect("token").to_string();
    assert_eq!(body["data"]["user"]["email"], ADMIN_EMAIL);
    let (status, _, me) = rest(&app, "GET", "/api/v1/auth/me", Some(&session), Value::Null).await;
    assert_eq!(status, 200, "{me}");

    // The same code again, within its window: refused.
    let challenge_token = challenge(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, _, body) = second_step(&app, &challenge_token, &code).await;
    assert_eq!(status, 401, "a replayed code: {body}");
    assert_envelope(&body, 401, "UNAUTHENTICATED");

    // A challenge is no access token, and an access token completes no login.
    let (status, _, _) = rest(
        &app,
        "GET",
        "/api/v1/auth/me",
        Some(&challenge_token),
        Value::Null,
    )
    .await;
    assert_eq!(status, 401);
    let (status, _, _) = second_step(&app, &session, &authenticator.wrong_code()).await;
    assert_eq!(status, 401);
}

fn authenticator_secret_base32(authenticator: &Authenticator) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut bits, mut count) = (0u64, 0);
    for &byte in &authenticator.secret {
        bits = (bits << 8) | u64::from(byte);
        count += 8;
        while count >= 5 {
            count -= 5;
            out.push(ALPHABET[((bits >> count) & 31) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn recovery_codes_work_once_and_disabling_needs_a_current_code() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let mut authenticator = enrol(&app, &token).await;
    let codes = confirm(&app, &token, &mut authenticator).await;

    let challenge_token = challenge(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, _, body) = second_step(&app, &challenge_token, &codes[0].to_uppercase()).await;
    assert_eq!(status, 200, "a recovery code, however typed: {body}");
    let session = body["data"]["token"].as_str().expect("token").to_string();
    let challenge_token = challenge(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, _, body) = second_step(&app, &challenge_token, &codes[0]).await;
    assert_eq!(status, 401, "a recovery code works once: {body}");
    let (status, _, body) =
        rest(&app, "GET", "/api/v1/auth/mfa", Some(&session), Value::Null).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["recovery_codes_left"], 9);

    // Disabling needs a current code.
    let (status, _, body) = rest(
        &app,
        "POST",
        "/api/v1/auth/mfa/disable",
        Some(&session),
        json!({"code": authenticator.wrong_code()}),
    )
    .await;
    assert_envelope(&body, 422, "VALIDATION_FAILED");
    assert_eq!(status, 422);
    let (status, _, body) = rest(
        &app,
        "POST",
        "/api/v1/auth/mfa/disable",
        Some(&session),
        json!({"code": authenticator.next_code()}),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, _, body) = password_step(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(body["data"]["mfa_required"], false, "MFA is off: {body}");
    assert!(body["data"]["token"].is_string());
    assert!(entity::mfa_recovery_code::Entity::find()
        .all(&app.state.db)
        .await
        .expect("codes")
        .is_empty());
}

#[tokio::test]
async fn failed_second_steps_spend_the_account_budget() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let mut authenticator = enrol(&app, &token).await;
    confirm(&app, &token, &mut authenticator).await;

    let challenge_token = challenge(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    for _ in 0..rampart::auth::sessions::ACCOUNT_FAILURES {
        let (status, _, body) =
            second_step(&app, &challenge_token, &authenticator.wrong_code()).await;
        assert_eq!(status, 401, "{body}");
    }
    let (status, headers, body) =
        second_step(&app, &challenge_token, &authenticator.next_code()).await;
    assert_eq!(status, 429, "the account's budget is spent: {body}");
    assert!(headers.get("retry-after").is_some());
    // The password step of the account is refused too.
    let (status, _, _) = password_step(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!(status, 429);
}

#[tokio::test]
async fn an_org_requiring_mfa_holds_its_admins_at_enrolment_until_they_enrol() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let org_id = app
        .gql(
            Auth::Bearer(&owner),
            "{ organization { id requireAdminMfa } }",
            json!({}),
        )
        .await
        .data("organization")["id"]
        .as_str()
        .expect("org id")
        .to_string();
    let path = format!("/api/v1/organizations/{org_id}");
    let require = json!({"require_admin_mfa": true});

    // Requiring it without having it would lock the owner out: refused.
    let (status, _, body) = rest(&app, "PATCH", &path, Some(&owner), require.clone()).await;
    assert_eq!(status, 409, "{body}");
    let mut owners = enrol(&app, &owner).await;
    let owner_codes = confirm(&app, &owner, &mut owners).await;
    let (status, _, body) = rest(&app, "PATCH", &path, Some(&owner), require).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["require_admin_mfa"], true);

    app.add_member(&owner, "admin@acme.test", "ADMIN").await;
    app.add_member(&owner, "member@acme.test", "MEMBER").await;

    // The admin signs in, and is told to enrol for everything else.
    let (admin, _) = app.login("admin@acme.test", MEMBER_PASSWORD).await;
    let (status, _, body) = rest(&app, "GET", "/api/v1/targets", Some(&admin), Value::Null).await;
    assert_eq!(status, 403, "{body}");
    assert_envelope(&body, 403, "MFA_REQUIRED");
    let targets = app
        .gql(
            Auth::Bearer(&admin),
            "{ targets { totalCount } }",
            json!({}),
        )
        .await;
    assert_eq!(targets.code(), Some("MFA_REQUIRED"), "{:?}", targets.body);
    let (_, _, body) = rest(&app, "GET", "/api/v1/auth/mfa", Some(&admin), Value::Null).await;
    assert_eq!(body["data"]["enrolment_required"], true, "{body}");
    // A member is not held, nor are the owner's sessions (they have MFA).
    let (member, _) = app.login("member@acme.test", MEMBER_PASSWORD).await;
    let (status, _, body) = rest(&app, "GET", "/api/v1/targets", Some(&member), Value::Null).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, body) = rest(&app, "GET", "/api/v1/targets", Some(&owner), Value::Null).await;
    assert_eq!(status, 200, "{body}");

    // Enrolment is open to the held admin; once confirmed, the same session works.
    let (status, _, body) = rest(
        &app,
        "POST",
        "/api/v1/auth/mfa/enrol",
        Some(&admin),
        Value::Null,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let mut admins = Authenticator::new(body["data"]["secret"].as_str().expect("secret"));
    let (status, _, body) = rest(
        &app,
        "POST",
        "/api/v1/auth/mfa/confirm",
        Some(&admin),
        json!({"code": admins.next_code()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["data"]["codes"].as_array().map(Vec::len), Some(10));
    let (status, _, body) = rest(&app, "GET", "/api/v1/targets", Some(&admin), Value::Null).await;
    assert_eq!(status, 200, "{body}");

    // New recovery codes need a current code; the old ones stop working.
    let (status, _, body) = rest(
        &app,
        "POST",
        "/api/v1/auth/mfa/recovery-codes",
        Some(&owner),
        json!({"code": owners.next_code()}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let fresh = body["data"]["codes"][0].as_str().expect("code").to_string();
    let challenge_token = challenge(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (status, _, _) = second_step(&app, &challenge_token, &owner_codes[0]).await;
    assert_eq!(status, 401, "an old recovery code");
    let (status, _, body) = second_step(&app, &challenge_token, &fresh).await;
    assert_eq!(status, 200, "{body}");
}
