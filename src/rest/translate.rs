//! The one generic translator: a REST request becomes the variables of its row's operation,
//! the operation runs on the same schema as `/graphql` with the caller's context, and the
//! answer is wrapped in the REST envelope (or turned into the contract's error envelope).

use async_graphql::indexmap::IndexMap;
use async_graphql::{
    ObjectType, Request, Schema, SubscriptionType, Value as ConstValue, Variables,
};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{Map, Value as JsonValue};

use super::compile::{CompiledRoute, CompiledVar, PageKeys};
use super::convert::{from_json, from_strings, rest_field_path, to_rest, Problems};
use super::index::SchemaIndex;
use super::row::{Envelope, Source};
use crate::auth::middleware::cookie;
use crate::error::{AppError, ErrorCode, ErrorEnvelope, FieldError};
use crate::graphql::pagination::MAX_PAGE_SIZE;

/// What the translator reads from an HTTP request.
pub struct RestRequest<'a> {
    /// The request path, for the list envelope's links.
    pub path: &'a str,
    pub path_params: &'a [(String, String)],
    /// Query pairs in order, percent-decoded.
    pub query: &'a [(String, String)],
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

/// The alias clients may use for `page_size`.
const PAGE_SIZE_ALIAS: &str = "limit";

fn client_error(code: ErrorCode, message: String, details: Vec<FieldError>) -> AppError {
    AppError::Client {
        code,
        message,
        details,
    }
}

fn summary(problems: &[FieldError]) -> String {
    match problems {
        [one] => format!("{}: {}", one.field, one.message),
        _ => format!("{} invalid parameters", problems.len()),
    }
}

