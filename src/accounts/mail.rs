//! Outgoing mail through the configured SMTP relay (`--smtp-url`). Without one, nothing is
//! sent: the features that mail (password reset, notifications) work the same and simply
//! deliver nothing.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use lettre::message::{header::ContentType, Mailbox};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};

use crate::config::Config;

/// How long one delivery to the relay may take.
const SEND_TIMEOUT: Duration = Duration::from_secs(20);

/// Sends mail, or knows that it cannot.
#[derive(Clone, Default)]
pub struct Mailer {
    relay: Option<Arc<Relay>>,
}

struct Relay {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
}

impl Mailer {
    /// The relay the configuration names, or none.
    ///
    /// # Errors
    /// When `--smtp-url` or `--smtp-from` cannot be parsed (a start-up error, not a silent
    /// loss of every mail later).
    pub fn from_config(config: &Config) -> anyhow::Result<Self> {
        let Some(url) = &config.smtp_url else {
            return Ok(Self::default());
        };
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .context("RAMPART_SMTP_URL is not a valid SMTP URL")?
            .timeout(Some(SEND_TIMEOUT))
            .build();
        let from = config
            .smtp_from
            .parse::<Mailbox>()
            .context("RAMPART_SMTP_FROM is not a valid address")?;
        Ok(Self {
            relay: Some(Arc::new(Relay { transport, from })),
        })
    }

    /// Whether a relay is configured.
    pub fn is_configured(&self) -> bool {
        self.relay.is_some()
    }

    /// Sends a plain-text mail now and waits for the relay's answer: `Ok(false)` when no
    /// relay is configured (nothing is attempted). For work that retries on failure (the
    /// notification mail jobs).
    ///
    /// # Errors
    /// When the address or message is malformed or the relay refuses or cannot be reached.
    pub async fn send(&self, to: &str, subject: &str, body: String) -> anyhow::Result<bool> {
        let Some(relay) = &self.relay else {
            return Ok(false);
        };
        let message = relay.message(to, subject, body)?;
        relay.transport.send(message).await?;
        Ok(true)
    }

    /// Sends a plain-text mail in the background: the request that causes it answers without
    /// waiting for the relay (so its timing says nothing about the recipient). A failure is
    /// logged without the body (it may hold a secret).
    pub fn send_later(&self, to: &str, subject: &str, body: String) {
        let Some(relay) = self.relay.clone() else {
            return;
        };
        let message = relay.message(to, subject, body);
        let subject = subject.to_string();
        tokio::spawn(async move {
            let sent = match message {
                Ok(message) => relay
                    .transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(anyhow::Error::from),
                Err(err) => Err(err),
            };
            match sent {
                Ok(()) => tracing::info!(%subject, "mail sent"),
                Err(err) => tracing::warn!(%subject, error = %err, "mail not sent"),
            }
        });
    }
}

impl Relay {
    /// A plain-text message from the configured sender.
    fn message(&self, to: &str, subject: &str, body: String) -> anyhow::Result<Message> {
        let to = to.parse::<Mailbox>()?;
        Ok(Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .header(ContentType::TEXT_PLAIN)
            .body(body)?)
    }
}
