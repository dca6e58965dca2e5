//! Mailing one notification: the work of a `notification_email` job, queued with the
//! notification when a relay is configured and the person wants mail. The event that caused it
//! never waits for the relay; a relay that fails is tried again on the queue's retry schedule
//! (`jobs::RetryPolicy`), and the job fails for good after its last attempt. A worker killed
//! mid-send leaves the job to be claimed again when its lease runs out, so a mail may arrive
//! twice, never not at all while attempts remain.

use entity::{job, membership, notification, user};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use uuid::Uuid;

use crate::app::AppState;
use crate::ingest::jobs::{self, Lease, LeaseError};

/// What is mailed for `n` to the person.
pub fn message(org_name: &str, n: &notification::Model) -> (String, String) {
    let subject = format!("[Rampart] {}", n.title);
    let body = format!(
        "{}\n\n{}\nOrganization: {org_name}\nNotification: /api/v1/notifications/{}\n\n\
         You get this mail because you follow this target in Rampart; choose what notifies you \
         in your notification preferences.\n",
        n.title, n.body, n.id
    );
    (subject, body)
}

/// Why a mail was not sent this time.
enum Outcome {
    /// Sent, or nothing to send any more (the notification or person is gone).
    Done,
    /// The relay failed; try again later.
    Failed(String),
}

async fn attempt(state: &AppState, id: Uuid) -> Result<Outcome, sea_orm::DbErr> {
    let Some(n) = notification::Entity::find_by_id(id).one(&state.db).await? else {
        return Ok(Outcome::Done);
    };
    let Some(user_id) = n.user_id else {
        return Ok(Outcome::Done);
    };
    let Some(person) = user::Entity::find_by_id(user_id).one(&state.db).await? else {
        return Ok(Outcome::Done);
    };
    let member = membership::Entity::find()
        .filter(membership::Column::OrgId.eq(n.org_id))
        .filter(membership::Column::UserId.eq(user_id))
        .count(&state.db)
        .await?
        > 0;
    if !person.is_active || !member {
        return Ok(Outcome::Done);
    }
    let org_name = entity::organization::Entity::find_by_id(n.org_id)
        .one(&state.db)
        .await?
        .map_or_else(String::new, |o| o.name);
    let (subject, body) = message(&org_name, &n);
    match state.mailer.send(&person.email, &subject, body).await {
        Ok(true) => {
            tracing::info!(notification = %n.id, "notification mailed");
            Ok(Outcome::Done)
        }
        Ok(false) => Ok(Outcome::Done),
        Err(err) => Ok(Outcome::Failed(format!("mail not sent: {err:#}"))),
    }
}

/// Runs one `notification_email` job: mails its notification once and records the outcome.
pub async fn run_job(state: &AppState, job: &job::Model, lease: &Lease) {
    let id = job
        .payload
        .get("notification")
        .and_then(|v| v.as_str())
        .and_then(|s| Uuid::parse_str(s).ok());
    let outcome = match id {
        Some(id) => attempt(state, id).await,
        None => Ok(Outcome::Done),
    };
    let recorded: Result<(), LeaseError> = match outcome {
        Ok(Outcome::Done) => jobs::complete(&state.db, lease).await,
        Ok(Outcome::Failed(reason)) => {
            tracing::warn!(job = %job.id, %reason, attempt = job.attempts, "notification mail failed");
            let retry_at =
                jobs::RetryPolicy::of(&state.config).next_run(job.attempts, chrono::Utc::now());
            jobs::fail(&state.db, job, lease, &reason, retry_at).await
        }
        Err(err) => {
            let retry_at =
                jobs::RetryPolicy::of(&state.config).next_run(job.attempts, chrono::Utc::now());
            jobs::fail(&state.db, job, lease, &format!("database: {err}"), retry_at).await
        }
    };
    if let Err(err) = recorded {
        tracing::warn!(error = %err, job = %job.id, "could not record a notification mail; its lease will expire");
    }
}
