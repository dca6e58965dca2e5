//! REST vs GraphQL: every read (GET) row of the REST table against the equivalent direct
//! `POST /graphql` request — the row's own operation document, with exactly the variables the
//! translator builds from the REST request — under the same `wrk` load on loopback, with the
//! same credential.
//!
//! `cargo bench --bench rest_vs_graphql [-- SECONDS [CONNECTIONS [ROUNDS]]] [ROUTE...]`
//! (defaults 5, 8, 3; words that are not numbers keep only the routes with those path templates,
//! e.g. `/api/v1/scans` to profile one route). Needs `wrk` (Debian package `wrk`). Runs the app in this process on the embedded default
//! (SQLite, local store) with the demo data (`--demo`), rate limits out of the way, and prints
//! a Markdown table for docs/benchmarks.md. Each round measures REST and GraphQL back to back
//! (alternating which goes first); the table shows each side's median over the rounds.

use std::collections::HashMap;
use std::process::Command;
use std::time::Duration;

use rampart::rest::row::{Method, Source};
use rampart::rest::translate::{variables, RestRequest};
use rampart::{App, Config};
use serde_json::{json, Value};

const EMAIL: &str = "bench@rampart.local";
const PASSWORD: &str = "bench-password-rest-vs-graphql";

/// One read route and its GraphQL twin, ready for `wrk`.
struct Case {
    /// The row's path template.
    path: &'static str,
    label: String,
    rest_url: String,
    graphql_body: String,
    /// `x-api-key: …` or `Authorization: Bearer …`, the same for both.
    auth: (&'static str, String),
}

/// What one `wrk` run measured.
#[derive(Clone, Copy, Debug)]
struct Measured {
    requests_per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

struct Setup {
    base: String,
    key: String,
    token: String,
    /// Values for path parameters and required query parameters, by REST name and route.
    target_id: String,
    cluster_id: String,
    scan_id: String,
    earlier_scan_id: String,
    finding_id: String,
}

async fn gql(http: &reqwest::Client, s: &Setup, query: &str, vars: Value) -> Value {
    let res: Value = http
        .post(format!("{}/graphql", s.base))
        .header("x-api-key", &s.key)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .expect("graphql")
        .json()
        .await
        .expect("graphql json");
    assert!(res["errors"].is_null(), "{query}: {res}");
    res["data"].clone()
}

fn str_at<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} in {v}"))
}

