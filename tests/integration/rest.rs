//! The REST layer under `/api/v1`: every row over HTTP (status, envelope, snake_case names,
//! pagination, documented errors), the same answers as GraphQL, and every response checked
//! against the schema the OpenAPI document gives for it.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::{assert_envelope, Auth, TestApp, TestConfig, ADMIN_EMAIL, ADMIN_PASSWORD};

/// One REST answer.
pub(crate) struct Rest {
    pub(crate) status: u16,
    pub(crate) headers: reqwest::header::HeaderMap,
    pub(crate) body: Value,
}

/// A REST client that checks every answer against the served OpenAPI document.
pub(crate) struct Client<'a> {
    app: &'a TestApp,
    doc: Value,
}

impl<'a> Client<'a> {
    pub(crate) async fn new(app: &'a TestApp) -> Self {
        let (status, doc) = app.get_json("/openapi.json").await;
        assert_eq!(status, 200);
        Self { app, doc }
    }

    pub(crate) async fn call(
        &self,
        auth: Auth<'_>,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Rest {
        let mut req = self.app.http.request(method.clone(), self.app.url(path));
        req = match auth {
            Auth::None => req,
            Auth::Bearer(token) => req.bearer_auth(token),
            Auth::ApiKey(key) => req.header("x-api-key", key),
        };
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.expect("request");
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
        };
        self.conforms(&method, path, status, &headers, &body);
        Rest {
            status,
            headers,
            body,
        }
    }

    pub(crate) async fn get(&self, auth: Auth<'_>, path: &str) -> Rest {
        self.call(auth, Method::GET, path, None).await
    }

    pub(crate) async fn post(&self, auth: Auth<'_>, path: &str, body: Value) -> Rest {
        self.call(auth, Method::POST, path, Some(body)).await
    }

    /// Fails the test unless `body` matches the schema the document gives for this answer, and
    /// its headers match the ones the document describes for it.
    fn conforms(
        &self,
        method: &Method,
        path: &str,
        status: u16,
        headers: &reqwest::header::HeaderMap,
        body: &Value,
    ) {
        let bare = path.split('?').next().unwrap();
        let Some(template) = template_for(&self.doc, bare) else {
            // Unknown paths answer the 404 envelope, which no path documents.
            assert_envelope(body, 404, "NOT_FOUND");
            return;
        };
        let op = &self.doc["paths"][template.as_str()][method.as_str().to_lowercase()];
        assert!(op.is_object(), "{method} {template} is not documented");
        let response = &op["responses"][status.to_string()];
        assert!(
            response.is_object(),
            "{method} {template} answered {status}, which it does not document: {body}"
        );
        headers_conform(
            response,
            headers,
            status,
            &format!("{method} {template} {status}"),
        );
        match response["content"]["application/json"]["schema"].as_object() {
            None => assert!(body.is_null(), "{status} documents no body, got {body}"),
            Some(_) => check(
                &self.doc,
                &response["content"]["application/json"]["schema"],
                body,
                &format!("{method} {template} {status}"),
            ),
        }
    }
}

/// The headers Rampart sets on purpose: wherever one is sent, the document describes it.
const DESCRIBED_HEADERS: &[&str] = &[
    "x-request-id",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "retry-after",
    "set-cookie",
    "location",
];

/// Every header of [`DESCRIBED_HEADERS`] that was sent is described for this answer, and a
/// success sends every header described for it.
fn headers_conform(response: &Value, headers: &reqwest::header::HeaderMap, status: u16, at: &str) {
    let described: Vec<String> = response["headers"]
        .as_object()
        .map(|h| h.keys().map(|k| k.to_ascii_lowercase()).collect())
        .unwrap_or_default();
    for name in DESCRIBED_HEADERS {
        if headers.contains_key(*name) {
            assert!(
                described.iter().any(|d| d == name),
                "{at}: sent {name}, which the document does not describe"
            );
        }
    }
    if (200..300).contains(&status) {
        for name in &described {
            assert!(
                headers.contains_key(name.as_str()),
                "{at}: the document describes {name}, which was not sent"
            );
        }
    }
}

/// The documented path template that `path` matches (literal segments win over parameters).
fn template_for(doc: &Value, path: &str) -> Option<String> {
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"]
        .as_object()?
        .keys()
        .filter_map(|template| {
            let parts: Vec<&str> = template.split('/').collect();
            if parts.len() != segments.len() {
                return None;
            }
            let mut literal = 0;
            for (p, s) in parts.iter().zip(&segments) {
                if p.starts_with('{') {
                    continue;
                }
                if p != s {
                    return None;
                }
                literal += 1;
            }
            Some((literal, template.clone()))
        })
        .max()
        .map(|(_, t)| t)
}

