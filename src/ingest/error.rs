//! Errors of the format layer: what was wrong with a report ([`ParseError`], the scan fails with
//! its message), what went wrong reading it (I/O, worth a retry), and a sink that asked to stop.

use std::io;

/// Why a report could not be read as a report. The message names the problem and, for parse
/// errors, where in the file it is: it becomes the failed scan's message as is.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The body is empty (0 bytes, or only whitespace).
    #[error("empty report")]
    Empty,
    /// The body is not text (NUL bytes, invalid UTF-8, control characters).
    #[error("not JSON (binary data)")]
    Binary,
    /// The body is text but not a JSON object or array.
    #[error("not JSON: {0}")]
    NotJson(String),
    /// JSON, but none of the formats Rampart reads (or a version of one it does not read).
    #[error("unsupported format: {0}")]
    Unsupported(String),
    /// Broken or invalid content at a known place (truncated JSON, wrong types, missing
    /// required fields). `format` is the format's display name, or `JSON` before it is known.
    #[error("invalid {format} at line {line}, column {column}: {message}")]
    Invalid {
        /// `SARIF`, `CycloneDX`, `Trivy report`, `Rampart report` or `JSON`.
        format: &'static str,
        /// 1-based line.
        line: usize,
        /// 1-based column (in bytes).
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// Invalid content not tied to one place (e.g. the report changed between two reads).
    #[error("invalid {format}: {message}")]
    Inconsistent {
        /// The format's display name.
        format: &'static str,
        /// What is wrong.
        message: String,
    },
}

/// Why the sink stopped the parse. Never a problem of the report.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The ingest was cancelled (e.g. the scan was deleted or the worker is shutting down).
    #[error("cancelled")]
    Cancelled,
    /// Storing the findings failed.
    #[error(transparent)]
    Failed(Box<dyn std::error::Error + Send + Sync>),
}

impl SinkError {
    /// Wraps any error of the sink.
    pub fn failed(err: impl Into<Box<dyn std::error::Error + Send + Sync>>) -> Self {
        SinkError::Failed(err.into())
    }
}

/// Everything that can end [`crate::ingest::parse_report`] early, kept apart because the
/// pipeline reacts differently: a [`ParseError`] fails the scan, an I/O error is worth a retry,
/// a [`SinkError`] is the caller's own.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The report is broken or not a supported report.
    #[error(transparent)]
    Parse(#[from] ParseError),
    /// Reading the report failed (object store, network).
    #[error("reading the report failed: {0}")]
    Io(#[from] io::Error),
    /// The sink asked to stop.
    #[error("stopped by the sink: {0}")]
    Sink(#[from] SinkError),
}

impl IngestError {
    /// The parse error, if the report itself is at fault.
    pub fn as_parse(&self) -> Option<&ParseError> {
        match self {
            IngestError::Parse(e) => Some(e),
            _ => None,
        }
    }
}
