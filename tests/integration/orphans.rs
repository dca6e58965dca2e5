//! Nothing is left behind in the object store: a failed upload removes its report at once, an
//! abandoned one leaves no temporary file, health checks leave no probe objects, and the sweep
//! removes what no scan refers to once it is old enough, on whichever store the run uses.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures::StreamExt;
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use rampart::store::{ByteStream, LocalStore, ObjectInfo, ObjectStore};
use sea_orm::{ConnectionTrait, DbBackend};

use crate::support::{builders, Auth, TestApp, TestConfig};

async fn listed(store: &dyn ObjectStore, prefix: &str) -> Vec<ObjectInfo> {
    let mut listing = store.list(prefix).await.expect("list");
    let mut out = Vec::new();
    while let Some(info) = listing.next().await {
        out.push(info.expect("listing"));
    }
    out.sort_by(|a, b| a.key.cmp(&b.key));
    out
}

fn keys(infos: &[ObjectInfo]) -> Vec<String> {
    infos.iter().map(|i| i.key.clone()).collect()
}

fn body(bytes: &'static [u8]) -> ByteStream {
    Box::pin(futures::stream::once(async move {
        Ok(Bytes::from_static(bytes))
    }))
}

async fn app_without_workers() -> TestApp {
    let test_config = TestConfig::new().await;
    let mut config = test_config.config.clone();
    config.workers = 0;
    let mut app = TestApp::spawn_with(config).await;
    app.test_config = Some(test_config);
    app
}

/// Makes every insert of a scan row fail, as a database failing after the report was stored.
async fn refuse_scan_rows(db: &sea_orm::DatabaseConnection) {
    let statements: &[&str] = match db.get_database_backend() {
        DbBackend::Postgres => &[
            "CREATE FUNCTION refuse_scans() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$",
            "CREATE TRIGGER refuse_scans BEFORE INSERT ON scan FOR EACH ROW EXECUTE FUNCTION refuse_scans()",
        ],
        _ => &["CREATE TRIGGER refuse_scans BEFORE INSERT ON scan BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"],
    };
    for sql in statements {
        db.execute_unprepared(sql).await.expect("install trigger");
    }
}

#[tokio::test]
async fn an_upload_whose_database_step_fails_leaves_no_object_behind() {
    let app = app_without_workers().await;
    let token = app.login_admin().await;
    refuse_scan_rows(&app.state.db).await;

    let report = sarif("semgrep", (0..5).map(SyntheticResult::numbered));
    let res = app
        .ingest(Auth::Bearer(&token), "target=svc&format=sarif", report)
        .await;
    assert!(res.status >= 500, "{}: {}", res.status, res.body);

    let left = listed(app.state.store.as_ref(), "reports/").await;
    assert!(left.is_empty(), "objects left behind: {:?}", keys(&left));
}

/// An upload abandoned half-way (its request dropped) leaves no temporary file.
#[tokio::test]
async fn an_abandoned_local_upload_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(LocalStore::open(dir.path()).await.unwrap());
    let (started, first_chunk_taken) = tokio::sync::oneshot::channel::<()>();
    let mut started = Some(started);
    let body: ByteStream = Box::pin(
        futures::stream::once(async { Ok(Bytes::from_static(b"the first part")) }).chain(
            futures::stream::poll_fn(move |_| {
                if let Some(started) = started.take() {
                    let _ = started.send(());
                }
                std::task::Poll::Pending
            }),
        ),
    );
    let upload = {
        let store = store.clone();
        tokio::spawn(async move { store.put("reports/abandoned", body).await })
    };
    first_chunk_taken.await.expect("the upload began");
    upload.abort();
    assert!(upload.await.unwrap_err().is_cancelled());

    let tmp: Vec<_> = std::fs::read_dir(dir.path().join("tmp")).unwrap().collect();
    assert!(tmp.is_empty(), "temporary files left: {tmp:?}");
    assert!(listed(store.as_ref(), "").await.is_empty());
}

/// Health checks cut short at any point leave at most the one probe object, never one each.
#[tokio::test]
async fn checks_cut_short_leave_at_most_one_probe_object() {
    let app = app_without_workers().await;
    let store = app.state.store.clone();
    for i in 0..60u64 {
        let _ = tokio::time::timeout(Duration::from_micros(i * 37), store.check()).await;
    }
    let probes = listed(store.as_ref(), ".probe/").await;
    assert!(probes.len() <= 1, "probe objects left: {:?}", keys(&probes));
    store.check().await.expect("a whole check");
    assert!(listed(store.as_ref(), ".probe/").await.is_empty());
}