/// The values of a query key, in order.
fn query_values(req: &RestRequest<'_>, name: &str) -> Vec<String> {
    req.query
        .iter()
        .filter(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .collect()
}

/// The documented ranges of the paging parameters: `page` from 1, `page_size` (or `limit`)
/// from 1 to 500.
fn check_paging(var: &CompiledVar, value: &JsonValue, name: &str, problems: &mut Problems) {
    let Some(n) = value.as_i64() else { return };
    match var.name.as_str() {
        "page" if n < 1 => problems.add(name, "must be 1 or more"),
        "pageSize" if !(1..=MAX_PAGE_SIZE as i64).contains(&n) => {
            problems.add(name, format!("must be between 1 and {MAX_PAGE_SIZE}"))
        }
        _ => {}
    }
}

/// Builds the operation's variables from the request.
///
/// # Errors
/// 400 `BAD_REQUEST` for unknown query parameters, malformed or out-of-range path or query
/// values (`page` below 1, `page_size` outside 1–500) and a body
/// that is not JSON; 422 `VALIDATION_FAILED` for body fields that are missing, unknown or of
/// the wrong type. `details` names each parameter as the client spelled it.
pub fn variables(
    route: &CompiledRoute,
    index: &SchemaIndex,
    req: &RestRequest<'_>,
) -> Result<Map<String, JsonValue>, AppError> {
    let mut edge = Problems::default();
    let mut body_problems = Problems::default();
    for (key, _) in req.query {
        let known = route.vars.iter().any(|v| {
            v.source == Source::Query
                && (v.rest == *key || (v.rest == "page_size" && key == PAGE_SIZE_ALIAS))
        });
        if !known && !edge.0.iter().any(|p| p.field == *key) {
            edge.add(key, "is not a known query parameter");
        }
    }
    let needs_body = route.vars.iter().any(|v| {
        matches!(
            v.source,
            Source::Body | Source::BodyField | Source::BodyFieldOrCookie(_)
        )
    });
    let body_missing = req.body.iter().all(u8::is_ascii_whitespace);
    let body: JsonValue = if !needs_body || body_missing {
        JsonValue::Object(Map::new())
    } else {
        serde_json::from_slice(req.body).map_err(|e| {
            client_error(
                ErrorCode::BadRequest,
                format!("the body is not valid JSON: {e}"),
                Vec::new(),
            )
        })?
    };
    let mut vars = Map::new();
    for var in &route.vars {
        let value = match var.source {
            Source::Path => req
                .path_params
                .iter()
                .find(|(k, _)| *k == var.rest)
                .map(|(_, v)| {
                    from_strings(
                        index,
                        &var.ty,
                        std::slice::from_ref(v),
                        &var.rest,
                        &mut edge,
                    )
                }),
            Source::Query => {
                let raw = query_values(req, &var.rest);
                // `limit` is checked like `page_size` and used when `page_size` is absent.
                let alias = match var.rest.as_str() {
                    "page_size" => query_values(req, PAGE_SIZE_ALIAS),
                    _ => Vec::new(),
                };
                let alias = (!alias.is_empty()).then(|| {
                    let v = from_strings(index, &var.ty, &alias, PAGE_SIZE_ALIAS, &mut edge);
                    check_paging(var, &v, PAGE_SIZE_ALIAS, &mut edge);
                    v
                });
                match raw.is_empty() {
                    false => {
                        let v = from_strings(index, &var.ty, &raw, &var.rest, &mut edge);
                        check_paging(var, &v, &var.rest, &mut edge);
                        Some(v)
                    }
                    true => alias,
                }
            }
            Source::Body if body_missing && var.required() => {
                body_problems.add("body", "a JSON object is required");
                None
            }
            Source::Body => Some(from_json(index, &var.ty, &body, "", &mut body_problems)),
            Source::BodyField | Source::BodyFieldOrCookie(_) => {
                let JsonValue::Object(fields) = &body else {
                    return Err(client_error(
                        ErrorCode::BadRequest,
                        "the body must be a JSON object".into(),
                        Vec::new(),
                    ));
                };
                match (fields.get(&var.rest), var.source) {
                    (Some(v), _) => {
                        Some(from_json(index, &var.ty, v, &var.rest, &mut body_problems))
                    }
                    (None, Source::BodyFieldOrCookie(name)) => cookie(req.headers, name).map(|c| {
                        from_strings(
                            index,
                            &var.ty,
                            std::slice::from_ref(&c),
                            &var.rest,
                            &mut body_problems,
                        )
                    }),
                    (None, _) => None,
                }
            }
        };
        match value {
            Some(v) => {
                vars.insert(var.name.clone(), v);
            }
            // A credential that may come from a cookie: its absence is not being signed in.
            None if var.required() && matches!(var.source, Source::BodyFieldOrCookie(_)) => {
                return Err(AppError::unauthenticated(format!(
                    "no {}: send it in the body or in its cookie",
                    var.rest
                )));
            }
            None if var.required() => {
                let problems = if matches!(var.source, Source::Path | Source::Query) {
                    &mut edge
                } else {
                    &mut body_problems
                };
                problems.add(&var.rest, "is required");
            }
            None => {}
        }
    }
    if let JsonValue::Object(fields) = &body {
        let field_vars: Vec<_> = route
            .vars
            .iter()
            .filter(|v| matches!(v.source, Source::BodyField | Source::BodyFieldOrCookie(_)))
            .collect();
        if !field_vars.is_empty() {
            for key in fields.keys() {
                if !field_vars.iter().any(|v| v.rest == *key) {
                    body_problems.add(key, "is not a known field");
                }
            }
        }
    }
    if !edge.0.is_empty() {
        return Err(client_error(
            ErrorCode::BadRequest,
            summary(&edge.0),
            edge.0,
        ));
    }
    if !body_problems.0.is_empty() {
        return Err(client_error(
            ErrorCode::ValidationFailed,
            summary(&body_problems.0),
            body_problems.0,
        ));
    }
    Ok(vars)
}

fn error_code(code: &str) -> Option<ErrorCode> {
    use ErrorCode::*;
    [
        BadRequest,
        ValidationFailed,
        Unauthenticated,
        Forbidden,
        SessionRequired,
        NotFound,
        MethodNotAllowed,
        Conflict,
        PayloadTooLarge,
        UnsupportedFormat,
        RateLimited,
        ServiceUnavailable,
        Internal,
        PasswordResetRequired,
        MfaRequired,
    ]
    .into_iter()
    .find(|c| c.as_str() == code)
}

/// The contract's envelope for a GraphQL error. Errors without a code come from GraphQL's own
/// validation of the variables: 400 `BAD_REQUEST`, naming the variable when the message does.
fn graphql_error(route: &CompiledRoute, err: &async_graphql::ServerError) -> Response {
    let ext = err.extensions.as_ref();
    let get = |key: &str| ext.and_then(|e| e.get(key)).cloned();
    let code = match get("code") {
        Some(async_graphql::Value::String(code)) => error_code(&code),
        _ => None,
    };
    let Some(code) = code else {
        let field = err
            .message
            .split('"')
            .find_map(|token| token.strip_prefix('$'))
            .and_then(|name| route.vars.iter().find(|v| v.name == name))
            .map_or_else(|| "request".to_string(), |v| v.rest.clone());
        let details = vec![FieldError {
            field,
            message: err.message.clone(),
        }];
        return AppError::Client {
            code: ErrorCode::BadRequest,
            message: err.message.clone(),
            details,
        }
        .into_response();
    };
    let status = match get("statusCode") {
        Some(async_graphql::Value::Number(n)) => n
            .as_u64()
            .and_then(|n| StatusCode::from_u16(n as u16).ok())
            .unwrap_or(code.status()),
        _ => code.status(),
    };
    let details: Vec<FieldError> = match get("details") {
        Some(async_graphql::Value::List(items)) => items
            .iter()
            .filter_map(|item| {
                let async_graphql::Value::Object(map) = item else {
                    return None;
                };
                let text = |k: &str| match map.get(k) {
                    Some(async_graphql::Value::String(s)) => Some(s.clone()),
                    _ => None,
                };
                Some(FieldError {
                    field: rest_field_path(&text("field")?),
                    message: text("message")?,
                })
            })
            .collect(),
        _ => Vec::new(),
    };
    let envelope = ErrorEnvelope {
        error: err.message.clone(),
        status_code: status.as_u16(),
        code,
        details: (!details.is_empty()).then_some(details),
    };
    let mut res = (status, Json(envelope)).into_response();
    if let Some(async_graphql::Value::Number(secs)) = get("retryAfter") {
        if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
            res.headers_mut().insert(header::RETRY_AFTER, value);
        }
    }
    res
}

