//! What the HTTP layer refuses or adds before any domain code runs: body limits, cost limits
//! and timeouts, cross-site request forgery, security headers, and GraphQL over WebSocket on
//! `/graphql`.

use futures::{SinkExt, StreamExt};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

use crate::support::{assert_envelope, Auth, TestApp, TestConfig, ADMIN_EMAIL, ADMIN_PASSWORD};

/// An answer read off a raw socket.
struct Raw {
    status: u16,
    head: String,
    body: Value,
}

impl Raw {
    fn headers(&self, name: &str) -> Vec<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        self.head
            .lines()
            .filter(|l| l.to_ascii_lowercase().starts_with(&prefix))
            .map(|l| l[prefix.len()..].trim().to_string())
            .collect()
    }
}

/// Sends `head` and `body` and reads the whole answer (`head` says `Connection: close`).
async fn raw(app: &TestApp, head: &str, body: &[u8]) -> Raw {
    send_raw(app, head, body, false).await
}

/// As [`raw`]; with `half_close`, the sending half is closed after `body`, so a server that
/// waits for more of a body than was sent sees the end of the stream instead of stalling.
async fn send_raw(app: &TestApp, head: &str, body: &[u8], half_close: bool) -> Raw {
    let mut socket = tokio::net::TcpStream::connect(app.addr).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    if half_close {
        socket.shutdown().await.unwrap();
    }
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let text = String::from_utf8_lossy(&answer).to_string();
    let (head, rest) = text.split_once("\r\n\r\n").expect("an HTTP answer");
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let chunked = head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked");
    let body = if chunked {
        // One chunk is all our error answers use.
        rest.split_once("\r\n")
            .map(|(_, r)| r.rsplit_once("\r\n0\r\n").map_or(r, |(b, _)| b))
            .unwrap_or("")
            .to_string()
    } else {
        rest.to_string()
    };
    Raw {
        status,
        head: head.to_string(),
        body: serde_json::from_str(&body).unwrap_or(Value::Null),
    }
}

async fn app_with(tune: impl FnOnce(&mut rampart::config::Config)) -> TestApp {
    let mut tc = TestConfig::new().await;
    tune(&mut tc.config);
    let mut app = TestApp::spawn_with(tc.config.clone()).await;
    app.test_config = Some(tc);
    app
}

// --- body limits (issue 14, point 6) -------------------------------------------------------

#[tokio::test]
async fn a_declared_length_over_the_limit_is_refused_before_the_body_is_read() {
    let app = TestApp::spawn().await;
    // 512 MiB announced (2 GiB for the upload route, whose limit is 1 GiB), one byte sent:
    // the answer must not depend on reading the rest, and comes before authentication.
    for (path, content_type, length) in [
        ("/graphql", "application/json", 1u64 << 29),
        ("/graphql", "multipart/form-data; boundary=x", 1 << 29),
        ("/api/v1/auth/login", "application/json", 1 << 29),
        (
            "/api/v1/ingest?target=t",
            "application/octet-stream",
            1 << 31,
        ),
    ] {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n",
            app.addr
        );
        let res = send_raw(&app, &head, b"{", true).await;
        assert_eq!(res.status, 413, "{path} {content_type}: {}", res.head);
        assert_envelope(&res.body, 413, "PAYLOAD_TOO_LARGE");
    }
}

/// A chunked body of `size` bytes: a GraphQL request padded with a long variable.
fn padded_request(size: usize) -> Vec<u8> {
    let head = r#"{"query":"{ serverInfo { name } }","variables":{"pad":""#;
    let tail = r#""}}"#;
    let mut body = head.as_bytes().to_vec();
    body.resize(size - tail.len(), b'x');
    body.extend_from_slice(tail.as_bytes());
    body
}

fn chunked(body: Vec<u8>) -> reqwest::Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(16 * 1024).map(|c| Ok(c.to_vec())).collect();
    reqwest::Body::wrap_stream(futures::stream::iter(chunks))
}

