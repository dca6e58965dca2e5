//! The job queue under contention: a worker that lost its lease cannot undo the work of the
//! worker that holds the job now, and a scan's events are ordered by its sequence number.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use rampart::context::{Actor, Ctx, RequestMeta, Scope};
use rampart::ingest::jobs::{self, Lease, LeaseError};
use rampart::ingest::pipeline::{self, Failure};
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use rampart::live::ScanProgress;
use rampart::scans::ScanStatus;
use rampart::store::{ByteStream, ObjectList, ObjectStore, StoreError, StoredObject};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::support::{Auth, TestApp, TestConfig};

/// An object store whose reads wait until the test lets them through: a worker reading its
/// report through it is paused, as if its process were stopped.
struct PausedReads {
    inner: Arc<dyn ObjectStore>,
    /// Signalled when a read is waiting.
    waiting: Arc<Notify>,
    open: Arc<Semaphore>,
}

#[async_trait]
impl ObjectStore for PausedReads {
    async fn put(&self, key: &str, body: ByteStream) -> Result<u64, StoreError> {
        self.inner.put(key, body).await
    }

    async fn get(&self, key: &str) -> Result<Option<StoredObject>, StoreError> {
        self.waiting.notify_one();
        let _pass = self.open.acquire().await.expect("semaphore open");
        self.inner.get(key).await
    }

    async fn delete(&self, key: &str) -> Result<(), StoreError> {
        self.inner.delete(key).await
    }

    async fn list(&self, prefix: &str) -> Result<ObjectList, StoreError> {
        self.inner.list(prefix).await
    }

    async fn remove_incomplete(
        &self,
        before: chrono::DateTime<chrono::Utc>,
    ) -> Result<u64, StoreError> {
        self.inner.remove_incomplete(before).await
    }

    async fn check(&self) -> Result<(), StoreError> {
        self.inner.check().await
    }

    fn kind(&self) -> &'static str {
        self.inner.kind()
    }
}

