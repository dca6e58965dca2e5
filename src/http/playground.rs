//! GraphiQL at `GET /graphql`, served entirely by this binary: the page, its start-up script and
//! the pinned GraphiQL and React builds (fetched by `build.rs` from
//! `src/http/playground/package-lock.json` and embedded), so it works with no internet access.
//! Knows no domain.
//!
//! Asset names carry a hash of their content, so they can be cached for a year as immutable:
//! a new GraphiQL version gets new URLs, and the page (never cached) names them.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use sha2::{Digest, Sha256};

use crate::error::AppError;

/// Where the page and its assets live; `POST` on the same path is the GraphQL endpoint.
pub const PATH: &str = "/graphql";
/// The assets route, `{file}` being one of [`assets`]' names.
pub const ASSETS_ROUTE: &str = "/graphql/assets/{file}";
const ASSETS_PREFIX: &str = "/graphql/assets/";

const JS: &str = "text/javascript; charset=utf-8";
const CSS: &str = "text/css; charset=utf-8";

macro_rules! npm_file {
    ($path:literal) => {
        include_bytes!(concat!(env!("OUT_DIR"), "/playground/node_modules/", $path))
    };
}

/// The start-up script: GraphiQL on `#graphiql`, speaking to this server over HTTP for queries
/// and mutations and over graphql-transport-ws for subscriptions.
const INIT_JS: &str = r#"(function () {
  'use strict';
  var wsScheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  var fetcher = GraphiQL.createFetcher({
    url: location.origin + '/graphql',
    subscriptionUrl: wsScheme + '//' + location.host + '/graphql/ws'
  });
  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    defaultEditorToolsVisibility: true,
    shouldPersistHeaders: false
  }));
})();
"#;

/// One embedded file served under `/graphql/assets/`.
pub struct Asset {
    /// `stem.<hash>.ext`: the name in the URL.
    pub name: String,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
    etag: HeaderValue,
}

impl Asset {
    fn new(stem: &str, ext: &str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        let digest = hex::encode(Sha256::digest(bytes));
        Self {
            name: format!("{stem}.{}.{ext}", &digest[..12]),
            content_type,
            bytes,
            etag: HeaderValue::from_str(&format!("\"{digest}\"")).expect("hex is a valid header"),
        }
    }

    /// The absolute URL path the page uses for it.
    pub fn href(&self) -> String {
        format!("{ASSETS_PREFIX}{}", self.name)
    }
}

struct Assets {
    react: Asset,
    react_dom: Asset,
    graphiql_js: Asset,
    graphiql_css: Asset,
    init: Asset,
}

impl Assets {
    fn all(&self) -> [&Asset; 5] {
        [
            &self.react,
            &self.react_dom,
            &self.graphiql_js,
            &self.graphiql_css,
            &self.init,
        ]
    }
}

static ASSETS: LazyLock<Assets> = LazyLock::new(|| Assets {
    react: Asset::new(
        "react",
        "js",
        JS,
        npm_file!("react/umd/react.production.min.js"),
    ),
    react_dom: Asset::new(
        "react-dom",
        "js",
        JS,
        npm_file!("react-dom/umd/react-dom.production.min.js"),
    ),
    graphiql_js: Asset::new(
        "graphiql",
        "js",
        JS,
        npm_file!("graphiql/dist/index.umd.js"),
    ),
    graphiql_css: Asset::new("graphiql", "css", CSS, npm_file!("graphiql/dist/style.css")),
    init: Asset::new("init", "js", JS, INIT_JS.as_bytes()),
});

/// Every file the page loads, in load order.
pub fn assets() -> impl Iterator<Item = &'static Asset> {
    ASSETS.all().into_iter()
}

static PAGE: LazyLock<String> = LazyLock::new(|| {
    let a = &*ASSETS;
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Rampart GraphiQL</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="{css}">
  <style>html, body {{ height: 100%; margin: 0; }} #graphiql {{ height: 100vh; }}</style>
</head>
<body>
  <div id="graphiql">Loading GraphiQL…</div>
  <script src="{react}"></script>
  <script src="{react_dom}"></script>
  <script src="{graphiql}"></script>
  <script src="{init}"></script>
</body>
</html>
"#,
        css = a.graphiql_css.href(),
        react = a.react.href(),
        react_dom = a.react_dom.href(),
        graphiql = a.graphiql_js.href(),
        init = a.init.href(),
    )
});

fn accepts_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().unwrap_or("").trim() == "text/html")
}

/// `GET /graphql`: the GraphiQL page for browsers. Other clients send their GraphQL over
/// `POST`, so a `GET` that does not accept HTML is answered as before: method not allowed.
pub async fn page(headers: HeaderMap) -> Response {
    if !accepts_html(&headers) {
        return AppError::method_not_allowed().into_response();
    }
    (
        [
            (header::CACHE_CONTROL, "no-cache"),
            (
                header::CONTENT_SECURITY_POLICY,
                crate::http::security::PAGE_POLICY,
            ),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::VARY, "Accept"),
        ],
        Html(PAGE.as_str()),
    )
        .into_response()
}

/// `GET /graphql/assets/{file}`: an embedded file, cacheable forever (its name has its hash).
pub async fn asset(Path(file): Path<String>, headers: HeaderMap) -> Result<Response, AppError> {
    let asset = assets()
        .find(|a| a.name == file)
        .ok_or_else(|| AppError::not_found("asset"))?;
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|t| t.trim() == "*" || t.trim().trim_start_matches("W/") == asset.etag)
        });
    let headers = [
        (
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=31536000, immutable"),
        ),
        (header::ETAG, asset.etag.clone()),
        (
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ),
    ];
    if fresh {
        return Ok((StatusCode::NOT_MODIFIED, headers).into_response());
    }
    let content_type = [(
        header::CONTENT_TYPE,
        HeaderValue::from_static(asset.content_type),
    )];
    Ok((headers, content_type, asset.bytes).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_recognised_in_browser_accept_headers() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        assert!(accepts_html(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!accepts_html(&headers));
        assert!(!accepts_html(&HeaderMap::new()));
    }

    #[test]
    fn page_names_every_asset_and_nothing_else() {
        for asset in assets() {
            assert!(PAGE.contains(&asset.href()), "page lacks {}", asset.name);
            assert!(asset.bytes.len() > 100, "{} is empty", asset.name);
        }
        assert!(!PAGE.contains("http://") && !PAGE.contains("https://"));
    }
}
