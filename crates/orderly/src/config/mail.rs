//! `[mail]`: how receipts and operator mail are sent, and from whom.

use std::path::PathBuf;
use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Serialize};

use super::bounds::{above_zero, check};
use super::values::{self, text};
use super::{ConfigError, Mailboxes, SecretUrl};

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MailConfig {
    /// SMTP server URL; empty means write `.eml` files to `outbox`. May hold a password.
    pub smtp_url: SecretUrl,
    pub outbox: PathBuf,
    /// The sender mailbox, `Name <address>`.
    #[serde(
        deserialize_with = "values::mailbox",
        serialize_with = "text::serialize"
    )]
    pub from: Mailbox,
    #[serde(with = "humantime_serde")]
    pub timeout: Duration,
    /// Mailboxes that get operator mail, comma-separated.
    #[serde(with = "text")]
    pub operators: Mailboxes,
}

impl MailConfig {
    pub(super) fn validate(&self) -> Result<(), ConfigError> {
        let smtp = self.smtp_url.expose();
        check(
            smtp.is_empty() || smtp.starts_with("smtp://") || smtp.starts_with("smtps://"),
            "mail.smtp_url",
            self.smtp_url.redacted(),
            "must start with smtp:// or smtps:// (env ORDERLY_SMTP_URL)",
        )?;
        above_zero("mail.timeout", self.timeout)
    }
}
