//! The `rampart` binary itself: options, start-up failures, migrations, schema export, SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::support::TestConfig;

/// The binary with a clean environment: no backend variables leak in from the test run.
fn rampart(data_dir: &std::path::Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "RAMPART_S3_BUCKET",
        "RAMPART_S3_ENDPOINT",
        "RAMPART_JWT_SECRET",
        "RAMPART_BIND",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("RAMPART_DATA_DIR", data_dir)
        .env("RUST_LOG", "warn");
    cmd
}

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_string()
}

#[test]
fn serve_help_documents_every_option() {
    let dir = tempfile::tempdir().unwrap();
    let output = rampart(dir.path())
        .args(["serve", "--help"])
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for name in [
        "--bind",
        "RAMPART_BIND",
        "--data-dir",
        "RAMPART_DATA_DIR",
        "DATABASE_URL",
        "REDIS_URL",
        "RAMPART_S3_BUCKET",
        "RAMPART_S3_ENDPOINT",
        "RAMPART_S3_REGION",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "RAMPART_JWT_SECRET",
        "RAMPART_ADMIN_EMAIL",
        "RAMPART_ADMIN_PASSWORD",
        "RAMPART_LOG_FORMAT",
    ] {
        assert!(help.contains(name), "--help lacks {name}:\n{help}");
    }
}

#[test]
fn wrong_database_url_exits_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = rampart(dir.path())
        .env(
            "DATABASE_URL",
            "postgres://nobody:hunter2@127.0.0.1:1/nowhere",
        )
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(
            "error: cannot connect to the database at postgres://nobody:***@127.0.0.1:1/nowhere"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("hunter2") && !stderr.contains("panicked"));
}

#[test]
fn unreachable_s3_exits_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let output = rampart(dir.path())
        .env("RAMPART_S3_BUCKET", "reports")
        .env("RAMPART_S3_ENDPOINT", "http://127.0.0.1:1")
        .env("AWS_ACCESS_KEY_ID", "k")
        .env("AWS_SECRET_ACCESS_KEY", "s")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with("error: object store S3 bucket \"reports\" at http://127.0.0.1:1"),
        "{stderr}"
    );
}

#[tokio::test]
async fn migrate_status_up_and_down() {
    let tc = TestConfig::new().await;
    let run = |args: &[&str]| {
        let mut cmd = rampart(&tc.config.data_dir);
        if let Some(url) = &tc.config.database_url {
            cmd.env("DATABASE_URL", url);
        }
        let output = cmd.arg("migrate").args(args).output().unwrap();
        assert!(output.status.success(), "{}", stderr_of(&output));
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let status = run(&["status"]);
    assert!(status.lines().count() >= 4, "{status}");
    assert!(status.lines().all(|l| l.starts_with("Pending")), "{status}");

    let up = run(&["up"]);
    assert!(up.lines().all(|l| l.starts_with("Applied")), "{up}");

    let down_one = run(&["down"]);
    assert_eq!(
        down_one
            .lines()
            .filter(|l| l.starts_with("Pending"))
            .count(),
        1
    );

    let down_all = run(&["down", "--all"]);
    assert!(
        down_all.lines().all(|l| l.starts_with("Pending")),
        "{down_all}"
    );
}

#[tokio::test]
async fn committed_schema_matches_what_is_served() {
    let out = tempfile::tempdir().unwrap();
    let output = rampart(out.path())
        .args(["export-schema", "--out"])
        .arg(out.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr_of(&output));
    let committed = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("schema");
    for file in ["schema.graphql", "openapi.json"] {
        let exported = std::fs::read_to_string(out.path().join(file)).unwrap();
        let in_repo = std::fs::read_to_string(committed.join(file)).unwrap_or_default();
        assert!(
            exported == in_repo,
            "schema/{file} is stale: run `cargo run -- export-schema` and commit it"
        );
    }

    let app = crate::support::TestApp::spawn().await;
    for path in ["/openapi.json", "/api/v1/openapi.json"] {
        let (status, served) = app.get_json(path).await;
        assert_eq!(status, 200);
        let exported: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(out.path().join("openapi.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(served, exported, "{path} differs from the export");
        assert_eq!(served["openapi"], "3.1.0");
    }
}

#[test]
fn sigterm_stops_the_server_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = rampart(dir.path())
        .args(["serve", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The banner may be preceded by the generated admin password; find the URL line.
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

    let health = blocking_status(&format!("{base}/health"));
    assert_eq!(health, 200);

    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "server ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "exit status {status}");
}

/// A one-off GET from synchronous test code; returns the status.
fn blocking_status(url: &str) -> u16 {
    let url = url.to_string();
    std::thread::spawn(move || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async { reqwest::get(&url).await.unwrap().status().as_u16() })
    })
    .join()
    .unwrap()
}

/// Runs a client command of the binary (`upload`, `scans watch`) against `app`, with its
/// output captured (so not a terminal: progress comes as one line per phase).
async fn client(
    app: &crate::support::TestApp,
    key: &str,
    args: Vec<String>,
) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = rampart(dir.path());
    cmd.env("RAMPART_API", &app.base)
        .env("RAMPART_API_KEY", key)
        .args(args);
    tokio::task::spawn_blocking(move || {
        let output = cmd.output().unwrap();
        drop(dir);
        output
    })
    .await
    .unwrap()
}

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_string()).collect()
}

