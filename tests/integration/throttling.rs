//! Budgets that hold against an attacker: the login budget reported as such, a per-account
//! throttle, client addresses behind trusted proxies, failed credentials that spend a budget,
//! a cheap readiness probe, and API key use recorded without holding anything up.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use sea_orm::{ConnectionTrait, Statement};
use serde_json::{json, Value};

use crate::support::store::{Interpose, Interposed};
use crate::support::{
    assert_envelope, Auth, TestApp, TestConfig, ADMIN_EMAIL, ADMIN_PASSWORD, MEMBER_PASSWORD,
};

const LOGIN: &str =
    "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";

/// A login through `/graphql` as if forwarded for `client` by a proxy on this host.
async fn login_from(
    app: &TestApp,
    client: &str,
    email: &str,
    password: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let res = app
        .http
        .post(app.url("/graphql"))
        .header("x-forwarded-for", client)
        .json(&json!({"query": LOGIN, "variables": {"e": email, "p": password}}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (status, headers, res.json().await.unwrap())
}

/// The GraphQL error's code, or the envelope's (a 429 from `/graphql` is enveloped).
fn code(body: &Value) -> Option<&str> {
    body["errors"][0]["extensions"]["code"]
        .as_str()
        .or_else(|| body["code"].as_str())
}

async fn behind_proxy() -> (TestApp, TestConfig) {
    let mut tc = TestConfig::new().await;
    tc.config.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap(), "::1/128".parse().unwrap()];
    (TestApp::spawn_with(tc.config.clone()).await, tc)
}

#[tokio::test]
async fn the_login_answers_report_the_login_budget() {
    let app = TestApp::spawn().await;
    for n in 0..10 {
        // A different unknown account each time: only the address's budget is spent.
        let res = app
            .gql(
                Auth::None,
                LOGIN,
                json!({"e": format!("nobody{n}@acme.test"), "p": "wrong"}),
            )
            .await;
        assert_eq!(res.code(), Some("UNAUTHENTICATED"));
        assert_eq!(res.headers["ratelimit-limit"], "10");
    }
    let res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": "nobody@acme.test", "password": "wrong"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 429);
    assert_eq!(res.headers()["ratelimit-limit"], "10");
    assert_eq!(res.headers()["ratelimit-remaining"], "0");
    let reset: u64 = res.headers()["ratelimit-reset"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(reset <= 15 * 60);
    assert!(res.headers().contains_key("retry-after"));
    assert_envelope(&res.json().await.unwrap(), 429, "RATE_LIMITED");
}

#[tokio::test]
async fn failed_logins_lock_the_account_from_every_address() {
    let (app, _tc) = behind_proxy().await;
    let owner = app.login_admin().await;
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    for account in [ADMIN_EMAIL, "ghost@acme.test"] {
        for _ in 0..5 {
            let (_, _, body) = login_from(&app, "203.0.113.1", account, "guess").await;
            assert_eq!(code(&body), Some("UNAUTHENTICATED"), "{body}");
        }
    }
    // From another address, even the right password waits; an account that does not exist
    // answers the same, so the lock reveals nothing.
    let (status, headers, body) =
        login_from(&app, "198.51.100.2", ADMIN_EMAIL, ADMIN_PASSWORD).await;
    assert_eq!((status, code(&body)), (429, Some("RATE_LIMITED")), "{body}");
    assert!(headers.contains_key("retry-after"));
    let (status, _, ghost) = login_from(&app, "198.51.100.2", " Ghost@ACME.test", "guess").await;
    assert_eq!(
        (status, code(&ghost)),
        (429, Some("RATE_LIMITED")),
        "{ghost}"
    );
    // Other accounts are not affected.
    let (status, _, ok) = login_from(&app, "198.51.100.2", "dev@acme.test", MEMBER_PASSWORD).await;
    assert_eq!(status, 200);
    assert!(ok["data"]["login"]["token"].is_string(), "{ok}");
}

#[tokio::test]
async fn failed_logins_write_nothing_into_the_accounts_org() {
    let app = TestApp::spawn().await;
    let (_, _, body) = login_from(&app, "203.0.113.1", ADMIN_EMAIL, "wrong").await;
    assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    let owner = app.login_admin().await;
    let audit = app
        .gql(
            Auth::Bearer(&owner),
            "{ auditEvents(first: 100) { edges { node { action } } } }",
            json!({}),
        )
        .await;
    let actions: Vec<&str> = audit.data("auditEvents")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["node"]["action"].as_str())
        .collect();
    assert!(actions.contains(&"session.login"), "{actions:?}");
    assert!(
        !actions.iter().any(|a| a.contains("failed")),
        "an anonymous failure wrote into the org: {actions:?}"
    );
}

#[tokio::test]
async fn forwarded_for_counts_only_behind_a_trusted_proxy() {
    // Not configured: the header is the client's own claim, and ignored.
    let app = TestApp::spawn().await;
    for n in 0..10 {
        let (_, _, body) = login_from(
            &app,
            &format!("203.0.113.{n}"),
            &format!("x{n}@acme.test"),
            "x",
        )
        .await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    }
    let (status, _, _) = login_from(&app, "198.51.100.9", "y@acme.test", "x").await;
    assert_eq!(status, 429, "a spoofed address must not buy a fresh budget");

    // Behind a trusted proxy: the forwarded client is who is counted (and recorded).
    let (app, _tc) = behind_proxy().await;
    for n in 0..10 {
        let (_, _, body) = login_from(&app, "203.0.113.1", &format!("x{n}@acme.test"), "x").await;
        assert_eq!(code(&body), Some("UNAUTHENTICATED"));
    }
    let (status, _, _) = login_from(&app, "203.0.113.1", "y@acme.test", "x").await;
    assert_eq!(status, 429);
    // The client's own prepended entry is not believed: the proxy's right-most one is.
    let (status, _, body) = login_from(
        &app,
        "203.0.113.1, 198.51.100.2",
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let row = app
        .state
        .db
        .query_one_raw(Statement::from_string(
            app.state.db.get_database_backend(),
            "SELECT ip FROM session",
        ))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(row.try_get::<String>("", "ip").unwrap(), "198.51.100.2");
}

#[tokio::test]
async fn failed_credentials_spend_the_callers_budget() {
    let mut tc = TestConfig::new().await;
    tc.config.rate_limit_per_minute = 3;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let bad_key = format!("rmp_{}", "x".repeat(40));
    let first = app
        .http
        .get(app.url("/api/v1/targets"))
        .header("x-api-key", &bad_key)
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 401);
    assert_eq!(first.headers()["ratelimit-limit"], "3");
    // Guessing keys or tokens runs out like any other request (a window may roll over once).
    let mut limited = false;
    for n in 0..8 {
        let req = app.http.get(app.url("/api/v1/targets"));
        let req = if n % 2 == 0 {
            req.header("x-api-key", &bad_key)
        } else {
            req.bearer_auth("not-a-token")
        };
        let res = req.send().await.unwrap();
        if res.status() == 429 {
            assert_envelope(&res.json().await.unwrap(), 429, "RATE_LIMITED");
            limited = true;
            break;
        }
        assert_eq!(res.status(), 401);
    }
    assert!(limited, "failed credentials never ran out of budget");
    drop(tc);
}

/// Counts readiness checks (each one writes and deletes an object).
struct CountingChecks {
    checks: Arc<AtomicUsize>,
}

#[async_trait]
impl Interpose for CountingChecks {
    async fn before_check(&self) {
        self.checks.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn readiness_checks_are_shared_between_callers() {
    let tc = TestConfig::new().await;
    let mut backends = rampart::app::open_backends(&tc.config).await.unwrap();
    let checks = Arc::new(AtomicUsize::new(0));
    backends.store = Interposed::wrap(
        backends.store,
        CountingChecks {
            checks: checks.clone(),
        },
    );
    let app = TestApp::spawn_with_backends(tc.config.clone(), backends).await;
    let calls = 10;
    for _ in 0..calls {
        let (status, body) = app.get_json("/ready").await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["checks"]["object_store"], "up");
    }
    let done = checks.load(Ordering::SeqCst);
    assert!(
        (1..calls).contains(&done),
        "{done} store writes for {calls} readiness calls in a row"
    );
    drop(tc);
}

/// Holds the database's write lock (SQLite) or the key row's lock (PostgreSQL) until dropped.
async fn lock_key_row(app: &TestApp, key_id: &str) -> sea_orm::DatabaseTransaction {
    use entity::api_key;
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
    let txn = rampart::db::begin_write(&app.state.db).await.unwrap();
    api_key::Entity::update_many()
        .col_expr(api_key::Column::Label, Expr::col(api_key::Column::Label))
        .filter(api_key::Column::Id.eq(key_id.parse::<uuid::Uuid>().unwrap()))
        .exec(&txn)
        .await
        .unwrap();
    txn
}

#[tokio::test]
async fn key_use_is_recorded_without_holding_up_requests_on_a_busy_database() {
    let app = TestApp::spawn().await;
    let owner = app.login_admin().await;
    let key = app.create_key(&owner, "READ").await;
    let key_id = app
        .gql(
            Auth::Bearer(&owner),
            "{ apiKeys { edges { node { id } } } }",
            json!({}),
        )
        .await
        .data("apiKeys")["edges"][0]["node"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    // More concurrent first uses than the pool has connections, while a writer holds the lock
    // the use record needs: every request answers, none waits for the lock.
    let held = lock_key_row(&app, &key_id).await;
    let uses = (0..24).map(|_| async {
        app.http
            .get(app.url("/api/v1/api-keys/me"))
            .header("x-api-key", &key)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    });
    let statuses = futures::future::join_all(uses).await;
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    held.rollback().await.unwrap();

    // ...and the use is stored once the lock is free.
    let mut last_used = Value::Null;
    for _ in 0..200 {
        last_used = app
            .gql(
                Auth::Bearer(&owner),
                "{ apiKeys { edges { node { lastUsedAt } } } }",
                json!({}),
            )
            .await
            .data("apiKeys")["edges"][0]["node"]["lastUsedAt"]
            .clone();
        if !last_used.is_null() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!last_used.is_null(), "the key's use was never stored");
}
