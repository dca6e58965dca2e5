//! Sessions, tokens, API keys, rate limits and the audit trail, over HTTP.

use base64::Engine as _;
use chrono::Utc;
use entity::{api_key, audit_event, session};
use jsonwebtoken::{encode, EncodingKey, Header};
use rampart::auth::jwt::{AccessClaims, ISSUER};
use sea_orm::{ActiveModelTrait, EntityTrait, Set};
use serde_json::json;

use crate::support::{
    assert_envelope, captured_logs, Auth, TestApp, TestConfig, TestEnv, ADMIN_EMAIL, ADMIN_PASSWORD,
};

const ME: &str =
    "{ me { kind role scopes organization { slug } user { email } apiKey { label } } }";

#[tokio::test]
async fn login_me_refresh_reuse_revokes_the_session() {
    let app = TestApp::spawn().await;
    let (token, refresh) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;

    let me = app.gql(Auth::Bearer(&token), ME, json!({})).await;
    assert_eq!(me.data("me")["kind"], "USER");
    assert_eq!(me.data("me")["role"], "OWNER");
    assert_eq!(me.data("me")["user"]["email"], ADMIN_EMAIL);
    assert_eq!(me.data("me")["organization"]["slug"], "default");

    let rotate = "mutation($r: String!) { refreshSession(refreshToken: $r) { token refreshToken expiresIn } }";
    let refreshed = app.gql(Auth::None, rotate, json!({"r": refresh})).await;
    let new_token = refreshed.data("refreshSession")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let new_refresh = refreshed.data("refreshSession")["refreshToken"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_refresh, refresh);
    assert_eq!(refreshed.data("refreshSession")["expiresIn"], 900);
    assert_eq!(
        app.gql(Auth::Bearer(&new_token), ME, json!({}))
            .await
            .status,
        200
    );

    // The rotated-out refresh token comes back: someone else has it. The whole session ends.
    let reused = app.gql(Auth::None, rotate, json!({"r": refresh})).await;
    assert_eq!(reused.code(), Some("UNAUTHENTICATED"));
    let denied = app.gql(Auth::Bearer(&new_token), ME, json!({})).await;
    assert_eq!(denied.status, 401);
    assert_envelope(&denied.body, 401, "UNAUTHENTICATED");
    let also_dead = app.gql(Auth::None, rotate, json!({"r": new_refresh})).await;
    assert_eq!(also_dead.code(), Some("UNAUTHENTICATED"));

    let events = audit_event::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(events.iter().any(|e| e.action == "session.login"));
    assert!(events.iter().any(|e| e.action == "session.refresh_reuse"));
}

