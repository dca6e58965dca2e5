//! `ingestReport`: the GraphQL multipart upload, ending in the same service call as
//! `POST /api/v1/ingest`.

use async_graphql::{Context, Object, Result, Upload};
use tokio_util::io::ReaderStream;

use super::upload::{self, UploadRequest};
use super::ReportFormat;
use crate::error::{AppError, ErrorCode};
use crate::graphql::{caller, state};
use crate::scans::Scan;
use crate::targets::TargetKind;

#[derive(Default)]
pub struct IngestMutation;

#[Object]
impl IngestMutation {
    /// Uploads a report (GraphQL multipart request) and queues its scan; same rules as
    /// `POST /api/v1/ingest`. A repeated `idempotencyKey` within 24 hours returns the first scan.
    #[allow(clippy::too_many_arguments)]
    async fn ingest_report(
        &self,
        ctx: &Context<'_>,
        file: Upload,
        #[graphql(desc = "Target name; read from the report when absent.")] target: Option<String>,
        target_kind: Option<TargetKind>,
        #[graphql(
            desc = "`native`, `sarif`, `cyclonedx`, `trivy` or `detect_secrets`; detected when absent."
        )]
        format: Option<String>,
        scanner: Option<String>,
        policy_tier: Option<String>,
        idempotency_key: Option<String>,
    ) -> Result<Scan> {
        let caller = caller(ctx)?;
        let value = file.value(ctx)?;
        let format = format
            .as_deref()
            .map(|f| {
                ReportFormat::parse_name(f).ok_or_else(|| AppError::Client {
                    code: ErrorCode::UnsupportedFormat,
                    message: format!(
                        "unsupported format {f:?}; expected native, sarif, cyclonedx, trivy or detect_secrets"
                    ),
                    details: Vec::new(),
                })
            })
            .transpose()?;
        let request = UploadRequest {
            target,
            target_kind,
            format,
            scanner,
            policy_tier,
            idempotency_key,
            content_length: value.size().ok(),
        };
        // The multipart layer spooled the file to disk; stream it from there.
        let file = tokio::fs::File::from_std(value.content);
        let body = Box::pin(ReaderStream::with_capacity(file, 64 * 1024));
        Ok(upload::accept(caller, state(ctx), request, body)
            .await?
            .scan)
    }
}
