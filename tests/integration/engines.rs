//! Triggered scans: real engines (tests/engines/.venv, .venv-checkov) run on fixtures the tests
//! write themselves, through the worker, into the ingest pipeline; cancellation; sources and
//! their safety checks; who may start what.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::{assert_envelope, Auth, Rest, TestApp, TestConfig};

const VULNERABLE_PY: &str =
    "import subprocess\n\n\ndef run(cmd):\n    subprocess.call(cmd, shell=True)\n";
const FIXED_PY: &str = "import subprocess\n\n\ndef run(args):\n    subprocess.call(args)\n";
const AWS_KEY_PY: &str = "aws_access_key_id = \"AKIAIOSFODNN7EXAMPLE\"\n";
const OPEN_SG_TF: &str = r#"resource "aws_security_group" "open" {
  name        = "open"
  description = "ssh from anywhere"
  ingress {
    description = "ssh"
    from_port   = 22
    to_port     = 22
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}
"#;

fn engines_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/engines")
}

/// The pinned engines, by configured path (they need not be on the PATH).
fn with_engines(tc: &mut TestConfig) {
    let venv = engines_dir().join(".venv/bin");
    let checkov = engines_dir().join(".venv-checkov/bin/checkov");
    for path in [venv.join("semgrep"), checkov.clone()] {
        assert!(
            path.is_file(),
            "{} is missing: pip install -r tests/engines/*requirements.txt (see .ci/run)",
            path.display()
        );
    }
    tc.config.engine_paths = vec![
        ("bandit".into(), venv.join("bandit")),
        ("semgrep".into(), venv.join("semgrep")),
        ("detect-secrets".into(), venv.join("detect-secrets")),
        ("checkov".into(), checkov),
    ];
    tc.config.engine_concurrency = 3;
    tc.config.engine_scratch_dir = Some(tc.data_dir.path().join("scratch"));
}

async fn spawn(tc: TestConfig) -> TestApp {
    let mut app = TestApp::spawn_with(tc.config.clone()).await;
    app.test_config = Some(tc);
    app
}

pub(crate) fn tar_gz(files: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_path(path).unwrap();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, contents.as_bytes()).unwrap();
    }
    gzip(&builder.into_inner().unwrap())
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

async fn post_archive(app: &TestApp, auth: Auth<'_>, query: &str, body: Vec<u8>) -> Rest {
    let req = app
        .http
        .post(app.url(&format!("/api/v1/scans?{query}")))
        .header("content-type", "application/gzip")
        .body(body);
    send(auth, req).await
}

async fn post_json(app: &TestApp, auth: Auth<'_>, body: Value) -> Rest {
    send(auth, app.http.post(app.url("/api/v1/scans")).json(&body)).await
}

async fn send(auth: Auth<'_>, req: reqwest::RequestBuilder) -> Rest {
    let req = match auth {
        Auth::None => req,
        Auth::Bearer(token) => req.bearer_auth(token),
        Auth::ApiKey(key) => req.header("x-api-key", key),
    };
    let res = req.send().await.expect("request");
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let text = res.text().await.expect("body");
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    Rest {
        status,
        headers,
        body,
    }
}

