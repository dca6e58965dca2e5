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

/// A SARIF log whose rule texts are shared: two results of a rule with a long description,
/// help and a CWE, and one result of a rule with neither.
fn shared_rule_report() -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {"name": "DemoQL", "rules": [
                {"id": "py/sql-injection",
                 "shortDescription": {"text": "SQL query built from user input"},
                 "fullDescription": {"text": "Building SQL from user input allows SQL injection."},
                 "help": {"text": "Use parameterized queries."},
                 "properties": {"tags": ["external/cwe/cwe-89"]}},
                {"id": "py/unused-import"}
            ]}},
            "results": [
                {"ruleId": "py/sql-injection", "level": "error",
                 "message": {"text": "Query built from request.args['q']."},
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/db.py"},
                   "region": {"startLine": 10}}}]},
                {"ruleId": "py/sql-injection", "level": "error",
                 "message": {"text": "Query built from request.form['name']."},
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": "src/users.py"},
                   "region": {"startLine": 42}}}]},
                {"ruleId": "py/unused-import", "level": "note",
                 "message": {"text": "Import of 'json' is not used."},
                 "locations": [{"physicalLocation": {"artifactLocation": {"uri": "lib/util.py"},
                   "region": {"startLine": 1}}}]}
            ]
        }]
    }))
    .unwrap()
}

/// Every finding of the target as readers see it, by fingerprint.
async fn findings_as_read(
    app: &crate::support::TestApp,
    token: &str,
    target: &str,
) -> std::collections::BTreeMap<String, serde_json::Value> {
    let res = app
        .gql(
            crate::support::Auth::Bearer(token),
            "query($t: UUID!) { findings(targetId: $t, pageSize: 100) { edges { node {
                id fingerprint title description remediation cweIds cveIds severity occurrences
                location { path line } } } } }",
            serde_json::json!({"t": target}),
        )
        .await;
    res.data("findings")["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let node = e["node"].clone();
            (node["fingerprint"].as_str().unwrap().to_string(), node)
        })
        .collect()
}

/// Steps down until `name` is no longer applied; returns how many steps that took.
async fn down_past(db: &DatabaseConnection, name: &str) -> u32 {
    let applied = Migrator::get_applied_migrations(db).await.unwrap();
    let at = applied
        .iter()
        .position(|m| m.name() == name)
        .expect("migration applied");
    let steps = u32::try_from(applied.len() - at).unwrap();
    Migrator::down(db, Some(steps)).await.expect("down");
    steps
}

/// Rules stored once (000012): results of one rule share one `rule` row; stepping the schema
/// down and up again keeps every answer; a finding written through the old schema reads back
/// the same after the migration.
#[tokio::test]
async fn rules_migration_keeps_every_answer_both_ways() {
    use crate::support::{Auth, TestApp};
    use sea_orm::{ColumnTrait, QueryFilter};

    let tc = TestConfig::new().await;
    let app = TestApp::spawn_with(tc.config.clone()).await;
    let token = app.login_admin().await;
    let scan = app
        .ingest_and_wait(
            Auth::Bearer(&token),
            "target=shop&target_kind=repository",
            shared_rule_report(),
        )
        .await;
    assert_eq!(scan["status"], "COMPLETE");
    let target = scan["targetId"].as_str().unwrap().to_string();
    let before = findings_as_read(&app, &token, &target).await;
    assert_eq!(before.len(), 3);
    let sqli: Vec<&serde_json::Value> = before
        .values()
        .filter(|f| f["cweIds"] == serde_json::json!(["CWE-89"]))
        .collect();
    assert_eq!(sqli.len(), 2);
    for f in &sqli {
        let description = f["description"].as_str().unwrap();
        assert!(
            description.starts_with("Query built from ")
                && description.ends_with(".\n\nBuilding SQL from user input allows SQL injection."),
            "{description}"
        );
        assert_eq!(f["remediation"], "Use parameterized queries.");
    }
    let target_id = Uuid::parse_str(&target).unwrap();
    let org_id = Target::find_by_id(target_id)
        .one(&app.state.db)
        .await
        .unwrap()
        .unwrap()
        .org_id;
    let rules = entity::rule::Entity::find()
        .filter(entity::rule::Column::OrgId.eq(org_id))
        .all(&app.state.db)
        .await
        .unwrap();
    assert_eq!(
        rules.len(),
        2,
        "one row per rule, not per result: {rules:?}"
    );
    app.stop().await;

    // Down through 000012, and a finding written the old way, rule texts in its own columns.
    let db = connect(&tc).await;
    let steps = down_past(&db, "m20261201_000012_rules_stored_once").await;
    let legacy_id = Uuid::now_v7();
    let now = Utc::now();
    let mut insert = sea_orm::sea_query::Query::insert();
    insert
        .into_table(sea_orm::sea_query::Alias::new("finding"))
        .columns(
            [
                "id",
                "org_id",
                "target_id",
                "scanner",
                "fingerprint",
                "rule_id",
                "title",
                "severity",
                "cve_ids",
                "cwe_ids",
                "description",
                "remediation",
                "occurrences",
                "status",
                "first_seen_at",
                "last_seen_at",
                "triage_state",
                "created_at",
                "updated_at",
            ]
            .map(sea_orm::sea_query::Alias::new),
        )
        .values_panic([
            legacy_id.into(),
            org_id.into(),
            target_id.into(),
            "DemoQL".into(),
            "legacy-fingerprint".into(),
            "py/legacy".into(),
            "Legacy finding".into(),
            "medium".into(),
            "[\"CVE-2021-44228\"]".into(),
            "[\"CWE-502\"]".into(),
            "Stored before rules had a table.\n\nThe rule's text, joined.".into(),
            "Upgrade the library.".into(),
            1.into(),
            "open".into(),
            now.into(),
            now.into(),
            "untriaged".into(),
            now.into(),
            now.into(),
        ]);
    sea_orm::ConnectionTrait::execute(&db, &insert)
        .await
        .expect("old-schema insert");
    Migrator::up(&db, None).await.expect("up again");
    let applied = Migrator::get_applied_migrations(&db).await.unwrap();
    assert!(applied.len() >= steps as usize);
    drop(db);

    let app = TestApp::spawn_with(tc.config.clone()).await;
    let token = app.login_admin().await;
    let mut after = findings_as_read(&app, &token, &target).await;
    let legacy = after.remove("legacy-fingerprint").expect("legacy finding");
    assert_eq!(after, before, "answers changed across the migration");
    assert_eq!(legacy["id"], legacy_id.to_string());
    assert_eq!(
        legacy["description"],
        "Stored before rules had a table.\n\nThe rule's text, joined."
    );
    assert_eq!(legacy["remediation"], "Upgrade the library.");
    assert_eq!(legacy["cweIds"], serde_json::json!(["CWE-502"]));
    assert_eq!(legacy["cveIds"], serde_json::json!(["CVE-2021-44228"]));
    app.stop().await;
}
