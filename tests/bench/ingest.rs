//! Ingest benchmark: synthetic SARIF reports of N results through the real upload and
//! processing path (object store, parser, batch matching), first ingest and identical re-ingest,
//! on SQLite and, when `RAMPART_BENCH_DATABASE_URL` names a PostgreSQL server, on PostgreSQL.
//!
//! `cargo bench --bench ingest -- 10000 100000 1000000` (sizes optional). Prints a Markdown
//! table for docs/benchmarks.md.

use std::io::BufWriter;
use std::time::Instant;

use rampart::context::{Actor, Ctx, RequestMeta, Role};
use rampart::ingest::synthetic::{write_sarif, SyntheticResult};
use rampart::ingest::{pipeline, upload};
use rampart::{App, AppState, Config};
use sea_orm::{ConnectionTrait, Database, EntityTrait};
use tokio_util::io::ReaderStream;

fn kib(field: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|n| n.parse().ok()))
        })
        .unwrap_or(0)
}

async fn state_for(database_url: Option<String>, dir: &std::path::Path) -> AppState {
    let mut config = Config::with_data_dir(dir);
    config.database_url = database_url;
    config.admin_email = Some("bench@rampart.local".into());
    config.admin_password = Some("bench-password".into());
    let app = App::build(config).await.expect("app");
    app.state().clone()
}

async fn owner_ctx(state: &AppState) -> Ctx {
    let org = entity::organization::Entity::find()
        .one(&state.db)
        .await
        .unwrap()
        .unwrap();
    let user = entity::user::Entity::find()
        .one(&state.db)
        .await
        .unwrap()
        .unwrap();
    Ctx {
        actor: Actor::User {
            user_id: user.id,
            session_id: uuid::Uuid::nil(),
            email: user.email,
            role: Role::Owner,
        },
        org_id: org.id,
        meta: RequestMeta::internal("bench"),
        mfa_enrolment_required: false,
    }
}

/// One ingest: upload from disk, then process; returns seconds and peak RSS growth (MiB).
async fn ingest_once(state: &AppState, ctx: &Ctx, report: &std::path::Path) -> (f64, f64, i64) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let base = kib("VmRSS:");
    let started = Instant::now();
    let file = tokio::fs::File::open(report).await.unwrap();
    let body = Box::pin(ReaderStream::with_capacity(file, 256 * 1024));
    let request = upload::UploadRequest {
        target: Some("bench-target".into()),
        target_kind: Some(rampart::targets::TargetKind::Repository),
        format: Some(rampart::ingest::ReportFormat::Sarif),
        ..Default::default()
    };
    let accepted = upload::accept(ctx, state, request, body)
        .await
        .expect("accepted");
    // The bench is the only worker: it claims the job the upload queued, as a worker would.
    let job = rampart::ingest::jobs::claim(&state.db, "bench", chrono::Duration::minutes(30))
        .await
        .expect("claim")
        .expect("a queued job");
    let lease = rampart::ingest::jobs::Lease::of(&job);
    pipeline::process(state, accepted.scan.id, &lease)
        .await
        .expect("processed");
    rampart::ingest::jobs::complete(&state.db, &lease)
        .await
        .expect("job completed");
    let seconds = started.elapsed().as_secs_f64();
    let scan = entity::scan::Entity::find_by_id(accepted.scan.id)
        .one(&state.db)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(scan.status, "complete", "{:?}", scan.error);
    let peak = kib("VmHWM:").saturating_sub(base) as f64 / 1024.0;
    (seconds, peak, i64::from(scan.findings_new))
}

/// The format layer alone (no database, no store): the ceiling for end-to-end throughput.
fn parse_only(report: &std::path::Path) -> f64 {
    let started = Instant::now();
    let mut open = || -> std::io::Result<Box<dyn std::io::Read + Send>> {
        Ok(Box::new(std::io::BufReader::new(std::fs::File::open(
            report,
        )?)))
    };
    let mut count = 0u64;
    let mut sink = |_f: rampart::ingest::NormalizedFinding| {
        count += 1;
        Ok(())
    };
    rampart::ingest::parse_report(
        Some(rampart::ingest::ReportFormat::Sarif),
        &mut open,
        &mut sink,
    )
    .expect("parses");
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    // The pipeline logs where each scan's time went ("scan processed"); stderr keeps the table
    // on stdout clean.
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_env_filter("rampart::ingest=info")
        .init();
    let mut sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    if sizes.is_empty() {
        sizes = vec![10_000, 100_000];
    }
    let postgres = std::env::var("RAMPART_BENCH_DATABASE_URL").ok();
    println!("| backend | results | report MB | first ingest s | findings/s | peak RSS +MiB | re-ingest s | findings/s | peak RSS +MiB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for &n in &sizes {
        let dir = tempfile::tempdir().unwrap();
        let report = dir.path().join("report.sarif");
        {
            let mut out = BufWriter::new(std::fs::File::create(&report).unwrap());
            write_sarif(&mut out, "semgrep", (0..n).map(SyntheticResult::numbered)).unwrap();
        }
        let mb = std::fs::metadata(&report).unwrap().len() as f64 / 1e6;
        let parse_s = parse_only(&report);
        eprintln!(
            "parse only, {n} results: {parse_s:.2} s, {:.0} results/s",
            n as f64 / parse_s
        );
        let mut backends: Vec<(&str, Option<String>)> = vec![("sqlite", None)];
        if let Some(admin) = &postgres {
            let name = format!("rampart_bench_{}", uuid::Uuid::new_v4().simple());
            let conn = Database::connect(admin).await.expect("postgres");
            conn.execute_unprepared(&format!("CREATE DATABASE \"{name}\""))
                .await
                .unwrap();
            let base = admin.rsplit_once('/').unwrap().0;
            backends.push(("postgres", Some(format!("{base}/{name}"))));
        }
        for (label, url) in backends {
            let data = tempfile::tempdir().unwrap();
            let state = state_for(url, data.path()).await;
            let ctx = owner_ctx(&state).await;
            let (first_s, first_peak, new) = ingest_once(&state, &ctx, &report).await;
            assert_eq!(new as u64, n, "every result became a new finding");
            let (again_s, again_peak, again_new) = ingest_once(&state, &ctx, &report).await;
            assert_eq!(again_new, 0, "re-ingest finds nothing new");
            println!(
                "| {label} | {n} | {mb:.0} | {first_s:.1} | {:.0} | {first_peak:.0} | {again_s:.1} | {:.0} | {again_peak:.0} |",
                n as f64 / first_s,
                n as f64 / again_s
            );
        }
    }
}