#[tokio::test]
async fn logout_ends_the_session_and_login_sets_cookies() {
    let app = TestApp::spawn().await;
    let res = app
        .gql(
            Auth::None,
            "mutation { login(email: \"owner@acme.test\", password: \"correct-horse-battery\") { token } }",
            json!({}),
        )
        .await;
    let cookies: Vec<_> = res
        .headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("token=") && c.contains("HttpOnly") && c.contains("Path=/;")));
    assert!(cookies
        .iter()
        .any(|c| c.starts_with("refresh_token=") && c.contains("Path=/api/v1/auth")));
    let token = res.data("login")["token"].as_str().unwrap().to_string();

    // The cookie alone authenticates a browser.
    let cookie = cookies
        .iter()
        .find(|c| c.starts_with("token="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let by_cookie = app
        .http
        .post(app.url("/graphql"))
        .header("cookie", cookie)
        .json(&json!({"query": "{ me { kind } }"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = by_cookie.json().await.unwrap();
    assert_eq!(body["data"]["me"]["kind"], "USER", "{body}");

    let out = app
        .gql(Auth::Bearer(&token), "mutation { logout }", json!({}))
        .await;
    assert_eq!(out.data("logout"), true);
    assert_eq!(
        app.gql(Auth::Bearer(&token), ME, json!({})).await.status,
        401
    );
}

#[tokio::test]
async fn wrong_email_and_wrong_password_answer_the_same() {
    let app = TestApp::spawn().await;
    let attempt = |email: &'static str, password: &'static str| {
        let app = &app;
        async move {
            app.gql(
                Auth::None,
                "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
                json!({"e": email, "p": password}),
            )
            .await
        }
    };
    let wrong_password = attempt(ADMIN_EMAIL, "not-the-password").await;
    let unknown_email = attempt("nobody@acme.test", "not-the-password").await;
    let malformed = attempt("not an email", "x").await;
    for res in [&wrong_password, &unknown_email, &malformed] {
        assert_eq!(res.code(), Some("UNAUTHENTICATED"));
        assert_eq!(
            res.body["errors"][0]["message"],
            "invalid email or password"
        );
    }
    // Anonymous failures are logged, never written into the account's org.
    let failures = audit_event::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap();
    assert!(!failures.iter().any(|e| e.action == "session.login_failed"));
}

fn jwt_secret(app: &TestApp) -> Vec<u8> {
    std::fs::read_to_string(app.state.config.data_dir.join("jwt-secret"))
        .unwrap()
        .trim()
        .as_bytes()
        .to_vec()
}

#[tokio::test]
async fn bad_tokens_and_keys_are_rejected_with_401() {
    let app = TestApp::spawn().await;
    let (token, _) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let claims: AccessClaims = {
        let payload = token.split('.').nth(1).unwrap();
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap();
        serde_json::from_slice(&bytes).unwrap()
    };
    let sign = |claims: &AccessClaims| {
        encode(
            &Header::default(),
            claims,
            &EncodingKey::from_secret(&jwt_secret(&app)),
        )
        .unwrap()
    };

    let mut tampered = token.clone().into_bytes();
    let at = tampered.len() - 5;
    tampered[at] = if tampered[at] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();

    let now = Utc::now().timestamp();
    let expired = sign(&AccessClaims {
        iat: now - 3600,
        exp: now - 600,
        ..claims.clone()
    });
    let wrong_audience = sign(&AccessClaims {
        aud: "someone-else".into(),
        ..claims.clone()
    });
    let wrong_issuer = sign(&AccessClaims {
        iss: format!("{ISSUER}-evil"),
        ..claims.clone()
    });
    let alg_none = {
        let header = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"alg":"none","typ":"JWT"}"#);
        format!("{header}.{}.", token.split('.').nth(1).unwrap())
    };

    let admin = app.login_admin().await;
    let revoked_key = app.create_key(&admin, "READ").await;
    let keys = app
        .gql(
            Auth::Bearer(&admin),
            "{ apiKeys { edges { node { id } } } }",
            json!({}),
        )
        .await;
    let key_id = keys.data("apiKeys")["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    app.gql(
        Auth::Bearer(&admin),
        "mutation($id: UUID!) { revokeApiKey(id: $id) { active } }",
        json!({"id": key_id}),
    )
    .await
    .data("revokeApiKey");

    let expired_key = app.create_key(&admin, "READ").await;
    let expired_row = api_key::Entity::find()
        .all(&app.state.db)
        .await
        .unwrap()
        .into_iter()
        .find(|k| k.secret_hash == rampart::auth::tokens::sha256_hex(&expired_key))
        .unwrap();
    let mut row: api_key::ActiveModel = expired_row.into();
    row.expires_at = Set(Some(Utc::now() - chrono::Duration::minutes(1)));
    row.update(&app.state.db).await.unwrap();

    let unknown_key = format!("rmp_{}", "x".repeat(40));
    for (what, auth) in [
        ("tampered JWT", Auth::Bearer(&tampered)),
        ("expired JWT", Auth::Bearer(&expired)),
        ("alg none", Auth::Bearer(&alg_none)),
        ("wrong audience", Auth::Bearer(&wrong_audience)),
        ("wrong issuer", Auth::Bearer(&wrong_issuer)),
        ("revoked key", Auth::ApiKey(&revoked_key)),
        ("revoked key as bearer", Auth::Bearer(&revoked_key)),
        ("expired key", Auth::ApiKey(&expired_key)),
        ("unknown key", Auth::ApiKey(&unknown_key)),
    ] {
        let res = app.gql(auth, ME, json!({})).await;
        assert_eq!(res.status, 401, "{what}: {}", res.body);
        assert_envelope(&res.body, 401, "UNAUTHENTICATED");
    }
    assert_eq!(
        app.gql(Auth::Bearer(&token), ME, json!({})).await.status,
        200
    );
    // No credential at all: the request runs, and anything needing a caller says so.
    let anonymous = app.gql(Auth::None, ME, json!({})).await;
    assert_eq!(anonymous.code(), Some("UNAUTHENTICATED"));
}

#[tokio::test]
async fn api_keys_are_shown_once_work_both_ways_and_cannot_mint_keys() {
    let app = TestApp::spawn().await;
    let admin = app.login_admin().await;
    let created = app
        .gql(
            Auth::Bearer(&admin),
            "mutation { createApiKey(input: {label: \"ci\", scopes: WRITE}) { key message apiKey { id prefix scopes active lastUsedAt } } }",
            json!({}),
        )
        .await;
    let created = created.data("createApiKey").clone();
    let key = created["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("rmp_") && key.len() >= 36);
    assert!(key[4..].chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        created["message"],
        "Save this key — it will not be shown again"
    );
    assert!(key.starts_with(created["apiKey"]["prefix"].as_str().unwrap()));
    assert_eq!(created["apiKey"]["scopes"], "WRITE");

    for auth in [Auth::ApiKey(&key), Auth::Bearer(&key)] {
        let me = app.gql(auth, ME, json!({})).await;
        assert_eq!(me.data("me")["kind"], "API_KEY");
        assert_eq!(me.data("me")["scopes"], "WRITE");
        assert_eq!(me.data("me")["apiKey"]["label"], "ci");
    }
    let introspect = app
        .gql(
            Auth::ApiKey(&key),
            "{ currentApiKey { label scopes active } }",
            json!({}),
        )
        .await;
    assert_eq!(introspect.data("currentApiKey")["label"], "ci");

    for mutation in [
        "mutation { createApiKey(input: {label: \"x\"}) { key } }",
        "mutation { inviteMember(input: {email: \"x@acme.test\", role: VIEWER}) { token } }",
        "mutation { createOrganization(input: {name: \"Evil\"}) { id } }",
    ] {
        let res = app.gql(Auth::ApiKey(&key), mutation, json!({})).await;
        assert_eq!(
            res.code(),
            Some("SESSION_REQUIRED"),
            "{mutation}: {}",
            res.body
        );
        assert_eq!(res.body["errors"][0]["extensions"]["statusCode"], 403);
    }

    // Use is recorded (off the request path), the plaintext never again.
    let mut last_used = serde_json::Value::Null;
    for _ in 0..50 {
        let listed = app
            .gql(
                Auth::Bearer(&admin),
                "{ apiKeys { edges { node { prefix lastUsedAt } } totalCount } }",
                json!({}),
            )
            .await;
        last_used = listed.data("apiKeys")["edges"][0]["node"]["lastUsedAt"].clone();
        assert!(!listed.body.to_string().contains(&key));
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(!last_used.is_null(), "last_used_at recorded");

    // Nowhere else either: not in any row, not in the logs.
    let rows = format!(
        "{:?}{:?}",
        api_key::Entity::find().all(&app.state.db).await.unwrap(),
        audit_event::Entity::find()
            .all(&app.state.db)
            .await
            .unwrap()
    );
    assert!(!rows.contains(&key));
    assert!(rows.contains("api_key.create"));
    let logs = captured_logs();
    assert!(!logs.is_empty(), "logs are captured");
    assert!(!logs.contains(&key[4..]), "plaintext key found in logs");
}

#[tokio::test]
async fn login_attempts_are_limited_per_ip() {
    let env = TestEnv::from_env();
    let first = TestApp::spawn().await;
    // With Redis both instances count against one budget; without it each has its own.
    let second = match &env.redis_url {
        Some(_) => {
            let mut config = TestConfig::for_env(&env).await;
            config.config.redis_prefix = first.state.config.redis_prefix.clone();
            Some((TestApp::spawn_with(config.config.clone()).await, config))
        }
        None => None,
    };
    // A different account each time, so only the address's budget runs out.
    let login =
        "mutation($e: String!) { login(email: $e, password: \"wrong-password\") { token } }";
    for attempt in 1..=10 {
        let app = match (&second, attempt % 2) {
            (Some((second, _)), 0) => second,
            _ => &first,
        };
        let email = json!({"e": format!("user{attempt}@acme.test")});
        let res = app.gql(Auth::None, login, email).await;
        assert_eq!(res.code(), Some("UNAUTHENTICATED"), "attempt {attempt}");
        assert!(res.headers.contains_key("ratelimit-limit"));
    }
    let target = second.as_ref().map(|(s, _)| s).unwrap_or(&first);
    let limited = target
        .gql(Auth::None, login, json!({"e": "owner@acme.test"}))
        .await;
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert_eq!(limited.code(), Some("RATE_LIMITED"));
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=900).contains(&retry));
}

#[tokio::test]
async fn every_response_reports_the_budget_and_429_when_spent() {
    let mut tc = TestConfig::new().await;
    tc.config.rate_limit_per_minute = 5;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        let res = app.get("/").await;
        assert_eq!(res.status(), 200);
        assert_eq!(res.headers()["ratelimit-limit"], "5");
        seen.push(
            res.headers()["ratelimit-remaining"]
                .to_str()
                .unwrap()
                .to_string(),
        );
        assert!(res.headers().contains_key("ratelimit-reset"));
    }
    // Requests in flight elsewhere in the same minute may share the window; order is what counts.
    assert_eq!(seen.last().unwrap(), "0");
    let res = app.get("/").await;
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    assert_envelope(&res.json().await.unwrap(), 429, "RATE_LIMITED");
    drop(tc);
}

#[tokio::test]
async fn sessions_switch_between_orgs() {
    let app = TestApp::spawn().await;
    let admin = app.login_admin().await;
    let created = app
        .gql(
            Auth::Bearer(&admin),
            "mutation { createOrganization(input: {name: \"Globex Corp\"}) { id slug } }",
            json!({}),
        )
        .await;
    let org = created.data("createOrganization").clone();
    assert_eq!(org["slug"], "globex-corp");
    let orgs = app
        .gql(
            Auth::Bearer(&admin),
            "{ organizations { nodes { organization { slug } role } } }",
            json!({}),
        )
        .await;
    assert_eq!(
        orgs.data("organizations")["nodes"]
            .as_array()
            .unwrap()
            .len(),
        2
    );

    let switched = app
        .gql(
            Auth::Bearer(&admin),
            "mutation($o: UUID!) { switchOrganization(orgId: $o) { token user { orgSlug role } } }",
            json!({"o": org["id"]}),
        )
        .await;
    assert_eq!(
        switched.data("switchOrganization")["user"]["orgSlug"],
        "globex-corp"
    );
    let token = switched.data("switchOrganization")["token"]
        .as_str()
        .unwrap()
        .to_string();
    let me = app.gql(Auth::Bearer(&token), ME, json!({})).await;
    assert_eq!(me.data("me")["organization"]["slug"], "globex-corp");
    // The token issued for the old org no longer matches the session.
    assert_eq!(
        app.gql(Auth::Bearer(&admin), ME, json!({})).await.status,
        401
    );

    let duplicate = app
        .gql(
            Auth::Bearer(&token),
            "mutation { createOrganization(input: {name: \"x\", slug: \"globex-corp\"}) { id } }",
            json!({}),
        )
        .await;
    assert_eq!(duplicate.code(), Some("CONFLICT"));
}

#[tokio::test]
async fn members_are_managed_and_the_last_owner_stays() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let member_id = app.add_member(&owner, "dev@acme.test", "MEMBER").await;

    let again = app
        .gql(
            Auth::Bearer(&owner),
            "mutation { inviteMember(input: {email: \"DEV@acme.test\", role: VIEWER}) { token } }",
            json!({}),
        )
        .await;
    assert_eq!(again.code(), Some("CONFLICT"));

    let promoted = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!) { updateUser(id: $id, input: {role: ADMIN}) { role } }",
            json!({"id": member_id}),
        )
        .await;
    assert_eq!(promoted.data("updateUser")["role"], "ADMIN");

    let me = app
        .gql(Auth::Bearer(&owner), "{ me { user { id } } }", json!({}))
        .await;
    let owner_id = me.data("me")["user"]["id"].as_str().unwrap().to_string();
    for mutation in [
        "mutation($id: UUID!) { updateUser(id: $id, input: {role: ADMIN}) { role } }",
        "mutation($id: UUID!) { removeUser(id: $id) }",
    ] {
        let res = app
            .gql(Auth::Bearer(&owner), mutation, json!({"id": owner_id}))
            .await;
        assert_eq!(res.code(), Some("CONFLICT"), "{}", res.body);
    }

    let (dev_token, _) = app
        .login("dev@acme.test", crate::support::MEMBER_PASSWORD)
        .await;
    let removed = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($id: UUID!) { removeUser(id: $id) }",
            json!({"id": member_id}),
        )
        .await;
    assert_eq!(removed.data("removeUser"), true);
    assert_eq!(
        app.gql(Auth::Bearer(&dev_token), ME, json!({}))
            .await
            .status,
        401
    );
    let sessions = session::Entity::find().all(&app.state.db).await.unwrap();
    assert!(sessions
        .iter()
        .filter(|s| s.user_id.to_string() == member_id)
        .all(|s| s.revoked_at.is_some()));

    let audit = app
        .gql(
            Auth::Bearer(&owner),
            "{ auditEvents(pageSize: 100) { totalCount edges { node { action actor } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<String> = audit.data("auditEvents")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        actions.first().map(String::as_str),
        Some("member.remove"),
        "newest first: {actions:?}"
    );
    for expected in [
        "invitation.create",
        "invitation.accept",
        "member.role_change",
        "member.remove",
        "session.login",
    ] {
        assert!(
            actions.iter().any(|a| a == expected),
            "{expected} in {actions:?}"
        );
    }
}