/// `path?query` with `page` and `page_size` replaced, other parameters kept in order.
fn page_link(req: &RestRequest<'_>, page: u64, page_size: u64) -> String {
    let mut query = form_urlencoded::Serializer::new(String::new());
    for (k, v) in req.query {
        if k != "page" && k != "page_size" && k != PAGE_SIZE_ALIAS {
            query.append_pair(k, v);
        }
    }
    query.append_pair("page", &page.to_string());
    query.append_pair("page_size", &page_size.to_string());
    format!("{}?{}", req.path, query.finish())
}

/// `{"data": value}`.
#[derive(Serialize)]
struct DataEnvelope<T> {
    data: T,
}

/// `{data, meta, links}` of a list, serialized straight from the executor's values.
#[derive(Serialize)]
struct PageEnvelope {
    data: Vec<ConstValue>,
    meta: PageMeta,
    links: PageLinks,
}

#[derive(Serialize)]
struct PageMeta {
    total: u64,
    page: u64,
    page_size: u64,
    total_pages: u64,
}

#[derive(Serialize)]
struct PageLinks {
    #[serde(rename = "self")]
    this: String,
    first: String,
    prev: Option<String>,
    next: Option<String>,
    last: String,
}

/// A connection's nodes and where its page sits.
fn unpage(keys: &PageKeys, value: ConstValue) -> (Vec<ConstValue>, PageMeta) {
    let mut connection = match value {
        ConstValue::Object(map) => map,
        _ => Default::default(),
    };
    let number = |key: &str| match connection.get(key) {
        Some(ConstValue::Number(n)) => n.as_u64().unwrap_or(0),
        _ => 0,
    };
    let meta = PageMeta {
        total: number(&keys.total),
        page: number(&keys.page).max(1),
        page_size: number(&keys.page_size).clamp(1, MAX_PAGE_SIZE),
        total_pages: number(&keys.total_pages),
    };
    let data = match connection.swap_remove(keys.edges.as_str()) {
        Some(ConstValue::List(edges)) => edges
            .into_iter()
            .map(|edge| match edge {
                ConstValue::Object(mut edge) => edge
                    .swap_remove(keys.node.as_str())
                    .unwrap_or(ConstValue::Null),
                _ => ConstValue::Null,
            })
            .collect(),
        _ => Vec::new(),
    };
    (data, meta)
}

/// The links of page `page` of `total_pages`.
fn page_links(req: &RestRequest<'_>, page: u64, page_size: u64, total_pages: u64) -> PageLinks {
    let last = total_pages.max(1);
    let link = |p: u64| page_link(req, p, page_size);
    PageLinks {
        this: link(page),
        first: link(1),
        prev: (page > 1).then(|| link((page - 1).min(last))),
        next: (page < total_pages).then(|| link(page + 1)),
        last: link(last),
    }
}

