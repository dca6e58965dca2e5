//! GraphiQL at `GET /graphql` and Swagger UI at `/docs/`: every file they load is served by
//! Rampart itself (no CDN), so both work with no internet access.

use reqwest::header;

use crate::support::{assert_envelope, TestApp};

/// Hosts whose appearance in a page's `<script src>` / `<link href>` means a runtime download.
const CDNS: [&str; 5] = [
    "unpkg.com",
    "cdn.jsdelivr",
    "fonts.googleapis",
    "cdnjs.cloudflare",
    "fonts.gstatic",
];

/// The `src` of every `<script>` and the `href` of every `<link>` in `html`, with the link's
/// `rel`: `("script", src)` or `(rel, href)`.
fn loaded_urls(html: &str) -> Vec<(String, String)> {
    fn attr(tag: &str, name: &str) -> Option<String> {
        let start = tag.find(&format!(" {name}="))? + name.len() + 2;
        let rest = &tag[start..];
        let quote = rest.chars().next()?;
        if quote == '"' || quote == '\'' {
            rest[1..].split(quote).next().map(str::to_string)
        } else {
            rest.split([' ', '>']).next().map(str::to_string)
        }
    }
    let lower = html.to_ascii_lowercase();
    let mut urls = Vec::new();
    for (kind, name) in [("<script", "src"), ("<link", "href")] {
        let mut from = 0;
        while let Some(at) = lower[from..].find(kind) {
            let start = from + at;
            let end = start + lower[start..].find('>').expect("tag closes");
            let tag = &html[start..end];
            if let Some(url) = attr(tag, name) {
                let rel = if kind == "<script" {
                    "script".to_string()
                } else {
                    attr(tag, "rel").unwrap_or_default()
                };
                urls.push((rel, url));
            }
            from = end;
        }
    }
    urls
}

/// `url` as an absolute path on this server, resolved against the page's directory `base`
/// (ending in `/`); panics on anything that would leave the server.
fn local_path(url: &str, base: &str) -> String {
    assert!(
        !url.contains("://") && !url.starts_with("//"),
        "the page loads {url} from another host"
    );
    if url.starts_with('/') {
        url.to_string()
    } else {
        format!("{base}{}", url.trim_start_matches("./"))
    }
}

fn assert_no_cdn(what: &str, text: &str) {
    for cdn in CDNS {
        assert!(!text.contains(cdn), "{what} mentions {cdn}");
    }
}

/// Fetches every script and stylesheet `html` loads and checks each is local, 200, of the
/// right type and not trivially small. Returns the scripts' paths.
async fn check_page_assets(app: &TestApp, html: &str, base: &str) -> Vec<String> {
    let urls = loaded_urls(html);
    assert!(
        urls.iter().any(|(rel, _)| rel == "script")
            && urls.iter().any(|(rel, _)| rel == "stylesheet"),
        "no scripts or stylesheets found in {html}"
    );
    let mut scripts = Vec::new();
    for (rel, url) in urls {
        if url.starts_with("data:") {
            continue;
        }
        let path = local_path(&url, base);
        let res = app.get(&path).await;
        assert_eq!(res.status(), 200, "{path}");
        let content_type = res.headers()[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .to_string();
        let body = res.text().await.unwrap();
        match rel.as_str() {
            "script" => {
                assert!(
                    content_type.starts_with("text/javascript"),
                    "{path}: {content_type}"
                );
                scripts.push(path.clone());
            }
            "stylesheet" => assert!(
                content_type.starts_with("text/css"),
                "{path}: {content_type}"
            ),
            _ => continue,
        }
        assert!(body.len() > 100, "{path} is only {} bytes", body.len());
        assert_no_cdn(&path, &body);
    }
    scripts
}

#[tokio::test]
async fn graphiql_page_loads_only_local_assets() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .get(app.url("/graphql"))
        .header(header::ACCEPT, "text/html,application/xhtml+xml,*/*;q=0.8")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("graphiql"), "{html}");
    assert!(
        !html.contains("http://") && !html.contains("https://"),
        "{html}"
    );
    assert_no_cdn("the GraphiQL page", &html);

    let scripts = check_page_assets(&app, &html, "/graphql/").await;
    assert!(
        scripts.len() >= 4,
        "React, ReactDOM, GraphiQL and the start-up script: {scripts:?}"
    );
    assert!(
        scripts.iter().all(|s| s.starts_with("/graphql/assets/")),
        "{scripts:?}"
    );
    // The GraphiQL build itself is large: a stub or an error page would be small.
    let mut sizes = Vec::new();
    for script in &scripts {
        sizes.push(app.get(script).await.bytes().await.unwrap().len());
    }
    assert!(sizes.iter().any(|&n| n > 500_000), "{scripts:?}: {sizes:?}");
    // The start-up script talks to this server: HTTP for queries, WebSocket for subscriptions.
    let init = app.get(scripts.last().unwrap()).await.text().await.unwrap();
    assert!(
        init.contains("createFetcher") && init.contains("/graphql/ws"),
        "{init}"
    );
}

