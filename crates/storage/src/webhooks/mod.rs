//! Webhook endpoints, their subscriptions and delivery attempts in the store. Delivery jobs
//! are queued in the transaction that writes each event (`fan_out.rs`); the delivering itself
//! is the worker's; each endpoint's circuit breaker is kept here, shared by every worker
//! (`breaker.rs`).

mod attempts;
mod breaker;
mod endpoints;
mod fan_out;

pub use attempts::{
    AttemptOutcome, MissedEvent, NewAttempt, OutboxRecord, Recorded, WebhookAttempt,
};
pub use endpoints::{NewWebhook, SECRET_PREFIX, WebhookChange, WebhookEndpoint};
pub use fan_out::redelivery_job;
pub(crate) use fan_out::{OutboxEvent, OutboxSql, queue_deliveries};