#[tokio::test]
async fn bad_input_names_the_field() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let cases = [
        ("mutation { inviteMember(input: {email: \"not-an-email\", role: VIEWER}) { token } }", "email"),
        ("mutation { createApiKey(input: {label: \"\"}) { key } }", "label"),
        ("mutation { createApiKey(input: {label: \"x\", expiresAt: \"2001-01-01T00:00:00Z\"}) { key } }", "expires_at"),
        ("mutation { createOrganization(input: {name: \"ok\", slug: \"Not Valid\"}) { id } }", "slug"),
        ("{ users(pageSize: 501) { totalCount } }", "pageSize"),
    ];
    for (query, field) in cases {
        let res = app.gql(Auth::Bearer(&owner), query, json!({})).await;
        assert_eq!(
            res.code(),
            Some("VALIDATION_FAILED"),
            "{query}: {}",
            res.body
        );
        assert_eq!(
            res.body["errors"][0]["extensions"]["details"][0]["field"], field,
            "{query}"
        );
    }
    let long_label = format!(
        "mutation {{ createApiKey(input: {{label: \"{}\"}}) {{ key }} }}",
        "x".repeat(101)
    );
    assert_eq!(
        app.gql(Auth::Bearer(&owner), &long_label, json!({}))
            .await
            .code(),
        Some("VALIDATION_FAILED")
    );
    // An unknown role is not even a valid request.
    let unknown_role = app
        .gql(
            Auth::Bearer(&owner),
            "mutation { inviteMember(input: {email: \"a@acme.test\", role: SUPERUSER}) { token } }",
            json!({}),
        )
        .await;
    assert!(unknown_role.body["errors"][0]["message"]
        .as_str()
        .unwrap()
        .contains("SUPERUSER"));
}