/// A small JSON Schema (2020-12 subset) checker: `$ref`, `type` (one or several), `enum`,
/// `required`, `properties`, `additionalProperties: false`, `items`, `format` uuid/date-time.
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.trim_start_matches("#/components/schemas/");
        return check(doc, &doc["components"]["schemas"][name], value, at);
    }
    let kind = match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_i64() || n.is_u64() => "integer",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    };
    let allowed: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    };
    if !allowed.is_empty() {
        assert!(
            allowed.contains(&kind) || (kind == "integer" && allowed.contains(&"number")),
            "{at}: {value} is {kind}, the schema says {allowed:?}"
        );
    }
    if let Some(values) = schema["enum"].as_array() {
        assert!(
            values.contains(value),
            "{at}: {value} is not one of {values:?}"
        );
    }
    match (schema["format"].as_str(), value) {
        (Some("uuid"), Value::String(s)) => {
            assert!(uuid::Uuid::parse_str(s).is_ok(), "{at}: {s} is not a UUID")
        }
        (Some("date-time"), Value::String(s)) => assert!(
            chrono::DateTime::parse_from_rfc3339(s).is_ok(),
            "{at}: {s} is not a date-time"
        ),
        _ => {}
    }
    match value {
        Value::Object(map) => {
            for required in schema["required"].as_array().into_iter().flatten() {
                let key = required.as_str().unwrap();
                assert!(map.contains_key(key), "{at}: missing {key} in {value}");
            }
            let properties = schema["properties"].as_object();
            for (key, v) in map {
                match properties.and_then(|p| p.get(key)) {
                    Some(sub) => check(doc, sub, v, &format!("{at}.{key}")),
                    None => assert!(
                        schema["additionalProperties"] != json!(false),
                        "{at}: {key} is not in the schema"
                    ),
                }
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                check(doc, &schema["items"], item, &format!("{at}[{i}]"));
            }
        }
        _ => {}
    }
}

/// GraphQL's answer in REST spelling: camelCase keys become snake_case and SCREAMING enum
/// values lowercase.
fn rest_spelling(value: &Value) -> Value {
    fn snake(name: &str) -> String {
        let mut out = String::new();
        for c in name.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        out
    }
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (snake(k), rest_spelling(v)))
                .collect(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(rest_spelling).collect()),
        Value::String(s)
            if !s.is_empty() && s.chars().all(|c| c.is_ascii_uppercase() || c == '_') =>
        {
            Value::String(s.to_lowercase())
        }
        other => other.clone(),
    }
}

fn cookies(headers: &reqwest::header::HeaderMap) -> Vec<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect()
}

