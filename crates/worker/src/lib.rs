//! orderly's background work: the handlers the queue's worker runs (`send_receipt`, `deliver_webhook`, operator notices, the chores), and the [`Mailer`] receipts go out through.

pub mod activity;
mod chores;
mod coalesce;
mod customer_mail;
pub mod events;
mod mail;
mod noop;
mod operators;
mod receipt;
pub mod scheduler;
mod smtp;
pub mod webhook;

pub use chores::{OrderExpirer, Pruner};
pub use customer_mail::CustomerNotifier;
pub use mail::{MailError, MailSettings, Mailer};
pub use noop::NoopHandler;
pub use operators::{OperatorNotifier, SalesSummaryReporter};
pub use receipt::ReceiptSender;
pub use webhook::{WebhookDeliverer, WebhookSettings};
