//! What a job is: as stored ([`Job`]), as asked for ([`NewJob`]), how one run ended
//! ([`Outcome`]), and the operator's filters and changes.

use orderly_domain::PageLimit;
use serde_json::Value;
use time::OffsetDateTime;

use crate::JobState;
use crate::kinds::JobKind;

/// A job as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub kind: String,
    pub args: Value,
    pub state: JobState,
    /// 0 runs first, 9 last.
    pub priority: i32,
    /// Attempts started so far, this one included while running.
    pub attempt: i32,
    pub max_attempts: i32,
    /// Not before this time.
    pub run_at: OffsetDateTime,
    pub locked_by: Option<String>,
    pub locked_until: Option<OffsetDateTime>,
    pub unique_key: Option<String>,
    pub last_error: Option<String>,
    pub created_at: OffsetDateTime,
    pub finished_at: Option<OffsetDateTime>,
    /// The W3C `traceparent` of the request that enqueued the job.
    pub trace_context: Option<String>,
    /// What a per-partition limit counts the job by (a delivery's endpoint); empty for none.
    pub partition: String,
    /// When an operator asked a running job to stop; it runs until its handler stops.
    pub cancel_requested_at: Option<OffsetDateTime>,
}

/// A job to enqueue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewJob {
    pub queue: String,
    pub kind: String,
    pub args: Value,
    pub priority: i32,
    pub max_attempts: i32,
    /// Run no earlier than this; now when `None`.
    pub run_at: Option<OffsetDateTime>,
    /// A second job with the same key is not enqueued.
    pub unique_key: Option<String>,
    /// The W3C `traceparent` of the enqueuing request, continued by the job's span.
    pub trace_context: Option<String>,
    /// What a per-partition limit counts the job by (a delivery's endpoint); empty for none.
    pub partition: String,
}

impl NewJob {
    /// A job of kind `K` on its queue, priority 5, with the kind's attempt limit.
    pub fn of<K: JobKind>(args: &K::Args) -> Self {
        // The argument types are plain structs of strings, numbers and ids: they always
        // serialize.
        let args = serde_json::to_value(args).unwrap_or_else(|_| Value::Object(Default::default()));
        Self {
            max_attempts: K::MAX_ATTEMPTS,
            ..Self::named(K::NAME, args)
        }
        .on_queue(K::QUEUE)
    }

    /// A job of the kind named `kind` (as configuration names it), on its queue with its
    /// attempt limit when the kind is known, else on the default queue with 5 attempts.
    pub fn named(kind: &str, args: Value) -> Self {
        let known = crate::kinds::KindInfo::named(kind);
        Self {
            queue: known
                .map_or(crate::kinds::DEFAULT_QUEUE, |k| k.queue)
                .into(),
            kind: kind.to_owned(),
            args,
            priority: 5,
            max_attempts: known.map_or(crate::kinds::DEFAULT_MAX_ATTEMPTS, |k| k.max_attempts),
            run_at: None,
            unique_key: None,
            trace_context: None,
            partition: String::new(),
        }
    }

    pub fn on_queue(mut self, queue: &str) -> Self {
        self.queue = queue.to_owned();
        self
    }

    pub fn max_attempts(mut self, max_attempts: i32) -> Self {
        self.max_attempts = max_attempts;
        self
    }

    pub fn unique(mut self, key: String) -> Self {
        self.unique_key = Some(key);
        self
    }

    /// Counts the job in `partition` for the per-partition limits of its kind.
    pub fn partition(mut self, partition: impl std::fmt::Display) -> Self {
        self.partition = partition.to_string();
        self
    }

    pub fn traced(mut self, traceparent: Option<&str>) -> Self {
        self.trace_context = traceparent.map(str::to_owned);
        self
    }
}

/// How one run of a job ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Completed,
    /// Failed; run again at `at`.
    Retry {
        at: OffsetDateTime,
        error: String,
    },
    /// Failed for good.
    Discard {
        error: String,
    },
    /// Stopped at an operator's request before its side effect: never retried.
    Cancelled {
        error: String,
    },
    /// Not run after all (the handler found it could not start yet): available again at
    /// `at`, the attempt not counted.
    Snooze {
        at: OffsetDateTime,
    },
}

/// What becomes of a job's row when it completes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Completed {
    /// Kept as `completed` until the `prune` chore deletes it after the retention: it can be
    /// looked up, and its unique key keeps a second job with that key out until then.
    #[default]
    Kept,
    /// Deleted by the statement that records the completion: a delete costs the database
    /// less than an update of the whole row, and nothing is left to prune. A completed job
    /// can then no longer be looked up, and its unique key is free at once. Discarded and
    /// cancelled jobs are kept either way, for the operator.
    Deleted,
}

/// A finished run, reported by the worker that held it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finished {
    pub id: i64,
    /// The attempt that ran: a stale report (the job was rescued and re-run) changes nothing.
    pub attempt: i32,
    pub outcome: Outcome,
}

/// Which jobs a listing returns, newest first.
#[derive(Debug, Clone, Default)]
pub struct JobFilter {
    pub state: Option<JobState>,
    pub kind: Option<String>,
    pub queue: Option<String>,
    /// Only jobs whose last error contains this text (a scan of the jobs the other filters
    /// leave: give a state too on a large table).
    pub error_contains: Option<String>,
    /// Jobs with ids below this (the previous page's last id).
    pub before: Option<i64>,
    pub limit: PageLimit,
}

/// How an operator's retry or cancel ended.
#[derive(Debug, Clone, PartialEq)]
pub enum JobChange {
    Done(Job),
    NotFound,
    NotAllowed(Job),
}