/// The summary line the CLI should print for a finished scan, built from the scan as the
/// server reports it over GraphQL.
fn expected_summary(scan: &serde_json::Value) -> String {
    let c = &scan["counts"];
    format!(
        "scan {} {}: score {} | critical {} high {} medium {} low {} info {} | new {} fixed {}",
        scan["id"].as_str().unwrap(),
        scan["status"].as_str().unwrap().to_lowercase(),
        scan["score"],
        c["critical"],
        c["high"],
        c["medium"],
        c["low"],
        c["info"],
        scan["findingsNew"],
        scan["findingsFixed"]
    )
}

#[tokio::test]
async fn upload_follow_prints_phases_and_the_summary() {
    use crate::support::Auth;
    use rampart::ingest::synthetic::{sarif, SyntheticResult};
    let app = crate::support::TestApp::spawn().await;
    let key = app.create_key(&app.login_admin().await, "WRITE").await;
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("report.sarif");
    // 12 results: levels error / warning / note in turn, i.e. 4 high, 4 medium, 4 low.
    std::fs::write(
        &report,
        sarif("semgrep", (0..12).map(SyntheticResult::numbered)),
    )
    .unwrap();

    let output = client(
        &app,
        &key,
        args(&[
            "upload",
            "--follow",
            "--target",
            "cli-target",
            "--kind",
            "repository",
            report.to_str().unwrap(),
        ]),
    )
    .await;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("scan ")?.strip_suffix(" queued"))
        .unwrap_or_else(|| panic!("no queued line: {stdout}"))
        .to_string();

    let scan = app.wait_scan(Auth::ApiKey(&key), &id).await;
    assert_eq!(scan["status"], "COMPLETE");
    assert_eq!(
        [
            &scan["counts"]["high"],
            &scan["counts"]["medium"],
            &scan["counts"]["low"]
        ],
        [4, 4, 4]
    );
    assert_eq!(scan["findingsNew"], 12);
    let summary = stdout.lines().last().unwrap();
    assert_eq!(summary, expected_summary(&scan), "{stdout}");
    assert!(
        summary.contains("high 4 medium 4 low 4") && summary.contains("new 12 fixed 0"),
        "{summary}"
    );

    // Not a terminal: one line per phase change, ending with the terminal phase.
    let prefix = format!("scan {id} ");
    let phases: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter(|l| l.ends_with('%'))
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(phases.last(), Some(&"complete"), "{stdout}");
    assert!(phases.windows(2).all(|w| w[0] != w[1]), "{stdout}");

    // Uploading the same findings again: nothing new, and the score is the server's.
    let again = client(
        &app,
        &key,
        args(&[
            "upload",
            "--target",
            "cli-target",
            "--kind",
            "repository",
            report.to_str().unwrap(),
        ]),
    )
    .await;
    let stdout = String::from_utf8_lossy(&again.stdout).to_string();
    assert!(again.status.success(), "{stdout}\n{}", stderr_of(&again));
    assert!(stdout.trim_end().ends_with("| new 0 fixed 0"), "{stdout}");
}

#[tokio::test]
async fn upload_follow_of_a_broken_report_fails_naming_the_reason() {
    use crate::support::Auth;
    let app = crate::support::TestApp::spawn().await;
    let key = app.create_key(&app.login_admin().await, "WRITE").await;
    let dir = tempfile::tempdir().unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, b"{\"version\": \"2.1.0\", \"runs\": [").unwrap();

    let output = client(
        &app,
        &key,
        args(&[
            "upload",
            "--follow",
            "--target",
            "cli-target",
            "--kind",
            "repository",
            broken.to_str().unwrap(),
        ]),
    )
    .await;
    assert!(!output.status.success());
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("scan ")?.strip_suffix(" queued"))
        .unwrap_or_else(|| panic!("no queued line: {stdout}"))
        .to_string();
    let scan = app.wait_scan(Auth::ApiKey(&key), &id).await;
    assert_eq!(scan["status"], "FAILED");
    let reason = scan["error"].as_str().unwrap();
    assert!(!reason.is_empty());
    let stderr = stderr_of(&output);
    assert_eq!(
        stderr,
        format!("error: scan {id} ended failed: {reason}"),
        "{stdout}"
    );
}

