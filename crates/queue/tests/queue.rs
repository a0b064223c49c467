//! The queue's behaviour, on its own schema alone (`orderly_queue::migrate`), with no HTTP app
//! and no other table: one suite, run on every backend the queue has (SQLite and PostgreSQL,
//! through `orderly_testing::on_both_backends!`). The worker is driven step by step
//! (`Worker::run_due`), and outcomes are recorded as a worker records them, so nothing here
//! waits on a clock.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;
use tokio_util::sync::CancellationToken;

use orderly_db::{Db, DbOptions};
use orderly_queue::kinds::{Noop, NoopArgs};
use orderly_queue::{
    Completed, Finished, Handler, JobChange, JobError, JobState, NewJob, Outcome, Queue, Registry,
    Worker, WorkerSettings,
};
use orderly_testing::{Backend, TestDatabase, on_both_backends};

const WORKER: &str = "test-worker";

/// A queue on a database of its own, migrated with the queue's migrations only; `None` when
/// the backend is not configured.
async fn queue_on(backend: Backend) -> Option<(TestDatabase, Queue)> {
    let (database, url) = TestDatabase::create(backend).await?;
    let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
    orderly_queue::migrate(&db).await.unwrap();
    Some((database, Queue::new(db)))
}

fn noop(args: NoopArgs) -> NewJob {
    NewJob::of::<Noop>(&args)
}

fn lease() -> time::OffsetDateTime {
    orderly_domain::now() + time::Duration::seconds(30)
}

async fn finish(queue: &Queue, job: &orderly_queue::Job, outcome: Outcome) {
    let finished = Finished {
        id: job.id,
        attempt: job.attempt,
        outcome,
    };
    queue
        .finish_jobs(WORKER, &[finished], Completed::Kept)
        .await
        .unwrap();
}

/// Runs a `noop` job as the service's handler does: fails as its arguments say.
struct RunNoop;

impl Handler<Noop> for RunNoop {
    fn run<'a>(
        &'a self,
        args: NoopArgs,
        _job: &'a orderly_queue::Job,
        _cancel: &'a CancellationToken,
    ) -> orderly_queue::BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            match args.fail {
                Some(reason) if args.permanent => Err(JobError::Permanent(reason)),
                Some(reason) => Err(JobError::Transient(reason)),
                None => Ok(()),
            }
        })
    }
}

fn worker(queue: &Queue) -> Worker {
    Worker::new(
        queue.clone(),
        Registry::new().register::<Noop>(RunNoop),
        WorkerSettings {
            id: WORKER.into(),
            queues: vec![("default".into(), 1)],
            local_queue: 10,
            lease: Duration::from_secs(30),
            poll_interval: Duration::from_secs(1),
            shutdown_grace: Duration::from_secs(1),
            job_timeout: Duration::from_secs(5),
            backoff_base: Duration::from_secs(60),
            backoff_max: Duration::from_secs(3_600),
            completed: Completed::Kept,
            limits: Default::default(),
        },
    )
}

