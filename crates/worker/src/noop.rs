//! `noop`: does nothing, optionally after sleeping or by failing. For benchmarks and drills
//! (lease expiry, retries, shutdown) without side effects.

use std::time::Duration;

use orderly_storage::Job;

use crate::handler::{BoxFuture, JobError, JobHandler};

/// Arguments: `{"sleep_ms": 250}` sleeps first; `{"fail": "reason"}` fails (transiently) with
/// that reason; `{"fail": "reason", "permanent": true}` fails permanently.
#[derive(Debug, Clone, Copy, Default)]
pub struct Noop;

impl JobHandler for Noop {
    fn run<'a>(&'a self, job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            if let Some(ms) = job.args.get("sleep_ms").and_then(|v| v.as_u64()) {
                tokio::time::sleep(Duration::from_millis(ms.min(600_000))).await;
            }
            match job.args.get("fail").and_then(|v| v.as_str()) {
                Some(reason) if job.args.get("permanent") == Some(&true.into()) => {
                    Err(JobError::Permanent(reason.to_owned()))
                }
                Some(reason) => Err(JobError::Transient(reason.to_owned())),
                None => Ok(()),
            }
        })
    }
}
