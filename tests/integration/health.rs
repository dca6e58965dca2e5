//! Health routes: real checks, `down` (never a hang or a 500) when a backend goes away.

use crate::support::proxy::{socket_of, through, Proxy};
use crate::support::{assert_envelope, TestApp, TestConfig, TestEnv};

#[tokio::test]
async fn liveness_and_readiness_when_all_is_well() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_json("/health").await;
    assert_eq!(status, 200);
    assert_eq!(body["status"], "ok");

    let (status, body) = app.get_json("/ready").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "ready");
    for check in ["database", "migrations", "object_store"] {
        assert_eq!(body["checks"][check], "up", "{body}");
    }
}

#[tokio::test]
async fn services_report_each_configured_backend() {
    let env = TestEnv::from_env();
    let app = TestApp::spawn().await;
    let (status, body) = app.get_json("/health/services").await;
    assert_eq!(status, 200);

    let expect_up = |service: &str, backend: &str| {
        assert_eq!(body[service]["status"], "up", "{service}: {body}");
        assert_eq!(body[service]["backend"], backend, "{service}: {body}");
        assert!(body[service]["latency"]
            .as_f64()
            .is_some_and(|ms| ms >= 0.0));
    };
    expect_up(
        "database",
        if env.postgres_url.is_some() {
            "postgres"
        } else {
            "sqlite"
        },
    );
    expect_up(
        "object_store",
        if env.s3.is_some() { "s3" } else { "local" },
    );
    if env.redis_url.is_some() {
        expect_up("redis", "redis");
    } else {
        assert_eq!(body["redis"]["status"], "disabled");
        assert!(body["redis"]["latency"].is_null());
    }
    assert!(body.get("worker").is_some());
}

async fn service_status(app: &TestApp, service: &str) -> String {
    let (status, body) = app.get_json("/health/services").await;
    assert_eq!(status, 200, "{body}");
    body[service]["status"].as_str().unwrap().to_string()
}

async fn assert_not_ready(app: &TestApp, naming: &str) {
    let (status, body) = app.get_json("/ready").await;
    assert_envelope(&body, 503, "SERVICE_UNAVAILABLE");
    assert_eq!(status, 503);
    assert!(body["error"].as_str().unwrap().contains(naming), "{body}");
}

#[tokio::test]
#[cfg_attr(
    rampart_test_s3,
    ignore = "the local object store only; with RAMPART_TEST_S3_ENDPOINT, \
              scale_out_backends_cut_off_are_reported_down cuts S3 off instead"
)]
async fn local_store_that_stops_accepting_writes_is_down() {
    let env = TestEnv::from_env();
    assert!(
        env.s3.is_none(),
        "RAMPART_TEST_S3_ENDPOINT was unset when this test was built"
    );
    let app = TestApp::spawn().await;
    assert_eq!(service_status(&app, "object_store").await, "up");

    let root = app.state.config.data_dir.join("reports");
    std::fs::remove_dir_all(&root).unwrap();
    std::fs::write(&root, b"not a directory").unwrap();

    assert_eq!(service_status(&app, "object_store").await, "down");
    assert_not_ready(&app, "object store").await;
}

#[tokio::test]
#[cfg_attr(
    not(all(rampart_test_postgres, rampart_test_redis, rampart_test_s3)),
    ignore = "needs RAMPART_TEST_DATABASE_URL, _REDIS_URL and _S3_ENDPOINT (the scale-out run)"
)]
async fn scale_out_backends_cut_off_are_reported_down() {
    let env = TestEnv::from_env();
    let (Some(_), Some(redis_url), Some(s3)) = (&env.postgres_url, &env.redis_url, &env.s3) else {
        panic!("the scale-out servers were configured when this test was built");
    };
    let test_config = TestConfig::for_env(&env).await;
    let mut config = test_config.config.clone();

    let db_url = config.database_url.clone().unwrap();
    let pg = Proxy::start(socket_of(&db_url)).await;
    let redis = Proxy::start(socket_of(redis_url)).await;
    let s3_proxy = Proxy::start(socket_of(&s3.endpoint)).await;
    config.database_url = Some(through(&db_url, pg.addr));
    config.redis_url = Some(through(redis_url, redis.addr));
    config.s3_endpoint = Some(through(&s3.endpoint, s3_proxy.addr));

    let app = TestApp::spawn_with(config).await;
    for service in ["database", "redis", "object_store"] {
        assert_eq!(service_status(&app, service).await, "up", "{service}");
    }

    s3_proxy.cut().await;
    assert_eq!(service_status(&app, "object_store").await, "down");
    assert_eq!(service_status(&app, "database").await, "up");
    assert_not_ready(&app, "object store").await;

    redis.cut().await;
    assert_eq!(service_status(&app, "redis").await, "down");

    pg.cut().await;
    assert_eq!(service_status(&app, "database").await, "down");
    assert_not_ready(&app, "database").await;
    drop(test_config);
}

