//! Sending one delivery: the work of a `webhook` job. The URL is checked by the SSRF guard
//! again (DNS may have changed since the webhook was saved) and the connection pinned to the
//! checked addresses; redirects are not followed. The outcome, the delivery log and the job's
//! next state are written in one transaction fenced by the job's lease, so a worker that lost
//! its job writes nothing. A worker killed mid-send leaves the job to be claimed again when its
//! lease runs out: the receiver may see the delivery twice, with the same `webhook-id`.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use entity::{job, webhook, webhook_attempt, webhook_delivery};
use rand::Rng;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use uuid::Uuid;

use super::guard::{Destination, Guard};
use super::signing;
use crate::app::AppState;
use crate::audit::{self, AuditEntry};
use crate::context::RequestMeta;
use crate::ingest::jobs::{self, Lease, LeaseError};

/// At most this much of an answer's body is kept in the delivery log.
pub const EXCERPT_BYTES: usize = 1024;

/// What one attempt came to.
#[derive(Debug, Default)]
struct Attempt {
    status: Option<u16>,
    latency_ms: Option<i32>,
    excerpt: Option<String>,
    error: Option<String>,
}

/// Why recording an attempt stopped.
#[derive(Debug)]
enum Failure {
    Lease(LeaseError),
    Db(sea_orm::DbErr),
    App(crate::error::AppError),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Lease(err) => write!(f, "{err}"),
            Self::Db(err) => write!(f, "database: {err}"),
            Self::App(err) => write!(f, "{err:?}"),
        }
    }
}

impl From<LeaseError> for Failure {
    fn from(err: LeaseError) -> Self {
        Self::Lease(err)
    }
}

impl From<sea_orm::DbErr> for Failure {
    fn from(err: sea_orm::DbErr) -> Self {
        Self::Db(err)
    }
}

impl From<crate::error::AppError> for Failure {
    fn from(err: crate::error::AppError) -> Self {
        Self::App(err)
    }
}

/// Runs one `webhook` job: sends its delivery once and records the outcome.
pub async fn run_job(state: &AppState, job: &job::Model, lease: &Lease) {
    let delivery_id = job
        .payload
        .get("delivery")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok());
    let outcome = match delivery_id {
        Some(id) => attempt(state, job, lease, id).await,
        None => jobs::complete(&state.db, lease).await.map_err(Into::into),
    };
    if let Err(err) = outcome {
        tracing::warn!(error = %err, job = %job.id, "could not record a webhook delivery; its lease will expire");
    }
}

async fn attempt(
    state: &AppState,
    job: &job::Model,
    lease: &Lease,
    id: Uuid,
) -> Result<(), Failure> {
    let delivery = webhook_delivery::Entity::find_by_id(id)
        .one(&state.db)
        .await?;
    let hook = match &delivery {
        Some(d) => {
            webhook::Entity::find_by_id(d.webhook_id)
                .one(&state.db)
                .await?
        }
        None => None,
    };
    let (Some(delivery), Some(hook)) = (delivery, hook) else {
        // Deleted with its webhook meanwhile: nothing to send.
        jobs::complete(&state.db, lease).await?;
        return Ok(());
    };
    let sent = if hook.active {
        send(state, &hook, &delivery).await
    } else {
        Attempt {
            error: Some("the webhook is disabled".into()),
            ..Attempt::default()
        }
    };
    record(state, job, lease, &hook, delivery, sent).await
}

/// The secrets that sign now: the current one, and the previous one during its overlap.
fn live_secrets(hook: &webhook::Model, now: DateTime<Utc>) -> Vec<&str> {
    let mut secrets = vec![hook.secret.as_str()];
    if let (Some(previous), Some(until)) = (&hook.previous_secret, hook.previous_secret_expires_at)
    {
        if until > now {
            secrets.push(previous.as_str());
        }
    }
    secrets
}

/// An HTTP client that connects only to `dest`'s checked addresses and follows no redirect.
fn client_for(dest: &Destination, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("Rampart-Webhooks/", env!("CARGO_PKG_VERSION")));
    if let Some(host) = &dest.host {
        builder = builder.resolve_to_addrs(host, &dest.addrs);
    }
    builder.build()
}

/// The error with its causes, as one line.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

