//! A scan failed by an outage is not lost: an admin retries it from its stored report.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use rampart::ingest::synthetic::{sarif, SyntheticResult};
use rampart::store::{ObjectStore, StoreError};

use crate::support::store::{Interpose, Interposed};
use crate::support::{assert_envelope, Auth, TestApp, TestConfig};

/// Reads fail while `down` is set, as during an outage.
struct OutageOnReads {
    down: Arc<AtomicBool>,
}

#[async_trait]
impl Interpose for OutageOnReads {
    async fn before_get(&self) -> Result<(), StoreError> {
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend("the store is down (test)".into()));
        }
        Ok(())
    }
}

/// An app whose store's reads fail while the flag is set, and whose jobs get one attempt.
async fn app_with_outage() -> (TestApp, Arc<AtomicBool>, Arc<dyn ObjectStore>) {
    let test_config = TestConfig::new().await;
    let mut config = test_config.config.clone();
    config.job_max_attempts = 1;
    let mut backends = rampart::app::open_backends(&config)
        .await
        .expect("backends");
    let down = Arc::new(AtomicBool::new(true));
    let inner = backends.store.clone();
    backends.store = Interposed::wrap(inner.clone(), OutageOnReads { down: down.clone() });
    let mut app = TestApp::spawn_with_backends(config, backends).await;
    app.test_config = Some(test_config);
    (app, down, inner)
}

async fn upload(app: &TestApp, token: &str, target: &str, results: u64) -> String {
    let report = sarif("semgrep", (0..results).map(SyntheticResult::numbered));
    let res = app
        .ingest(
            Auth::Bearer(token),
            &format!("target={target}&format=sarif"),
            report,
        )
        .await;
    assert_eq!(res.status, 202, "{}", res.body);
    res.body["data"]["id"].as_str().unwrap().to_string()
}

async fn retry_rest(app: &TestApp, token: &str, id: &str) -> (u16, serde_json::Value) {
    let res = app
        .http
        .post(app.url(&format!("/api/v1/scans/{id}/retry")))
        .bearer_auth(token)
        .send()
        .await
        .expect("request");
    let status = res.status().as_u16();
    (status, res.json().await.expect("JSON body"))
}

#[tokio::test]
async fn a_failed_scan_retried_by_an_admin_completes_with_exact_counts() {
    let (app, down, _) = app_with_outage().await;
    let token = app.login_admin().await;
    let id = upload(&app, &token, "svc", 40).await;
    let failed = app.wait_scan(Auth::Bearer(&token), &id).await;
    assert_eq!(failed["status"], "FAILED", "{failed}");

    // The outage ends; the admin retries over GraphQL, and the scan runs from its report.
    down.store(false, Ordering::SeqCst);
    let retried = app
        .gql(
            Auth::Bearer(&token),
            "mutation($id: UUID!) { retryScan(id: $id) { id status error } }",
            serde_json::json!({"id": id}),
        )
        .await;
    let scan = retried.data("retryScan");
    assert_eq!(scan["status"], "QUEUED", "{scan}");
    assert!(scan["error"].is_null(), "{scan}");
    let done = app.wait_scan(Auth::Bearer(&token), &id).await;
    assert_eq!(done["status"], "COMPLETE", "{done}");
    assert_eq!(done["counts"]["total"], 40, "{done}");
    assert_eq!(done["findingsNew"], 40, "{done}");
    assert!(done["error"].is_null(), "{done}");

    let audit = app
        .gql(
            Auth::Bearer(&token),
            "{ auditEvents(pageSize: 100) { edges { node { action resourceId } } } }",
            serde_json::json!({}),
        )
        .await;
    let retries = audit.data("auditEvents")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["node"]["action"] == "scan.retry" && e["node"]["resourceId"] == id.as_str())
        .count();
    assert_eq!(retries, 1, "the retry is audited");

    // A complete scan is not retried: 409 in the envelope.
    let (status, body) = retry_rest(&app, &token, &id).await;
    assert_eq!(status, 409, "{body}");
    assert_envelope(&body, 409, "CONFLICT");
}

#[tokio::test]
async fn retry_over_rest_answers_202_and_needs_the_stored_report_and_an_admin() {
    let (app, down, inner) = app_with_outage().await;
    let token = app.login_admin().await;
    let kept = upload(&app, &token, "kept", 7).await;
    let lost = upload(&app, &token, "lost", 3).await;
    for id in [&kept, &lost] {
        let scan = app.wait_scan(Auth::Bearer(&token), id).await;
        assert_eq!(scan["status"], "FAILED", "{scan}");
    }
    down.store(false, Ordering::SeqCst);

    // A member may not retry.
    app.add_member(&token, "dev@acme.test", "MEMBER").await;
    let (member, _) = app
        .login("dev@acme.test", crate::support::MEMBER_PASSWORD)
        .await;
    let (status, body) = retry_rest(&app, &member, &kept).await;
    assert_envelope(&body, 403, "FORBIDDEN");
    assert_eq!(status, 403);

    // The raw report of one scan is gone: nothing to retry from.
    let org = crate::support::builders::org_id(&app.state.db, "default").await;
    let lost_uuid = uuid::Uuid::parse_str(&lost).unwrap();
    inner
        .delete(&format!("reports/{org}/{}", lost_uuid.simple()))
        .await
        .unwrap();
    let (status, body) = retry_rest(&app, &token, &lost).await;
    assert_eq!(status, 409, "{body}");
    assert_envelope(&body, 409, "CONFLICT");

    let (status, body) = retry_rest(&app, &token, &kept).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["data"]["status"], "queued", "{body}");
    let done = app.wait_scan(Auth::Bearer(&token), &kept).await;
    assert_eq!(done["status"], "COMPLETE", "{done}");
    assert_eq!(done["counts"]["total"], 7, "{done}");
}
