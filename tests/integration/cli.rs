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

#[tokio::test]
async fn upload_command_waits_for_the_scan_and_fails_when_it_does() {
    let app = crate::support::TestApp::spawn().await;
    let key = app.create_key(&app.login_admin().await, "WRITE").await;
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("report.sarif");
    std::fs::write(
        &good,
        rampart::ingest::synthetic::sarif(
            "semgrep",
            (0..12).map(rampart::ingest::synthetic::SyntheticResult::numbered),
        ),
    )
    .unwrap();
    let broken = dir.path().join("broken.json");
    std::fs::write(&broken, b"{\"version\": \"2.1.0\", \"runs\": [").unwrap();

    let upload = |file: std::path::PathBuf| {
        let mut cmd = rampart(dir.path());
        cmd.env("RAMPART_API_KEY", &key)
            .args([
                "upload",
                "--api",
                &app.base,
                "--target",
                "cli-target",
                "--kind",
                "repository",
            ])
            .arg(file);
        tokio::task::spawn_blocking(move || cmd.output().unwrap())
    };
    let ok = upload(good).await.unwrap();
    let stdout = String::from_utf8_lossy(&ok.stdout);
    assert!(ok.status.success(), "{stdout}\n{}", stderr_of(&ok));
    assert!(
        stdout.contains("queued") && stdout.contains("complete"),
        "{stdout}"
    );
    assert!(stdout.contains("new 12"), "{stdout}");

    let failed = upload(broken).await.unwrap();
    assert!(!failed.status.success());
    assert!(
        stderr_of(&failed).contains("ended failed"),
        "{}",
        stderr_of(&failed)
    );
}