async fn send(
    state: &AppState,
    hook: &webhook::Model,
    delivery: &webhook_delivery::Model,
) -> Attempt {
    let dest = match Guard::of(&state.config).check(&hook.url).await {
        Ok(dest) => dest,
        Err(message) => {
            return Attempt {
                error: Some(format!("refused: the URL {message}")),
                ..Attempt::default()
            }
        }
    };
    let timeout = Duration::from_millis(state.config.webhook_timeout_ms);
    let client = match client_for(&dest, timeout) {
        Ok(client) => client,
        Err(err) => {
            return Attempt {
                error: Some(describe(&err)),
                ..Attempt::default()
            }
        }
    };
    let now = Utc::now();
    let timestamp = now.timestamp();
    let msg_id = delivery.id.to_string();
    let signature = signing::signature_header(
        &live_secrets(hook, now),
        &msg_id,
        timestamp,
        delivery.payload.as_bytes(),
    );
    let started = Instant::now();
    let response = client
        .post(dest.url.clone())
        .header("content-type", "application/json")
        .header("webhook-id", &msg_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature)
        .body(delivery.payload.clone())
        .send()
        .await;
    let mut attempt = Attempt::default();
    match response {
        Ok(mut response) => {
            attempt.status = Some(response.status().as_u16());
            let mut excerpt = Vec::new();
            loop {
                match response.chunk().await {
                    Ok(Some(chunk)) => {
                        let room = EXCERPT_BYTES - excerpt.len();
                        excerpt.extend_from_slice(&chunk[..chunk.len().min(room)]);
                        if excerpt.len() >= EXCERPT_BYTES {
                            break;
                        }
                    }
                    Ok(None) => break,
                    Err(err) => {
                        attempt.error = Some(describe(&err));
                        break;
                    }
                }
            }
            if !excerpt.is_empty() {
                attempt.excerpt = Some(String::from_utf8_lossy(&excerpt).into_owned());
            }
        }
        Err(err) => attempt.error = Some(describe(&err)),
    }
    attempt.latency_ms = Some(i32::try_from(started.elapsed().as_millis()).unwrap_or(i32::MAX));
    attempt
}

/// When a delivery whose `attempts`-th attempt failed is tried again: the configured delay
/// (the Standard Webhooks schedule by default), drawn within ±20 % so endpoints that failed
/// together are not retried together.
pub fn retry_at(
    schedule: &[u64],
    attempts: i32,
    now: DateTime<Utc>,
    rng: &mut impl Rng,
) -> DateTime<Utc> {
    let index = usize::try_from(attempts.max(1) - 1).unwrap_or(0);
    let secs = schedule
        .get(index)
        .or(schedule.last())
        .copied()
        .unwrap_or(0);
    let ms = i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2);
    let jittered = if ms == 0 {
        0
    } else {
        rng.gen_range(ms * 4 / 5..=ms * 6 / 5)
    };
    now + chrono::Duration::milliseconds(jittered)
}

/// Disables `hook` for `reason` (in the caller's transaction), says so in the org's audit log
/// and tells the org's owners and admins; returns their notifications, to publish once the
/// transaction commits.
async fn disable(
    state: &AppState,
    txn: &impl sea_orm::ConnectionTrait,
    hook: &webhook::Model,
    reason: &str,
) -> Result<Vec<crate::notifications::events::Added>, Failure> {
    webhook::Entity::update_many()
        .col_expr(webhook::Column::Active, Expr::value(false))
        .col_expr(
            webhook::Column::DisabledReason,
            Expr::value(Some(reason.to_string())),
        )
        .col_expr(webhook::Column::UpdatedAt, Expr::value(Utc::now()))
        .filter(webhook::Column::Id.eq(hook.id))
        .exec(txn)
        .await?;
    let mut entry = AuditEntry::anonymous(
        &RequestMeta::internal("webhooks"),
        hook.org_id,
        None,
        "webhook.disable",
    )
    .with_details(serde_json::json!({"reason": reason, "url": hook.url}));
    entry.actor_label = "rampart".into();
    entry.resource_type = "webhook";
    entry.resource_id = Some(hook.id.to_string());
    audit::record(txn, entry).await?;
    Ok(crate::notifications::events::webhook_disabled(txn, state, hook, reason).await?)
}