on_both_backends! {
    async fn a_job_is_fetched_once_under_its_lease_and_completes(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let ids = queue.enqueue(&[noop(NoopArgs::default())]).await.unwrap();
        assert_eq!(ids.len(), 1);
        let fetched = queue.fetch_jobs("default", WORKER, 10, lease()).await.unwrap();
        assert_eq!(fetched.len(), 1);
        assert_eq!((fetched[0].state, fetched[0].attempt), (JobState::Running, 1));
        assert!(
            queue.fetch_jobs("default", "another", 10, lease()).await.unwrap().is_empty(),
            "a job under a lease is no one else's"
        );
        finish(&queue, &fetched[0], Outcome::Completed).await;
        let job = queue.job(ids[0]).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Completed);
        assert!(job.finished_at.is_some());
    }

    async fn a_unique_key_enqueues_once(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let job = noop(NoopArgs::default()).unique("once".into());
        assert_eq!(queue.enqueue(std::slice::from_ref(&job)).await.unwrap().len(), 1);
        assert!(queue.enqueue(&[job]).await.unwrap().is_empty());
        assert_eq!(queue.count_jobs_in(JobState::Available).await.unwrap(), 1);
    }

    async fn lower_priorities_run_first(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let mut late = noop(NoopArgs::default());
        late.priority = 9;
        let mut early = noop(NoopArgs::default());
        early.priority = 0;
        let ids = queue.enqueue(&[late, early]).await.unwrap();
        let fetched = queue.fetch_jobs("default", WORKER, 1, lease()).await.unwrap();
        assert_eq!(fetched[0].id, ids[1]);
    }

    async fn a_retry_waits_for_its_time_and_a_snooze_spends_no_attempt(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let ids = queue.enqueue(&[noop(NoopArgs::default())]).await.unwrap();
        let fetched = queue.fetch_jobs("default", WORKER, 1, lease()).await.unwrap();
        let later = orderly_domain::now() + time::Duration::hours(1);
        finish(&queue, &fetched[0], Outcome::Retry { at: later, error: "busy".into() }).await;
        let job = queue.job(ids[0]).await.unwrap().unwrap();
        assert_eq!((job.state, job.last_error.as_deref()), (JobState::Available, Some("busy")));
        assert!(queue.fetch_jobs("default", WORKER, 1, lease()).await.unwrap().is_empty());
        assert_eq!(queue.next_job_due("default").await.unwrap(), Some(later));

        let ids = queue.enqueue(&[noop(NoopArgs::default())]).await.unwrap();
        let fetched = queue.fetch_jobs("default", WORKER, 1, lease()).await.unwrap();
        assert_eq!(fetched[0].id, ids[0]);
        finish(&queue, &fetched[0], Outcome::Snooze { at: orderly_domain::now() }).await;
        let again = queue.fetch_jobs("default", WORKER, 1, lease()).await.unwrap();
        assert_eq!((again[0].id, again[0].attempt), (ids[0], 1), "the snooze cost no attempt");
    }

    async fn a_discarded_job_is_retried_by_hand_and_an_available_one_cancelled(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let ids = queue.enqueue(&[noop(NoopArgs::default()), noop(NoopArgs::default())]).await.unwrap();
        let fetched = queue.fetch_jobs("default", WORKER, 1, lease()).await.unwrap();
        finish(&queue, &fetched[0], Outcome::Discard { error: "broken".into() }).await;
        let JobChange::Done(retried) = queue.retry_job(fetched[0].id).await.unwrap() else {
            panic!("a discarded job can be retried");
        };
        assert_eq!((retried.state, retried.attempt), (JobState::Available, 0));
        let other = if fetched[0].id == ids[0] { ids[1] } else { ids[0] };
        let JobChange::Done(cancelled) = queue.cancel_job(other).await.unwrap() else {
            panic!("an available job can be cancelled");
        };
        assert_eq!(cancelled.state, JobState::Cancelled);
        assert!(matches!(queue.cancel_job(other).await.unwrap(), JobChange::NotAllowed(_)));
        assert!(matches!(queue.retry_job(i64::MAX).await.unwrap(), JobChange::NotFound));
    }

    async fn a_paused_queue_gives_nothing_until_resumed(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        queue.enqueue(&[noop(NoopArgs::default())]).await.unwrap();
        assert!(queue.pause_queue("default", "test").await.unwrap());
        assert!(queue.fetch_jobs("default", WORKER, 10, lease()).await.unwrap().is_empty());
        assert_eq!(queue.paused_queues().await.unwrap().len(), 1);
        assert!(queue.resume_queue("default").await.unwrap());
        assert_eq!(queue.fetch_jobs("default", WORKER, 10, lease()).await.unwrap().len(), 1);
    }

    async fn a_job_whose_lease_ran_out_is_rescued(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let ids = queue.enqueue(&[noop(NoopArgs::default())]).await.unwrap();
        let expired = orderly_domain::now() - time::Duration::seconds(1);
        assert_eq!(queue.fetch_jobs("default", WORKER, 1, expired).await.unwrap().len(), 1);
        assert_eq!(queue.rescue_expired_jobs().await.unwrap(), 1);
        let job = queue.job(ids[0]).await.unwrap().unwrap();
        assert_eq!(job.state, JobState::Available);
        let again = queue.fetch_jobs("default", "another", 1, lease()).await.unwrap();
        assert_eq!((again[0].id, again[0].attempt), (ids[0], 2));
    }

    async fn the_worker_runs_due_jobs_and_applies_the_outcome_rule(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let failing = NoopArgs { fail: Some("not yet".into()), ..NoopArgs::default() };
        let broken = NoopArgs { fail: Some("never".into()), permanent: true, ..NoopArgs::default() };
        let ids = queue
            .enqueue(&[noop(NoopArgs::default()), noop(failing), noop(broken)])
            .await
            .unwrap();
        let finished = worker(&queue).run_due("default", 10).await.unwrap();
        assert_eq!(finished.len(), 3);
        let state = |id| {
            let queue = queue.clone();
            async move { queue.job(id).await.unwrap().unwrap() }
        };
        assert_eq!(state(ids[0]).await.state, JobState::Completed);
        let retried = state(ids[1]).await;
        assert_eq!(retried.state, JobState::Available, "a transient failure is retried");
        assert!(retried.run_at > orderly_domain::now(), "after its backoff");
        assert_eq!(state(ids[2]).await.state, JobState::Discarded);
        assert!(worker(&queue).run_due("default", 10).await.unwrap().is_empty(), "nothing is due");
    }
}
