//! The table compiler and the translator on a tiny schema of their own: enum lists from repeated
//! query keys, pages, null versus absent, and rows that must not compile.

use async_graphql::{
    EmptySubscription, Enum, InputObject, MaybeUndefined, Object, Schema, SimpleObject,
};
use axum::body::to_bytes;
use axum::http::HeaderMap;
use serde_json::{json, Value};
use uuid::Uuid;

use super::compile::{compile, CompiledRoute};
use super::index::SchemaIndex;
use super::row::{Route, Var};
use super::translate::{run, RestRequest};
use crate::graphql::pagination::{PageArgs, Paged, PagedConnection};

/// How bad a finding is.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
enum Severity {
    Critical,
    High,
    Medium,
    Low,
    Info,
}

/// One problem.
#[derive(SimpleObject, Clone)]
struct Finding {
    /// What it is.
    title: String,
    severity: Severity,
    /// How the note was given: `absent`, `null` or the text.
    note_state: String,
}

#[derive(InputObject)]
struct UpdateFindingInput {
    /// A note; null clears it.
    note: MaybeUndefined<String>,
}

struct Query;

#[Object]
impl Query {
    /// Findings, filtered by severity.
    async fn findings(
        &self,
        severity: Option<Vec<Severity>>,
        page: Option<i32>,
        page_size: Option<i32>,
    ) -> async_graphql::Result<PagedConnection<Finding>> {
        let window = PageArgs {
            page,
            page_size,
            ..Default::default()
        }
        .window()?;
        let all: Vec<Finding> = [
            ("a", Severity::Critical),
            ("b", Severity::High),
            ("c", Severity::Low),
            ("d", Severity::Critical),
            ("e", Severity::Info),
        ]
        .into_iter()
        .filter(|(_, s)| severity.as_ref().is_none_or(|wanted| wanted.contains(s)))
        .map(|(title, severity)| Finding {
            title: title.into(),
            severity,
            note_state: "absent".into(),
        })
        .collect();
        let total = all.len() as u64;
        let items = all
            .into_iter()
            .skip(window.offset as usize)
            .take(window.limit as usize)
            .collect();
        Ok(Paged {
            items,
            total,
            window,
        }
        .into_connection())
    }
}

struct Mutation;

#[Object]
impl Mutation {
    /// Changes a finding.
    async fn update_finding(&self, id: Uuid, input: UpdateFindingInput) -> Finding {
        Finding {
            title: id.to_string(),
            severity: Severity::Medium,
            note_state: match input.note {
                MaybeUndefined::Undefined => "absent".into(),
                MaybeUndefined::Null => "null".into(),
                MaybeUndefined::Value(v) => v,
            },
        }
    }
}

type TinySchema = Schema<Query, Mutation, EmptySubscription>;

const LIST: Route = Route::get(
    "/api/v1/findings",
    "findings",
    "List findings",
    "query ListFindings($severity: [Severity!], $page: Int, $pageSize: Int) { findings(severity: $severity, page: $page, pageSize: $pageSize) { total_count: totalCount page page_size: pageSize total_pages: totalPages edges { node { title severity } } } }",
)
.vars(&[Var::query("severity"), Var::query("page"), Var::query("pageSize")])
.page();

const UPDATE: Route = Route::patch(
    "/api/v1/findings/{id}",
    "findings",
    "Change a finding",
    "mutation UpdateFinding($id: UUID!, $input: UpdateFindingInput!) { updateFinding(id: $id, input: $input) { title severity note_state: noteState } }",
)
.vars(&[Var::path("id"), Var::body("input")]);

fn tiny() -> (TinySchema, SchemaIndex) {
    let schema = Schema::new(Query, Mutation, EmptySubscription);
    let index = SchemaIndex::from_sdl(&schema.sdl()).expect("SDL parses");
    (schema, index)
}

