//! `rampart upload FILE`: stream a report to a server, then follow its scan to the verdict.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tokio_util::io::ReaderStream;

use super::follow::{follow, Server, ServerArgs};

/// Options of `rampart upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The report to upload (any supported format).
    pub file: PathBuf,
    #[command(flatten)]
    pub server: ServerArgs,
    /// Target name (read from the report when absent).
    #[arg(long)]
    pub target: Option<String>,
    /// Target kind, e.g. `repository`, `container_image`, `kafka_cluster`.
    #[arg(long)]
    pub kind: Option<String>,
    /// Report format (`native`, `sarif`, `cyclonedx`, `trivy`); detected when absent.
    #[arg(long)]
    pub format: Option<String>,
    /// Follow the scan live until it finishes (the default; see `--no-wait`).
    #[arg(long, conflicts_with = "no_wait")]
    pub follow: bool,
    /// Return once the report is queued instead of following the scan.
    #[arg(long)]
    pub no_wait: bool,
}

/// Uploads and, unless told not to, follows the scan; fails when the scan does.
///
/// # Errors
/// When the upload is refused, or the scan cannot be followed or does not complete.
pub async fn run(args: UploadArgs) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(&args.file)
        .await
        .with_context(|| format!("cannot open {}", args.file.display()))?;
    let size = file.metadata().await?.len();
    let bar = ProgressBar::new(size);
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} uploading [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    let counter = bar.clone();
    let body = ReaderStream::with_capacity(file, 256 * 1024).inspect(move |chunk| {
        if let Ok(bytes) = chunk {
            counter.inc(bytes.len() as u64);
        }
    });
    let server = Server::new(&args.server)?;
    let mut query: Vec<(&str, &str)> = Vec::new();
    for (name, value) in [
        ("target", &args.target),
        ("target_kind", &args.kind),
        ("format", &args.format),
    ] {
        if let Some(value) = value {
            query.push((name, value));
        }
    }
    let res = server
        .request(reqwest::Method::POST, "/api/v1/ingest")
        .query(&query)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .with_context(|| format!("cannot reach {}", server.base()))?;
    bar.finish_and_clear();
    let status = res.status();
    let answer: Value = res.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "upload refused ({status}): {}",
            answer["error"].as_str().unwrap_or("no details")
        );
    }
    let id = answer["data"]["id"]
        .as_str()
        .context("the server answered without a scan id")?
        .to_string();
    println!("scan {id} queued");
    if args.no_wait {
        return Ok(());
    }
    follow(&server, &id).await
}
