//! Passwords (issue 21, accounts): the policy wherever a password is set, changing one's own,
//! an admin requiring a new one at next sign-in, and resetting one with a token mailed through
//! a real SMTP server on loopback (aiosmtpd).

use entity::password_reset;
use reqwest::Method;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{json, Value};

use crate::rest::Client;
use crate::support::smtp::SmtpSink;
use crate::support::{
    assert_envelope, Auth, TestApp, TestConfig, ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD,
};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
const ME: &str = "{ me { user { email } } }";

/// Whether `token` still authenticates.
async fn works(app: &TestApp, token: &str) -> bool {
    let res = app.gql(Auth::Bearer(token), ME, json!({})).await;
    match res.code() {
        None => true,
        Some("UNAUTHENTICATED") => false,
        Some(other) => panic!("unexpected answer {other}: {}", res.body),
    }
}

fn field_of(res: &crate::support::Gql) -> &str {
    res.body["errors"][0]["extensions"]["details"][0]["field"]
        .as_str()
        .or_else(|| res.body["errors"][0]["extensions"]["field"].as_str())
        .unwrap_or_default()
}

#[tokio::test]
async fn the_policy_applies_to_sign_up_and_to_the_bootstrap_admin() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let sign_up = "mutation($t: String!, $p: String!) { signUpWithInvitation(input: {token: $t, password: $p}) { member { id } } }";
    for weak in [
        "short-pass1",
        "Password1234",
        "new.person@acme.test",
        "new.person",
    ] {
        let invitation = app.invite(&owner, "new.person@acme.test", "MEMBER").await;
        let res = app
            .gql(Auth::None, sign_up, json!({"t": invitation, "p": weak}))
            .await;
        assert_eq!(
            res.code(),
            Some("VALIDATION_FAILED"),
            "{weak}: {}",
            res.body
        );
    }
    let invitation = app.invite(&owner, "new.person@acme.test", "MEMBER").await;
    let res = app
        .gql(
            Auth::None,
            sign_up,
            json!({"t": invitation, "p": "a sound passphrase"}),
        )
        .await;
    assert!(res.data("signUpWithInvitation")["member"]["id"].is_string());

    // The first administrator's configured password obeys the same policy.
    let mut tc = TestConfig::new().await;
    tc.config.admin_password = Some("qwerty123456".into());
    let refused = rampart::App::build(tc.config.clone()).await;
    let err = refused
        .err()
        .expect("a common bootstrap password is refused");
    assert!(
        format!("{err:#}").contains("RAMPART_ADMIN_PASSWORD"),
        "the error names the setting: {err:#}"
    );
}