#[tokio::test]
async fn scans_watch_of_a_finished_scan_prints_its_summary() {
    use crate::support::Auth;
    use rampart::ingest::synthetic::{sarif, SyntheticResult};
    let app = crate::support::TestApp::spawn().await;
    let key = app.create_key(&app.login_admin().await, "READ").await;
    let token = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=watched&target_kind=repository",
            sarif("bandit", (0..30).map(SyntheticResult::numbered)),
        )
        .await;
    assert_eq!(scan["status"], "COMPLETE");
    let id = scan["id"].as_str().unwrap();

    let output = client(&app, &key, args(&["scans", "watch", id])).await;
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(output.status.success(), "{stdout}\n{}", stderr_of(&output));
    assert_eq!(
        stdout.lines().last(),
        Some(expected_summary(&scan).as_str())
    );
    assert!(stdout.contains("new 30 fixed 0"), "{stdout}");
    assert_eq!(stderr_of(&output), "");
}

#[tokio::test]
async fn scans_watch_refuses_a_bad_key_or_an_unknown_scan_in_one_line() {
    use crate::support::Auth;
    use rampart::ingest::synthetic::{sarif, SyntheticResult};
    let app = crate::support::TestApp::spawn().await;
    let token = app.login_admin().await;
    let key = app.create_key(&token, "READ").await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=watched&target_kind=repository",
            sarif("bandit", (0..3).map(SyntheticResult::numbered)),
        )
        .await;
    let id = scan["id"].as_str().unwrap();

    let bad_key = format!("rmp_{}", "x".repeat(40));
    let refused = client(&app, &bad_key, args(&["scans", "watch", id])).await;
    assert!(!refused.status.success());
    let stderr = stderr_of(&refused);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot follow scan {id}: ")) && stderr.contains("401"),
        "{stderr}"
    );
    assert!(refused.stdout.is_empty());

    let unknown = uuid::Uuid::new_v4().to_string();
    let missing = client(&app, &key, args(&["scans", "watch", &unknown])).await;
    assert!(!missing.status.success());
    let stderr = stderr_of(&missing);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot follow scan {unknown}: "))
            && stderr.contains("404"),
        "{stderr}"
    );

    let malformed = client(&app, &key, args(&["scans", "watch", "not-a-scan"])).await;
    assert!(!malformed.status.success());
    let stderr = stderr_of(&malformed);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("400"), "{stderr}");
}

#[tokio::test]
async fn scans_watch_resumes_after_a_dropped_connection_and_fails_when_cancelled() {
    use crate::support::proxy::Proxy;
    use crate::support::{Auth, TestConfig};
    use rampart::ingest::synthetic::{sarif, SyntheticResult};
    use std::io::BufRead as _;
    // An API-only process: the scan stays queued until it is cancelled.
    let mut tc = TestConfig::new().await;
    tc.config.role = rampart::config::Role::Api;
    let mut app = crate::support::TestApp::spawn_with(tc.config.clone()).await;
    app.test_config = Some(tc);
    let token = app.login_admin().await;
    let key = app.create_key(&token, "READ").await;
    let accepted = app
        .ingest(
            Auth::Bearer(&token),
            "target=held&target_kind=repository",
            sarif("bandit", (0..3).map(SyntheticResult::numbered)),
        )
        .await;
    let id = accepted.body["data"]["id"].as_str().unwrap().to_string();
    let proxy = Proxy::start(app.addr).await;

    let dir = tempfile::tempdir().unwrap();
    let mut child = rampart(dir.path())
        .env("RAMPART_API_KEY", &key)
        .args([
            "scans",
            "watch",
            &id,
            "--api",
            &format!("http://{}", proxy.addr),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (lines_tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(30), lines.recv())
        .await
        .expect("the watcher shows the queued scan")
        .unwrap();
    assert_eq!(first, format!("scan {id} queued 0%"));

    proxy.reset();
    let cancelled = app
        .gql(
            Auth::Bearer(&token),
            "mutation($id: UUID!) { cancelScan(id: $id) { status } }",
            serde_json::json!({"id": id}),
        )
        .await;
    assert_eq!(cancelled.data("cancelScan")["status"], "CANCELLED");

    let output = tokio::time::timeout(
        Duration::from_secs(60),
        tokio::task::spawn_blocking(move || child.wait_with_output().unwrap()),
    )
    .await
    .expect("the watcher ends after the cancellation")
    .unwrap();
    let mut stdout = vec![first];
    // The reader thread ends (and closes the channel) at the end of the child's output.
    while let Ok(Some(line)) = tokio::time::timeout(Duration::from_secs(10), lines.recv()).await {
        stdout.push(line);
    }
    let stdout = stdout.join("\n");
    let stderr = stderr_of(&output);
    assert!(!output.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr
            .lines()
            .any(|l| l.contains("interrupted") && l.ends_with("resuming")),
        "{stderr}"
    );
    assert_eq!(
        stderr.lines().last(),
        Some(format!("error: scan {id} ended cancelled: cancelled").as_str()),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("scan {id} cancelled 0%")),
        "{stdout}"
    );
    assert!(
        stdout.ends_with(&format!(
            "scan {id} cancelled: score - | critical 0 high 0 medium 0 low 0 info 0 | new 0 fixed 0"
        )),
        "{stdout}"
    );
}
