//! Fleet-wide limits as the queue's claims apply them, on its own schema, on SQLite and
//! PostgreSQL: what runs under another worker's name counts, a lease that ran out gives its
//! slot back, a full partition does not hold up the others behind it, and a rate lets through
//! what it says. Two worker names stand for two processes (the processes themselves are in
//! the service's fleet test, `crates/orderly/tests/fleet.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use orderly_db::{Db, DbOptions};
use orderly_queue::kinds::{BenchProbe, Noop, NoopArgs, ProbeArgs};
use orderly_queue::limits::{KindLimits, Limits};
use orderly_queue::{Claim, Completed, Finished, NewJob, Outcome, Queue};
use orderly_testing::{Backend, TestDatabase, on_both_backends};

async fn queue_on(backend: Backend) -> Option<(TestDatabase, Queue)> {
    let (database, url) = TestDatabase::create(backend).await?;
    let db = Db::connect(&url, &DbOptions::default()).await.unwrap();
    orderly_queue::migrate(&db).await.unwrap();
    Some((database, Queue::new(db)))
}

fn lease() -> time::OffsetDateTime {
    orderly_domain::now() + time::Duration::seconds(30)
}

fn noop_in(partition: &str) -> NewJob {
    NewJob::of::<Noop>(&NoopArgs::default()).partition(partition)
}

fn kind_limits(kind: &str, limits: KindLimits) -> Limits {
    Limits::new(&BTreeMap::new(), &[(kind.to_owned(), limits)].into())
}

fn partitions(claim: &Claim) -> Vec<String> {
    let mut seen: Vec<String> = claim
        .jobs
        .iter()
        .map(|job| job.unique_key.clone().unwrap_or_default())
        .collect();
    seen.sort();
    seen
}

async fn claim(queue: &Queue, worker: &str, wanted: i64, limits: &Limits) -> Claim {
    queue
        .claim_jobs("default", worker, wanted, lease(), limits)
        .await
        .unwrap()
}

async fn complete(queue: &Queue, worker: &str, claim: &Claim) {
    let finished: Vec<Finished> = claim
        .jobs
        .iter()
        .map(|job| Finished {
            id: job.id,
            attempt: job.attempt,
            outcome: Outcome::Completed,
        })
        .collect();
    queue
        .finish_jobs(worker, &finished, Completed::Kept)
        .await
        .unwrap();
}

