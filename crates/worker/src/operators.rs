//! Mail to the operators (`mail.operators`): notices such as `endpoint.disabled`, sent as
//! `notify_operators` jobs through the same mail path as receipts, so a notice survives a mail
//! outage the way a receipt does.

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use orderly_storage::{Job, NewJob};
use serde_json::json;

use crate::handler::{BoxFuture, JobError, JobHandler};
use crate::mail::Mailer;

/// The job kind that mails a notice to the operators.
pub const NOTICE_JOB: &str = "notify_operators";

/// A notice for the operators; `key` makes it unique (queued twice, sent once) and names its
/// `Message-ID`.
pub fn notice_job(key: &str, subject: &str, text: &str) -> NewJob {
    NewJob {
        unique_key: Some(format!("notice:{key}")),
        ..NewJob::new(
            NOTICE_JOB,
            json!({ "key": key, "subject": subject, "text": text }),
            10,
        )
    }
}

/// Sends operator notices.
#[derive(Debug, Clone)]
pub struct NotifyOperators {
    pub mailer: Mailer,
    pub operators: Vec<Mailbox>,
}

impl JobHandler for NotifyOperators {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let field = |name: &str| {
                job.args
                    .get(name)
                    .and_then(|v| v.as_str())
                    .ok_or_else(|| JobError::Permanent(format!("args.{name} is missing")))
            };
            let (key, subject, text) = (field("key")?, field("subject")?, field("text")?);
            send_to_operators(&self.mailer, &self.operators, key, subject, text).await
        })
    }
}

/// Mails a plain-text message to every operator. With none configured the message is only
/// logged: there is nobody to send it to, and retrying would not change that.
pub(crate) async fn send_to_operators(
    mailer: &Mailer,
    operators: &[Mailbox],
    key: &str,
    subject: &str,
    text: &str,
) -> Result<(), JobError> {
    if operators.is_empty() {
        tracing::warn!(%subject, "no operator addresses configured (mail.operators); notice not mailed");
        return Ok(());
    }
    let from = mailer.from();
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(format!("<{key}@{}>", from.email.domain())));
    for operator in operators {
        builder = builder.to(operator.clone());
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_owned())
        .map_err(|e| JobError::Permanent(format!("building the message: {e}")))?;
    let file_name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    mailer.send(&message, &file_name).await?;
    tracing::info!(%subject, recipients = operators.len(), "operator notice sent");
    Ok(())
}