/// The scans of a 202 answer, by engine: `(engine, scan id)`.
fn started(res: &Rest) -> Vec<(String, String)> {
    assert_eq!(res.status, 202, "{}", res.body);
    let group = res.body["data"]["group_id"].as_str().expect("group id");
    assert_eq!(
        res.headers["location"].to_str().unwrap(),
        format!("/api/v1/scans?group_id={group}")
    );
    res.body["data"]["scans"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            assert_eq!(s["source"], "engine", "{s}");
            // A worker may have taken it up already.
            assert!(
                ["queued", "running"].contains(&s["status"].as_str().unwrap()),
                "{s}"
            );
            assert_eq!(s["group_id"], group);
            (
                s["scanner_name"].as_str().unwrap().to_string(),
                s["id"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn wait_complete(app: &TestApp, auth: Auth<'_>, id: &str) -> Value {
    let scan = app.wait_scan(auth, id).await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");
    scan
}

/// `(rule_id, path)` of each finding a scan saw.
async fn findings(app: &TestApp, token: &str, id: &str) -> Vec<(String, String)> {
    let req = app
        .http
        .get(app.url(&format!("/api/v1/scans/{id}/findings?page_size=500")));
    let res = send(Auth::Bearer(token), req).await;
    assert_eq!(res.status, 200, "{}", res.body);
    res.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["rule_id"].as_str().unwrap().to_string(),
                f["location"]["path"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

fn has(findings: &[(String, String)], rule: &str, path: &str) -> bool {
    findings
        .iter()
        .any(|(r, p)| r.contains(rule) && p.trim_start_matches("./") == path)
}

/// Every phase of a scan's SSE stream, in order, until it ends.
async fn phases(app: &TestApp, token: &str, id: &str) -> Vec<String> {
    let mut res = app
        .http
        .get(app.url(&format!("/api/v1/scans/{id}/events")))
        .bearer_auth(token)
        .timeout(Duration::from_secs(120))
        .send()
        .await
        .unwrap();
    let mut text = String::new();
    while let Some(chunk) = res.chunk().await.unwrap() {
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let mut phases: Vec<String> = Vec::new();
    for line in text.lines() {
        if let Some(data) = line.strip_prefix("data:") {
            if let Ok(event) = serde_json::from_str::<Value>(data.trim()) {
                let phase = event["phase"].as_str().unwrap_or("").to_string();
                if phases.last() != Some(&phase) {
                    phases.push(phase);
                }
            }
        }
    }
    phases
}

#[tokio::test]
#[cfg_attr(
    not(all(rampart_has_engines, rampart_has_checkov)),
    ignore = "needs the engines: pip install -r tests/engines/requirements.txt into tests/engines/.venv and checkov-requirements.txt into tests/engines/.venv-checkov"
)]
async fn the_engines_are_listed_with_their_pinned_versions() {
    let mut tc = TestConfig::new().await;
    with_engines(&mut tc);
    let app = spawn(tc).await;
    let token = app.login_admin().await;
    let res = send(
        Auth::Bearer(&token),
        app.http.get(app.url("/api/v1/engines")),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    let pins = std::fs::read_to_string(engines_dir().join("requirements.txt")).unwrap()
        + &std::fs::read_to_string(engines_dir().join("checkov-requirements.txt")).unwrap();
    let engines = res.body["data"].as_array().unwrap();
    assert_eq!(engines.len(), 4, "{}", res.body);
    for engine in engines {
        assert_eq!(engine["status"], "available", "{engine}");
        let pin = format!(
            "{}=={}",
            engine["name"].as_str().unwrap(),
            engine["version"].as_str().unwrap()
        );
        assert!(pins.contains(&pin), "{pin} is not what tests/engines pins");
    }
    let (status, health) = app.get_json("/health/services").await;
    assert_eq!(status, 200);
    let listed: Vec<&str> = health["engines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["bandit", "semgrep", "checkov", "detect-secrets"]);
    let gql = app
        .gql(
            Auth::Bearer(&token),
            "{ engines { name status version format } }",
            json!({}),
        )
        .await;
    assert_eq!(gql.data("engines")[3]["format"], "detect_secrets");
}

#[tokio::test]
#[cfg_attr(
    not(rampart_has_engines),
    ignore = "needs the engines: pip install -r tests/engines/requirements.txt into tests/engines/.venv"
)]
async fn an_archive_is_scanned_by_three_engines_rescanned_and_fixed() {
    let mut tc = TestConfig::new().await;
    with_engines(&mut tc);
    let scratch = tc.config.engine_scratch();
    let app = spawn(tc).await;
    let owner = app.login_admin().await;
    // A member (write) may scan an archive.
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let (member, _) = app
        .login("dev@acme.test", crate::support::MEMBER_PASSWORD)
        .await;
    let auth = Auth::Bearer(&member);
    let vulnerable = tar_gz(&[("src/app.py", VULNERABLE_PY), ("src/creds.py", AWS_KEY_PY)]);
    let query = "target=shop&target_kind=repository&engines=bandit,semgrep,detect-secrets";

    let res = post_archive(&app, auth, query, vulnerable.clone()).await;
    let first = started(&res);
    let names: Vec<&str> = first.iter().map(|(e, _)| e.as_str()).collect();
    assert_eq!(names, ["bandit", "semgrep", "detect-secrets"]);
    let bandit_phases = phases(&app, &member, &first[0].1).await;
    for (engine, id) in &first {
        let scan = wait_complete(&app, auth, id).await;
        assert!(
            scan["findingsNew"].as_i64().unwrap() >= 1,
            "{engine}: {scan}"
        );
    }
    let order = [
        "queued",
        "preparing",
        "scanning",
        "ingesting",
        "finalizing",
        "complete",
    ];
    let positions: Vec<usize> = bandit_phases
        .iter()
        .map(|p| {
            order
                .iter()
                .position(|o| o == p)
                .unwrap_or_else(|| panic!("phase {p}"))
        })
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "{bandit_phases:?}"
    );
    for phase in ["scanning", "ingesting", "complete"] {
        assert!(
            bandit_phases.iter().any(|p| p == phase),
            "{bandit_phases:?}"
        );
    }

    let bandit = findings(&app, &member, &first[0].1).await;
    assert!(has(&bandit, "B602", "src/app.py"), "{bandit:?}");
    let semgrep = findings(&app, &member, &first[1].1).await;
    assert!(
        has(
            &semgrep,
            "rampart.python.subprocess-shell-true",
            "src/app.py"
        ),
        "{semgrep:?}"
    );
    let secrets = findings(&app, &member, &first[2].1).await;
    assert!(
        has(&secrets, "AWS Access Key", "src/creds.py"),
        "{secrets:?}"
    );
    // The engine's output is the scan's raw report.
    let raw = app
        .http
        .get(app.url(&format!("/api/v1/scans/{}/raw", first[0].1)))
        .bearer_auth(&member)
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 200);
    let raw: Value = raw.json().await.unwrap();
    assert!(raw["runs"][0]["results"]
        .as_array()
        .is_some_and(|r| !r.is_empty()));

    // The same code again: nothing new, nothing fixed.
    let again = started(&post_archive(&app, auth, query, vulnerable).await);
    for (engine, id) in &again {
        let scan = wait_complete(&app, auth, id).await;
        assert_eq!(scan["findingsNew"], 0, "{engine}: {scan}");
        assert_eq!(scan["findingsFixed"], 0, "{engine}: {scan}");
        assert!(
            scan["findingsUnchanged"].as_i64().unwrap() >= 1,
            "{engine}: {scan}"
        );
    }

    // Fixed: bandit's shell=True finding is fixed; the secret is still there.
    let fixed = tar_gz(&[("src/app.py", FIXED_PY), ("src/creds.py", AWS_KEY_PY)]);
    let third = started(
        &post_archive(
            &app,
            auth,
            "target=shop&target_kind=repository&engines=bandit,detect-secrets",
            fixed,
        )
        .await,
    );
    let scan = wait_complete(&app, auth, &third[0].1).await;
    assert!(scan["findingsFixed"].as_i64().unwrap() >= 1, "{scan}");
    assert!(!has(
        &findings(&app, &member, &third[0].1).await,
        "B602",
        "src/app.py"
    ));
    let secrets = wait_complete(&app, auth, &third[1].1).await;
    assert_eq!(secrets["findingsFixed"], 0, "{secrets}");

    // Scratch directories are gone; the group lists its scans.
    let left: Vec<_> = std::fs::read_dir(&scratch)
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "scratch left behind: {left:?}");
    let group = res.body["data"]["group_id"].as_str().unwrap();
    let listed = send(
        auth,
        app.http
            .get(app.url(&format!("/api/v1/scans?group_id={group}"))),
    )
    .await;
    assert_eq!(listed.body["meta"]["total"], 3, "{}", listed.body);
}

#[tokio::test]
#[cfg_attr(
    not(all(rampart_has_engines, rampart_has_checkov)),
    ignore = "needs the engines: pip install -r tests/engines/requirements.txt into tests/engines/.venv and checkov-requirements.txt into tests/engines/.venv-checkov"
)]
async fn checkov_scans_a_server_directory_and_admins_alone_may_name_one() {
    let mut tc = TestConfig::new().await;
    with_engines(&mut tc);
    let roots = tempfile::tempdir().unwrap();
    let infra = roots.path().join("infra");
    std::fs::create_dir(&infra).unwrap();
    std::fs::write(infra.join("main.tf"), OPEN_SG_TF).unwrap();
    tc.config.engine_source_roots = vec![roots.path().to_path_buf()];
    let app = spawn(tc).await;
    let owner = app.login_admin().await;
    let body = json!({"target": "infra", "engines": ["checkov"], "source": {"path": infra}});

    // A member, or a write key, may not read server directories; an engines key may.
    app.add_member(&owner, "dev@acme.test", "MEMBER").await;
    let (member, _) = app
        .login("dev@acme.test", crate::support::MEMBER_PASSWORD)
        .await;
    let res = post_json(&app, Auth::Bearer(&member), body.clone()).await;
    assert_envelope(&res.body, 403, "FORBIDDEN");
    let write_key = app.create_key(&owner, "WRITE").await;
    let res = post_json(&app, Auth::ApiKey(&write_key), body.clone()).await;
    assert_envelope(&res.body, 403, "FORBIDDEN");
    // Outside the roots: refused, whoever asks.
    let outside = json!({"target": "infra", "engines": ["checkov"], "source": {"path": "/etc"}});
    assert_envelope(
        &post_json(&app, Auth::Bearer(&owner), outside).await.body,
        400,
        "BAD_REQUEST",
    );

    let engines_key = app.create_key(&owner, "ENGINES").await;
    let scans = started(&post_json(&app, Auth::ApiKey(&engines_key), body).await);
    wait_complete(&app, Auth::Bearer(&owner), &scans[0].1).await;
    let found = findings(&app, &owner, &scans[0].1).await;
    assert!(
        has(&found, "CKV_AWS_24", "main.tf") || has(&found, "CKV_AWS_24", "/main.tf"),
        "{found:?}"
    );
    // The server directory was read, not written.
    let entries: Vec<_> = std::fs::read_dir(&infra)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(entries, ["main.tf"]);
}