/// The sweep removes an unreferenced object older than its cut-off, and keeps a referenced one
/// and a fresh one; what it removed is in the org's audit log.
#[tokio::test]
async fn the_sweep_removes_only_old_objects_no_scan_refers_to() {
    let app = app_without_workers().await;
    let token = app.login_admin().await;
    let store = app.state.store.clone();
    let org = builders::org_id(&app.state.db, "default").await;

    let report = sarif("semgrep", (0..3).map(SyntheticResult::numbered));
    let res = app
        .ingest(Auth::Bearer(&token), "target=svc&format=sarif", report)
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    let scan_id = uuid::Uuid::parse_str(res.body["data"]["id"].as_str().unwrap()).unwrap();
    let referenced = format!("reports/{org}/{}", scan_id.simple());
    let orphan = format!("reports/{org}/{}", uuid::Uuid::now_v7().simple());
    store.put(&orphan, body(b"nobody's")).await.unwrap();
    let local_tmp = (store.kind() == "local").then(|| {
        // What an upload interrupted by a crash leaves on local disk.
        let path = app
            .test_config
            .as_ref()
            .unwrap()
            .data_dir
            .path()
            .join("reports/tmp/interrupted");
        std::fs::write(&path, b"half a report").unwrap();
        path
    });

    // The fresh object is written in a later second than the old ones (S3 keeps seconds, and
    // file times lag the clock by a tick), and the cut-off is its own time.
    let old = listed(store.as_ref(), "reports/").await;
    assert_eq!(keys(&old).len(), 2);
    let newest = old.iter().map(|i| i.modified.timestamp()).max().unwrap();
    let later = DateTime::from_timestamp(newest + 1, 100_000_000).unwrap();
    while Utc::now() < later {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fresh = format!("reports/{org}/{}", uuid::Uuid::now_v7().simple());
    store.put(&fresh, body(b"on its way")).await.unwrap();
    let cutoff = listed(store.as_ref(), &fresh).await[0].modified;
    assert!(cutoff.timestamp() > newest, "{cutoff} not after {newest}");

    let outcome = rampart::ingest::sweep::sweep(&app.state, cutoff)
        .await
        .expect("sweep");
    assert_eq!(outcome.removed, 1, "{outcome:?}");
    assert_eq!(outcome.removed_bytes, b"nobody's".len() as u64);
    let mut expected = vec![referenced, fresh];
    expected.sort();
    assert_eq!(keys(&listed(store.as_ref(), "reports/").await), expected);
    if let Some(path) = local_tmp {
        assert_eq!(outcome.incomplete, 1);
        assert!(
            !path.exists(),
            "the interrupted upload's file is still there"
        );
    }

    let audit = app
        .gql(
            Auth::Bearer(&token),
            "{ auditEvents(pageSize: 100) { edges { node { action actor details } } } }",
            serde_json::json!({}),
        )
        .await;
    let sweeps: Vec<_> = audit.data("auditEvents")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| &e["node"])
        .filter(|n| n["action"] == "store.sweep")
        .collect();
    assert_eq!(sweeps.len(), 1, "{sweeps:?}");
    assert_eq!(sweeps[0]["details"]["removed"], 1);
    assert_eq!(sweeps[0]["details"]["keys"][0], orphan.as_str());
}

/// Sweeps are jobs with one id per period: however many processes queue the period's sweep,
/// it exists once, and a worker runs it.
#[tokio::test]
async fn each_period_has_one_sweep_job_and_a_worker_runs_it() {
    use entity::job;
    use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};

    let test_config = TestConfig::new().await;
    let config = test_config.config.clone();
    // Two processes of one deployment: both queue the current period's sweep.
    let mut a = TestApp::spawn_with(config.clone()).await;
    let b = TestApp::spawn_with(config).await;
    let slot = Utc::now().timestamp() as u64 / a.state.config.store_sweep_interval_secs;
    let id = rampart::ingest::sweep::job_id(slot);
    let mut done = None;
    for _ in 0..300 {
        if let Some(row) = job::Entity::find_by_id(id).one(&a.state.db).await.unwrap() {
            if row.status == "done" {
                done = Some(row);
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let done = done.expect("the period's sweep ran");
    assert_eq!(done.attempts, 1, "one claim ran it");
    let sweeps = job::Entity::find()
        .filter(job::Column::Kind.eq("sweep"))
        .count(&a.state.db)
        .await
        .unwrap();
    // A period may have turned meanwhile; never two jobs for one period.
    assert!(sweeps <= 2, "{sweeps} sweep jobs");
    drop(b);
    a.test_config = Some(test_config);
}
