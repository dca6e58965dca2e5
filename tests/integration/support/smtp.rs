//! An SMTP server on loopback for the tests of mail Rampart sends (password resets,
//! notifications): aiosmtpd from tests/standard-clients/.venv, which prints every message it
//! receives as one JSON line. Tests using it carry
//! `#[cfg_attr(not(rampart_has_aiosmtpd), ignore = "...")]` (see build.rs).

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

/// An SMTP server on loopback (aiosmtpd from tests/standard-clients/.venv) that prints every
/// message it receives as one JSON line: `{"to": [...], "body": "..."}`.
pub struct SmtpSink {
    _child: Child,
    lines: Lines<BufReader<ChildStdout>>,
    /// `smtp://127.0.0.1:<port>`, for `--smtp-url`.
    pub url: String,
}

const SMTP_SINK: &str = r#"
import asyncio, email, json, sys
from aiosmtpd.smtp import SMTP

refuse = int(sys.argv[1]) if len(sys.argv) > 1 else 0

class Print:
    async def handle_DATA(self, server, session, envelope):
        global refuse
        if refuse > 0:
            refuse -= 1
            return "451 4.3.0 try again later"
        message = email.message_from_bytes(envelope.original_content)
        body = message.get_payload(decode=True).decode("utf-8")
        print(json.dumps({"to": envelope.rcpt_tos, "subject": message["Subject"], "body": body}), flush=True)
        return "250 OK"

async def main():
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: SMTP(Print()), "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"#;

impl SmtpSink {
    pub async fn start() -> Self {
        Self::refusing_first(0).await
    }

    /// A server that answers the first `n` messages with a temporary failure (451) and
    /// accepts the rest.
    pub async fn refusing_first(n: usize) -> Self {
        let python = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/standard-clients/.venv/bin/python"
        );
        let mut child = tokio::process::Command::new(python)
            .args(["-c", SMTP_SINK, &n.to_string()])
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("aiosmtpd in tests/standard-clients/.venv (pip install -r requirements.txt)");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let port = Self::line(&mut lines).await;
        Self {
            _child: child,
            lines,
            url: format!("smtp://127.0.0.1:{}", port.trim()),
        }
    }

    async fn line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
        tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .expect("the SMTP server answers in time")
            .expect("its output")
            .expect("it is running")
    }

    /// The next message received.
    pub async fn next_mail(&mut self) -> Value {
        serde_json::from_str(&Self::line(&mut self.lines).await).unwrap()
    }
}