async fn rest_login(api: &Client<'_>) -> (String, String) {
    let res = api
        .post(
            Auth::None,
            "/api/v1/auth/login",
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    (
        res.body["data"]["token"].as_str().unwrap().to_string(),
        res.body["data"]["refresh_token"]
            .as_str()
            .unwrap()
            .to_string(),
    )
}

#[tokio::test]
async fn login_refresh_me_logout() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;

    let login = api
        .post(
            Auth::None,
            "/api/v1/auth/login",
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(login.status, 200, "{}", login.body);
    let data = &login.body["data"];
    assert_eq!(data["expires_in"], 900);
    assert_eq!(data["user"]["email"], ADMIN_EMAIL);
    assert_eq!(data["user"]["role"], "owner");
    assert_eq!(data["user"]["org_slug"], "default");
    assert!(data["user"]["org_id"].is_string());
    let set = cookies(&login.headers);
    assert!(
        set.iter()
            .any(|c| c.starts_with("token=") && c.contains("HttpOnly")),
        "{set:?}"
    );
    assert!(set
        .iter()
        .any(|c| c.starts_with("refresh_token=") && c.contains("Path=/api/v1/auth")));
    let token = data["token"].as_str().unwrap().to_string();
    let refresh = data["refresh_token"].as_str().unwrap().to_string();

    // The KafkaGuard alias answers the same object without the wrapper.
    let alias = api
        .post(
            Auth::None,
            "/auth/login",
            json!({"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(alias.status, 200);
    assert!(alias.body.get("data").is_none());
    assert_eq!(alias.body["user"]["role"], "owner");
    assert!(alias.body["refresh_token"].is_string());

    // Wrong password and unknown email: the same 401.
    for (email, password) in [
        (ADMIN_EMAIL, "wrong-password"),
        ("nobody@acme.test", ADMIN_PASSWORD),
    ] {
        let denied = api
            .post(
                Auth::None,
                "/api/v1/auth/login",
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(denied.status, 401);
        assert_envelope(&denied.body, 401, "UNAUTHENTICATED");
    }
    // A missing field is invalid input, named.
    let missing = api
        .post(
            Auth::None,
            "/api/v1/auth/login",
            json!({"email": ADMIN_EMAIL}),
        )
        .await;
    assert_eq!(missing.status, 422);
    assert_envelope(&missing.body, 422, "VALIDATION_FAILED");
    assert_eq!(missing.body["details"][0]["field"], "password");
    let not_json = app
        .http
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);

    let me = api.get(Auth::Bearer(&token), "/api/v1/auth/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["data"]["kind"], "user");
    assert_eq!(me.body["data"]["role"], "owner");
    assert_eq!(me.body["data"]["user"]["email"], ADMIN_EMAIL);
    assert!(me.body["data"]["api_key"].is_null());
    assert!(me.body["data"]["user"]["joined_at"].is_string());

    // Refresh from the body, then from the cookie.
    let rotated = api
        .post(
            Auth::None,
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let refresh2 = rotated.body["data"]["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(refresh2, refresh);
    let by_cookie = app
        .http
        .post(app.url("/api/v1/auth/refresh"))
        .header("cookie", format!("refresh_token={refresh2}"))
        .send()
        .await
        .unwrap();
    assert_eq!(by_cookie.status(), 200);
    let by_cookie: Value = by_cookie.json().await.unwrap();
    let token3 = by_cookie["data"]["token"].as_str().unwrap().to_string();
    // Reusing a rotated-out token ends the session.
    let reused = api
        .post(
            Auth::None,
            "/api/v1/auth/refresh",
            json!({"refresh_token": refresh}),
        )
        .await;
    assert_eq!(reused.status, 401);
    let no_token = api
        .post(Auth::None, "/api/v1/auth/refresh", json!({}))
        .await;
    assert_eq!(no_token.status, 401);
    assert_envelope(&no_token.body, 401, "UNAUTHENTICATED");

    let (token, _) = rest_login(&api).await;
    let _ = token3;
    let logout = api
        .call(
            Auth::Bearer(&token),
            Method::POST,
            "/api/v1/auth/logout",
            None,
        )
        .await;
    assert_eq!(logout.status, 204);
    assert!(cookies(&logout.headers)
        .iter()
        .any(|c| c.starts_with("token=;")));
    let after = api.get(Auth::Bearer(&token), "/api/v1/auth/me").await;
    assert_eq!(after.status, 401);

    let anonymous = api.get(Auth::None, "/api/v1/auth/me").await;
    assert_eq!(anonymous.status, 401);
    assert_envelope(&anonymous.body, 401, "UNAUTHENTICATED");
}

#[tokio::test]
async fn login_rate_limit_keeps_retry_after() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    let mut last = None;
    for _ in 0..11 {
        last = Some(
            api.post(
                Auth::None,
                "/api/v1/auth/login",
                json!({"email": "nobody@acme.test", "password": "x"}),
            )
            .await,
        );
    }
    let last = last.unwrap();
    assert_eq!(last.status, 429);
    assert_envelope(&last.body, 429, "RATE_LIMITED");
    let retry: u64 = last.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry >= 1);
}

#[tokio::test]
async fn organizations_and_switching() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;

    let created = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/organizations",
            json!({"name": "Globex", "slug": "globex"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["data"]["slug"], "globex");
    assert!(created.body["data"]["created_at"].is_string());
    let org_id = created.body["data"]["id"].as_str().unwrap().to_string();
    let taken = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/organizations",
            json!({"name": "Globex", "slug": "globex"}),
        )
        .await;
    assert_eq!(taken.status, 409);
    let bad = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/organizations",
            json!({"name": "", "slug": "Bad Slug"}),
        )
        .await;
    assert_eq!(bad.status, 422);
    assert!(
        bad.body["details"]
            .as_array()
            .is_some_and(|d| !d.is_empty()),
        "{}",
        bad.body
    );

    let list = api.get(Auth::Bearer(&token), "/api/v1/organizations").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["meta"]["total"], 2, "{}", list.body);
    let orgs = list.body["data"].as_array().unwrap();
    assert_eq!(orgs.len(), 2);
    assert!(orgs.iter().all(|o| o["role"] == "owner"));

    let switched = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/auth/switch-org",
            json!({"org_id": org_id}),
        )
        .await;
    assert_eq!(switched.status, 200, "{}", switched.body);
    assert_eq!(switched.body["data"]["user"]["org_id"], org_id.as_str());
    assert_eq!(switched.body["data"]["user"]["org_slug"], "globex");
    // Switching rotates the session: the old access token is done.
    let token = switched.body["data"]["token"].as_str().unwrap().to_string();
    let bad_id = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/auth/switch-org",
            json!({"org_id": "not-a-uuid"}),
        )
        .await;
    assert_eq!(bad_id.status, 422);
    assert_eq!(bad_id.body["details"][0]["field"], "org_id");
}

