//! Webhook delivery benchmark: N events queued for one webhook whose endpoint is a receiver on
//! loopback, delivered by the app's workers through the durable job queue (claim, sign, send,
//! record under the lease), as in production. Reports deliveries per second and the time from
//! each event (its delivery row's creation, in the transaction that would carry the event's
//! cause) to its arrival at the receiver: p50, p95, p99, max.
//!
//! `cargo bench --bench webhooks [-- EVENTS] [--rate R] [--workers W]` (defaults 10000, a
//! burst, 2 workers). With `--rate R` events are queued R per second instead of all at once, to
//! measure latency below saturation. Runs the app in this process on the embedded default
//! (SQLite, local store); `RAMPART_BENCH_DATABASE_URL` names PostgreSQL instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use chrono::Utc;
use rampart::webhooks::events::queue;
use rampart::webhooks::WebhookEventType;
use rampart::{App, Config};
use sea_orm::{EntityTrait, TransactionTrait};
use serde_json::json;

/// Events queued per transaction in a burst.
const BATCH: usize = 500;

fn arg(args: &[String], name: &str) -> Option<u64> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let events = args
        .iter()
        .take_while(|a| !a.starts_with("--"))
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(10_000);
    let rate = arg(&args, "--rate").unwrap_or(0);
    let workers = arg(&args, "--workers").unwrap_or(2) as usize;

    // The receiver: notes when each webhook-id first arrives.
    let arrived: Arc<Mutex<HashMap<String, chrono::DateTime<Utc>>>> = Arc::default();
    let seen = arrived.clone();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap| {
            let seen = seen.clone();
            async move {
                if let Some(id) = headers.get("webhook-id").and_then(|v| v.to_str().ok()) {
                    seen.lock()
                        .unwrap()
                        .entry(id.to_string())
                        .or_insert_with(Utc::now);
                }
                "ok"
            }
        }),
    );
    tokio::spawn(async move { axum::serve(listener, receiver).await });

    let dir = tempfile::tempdir()?;
    let mut config = Config::with_data_dir(dir.path());
    config.database_url = std::env::var("RAMPART_BENCH_DATABASE_URL").ok();
    config.admin_email = Some("bench@rampart.local".into());
    config.admin_password = Some("bench-password-webhooks".into());
    config.workers = workers;
    config.webhook_allow_cidrs = vec!["127.0.0.0/8".parse()?];
    config.webhook_ports = vec![port];
    let backends = rampart::app::open_backends(&config).await?;
    let app = App::build_with(config.clone(), backends).await?;
    let state = app.state().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));

    let org = entity::organization::Entity::find()
        .one(&state.db)
        .await?
        .expect("the bootstrap org");
    let now = Utc::now();
    let hook = entity::webhook::ActiveModel {
        id: sea_orm::Set(uuid::Uuid::now_v7()),
        org_id: sea_orm::Set(org.id),
        url: sea_orm::Set(format!("http://127.0.0.1:{port}/hook")),
        secret: sea_orm::Set(rampart::webhooks::signing::new_secret()),
        events: sea_orm::Set(r#"["scan.completed"]"#.into()),
        active: sea_orm::Set(true),
        created_at: sea_orm::Set(now),
        updated_at: sea_orm::Set(now),
        description: sea_orm::Set(None),
        target_id: sea_orm::Set(None),
        min_severity: sea_orm::Set(None),
        previous_secret: sea_orm::Set(None),
        previous_secret_expires_at: sea_orm::Set(None),
        failing_since: sea_orm::Set(None),
        disabled_reason: sea_orm::Set(None),
    };
    let hook = sea_orm::ActiveModelTrait::insert(hook, &state.db).await?;

    println!(
        "webhooks: {events} events, {}, {workers} workers, {}",
        if rate == 0 {
            "queued at once".to_string()
        } else {
            format!("{rate}/s")
        },
        if config.database_url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    );
    let started = Instant::now();
    let mut created: HashMap<String, chrono::DateTime<Utc>> = HashMap::with_capacity(events);
    let per_batch = if rate == 0 {
        BATCH
    } else {
        (rate as usize / 10).max(1)
    };
    let mut queued = 0;
    while queued < events {
        let tick = Instant::now();
        let txn = state.db.begin().await?;
        for _ in 0..per_batch.min(events - queued) {
            let d = queue(
                &txn,
                &state.config,
                &hook,
                WebhookEventType::Ping,
                json!({"n": queued}),
                Utc::now(),
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            created.insert(d.id.to_string(), d.created_at);
            queued += 1;
        }
        txn.commit().await?;
        state.jobs_wake.notify_waiters();
        if rate > 0 {
            let period = Duration::from_millis(100);
            if let Some(rest) = period.checked_sub(tick.elapsed()) {
                tokio::time::sleep(rest).await;
            }
        }
    }
    let queued_in = started.elapsed();
    loop {
        let n = arrived.lock().unwrap().len();
        if n >= events {
            break;
        }
        if started.elapsed() > Duration::from_secs(3600) {
            anyhow::bail!("only {n} of {events} arrived in an hour");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let elapsed = started.elapsed();
    let arrived = arrived.lock().unwrap().clone();
    let mut latency: Vec<f64> = created
        .iter()
        .filter_map(|(id, at)| Some((*arrived.get(id)? - *at).num_microseconds()? as f64 / 1000.0))
        .collect();
    latency.sort_by(|a, b| a.total_cmp(b));
    let last = arrived.values().max().copied().unwrap_or_else(Utc::now);
    let first_event = created.values().min().copied().unwrap_or_else(Utc::now);
    let span = (last - first_event).num_milliseconds().max(1) as f64 / 1000.0;
    println!(
        "queued in {:.2} s; all delivered in {:.2} s",
        queued_in.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    println!("| events | mode | workers | deliveries/s | p50 ms | p95 ms | p99 ms | max ms |");
    println!("|---:|---|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {events} | {} | {workers} | {:.0} | {:.0} | {:.0} | {:.0} | {:.0} |",
        if rate == 0 {
            "burst".to_string()
        } else {
            format!("{rate}/s")
        },
        events as f64 / span,
        percentile(&latency, 50.0),
        percentile(&latency, 95.0),
        percentile(&latency, 99.0),
        percentile(&latency, 100.0),
    );
    let _ = stop.send(());
    let _ = server.await;
    Ok(())
}