/// The `worker` entry of one process's health answer.
async fn worker_health(app: &TestApp) -> serde_json::Value {
    let (status, body) = app.get_json("/health/services").await;
    assert_eq!(status, 200, "{body}");
    body["worker"].clone()
}

/// The `worker` entry tells the truth across processes: live worker processes come from their
/// heartbeats in the shared database, and the queue's depth and age from the job rows. An
/// API-only process sees the queue grow while no worker lives, a worker-only process started
/// beside it drains the queue, and once that worker stops it no longer counts.
#[tokio::test]
async fn worker_health_reports_live_workers_and_the_queue() {
    use rampart::config::Role;
    use rampart::ingest::synthetic::{sarif, SyntheticResult};

    let test_config = TestConfig::new().await;
    let mut api_only = test_config.config.clone();
    api_only.role = Role::Api;
    let api = TestApp::spawn_with(api_only).await;

    let idle = worker_health(&api).await;
    assert_eq!(idle["status"], "down", "no worker lives: {idle}");
    assert_eq!(idle["processes"], 0, "{idle}");
    assert_eq!(idle["queued"], 0, "{idle}");
    assert_eq!(idle["running"], 0, "{idle}");
    assert!(idle["oldest_queued_secs"].is_null(), "{idle}");

    let token = api.login_admin().await;
    let accepted = api
        .ingest(
            crate::support::Auth::Bearer(&token),
            "target=queued&target_kind=repository",
            sarif("bandit", (0..5).map(SyntheticResult::numbered)),
        )
        .await;
    assert_eq!(accepted.status, 202, "{}", accepted.body);
    let waiting = worker_health(&api).await;
    assert_eq!(waiting["status"], "down", "{waiting}");
    assert_eq!(waiting["queued"], 1, "{waiting}");
    assert_eq!(waiting["running"], 0, "{waiting}");
    assert!(
        waiting["oldest_queued_secs"]
            .as_f64()
            .is_some_and(|s| s >= 0.0),
        "{waiting}"
    );

    let mut worker_only = test_config.config.clone();
    worker_only.role = Role::Worker;
    worker_only.workers = 3;
    // No store sweep: its job would count as running beside the scan's.
    worker_only.store_sweep_interval_secs = 0;
    let worker = TestApp::spawn_with(worker_only).await;
    let scan = api
        .wait_scan(
            crate::support::Auth::Bearer(&token),
            accepted.body["data"]["id"].as_str().unwrap(),
        )
        .await;
    assert_eq!(scan["status"], "COMPLETE", "{scan}");
    // The worker process wrote its first heartbeat before it claimed the job.
    let working = worker_health(&api).await;
    assert_eq!(working["status"], "up", "{working}");
    assert_eq!(working["processes"], 1, "{working}");
    assert_eq!(working["workers"], 3, "{working}");
    assert_eq!(working["queued"], 0, "{working}");
    assert_eq!(working["running"], 0, "{working}");
    assert!(working["oldest_queued_secs"].is_null(), "{working}");

    worker.stop().await;
    let gone = worker_health(&api).await;
    assert_eq!(
        gone["status"], "down",
        "a stopped worker no longer counts: {gone}"
    );
    assert_eq!(gone["processes"], 0, "{gone}");
    drop(test_config);
}