#[tokio::test]
async fn api_key_rows_and_their_errors() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;

    let created = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/api-keys",
            json!({"label": "ci", "scopes": "write"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let data = &created.body["data"];
    let key = data["key"].as_str().unwrap().to_string();
    assert!(key.starts_with("rmp_"));
    assert!(data["message"]
        .as_str()
        .unwrap()
        .contains("will not be shown again"));
    assert_eq!(data["api_key"]["scopes"], "write");
    assert_eq!(data["api_key"]["active"], true);
    assert!(data["api_key"]["expires_at"].is_null());
    let key_id = data["api_key"]["id"].as_str().unwrap().to_string();

    // The default scope, and the documented errors.
    let read = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/api-keys",
            json!({"label": "reader"}),
        )
        .await;
    assert_eq!(read.body["data"]["api_key"]["scopes"], "read");
    let bad_enum = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/api-keys",
            json!({"label": "x", "scopes": "WRITE"}),
        )
        .await;
    assert_eq!(bad_enum.status, 422);
    assert_eq!(bad_enum.body["details"][0]["field"], "scopes");
    let too_long = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/api-keys",
            json!({"label": "x".repeat(101)}),
        )
        .await;
    assert_eq!(too_long.status, 422);
    assert_envelope(&too_long.body, 422, "VALIDATION_FAILED");
    assert_eq!(too_long.body["details"][0]["field"], "label");
    let unknown_field = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/api-keys",
            json!({"label": "x", "colour": "red"}),
        )
        .await;
    assert_eq!(unknown_field.status, 422);
    assert_eq!(unknown_field.body["details"][0]["field"], "colour");
    let past = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/api-keys",
            json!({"label": "x", "expires_at": "2001-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(past.status, 422);
    assert_eq!(past.body["details"][0]["field"], "expires_at");

    let no_credentials = api
        .post(Auth::None, "/api/v1/api-keys", json!({"label": "x"}))
        .await;
    assert_eq!(no_credentials.status, 401);
    assert_envelope(&no_credentials.body, 401, "UNAUTHENTICATED");
    let by_key = api
        .post(
            Auth::ApiKey(&key),
            "/api/v1/api-keys",
            json!({"label": "minted by a key"}),
        )
        .await;
    assert_eq!(by_key.status, 403);
    assert_envelope(&by_key.body, 403, "SESSION_REQUIRED");

    let me = api.get(Auth::ApiKey(&key), "/api/v1/api-keys/me").await;
    assert_eq!(me.status, 200);
    assert_eq!(me.body["data"]["id"], key_id.as_str());
    assert_eq!(me.body["data"]["label"], "ci");
    let who = api.get(Auth::ApiKey(&key), "/api/v1/auth/me").await;
    assert_eq!(who.body["data"]["kind"], "api_key");
    assert_eq!(who.body["data"]["scopes"], "write");
    assert!(who.body["data"]["user"].is_null());

    let list = api.get(Auth::Bearer(&token), "/api/v1/api-keys").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["meta"]["total"], 2);
    // Listing keys is for admins; a key has no role.
    let by_key = api.get(Auth::ApiKey(&key), "/api/v1/api-keys").await;
    assert_eq!(by_key.status, 403);

    let unknown_param = api
        .get(Auth::Bearer(&token), "/api/v1/api-keys?colour=red")
        .await;
    assert_eq!(unknown_param.status, 400);
    assert_envelope(&unknown_param.body, 400, "BAD_REQUEST");
    assert_eq!(unknown_param.body["details"][0]["field"], "colour");
    let bad_page = api
        .get(Auth::Bearer(&token), "/api/v1/api-keys?page=two")
        .await;
    assert_eq!(bad_page.status, 400);
    assert_eq!(bad_page.body["details"][0]["field"], "page");
    let big_page = api
        .get(Auth::Bearer(&token), "/api/v1/api-keys?page_size=501")
        .await;
    assert_eq!(big_page.status, 400);
    assert_eq!(big_page.body["details"][0]["field"], "page_size");

    let malformed = api
        .call(
            Auth::Bearer(&token),
            Method::DELETE,
            "/api/v1/api-keys/not-a-uuid",
            None,
        )
        .await;
    assert_eq!(malformed.status, 400);
    assert_envelope(&malformed.body, 400, "BAD_REQUEST");
    assert_eq!(malformed.body["details"][0]["field"], "id");

    // Another org's key answers exactly like a missing one.
    let other = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/organizations",
            json!({"name": "Other", "slug": "other"}),
        )
        .await;
    let other_id = other.body["data"]["id"].as_str().unwrap();
    let switched = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/auth/switch-org",
            json!({"org_id": other_id}),
        )
        .await;
    let other_token = switched.body["data"]["token"].as_str().unwrap().to_string();
    // The switch rotated the session; sign in again for the first org.
    let (token, _) = rest_login(&api).await;
    let foreign = api
        .call(
            Auth::Bearer(&other_token),
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(foreign.status, 404);
    assert_envelope(&foreign.body, 404, "NOT_FOUND");
    let missing = api
        .call(
            Auth::Bearer(&token),
            Method::DELETE,
            &format!("/api/v1/api-keys/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await;
    assert_eq!(missing.status, 404);

    let by_key = api
        .call(
            Auth::ApiKey(&key),
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(by_key.status, 403);
    assert_envelope(&by_key.body, 403, "SESSION_REQUIRED");
    let revoked = api
        .call(
            Auth::Bearer(&token),
            Method::DELETE,
            &format!("/api/v1/api-keys/{key_id}"),
            None,
        )
        .await;
    assert_eq!(revoked.status, 204);
    let dead = api.get(Auth::ApiKey(&key), "/api/v1/api-keys/me").await;
    assert_eq!(dead.status, 401);
}

#[tokio::test]
async fn lists_page_with_meta_and_links() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;
    for i in 0..5 {
        let res = api
            .post(
                Auth::Bearer(&token),
                "/api/v1/api-keys",
                json!({"label": format!("key {i}")}),
            )
            .await;
        assert_eq!(res.status, 201);
    }
    let page = |n: u32| format!("/api/v1/api-keys?page={n}&page_size=2");
    let link = |n: u32| json!(format!("/api/v1/api-keys?page={n}&page_size=2"));

    let first = api.get(Auth::Bearer(&token), &page(1)).await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body["data"].as_array().unwrap().len(), 2);
    assert_eq!(
        first.body["meta"],
        json!({"total": 5, "page": 1, "page_size": 2, "total_pages": 3})
    );
    assert_eq!(
        first.body["links"],
        json!({"self": link(1), "first": link(1), "prev": null, "next": link(2), "last": link(3)})
    );

    let middle = api.get(Auth::Bearer(&token), &page(2)).await;
    assert_eq!(middle.body["meta"]["page"], 2);
    assert_eq!(middle.body["links"]["prev"], link(1));
    assert_eq!(middle.body["links"]["next"], link(3));
    let first_ids: Vec<_> = first.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].clone())
        .collect();
    assert!(middle.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|k| !first_ids.contains(&k["id"])));

    let last = api.get(Auth::Bearer(&token), &page(3)).await;
    assert_eq!(last.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(last.body["links"]["next"], Value::Null);
    assert_eq!(last.body["links"]["last"], link(3));

    let beyond = api.get(Auth::Bearer(&token), &page(7)).await;
    assert_eq!(beyond.status, 200);
    assert_eq!(beyond.body["data"], json!([]));
    assert_eq!(
        beyond.body["meta"],
        json!({"total": 5, "page": 7, "page_size": 2, "total_pages": 3})
    );
    assert_eq!(beyond.body["links"]["prev"], link(3));
    assert_eq!(beyond.body["links"]["next"], Value::Null);

    // `limit` is an alias of `page_size`; the default page size is 50.
    let limited = api
        .get(Auth::Bearer(&token), "/api/v1/api-keys?limit=4")
        .await;
    assert_eq!(limited.body["meta"]["page_size"], 4);
    assert_eq!(limited.body["data"].as_array().unwrap().len(), 4);
    let zero = api
        .get(Auth::Bearer(&token), "/api/v1/api-keys?page=0")
        .await;
    assert_eq!(zero.status, 400);
    assert_eq!(zero.body["details"][0]["field"], "page");
    let bad_alias = api
        .get(
            Auth::Bearer(&token),
            "/api/v1/api-keys?page_size=2&limit=9000",
        )
        .await;
    assert_eq!(bad_alias.status, 400);
    assert_eq!(bad_alias.body["details"][0]["field"], "limit");
    let both = api
        .get(Auth::Bearer(&token), "/api/v1/api-keys?limit=4&page_size=3")
        .await;
    assert_eq!(
        both.body["meta"]["page_size"], 3,
        "page_size wins over limit"
    );
    let default = api.get(Auth::Bearer(&token), "/api/v1/api-keys").await;
    assert_eq!(default.body["meta"]["page_size"], 50);
    assert_eq!(default.body["meta"]["total_pages"], 1);
}