/// Signs in, mints a key and picks ids from the demo data.
async fn setup(base: String) -> Setup {
    let http = reqwest::Client::new();
    let login: Value = http
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": EMAIL, "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = str_at(&login, "/data/token").to_string();
    let created: Value = http
        .post(format!("{base}/api/v1/api-keys"))
        .bearer_auth(&token)
        .json(&json!({"label": "bench", "scopes": "write"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = str_at(&created, "/data/key").to_string();
    let mut s = Setup {
        base,
        key,
        token,
        target_id: String::new(),
        cluster_id: String::new(),
        scan_id: String::new(),
        earlier_scan_id: String::new(),
        finding_id: String::new(),
    };
    let targets = gql(&http, &s, "{ targets { nodes { id kind } } }", json!({})).await;
    let nodes = targets["targets"]["nodes"].as_array().expect("targets");
    let of_kind = |kind: &str| {
        nodes
            .iter()
            .find(|t| t["kind"] == kind)
            .map(|t| t["id"].as_str().unwrap().to_string())
            .unwrap_or_else(|| panic!("no {kind} target in the demo data"))
    };
    s.target_id = of_kind("REPOSITORY");
    s.cluster_id = of_kind("KAFKA_CLUSTER");
    let scans = gql(
        &http,
        &s,
        "query($t: UUID!) { scans(targetId: $t, pageSize: 2) { nodes { id } } }",
        json!({"t": s.target_id}),
    )
    .await;
    s.scan_id = str_at(&scans, "/scans/nodes/0/id").to_string();
    s.earlier_scan_id = str_at(&scans, "/scans/nodes/1/id").to_string();
    let findings = gql(
        &http,
        &s,
        "query($t: UUID!) { findings(targetId: $t, pageSize: 1) { nodes { id } } }",
        json!({"t": s.target_id}),
    )
    .await;
    s.finding_id = str_at(&findings, "/findings/nodes/0/id").to_string();
    let comment = http
        .post(format!(
            "{}/api/v1/findings/{}/comments",
            s.base, s.finding_id
        ))
        .bearer_auth(&s.token)
        .json(&json!({"body": "seen in the benchmark"}))
        .send()
        .await
        .unwrap();
    assert_eq!(comment.status(), 201);
    s
}

/// Name and value pairs, in order.
type Pairs = Vec<(String, String)>;

/// The path parameters of `path`, and the query a read needs (only the required parameters).
fn request_for(s: &Setup, path: &str) -> (Pairs, Pairs) {
    let value = |name: &str| -> String {
        match (path, name) {
            (p, "id") if p.starts_with("/api/v1/clusters") => s.cluster_id.clone(),
            (p, "id") if p.starts_with("/api/v1/targets") => s.target_id.clone(),
            (p, "id") if p.starts_with("/api/v1/scans") => s.scan_id.clone(),
            (p, "id") if p.starts_with("/api/v1/findings") => s.finding_id.clone(),
            (_, "target_id") => s.target_id.clone(),
            (_, "framework") => "owasp-top10-2021".to_string(),
            _ => panic!("no value for {{{name}}} in {path}"),
        }
    };
    let params = rampart::rest::compile::path_params(path)
        .into_iter()
        .map(|name| (name.to_string(), value(name)))
        .collect();
    let query = match path {
        "/api/v1/scans/compare" => vec![
            ("scan_a".to_string(), s.earlier_scan_id.clone()),
            ("scan_b".to_string(), s.scan_id.clone()),
        ],
        _ => Vec::new(),
    };
    (params, query)
}

/// Every GET row as a REST URL and the `POST /graphql` body of its operation.
async fn cases(s: &Setup) -> Vec<Case> {
    let api = rampart::rest::api().expect("the REST table compiles");
    let http = reqwest::Client::new();
    let mut out = Vec::new();
    for route in api.routes.iter().filter(|r| r.row.method == Method::Get) {
        let (params, query) = request_for(s, route.row.path);
        assert!(
            route
                .vars
                .iter()
                .all(|v| matches!(v.source, Source::Path | Source::Query)),
            "a GET row reads no body"
        );
        let mut path = route.row.path.to_string();
        for (name, value) in &params {
            path = path.replace(&format!("{{{name}}}"), value);
        }
        let query_string = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(&query)
            .finish();
        let rest_url = match query_string.is_empty() {
            true => format!("{}{path}", s.base),
            false => format!("{}{path}?{query_string}", s.base),
        };
        let headers = reqwest::header::HeaderMap::new();
        let req = RestRequest {
            path: &path,
            path_params: &params,
            query: &query,
            headers: &headers,
            body: &[],
        };
        let vars = variables(route, &api.index, &req).expect("the translator's variables");
        let graphql_body = json!({
            "query": route.row.operation,
            "operationName": route.operation_name,
            "variables": vars,
        })
        .to_string();
        // The key where a key may call it, else the session (for the session-only rows).
        let mut auth = None;
        for candidate in [
            ("x-api-key", s.key.clone()),
            ("Authorization", format!("Bearer {}", s.token)),
        ] {
            let rest = http
                .get(&rest_url)
                .header(candidate.0, &candidate.1)
                .send()
                .await
                .unwrap();
            if rest.status() != 200 {
                continue;
            }
            let rest: Value = rest.json().await.unwrap();
            let graphql: Value = http
                .post(format!("{}/graphql", s.base))
                .header(candidate.0, &candidate.1)
                .header("content-type", "application/json")
                .body(graphql_body.clone())
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert!(graphql["errors"].is_null(), "{}: {graphql}", route.row.path);
            assert!(!rest["data"].is_null(), "{}: {rest}", route.row.path);
            auth = Some(candidate);
            break;
        }
        let auth = auth.unwrap_or_else(|| panic!("{} answers no credential", route.row.path));
        out.push(Case {
            path: route.row.path,
            label: format!(
                "GET {}{}",
                route.row.path,
                if query.is_empty() { "" } else { "?…" }
            ),
            rest_url,
            graphql_body,
            auth,
        });
    }
    out
}

/// A Lua string literal that needs no escaping (long brackets).
fn lua_string(s: &str) -> String {
    let mut level = 0;
    while s.contains(&format!("]{}]", "=".repeat(level))) {
        level += 1;
    }
    let eq = "=".repeat(level);
    format!("[{eq}[{s}]{eq}]")
}

/// Runs `wrk` once; every answer must be a success.
fn wrk(
    dir: &std::path::Path,
    url: &str,
    post_body: Option<&str>,
    auth: &(&str, String),
    seconds: u32,
    connections: u32,
) -> Measured {
    let mut script = String::new();
    if let Some(body) = post_body {
        script.push_str("wrk.method = \"POST\"\n");
        script.push_str(&format!("wrk.body = {}\n", lua_string(body)));
        script.push_str("wrk.headers[\"Content-Type\"] = \"application/json\"\n");
    }
    script.push_str(&format!(
        "wrk.headers[ {} ] = {}\n",
        lua_string(auth.0),
        lua_string(&auth.1)
    ));
    script.push_str(
        r#"done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %f %f\n", summary.requests, summary.duration,
    e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
"#,
    );
    let path = dir.join("case.lua");
    std::fs::write(&path, script).unwrap();
    let out = Command::new("wrk")
        .args([
            "-t1",
            &format!("-c{connections}"),
            &format!("-d{seconds}s"),
            "-s",
        ])
        .arg(&path)
        .arg(url)
        .output()
        .expect("running wrk (apt-get install wrk)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| {
            panic!(
                "wrk printed no result: {stdout}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    let n: Vec<f64> = line
        .split_whitespace()
        .map(|x| x.parse().unwrap())
        .collect();
    let (requests, micros, bad_status, socket_errors) = (n[0], n[1], n[2], n[3]);
    assert!(
        bad_status == 0.0 && socket_errors == 0.0,
        "{url}: {bad_status} error answers, {socket_errors} socket errors"
    );
    Measured {
        requests_per_sec: requests / (micros / 1e6),
        p50_ms: n[4] / 1000.0,
        p99_ms: n[5] / 1000.0,
    }
}

fn median(mut values: Vec<Measured>) -> Measured {
    values.sort_by(|a, b| a.requests_per_sec.total_cmp(&b.requests_per_sec));
    values[values.len() / 2]
}

fn main() {
    let args: Vec<u32> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let seconds = args.first().copied().unwrap_or(5);
    let connections = args.get(1).copied().unwrap_or(8);
    let rounds = args.get(2).copied().unwrap_or(3).max(1);
    let only: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a.parse::<u32>().is_err())
        .collect();

    let dir = tempfile::tempdir().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let (setup, cases) = runtime.block_on(async {
        let mut config = Config::with_data_dir(dir.path());
        config.admin_email = Some(EMAIL.into());
        config.admin_password = Some(PASSWORD.into());
        config.demo = true;
        // The same budget check runs on both sides; a budget this large never refuses.
        config.rate_limit_per_minute = u32::MAX;
        config.access_token_ttl_secs = 24 * 3600;
        config.bind = "127.0.0.1:0".parse().unwrap();
        let app = App::build(config).await.expect("app");
        let base = format!("http://{}", app.local_addr());
        tokio::spawn(app.run_until(std::future::pending()));
        let setup = setup(base).await;
        let mut cases = cases(&setup).await;
        if !only.is_empty() {
            cases.retain(|c| only.iter().any(|o| c.path == *o));
        }
        (setup, cases)
    });
    eprintln!(
        "{} read routes at {}, wrk -t1 -c{connections} -d{seconds}s, {rounds} rounds",
        cases.len(),
        setup.base
    );

    let mut results: HashMap<usize, (Vec<Measured>, Vec<Measured>)> = HashMap::new();
    for round in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            let rest = || {
                wrk(
                    dir.path(),
                    &case.rest_url,
                    None,
                    &case.auth,
                    seconds,
                    connections,
                )
            };
            let graphql = || {
                wrk(
                    dir.path(),
                    &format!("{}/graphql", setup.base),
                    Some(&case.graphql_body),
                    &case.auth,
                    seconds,
                    connections,
                )
            };
            let (r, g) = if (round + i as u32) % 2 == 0 {
                let r = rest();
                (r, graphql())
            } else {
                let g = graphql();
                (rest(), g)
            };
            eprintln!(
                "round {round} {}: REST {:.0} req/s, GraphQL {:.0} req/s",
                case.label, r.requests_per_sec, g.requests_per_sec
            );
            let entry = results.entry(i).or_default();
            entry.0.push(r);
            entry.1.push(g);
        }
    }

    println!("| route | REST req/s | GraphQL req/s | REST time ÷ GraphQL time | REST p50 / p99 ms | GraphQL p50 / p99 ms |");
    println!("|---|---|---|---|---|---|");
    let mut log_sum = 0.0;
    let mut worst: (f64, &str) = (0.0, "");
    for (i, case) in cases.iter().enumerate() {
        let (rest, graphql) = results.remove(&i).unwrap();
        let (r, g) = (median(rest), median(graphql));
        // Time per request is 1 / throughput: above 1.00 REST costs more.
        let cost = g.requests_per_sec / r.requests_per_sec;
        log_sum += cost.ln();
        if cost > worst.0 {
            worst = (cost, &case.label);
        }
        println!(
            "| `{}` | {:.0} | {:.0} | {:.2} | {:.2} / {:.2} | {:.2} / {:.2} |",
            case.label,
            r.requests_per_sec,
            g.requests_per_sec,
            cost,
            r.p50_ms,
            r.p99_ms,
            g.p50_ms,
            g.p99_ms
        );
    }
    let mean = (log_sum / cases.len() as f64).exp();
    println!();
    println!(
        "Geometric mean of REST time ÷ GraphQL time: {mean:.3}; worst {:.3} ({}). Target ≤ 1.10.",
        worst.0, worst.1
    );
    drop(runtime);
    std::thread::sleep(Duration::from_millis(10));
}