#[tokio::test]
async fn graphiql_assets_are_cacheable_and_unknown_ones_are_404() {
    let app = TestApp::spawn().await;
    let html = app
        .http
        .get(app.url("/graphql"))
        .header(header::ACCEPT, "text/html")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let (_, css) = loaded_urls(&html)
        .into_iter()
        .find(|(rel, _)| rel == "stylesheet")
        .expect("a stylesheet");
    let res = app.get(&css).await;
    assert_eq!(res.status(), 200);
    let cache = res.headers()[header::CACHE_CONTROL].to_str().unwrap();
    assert!(
        cache.contains("immutable") && cache.contains("max-age=31536000"),
        "{cache}"
    );
    let etag = res.headers()[header::ETAG].clone();

    let res = app
        .http
        .get(app.url(&css))
        .header(header::IF_NONE_MATCH, etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);

    let res = app.get("/graphql/assets/nope.js").await;
    assert_eq!(res.status(), 404);
    assert_envelope(&res.json().await.unwrap(), 404, "NOT_FOUND");
}

#[tokio::test]
async fn graphql_endpoint_is_unchanged_for_api_clients() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(app.url("/graphql"))
        .header(header::ACCEPT, "application/json")
        .json(&serde_json::json!({"query": "{ serverInfo { name } }"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["data"]["serverInfo"]["name"], "rampart", "{body}");

    // A GET that does not ask for HTML is no GraphiQL request.
    let res = app
        .http
        .get(app.url("/graphql"))
        .header(header::ACCEPT, "application/json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 405);
    assert_envelope(&res.json().await.unwrap(), 405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn swagger_ui_is_served_locally_and_shows_the_openapi_document() {
    let app = TestApp::spawn().await;
    let (_, index) = app.get_json("/").await;
    assert_eq!(index["docs"], "/docs");

    // `/docs` redirects to `/docs/` (followed by the client).
    let res = app.get("/docs").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.url().path(), "/docs/");
    assert!(res.headers()[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert_no_cdn("the Swagger UI page", &html);

    let scripts = check_page_assets(&app, &html, "/docs/").await;
    let initializer = scripts
        .iter()
        .find(|s| s.ends_with("swagger-initializer.js"))
        .expect("Swagger UI's initializer");
    let config = app.get(initializer).await.text().await.unwrap();
    assert!(config.contains(r#""url": "/openapi.json""#), "{config}");
    // No call to the public validator: nothing leaves the server.
    assert!(config.contains(r#""validatorUrl": "none""#), "{config}");
    assert!(
        !config.contains("http://") && !config.contains("https://"),
        "{config}"
    );
}

#[tokio::test]
async fn openapi_document_offers_the_three_ways_to_authenticate() {
    let app = TestApp::spawn().await;
    let (status, doc) = app.get_json("/openapi.json").await;
    assert_eq!(status, 200);
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["bearer_auth"]["type"], "http", "{schemes}");
    assert_eq!(schemes["bearer_auth"]["scheme"], "bearer", "{schemes}");
    assert_eq!(schemes["bearer_auth"]["bearerFormat"], "JWT", "{schemes}");
    assert_eq!(schemes["api_key"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["api_key"]["in"], "header", "{schemes}");
    assert_eq!(schemes["api_key"]["name"], "x-api-key", "{schemes}");
    assert_eq!(schemes["cookie_auth"]["type"], "apiKey", "{schemes}");
    assert_eq!(schemes["cookie_auth"]["in"], "cookie", "{schemes}");
    assert_eq!(schemes["cookie_auth"]["name"], "token", "{schemes}");
}
