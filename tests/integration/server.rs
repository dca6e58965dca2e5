//! The server skeleton: envelope on every error, request ids, index, start-up and restart.

use entity::organization;
use sea_orm::{ActiveModelTrait, EntityTrait, Set};

use crate::support::{assert_envelope, TestApp, TestConfig};

#[tokio::test]
async fn unknown_paths_and_methods_get_the_envelope() {
    let app = TestApp::spawn().await;

    let (status, body) = app.get_json("/no/such/path").await;
    assert_eq!(status, 404);
    assert_envelope(&body, 404, "NOT_FOUND");
    assert!(body["error"].as_str().unwrap().contains("/no/such/path"));

    let res = app.http.delete(app.url("/health")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    assert_envelope(&res.json().await.unwrap(), 405, "METHOD_NOT_ALLOWED");
}

#[tokio::test]
async fn malformed_bodies_get_the_envelope() {
    let app = TestApp::spawn().await;
    let res = app
        .http
        .post(app.url("/graphql"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res
        .headers()
        .get("content-type")
        .unwrap()
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    assert_envelope(&res.json().await.unwrap(), 400, "BAD_REQUEST");
}

#[tokio::test]
async fn request_ids_are_honoured_generated_and_echoed() {
    let app = TestApp::spawn().await;

    let res = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "ci-run-42.step:7")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "ci-run-42.step:7");

    let res = app.get("/no/such/path").await;
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_string();
    assert!(uuid::Uuid::parse_str(&generated).is_ok(), "{generated}");

    let res = app
        .http
        .get(app.url("/health"))
        .header("x-request-id", "has spaces; and=junk")
        .send()
        .await
        .unwrap();
    let replaced = res.headers()["x-request-id"].to_str().unwrap();
    assert!(uuid::Uuid::parse_str(replaced).is_ok(), "{replaced}");
}

#[tokio::test]
async fn index_links_to_everything() {
    let app = TestApp::spawn().await;
    let (status, body) = app.get_json("/").await;
    assert_eq!(status, 200);
    assert_eq!(body["name"], "rampart");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(body["status"], "ok");
    for link in ["docs", "graphql", "health"] {
        let path = body[link].as_str().unwrap();
        let res = if link == "graphql" {
            app.http
                .post(app.url(path))
                .json(&serde_json::json!({"query": "{ serverInfo { name version } }"}))
                .send()
                .await
                .unwrap()
        } else {
            app.get(path).await
        };
        assert_eq!(res.status(), 200, "{link} -> {path}");
    }
}

#[tokio::test]
async fn empty_data_dir_is_set_up_and_reused_on_restart() {
    let tc = TestConfig::new().await;
    let data_dir = tc.config.data_dir.clone();
    assert_eq!(std::fs::read_dir(&data_dir).unwrap().count(), 0);

    let first = TestApp::spawn_with(tc.config.clone()).await;
    let secret = std::fs::read_to_string(data_dir.join("jwt-secret")).unwrap();
    if tc.config.s3_bucket.is_none() {
        assert!(data_dir.join("reports").is_dir());
    }
    if tc.config.database_url.is_none() {
        assert!(data_dir.join("rampart.db").is_file());
    }
    let org = organization::ActiveModel {
        id: Set(uuid::Uuid::now_v7()),
        slug: Set("kept".into()),
        name: Set("Kept".into()),
        created_at: Set(chrono::Utc::now()),
        require_admin_mfa: Set(false),
    }
    .insert(&first.state.db)
    .await
    .unwrap();
    first.stop().await;

    let second = TestApp::spawn_with(tc.config.clone()).await;
    assert_eq!(
        std::fs::read_to_string(data_dir.join("jwt-secret")).unwrap(),
        secret
    );
    let found = organization::Entity::find_by_id(org.id)
        .one(&second.state.db)
        .await
        .unwrap();
    assert_eq!(found.map(|o| o.slug).as_deref(), Some("kept"));
    let (status, _) = second.get_json("/ready").await;
    assert_eq!(status, 200);
    second.stop().await;
}