async fn record(
    state: &AppState,
    job: &job::Model,
    lease: &Lease,
    hook: &webhook::Model,
    delivery: webhook_delivery::Model,
    sent: Attempt,
) -> Result<(), Failure> {
    let now = Utc::now();
    let ok = sent.status.is_some_and(|s| (200..300).contains(&s));
    let gone = sent.status == Some(410);
    let error = match (&sent.error, sent.status) {
        (Some(error), _) => Some(error.clone()),
        (None, Some(status)) if !ok => Some(format!("the endpoint answered HTTP {status}")),
        _ => None,
    };
    let txn = crate::db::begin_write(&state.db).await?;
    lease.fence(&txn).await?;
    let mut told = Vec::new();
    let mut row: webhook_delivery::ActiveModel = delivery.clone().into();
    if hook.active {
        webhook_attempt::ActiveModel {
            id: Set(Uuid::now_v7()),
            org_id: Set(delivery.org_id),
            delivery_id: Set(delivery.id),
            attempted_at: Set(now),
            status_code: Set(sent.status.map(i32::from)),
            latency_ms: Set(sent.latency_ms),
            response_excerpt: Set(sent.excerpt.clone()),
            error: Set(error.clone()),
        }
        .insert(&txn)
        .await?;
        row.attempt = Set(delivery.attempt + 1);
        row.status_code = Set(sent.status.map(i32::from));
        row.latency_ms = Set(sent.latency_ms);
        row.response_excerpt = Set(sent.excerpt);
        row.last_attempt_at = Set(Some(now));
    }
    row.error = Set(error.clone());
    let reason = error.as_deref().unwrap_or("failed");
    if ok {
        row.status = Set("delivered".into());
        row.delivered_at = Set(Some(now));
        webhook::Entity::update_many()
            .col_expr(
                webhook::Column::FailingSince,
                Expr::value(Option::<DateTime<Utc>>::None),
            )
            .filter(webhook::Column::Id.eq(hook.id))
            .exec(&txn)
            .await?;
        jobs::complete(&txn, lease).await?;
    } else if !hook.active {
        row.status = Set("failed".into());
        jobs::complete(&txn, lease).await?;
    } else if gone {
        row.status = Set("failed".into());
        told = disable(state, &txn, hook, "the endpoint answered 410 Gone").await?;
        jobs::complete(&txn, lease).await?;
    } else {
        let failing_since = hook.failing_since.unwrap_or(now);
        if hook.failing_since.is_none() {
            webhook::Entity::update_many()
                .col_expr(webhook::Column::FailingSince, Expr::value(Some(now)))
                .filter(webhook::Column::Id.eq(hook.id))
                .filter(webhook::Column::FailingSince.is_null())
                .exec(&txn)
                .await?;
        }
        let days = state.config.webhook_disable_after_days;
        let limit = chrono::Duration::days(i64::try_from(days).unwrap_or(i64::MAX / 86_400_000));
        if now - failing_since >= limit {
            row.status = Set("failed".into());
            told = disable(
                state,
                &txn,
                hook,
                &format!("deliveries failed for {days} days without a success"),
            )
            .await?;
            jobs::complete(&txn, lease).await?;
        } else {
            let next = if jobs::exhausted(job) {
                row.status = Set("failed".into());
                now
            } else {
                retry_at(
                    &state.config.webhook_retry_schedule_secs,
                    job.attempts,
                    now,
                    &mut rand::thread_rng(),
                )
            };
            jobs::fail(&txn, job, lease, reason, next).await?;
        }
    }
    row.update(&txn).await?;
    txn.commit().await?;
    crate::notifications::events::publish(state.bus.as_ref(), &told).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn retries_follow_the_schedule_within_a_fifth_either_way() {
        let schedule = [5, 300, 1800, 7200, 18000, 36000, 36000];
        let now = Utc::now();
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        for (n, secs) in schedule.iter().enumerate() {
            let attempts = i32::try_from(n + 1).unwrap();
            let mut seen = std::collections::HashSet::new();
            for _ in 0..100 {
                let delay = (retry_at(&schedule, attempts, now, &mut rng) - now).num_milliseconds();
                let ms = i64::try_from(*secs).unwrap() * 1000;
                assert!(
                    delay >= ms * 4 / 5 && delay <= ms * 6 / 5,
                    "{delay} vs {ms}"
                );
                seen.insert(delay);
            }
            assert!(seen.len() > 50, "jittered");
        }
        assert_eq!(retry_at(&[0, 0], 1, now, &mut rng), now);
    }

    /// A name the system cannot resolve reaches the address the guard resolved it to: the
    /// client connects to the checked addresses and looks nothing up again.
    #[tokio::test]
    async fn the_client_connects_to_the_checked_addresses_without_a_second_lookup() {
        use std::sync::Arc;

        struct Pinned(std::net::IpAddr);
        #[async_trait::async_trait]
        impl super::super::guard::Resolve for Pinned {
            async fn resolve(&self, _: &str, _: u16) -> std::io::Result<Vec<std::net::IpAddr>> {
                Ok(vec![self.0])
            }
        }

        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/hook", axum::routing::post(|| async { "pinned" }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        let guard = Guard::new(
            vec!["127.0.0.0/8".parse().unwrap()],
            vec![port],
            Arc::new(Pinned("127.0.0.1".parse().unwrap())),
        );
        let url = format!("http://rampart-test-only.invalid:{port}/hook");
        let dest = guard.check(&url).await.unwrap();
        let client = client_for(&dest, Duration::from_secs(10)).unwrap();
        let answer = client.post(dest.url.clone()).send().await.unwrap();
        assert_eq!(answer.text().await.unwrap(), "pinned");
    }

    /// Redirects are answers, not directions: the 3xx is recorded, its target not requested.
    #[tokio::test]
    async fn redirects_are_not_followed() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;

        let followed = Arc::new(AtomicBool::new(false));
        let seen = followed.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new()
            .route(
                "/hook",
                axum::routing::post(|| async {
                    (
                        axum::http::StatusCode::TEMPORARY_REDIRECT,
                        [("location", "/elsewhere")],
                    )
                }),
            )
            .route(
                "/elsewhere",
                axum::routing::post(move || {
                    seen.store(true, Ordering::SeqCst);
                    async { "followed" }
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await });
        let guard = Guard::new(
            vec!["127.0.0.0/8".parse().unwrap()],
            vec![port],
            Arc::new(super::super::guard::SystemResolver),
        );
        let dest = guard
            .check(&format!("http://127.0.0.1:{port}/hook"))
            .await
            .unwrap();
        let client = client_for(&dest, Duration::from_secs(10)).unwrap();
        let answer = client.post(dest.url.clone()).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 307);
        assert!(!followed.load(Ordering::SeqCst));
    }
}