fn git(dir: &Path, args: &[&str]) {
    let status = std::process::Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[tokio::test]
#[cfg_attr(
    not(rampart_has_engines),
    ignore = "needs the engines: pip install -r tests/engines/requirements.txt into tests/engines/.venv"
)]
async fn a_local_git_repository_is_cloned_shallowly_and_scanned() {
    let mut tc = TestConfig::new().await;
    with_engines(&mut tc);
    let roots = tempfile::tempdir().unwrap();
    let repo = roots.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    git(&repo, &["init", "-q"]);
    std::fs::write(repo.join("app.py"), VULNERABLE_PY).unwrap();
    git(&repo, &["add", "."]);
    git(&repo, &["commit", "-qm", "vulnerable"]);
    tc.config.engine_source_roots = vec![roots.path().to_path_buf()];
    let app = spawn(tc).await;
    let owner = app.login_admin().await;
    let res = app
        .gql(
            Auth::Bearer(&owner),
            "mutation($url: String!) { startScan(target: \"repo\", engines: [\"bandit\"], source: {git: {url: $url, reference: \"main\"}}) { groupId scans { id source scannerName status } } }",
            json!({"url": repo}),
        )
        .await;
    let scan = &res.data("startScan")["scans"][0];
    assert_eq!(scan["source"], "engine");
    let id = scan["id"].as_str().unwrap();
    wait_complete(&app, Auth::Bearer(&owner), id).await;
    assert!(has(&findings(&app, &owner, id).await, "B602", "app.py"));
}

