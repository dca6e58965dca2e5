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

/// Signs in as the first administrator; the access token.
async fn login(http: &reqwest::Client, base: &str) -> String {
    let answer = http
        .post(format!("{base}/graphql"))
        .json(&json!({"query": "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }", "variables": {"e": ADMIN_EMAIL, "p": ADMIN_PASSWORD}}))
        .send()
        .await
        .unwrap()
        .json::<serde_json::Value>()
        .await
        .unwrap();
    answer["data"]["login"]["token"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string()
}

/// A stand-in for bandit at `dir/bandit`: a shell script that tells its version and otherwise
/// runs `body`.
fn fake_bandit(dir: &std::path::Path, body: &str) -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let engine = dir.join("bandit");
    std::fs::write(
        &engine,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'bandit 0.0.3'; exit 0; fi\n{body}"
        ),
    )
    .unwrap();
    std::fs::set_permissions(&engine, std::fs::Permissions::from_mode(0o755)).unwrap();
    engine
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
    let token = login(&http, &base).await;

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

/// A worker killed while an engine runs: the engine dies with it, the next process takes the
/// job up again once its lease runs out, runs the engine from the start, and the scan completes.
#[tokio::test]
async fn sigkill_during_an_engine_run_then_restart_runs_it_again() {
    let tc = TestConfig::new().await;
    let bin = tempfile::tempdir().unwrap();
    let started = bin.path().join("started");
    // The first run leaves its pid and hangs; every later run answers at once with one result.
    let engine = fake_bandit(
        bin.path(),
        &format!(
            "if [ -e {started} ]; then\n\
             echo '{{\"version\":\"2.1.0\",\"runs\":[{{\"tool\":{{\"driver\":{{\"name\":\"Bandit\",\
             \"rules\":[{{\"id\":\"B602\"}}]}}}},\"results\":[{{\"ruleId\":\"B602\",\"level\":\"error\",\
             \"message\":{{\"text\":\"shell=True\"}},\"locations\":[{{\"physicalLocation\":\
             {{\"artifactLocation\":{{\"uri\":\"app.py\"}},\"region\":{{\"startLine\":1}}}}}}]}}]}}]}}'\n\
             exit 0\nfi\necho $$ > {started}\nexec sleep 300\n",
            started = started.display()
        ),
    );
    let paths = format!("bandit={}", engine.display());
    let scratch = tc.config.data_dir.join("scratch");
    let env = [
        ("RAMPART_ENGINE_PATHS", paths.as_str()),
        ("RAMPART_ENGINE_SCRATCH_DIR", scratch.to_str().unwrap()),
    ];
    let http = reqwest::Client::new();
    let (mut first, base) = serve_with(&tc, &env);
    let token = login(&http, &base).await;
    let accepted: serde_json::Value = http
        .post(format!("{base}/api/v1/scans?target=killed&engines=bandit"))
        .bearer_auth(&token)
        .header("content-type", "application/gzip")
        .body(crate::engines::tar_gz(&[(
            "app.py",
            "import subprocess\nsubprocess.call('ls', shell=True)\n",
        )]))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["data"]["scans"][0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{accepted}"))
        .to_string();

    let waited = std::time::Instant::now();
    while std::fs::read_to_string(&started).map_or(true, |s| s.trim().is_empty()) {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the engine never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pid: i32 = std::fs::read_to_string(&started)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    first.kill().unwrap();
    first.wait().unwrap();
    // The engine dies with its worker.
    let killed = std::time::Instant::now();
    while std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z ")) {
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "the engine outlived its worker"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let (mut second, base) = serve_with(&tc, &env);
    let query = "query($id: UUID!) { scan(id: $id) { status error counts { total } findingsNew } }";
    let mut last = json!(null);
    for _ in 0..600 {
        last = gql(&http, &base, &token, query, json!({"id": id})).await;
        if ["COMPLETE", "FAILED", "CANCELLED"]
            .contains(&last["data"]["scan"]["status"].as_str().unwrap_or(""))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last["data"]["scan"]["status"], "COMPLETE", "{last}");
    assert_eq!(last["data"]["scan"]["counts"]["total"], 1, "{last}");
    assert_eq!(last["data"]["scan"]["findingsNew"], 1, "{last}");
    second.kill().unwrap();
    second.wait().unwrap();
}

/// A schedule overdue by three firings (both servers were down) fires exactly once when two
/// server processes come up on the same database, each polling for due schedules.
#[tokio::test]
async fn an_overdue_schedule_fires_once_across_two_server_processes() {
    let tc = TestConfig::new().await;
    let bin = tempfile::tempdir().unwrap();
    let engine = fake_bandit(
        bin.path(),
        "echo '{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"Bandit\"}},\"results\":[]}]}'\n",
    );
    let roots = tempfile::tempdir().unwrap();
    std::fs::write(roots.path().join("app.py"), "x = 1\n").unwrap();
    let paths = format!("bandit={}", engine.display());
    let env = [
        ("RAMPART_ENGINE_PATHS", paths.as_str()),
        (
            "RAMPART_ENGINE_SOURCE_ROOTS",
            roots.path().to_str().unwrap(),
        ),
    ];
    let http = reqwest::Client::new();
    let (mut first, base) = serve_with(&tc, &env);
    let (mut second, _) = serve_with(&tc, &env);
    let token = login(&http, &base).await;
    let empty =
        br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Bandit"}},"results":[]}]}"#;
    let accepted: serde_json::Value = http
        .post(format!(
            "{base}/api/v1/ingest?target=nightly&target_kind=repository"
        ))
        .bearer_auth(&token)
        .body(empty.to_vec())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let scan_id = accepted["data"]["id"].as_str().unwrap().to_string();
    let mut target = String::new();
    for _ in 0..300 {
        let scan = gql(
            &http,
            &base,
            &token,
            "query($id: UUID!) { scan(id: $id) { status targetId } }",
            json!({"id": scan_id}),
        )
        .await;
        if scan["data"]["scan"]["status"] == "COMPLETE" {
            target = scan["data"]["scan"]["targetId"]
                .as_str()
                .unwrap()
                .to_string();
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(!target.is_empty(), "the first upload never completed");

    let created: serde_json::Value = http
        .post(format!("{base}/api/v1/scan-schedules"))
        .bearer_auth(&token)
        .json(&json!({"target_id": target, "engines": ["bandit"], "source": {"path": roots.path()}, "cron": "0 3 1 1 *", "time_zone": "UTC"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let schedule = created["data"]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("{created}"))
        .to_string();
    // Down for three firings: overdue by hours.
    {
        use sea_orm::{ConnectionTrait, Statement};
        let db = rampart::db::connect(&tc.config.effective_database_url())
            .await
            .unwrap();
        let sql = match db.get_database_backend() {
            sea_orm::DbBackend::Postgres => {
                r#"UPDATE "scan_schedule" SET "next_run_at" = $1 WHERE "id" = $2"#
            }
            _ => r#"UPDATE "scan_schedule" SET "next_run_at" = ? WHERE "id" = ?"#,
        };
        db.execute_raw(Statement::from_sql_and_values(
            db.get_database_backend(),
            sql,
            [
                (chrono::Utc::now() - chrono::Duration::hours(3)).into(),
                uuid::Uuid::parse_str(&schedule).unwrap().into(),
            ],
        ))
        .await
        .unwrap();
    }
    let engine_scans = || async {
        let listed: serde_json::Value = http
            .get(format!("{base}/api/v1/scans?page_size=100"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["source"] == "engine")
            .cloned()
            .collect::<Vec<_>>()
    };
    let waited = std::time::Instant::now();
    while engine_scans().await.is_empty() {
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "the schedule never fired"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Both processes poll every 2 s: give each a few more chances to fire it again.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let fired = engine_scans().await;
    assert_eq!(fired.len(), 1, "{fired:?}");
    first.kill().unwrap();
    first.wait().unwrap();
    second.kill().unwrap();
    second.wait().unwrap();
}
