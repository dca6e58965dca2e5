//! Start-up: replicas that start at the same moment on one database, and what a process says
//! it serves.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use entity::membership;
use entity::prelude::*;
use rampart::App;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

use crate::support::{TestConfig, ADMIN_EMAIL};

/// Four `App::build`s at once on an empty database (a fresh PostgreSQL database, or one SQLite
/// file shared by all four): each migrates and bootstraps under the set-up lock, so all come
/// up, and the first-run set-up happened exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_replicas_start_together_on_an_empty_database() {
    let tc = TestConfig::new().await;
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let config = tc.config.clone();
            tokio::spawn(async move { App::build(config).await })
        })
        .collect();
    let mut apps = Vec::new();
    for (n, replica) in replicas.into_iter().enumerate() {
        match replica.await.expect("replica task") {
            Ok(app) => apps.push(app),
            Err(err) => panic!("replica {n} did not start: {err:#}"),
        }
    }
    assert_eq!(apps.len(), 4);
    assert_set_up_once(&tc).await;
    drop(apps);
}

/// The other half: on a database already migrated but without users, four replicas reach the
/// first-run set-up at the same moment (their backends are open, so nothing staggers them), and
/// exactly one creates the first org and administrator; the others find them and start.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn four_replicas_set_up_a_migrated_empty_database_once() {
    let tc = TestConfig::new().await;
    let mut backends = Vec::new();
    for _ in 0..4 {
        backends.push(
            rampart::app::open_backends(&tc.config)
                .await
                .expect("backends open"),
        );
    }
    let replicas: Vec<_> = backends
        .into_iter()
        .map(|backends| {
            let config = tc.config.clone();
            tokio::spawn(async move { App::build_with(config, backends).await })
        })
        .collect();
    let mut apps = Vec::new();
    for (n, replica) in replicas.into_iter().enumerate() {
        match replica.await.expect("replica task") {
            Ok(app) => apps.push(app),
            Err(err) => panic!("replica {n} did not start: {err:#}"),
        }
    }
    assert_eq!(apps.len(), 4);
    assert_set_up_once(&tc).await;
    drop(apps);
}

/// Exactly one org `default`, one user (the configured administrator) and its membership.
async fn assert_set_up_once(tc: &TestConfig) {
    let db = rampart::db::connect(&tc.config.effective_database_url())
        .await
        .expect("database reachable");
    let orgs = Organization::find().all(&db).await.unwrap();
    assert_eq!(orgs.len(), 1, "{orgs:?}");
    assert_eq!(orgs[0].slug, "default");
    let users = User::find().all(&db).await.unwrap();
    assert_eq!(users.len(), 1, "{users:?}");
    assert_eq!(users[0].email, ADMIN_EMAIL);
    let owners = Membership::find()
        .filter(membership::Column::UserId.eq(users[0].id))
        .filter(membership::Column::OrgId.eq(orgs[0].id))
        .count(&db)
        .await
        .unwrap();
    assert_eq!(owners, 1);
}

/// A worker-only process serves its probes and nothing else, so its banner names only those.
#[test]
fn worker_only_banner_names_only_what_it_serves() {
    let dir = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rampart"));
    for var in [
        "DATABASE_URL",
        "REDIS_URL",
        "RAMPART_S3_BUCKET",
        "RAMPART_S3_ENDPOINT",
        "RAMPART_JWT_SECRET",
        "RAMPART_BIND",
        "RAMPART_ROLE",
    ] {
        cmd.env_remove(var);
    }
    let mut child = cmd
        .env("RAMPART_DATA_DIR", dir.path())
        .env("RUST_LOG", "warn")
        .args(["serve", "--role", "worker", "--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Everything up to the banner's last line (the health URL); a generated admin password
    // may come first.
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut printed = String::new();
    loop {
        let mut line = String::new();
        let read = stdout.read_line(&mut line).unwrap();
        printed.push_str(&line);
        if read == 0 || line.contains("/health") {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();

    assert!(
        printed.contains("listening on http://127.0.0.1:"),
        "{printed}"
    );
    assert!(printed.contains("/health/services"), "{printed}");
    assert!(printed.contains("worker"), "{printed}");
    for absent in ["GraphQL", "GraphiQL", "Swagger", "/docs", "/openapi.json"] {
        assert!(!printed.contains(absent), "{absent} in\n{printed}");
    }
}
