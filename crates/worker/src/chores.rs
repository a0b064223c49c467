//! The built-in scheduled chores: expiring unpaid orders, and pruning old jobs and idempotency
//! records.

use std::time::Duration;

use orderly_domain::OrderAction;
use orderly_queue::kinds::{self, TickArgs};
use orderly_queue::{BoxFuture, Handler, Job, JobError};
use orderly_storage::{Store, TransitionOutcome};

/// `expire_orders`: pending orders older than the payment timeout become `expired`, their
/// stock released and `order.expired` written, one transaction each.
#[derive(Debug, Clone)]
pub struct ExpireOrders {
    pub store: Store,
    pub payment_timeout: Duration,
}

impl Handler<kinds::ExpireOrders> for ExpireOrders {
    fn run<'a>(&'a self, _: TickArgs, _job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let cutoff = orderly_domain::now() - self.payment_timeout;
            let transient =
                |e: orderly_storage::StoreError| JobError::transient("expiring orders", &e);
            let mut expired = 0;
            loop {
                let batch = self
                    .store
                    .pending_orders_before(cutoff, 100)
                    .await
                    .map_err(transient)?;
                if batch.is_empty() {
                    break;
                }
                for id in batch {
                    // An order paid meanwhile is no longer pending: the transition refuses it.
                    if let (TransitionOutcome::Done, _) = self
                        .store
                        .transition_order(id, OrderAction::Expire, None)
                        .await
                        .map_err(transient)?
                    {
                        expired += 1;
                    }
                }
            }
            if expired > 0 {
                tracing::info!(expired, "expired unpaid orders");
            }
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
pub struct Prune {
    pub store: Store,
    pub job_retention: Duration,
    pub event_retention: Duration,
    /// Keep events until the NATS relay has delivered them.
    pub relayed_only: bool,
    pub max_run: std::time::Duration,
}

impl Handler<kinds::Prune> for Prune {
    fn run<'a>(&'a self, _: TickArgs, _job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
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
