//! `noop`: does nothing, optionally after sleeping or by failing. For benchmarks and drills
//! (lease expiry, retries, shutdown) without side effects.

use std::time::Duration;

use orderly_queue::kinds::{self, NoopArgs};
use orderly_queue::{BoxFuture, Handler, Job, JobError};
use tokio_util::sync::CancellationToken;

/// Arguments ([`NoopArgs`]): `{"sleep_ms": 250}` sleeps first; `{"fail": "reason"}` fails
/// (transiently) with that reason; `{"fail": "reason", "permanent": true}` fails permanently.
/// A cancellation stops the sleep: the job ends `cancelled`.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoopHandler;

impl Handler<kinds::Noop> for NoopHandler {
    fn run<'a>(
        &'a self,
        args: NoopArgs,
        _job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            if let Some(ms) = args.sleep_ms {
                tokio::select! {
                    () = tokio::time::sleep(Duration::from_millis(ms.min(600_000))) => {}
                    () = cancel.cancelled() => {
                        return Err(JobError::Cancelled("stopped while sleeping".into()));
                    }
                }
            }
            match args.fail {
                Some(reason) if args.permanent => Err(JobError::Permanent(reason)),
                Some(reason) => Err(JobError::Transient(reason)),
                None => Ok(()),
            }
        })
    }
}