on_both_backends! {
    async fn a_partition_limit_counts_what_every_worker_runs(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let limits = kind_limits("noop", KindLimits { per_partition: Some(2), ..KindLimits::default() });
        let jobs: Vec<NewJob> = (0..6)
            .map(|i| noop_in(if i % 2 == 0 { "a" } else { "b" }).unique(format!("{i}")))
            .collect();
        queue.enqueue(&jobs).await.unwrap();

        let first = claim(&queue, "worker-1", 10, &limits).await;
        assert_eq!(first.jobs.len(), 4, "two per partition");
        assert!(first.held_until.is_some(), "the rest wait for a slot");
        let second = claim(&queue, "worker-2", 10, &limits).await;
        assert!(second.jobs.is_empty(), "another worker gets none: the slots are the fleet's");
        assert!(second.held_until.is_some());

        // One finishes: one slot of its partition is free, to whichever worker asks.
        complete(&queue, "worker-1", &Claim { jobs: vec![first.jobs[0].clone()], held_until: None }).await;
        let third = claim(&queue, "worker-2", 10, &limits).await;
        assert_eq!(third.jobs.len(), 1);
        let parity = |job: &orderly_queue::Job| job.unique_key.as_deref().unwrap().parse::<u32>().unwrap() % 2;
        assert_eq!(parity(&third.jobs[0]), parity(&first.jobs[0]), "of the partition that freed");
        let wait = third.held_until.unwrap() - orderly_domain::now();
        assert!(wait <= time::Duration::milliseconds(100), "a slot is looked for again within a poll: {wait}");
    }

    async fn a_slot_held_by_a_worker_that_died_is_free_once_its_lease_runs_out(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let limits = kind_limits("noop", KindLimits { concurrency: Some(1), ..KindLimits::default() });
        queue.enqueue(&[noop_in(""), noop_in("")]).await.unwrap();
        // The dead worker's lease has run out already; nobody rescued its job yet.
        let gone = orderly_domain::now() - time::Duration::seconds(1);
        let held = queue.claim_jobs("default", "dead", 1, gone, &limits).await.unwrap();
        assert_eq!(held.jobs.len(), 1);
        let next = claim(&queue, "alive", 1, &limits).await;
        assert_eq!(next.jobs.len(), 1, "the dead worker's slot counts no more");
        assert!(claim(&queue, "alive", 1, &limits).await.jobs.is_empty(), "but the live one does");
    }

    async fn a_full_partition_does_not_hold_up_the_others_behind_it(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let limits = kind_limits("noop", KindLimits { per_partition: Some(4), ..KindLimits::default() });
        // 200 jobs for one partition, enqueued first, then five for each of two others.
        let hung: Vec<NewJob> = (0..200).map(|_| noop_in("hung")).collect();
        queue.enqueue(&hung).await.unwrap();
        let others: Vec<NewJob> = (0..10)
            .map(|i| noop_in(if i < 5 { "b" } else { "c" }).unique(format!("other-{i}")))
            .collect();
        queue.enqueue(&others).await.unwrap();

        let got = claim(&queue, "worker-1", 20, &limits).await;
        assert_eq!(got.jobs.len(), 12, "four of the first partition, four of each other");
        let others_got = partitions(&got).iter().filter(|k| k.starts_with("other-")).count();
        assert_eq!(others_got, 8);
        let more = claim(&queue, "worker-2", 20, &limits).await;
        assert_eq!(more.jobs.len(), 0);
        complete(&queue, "worker-1", &got).await;
        let rest = claim(&queue, "worker-2", 20, &limits).await;
        assert_eq!(rest.jobs.len(), 6, "four, and the two others' last one each");
    }

    async fn a_queue_limit_holds_every_kind_on_it(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let limits = Limits::new(&[("default".to_owned(), 3)].into(), &BTreeMap::new());
        let jobs: Vec<NewJob> = (0..5).map(|_| noop_in("")).collect();
        queue.enqueue(&jobs).await.unwrap();
        assert_eq!(claim(&queue, "worker-1", 2, &limits).await.jobs.len(), 2);
        let second = claim(&queue, "worker-2", 10, &limits).await;
        assert_eq!(second.jobs.len(), 1);
        let third = claim(&queue, "worker-3", 10, &limits).await;
        assert!(third.jobs.is_empty());
        assert!(third.held_until.is_some(), "held for a slot, not idle");
        // A queue without limits is fetched as ever.
        queue.enqueue(&[NewJob::of::<BenchProbe>(&ProbeArgs::default())]).await.unwrap();
        let bench = queue.claim_jobs("bench", "worker-3", 10, lease(), &limits).await.unwrap();
        assert_eq!(bench.jobs.len(), 1);
        assert!(bench.held_until.is_none());
    }

    async fn a_rate_lets_through_what_it_says(backend) {
        let Some((_db, queue)) = queue_on(backend).await else { return };
        let limits = kind_limits("noop", KindLimits { rate: Some("50/s".parse().unwrap()), ..KindLimits::default() });
        let jobs: Vec<NewJob> = (0..400).map(|_| noop_in("")).collect();
        queue.enqueue(&jobs).await.unwrap();
        // Two workers claim as fast as they can until 100 have started. The rate lets 5 start
        // at once, then one every 20 ms: the 100th is due 1.9 s in. A busy machine may claim
        // slower than that, never faster.
        let started = Instant::now();
        let mut taken = 0;
        let mut turn = 0;
        while taken < 100 && started.elapsed() < Duration::from_secs(20) {
            turn += 1;
            let worker = if turn % 2 == 0 { "worker-1" } else { "worker-2" };
            let got = claim(&queue, worker, 100 - taken as i64, &limits).await;
            taken += got.jobs.len();
            if got.jobs.is_empty() {
                let next = got.held_until.expect("held by the rate");
                let wait = next - orderly_domain::now();
                assert!(wait <= time::Duration::milliseconds(20), "the next start is one interval away: {wait}");
                tokio::time::sleep(wait.try_into().unwrap_or_default()).await;
            }
        }
        let seconds = started.elapsed().as_secs_f64();
        assert_eq!(taken, 100, "{taken} in {seconds:.2} s");
        assert!(seconds >= 1.85, "100 started in {seconds:.2} s: faster than 50 a second");
        assert!(seconds <= 4.0, "100 started in {seconds:.2} s: the rate held them back too long");
    }
}

/// A delivery enqueued by a release from before fleet-wide limits names its endpoint only in its
/// arguments: on PostgreSQL (where releases overlap in a rolling deploy) it gets its partition
/// as it is inserted.
#[tokio::test]
async fn a_delivery_enqueued_without_its_partition_is_held_to_its_endpoints_limit() {
    let Some((_db, queue)) = queue_on(Backend::Postgres).await else {
        return;
    };
    let limits = kind_limits(
        "deliver_webhook",
        KindLimits {
            per_partition: Some(2),
            ..KindLimits::default()
        },
    );
    let endpoint = uuid::Uuid::now_v7().to_string();
    let old_style: Vec<NewJob> = (0..3)
        .map(|i| {
            NewJob::named(
                "deliver_webhook",
                serde_json::json!({"event_id": i.to_string(), "endpoint_id": endpoint}),
            )
        })
        .collect();
    queue.enqueue(&old_style).await.unwrap();
    let got = queue
        .claim_jobs("webhooks", "worker-1", 10, lease(), &limits)
        .await
        .unwrap();
    assert_eq!(got.jobs.len(), 2, "two of the endpoint's three");
}
