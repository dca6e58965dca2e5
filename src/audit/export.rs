//! The audit log as a file (CSV or a JSON array), streamed: rows are read a chunk at a time
//! in the list's order (newest first) and written out as they come, so an export of any size
//! holds one chunk in memory.

use std::io;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use entity::audit_event;
use sea_orm::{ColumnTrait, Condition, DatabaseConnection, QueryFilter, QueryOrder, QuerySelect};
use serde::Serialize;
use uuid::Uuid;

use super::AuditFilter;
use crate::app::AppState;
use crate::context::{Ctx, Permission};
use crate::error::{AppError, AppResult};
use crate::store::ByteStream;

/// Rows read per query.
const CHUNK: u64 = 500;

/// The columns of an export, in order (CSV header, JSON keys).
const COLUMNS: [&str; 11] = [
    "id",
    "created_at",
    "actor",
    "actor_user_id",
    "actor_api_key_id",
    "action",
    "resource_type",
    "resource_id",
    "ip",
    "request_id",
    "details",
];

/// The file an export writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    /// RFC 4180 CSV with a header row; `details` as JSON text.
    Csv,
    /// One JSON array of events, as `GET /api/v1/audit-events` shows them.
    Json,
}

impl ExportFormat {
    /// # Errors
    /// `BAD_REQUEST` for anything but `csv` or `json`.
    pub fn parse(value: &str) -> AppResult<Self> {
        match value {
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(AppError::Client {
                code: crate::error::ErrorCode::BadRequest,
                message: format!("format: unknown format {other:?}; expected csv or json"),
                details: vec![crate::error::FieldError {
                    field: "format".into(),
                    message: "must be one of csv, json".into(),
                }],
            }),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Self::Csv => "text/csv; charset=utf-8",
            Self::Json => "application/json",
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::Json => "json",
        }
    }

    fn head(self, out: &mut String) {
        match self {
            Self::Csv => {
                out.push_str(&COLUMNS.join(","));
                out.push_str("\r\n");
            }
            Self::Json => out.push('['),
        }
    }

    fn row(self, out: &mut String, row: audit_event::Model, first: bool) {
        let row = ExportRow::from(row);
        match self {
            Self::Csv => {
                let details = row.details.as_ref().map(|d| d.to_string());
                let fields = [
                    Some(row.id.to_string()),
                    Some(row.created_at.to_rfc3339()),
                    Some(row.actor),
                    row.actor_user_id.map(|id| id.to_string()),
                    row.actor_api_key_id.map(|id| id.to_string()),
                    Some(row.action),
                    Some(row.resource_type),
                    row.resource_id,
                    row.ip,
                    row.request_id,
                    details,
                ];
                for (i, field) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    csv_field(out, field.as_deref().unwrap_or(""));
                }
                out.push_str("\r\n");
            }
            Self::Json => {
                if !first {
                    out.push(',');
                }
                out.push('\n');
                // Plain data with string keys: serializing it cannot fail.
                out.push_str(&serde_json::to_string(&row).unwrap_or_default());
            }
        }
    }

    fn tail(self, out: &mut String) {
        if self == Self::Json {
            out.push_str("\n]\n");
        }
    }
}

/// One event as exported (the REST list's spelling).
#[derive(Serialize)]
struct ExportRow {
    id: Uuid,
    created_at: DateTime<Utc>,
    actor: String,
    actor_user_id: Option<Uuid>,
    actor_api_key_id: Option<Uuid>,
    action: String,
    resource_type: String,
    resource_id: Option<String>,
    ip: Option<String>,
    request_id: Option<String>,
    details: Option<serde_json::Value>,
}

impl From<audit_event::Model> for ExportRow {
    fn from(m: audit_event::Model) -> Self {
        Self {
            id: m.id,
            created_at: m.created_at,
            actor: m.actor_label,
            actor_user_id: m.actor_user_id,
            actor_api_key_id: m.actor_api_key_id,
            action: m.action,
            resource_type: m.resource_type,
            resource_id: m.resource_id,
            ip: m.ip,
            request_id: m.request_id,
            details: m.details.and_then(|d| serde_json::from_str(&d).ok()),
        }
    }
}

