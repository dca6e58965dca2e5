//! The schema: migrations up, down and up again; constraints and delete behaviour.

use chrono::Utc;
use entity::prelude::*;
use entity::{api_key, finding, organization, scan, target, user};
use migration::{Migrator, MigratorTrait};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, PaginatorTrait, Set, SqlErr};
use uuid::Uuid;

use crate::support::TestConfig;

async fn connect(tc: &TestConfig) -> DatabaseConnection {
    rampart::db::connect(&tc.config.effective_database_url())
        .await
        .expect("database reachable")
}

async fn assert_all_tables_usable(db: &DatabaseConnection) {
    Organization::find().count(db).await.expect("organization");
    User::find().count(db).await.expect("user");
    Membership::find().count(db).await.expect("membership");
    Session::find().count(db).await.expect("session");
    ApiKey::find().count(db).await.expect("api_key");
    Target::find().count(db).await.expect("target");
    Scan::find().count(db).await.expect("scan");
    Finding::find().count(db).await.expect("finding");
    ScanFinding::find().count(db).await.expect("scan_finding");
    Comment::find().count(db).await.expect("comment");
    Webhook::find().count(db).await.expect("webhook");
    WebhookDelivery::find()
        .count(db)
        .await
        .expect("webhook_delivery");
    Notification::find().count(db).await.expect("notification");
    AuditEvent::find().count(db).await.expect("audit_event");
    Job::find().count(db).await.expect("job");
    Invitation::find().count(db).await.expect("invitation");
    PasswordReset::find()
        .count(db)
        .await
        .expect("password_reset");
    MfaFactor::find().count(db).await.expect("mfa_factor");
    MfaRecoveryCode::find()
        .count(db)
        .await
        .expect("mfa_recovery_code");
    WebhookAttempt::find()
        .count(db)
        .await
        .expect("webhook_attempt");
}

#[tokio::test]
async fn migrations_go_up_down_and_up_again() {
    let tc = TestConfig::new().await;
    let db = connect(&tc).await;

    Migrator::up(&db, None).await.expect("first up");
    assert_all_tables_usable(&db).await;

    Migrator::reset(&db).await.expect("down to nothing");
    assert!(Organization::find().count(&db).await.is_err());
    assert!(Job::find().count(&db).await.is_err());
    assert_eq!(
        Migrator::get_applied_migrations(&db).await.unwrap().len(),
        0
    );

    Migrator::up(&db, None).await.expect("second up");
    assert_all_tables_usable(&db).await;
    assert!(Migrator::get_pending_migrations(&db)
        .await
        .unwrap()
        .is_empty());
}

async fn new_org(db: &DatabaseConnection, slug: &str) -> organization::Model {
    organization::ActiveModel {
        id: Set(Uuid::now_v7()),
        slug: Set(slug.into()),
        name: Set(slug.into()),
        created_at: Set(Utc::now()),
        require_admin_mfa: Set(false),
    }
    .insert(db)
    .await
    .expect("insert org")
}

fn new_target(org_id: Uuid, name: &str) -> target::ActiveModel {
    let now = Utc::now();
    target::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        kind: Set("repository".into()),
        name: Set(name.into()),
        labels: Set(serde_json::json!({})),
        metadata: Set(serde_json::json!({})),
        last_scan_at: Set(None),
        last_score: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    }
}

fn new_scan(org_id: Uuid, target_id: Uuid) -> scan::ActiveModel {
    let now = Utc::now();
    scan::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        target_id: Set(target_id),
        status: Set("complete".into()),
        source: Set("upload".into()),
        scanner_name: Set("semgrep".into()),
        scanned_at: Set(now),
        created_at: Set(now),
        ..Default::default()
    }
}

fn new_finding(org_id: Uuid, target_id: Uuid, fingerprint: &str) -> finding::ActiveModel {
    let now = Utc::now();
    finding::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        target_id: Set(target_id),
        scanner: Set("semgrep".into()),
        fingerprint: Set(fingerprint.into()),
        rule_id: Set("rule".into()),
        title: Set("title".into()),
        severity: Set("high".into()),
        cve_ids: Set("[]".into()),
        cwe_ids: Set("[]".into()),
        description: Set(String::new()),
        occurrences: Set(1),
        status: Set("open".into()),
        first_seen_at: Set(now),
        last_seen_at: Set(now),
        triage_state: Set("untriaged".into()),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
}

#[tokio::test]
async fn constraints_hold_and_deletes_cascade() {
    let tc = TestConfig::new().await;
    let db = connect(&tc).await;
    Migrator::up(&db, None).await.unwrap();

    let org = new_org(&db, "acme").await;
    let other = new_org(&db, "globex").await;
    let target = new_target(org.id, "api").insert(&db).await.unwrap();

    // target (org, kind, name) is unique, but the same name in another org is fine.
    let duplicate = new_target(org.id, "api").insert(&db).await.unwrap_err();
    assert!(
        matches!(
            duplicate.sql_err(),
            Some(SqlErr::UniqueConstraintViolation(_))
        ),
        "{duplicate:?}"
    );
    new_target(other.id, "api").insert(&db).await.unwrap();

    // finding (target, fingerprint) is unique.
    let scan = new_scan(org.id, target.id).insert(&db).await.unwrap();
    new_finding(org.id, target.id, "fp-1")
        .insert(&db)
        .await
        .unwrap();
    let duplicate = new_finding(org.id, target.id, "fp-1")
        .insert(&db)
        .await
        .unwrap_err();
    assert!(matches!(
        duplicate.sql_err(),
        Some(SqlErr::UniqueConstraintViolation(_))
    ));

    // A scan must point at an existing target.
    let orphan = new_scan(org.id, Uuid::now_v7())
        .insert(&db)
        .await
        .unwrap_err();
    assert!(
        matches!(
            orphan.sql_err(),
            Some(SqlErr::ForeignKeyConstraintViolation(_))
        ),
        "{orphan:?}"
    );

    // Deleting a user keeps the keys they created, unattributed.
    let now = Utc::now();
    let alice = user::ActiveModel {
        id: Set(Uuid::now_v7()),
        email: Set("alice@example.com".into()),
        password_hash: Set("x".into()),
        display_name: Set(None),
        is_active: Set(true),
        must_change_password: Set(false),
        created_at: Set(now),
        updated_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    let key = api_key::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org.id),
        created_by: Set(Some(alice.id)),
        label: Set("ci".into()),
        prefix: Set("rmp_abcd".into()),
        secret_hash: Set("0".repeat(64)),
        scopes: Set("write".into()),
        expires_at: Set(None),
        last_used_at: Set(None),
        revoked_at: Set(None),
        created_at: Set(now),
    }
    .insert(&db)
    .await
    .unwrap();
    User::delete_by_id(alice.id).exec(&db).await.unwrap();
    let key = ApiKey::find_by_id(key.id).one(&db).await.unwrap().unwrap();
    assert_eq!(key.created_by, None);

    // Deleting an org removes everything it owns and nothing of the other org.
    Organization::delete_by_id(org.id).exec(&db).await.unwrap();
    assert!(Scan::find_by_id(scan.id).one(&db).await.unwrap().is_none());
    assert_eq!(Finding::find().count(&db).await.unwrap(), 0);
    assert_eq!(ApiKey::find().count(&db).await.unwrap(), 0);
    assert_eq!(Target::find().count(&db).await.unwrap(), 1);
}