#[tokio::test]
async fn user_rows_and_null_versus_absent() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;

    // Adding a person is inviting them; a new person signs up with the token.
    let invited = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/users",
            json!({"email": "dev@acme.test", "role": "member"}),
        )
        .await;
    assert_eq!(invited.status, 201, "{}", invited.body);
    assert_eq!(invited.body["data"]["invitation"]["role"], "member");
    assert_eq!(invited.body["data"]["invitation"]["status"], "pending");
    let created = api
        .post(
            Auth::None,
            "/api/v1/invitations/sign-up",
            json!({"token": invited.body["data"]["token"], "password": "member-password", "display_name": "Dev"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert_eq!(created.body["data"]["member"]["role"], "member");
    assert_eq!(created.body["data"]["member"]["display_name"], "Dev");
    let id = created.body["data"]["member"]["id"]
        .as_str()
        .unwrap()
        .to_string();

    let bad_email = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/users",
            json!({"email": "nope", "role": "viewer"}),
        )
        .await;
    assert_eq!(bad_email.status, 422);
    assert_eq!(bad_email.body["details"][0]["field"], "email");
    let no_role = api
        .post(
            Auth::Bearer(&token),
            "/api/v1/users",
            json!({"email": "x@acme.test"}),
        )
        .await;
    assert_eq!(no_role.status, 422);
    assert_eq!(no_role.body["details"][0]["field"], "role");

    let list = api.get(Auth::Bearer(&token), "/api/v1/users").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["meta"]["total"], 2);

    let patched = api
        .call(
            Auth::Bearer(&token),
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["data"]["role"], "admin");
    // `role` may not be cleared: an explicit null is refused; absent means "not given".
    let null_role = api
        .call(
            Auth::Bearer(&token),
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({"role": null})),
        )
        .await;
    assert_eq!(null_role.status, 422);
    assert_eq!(null_role.body["details"][0]["message"], "must not be null");
    let absent = api
        .call(
            Auth::Bearer(&token),
            Method::PATCH,
            &format!("/api/v1/users/{id}"),
            Some(json!({})),
        )
        .await;
    // An empty change changes nothing (display name and active state are optional too).
    assert_eq!(absent.status, 200, "{}", absent.body);
    assert_eq!(absent.body["data"]["role"], "admin");

    // A key's first use is recorded while writes go on (it must not make them fail).
    let key = app.create_key(&token, "WRITE").await;
    let by_key = api.get(Auth::ApiKey(&key), "/api/v1/users").await;
    assert_eq!(by_key.status, 403);
    assert_envelope(&by_key.body, 403, "SESSION_REQUIRED");

    let removed = api
        .call(
            Auth::Bearer(&token),
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            None,
        )
        .await;
    assert_eq!(removed.status, 204);
    let again = api
        .call(
            Auth::Bearer(&token),
            Method::DELETE,
            &format!("/api/v1/users/{id}"),
            None,
        )
        .await;
    assert_eq!(again.status, 404);
}