/// Writes one CSV field: quoted when it holds a separator, a quote or a line break; a leading
/// `=`, `+`, `-`, `@`, tab or carriage return is prefixed with `'` so that a spreadsheet opening
/// the file shows the text instead of running it as a formula.
fn csv_field(out: &mut String, value: &str) {
    let guard = value.starts_with(['=', '+', '-', '@', '\t', '\r']);
    let quote = guard || value.contains([',', '"', '\n', '\r']);
    if quote {
        out.push('"');
    }
    if guard {
        out.push('\'');
    }
    for c in value.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    if quote {
        out.push('"');
    }
}

/// Where the next chunk starts.
enum Step {
    Start,
    /// After the event with this creation time and id (the list's order is by both, descending).
    After(DateTime<Utc>, Uuid),
    Done,
}

/// The org's audit events that pass `filter`, newest first, as a stream of `format` bytes
/// (admins). A database failure part-way ends the stream with an error, so the client sees a
/// broken download rather than a short file that looks whole.
///
/// # Errors
/// `FORBIDDEN` below admin.
pub fn export(
    ctx: &Ctx,
    state: &AppState,
    filter: AuditFilter,
    format: ExportFormat,
) -> AppResult<ByteStream> {
    ctx.require(Permission::Admin)?;
    let db = state.db.clone();
    let org_id = ctx.org_id;
    let stream = futures::stream::unfold(Step::Start, move |step| {
        let db = db.clone();
        let filter = filter.clone();
        async move {
            let first = matches!(step, Step::Start);
            let after = match step {
                Step::Done => return None,
                Step::Start => None,
                Step::After(at, id) => Some((at, id)),
            };
            match chunk(&db, &filter, org_id, after).await {
                Ok(rows) => {
                    let next = match rows.last() {
                        Some(last) if rows.len() as u64 == CHUNK => {
                            Step::After(last.created_at, last.id)
                        }
                        _ => Step::Done,
                    };
                    let mut out = String::new();
                    if first {
                        format.head(&mut out);
                    }
                    for (i, row) in rows.into_iter().enumerate() {
                        format.row(&mut out, row, first && i == 0);
                    }
                    if matches!(next, Step::Done) {
                        format.tail(&mut out);
                    }
                    Some((Ok(Bytes::from(out)), next))
                }
                Err(err) => {
                    tracing::warn!(%err, "audit export stopped: database error");
                    Some((Err(io::Error::other(err)), Step::Done))
                }
            }
        }
    });
    Ok(Box::pin(stream))
}

/// The next chunk of events after `after` (from the newest when `None`).
async fn chunk(
    db: &DatabaseConnection,
    filter: &AuditFilter,
    org_id: Uuid,
    after: Option<(DateTime<Utc>, Uuid)>,
) -> Result<Vec<audit_event::Model>, sea_orm::DbErr> {
    let mut query = filter.query(org_id);
    if let Some((at, id)) = after {
        query = query.filter(
            Condition::any()
                .add(audit_event::Column::CreatedAt.lt(at))
                .add(
                    Condition::all()
                        .add(audit_event::Column::CreatedAt.eq(at))
                        .add(audit_event::Column::Id.lt(id)),
                ),
        );
    }
    query
        .order_by_desc(audit_event::Column::CreatedAt)
        .order_by_desc(audit_event::Column::Id)
        .limit(CHUNK)
        .all(db)
        .await
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    fn field(v: &str) -> String {
        let mut out = String::new();
        csv_field(&mut out, v);
        out
    }

    #[test]
    fn csv_fields_are_quoted_and_guarded() {
        assert_eq!(field("plain"), "plain");
        assert_eq!(field("a,b"), "\"a,b\"");
        assert_eq!(field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(field("two\nlines"), "\"two\nlines\"");
        assert_eq!(field("=SUM(A1)"), "\"'=SUM(A1)\"");
        assert_eq!(field("@cmd"), "\"'@cmd\"");
    }
}
