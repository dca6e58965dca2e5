//! The job queue under contention, and what followers of a scan see: a worker that lost its
//! lease cannot undo the work of the worker that holds the job now; a scan's events are ordered
//! by its sequence number, never go backwards, and a follower ends when the scan ends even if
//! the terminal event was lost.

use std::sync::Arc;

use async_trait::async_trait;
use futures::StreamExt;
use rampart::context::{Actor, Ctx, RequestMeta, Scope};
use rampart::ingest::jobs::{self, Lease, LeaseError};
use rampart::ingest::pipeline::{self, Failure};
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use rampart::live::ScanProgress;
use rampart::scans::ScanStatus;
use rampart::store::StoreError;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

use crate::support::store::{Interpose, Interposed};
use crate::support::{Auth, TestApp, TestConfig};

/// Reads wait until the test lets them through: a worker reading its report through such a
/// store is paused, as if its process were stopped.
struct PausedReads {
    /// Signalled when a read is waiting.
    waiting: Arc<Notify>,
    open: Arc<Semaphore>,
}

#[async_trait]
impl Interpose for PausedReads {
    async fn before_get(&self) -> Result<(), StoreError> {
        self.waiting.notify_one();
        let _pass = self.open.acquire().await.expect("semaphore open");
        Ok(())
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
    app_with(|_| {}).await
}

async fn app_with(configure: impl FnOnce(&mut rampart::Config)) -> TestApp {
    let mut test_config = TestConfig::new().await;
    test_config.config.workers = 0;
    configure(&mut test_config.config);
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
    let (state_a, waiting, open) = paused_worker_state(&app);
    let worker_a = {
        let lease_a = lease_a.clone();
        tokio::spawn(async move { pipeline::process(&state_a, scan_id, &lease_a).await })
    };
    waiting.notified().await;
    let (running, _, _) = stored(&app, scan_id).await;
    assert_eq!(running.status, "running", "A started the scan");

    // A's lease runs out while it is paused; worker B takes the job over and completes it.
    let long = chrono::Duration::seconds(60);
    let job_b = claim_when_free(&app, "worker-b")
        .await
        .expect("A's lease runs out");
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

/// A store whose reads wait until `open` gets permits, and the state of a worker using it.
fn paused_worker_state(app: &TestApp) -> (rampart::AppState, Arc<Notify>, Arc<Semaphore>) {
    let waiting = Arc::new(Notify::new());
    let open = Arc::new(Semaphore::new(0));
    let mut state = app.state.clone();
    state.store = Interposed::wrap(
        app.state.store.clone(),
        PausedReads {
            waiting: waiting.clone(),
            open: open.clone(),
        },
    );
    (state, waiting, open)
}

/// Claims the job as `worker` as soon as its current lease has run out (`None` after 30 s).
async fn claim_when_free(app: &TestApp, worker: &str) -> Option<entity::job::Model> {
    let claiming = async {
        loop {
            let claimed = jobs::claim(&app.state.db, worker, chrono::Duration::seconds(60));
            if let Some(job) = claimed.await.unwrap() {
                return job;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), claiming)
        .await
        .ok()
}

#[tokio::test]
async fn a_worker_whose_work_stalls_gives_up_its_lease_for_another_to_finish() {
    let app = app_with(|config| config.job_stall_secs = 1).await;
    let scan_id = queue_scan(&app, 25).await;
    let lease = chrono::Duration::milliseconds(300);
    let job_a = jobs::claim(&app.state.db, "worker-a", lease)
        .await
        .unwrap()
        .unwrap();
    // A renews its lease as a live worker does, but its read of the report hangs.
    let (state_a, waiting, open) = paused_worker_state(&app);
    let worker_a = tokio::spawn(async move {
        rampart::ingest::worker::run_one(&state_a, job_a, "worker-a", lease).await;
    });
    waiting.notified().await;

    let Some(job_b) = claim_when_free(&app, "worker-b").await else {
        open.add_permits(16); // let A go, so that the test ends
        panic!("A kept renewing the lease of its stalled work");
    };
    rampart::ingest::worker::run_one(&app.state, job_b, "worker-b", chrono::Duration::seconds(60))
        .await;
    open.add_permits(16);
    worker_a.await.unwrap();
    let (scan, sightings, findings) = stored(&app, scan_id).await;
    assert_eq!(scan.status, "complete", "{:?}", scan.error);
    assert_eq!((scan.findings_new, sightings, findings), (25, 25, 25));
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
    let mut follower = follow(&app, &scan).await;
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

/// Follows `scan_id` as a reader of the scan's org would.
async fn follow(
    app: &TestApp,
    scan: &entity::scan::Model,
) -> futures::stream::BoxStream<'static, Arc<ScanProgress>> {
    let ctx = Ctx {
        actor: Actor::ApiKey {
            key_id: Uuid::nil(),
            label: "test".into(),
            scope: Scope::Read,
        },
        org_id: scan.org_id,
        meta: RequestMeta::internal("test"),
        mfa_enrolment_required: false,
    };
    rampart::live::follow_scan_stream(&app.state, &ctx, scan.id)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_follower_ends_when_its_scan_ends_even_if_the_terminal_event_was_lost() {
    let app = app_without_workers().await;
    let scan_id = queue_scan(&app, 3).await;
    let (scan, _, _) = stored(&app, scan_id).await;
    let mut follower = follow(&app, &scan).await;
    assert_eq!(follower.next().await.unwrap().status, ScanStatus::Queued);

    // The scan ends while the bus is down: the row says so, no event is published.
    let mut ended = ScanProgress::new(scan_id, scan.target_id, ScanStatus::Failed, "failed");
    let txn = rampart::db::begin_write(&app.state.db).await.unwrap();
    let update = entity::scan::Entity::update_many().col_expr(
        entity::scan::Column::Status,
        sea_orm::sea_query::Expr::value("failed"),
    );
    assert!(rampart::live::store_progress(&txn, update, &mut ended)
        .await
        .unwrap());
    txn.commit().await.unwrap();

    let rest = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        follower.collect::<Vec<_>>(),
    )
    .await
    .expect("the follower ends");
    let statuses: Vec<(ScanStatus, u64)> = rest.iter().map(|p| (p.status, p.seq)).collect();
    assert_eq!(statuses, vec![(ScanStatus::Failed, ended.seq)]);
}

#[tokio::test]
async fn a_follower_never_sees_progress_go_backwards_when_a_scan_is_retried() {
    let app = app_without_workers().await;
    let scan_id = queue_scan(&app, 3).await;
    let (scan, _, _) = stored(&app, scan_id).await;
    let mut follower = follow(&app, &scan).await;
    follower.next().await.unwrap();

    let bus = app.state.bus.as_ref();
    let running = |seq: u64, percent: f64, processed: u64| {
        let mut p = ScanProgress::new(scan_id, scan.target_id, ScanStatus::Running, "parsing");
        (p.seq, p.percent, p.processed) = (seq, percent, processed);
        p
    };
    rampart::live::publish(bus, scan.org_id, &running(1, 67.0, 2000)).await;
    // A retry starts over.
    rampart::live::publish(bus, scan.org_id, &running(2, 0.0, 0)).await;
    rampart::live::publish(bus, scan.org_id, &running(3, 80.0, 2500)).await;
    let mut done = running(4, 100.0, 3);
    done.status = ScanStatus::Complete;
    rampart::live::publish(bus, scan.org_id, &done).await;

    let seen: Vec<(u64, f64, u64)> = follower
        .map(|p| (p.seq, p.percent, p.processed))
        .collect()
        .await;
    assert_eq!(
        seen,
        vec![
            (1, 67.0, 2000),
            (2, 67.0, 2000),
            (3, 80.0, 2500),
            (4, 100.0, 3)
        ]
    );
}
