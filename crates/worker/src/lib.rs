//! orderly's background work: the [`Worker`] that fetches jobs and runs them under leases,
//! the handlers it runs (`send_receipt`, `deliver_webhook`, operator notices, the chores), and the [`Mailer`] receipts go out through.

mod chores;
mod handler;
mod mail;
mod noop;
mod operators;
mod receipt;
mod runner;
pub mod scheduler;
pub mod webhook;

pub use chores::{ExpireOrders, Prune};
pub use handler::{BoxFuture, JobError, JobHandler, Registry};
pub use mail::{MailError, MailSettings, Mailer};
pub use noop::Noop;
pub use operators::{NOTICE_JOB, NotifyOperators, SALES_SUMMARY_JOB, SalesSummaryReport};
pub use receipt::SendReceipt;
pub use runner::{Worker, WorkerSettings};
pub use webhook::{DeliverWebhook, WebhookSettings};