#[tokio::test]
async fn read_routes_answer_what_graphql_answers() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;
    let key = app.create_key(&token, "READ").await;
    app.add_member(&token, "viewer@acme.test", "VIEWER").await;
    // The key's first use sets `last_used_at` (then at most once a minute), stored off the
    // request path: wait until it is, so both surfaces below read the same value.
    assert_eq!(
        api.get(Auth::ApiKey(&key), "/api/v1/api-keys/me")
            .await
            .status,
        200
    );
    for _ in 0..200 {
        let seen = app
            .gql(
                Auth::ApiKey(&key),
                "{ currentApiKey { lastUsedAt } }",
                json!({}),
            )
            .await;
        if !seen.data("currentApiKey")["lastUsedAt"].is_null() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    const KEY: &str = "id label prefix scopes expiresAt lastUsedAt revokedAt createdAt active";
    const MEMBER: &str = "id email displayName role joinedAt active";
    const ORG: &str = "id slug name createdAt requireAdminMfa";
    let cases: Vec<(Auth, &str, String, &str)> = vec![
        (
            Auth::Bearer(&token),
            "/api/v1/auth/me",
            format!("{{ me {{ kind role scopes organization {{ {ORG} }} user {{ {MEMBER} }} apiKey {{ {KEY} }} }} }}"),
            "me",
        ),
        (
            Auth::ApiKey(&key),
            "/api/v1/auth/me",
            format!("{{ me {{ kind role scopes organization {{ {ORG} }} user {{ {MEMBER} }} apiKey {{ {KEY} }} }} }}"),
            "me",
        ),
        (Auth::ApiKey(&key), "/api/v1/api-keys/me", format!("{{ currentApiKey {{ {KEY} }} }}"), "currentApiKey"),
        (
            Auth::Bearer(&token),
            "/api/v1/organizations",
            format!("{{ organizations {{ totalCount page pageSize totalPages nodes {{ organization {{ {ORG} }} role }} }} }}"),
            "organizations",
        ),
        (
            Auth::Bearer(&token),
            "/api/v1/api-keys?page=1&page_size=10",
            format!("{{ apiKeys(page: 1, pageSize: 10) {{ totalCount page pageSize totalPages nodes {{ {KEY} }} }} }}"),
            "apiKeys",
        ),
        (
            Auth::Bearer(&token),
            "/api/v1/users",
            format!("{{ users {{ totalCount page pageSize totalPages nodes {{ {MEMBER} }} }} }}"),
            "users",
        ),
    ];
    for (auth, path, query, field) in cases {
        let rest = api.get(auth, path).await;
        assert_eq!(rest.status, 200, "{path}: {}", rest.body);
        let gql = app.gql(auth, &query, json!({})).await;
        let expected = rest_spelling(gql.data(field));
        match expected.get("nodes") {
            Some(nodes) => {
                assert_eq!(rest.body["data"], *nodes, "{path}");
                assert_eq!(
                    rest.body["meta"],
                    json!({
                        "total": expected["total_count"],
                        "page": expected["page"],
                        "page_size": expected["page_size"],
                        "total_pages": expected["total_pages"],
                    }),
                    "{path}"
                );
            }
            None => assert_eq!(rest.body["data"], expected, "{path}"),
        }
    }
}

