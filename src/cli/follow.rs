//! Following a scan from the command line: reads the scan's Server-Sent Events
//! (`GET /api/v1/scans/{id}/events`), shows its phase and progress, resumes with
//! `Last-Event-ID` when the connection drops, then prints the finished scan's summary.

use std::io::IsTerminal as _;
use std::time::Duration;

use anyhow::{bail, Context as _};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Deserialize;
use serde_json::Value;

/// Where the server is and how to authenticate (shared by the client commands).
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of the Rampart server.
    #[arg(long, env = "RAMPART_API", default_value = "http://127.0.0.1:8080")]
    pub api: String,
    /// API key (`rmp_…`); uploads need write scope.
    #[arg(long, env = "RAMPART_API_KEY", hide_env_values = true)]
    pub api_key: String,
}

/// An HTTP client bound to one server and key.
pub struct Server {
    http: reqwest::Client,
    base: String,
    key: String,
}

/// Reconnection attempts in a row without receiving an event before giving up.
const MAX_RECONNECTS: u32 = 8;
/// The server sends a keep-alive comment every 15 s; this much silence means a dead connection.
const IDLE_LIMIT: Duration = Duration::from_secs(45);

impl Server {
    /// # Errors
    /// When the HTTP client cannot be built (TLS set-up).
    pub fn new(args: &ServerArgs) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .context("building the HTTP client")?;
        Ok(Self {
            http,
            base: args.api.trim_end_matches('/').to_string(),
            key: args.api_key.clone(),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// A request to `path` (under the base URL) carrying the API key.
    pub fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .header("x-api-key", &self.key)
    }
}

/// The fields of a progress event the CLI shows (the SSE payload, snake_case).
#[derive(Debug, Clone, Deserialize)]
struct Progress {
    phase: String,
    #[serde(default)]
    percent: f64,
    #[serde(default)]
    processed: u64,
    total: Option<u64>,
    #[serde(default)]
    findings_new: u64,
    #[serde(default)]
    findings_fixed: u64,
}

/// One parsed Server-Sent Event.
#[derive(Debug, Default, PartialEq)]
struct SseEvent {
    name: String,
    id: Option<String>,
    data: String,
}

/// Splits a byte stream into Server-Sent Events (the subset the server emits: `event`, `id`,
/// `data`, comments), across chunk boundaries.
#[derive(Default)]
struct SseParser {
    pending: Vec<u8>,
}

impl SseParser {
    /// Adds a chunk; returns the events it completed.
    fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.pending.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some((end, separator)) = block_end(&self.pending) {
            let block = String::from_utf8_lossy(&self.pending[..end]).into_owned();
            self.pending.drain(..end + separator);
            if let Some(event) = parse_block(&block) {
                events.push(event);
            }
        }
        events
    }
}

/// Where the first blank line ends a block, and the separator's length.
fn block_end(buf: &[u8]) -> Option<(usize, usize)> {
    (0..buf.len()).find_map(|i| {
        if buf[i..].starts_with(b"\r\n\r\n") {
            Some((i, 4))
        } else if buf[i..].starts_with(b"\n\n") {
            Some((i, 2))
        } else {
            None
        }
    })
}

