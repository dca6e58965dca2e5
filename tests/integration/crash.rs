//! A worker killed mid-scan: the next process takes the job up again and the scan completes
//! with exactly the right findings.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use rampart::ingest::synthetic::{sarif, SyntheticResult};
use serde_json::json;

use crate::support::{TestConfig, ADMIN_EMAIL, ADMIN_PASSWORD};

/// `rampart serve` as its own process on the test's backends; returns it and its base URL.
fn serve(tc: &TestConfig) -> (Child, String) {
    serve_with(tc, &[])
}

/// The same, with more environment variables.
pub(crate) fn serve_with(tc: &TestConfig, extra: &[(&str, &str)]) -> (Child, String) {
    let c = &tc.config;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    cmd.envs(extra.iter().copied());
    cmd.args(["serve", "--bind", "127.0.0.1:0"])
        .env("RAMPART_DATA_DIR", &c.data_dir)
        .env("RAMPART_ADMIN_EMAIL", ADMIN_EMAIL)
        .env("RAMPART_ADMIN_PASSWORD", ADMIN_PASSWORD)
        .env("RAMPART_JOB_LEASE_SECS", "2")
        .env("RAMPART_REDIS_PREFIX", &c.redis_prefix)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    for (name, value) in [
        ("DATABASE_URL", &c.database_url),
        ("REDIS_URL", &c.redis_url),
        ("RAMPART_S3_BUCKET", &c.s3_bucket),
        ("RAMPART_S3_ENDPOINT", &c.s3_endpoint),
        ("AWS_ACCESS_KEY_ID", &c.s3_access_key_id),
        ("AWS_SECRET_ACCESS_KEY", &c.s3_secret_access_key),
    ] {
        match value {
            Some(v) => cmd.env(name, v),
            None => cmd.env_remove(name),
        };
    }
    let mut child = cmd.spawn().expect("server starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    let base = loop {
        line.clear();
        assert!(
            stdout.read_line(&mut line).unwrap() > 0,
            "server exited before listening"
        );
        if let Some(url) = line.split_whitespace().find(|w| w.starts_with("http://")) {
            break url.to_string();
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in stdout.lines() {});
    (child, base)
}

async fn gql(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
    vars: serde_json::Value,
) -> serde_json::Value {
    http.post(format!("{base}/graphql"))
        .bearer_auth(token)
        .json(&json!({"query": query, "variables": vars}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn sigkill_during_processing_then_restart_completes_exactly() {
    let tc = TestConfig::new().await;
    let http = reqwest::Client::new();
    let (mut first, base) = serve(&tc);
    let login = http
        .post(format!("{base}/graphql"))
        .json(&json!({"query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    let token = login["data"]["login"]["token"]
        .as_str()
        .unwrap()
        .to_string();

    const N: u64 = 40_000;
    let report = sarif("semgrep", (0..N).map(SyntheticResult::numbered));
    let accepted: serde_json::Value = http
        .post(format!("{base}/api/v1/ingest?target=crashy"))
        .bearer_auth(&token)
        .body(report.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["data"]["id"].as_str().unwrap().to_string();

    let progress_query = "query($id: UUID!) { scan(id: $id) { status progress { processed } } }";
    let mut killed_mid_way = false;
    for _ in 0..1000 {
        let scan = gql(&http, &base, &token, progress_query, json!({"id": id})).await;
        let processed = scan["data"]["scan"]["progress"]["processed"]
            .as_u64()
            .unwrap_or(0);
        if processed > 0 {
            first.kill().unwrap();
            first.wait().unwrap();
            killed_mid_way = scan["data"]["scan"]["status"] == "RUNNING";
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(killed_mid_way, "the server was killed while the scan ran");

    let (mut second, base) = serve(&tc);
    let query = "query($id: UUID!) { scan(id: $id) { status counts { total } findingsNew } findings(pageSize: 1) { totalCount } }";
    let mut last = json!(null);
    for _ in 0..1200 {
        last = gql(&http, &base, &token, query, json!({"id": id})).await;
        if last["data"]["scan"]["status"] == "COMPLETE" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["data"]["scan"]["status"], "COMPLETE", "{last}");
    assert_eq!(last["data"]["scan"]["counts"]["total"], N);
    assert_eq!(last["data"]["scan"]["findingsNew"], N);
    assert_eq!(last["data"]["findings"]["totalCount"], N, "no duplicates");

    let raw = http
        .get(format!("{base}/api/v1/scans/{id}/raw"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        raw.bytes().await.unwrap().to_vec(),
        report,
        "the raw report is intact"
    );
    second.kill().unwrap();
    second.wait().unwrap();
}
