//! The built-in scheduled chores: expiring unpaid orders, and pruning old jobs and idempotency
//! records.

use std::time::Duration;
use tokio_util::sync::CancellationToken;

use orderly_queue::kinds::{self, TickArgs};
use orderly_queue::{BoxFuture, Handler, Job, JobError};
use orderly_service::Services;
use orderly_storage::Store;

/// `expire_orders`: pending orders older than the payment timeout become `expired`, by the
/// service layer's rule (stock released, `order.expired` written, one transaction each, and the
/// products' cached reads forgotten).
#[derive(Debug, Clone)]
pub struct OrderExpirer {
    pub services: Services,
    pub payment_timeout: Duration,
}

impl Handler<kinds::ExpireOrders> for OrderExpirer {
    fn run<'a>(
        &'a self,
        _: TickArgs,
        _job: &'a Job,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let cutoff = orderly_domain::now() - self.payment_timeout;
            self.services
                .expire_unpaid_orders(cutoff)
                .await
                .map_err(|e| JobError::transient("expiring orders", &e))?;
            Ok(())
        })
    }
}

/// `prune`: finished jobs past their retention, expired idempotency records, and events and
/// webhook delivery attempts past theirs, in small batches. A run stops after `max_run` (set
/// well inside the job timeout) and leaves the rest to the next run, so that a backlog of
/// millions of rows under a steady stream of orders is pruned over several runs instead of
/// failing each one at the timeout.
#[derive(Debug, Clone)]
pub struct Pruner {
    pub store: Store,
    pub job_retention: Duration,
    pub event_retention: Duration,
    /// Keep events until the NATS relay has delivered them.
    pub relayed_only: bool,
    pub max_run: std::time::Duration,
}

impl Handler<kinds::Prune> for Pruner {
    fn run<'a>(
        &'a self,
        _: TickArgs,
        _job: &'a Job,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let transient = |e: orderly_storage::StoreError| JobError::transient("pruning", &e);
            let deadline = std::time::Instant::now() + self.max_run;
            let jobs = self
                .store
                .queue()
                .prune_jobs(orderly_domain::now() - self.job_retention, deadline)
                .await
                .map_err(|e| JobError::transient("pruning jobs", &e))?;
            // A run past its deadline deletes nothing more: each call below then returns at once.
            let keys = self
                .store
                .prune_idempotency_keys(deadline)
                .await
                .map_err(transient)?;
            let events = self
                .store
                .prune_events(
                    orderly_domain::now() - self.event_retention,
                    self.relayed_only,
                    deadline,
                )
                .await
                .map_err(transient)?;
            let complete = !(jobs.cut_short || keys.cut_short || events.cut_short);
            tracing::info!(
                jobs = jobs.rows,
                idempotency_keys = keys.rows,
                events = events.rows,
                complete,
                "pruned"
            );
            if !complete {
                tracing::warn!(
                    max_run_secs = self.max_run.as_secs(),
                    "pruning stopped at its time limit; the rest is left for the next run"
                );
            }
            Ok(())
        })
    }
}