fn parse_block(block: &str) -> Option<SseEvent> {
    let mut event = SseEvent {
        name: "message".into(),
        ..SseEvent::default()
    };
    let mut data: Vec<&str> = Vec::new();
    for line in block.lines() {
        if line.starts_with(':') {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        match field {
            "event" => event.name = value.to_string(),
            "id" => event.id = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    if data.is_empty() {
        return None;
    }
    event.data = data.join("\n");
    Some(event)
}

/// How progress is shown: a bar on a terminal, one line per phase change otherwise (CI logs).
enum View {
    Bar(ProgressBar),
    Lines { scan: String, phase: Option<String> },
}

impl View {
    fn new(scan: &str) -> Self {
        if std::io::stdout().is_terminal() && std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(100);
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix:>10} [{bar:40}] {pos:>3}% {msg}")
                    .unwrap_or_else(|_| ProgressStyle::default_bar())
                    .progress_chars("=> "),
            );
            bar.enable_steady_tick(Duration::from_millis(120));
            Self::Bar(bar)
        } else {
            Self::Lines {
                scan: scan.to_string(),
                phase: None,
            }
        }
    }

    fn show(&mut self, p: &Progress) {
        let percent = p.percent.clamp(0.0, 100.0).round() as u64;
        match self {
            Self::Bar(bar) => {
                bar.set_prefix(p.phase.clone());
                bar.set_position(percent);
                let total = p.total.map(|t| format!("/{t}")).unwrap_or_default();
                bar.set_message(format!(
                    "{}{total} processed, {} new, {} fixed",
                    p.processed, p.findings_new, p.findings_fixed
                ));
            }
            Self::Lines { scan, phase } => {
                if phase.as_deref() != Some(p.phase.as_str()) {
                    println!("scan {scan} {} {percent}%", p.phase);
                    *phase = Some(p.phase.clone());
                }
            }
        }
    }

    fn note(&self, line: &str) {
        match self {
            Self::Bar(bar) => bar.println(line),
            Self::Lines { .. } => eprintln!("{line}"),
        }
    }

    fn finish(self) {
        if let Self::Bar(bar) = self {
            bar.finish_and_clear();
        }
    }
}

/// How one connection to the event stream ended.
enum StreamEnd {
    /// The terminal event arrived.
    Done,
    /// The connection dropped or went silent; `progressed` when it delivered an event first.
    Dropped { progressed: bool, why: String },
}

/// Follows scan `id` until it finishes, then prints its summary. Fails when the scan cannot be
/// followed (bad key, unknown id: the server's message) or when it ends failed or cancelled.
///
/// # Errors
/// As above, with a one-line message.
pub async fn follow(server: &Server, id: &str) -> anyhow::Result<()> {
    let mut view = View::new(id);
    let mut last_event_id: Option<String> = None;
    let mut failed_attempts = 0;
    loop {
        let end = read_events(server, id, &mut last_event_id, &mut view).await;
        match end {
            Ok(StreamEnd::Done) => break,
            Ok(StreamEnd::Dropped { progressed, why }) => {
                failed_attempts = if progressed { 1 } else { failed_attempts + 1 };
                if failed_attempts > MAX_RECONNECTS {
                    view.finish();
                    bail!("lost the event stream of scan {id}: {why}");
                }
                view.note(&format!(
                    "event stream of scan {id} interrupted ({why}); resuming"
                ));
                let backoff = 250 * 2u64.pow(failed_attempts.min(5));
                tokio::time::sleep(Duration::from_millis(backoff)).await;
            }
            Err(err) => {
                view.finish();
                return Err(err);
            }
        }
    }
    view.finish();
    let scan = fetch_scan(server, id).await?;
    println!("{}", summary_line(&scan));
    match scan["status"].as_str() {
        Some("complete") => Ok(()),
        Some(status) => bail!(
            "scan {id} ended {status}: {}",
            scan["error"].as_str().unwrap_or("no reason given")
        ),
        None => bail!("scan {id} has no status"),
    }
}