async fn call(
    route: &CompiledRoute,
    index: &SchemaIndex,
    schema: &TinySchema,
    path: &str,
    params: &[(&str, &str)],
    query: &[(&str, &str)],
    body: &str,
) -> (u16, Value) {
    let params: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let query: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let headers = HeaderMap::new();
    let req = RestRequest {
        path,
        path_params: &params,
        query: &query,
        headers: &headers,
        body: body.as_bytes(),
    };
    let res = run(route, index, schema, req, |r| r).await;
    let status = res.status().as_u16();
    let bytes = to_bytes(res.into_body(), 1 << 20).await.unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn enum_lists_come_from_repeated_query_keys_and_pages_wrap() {
    let (schema, index) = tiny();
    let route = compile(&index, &LIST).unwrap();
    let (status, body) = call(
        &route,
        &index,
        &schema,
        "/api/v1/findings",
        &[],
        &[
            ("severity", "high"),
            ("severity", "critical"),
            ("page", "2"),
            ("page_size", "2"),
        ],
        "",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body["data"],
        json!([{"title": "d", "severity": "critical"}])
    );
    assert_eq!(
        body["meta"],
        json!({"total": 3, "page": 2, "page_size": 2, "total_pages": 2})
    );
    assert_eq!(
        body["links"]["prev"],
        "/api/v1/findings?severity=high&severity=critical&page=1&page_size=2"
    );
    assert_eq!(body["links"]["next"], Value::Null);

    let (status, body) = call(
        &route,
        &index,
        &schema,
        "/api/v1/findings",
        &[],
        &[("severity", "HIGH")],
        "",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["code"], "BAD_REQUEST");
    assert_eq!(body["details"][0]["field"], "severity");
    assert_eq!(
        body["details"][0]["message"],
        "must be one of critical, high, medium, low, info"
    );

    let (status, body) = call(
        &route,
        &index,
        &schema,
        "/api/v1/findings",
        &[],
        &[("sort", "title")],
        "",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["details"][0]["field"], "sort");
}

#[tokio::test]
async fn null_and_absent_stay_distinct() {
    let (schema, index) = tiny();
    let route = compile(&index, &UPDATE).unwrap();
    let id = Uuid::new_v4().to_string();
    for (body, state) in [
        ("{}", "absent"),
        (r#"{"note": null}"#, "null"),
        (r#"{"note": "hi"}"#, "hi"),
    ] {
        let (status, answer) = call(&route, &index, &schema, "/x", &[("id", &id)], &[], body).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(answer["data"]["note_state"], state);
        assert_eq!(answer["data"]["severity"], "medium");
    }
    let (status, answer) = call(&route, &index, &schema, "/x", &[("id", "nope")], &[], "{}").await;
    assert_eq!(status, 400);
    assert_eq!(answer["details"][0]["field"], "id");
    let (status, answer) = call(
        &route,
        &index,
        &schema,
        "/x",
        &[("id", &id)],
        &[],
        r#"{"note": 3}"#,
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(answer["details"][0]["field"], "note");
}

const PAGE_ONLY: &[Var] = &[Var::query("page")];
const PAGE_AND_SIZE: &[Var] = &[Var::query("page"), Var::query("pageSize")];
const ID_ONLY: &[Var] = &[Var::path("id")];
const ID_AND_INPUT: &[Var] = &[Var::path("id"), Var::body("input")];

fn compile_error(row: Route) -> String {
    let (_, index) = tiny();
    match compile(&index, &row) {
        Ok(_) => panic!("{} {} compiled", row.method.as_str(), row.path),
        Err(err) => err,
    }
}

#[test]
fn malformed_rows_do_not_compile() {
    let get = |op: &'static str| Route::get("/api/v1/findings", "findings", "x", op);
    let cases: Vec<(Route, &str)> = vec![
        (get("query A { findings { nope } }"), "has no field nope"),
        (get("query A($page: Int) { findings(page: $page) { page } }"), "must be sourced exactly once"),
        (get("query A { findings { page } }").vars(PAGE_ONLY), "declares no such variable"),
        (get("query A { findings { totalCount } }"), "snake_case"),
        (get("query A { findings(colour: 1) { page } }"), "no argument colour"),
        (get("query { findings { page } }"), "named operation"),
        (get("query A { findings { page } nope }"), "exactly one root field"),
        (get("query A { nope }"), "has no field nope"),
        (get("query A { findings { page "), "does not parse"),
        (get("query A { findings { edges } }"), "needs a selection"),
        (
            get("query A($page: String) { findings(page: $page) { page } }").vars(PAGE_ONLY),
            "cannot be passed",
        ),
        (get("query A { findings { page } }").page(), "must take $page"),
        (get("query A { findings { page } }").pages(), "must take $page"),
        (
            get("query A($page: Int, $pageSize: Int) { findings(page: $page, pageSize: $pageSize) { page page_size: pageSize total_pages: totalPages total_count: totalCount edges { node { title } } } }")
                .vars(PAGE_AND_SIZE)
                .pages(),
            "must select a connection",
        ),
        (
            Route::get("/api/v1/findings/{id}", "findings", "x", "query A { findings { page } }"),
            "{id} is not a path variable",
        ),
        (
            Route::get(
                "/api/v1/findings",
                "findings",
                "x",
                "mutation A($id: UUID!, $input: UpdateFindingInput!) { updateFinding(id: $id, input: $input) { title } }",
            )
            .vars(ID_AND_INPUT),
            "GET must run a query",
        ),
        (
            Route::patch(
                "/api/v1/findings/{id}",
                "findings",
                "x",
                "mutation A($id: UUID!) { updateFinding(id: $id) { title } }",
            )
            .vars(ID_ONLY),
            "required argument input is missing",
        ),
    ];
    for (row, expected) in cases {
        let err = compile_error(row);
        assert!(err.contains(expected), "{} → {err}", row.operation);
    }
}

#[test]
fn the_real_table_compiles() {
    let api = super::api().expect("the REST table compiles");
    assert_eq!(api.routes.len(), super::routes::ROUTES.len());
}

#[test]
fn every_operation_of_the_document_has_its_own_id() {
    let api = super::api().expect("the REST table compiles");
    let mut seen = std::collections::HashMap::new();
    for (path, item) in &api.openapi.paths.paths {
        let operations = [&item.get, &item.put, &item.post, &item.delete, &item.patch];
        for operation in operations.into_iter().flatten() {
            let id = operation.operation_id.clone().expect("an operation id");
            if let Some(other) = seen.insert(id.clone(), path.clone()) {
                panic!("operation id {id:?} of {path} is also {other}'s");
            }
        }
    }
}