/// What a scan left in the database: its row and how many sightings and findings it has.
async fn stored(app: &TestApp, scan_id: Uuid) -> (entity::scan::Model, u64, u64) {
    let scan = entity::scan::Entity::find_by_id(scan_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    let sightings = entity::scan_finding::Entity::find()
        .filter(entity::scan_finding::Column::ScanId.eq(scan_id))
        .count(&app.state.db)
        .await
        .unwrap();
    let findings = entity::finding::Entity::find()
        .filter(entity::finding::Column::TargetId.eq(scan.target_id))
        .count(&app.state.db)
        .await
        .unwrap();
    (scan, sightings, findings)
}

/// An app with no workers of its own: the test plays the workers.
async fn app_without_workers() -> TestApp {
    let mut test_config = TestConfig::new().await;
    test_config.config.workers = 0;
    let mut app = TestApp::spawn_with(test_config.config.clone()).await;
    app.test_config = Some(test_config);
    app
}

async fn queue_scan(app: &TestApp, results: u64) -> Uuid {
    let token = app.login_admin().await;
    let report = sarif("semgrep", (0..results).map(SyntheticResult::numbered));
    let res = app
        .ingest(Auth::Bearer(&token), "target=fenced", report)
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    Uuid::parse_str(res.body["data"]["id"].as_str().unwrap()).unwrap()
}

#[tokio::test]
async fn a_worker_that_lost_its_lease_cannot_undo_the_scan_another_worker_completed() {
    let app = app_without_workers().await;
    let scan_id = queue_scan(&app, 40).await;

    // Worker A claims the job with a short lease, then stalls on reading the report.
    let short = chrono::Duration::milliseconds(300);
    let job_a = jobs::claim(&app.state.db, "worker-a", short)
        .await
        .unwrap()
        .expect("the queued job");
    let lease_a = Lease::of(&job_a);
    let waiting = Arc::new(Notify::new());
    let open = Arc::new(Semaphore::new(0));
    let mut state_a = app.state.clone();
    state_a.store = Arc::new(PausedReads {
        inner: app.state.store.clone(),
        waiting: waiting.clone(),
        open: open.clone(),
    });
    let worker_a = {
        let lease_a = lease_a.clone();
        tokio::spawn(async move { pipeline::process(&state_a, scan_id, &lease_a).await })
    };
    waiting.notified().await;
    let (running, _, _) = stored(&app, scan_id).await;
    assert_eq!(running.status, "running", "A started the scan");

    // A's lease runs out while it is paused; worker B takes the job over and completes it.
    let long = chrono::Duration::seconds(60);
    let job_b = loop {
        if let Some(job) = jobs::claim(&app.state.db, "worker-b", long).await.unwrap() {
            break job;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(job_b.id, job_a.id);
    assert_eq!(job_b.attempts, job_a.attempts + 1);
    rampart::ingest::worker::run_one(&app.state, job_b, "worker-b", long).await;
    let (done, sightings, findings) = stored(&app, scan_id).await;
    assert_eq!(done.status, "complete", "{:?}", done.error);
    assert_eq!((done.findings_total, done.findings_new), (40, 40));
    assert_eq!((sightings, findings), (40, 40));

    // A resumes: its first write is refused and it stops, leaving B's result as it was.
    open.add_permits(16);
    let outcome = worker_a.await.unwrap();
    assert!(
        matches!(outcome, Err(Failure::LeaseLost)),
        "A must stop on its lost lease, got {outcome:?}"
    );
    assert!(lease_a.is_lost());
    assert_eq!(stored(&app, scan_id).await, (done.clone(), 40, 40));

    // Nor can A record an outcome on the job B finished.
    assert!(matches!(
        jobs::complete(&app.state.db, &lease_a).await,
        Err(LeaseError::Lost)
    ));
    assert!(matches!(
        jobs::fail(&app.state.db, &job_a, &lease_a, "stale", chrono::Utc::now()).await,
        Err(LeaseError::Lost)
    ));
    let job = entity::job::Entity::find_by_id(job_a.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((job.status.as_str(), job.last_error), ("done", None));
    assert_eq!(stored(&app, scan_id).await, (done, 40, 40));
}

#[tokio::test]
async fn a_scan_processed_under_a_lease_completes_and_ends_its_job() {
    let app = app_without_workers().await;
    let scan_id = queue_scan(&app, 5).await;
    let job = jobs::claim(&app.state.db, "w", chrono::Duration::seconds(60))
        .await
        .unwrap()
        .unwrap();
    rampart::ingest::worker::run_one(&app.state, job.clone(), "w", chrono::Duration::seconds(60))
        .await;
    let (scan, sightings, _) = stored(&app, scan_id).await;
    assert_eq!((scan.status.as_str(), sightings), ("complete", 5));
    // queued (0), running, finalizing, complete: each write of the progress counted.
    assert!(scan.progress_seq >= 3, "seq {}", scan.progress_seq);
    let job = entity::job::Entity::find_by_id(job.id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(job.status, "done");
}

#[tokio::test]
async fn progress_is_ordered_by_the_scans_sequence_not_by_the_senders_clock() {
    let app = app_without_workers().await;
    let scan_id = queue_scan(&app, 3).await;
    let (scan, _, _) = stored(&app, scan_id).await;
    let ctx = Ctx {
        actor: Actor::ApiKey {
            key_id: Uuid::nil(),
            label: "test".into(),
            scope: Scope::Read,
        },
        org_id: scan.org_id,
        meta: RequestMeta::internal("test"),
    };
    let mut follower = rampart::live::follow_scan_stream(&app.state, &ctx, scan_id)
        .await
        .unwrap();
    let first = follower.next().await.unwrap();
    assert_eq!((first.status, first.seq), (ScanStatus::Queued, 0));

    let event = |seq: u64, percent: f64, clock_skew_secs: i64| {
        let mut p = ScanProgress::new(scan_id, scan.target_id, ScanStatus::Running, "parsing");
        p.seq = seq;
        p.percent = percent;
        p.at = chrono::Utc::now() + chrono::Duration::seconds(clock_skew_secs);
        p
    };
    let bus = app.state.bus.as_ref();
    // A process whose clock is an hour behind sends the next event: it is newer all the same.
    rampart::live::publish(bus, scan.org_id, &event(1, 10.0, -3600)).await;
    // A late duplicate of an older event with a clock ahead is older all the same.
    rampart::live::publish(bus, scan.org_id, &event(1, 5.0, 3600)).await;
    rampart::live::publish(bus, scan.org_id, &event(0, 1.0, 7200)).await;
    let mut done = event(2, 100.0, -7200);
    done.status = ScanStatus::Complete;
    rampart::live::publish(bus, scan.org_id, &done).await;

    let rest: Vec<(u64, f64)> = follower.map(|p| (p.seq, p.percent)).collect().await;
    assert_eq!(rest, vec![(1, 10.0), (2, 100.0)]);
}
