//! Standard clients against the real server: the introspection queries of graphql-js 16
//! (GraphiQL's own) and graphql-core 3.3, printed by those packages at test time, and GraphiQL
//! and Swagger UI in Debian's Chromium driven by Playwright.
//!
//! The packages live in tests/standard-clients (`npm ci` there; graphql-core in its `.venv`:
//! `python3 -m venv .venv && .venv/bin/pip install -r requirements.txt`; .ci/run does both).
//! Where they or `/usr/bin/chromium` are absent the tests that need them are ignored with that
//! reason; under `CI=true` they run and fail instead (build.rs).

use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::support::{Auth, TestApp, TestConfig, ADMIN_EMAIL, ADMIN_PASSWORD};

const CLIENTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/standard-clients");

/// Runs `program args` in tests/standard-clients with `input` on stdin; its stdout, or a panic
/// naming what failed with its stderr.
fn run(program: &str, args: &[&str], input: &[u8], envs: &[(&str, &str)]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .envs(envs.iter().copied())
        .current_dir(CLIENTS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {program} in {CLIENTS}: {e}"));
    let mut stdin = child.stdin.take().unwrap();
    let input = input.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    writer.join().unwrap().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn node(script: &str, input: &[u8]) -> String {
    run("node", &["-e", script], input, &[])
}

fn python(script: &str, input: &[u8]) -> String {
    let venv_python = Path::new(CLIENTS).join(".venv/bin/python");
    run(venv_python.to_str().unwrap(), &["-c", script], input, &[])
}

/// The introspection queries as each client prints them: `(who, query)`.
fn standard_introspection_queries() -> Vec<(String, String)> {
    // GraphiQL 4 calls getIntrospectionQuery({inputValueDeprecation, schemaDescription}) with
    // its props; this server's page sets neither, which is the default query.
    let js = node(
        r#"
        const graphql = require('graphql');
        const { version } = require('graphql/package.json');
        if (!version.startsWith('16.')) throw new Error(`graphql ${version} is not 16.x`);
        const q = graphql.getIntrospectionQuery;
        console.log(JSON.stringify([
          [`graphql-js ${version} defaults (GraphiQL 4 on this page)`, q()],
          [`graphql-js ${version} as GraphiQL 4 sends it with inputValueDeprecation and schemaDescription`,
            q({ inputValueDeprecation: true, schemaDescription: true })],
          [`graphql-js ${version} every option`, q({ descriptions: true, specifiedByUrl: true,
            directiveIsRepeatable: true, schemaDescription: true, inputValueDeprecation: true,
            oneOf: true })],
        ]));
        "#,
        b"",
    );
    let py = python(
        r#"
import json, graphql
assert graphql.__version__.startswith("3.3."), graphql.__version__
q = graphql.get_introspection_query
v = graphql.__version__
print(json.dumps([
    [f"graphql-core {v} defaults", q()],
    [f"graphql-core {v} every option", q(descriptions=True, specified_by_url=True,
        directive_is_repeatable=True, schema_description=True, input_value_deprecation=True,
        one_of=True)],
]))
"#,
        b"",
    );
    let mut queries: Vec<(String, String)> = serde_json::from_str(&js).unwrap();
    queries.extend(serde_json::from_str::<Vec<(String, String)>>(&py).unwrap());
    queries
}

/// A query of `depth` fields: `scans.edges.node` then `target` / `latestScan` in turn.
fn deep_query(depth: usize) -> String {
    let mut fields = vec!["scans", "edges", "node"];
    while fields.len() < depth - 1 {
        fields.push(if fields.len() % 2 == 1 {
            "target"
        } else {
            "latestScan"
        });
    }
    let mut query = String::from("id");
    for field in fields.iter().rev() {
        query = format!("{field} {{ {query} }}");
    }
    format!("{{ {query} }}")
}

#[tokio::test]
async fn default_limits_refuse_deep_queries_but_not_standard_introspection_depth() {
    let app = TestApp::spawn().await;
    let token = app.login_admin().await;
    assert_eq!(app.state.config.graphql_max_depth, 12, "the default limit");

    let at_limit = app
        .gql(Auth::Bearer(&token), &deep_query(12), json!({}))
        .await;
    assert!(at_limit.body.get("errors").is_none(), "{}", at_limit.body);
    let too_deep = app
        .gql(Auth::Bearer(&token), &deep_query(13), json!({}))
        .await;
    assert_eq!(too_deep.code(), Some("BAD_REQUEST"), "{}", too_deep.body);
    assert_eq!(
        too_deep.body["errors"][0]["message"], "Query is nested too deep.",
        "{}",
        too_deep.body
    );

    // Nine `ofType` levels under `__schema.types.fields.args.type`: depth 15, like the
    // standard queries (anonymous, as code generators ask).
    let mut type_ref = String::from("kind name");
    for _ in 0..9 {
        type_ref = format!("kind name ofType {{ {type_ref} }}");
    }
    let introspection = format!(
        "{{ serverInfo {{ name }} __schema {{ types {{ fields {{ args {{ type {{ {type_ref} }} }} }} }} }} }}"
    );
    let answer = app.gql(Auth::None, &introspection, json!({})).await;
    assert!(answer.body.get("errors").is_none(), "{}", answer.body);
    assert!(
        answer.body["data"]["__schema"]["types"]
            .as_array()
            .unwrap()
            .len()
            > 10
    );
    // Inside introspection too, the application's fields keep their own limit.
    let deep = deep_query(13);
    let mixed = format!(
        "{{ __schema {{ types {{ name }} }} {} }}",
        &deep[2..deep.len() - 2]
    );
    let mixed = app.gql(Auth::Bearer(&token), &mixed, json!({})).await;
    assert_eq!(
        mixed.body["errors"][0]["message"],
        "Query is nested too deep."
    );
}

#[tokio::test]
async fn complexity_limit_counts_application_fields_only() {
    let mut tc = TestConfig::new().await;
    tc.config.graphql_max_complexity = 5;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    // 2 application points beside 4 of introspection: 6 in all, within the limit of 5.
    let mixed = "{ serverInfo { name } __schema { types { name fields { name } } } }";
    let answer = app.gql(Auth::None, mixed, json!({})).await;
    assert!(answer.body.get("errors").is_none(), "{}", answer.body);
    let too_complex = "{ a: serverInfo { name version } b: serverInfo { name version } }";
    let refused = app.gql(Auth::None, too_complex, json!({})).await;
    assert_eq!(
        refused.body["errors"][0]["message"], "Query is too complex.",
        "{}",
        refused.body
    );
    drop(tc);
}

#[tokio::test]
async fn introspection_that_multiplies_the_schema_is_refused() {
    let app = TestApp::spawn().await;
    let nested =
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }";
    let refused = app.gql(Auth::None, nested, json!({})).await;
    assert_eq!(
        refused.body["errors"][0]["message"], "Introspection query nests type lists too deep.",
        "{}",
        refused.body
    );
    let mut type_ref = String::from("name");
    for _ in 0..20 {
        type_ref = format!("ofType {{ {type_ref} }}");
    }
    let deep = format!("{{ __type(name: \"Query\") {{ {type_ref} }} }}");
    let refused = app.gql(Auth::None, &deep, json!({})).await;
    assert_eq!(
        refused.body["errors"][0]["message"], "Introspection query is nested too deep.",
        "{}",
        refused.body
    );
    // The standard queries cost about 230; 19 copies (under the alias cap) of 33 fields, 627.
    let copies: String = (0..19)
        .map(|i| format!("s{i}: __schema {{ types {{ name kind description specifiedByURL fields {{ name description isDeprecated deprecationReason }} enumValues {{ name description isDeprecated deprecationReason }} inputFields {{ name description defaultValue }} }} directives {{ name description locations isRepeatable }} queryType {{ name kind description }} mutationType {{ name kind description }} }} "))
        .collect();
    let refused = app
        .gql(Auth::None, &format!("{{ {copies} }}"), json!({}))
        .await;
    assert_eq!(
        refused.body["errors"][0]["message"], "Introspection query is too complex.",
        "{}",
        refused.body
    );
}

#[tokio::test]
#[cfg_attr(
    not(all(rampart_has_node_clients, rampart_has_graphql_core)),
    ignore = "needs tests/standard-clients installed: `npm ci`, and graphql-core in .venv (README)"
)]
async fn graphql_js_and_graphql_core_introspection_queries_load_the_schema() {
    let app = TestApp::spawn().await;
    let queries = standard_introspection_queries();
    assert_eq!(queries.len(), 5);
    for (who, query) in queries {
        // As GraphiQL's fetcher sends it: JSON, the operation named, no credentials needed.
        let answer: Value = app
            .http
            .post(app.url("/graphql"))
            .json(&json!({"query": query, "operationName": "IntrospectionQuery"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer.get("errors").is_none(), "{who}: {answer}");
        // The clients themselves build their schema from the answer, as GraphiQL does.
        let data = answer["data"].to_string();
        let js = node(
            "const g = require('graphql'); const s = g.buildClientSchema(JSON.parse(require('fs').readFileSync(0, 'utf8'))); \
             console.log(s.getQueryType().name, Object.keys(s.getQueryType().getFields()).length)",
            data.as_bytes(),
        );
        let py = python(
            "import sys, json, graphql; s = graphql.build_client_schema(json.load(sys.stdin)); \
             print(s.query_type.name, len(s.query_type.fields))",
            data.as_bytes(),
        );
        assert_eq!(js, py, "{who}: graphql-js and graphql-core disagree");
        let (root, fields) = js.trim().split_once(' ').unwrap();
        assert_eq!(root, "QueryRoot", "{who}");
        assert!(fields.parse::<usize>().unwrap() > 10, "{who}: {js}");
    }
}

/// The debug binary of this build serving on a random loopback port (on the run's backends),
/// stopped when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(tc: &TestConfig) -> Self {
        let (child, base) = crate::crash::serve_with(tc, &[]);
        Self {
            child,
            base: base.trim_end_matches('/').to_string(),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
#[cfg_attr(
    not(all(rampart_has_node_clients, rampart_has_chromium)),
    ignore = "needs /usr/bin/chromium (apt-get install chromium) and `npm ci` in tests/standard-clients"
)]
async fn graphiql_and_swagger_ui_work_in_chromium() {
    let tc = TestConfig::new().await;
    let server = Server::start(&tc);
    let base = server.base.clone();
    let output = tokio::task::spawn_blocking(move || {
        run(
            "node",
            &["browser.js"],
            b"",
            &[
                ("RAMPART_URL", base.as_str()),
                ("RAMPART_ADMIN_EMAIL", ADMIN_EMAIL),
                ("RAMPART_ADMIN_PASSWORD", ADMIN_PASSWORD),
            ],
        )
    })
    .await
    .unwrap();
    assert!(
        output.contains("browser: GraphiQL and Swagger UI work"),
        "{output}"
    );
    drop(server);
    drop(tc);
}
