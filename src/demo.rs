//! Demo data: a few orgs with targets and 90 days of scans, so GraphiQL, Swagger UI and the
//! trends show something on a first start. Written straight to the database with backdated
//! times (the ingest pipeline stamps scans "now").

use chrono::{Duration, Utc};
use entity::{finding, membership, organization, scan, scan_finding, target, user};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QueryFilter,
    Set,
};
use uuid::Uuid;

use crate::error::AppResult;
use crate::findings::Severity;

/// (rule, title, severity, CVE, CWE, path or component)
const FINDINGS: &[(&str, &str, Severity, &str, &str, &str)] = &[
    (
        "java.log4shell",
        "Log4j JNDI lookup allows remote code execution",
        Severity::Critical,
        "CVE-2021-44228",
        "CWE-502",
        "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1",
    ),
    (
        "python.sqli",
        "SQL built from request parameters",
        Severity::High,
        "",
        "CWE-89",
        "app/orders/views.py",
    ),
    (
        "js.xss",
        "User input rendered without escaping",
        Severity::High,
        "",
        "CWE-79",
        "web/src/components/Comment.tsx",
    ),
    (
        "openssl.cve-2023-0286",
        "OpenSSL X.400 address type confusion",
        Severity::High,
        "CVE-2023-0286",
        "CWE-843",
        "pkg:apk/alpine/openssl@3.0.7",
    ),
    (
        "kafka.acl-open",
        "Topic readable by any principal (ANONYMOUS ACL)",
        Severity::High,
        "",
        "CWE-284",
        "topic:payments",
    ),
    (
        "kafka.plaintext-listener",
        "Broker listener accepts PLAINTEXT connections",
        Severity::Medium,
        "",
        "CWE-319",
        "listener:9092",
    ),
    (
        "secrets.aws-key",
        "AWS access key committed to the repository",
        Severity::Critical,
        "",
        "CWE-798",
        "deploy/terraform.tfvars",
    ),
    (
        "python.weak-hash",
        "MD5 used for password hashing",
        Severity::Medium,
        "",
        "CWE-328",
        "app/accounts/hashing.py",
    ),
    (
        "docker.root-user",
        "Container runs as root",
        Severity::Medium,
        "",
        "CWE-250",
        "Dockerfile",
    ),
    (
        "ssh.password-auth",
        "SSH allows password authentication",
        Severity::Medium,
        "",
        "CWE-287",
        "/etc/ssh/sshd_config",
    ),
    (
        "http.missing-hsts",
        "Strict-Transport-Security header missing",
        Severity::Low,
        "",
        "CWE-319",
        "https://shop.example.com/",
    ),
    (
        "zlib.cve-2022-37434",
        "zlib inflate heap overflow",
        Severity::Critical,
        "CVE-2022-37434",
        "CWE-787",
        "pkg:apk/alpine/zlib@1.2.12",
    ),
    (
        "kafka.no-quotas",
        "No client quotas configured",
        Severity::Low,
        "",
        "CWE-770",
        "cluster",
    ),
    (
        "info.banner",
        "Server version disclosed in banner",
        Severity::Info,
        "",
        "CWE-200",
        "port:22",
    ),
];

const TARGETS: &[(&str, &str, &str)] = &[
    ("kafka_cluster", "prod-us-east", "kafka-guard"),
    (
        "container_image",
        "registry.example.com/shop/api:1.4",
        "trivy",
    ),
    ("repository", "github.com/example/shop-backend", "semgrep"),
    ("host", "bastion-1", "openscap"),
];

/// Fills an empty installation: the bootstrap owner gets two more orgs, and each org four
/// targets with a scan a week for 90 days. Returns false (and changes nothing) when targets
/// exist already.
///
/// # Errors
/// Only on database failure.
pub async fn seed(db: &DatabaseConnection) -> AppResult<bool> {
    if target::Entity::find().count(db).await? > 0 {
        return Ok(false);
    }
    let Some(owner) = user::Entity::find().one(db).await? else {
        return Ok(false);
    };
    let mut orgs: Vec<Uuid> = organization::Entity::find()
        .filter(organization::Column::Slug.eq("default"))
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    let now = Utc::now();
    for (slug, name) in [("acme-security", "Acme Security"), ("globex", "Globex")] {
        let org = organization::ActiveModel {
            id: Set(Uuid::now_v7()),
            slug: Set(slug.into()),
            name: Set(name.into()),
            created_at: Set(now - Duration::days(120)),
            require_admin_mfa: Set(false),
        }
        .insert(db)
        .await?;
        membership::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org.id),
            user_id: Set(owner.id),
            role: Set("owner".into()),
            created_at: Set(now - Duration::days(120)),
        }
        .insert(db)
        .await?;
        orgs.push(org.id);
    }
    for (o, org_id) in orgs.iter().enumerate() {
        for (t, (kind, name, scanner)) in TARGETS.iter().enumerate() {
            seed_target(db, *org_id, kind, name, scanner, o * 7 + t * 3).await?;
        }
    }
    Ok(true)
}