/// `{data, meta, links}` from a connection.
fn page_envelope(keys: &PageKeys, req: &RestRequest<'_>, value: ConstValue) -> PageEnvelope {
    let (data, meta) = unpage(keys, value);
    let links = page_links(req, meta.page, meta.page_size, meta.total_pages);
    PageEnvelope { data, meta, links }
}

/// `{data: {key: [...]}, meta: {key: {...}}, links}` of several connections paged together.
#[derive(Serialize)]
struct PagesEnvelope {
    data: IndexMap<String, Vec<ConstValue>>,
    meta: IndexMap<String, PageMeta>,
    links: PageLinks,
}

/// `{data, meta, links}` from an object of connections; the links reach the longest list's
/// last page.
fn pages_envelope(
    lists: &[super::compile::PagedList],
    req: &RestRequest<'_>,
    value: ConstValue,
) -> PagesEnvelope {
    let mut object = match value {
        ConstValue::Object(map) => map,
        _ => Default::default(),
    };
    let (mut data, mut meta) = (IndexMap::new(), IndexMap::new());
    for (key, keys, _) in lists {
        let (nodes, facts) = unpage(keys, object.swap_remove(key.as_str()).unwrap_or_default());
        data.insert(key.clone(), nodes);
        meta.insert(key.clone(), facts);
    }
    let (page, page_size) = meta
        .values()
        .next()
        .map_or((1, MAX_PAGE_SIZE), |m| (m.page, m.page_size));
    let total_pages = meta.values().map(|m| m.total_pages).max().unwrap_or(0);
    PagesEnvelope {
        data,
        meta,
        links: page_links(req, page, page_size, total_pages),
    }
}

/// Runs `route`'s operation for `req` on `schema`: the root field's value in REST spelling and
/// the HTTP headers the resolvers set (cookies), or the finished error answer. `with_data` adds
/// the caller's context to the request.
pub async fn execute<Q, M, S>(
    route: &CompiledRoute,
    index: &SchemaIndex,
    schema: &Schema<Q, M, S>,
    req: &RestRequest<'_>,
    with_data: impl FnOnce(Request) -> Request,
) -> Result<(ConstValue, HeaderMap), Response>
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let vars = variables(route, index, req).map_err(IntoResponse::into_response)?;
    let mut request = Request::new(route.row.operation)
        .operation_name(route.operation_name.clone())
        .variables(Variables::from_json(JsonValue::Object(vars)));
    request.set_parsed_query(route.document.clone());
    let response = schema.execute(with_data(request)).await;
    if let Some(err) = response.errors.first() {
        let mut res = graphql_error(route, err);
        append_headers(&mut res, &response.http_headers);
        return Err(res);
    }
    let mut root = match response.data {
        ConstValue::Object(mut map) => map
            .swap_remove(route.root_key.as_str())
            .unwrap_or(ConstValue::Null),
        _ => ConstValue::Null,
    };
    to_rest(&route.shape, &mut root);
    Ok((root, response.http_headers))
}

fn append_headers(res: &mut Response, headers: &HeaderMap) {
    for (name, value) in headers {
        res.headers_mut().append(name.clone(), value.clone());
    }
}

/// Runs `route` for `req` on `schema` and wraps the answer in the row's envelope.
pub async fn run<Q, M, S>(
    route: &CompiledRoute,
    index: &SchemaIndex,
    schema: &Schema<Q, M, S>,
    req: RestRequest<'_>,
    with_data: impl FnOnce(Request) -> Request,
) -> Response
where
    Q: ObjectType + 'static,
    M: ObjectType + 'static,
    S: SubscriptionType + 'static,
{
    let (root, headers) = match execute(route, index, schema, &req, with_data).await {
        Ok(answer) => answer,
        Err(res) => return res,
    };
    let status = StatusCode::from_u16(route.row.status).unwrap_or(StatusCode::OK);
    let mut res = match route.row.envelope {
        Envelope::Empty => StatusCode::NO_CONTENT.into_response(),
        Envelope::Bare => (status, Json(root)).into_response(),
        Envelope::Data => (status, Json(DataEnvelope { data: root })).into_response(),
        Envelope::Page => match &route.page {
            Some((keys, _)) => (status, Json(page_envelope(keys, &req, root))).into_response(),
            None => (status, Json(DataEnvelope { data: root })).into_response(),
        },
        Envelope::Pages => match &route.pages {
            Some((lists, _)) => (status, Json(pages_envelope(lists, &req, root))).into_response(),
            None => (status, Json(DataEnvelope { data: root })).into_response(),
        },
    };
    append_headers(&mut res, &headers);
    res
}