#[tokio::test]
async fn changing_my_password_keeps_this_session_and_ends_the_others() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let (this, _) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let (other, other_refresh) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let change = "mutation($c: String!, $n: String!) { changePassword(currentPassword: $c, newPassword: $n) }";

    let wrong = app
        .gql(
            Auth::Bearer(&this),
            change,
            json!({"c": "not-my-password", "n": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(wrong.code(), Some("VALIDATION_FAILED"), "{}", wrong.body);
    assert_eq!(field_of(&wrong), "current_password", "{}", wrong.body);
    let common = app
        .gql(
            Auth::Bearer(&this),
            change,
            json!({"c": ADMIN_PASSWORD, "n": "letmein12345"}),
        )
        .await;
    assert_eq!(field_of(&common), "new_password", "{}", common.body);
    assert!(works(&app, &other).await, "refused changes change nothing");

    let res = rest
        .post(
            Auth::Bearer(&this),
            "/api/v1/auth/password",
            json!({"current_password": ADMIN_PASSWORD, "new_password": "a brand new passphrase"}),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert!(works(&app, &this).await, "this session goes on");
    assert!(!works(&app, &other).await, "other sessions end");
    let refreshed = rest
        .post(
            Auth::None,
            "/api/v1/auth/refresh",
            json!({"refresh_token": other_refresh}),
        )
        .await;
    assert_envelope(&refreshed.body, 401, "UNAUTHENTICATED");
    let old = app
        .gql(
            Auth::None,
            LOGIN,
            json!({"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(old.code(), Some("UNAUTHENTICATED"));
    app.login(ADMIN_EMAIL, "a brand new passphrase").await;

    // An API key cannot change a password.
    let key = app.create_key(&this, "WRITE").await;
    let res = app
        .gql(
            Auth::ApiKey(&key),
            change,
            json!({"c": "a brand new passphrase", "n": "another new passphrase"}),
        )
        .await;
    assert_eq!(res.code(), Some("SESSION_REQUIRED"));
}

#[tokio::test]
async fn an_admin_can_require_a_new_password_at_next_sign_in() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let owner = app.login_admin().await;
    let member_id = app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let (member, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;

    // Members cannot; admins can, and the member's sessions end at once.
    let path = format!("/api/v1/users/{member_id}/force-password-reset");
    let res = rest.post(Auth::Bearer(&member), &path, json!({})).await;
    assert_envelope(&res.body, 403, "FORBIDDEN");
    let res = rest.post(Auth::Bearer(&owner), &path, json!({})).await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.body["data"]["email"], "dev@acme.test");
    assert!(!works(&app, &member).await);

    // Sign-in: a wrong password is the usual 401; the right one says a new one is required.
    let login = json!({"email": "dev@acme.test", "password": MEMBER_PASSWORD});
    let res = rest
        .post(Auth::None, "/api/v1/auth/login", login.clone())
        .await;
    assert_envelope(&res.body, 403, "PASSWORD_RESET_REQUIRED");
    let wrong = json!({"email": "dev@acme.test", "password": "not-the-password"});
    let res = rest.post(Auth::None, "/api/v1/auth/login", wrong).await;
    assert_envelope(&res.body, 401, "UNAUTHENTICATED");

    // Renewing needs the current password and a new one within the policy.
    let renew = |current: &str, new: &str| json!({"email": "dev@acme.test", "current_password": current, "new_password": new});
    let res = rest
        .post(
            Auth::None,
            "/api/v1/auth/password/renew",
            renew("not-the-password", "a sound passphrase"),
        )
        .await;
    assert_envelope(&res.body, 401, "UNAUTHENTICATED");
    let res = rest
        .post(
            Auth::None,
            "/api/v1/auth/password/renew",
            renew(MEMBER_PASSWORD, MEMBER_PASSWORD),
        )
        .await;
    assert_envelope(&res.body, 422, "VALIDATION_FAILED");
    let res = rest
        .post(
            Auth::None,
            "/api/v1/auth/password/renew",
            renew(MEMBER_PASSWORD, "a sound passphrase"),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let token = res.body["data"]["token"].as_str().unwrap().to_string();
    assert!(works(&app, &token).await, "renewing signs in");

    // Done: the old password is gone, the new one signs in normally, renewing is refused.
    let res = rest.post(Auth::None, "/api/v1/auth/login", login).await;
    assert_envelope(&res.body, 401, "UNAUTHENTICATED");
    app.login("dev@acme.test", "a sound passphrase").await;
    let res = rest
        .post(
            Auth::None,
            "/api/v1/auth/password/renew",
            renew("a sound passphrase", "yet another passphrase"),
        )
        .await;
    assert_envelope(&res.body, 400, "BAD_REQUEST");
}

#[tokio::test]
async fn without_a_mail_relay_a_reset_request_answers_the_same_and_sends_nothing() {
    let app = TestApp::spawn().await;
    let rest = Client::new(&app).await;
    let known = rest
        .post(
            Auth::None,
            "/api/v1/auth/password-reset",
            json!({"email": ADMIN_EMAIL}),
        )
        .await;
    let unknown = rest
        .post(
            Auth::None,
            "/api/v1/auth/password-reset",
            json!({"email": "nobody@acme.test"}),
        )
        .await;
    assert_eq!(known.status, 200, "{}", known.body);
    assert_eq!(known.body, unknown.body);
    let tokens = password_reset::Entity::find()
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(tokens, 0, "no token exists that no mail could carry");
}

/// The reset token a mail carries.
fn token_in(mail: &Value) -> String {
    let body = mail["body"].as_str().unwrap();
    let start = body.find("rpr_").expect("a reset token in the mail");
    body[start..]
        .chars()
        .take_while(|c: &char| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

#[tokio::test]
#[cfg_attr(
    not(rampart_has_aiosmtpd),
    ignore = "needs aiosmtpd in tests/standard-clients/.venv (pip install -r requirements.txt)"
)]
async fn a_mailed_reset_token_sets_a_new_password_once_and_ends_every_session() {
    let mut smtp = SmtpSink::start().await;
    let mut tc = TestConfig::new().await;
    tc.config.smtp_url = Some(smtp.url.clone());
    let mut app = TestApp::spawn_with(tc.config.clone()).await;
    app.test_config = Some(tc);
    let rest = Client::new(&app).await;
    let owner = app.login_admin().await;
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let (session, _) = app.login("dev@acme.test", MEMBER_PASSWORD).await;

    // The same answer for an unknown address and a known one; only the known one gets mail.
    let request = |email: &str| json!({"email": email});
    let unknown = rest
        .post(
            Auth::None,
            "/api/v1/auth/password-reset",
            request("nobody@acme.test"),
        )
        .await;
    let known = rest
        .post(
            Auth::None,
            "/api/v1/auth/password-reset",
            request("DEV@acme.test"),
        )
        .await;
    assert_eq!(known.status, 200);
    assert_eq!((unknown.status, &unknown.body), (known.status, &known.body));
    let mail = smtp.next_mail().await;
    assert_eq!(mail["to"], json!(["dev@acme.test"]), "{mail}");
    let first = token_in(&mail);

    // A token past its 30 minutes does not work.
    let hash = rampart::auth::tokens::sha256_hex(&first);
    password_reset::Entity::update_many()
        .col_expr(
            password_reset::Column::ExpiresAt,
            sea_orm::sea_query::Expr::value(chrono::Utc::now() - chrono::Duration::seconds(1)),
        )
        .filter(password_reset::Column::TokenHash.eq(hash))
        .exec(&app.state.db)
        .await
        .unwrap();
    let confirm = |token: &str, new: &str| json!({"token": token, "new_password": new});
    let res = rest
        .post(
            Auth::None,
            "/api/v1/auth/password-reset/confirm",
            confirm(&first, "a sound passphrase"),
        )
        .await;
    assert_envelope(&res.body, 401, "UNAUTHENTICATED");

    rest.post(
        Auth::None,
        "/api/v1/auth/password-reset",
        request("dev@acme.test"),
    )
    .await;
    let token = token_in(&smtp.next_mail().await);
    assert_ne!(token, first);
    let res = rest
        .post(
            Auth::None,
            "/api/v1/auth/password-reset/confirm",
            confirm(&token, "dev@acme.test"),
        )
        .await;
    assert_envelope(&res.body, 422, "VALIDATION_FAILED");
    assert!(
        works(&app, &session).await,
        "a refused reset changes nothing"
    );

    let res = rest
        .call(
            Auth::None,
            Method::POST,
            "/api/v1/auth/password-reset/confirm",
            Some(confirm(&token, "a sound passphrase")),
        )
        .await;
    assert_eq!(res.status, 204, "{}", res.body);
    assert!(!works(&app, &session).await, "every session ends");
    let old = app
        .gql(
            Auth::None,
            LOGIN,
            json!({"e": "dev@acme.test", "p": MEMBER_PASSWORD}),
        )
        .await;
    assert_eq!(old.code(), Some("UNAUTHENTICATED"));
    app.login("dev@acme.test", "a sound passphrase").await;

    // Single use.
    let res = rest
        .post(
            Auth::None,
            "/api/v1/auth/password-reset/confirm",
            confirm(&token, "another passphrase!"),
        )
        .await;
    assert_envelope(&res.body, 401, "UNAUTHENTICATED");
}