#[tokio::test]
async fn a_chunked_body_is_cut_off_at_the_limit() {
    let app = app_with(|c| c.max_body_bytes = 64 * 1024).await;
    // Under the limit: served.
    let small = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body(chunked(padded_request(60 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(small.status(), 200);
    // Over it, without a length: 413 in the envelope, on GraphQL and on a REST row.
    for path in ["/graphql", "/api/v1/auth/login"] {
        let res = app
            .http
            .post(app.url(path))
            .header("content-type", "application/json")
            .body(chunked(padded_request(128 * 1024)))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!(status, 413, "{path}: {body}");
        assert_envelope(&body, 413, "PAYLOAD_TOO_LARGE");
    }
}

#[tokio::test]
async fn graphql_multipart_has_its_own_limit() {
    let app = app_with(|c| {
        c.max_body_bytes = 16 * 1024;
        c.max_graphql_upload_bytes = 64 * 1024;
    })
    .await;
    let token = app.login_admin().await;
    let upload = |size: usize| {
        let operations = json!({
            "query": "mutation($file: Upload!) { ingestReport(file: $file, target: \"multipart\") { id } }",
            "variables": {"file": null}
        });
        let mut report = br#"{"scanner":{"name":"x"},"findings":[],"pad":""#.to_vec();
        report.resize(size - 2, b'x');
        report.extend_from_slice(br#""}"#);
        reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", r#"{"0":["variables.file"]}"#)
            .part(
                "0",
                reqwest::multipart::Part::bytes(report).file_name("report.json"),
            )
    };
    // Larger than the JSON limit, within the upload limit: read.
    let within = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .multipart(upload(32 * 1024))
        .send()
        .await
        .unwrap();
    let status = within.status().as_u16();
    let body: Value = within.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["errors"][0]["extensions"]["code"], "PAYLOAD_TOO_LARGE");
    let over = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .multipart(upload(128 * 1024))
        .send()
        .await
        .unwrap();
    let status = over.status().as_u16();
    let body: Value = over.json().await.unwrap();
    assert_eq!(status, 413, "{body}");
    assert_envelope(&body, 413, "PAYLOAD_TOO_LARGE");
}

// --- cost limits and timeouts (point 7) ----------------------------------------------------

#[tokio::test]
async fn aliases_of_one_field_are_capped() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let many: String = (0..495)
        .map(|i| format!("f{i}: fleetComparison {{ nodes {{ targetId }} }} "))
        .collect();
    let res = app
        .gql(Auth::Bearer(&token), &format!("{{ {many} }}"), json!({}))
        .await;
    assert_eq!(res.code(), Some("BAD_REQUEST"), "{}", res.body);
    let message = res.body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("`fleetComparison`"), "{message}");
    assert!(res.body["data"].is_null(), "{}", res.body);
    // Under the cap, cheap fields still pass.
    let few: String = (0..20)
        .map(|i| format!("s{i}: serverInfo {{ name }} "))
        .collect();
    let ok = app
        .gql(Auth::Bearer(&token), &format!("{{ {few} }}"), json!({}))
        .await;
    assert_eq!(ok.data("s19")["name"], "rampart");
}

#[tokio::test]
async fn expensive_fields_cost_what_they_do() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    // Five fleet comparisons: within the alias cap, over the complexity limit.
    let five: String = (0..5)
        .map(|i| format!("f{i}: fleetComparison {{ nodes {{ targetId }} }} "))
        .collect();
    let res = app
        .gql(Auth::Bearer(&token), &format!("{{ {five} }}"), json!({}))
        .await;
    let message = res.body["errors"][0]["message"].as_str().unwrap_or("");
    assert!(message.contains("too complex"), "{}", res.body);
    // One is fine, and so is the REST row that runs it.
    app.gql(
        Auth::Bearer(&token),
        "{ fleetComparison { nodes { targetId } } }",
        json!({}),
    )
    .await
    .data("fleetComparison");
    let rest = app
        .http
        .get(app.url("/api/v1/trends/compare"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(rest.status(), 200);
}

#[tokio::test]
async fn a_request_past_the_time_limit_answers_503_but_uploads_may_take_longer() {
    let app = app_with(|c| c.request_timeout_ms = 1).await;
    // Signing in hashes a password (tens of milliseconds): past a 1 ms limit.
    let res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_envelope(&body, 503, "SERVICE_UNAVAILABLE");
    let graphql = app
        .gql(
            Auth::None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(graphql.status, 503, "{}", graphql.body);
    // The upload route streams and is not timed.
    let state = app.state.clone();
    let token = rampart::auth::sessions::login(
        &state,
        &rampart::context::RequestMeta::internal("test"),
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
    )
    .await
    .outcome
    .unwrap()
    .into_session()
    .expect("no MFA on the admin")
    .token;
    let report = rampart::ingest::synthetic::sarif(
        "semgrep",
        (0..50).map(rampart::ingest::synthetic::SyntheticResult::numbered),
    );
    let upload = app
        .ingest(Auth::Bearer(&token), "target=slow", report.clone())
        .await;
    assert_eq!(upload.status, 202, "{:?}", upload.body);
    // Nor are GraphQL's multipart uploads.
    let operations = json!({
        "query": "mutation($file: Upload!) { ingestReport(file: $file, target: \"slow-too\") { id } }",
        "variables": {"file": null}
    });
    let form = reqwest::multipart::Form::new()
        .text("operations", operations.to_string())
        .text("map", r#"{"0":["variables.file"]}"#)
        .part(
            "0",
            reqwest::multipart::Part::bytes(report).file_name("report.sarif"),
        );
    let res = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body["data"]["ingestReport"]["id"].is_string(), "{body}");
}

// --- cross-site request forgery (point 8) --------------------------------------------------

/// Signs in through REST and returns the `Cookie` header a browser would send back.
async fn session_cookie(app: &TestApp) -> String {
    let res = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().split(';').next().unwrap().to_string())
        .collect::<Vec<_>>()
        .join("; ")
}

const CREATE_ADMIN: &str = r#"{"query":"mutation { inviteMember(input: {email: \"csrf@evil.test\", role: ADMIN}) { token } }"}"#;

/// Who has been invited into the org (adding a person is an invitation).
async fn members(app: &TestApp) -> Vec<String> {
    let token = app.login_admin().await;
    app.gql(
        Auth::Bearer(&token),
        "{ invitations { edges { node { email } } } }",
        json!({}),
    )
    .await
    .data("invitations")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["node"]["email"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn a_form_shaped_post_with_the_session_cookie_creates_nothing() {
    let app = TestApp::spawn().await;
    let cookie = session_cookie(&app).await;
    let own_origin = format!("http://{}", app.addr);
    // What a cross-site <form enctype="text/plain"> sends: the cookie, a text/plain body.
    for (what, content_type, origin) in [
        (
            "text/plain from another site",
            "text/plain",
            Some("http://evil.test"),
        ),
        ("text/plain without an Origin", "text/plain", None),
        (
            "text/plain from this server",
            "text/plain",
            Some(own_origin.as_str()),
        ),
        ("form-urlencoded", "application/x-www-form-urlencoded", None),
        (
            "JSON from another site",
            "application/json",
            Some("http://evil.test"),
        ),
        (
            "JSON from a sibling site",
            "application/json",
            Some("http://rampart.evil.test"),
        ),
    ] {
        let mut req = app
            .http
            .post(app.url("/graphql"))
            .header("cookie", &cookie)
            .header("content-type", content_type)
            .body(CREATE_ADMIN);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert!(status == 403 || status == 415, "{what}: {status} {body}");
        assert!(body["data"].is_null(), "{what}: {body}");
    }
    // The same on a REST row.
    let res = app
        .http
        .post(app.url("/api/v1/users"))
        .header("cookie", &cookie)
        .header("content-type", "text/plain")
        .body(r#"{"email":"csrf2@evil.test","role":"admin"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);
    let res = app
        .http
        .post(app.url("/api/v1/users"))
        .header("cookie", &cookie)
        .header("origin", "http://evil.test")
        .json(&json!({"email": "csrf3@evil.test", "password": "evil-password-1", "role": "admin"}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 403, "{body}");
    assert_envelope(&body, 403, "FORBIDDEN");
    let emails = members(&app).await;
    assert!(
        !emails.iter().any(|e| e.ends_with("@evil.test")),
        "{emails:?}"
    );
}

#[tokio::test]
async fn same_origin_cookie_writes_and_header_credentials_still_work() {
    let app = TestApp::spawn().await;
    let cookie = session_cookie(&app).await;
    let own_origin = format!("http://{}", app.addr);
    let create = |email: &str| json!({"query": format!("mutation {{ inviteMember(input: {{email: \"{email}\", role: VIEWER}}) {{ token }} }}")});
    // The browser on this server's own page (GraphiQL).
    let res = app
        .http
        .post(app.url("/graphql"))
        .header("cookie", &cookie)
        .header("origin", &own_origin)
        .json(&create("page@acme.test"))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"].is_null(), "{body}");
    // Without Origin, a same-origin fetch still says so.
    let res = app
        .http
        .post(app.url("/graphql"))
        .header("cookie", &cookie)
        .header("sec-fetch-site", "same-origin")
        .json(&create("fetch@acme.test"))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert!(body["errors"].is_null(), "{body}");
    // A bearer token is not sent by browsers on their own: any origin, any type.
    let token = app.login_admin().await;
    let res = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&token)
        .header("origin", "http://elsewhere.test")
        .header("content-type", "text/plain")
        .body(r#"{"email":"script@acme.test","role":"viewer"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let emails = members(&app).await;
    for email in ["page@acme.test", "fetch@acme.test", "script@acme.test"] {
        assert!(emails.iter().any(|e| e == email), "{email}: {emails:?}");
    }
}

// --- headers (point 14) ---------------------------------------------------------------------

#[tokio::test]
async fn every_answer_carries_the_browser_protections() {
    let app = TestApp::spawn().await;
    for path in [
        "/api/v1/auth/me",
        "/health",
        "/openapi.json",
        "/no-such-path",
    ] {
        let res = app.get(path).await;
        let h = res.headers();
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert_eq!(h["referrer-policy"], "no-referrer", "{path}");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
    }
    for path in ["/graphql", "/docs/"] {
        let res = app
            .http
            .get(app.url(path))
            .header("accept", "text/html")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{path}");
        let csp = res.headers()["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("script-src 'self'"), "{path}: {csp}");
        assert!(!csp.contains("'unsafe-eval'"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{path}: {csp}");
        assert_eq!(res.headers()["x-frame-options"], "DENY", "{path}");
    }
}

#[tokio::test]
async fn answers_with_tokens_or_keys_are_not_stored() {
    let app = TestApp::spawn().await;
    let login = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.headers()["cache-control"], "no-store");
    let body: Value = login.json().await.unwrap();
    let token = body["data"]["token"].as_str().unwrap().to_string();
    let refresh = body["data"]["refresh_token"].as_str().unwrap().to_string();
    let refreshed = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    assert_eq!(refreshed.headers()["cache-control"], "no-store");
    let key = app
        .http
        .post(app.url("/api/v1/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"label": "ci", "scopes": "read"}))
        .send()
        .await
        .unwrap();
    assert_eq!(key.status(), 201);
    assert_eq!(key.headers()["cache-control"], "no-store");
    let graphql = app
        .gql(
            Auth::None,
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(graphql.headers["cache-control"], "no-store");
    let graphql = app
        .gql(
            Auth::Bearer(&token),
            "mutation { createApiKey(input: {label: \"x\", scopes: READ}) { key } }",
            json!({}),
        )
        .await;
    assert_eq!(graphql.headers["cache-control"], "no-store");
    let invited = app
        .http
        .post(app.url("/api/v1/users"))
        .bearer_auth(&token)
        .json(&json!({"email": "new@acme.test", "role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invited.status(), 201);
    assert_eq!(invited.headers()["cache-control"], "no-store");
}

fn login_head(target: &str, app: &TestApp, body: &str) -> String {
    format!(
        "POST {target} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        app.addr,
        body.len()
    )
}

#[tokio::test]
async fn session_cookies_are_secure_over_https() {
    let app = TestApp::spawn().await;
    let body = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}).to_string();
    // Over plain HTTP (a development server): not marked, or the browser would drop them.
    let plain = raw(
        &app,
        &login_head("/api/v1/auth/login", &app, &body),
        body.as_bytes(),
    )
    .await;
    assert_eq!(plain.status, 200);
    let cookies = plain.headers("set-cookie");
    assert_eq!(cookies.len(), 2, "{}", plain.head);
    assert!(cookies.iter().all(|c| !c.contains("Secure")), "{cookies:?}");
    // A request that names the https scheme (absolute-form, as a TLS front end forwards it).
    let target = format!("https://{}/api/v1/auth/login", app.addr);
    let https = raw(&app, &login_head(&target, &app, &body), body.as_bytes()).await;
    assert_eq!(https.status, 200, "{}", https.head);
    let cookies = https.headers("set-cookie");
    assert_eq!(cookies.len(), 2, "{}", https.head);
    assert!(
        cookies.iter().all(|c| c.ends_with("; Secure")),
        "{cookies:?}"
    );
    // Configured so (a TLS-terminating proxy in front).
    let configured = app_with(|c| c.secure_cookies = true).await;
    let res = raw(
        &configured,
        &login_head("/api/v1/auth/login", &configured, &body),
        body.as_bytes(),
    )
    .await;
    let cookies = res.headers("set-cookie");
    assert_eq!(cookies.len(), 2, "{}", res.head);
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
}

#[tokio::test]
async fn a_stale_authorization_header_does_not_block_signing_in() {
    let app = TestApp::spawn().await;
    let (_, refresh) = app.login(ADMIN_EMAIL, ADMIN_PASSWORD).await;
    let login = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .bearer_auth("expired.or.garbage")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let compat = app
        .http
        .post(app.url("/auth/login"))
        .header("x-api-key", "rmp_revoked")
        .json(&json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(compat.status(), 200);
    let refreshed = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .bearer_auth("expired.or.garbage")
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), 200);
    // The same through GraphQL, where a request that needs the caller still gets the 401.
    let graphql = app
        .gql(
            Auth::Bearer("expired.or.garbage"),
            "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }",
            json!({"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}),
        )
        .await;
    assert!(graphql.data("login")["token"].is_string());
    let me = app
        .gql(
            Auth::Bearer("expired.or.garbage"),
            "{ me { kind } }",
            json!({}),
        )
        .await;
    assert_eq!(me.status, 401, "{}", me.body);
    assert_envelope(&me.body, 401, "UNAUTHENTICATED");
    // Elsewhere a bad credential is still an error, not an anonymous request.
    let me = app
        .http
        .get(app.url("/api/v1/auth/me"))
        .bearer_auth("expired.or.garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(me.status(), 401);
}

// --- WebSocket on /graphql (point 16) -------------------------------------------------------

#[tokio::test]
async fn graphql_websocket_upgrades_are_accepted_on_graphql_too() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, response) = tokio_tungstenite::connect_async(request)
        .await
        .expect("a WebSocket on /graphql");
    assert_eq!(
        response.headers()["sec-websocket-protocol"],
        "graphql-transport-ws"
    );
    let init =
        json!({"type": "connection_init", "payload": {"Authorization": format!("Bearer {token}")}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let ack = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => break serde_json::from_str::<Value>(&text).unwrap(),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    };
    assert_eq!(ack["type"], "connection_ack", "{ack}");
    ws.close(None).await.unwrap();
    // A plain GET is still GraphiQL, and the old path still upgrades.
    let page = app
        .http
        .get(app.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("GraphiQL"));
    let (old, _) = tokio_tungstenite::connect_async(format!("ws://{}/graphql/ws", app.addr))
        .await
        .expect("a WebSocket on /graphql/ws");
    drop(old);
}

#[tokio::test]
async fn websocket_messages_are_bounded_like_bodies() {
    let app = app_with(|c| c.max_body_bytes = 16 * 1024).await;
    let token = app.login_admin().await;
    let mut request = format!("ws://{}/graphql", app.addr)
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "sec-websocket-protocol",
        "graphql-transport-ws".parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    // A valid connection_init, padded past the limit.
    let init = json!({"type": "connection_init", "payload": {
        "Authorization": format!("Bearer {token}"), "pad": "x".repeat(64 * 1024)}});
    ws.send(Message::Text(init.to_string().into()))
        .await
        .unwrap();
    let answer = loop {
        match ws.next().await {
            Some(Ok(Message::Text(text))) => break Some(text.to_string()),
            Some(Ok(Message::Close(_))) | Some(Err(_)) | None => break None,
            Some(Ok(_)) => continue,
        }
    };
    assert_eq!(answer, None, "the server read the oversized message");
}

#[tokio::test]
async fn cookies_are_secure_when_a_trusted_proxy_says_https() {
    let body = json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD});
    let set_cookies = |app: &TestApp| {
        let request = app
            .http
            .post(app.url("/api/v1/auth/login"))
            .header("x-forwarded-proto", "https")
            .json(&body);
        async move {
            let res = request.send().await.unwrap();
            assert_eq!(res.status(), 200);
            res.headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .collect::<Vec<_>>()
        }
    };
    // From anyone, the header means nothing.
    let app = TestApp::spawn().await;
    let cookies = set_cookies(&app).await;
    assert!(cookies.iter().all(|c| !c.contains("Secure")), "{cookies:?}");
    // From a trusted proxy (this test's client, on loopback), it does.
    let behind_proxy =
        app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let cookies = set_cookies(&behind_proxy).await;
    assert_eq!(cookies.len(), 2);
    assert!(
        cookies.iter().all(|c| c.contains("; Secure")),
        "{cookies:?}"
    );
}
