//! `rampart upload FILE`: stream a report to a server, show progress, wait for the verdict.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{json, Value};
use tokio_util::io::ReaderStream;

/// Options of `rampart upload`.
#[derive(Debug, Args)]
pub struct UploadArgs {
    /// The report to upload (any supported format).
    pub file: PathBuf,
    /// Base URL of the Rampart server.
    #[arg(long, env = "RAMPART_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// API key with write scope.
    #[arg(long, env = "RAMPART_API_KEY", hide_env_values = true)]
    pub api_key: String,
    /// Target name (read from the report when absent).
    #[arg(long)]
    pub target: Option<String>,
    /// Target kind, e.g. `repository`, `container_image`, `kafka_cluster`.
    #[arg(long)]
    pub kind: Option<String>,
    /// Report format (`native`, `sarif`, `cyclonedx`, `trivy`); detected when absent.
    #[arg(long)]
    pub format: Option<String>,
    /// Return once the report is queued instead of waiting for the scan to finish.
    #[arg(long)]
    pub no_wait: bool,
}

/// Uploads and, unless told not to, waits for the scan; fails when the scan does.
///
/// # Errors
/// When the upload is refused or the scan does not complete.
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
    let api = args.api.trim_end_matches('/');
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
    let http = reqwest::Client::new();
    let res = http
        .post(format!("{api}/api/v1/ingest"))
        .query(&query)
        .header("x-api-key", &args.api_key)
        .header(reqwest::header::CONTENT_LENGTH, size)
        .body(reqwest::Body::wrap_stream(body))
        .send()
        .await
        .with_context(|| format!("cannot reach {api}"))?;
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
    let scan = wait(&http, api, &args.api_key, &id).await?;
    print_summary(&scan);
    match scan["status"].as_str() {
        Some("COMPLETE") => Ok(()),
        Some(other) => bail!(
            "scan {id} ended {}: {}",
            other.to_lowercase(),
            scan["error"].as_str().unwrap_or("")
        ),
        None => bail!("scan {id} has no status"),
    }
}

/// Polls the scan until it has finished, showing its phase.
async fn wait(http: &reqwest::Client, api: &str, key: &str, id: &str) -> anyhow::Result<Value> {
    let spinner = ProgressBar::new(100);
    spinner.set_style(
        ProgressStyle::with_template("{spinner} {msg} [{bar:40}] {pos}%")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let query = "query($id: UUID!) { scan(id: $id) { id status error score findingsNew findingsFixed counts { critical high medium low info total } progress { phase percent } } }";
    loop {
        let res: Value = http
            .post(format!("{api}/graphql"))
            .header("x-api-key", key)
            .json(&json!({"query": query, "variables": {"id": id}}))
            .send()
            .await?
            .json()
            .await?;
        if let Some(error) = res["errors"][0]["message"].as_str() {
            bail!("cannot follow scan {id}: {error}");
        }
        let scan = res["data"]["scan"].clone();
        spinner.set_message(
            scan["progress"]["phase"]
                .as_str()
                .unwrap_or("queued")
                .to_string(),
        );
        spinner.set_position(scan["progress"]["percent"].as_f64().unwrap_or(0.0) as u64);
        if matches!(
            scan["status"].as_str(),
            Some("COMPLETE" | "FAILED" | "CANCELLED")
        ) {
            spinner.finish_and_clear();
            return Ok(scan);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn print_summary(scan: &Value) {
    let c = &scan["counts"];
    println!(
        "scan {} {}: score {} | critical {} high {} medium {} low {} info {} | new {} fixed {}",
        scan["id"].as_str().unwrap_or("?"),
        scan["status"].as_str().unwrap_or("?").to_lowercase(),
        scan["score"],
        c["critical"],
        c["high"],
        c["medium"],
        c["low"],
        c["info"],
        scan["findingsNew"],
        scan["findingsFixed"]
    );
}
