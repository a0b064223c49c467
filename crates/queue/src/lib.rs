//! orderly's durable job queue, in the same database as the orders so that an order and its
//! follow-up work commit together.
//!
//! - [`job`]: what a job is ([`Job`], [`NewJob`]), how a run ends ([`Outcome`]), and
//!   [`JobState`] with the retry [`backoff`].
//! - [`limits`]: fleet-wide limits on what runs (per queue, kind and partition, at once and
//!   per second), which workers claim under (`claim.rs`), and their use (`usage.rs`).
//! - [`kinds`]: every kind of job the service runs, each naming its queue, its argument type
//!   and its attempt limit in one place.
//! - [`Queue`]: enqueueing (alone, or [`enqueue_in`] a caller's transaction), fetching under
//!   leases, recording outcomes, and the operator's reads and changes; its statements are in
//!   `sql.rs`, one text for both backends where the dialects agree.
//! - pausing a queue for every worker, and each queue's figures (`pauses.rs`); which worker
//!   processes are alive (`heartbeats.rs`); an order's jobs and "retry all discarded"
//!   (`operations.rs`).
//! - [`activity`]: the per-minute rollup of what the fleet did, for the console's charts.
//! - the runner ([`Worker`]) that works the queue with [`Registry`] handlers.
//! - its schema ([`migrate`]): its migrations in `crates/queue/migrations`, versioned apart
//!   from the service's.
//!
//! A worker fetches available jobs (on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so workers
//! never wait on each other), holds each under a lease that its heartbeat extends, and reports
//! outcomes in batches. A job whose lease runs out (its worker died) is rescued and runs
//! again: execution is at least once. An operator may cancel a running job: its worker hears
//! of it (`NOTIFY`, and a look every [`CANCEL_POLL`]) and cancels the token its handler runs
//! with; the job ends `cancelled` if the handler stopped, `completed` if it finished. Inserts wake workers: PostgreSQL notifies listeners on
//! commit (trigger `jobs_notify`); within one process [`Queue::after_commit`] does.

pub mod activity;
mod claim;
mod enqueue;
mod error;
mod handler;
mod heartbeats;
pub mod job;
pub mod kinds;
pub mod limits;
mod migrations;
mod operations;
mod pauses;
mod queue;
mod runner;
mod sql;
mod state;
mod usage;

pub use claim::{Claim, LIMIT_POLL};
pub use enqueue::{Enqueued, InsertJobs, enqueue_in};
pub use error::QueueError;
pub use handler::{BoxFuture, Handler, JobError, Registry};
pub use heartbeats::WorkerBeat;
pub use job::{Completed, Finished, Job, JobChange, JobFilter, NewJob, Outcome};
pub use kinds::JobKind;
pub use migrations::migrate;
pub use operations::{DiscardedFilter, RETRY_ALL_LIMIT};
pub use pauses::{PAUSE_POLL, QueuePause, QueueStats, known_queues};
pub use queue::{Heard, JobListener, Queue};
pub use runner::{
    CANCEL_POLL, FLUSH_DEADLINE, Liveness, Worker, WorkerError, WorkerSettings,
    export_limit_metrics, worker_id,
};
pub use state::{JobState, UnknownJobState, backoff};
pub use usage::{LimitUse, Scope, each_limit};
