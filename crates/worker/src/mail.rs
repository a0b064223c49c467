//! Sending e-mail: over SMTP ([`crate::smtp`]) when an SMTP URL is configured, otherwise as one
//! `.eml` file per message in an outbox folder (the embedded default, handy on a laptop).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use lettre::Message;
use lettre::message::Mailbox;
use tokio_util::sync::CancellationToken;

use crate::smtp::{SmtpError, SmtpPool};

/// Where mail goes.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// `smtp://user:pass@host:587?tls=required`, `smtps://host:465`, or `smtp://host:25`.
    pub smtp_url: Option<String>,
    /// Folder for `.eml` files when there is no SMTP URL.
    pub outbox: PathBuf,
    /// The sender, e.g. `Shop <orders@shop.example>`.
    pub from: Mailbox,
    /// How long one SMTP exchange may take.
    pub timeout: Duration,
}

/// Why a message was not delivered.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    #[error("bad SMTP URL")]
    BadUrl(#[source] lettre::transport::smtp::Error),
    /// Will not succeed as it is: a 5xx reply.
    #[error("the SMTP server refused the message")]
    Refused(#[source] SmtpError),
    /// Worth trying again: a 4xx reply, a timeout, a refused connection.
    #[error("the SMTP exchange failed")]
    Smtp(#[source] SmtpError),
    /// The job was cancelled before the message was handed over: it was not sent.
    #[error("cancelled before the message was handed to the mail server")]
    Cancelled,
    #[error("cannot write to the outbox {}", .dir.display())]
    Outbox {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl MailError {
    /// Whether sending again will fail the same way.
    pub fn is_permanent(&self) -> bool {
        matches!(self, Self::BadUrl(_) | Self::Refused(_))
    }
}

impl From<MailError> for orderly_queue::JobError {
    fn from(error: MailError) -> Self {
        if let MailError::Cancelled = error {
            return Self::Cancelled(error.to_string());
        }
        if error.is_permanent() {
            Self::permanent("sending mail", &error)
        } else {
            Self::transient("sending mail", &error)
        }
    }
}

/// Sends messages.
#[derive(Clone)]
pub enum Mailer {
    Smtp {
        /// Connections with `TCP_NODELAY` (see [`crate::smtp`] for the 40 ms stall they avoid).
        transport: Arc<SmtpPool>,
        from: Mailbox,
    },
    Outbox {
        dir: PathBuf,
        from: Mailbox,
    },
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Mailer::Smtp { .. } => f.write_str("Mailer::Smtp"),
            Mailer::Outbox { dir, .. } => write!(f, "Mailer::Outbox({})", dir.display()),
        }
    }
}

impl Mailer {
    pub fn new(settings: &MailSettings) -> Result<Self, MailError> {
        match &settings.smtp_url {
            Some(url) => {
                let transport =
                    Arc::new(SmtpPool::from_url(url, settings.timeout).map_err(MailError::BadUrl)?);
                Ok(Mailer::Smtp {
                    transport,
                    from: settings.from.clone(),
                })
            }
            None => Ok(Mailer::Outbox {
                dir: settings.outbox.clone(),
                from: settings.from.clone(),
            }),
        }
    }

    /// The sender every message carries.
    pub fn from(&self) -> &Mailbox {
        match self {
            Mailer::Smtp { from, .. } | Mailer::Outbox { from, .. } => from,
        }
    }

    /// Delivers `message`, unless `cancel` is cancelled before it is handed over (while the
    /// connection is made, say): then nothing is sent ([`MailError::Cancelled`]). Once the
    /// message is being handed over it is sent, whatever `cancel` says. In outbox mode it is
    /// written as `<name>.eml`, replacing any earlier file of that name, so a message sent
    /// twice leaves one file.
    pub async fn send(
        &self,
        message: &Message,
        name: &str,
        cancel: &CancellationToken,
    ) -> Result<(), MailError> {
        if cancel.is_cancelled() {
            return Err(MailError::Cancelled);
        }
        match self {
            Mailer::Smtp { transport, .. } => transport
                .send(message.envelope(), &message.formatted(), cancel)
                .await
                .map_err(|e| {
                    if let SmtpError::Cancelled = e {
                        MailError::Cancelled
                    } else if e.is_permanent() {
                        MailError::Refused(e)
                    } else {
                        MailError::Smtp(e)
                    }
                }),
            Mailer::Outbox { dir, .. } => {
                let io = |source: std::io::Error| MailError::Outbox {
                    dir: dir.clone(),
                    source,
                };
                // One trip to the blocking pool for the three calls, not one each: under load
                // each trip is a thread hand-off, and they showed in the profile.
                let (folder, formatted, name) = (dir.clone(), message.formatted(), name.to_owned());
                tokio::task::spawn_blocking(move || {
                    std::fs::create_dir_all(&folder)?;
                    let temporary = folder.join(format!(".{name}.eml.tmp"));
                    std::fs::write(&temporary, formatted)?;
                    std::fs::rename(&temporary, folder.join(format!("{name}.eml")))
                })
                .await
                .map_err(|e| io(std::io::Error::other(e)))?
                .map_err(io)
            }
        }
    }
}