/// An "engine" that runs until it is stopped, leaving its pid (and a child's) behind.
fn endless_engine(dir: &Path) -> PathBuf {
    let script = dir.join("bandit");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'bandit 0.0.1'; exit 0; fi\n\
             echo 'scanning...' >&2\nsleep 300 &\necho $$ $! > {}/pids\nwait\n",
            dir.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| !s.contains(") Z "))
}

#[tokio::test]
async fn cancelling_a_running_engine_kills_it_and_stores_nothing() {
    let mut tc = TestConfig::new().await;
    let bin = tempfile::tempdir().unwrap();
    tc.config.engine_paths = vec![("bandit".into(), endless_engine(bin.path()))];
    tc.config.engine_scratch_dir = Some(tc.data_dir.path().join("scratch"));
    let scratch = tc.config.engine_scratch();
    let app = spawn(tc).await;
    let owner = app.login_admin().await;
    let auth = Auth::Bearer(&owner);
    let scans = started(
        &post_archive(
            &app,
            auth,
            "target=slow&engines=bandit",
            tar_gz(&[("a.py", "x = 1\n")]),
        )
        .await,
    );
    let id = &scans[0].1;
    let pids = bin.path().join("pids");
    let waited = Instant::now();
    while !pids.exists()
        || std::fs::read_to_string(&pids)
            .unwrap()
            .trim()
            .split(' ')
            .count()
            < 2
    {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the engine never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pids: Vec<i32> = std::fs::read_to_string(&pids)
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    let running = app.wait_scan_status(auth, id, "RUNNING").await;
    assert_eq!(running["status"], "RUNNING");

    let cancelled_at = Instant::now();
    let res = send(
        auth,
        app.http
            .post(app.url(&format!("/api/v1/scans/{id}/cancel"))),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    while pids.iter().any(|p| alive(*p)) {
        assert!(
            cancelled_at.elapsed() < Duration::from_secs(2),
            "the engine outlived its cancel by 2 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let scan = app.wait_scan(auth, id).await;
    assert_eq!(scan["status"], "CANCELLED");
    // Nothing stored: no raw report, no findings; the scratch directory is gone.
    let rest = send(auth, app.http.get(app.url(&format!("/api/v1/scans/{id}")))).await;
    assert!(rest.body["data"]["raw_size"].is_null(), "{}", rest.body);
    let waited = Instant::now();
    loop {
        let left: Vec<_> = std::fs::read_dir(&scratch)
            .map(|d| d.flatten().collect())
            .unwrap_or_default();
        if left.is_empty() {
            break;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(5),
            "scratch left behind: {left:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_failing_engine_fails_its_scan_with_its_last_words() {
    let mut tc = TestConfig::new().await;
    let bin = tempfile::tempdir().unwrap();
    let script = bin.path().join("semgrep");
    std::fs::write(&script, "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 1.0.0; exit 0; fi\necho 'rules could not be parsed' >&2\nexit 7\n").unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    tc.config.engine_paths = vec![("semgrep".into(), script)];
    let app = spawn(tc).await;
    let owner = app.login_admin().await;
    let auth = Auth::Bearer(&owner);
    let scans = started(
        &post_archive(
            &app,
            auth,
            "target=t&engines=semgrep",
            tar_gz(&[("a.py", "x = 1\n")]),
        )
        .await,
    );
    let scan = app.wait_scan(auth, &scans[0].1).await;
    assert_eq!(scan["status"], "FAILED", "{scan}");
    let error = scan["error"].as_str().unwrap();
    assert!(
        error.contains("exited with status 7") && error.contains("rules could not be parsed"),
        "{error}"
    );
}

#[tokio::test]
async fn unsafe_archives_and_callers_without_rights_are_refused() {
    let mut tc = TestConfig::new().await;
    tc.config.engine_max_expanded_bytes = 1 << 20;
    let app = spawn(tc).await;
    let owner = app.login_admin().await;
    let auth = Auth::Bearer(&owner);
    let query = "target=t&engines=bandit";

    // ../ in a name (written raw: the tar crate's own setter refuses it).
    let mut header = tar::Header::new_gnu();
    let name = b"../../etc/cron.d/evil";
    header.as_gnu_mut().unwrap().name[..name.len()].copy_from_slice(name);
    header.set_size(1);
    header.set_mode(0o644);
    header.set_cksum();
    let mut builder = tar::Builder::new(Vec::new());
    builder.append(&header, &b"x"[..]).unwrap();
    let traversal = gzip(&builder.into_inner().unwrap());
    let res = post_archive(&app, auth, query, traversal).await;
    assert_envelope(&res.body, 400, "BAD_REQUEST");
    assert!(
        res.body["error"].as_str().unwrap().contains("unsafe path"),
        "{}",
        res.body
    );

    let mut builder = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder
        .append_link(&mut link, "src/keys", "../../../root/.ssh")
        .unwrap();
    let symlink = gzip(&builder.into_inner().unwrap());
    let res = post_archive(&app, auth, query, symlink).await;
    assert_envelope(&res.body, 400, "BAD_REQUEST");
    assert!(
        res.body["error"].as_str().unwrap().contains("outside"),
        "{}",
        res.body
    );

    let zeros = "\0".repeat(4 << 20);
    let bomb = tar_gz(&[("zeros.bin", zeros.as_str())]);
    assert!(bomb.len() < 50_000);
    let res = post_archive(&app, auth, query, bomb).await;
    assert_envelope(&res.body, 400, "BAD_REQUEST");
    assert!(
        res.body["error"]
            .as_str()
            .unwrap()
            .contains("expands to more than"),
        "{}",
        res.body
    );

    let res = post_archive(&app, auth, query, b"just some text".to_vec()).await;
    assert_envelope(&res.body, 400, "BAD_REQUEST");
    // Nothing was queued.
    let listed = send(auth, app.http.get(app.url("/api/v1/scans"))).await;
    assert_eq!(listed.body["meta"]["total"], 0, "{}", listed.body);

    // A read key may not start scans; an unknown engine is a validation error.
    let read_key = app.create_key(&owner, "READ").await;
    let res = post_archive(
        &app,
        Auth::ApiKey(&read_key),
        query,
        tar_gz(&[("a.py", "x\n")]),
    )
    .await;
    assert_envelope(&res.body, 403, "FORBIDDEN");
    let res = post_archive(
        &app,
        auth,
        "target=t&engines=nmap",
        tar_gz(&[("a.py", "x\n")]),
    )
    .await;
    assert_envelope(&res.body, 422, "VALIDATION_FAILED");
    // Git URLs of other schemes are refused before anything runs.
    let res = post_json(
        &app,
        auth,
        json!({"target": "t", "engines": ["bandit"], "source": {"git": {"url": "ext::sh -c id"}}}),
    )
    .await;
    assert_envelope(&res.body, 400, "BAD_REQUEST");
}

/// An engine that answers at once with an empty SARIF report.
fn instant_engine(dir: &Path) -> PathBuf {
    let script = dir.join("bandit");
    std::fs::write(
        &script,
        "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 'bandit 0.0.2'; exit 0; fi\n\
         echo '{\"version\":\"2.1.0\",\"runs\":[{\"tool\":{\"driver\":{\"name\":\"Bandit\"}},\"results\":[]}]}'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    script
}

#[tokio::test]
async fn a_schedule_fires_once_across_two_servers_even_after_missed_runs() {
    let mut tc = TestConfig::new().await;
    let bin = tempfile::tempdir().unwrap();
    tc.config.engine_paths = vec![("bandit".into(), instant_engine(bin.path()))];
    let roots = tempfile::tempdir().unwrap();
    std::fs::write(roots.path().join("app.py"), "x = 1\n").unwrap();
    tc.config.engine_source_roots = vec![roots.path().to_path_buf()];
    let first = TestApp::spawn_with(tc.config.clone()).await;
    let second = TestApp::spawn_with(tc.config.clone()).await;
    let owner = first.login_admin().await;
    let auth = Auth::Bearer(&owner);
    let sarif =
        br#"{"version":"2.1.0","runs":[{"tool":{"driver":{"name":"Bandit"}},"results":[]}]}"#;
    let target = first
        .ingest_and_wait(
            auth,
            "target=nightly&target_kind=repository",
            sarif.to_vec(),
        )
        .await["targetId"]
        .as_str()
        .unwrap()
        .to_string();

    // A member may not schedule scans of a server directory; an admin may.
    let body = json!({"target_id": target, "engines": ["bandit"], "source": {"path": roots.path()}, "cron": "0 3 1 1 *", "time_zone": "Europe/Paris"});
    app_member_is_refused(&first, &owner, body.clone()).await;
    let res = send(
        auth,
        first
            .http
            .post(first.url("/api/v1/scan-schedules"))
            .json(&body),
    )
    .await;
    assert_eq!(res.status, 201, "{}", res.body);
    let schedule = res.body["data"].clone();
    let id = schedule["id"].as_str().unwrap().to_string();
    assert_eq!(schedule["enabled"], true);
    let next: chrono::DateTime<chrono::Utc> =
        schedule["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(next > chrono::Utc::now());
    let bad = json!({"target_id": target, "engines": ["bandit"], "source": {"path": roots.path()}, "cron": "every night"});
    assert_envelope(
        &send(
            auth,
            first
                .http
                .post(first.url("/api/v1/scan-schedules"))
                .json(&bad),
        )
        .await
        .body,
        422,
        "VALIDATION_FAILED",
    );

    // Both servers were down for three firings: it is overdue by hours.
    use sea_orm::{ConnectionTrait, Statement};
    let db = &first.state.db;
    let overdue = chrono::Utc::now() - chrono::Duration::hours(3);
    let sql = match db.get_database_backend() {
        sea_orm::DbBackend::Postgres => {
            r#"UPDATE "scan_schedule" SET "next_run_at" = $1 WHERE "id" = $2"#
        }
        _ => r#"UPDATE "scan_schedule" SET "next_run_at" = ? WHERE "id" = ?"#,
    };
    db.execute_raw(Statement::from_sql_and_values(
        db.get_database_backend(),
        sql,
        [overdue.into(), uuid::Uuid::parse_str(&id).unwrap().into()],
    ))
    .await
    .unwrap();
    // Both pollers, and both servers asked directly at the same moment: one firing.
    let (a, b) = tokio::join!(
        rampart::engines::schedules::fire_due(&first.state),
        rampart::engines::schedules::fire_due(&second.state)
    );
    let fired = a.unwrap() + b.unwrap();
    assert!(fired <= 1, "fired {fired} times");
    let waited = Instant::now();
    let schedule = loop {
        let listed = send(auth, first.http.get(first.url("/api/v1/scan-schedules"))).await;
        let schedule = listed.body["data"][0].clone();
        if !schedule["last_group_id"].is_null() {
            break schedule;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(30),
            "never fired: {schedule}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    // Claimed: neither server fires it again.
    let (a, b) = tokio::join!(
        rampart::engines::schedules::fire_due(&first.state),
        rampart::engines::schedules::fire_due(&second.state)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 0);
    let scans = send(
        auth,
        first.http.get(first.url("/api/v1/scans?page_size=100")),
    )
    .await;
    let scheduled: Vec<&Value> = scans.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["source"] == "engine")
        .collect();
    assert_eq!(scheduled.len(), 1, "{}", scans.body);
    assert_eq!(scheduled[0]["group_id"], schedule["last_group_id"]);
    let next: chrono::DateTime<chrono::Utc> =
        schedule["next_run_at"].as_str().unwrap().parse().unwrap();
    assert!(
        next > chrono::Utc::now(),
        "the next run is the next occurrence after now: {schedule}"
    );
    let done = first
        .wait_scan(auth, scheduled[0]["id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "COMPLETE", "{done}");

    // Disabled: it has no next run and never fires.
    let res = send(
        auth,
        first
            .http
            .patch(first.url(&format!("/api/v1/scan-schedules/{id}")))
            .json(&json!({"enabled": false})),
    )
    .await;
    assert_eq!(res.status, 200, "{}", res.body);
    assert!(res.body["data"]["next_run_at"].is_null());
    let res = send(
        auth,
        first
            .http
            .delete(first.url(&format!("/api/v1/scan-schedules/{id}"))),
    )
    .await;
    assert_eq!(res.status, 204);
    second.stop().await;
    first.stop().await;
}

async fn app_member_is_refused(app: &TestApp, owner: &str, body: Value) {
    app.add_member(owner, "dev@acme.test", "MEMBER").await;
    let (member, _) = app
        .login("dev@acme.test", crate::support::MEMBER_PASSWORD)
        .await;
    let res = send(
        Auth::Bearer(&member),
        app.http.post(app.url("/api/v1/scan-schedules")).json(&body),
    )
    .await;
    assert_envelope(&res.body, 403, "FORBIDDEN");
}

#[tokio::test]
async fn start_scan_takes_an_archive_in_a_graphql_multipart_request() {
    let mut tc = TestConfig::new().await;
    let bin = tempfile::tempdir().unwrap();
    tc.config.engine_paths = vec![("bandit".into(), instant_engine(bin.path()))];
    let app = spawn(tc).await;
    let owner = app.login_admin().await;
    let form = |archive: Vec<u8>| {
        let operations = json!({
            "query": "mutation($a: Upload!) { startScan(target: \"uploaded\", engines: [\"bandit\"], archive: $a) { groupId scans { id source scannerName } } }",
            "variables": {"a": null}
        });
        reqwest::multipart::Form::new()
            .text("operations", operations.to_string())
            .text("map", r#"{"0":["variables.a"]}"#)
            .part(
                "0",
                reqwest::multipart::Part::bytes(archive).file_name("code.tar.gz"),
            )
    };
    let res = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&owner)
        .multipart(form(tar_gz(&[("a.py", "x = 1\n")])))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    let scan = &body["data"]["startScan"]["scans"][0];
    assert_eq!(scan["source"], "engine", "{body}");
    let done = app
        .wait_scan(Auth::Bearer(&owner), scan["id"].as_str().unwrap())
        .await;
    assert_eq!(done["status"], "COMPLETE", "{done}");

    // The same checks as over REST: an unsafe archive is refused.
    let mut builder = tar::Builder::new(Vec::new());
    let mut link = tar::Header::new_gnu();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    builder.append_link(&mut link, "etc", "/etc").unwrap();
    let res = app
        .http
        .post(app.url("/graphql"))
        .bearer_auth(&owner)
        .multipart(form(gzip(&builder.into_inner().unwrap())))
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["errors"][0]["extensions"]["code"], "BAD_REQUEST",
        "{body}"
    );
}