/// One connection to the event stream. Refusals by the server (4xx/5xx) are errors; a dropped
/// or silent connection is reported as such so the caller can resume.
async fn read_events(
    server: &Server,
    id: &str,
    last_event_id: &mut Option<String>,
    view: &mut View,
) -> anyhow::Result<StreamEnd> {
    let mut request = server
        .request(reqwest::Method::GET, &format!("/api/v1/scans/{id}/events"))
        .header(reqwest::header::ACCEPT, "text/event-stream");
    if let Some(last) = last_event_id.as_deref() {
        request = request.header("last-event-id", last);
    }
    let response = match request.send().await {
        Ok(response) => response,
        // Never connected at all: say so at once rather than retrying a wrong URL.
        Err(err) if last_event_id.is_none() && err.is_connect() => {
            bail!("cannot reach {}: {}", server.base(), root_cause(&err))
        }
        Err(err) => {
            return Ok(StreamEnd::Dropped {
                progressed: false,
                why: root_cause(&err),
            })
        }
    };
    let status = response.status();
    if !status.is_success() {
        let body: Value = response.json().await.unwrap_or(Value::Null);
        let reason = body["error"].as_str().unwrap_or("no details");
        if status.is_server_error() && last_event_id.is_some() {
            return Ok(StreamEnd::Dropped {
                progressed: false,
                why: format!("{status}: {reason}"),
            });
        }
        bail!("cannot follow scan {id}: {reason} ({status})");
    }
    let mut body = response.bytes_stream();
    let mut parser = SseParser::default();
    let mut progressed = false;
    loop {
        let chunk = match tokio::time::timeout(IDLE_LIMIT, body.next()).await {
            Err(_) => {
                return Ok(StreamEnd::Dropped {
                    progressed,
                    why: "no data for 45 s".into(),
                })
            }
            Ok(None) => {
                return Ok(StreamEnd::Dropped {
                    progressed,
                    why: "the server closed the stream".into(),
                })
            }
            Ok(Some(Err(err))) => {
                return Ok(StreamEnd::Dropped {
                    progressed,
                    why: root_cause(&err),
                })
            }
            Ok(Some(Ok(chunk))) => chunk,
        };
        for event in parser.push(&chunk) {
            if let Some(event_id) = event.id {
                *last_event_id = Some(event_id);
            }
            progressed = true;
            if let Ok(progress) = serde_json::from_str::<Progress>(&event.data) {
                view.show(&progress);
            }
            if event.name == "done" {
                return Ok(StreamEnd::Done);
            }
        }
    }
}

/// The finished scan (REST shape: snake_case, lowercase status).
async fn fetch_scan(server: &Server, id: &str) -> anyhow::Result<Value> {
    let response = server
        .request(reqwest::Method::GET, &format!("/api/v1/scans/{id}"))
        .send()
        .await
        .map_err(|e| anyhow::anyhow!("cannot read scan {id}: {}", root_cause(&e)))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "cannot read scan {id}: {} ({status})",
            body["error"].as_str().unwrap_or("no details")
        );
    }
    Ok(body["data"].clone())
}

/// `scan <id> complete: score 71.4 | critical 0 high 4 medium 4 low 4 info 0 | new 12 fixed 0`.
fn summary_line(scan: &Value) -> String {
    let counts = &scan["counts"];
    let number = |v: &Value| match v {
        Value::Null => "-".to_string(),
        other => other.to_string(),
    };
    format!(
        "scan {} {}: score {} | critical {} high {} medium {} low {} info {} | new {} fixed {}",
        scan["id"].as_str().unwrap_or("?"),
        scan["status"].as_str().unwrap_or("?"),
        number(&scan["score"]),
        number(&counts["critical"]),
        number(&counts["high"]),
        number(&counts["medium"]),
        number(&counts["low"]),
        number(&counts["info"]),
        number(&scan["findings_new"]),
        number(&scan["findings_fixed"]),
    )
}

/// The innermost cause of an HTTP error, which is what a person can act on.
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_events_split_across_chunks_and_skips_comments() {
        let mut parser = SseParser::default();
        assert!(parser
            .push(b": keep-alive\n\nevent: progress\nid: 1")
            .is_empty());
        let events = parser.push(b"7\ndata: {\"a\":1}\n\nevent: done\r\ndata: x\r\n\r\n");
        assert_eq!(
            events,
            vec![
                SseEvent {
                    name: "progress".into(),
                    id: Some("17".into()),
                    data: "{\"a\":1}".into(),
                },
                SseEvent {
                    name: "done".into(),
                    id: None,
                    data: "x".into(),
                },
            ]
        );
        assert!(parser.pending.is_empty());
    }

    #[test]
    fn multi_line_data_is_joined_and_unnamed_events_are_messages() {
        let mut parser = SseParser::default();
        let events = parser.push(b"data: a\ndata: b\n\n");
        assert_eq!(events[0].name, "message");
        assert_eq!(events[0].data, "a\nb");
    }

    #[test]
    fn summary_names_every_count_and_marks_missing_values() {
        let scan = serde_json::json!({
            "id": "s1", "status": "failed", "score": null,
            "counts": {"critical": 1, "high": 2, "medium": 3, "low": 4, "info": 5},
            "findings_new": 6, "findings_fixed": 7
        });
        assert_eq!(
            summary_line(&scan),
            "scan s1 failed: score - | critical 1 high 2 medium 3 low 4 info 5 | new 6 fixed 7"
        );
    }
}