/// One target with 13 weekly scans; finding `i` is present from week `(i + salt) % 5` until
/// week `8 + (i + salt) % 6`, so some appear, some get fixed, and scores move.
async fn seed_target(
    db: &DatabaseConnection,
    org_id: Uuid,
    kind: &str,
    name: &str,
    scanner: &str,
    salt: usize,
) -> AppResult<()> {
    let now = Utc::now();
    let created = now - Duration::days(91);
    let t = target::ActiveModel {
        id: Set(Uuid::now_v7()),
        org_id: Set(org_id),
        kind: Set(kind.into()),
        name: Set(name.into()),
        labels: Set(serde_json::json!({"env": if salt % 2 == 0 { "prod" } else { "staging" }, "demo": "true"})),
        metadata: Set(if kind == "kafka_cluster" {
            serde_json::json!({"bootstrap_servers": "kafka-1:9093,kafka-2:9093"})
        } else {
            serde_json::json!({})
        }),
        last_scan_at: Set(None),
        last_score: Set(None),
        created_at: Set(created),
        updated_at: Set(created),
    }
    .insert(db)
    .await?;
    let pool: Vec<usize> = (0..FINDINGS.len())
        .filter(|i| (i + salt) % 3 != 0)
        .collect();
    let mut rows: Vec<Option<finding::Model>> = vec![None; FINDINGS.len()];
    for week in 0..13usize {
        let at = now - Duration::days(90 - 7 * week as i64) - Duration::hours((salt % 5) as i64);
        let seen: Vec<usize> = pool
            .iter()
            .copied()
            .filter(|i| (i + salt) % 5 <= week && week < 8 + (i + salt) % 6)
            .collect();
        let s = scan::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(org_id),
            target_id: Set(t.id),
            status: Set("complete".into()),
            source: Set("upload".into()),
            scanner_name: Set(scanner.into()),
            format: Set(Some(
                if kind == "kafka_cluster" || kind == "host" {
                    "native"
                } else {
                    "sarif"
                }
                .into(),
            )),
            scanned_at: Set(at),
            created_at: Set(at),
            started_at: Set(Some(at)),
            finished_at: Set(Some(at + Duration::seconds(3 + (salt % 7) as i64))),
            ..Default::default()
        }
        .insert(db)
        .await?;
        let mut counts = [0i32; 5];
        for &i in &seen {
            let (rule, title, severity, cve, cwe, place) = FINDINGS[i];
            counts[4 - (severity.rank() as usize - 1)] += 1;
            let (row, change) = match rows[i].take() {
                None => {
                    let rule_row = crate::ingest::rules::RuleRow::new(
                        org_id,
                        scanner,
                        rule,
                        None,
                        Some("See the rule's documentation for the fix."),
                        &[cwe.to_string()],
                    );
                    crate::ingest::rules::insert(db, org_id, at, std::slice::from_ref(&rule_row))
                        .await?;
                    let created = finding::ActiveModel {
                        id: Set(Uuid::now_v7()),
                        org_id: Set(org_id),
                        target_id: Set(t.id),
                        scanner: Set(scanner.into()),
                        fingerprint: Set(format!("demo-{rule}")),
                        rule_id: Set(rule.into()),
                        title: Set(title.into()),
                        severity: Set(severity.as_str().into()),
                        cve_ids: Set(if cve.is_empty() {
                            "[]".into()
                        } else {
                            format!("[\"{cve}\"]")
                        }),
                        location_path: Set((!place.starts_with("pkg:")).then(|| place.to_string())),
                        location_line: Set((place.contains('/') && !place.starts_with("pkg:"))
                            .then_some(10 + i as i32 * 7)),
                        component: Set(place.starts_with("pkg:").then(|| place.to_string())),
                        description: Set(format!("{title}. Found by {scanner}.")),
                        rule_ref: Set(Some(rule_row.id)),
                        occurrences: Set(1),
                        status: Set("open".into()),
                        first_seen_at: Set(at),
                        last_seen_at: Set(at),
                        first_scan_id: Set(Some(s.id)),
                        last_scan_id: Set(Some(s.id)),
                        triage_state: Set("untriaged".into()),
                        created_at: Set(at),
                        updated_at: Set(at),
                        ..Default::default()
                    }
                    .insert(db)
                    .await?;
                    (created, "new")
                }
                Some(existing) => {
                    let mut active: finding::ActiveModel = existing.into();
                    active.last_seen_at = Set(at);
                    active.last_scan_id = Set(Some(s.id));
                    (active.update(db).await?, "unchanged")
                }
            };
            scan_finding::ActiveModel {
                scan_id: Set(s.id),
                finding_id: Set(row.id),
                org_id: Set(org_id),
                occurrences: Set(1),
                change: Set(change.into()),
            }
            .insert(db)
            .await?;
            rows[i] = Some(row);
        }
        // Whatever was open and not seen this week is fixed.
        let mut fixed = 0;
        for (i, slot) in rows.iter_mut().enumerate() {
            if let Some(row) = slot
                .as_ref()
                .filter(|r| r.status == "open" && !seen.contains(&i))
            {
                let mut active: finding::ActiveModel = row.clone().into();
                active.status = Set("fixed".into());
                active.fixed_at = Set(Some(at));
                *slot = Some(active.update(db).await?);
                fixed += 1;
            }
        }
        let [critical, high, medium, low, info] = counts;
        let mut active: scan::ActiveModel = s.into();
        active.count_critical = Set(critical);
        active.count_high = Set(high);
        active.count_medium = Set(medium);
        active.count_low = Set(low);
        active.count_info = Set(info);
        active.findings_total = Set(counts.iter().sum());
        active.findings_fixed = Set(fixed);
        active.score = Set(Some(crate::ingest::pipeline::score_from_counts(
            critical.into(),
            high.into(),
            medium.into(),
            low.into(),
        )));
        active.update(db).await?;
    }
    crate::targets::refresh_latest(db, t.id).await
}