#[tokio::test]
async fn unknown_api_paths_keep_the_404_envelope() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;
    let res = api.get(Auth::Bearer(&token), "/api/v1/no-such-thing").await;
    assert_eq!(res.status, 404);
    assert_envelope(&res.body, 404, "NOT_FOUND");
    let wrong_method = app
        .http
        .put(app.url("/api/v1/api-keys"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_method.status(), 405);
    let body: Value = wrong_method.json().await.unwrap();
    assert_eq!(body["code"], "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn the_document_describes_every_row() {
    let app = TestApp::spawn().await;
    let (_, doc) = app.get_json("/api/v1/openapi.json").await;
    for (method, path) in [
        ("post", "/api/v1/auth/login"),
        ("post", "/auth/login"),
        ("post", "/api/v1/auth/refresh"),
        ("post", "/api/v1/auth/logout"),
        ("get", "/api/v1/auth/me"),
        ("post", "/api/v1/auth/switch-org"),
        ("get", "/api/v1/api-keys"),
        ("post", "/api/v1/api-keys"),
        ("delete", "/api/v1/api-keys/{id}"),
        ("get", "/api/v1/api-keys/me"),
        ("get", "/api/v1/users"),
        ("post", "/api/v1/users"),
        ("patch", "/api/v1/users/{id}"),
        ("delete", "/api/v1/users/{id}"),
        ("get", "/api/v1/invitations"),
        ("post", "/api/v1/invitations"),
        ("get", "/api/v1/invitations/mine"),
        ("post", "/api/v1/invitations/sign-up"),
        ("post", "/api/v1/invitations/{id}/accept"),
        ("post", "/api/v1/invitations/{id}/decline"),
        ("delete", "/api/v1/invitations/{id}"),
        ("get", "/api/v1/organizations"),
        ("post", "/api/v1/organizations"),
    ] {
        let op = &doc["paths"][path][method];
        assert!(op["operationId"].is_string(), "{method} {path}");
        assert!(op["tags"][0].is_string(), "{method} {path}");
        assert!(op["responses"]["429"].is_object(), "{method} {path}");
    }
    // Enum spellings and descriptions come from the GraphQL schema.
    let scopes = &doc["components"]["schemas"]["CurrentApiKeyResponse"]["properties"]["data"]
        ["properties"]["scopes"];
    assert_eq!(scopes["enum"], json!(["read", "write", "engines"]));
    assert_eq!(
        scopes["description"],
        "`read`, `write` (which includes read), or `engines` (which includes write)."
    );
    let body = &doc["paths"]["/api/v1/api-keys"]["post"]["requestBody"]["content"]
        ["application/json"]["schema"];
    assert_eq!(body["required"], json!(["label"]));
    assert_eq!(
        body["properties"]["expires_at"]["type"],
        json!(["string", "null"])
    );
    assert!(doc["paths"]["/api/v1/auth/refresh"]["post"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["in"] == "cookie" && p["name"] == "refresh_token"));
    assert!(
        doc["paths"]["/api/v1/users/{id}"]["patch"]["requestBody"]["description"]
            .as_str()
            .unwrap()
            .contains("`null`")
    );
}

#[tokio::test]
async fn an_upload_answers_with_the_scan_row() {
    // No workers: the scan stays queued, so the upload's answer and the row's can be compared whole.
    let mut test_config = TestConfig::new().await;
    test_config.config.workers = 0;
    let app = TestApp::spawn_with(test_config.config.clone()).await;
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;
    let report = rampart::ingest::synthetic::sarif(
        "semgrep",
        (0..3).map(rampart::ingest::synthetic::SyntheticResult::numbered),
    );
    let res = app
        .ingest(
            Auth::Bearer(&token),
            "target=svc&target_kind=repository",
            report,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    api.conforms(
        &Method::POST,
        "/api/v1/ingest",
        res.status,
        &res.headers,
        &res.body,
    );
    let id = res.body["data"]["id"].as_str().unwrap().to_string();
    assert_eq!(
        res.headers["location"].to_str().unwrap(),
        format!("/api/v1/scans/{id}")
    );
    assert_eq!(res.body["links"]["self"], format!("/api/v1/scans/{id}"));
    assert_eq!(res.body["links"]["raw"], format!("/api/v1/scans/{id}/raw"));
    let row = api
        .get(Auth::Bearer(&token), &format!("/api/v1/scans/{id}"))
        .await;
    assert_eq!(row.status, 200, "{}", row.body);
    assert_eq!(res.body["data"], row.body["data"]);
    assert_eq!(res.body["data"]["status"], "queued");
    assert_eq!(res.body["data"]["target"]["kind"], "repository");

    // The document gives the upload the row's schema for `data`, and a binary body.
    let op = &api.doc["paths"]["/api/v1/ingest"]["post"];
    let accepted = &api.doc["components"]["schemas"]["ScanAcceptedResponse"];
    assert_eq!(
        accepted["properties"]["data"],
        api.doc["components"]["schemas"]["GetScanResponse"]["properties"]["data"]
    );
    assert_eq!(
        op["requestBody"]["content"]["application/octet-stream"]["schema"],
        json!({"type": "string", "format": "binary"})
    );
}

#[tokio::test]
async fn session_cookies_and_budgets_are_described() {
    let app = TestApp::spawn().await;
    let api = Client::new(&app).await;
    // Login sets cookies: `conforms` (inside `post`) checks they are described, and sent.
    let (token, _) = rest_login(&api).await;
    let logout = api
        .post(Auth::Bearer(&token), "/api/v1/auth/logout", json!({}))
        .await;
    assert_eq!(logout.status, 204);
    assert!(!cookies(&logout.headers).is_empty());
    let doc = &api.doc;
    for (path, method) in [
        ("/api/v1/auth/login", "post"),
        ("/api/v1/auth/logout", "post"),
    ] {
        let success = doc["paths"][path][method]["responses"]
            .as_object()
            .unwrap()
            .iter()
            .find(|(status, _)| status.starts_with('2'))
            .unwrap()
            .1;
        assert!(
            success["headers"]["Set-Cookie"].is_object(),
            "{method} {path}"
        );
    }
    // Every operation answers with its budget, except the probes (outside the limiter).
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            for (status, response) in op["responses"].as_object().unwrap() {
                let limited = response["headers"]["RateLimit-Remaining"].is_object();
                let probe = ["/health", "/ready", "/health/services"].contains(&path.as_str());
                assert_eq!(limited, !probe, "{method} {path} {status}");
                assert_eq!(
                    response["headers"]["Retry-After"].is_object(),
                    status == "429",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // Query parameters are present or absent, never null.
    for p in doc["paths"]["/api/v1/findings"]["get"]["parameters"]
        .as_array()
        .unwrap()
    {
        assert!(
            !p["schema"]["type"]
                .as_array()
                .is_some_and(|t| t.contains(&json!("null"))),
            "{p}"
        );
    }
}

#[tokio::test]
async fn webhook_rows_conform_to_the_document() {
    let tc = TestConfig::new().await;
    let mut config = tc.config.clone();
    config.webhook_allow_cidrs = vec!["127.0.0.0/8".parse().unwrap()];
    config.webhook_ports = vec![9];
    let mut app = TestApp::spawn_with(config).await;
    app.test_config = Some(tc);
    let api = Client::new(&app).await;
    let (token, _) = rest_login(&api).await;
    let auth = Auth::Bearer(&token);

    let created = api
        .post(
            auth,
            "/api/v1/webhooks",
            json!({"url": "http://127.0.0.1:9/hook", "events": ["scan_completed", "finding_new"], "min_severity": "high"}),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    assert!(created.body["data"]["secret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    let id = created.body["data"]["webhook"]["id"]
        .as_str()
        .unwrap()
        .to_string();
    let list = api.get(auth, "/api/v1/webhooks").await;
    assert_eq!(list.status, 200);
    assert_eq!(list.body["meta"]["total"], 1);
    assert_eq!(
        api.get(auth, &format!("/api/v1/webhooks/{id}"))
            .await
            .status,
        200
    );
    let patched = api
        .call(
            auth,
            Method::PATCH,
            &format!("/api/v1/webhooks/{id}"),
            Some(json!({"description": "chat", "min_severity": null})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["data"]["min_severity"], Value::Null);
    let rotated = api
        .call(
            auth,
            Method::POST,
            &format!("/api/v1/webhooks/{id}/rotate-secret"),
            None,
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let pinged = api
        .call(
            auth,
            Method::POST,
            &format!("/api/v1/webhooks/{id}/ping"),
            None,
        )
        .await;
    assert_eq!(pinged.status, 202, "{}", pinged.body);
    assert_eq!(pinged.body["data"]["event"], "ping");
    let delivery = pinged.body["data"]["id"].as_str().unwrap().to_string();
    let log = api
        .get(auth, &format!("/api/v1/webhooks/{id}/deliveries"))
        .await;
    assert_eq!(log.status, 200);
    assert_eq!(log.body["data"][0]["id"], delivery.as_str());
    assert_eq!(
        api.get(auth, &format!("/api/v1/webhook-deliveries/{delivery}"))
            .await
            .status,
        200
    );
    // Still being attempted (nothing listens on port 9; the next retry is seconds away).
    let again = api
        .call(
            auth,
            Method::POST,
            &format!("/api/v1/webhook-deliveries/{delivery}/redeliver"),
            None,
        )
        .await;
    assert_eq!(again.status, 409, "{}", again.body);
    let refused = api
        .post(
            auth,
            "/api/v1/webhooks",
            json!({"url": "http://10.0.0.1:9/hook", "events": ["scan_completed"]}),
        )
        .await;
    assert_envelope(&refused.body, 422, "VALIDATION_FAILED");
    let deleted = api
        .call(
            auth,
            Method::DELETE,
            &format!("/api/v1/webhooks/{id}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 204);
}
