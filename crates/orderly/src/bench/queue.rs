//! `orderly bench queue`: enqueue no-op jobs in batches, analyze the table (as after any bulk
//! load), drain them with an in-process worker, and measure enqueue-to-start latency on the
//! idle queue; with `--limits`, drain as many
//! again under fleet-wide limits that are never reached, to show what claiming under them
//! costs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use orderly_queue::kinds::{BenchProbe, JobKind, ProbeArgs};
use orderly_queue::limits::{KindLimits, Limits, QueueLimits, Rate};
use orderly_queue::{BoxFuture, Handler, Job, JobError, NewJob, Registry, Worker, WorkerSettings};
use orderly_storage::{Store, StoreOptions};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::cli::QueueBenchArgs;
use crate::config::Config;

/// Counts runs, and for jobs that carry their enqueue time, how long they waited to start.
#[derive(Debug)]
struct Probe {
    runs: AtomicU64,
    waits: Mutex<Histogram<u64>>,
}

/// The handler's handle on the shared probe.
#[derive(Debug, Clone)]
struct ProbeHandler(Arc<Probe>);

impl Handler<BenchProbe> for ProbeHandler {
    fn run<'a>(
        &'a self,
        args: ProbeArgs,
        _job: &'a Job,
        _cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            if let Some(enqueued) = args.enqueued_us {
                let waited = now_us() - enqueued;
                let _ = self
                    .0
                    .waits
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .record(waited.max(1) as u64);
            }
            self.0.runs.fetch_add(1, Ordering::Relaxed);
            Ok(())
        })
    }
}

fn now_us() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

#[derive(Debug, Serialize)]
struct QueueReport {
    backend: &'static str,
    jobs: usize,
    concurrency: usize,
    enqueue_per_s: f64,
    drain_per_s: f64,
    /// The same drain under limits it never reaches (`--limits`).
    #[serde(skip_serializing_if = "Option::is_none")]
    drain_under_limits_per_s: Option<f64>,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
}

pub async fn run(args: QueueBenchArgs, config: &Config) -> anyhow::Result<()> {
    let url = args
        .database_url
        .unwrap_or_else(|| config.database.url.expose().to_owned());
    let store = Store::connect(
        &url,
        &StoreOptions {
            max_connections: (args.concurrency as u32 + 6).max(8),
            ..StoreOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    let probe = Arc::new(Probe {
        runs: AtomicU64::new(0),
        waits: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let bench = Bench {
        store: &store,
        probe: probe.clone(),
        config,
        jobs: args.jobs,
        concurrency: args.concurrency,
    };
    let plain = bench.drain(None).await?;
    let new_job =
        |enqueued_us| NewJob::of::<BenchProbe>(&ProbeArgs { enqueued_us }).on_queue(&plain.queue);
    idle_latency(&store, &probe, args.latency_samples, new_job).await?;
    let (enqueue_per_s, drain_per_s) = (plain.enqueue_per_s, plain.drain_per_s);
    plain.stop().await?;
    let (latency_p50_ms, latency_p99_ms) = {
        let waits = probe.waits.lock().unwrap_or_else(PoisonError::into_inner);
        let ms = |q| waits.value_at_quantile(q) as f64 / 1_000.0;
        (ms(0.5), ms(0.99))
    };
    let drain_under_limits_per_s = if args.limits {
        let limited = bench
            .drain(Some(unreached_limits(args.concurrency)))
            .await?;
        let rate = limited.drain_per_s;
        limited.stop().await?;
        Some(rate)
    } else {
        None
    };
    let report = QueueReport {
        backend: store.kind().as_str(),
        jobs: args.jobs,
        concurrency: args.concurrency,
        enqueue_per_s,
        drain_per_s,
        drain_under_limits_per_s,
        latency_p50_ms,
        latency_p99_ms,
    };
    store.close().await;
    report.print(args.json)
}

/// What every drain of one run shares.
struct Bench<'a> {
    store: &'a Store,
    probe: Arc<Probe>,
    config: &'a Config,
    jobs: usize,
    concurrency: usize,
}

/// A drained queue, its worker still running.
struct Drained {
    queue: String,
    worker: tokio::task::JoinHandle<Result<(), orderly_queue::WorkerError>>,
    stop: CancellationToken,
    enqueue_per_s: f64,
    drain_per_s: f64,
}

impl Drained {
    async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        Ok(self.worker.await??)
    }
}

/// Limits on the benchmark's queue that it never reaches: the queue's and the kind's at once
/// above what one worker holds (its local queue), and a rate far above the drain's.
fn unreached_limits(concurrency: usize) -> QueueLimits {
    let at_once = 10_000;
    debug_assert!(concurrency < at_once);
    QueueLimits {
        concurrency: Some(at_once as u32),
        kinds: [(
            BenchProbe::NAME.to_owned(),
            KindLimits {
                concurrency: Some(at_once as u32),
                rate: Some(Rate::new(1_000_000, Duration::from_secs(1))),
                ..KindLimits::default()
            },
        )]
        .into(),
    }
}

impl Bench<'_> {
    /// Enqueues the jobs on a queue of their own and drains them with a worker, under
    /// `limits` when given.
    async fn drain(&self, limits: Option<QueueLimits>) -> anyhow::Result<Drained> {
        let queue = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
        let started = Instant::now();
        for chunk in (0..self.jobs).collect::<Vec<_>>().chunks(1_000) {
            let batch: Vec<NewJob> = chunk
                .iter()
                .map(|_| NewJob::of::<BenchProbe>(&ProbeArgs::default()).on_queue(&queue))
                .collect();
            self.store.queue().enqueue(&batch).await?;
        }
        let enqueue_per_s = self.jobs as f64 / started.elapsed().as_secs_f64();
        // As an operator would after a bulk load, and so that each drain starts from a table
        // that says what it holds (the second would otherwise find the first's dead rows).
        self.store.queue().analyze().await?;
        let settings = WorkerSettings {
            queues: vec![(queue.clone(), self.concurrency)],
            limits: limits.map(|l| Limits::on(&queue, l)).unwrap_or_default(),
            ..self.config.worker_settings()
        };
        let worker = Worker::new(
            self.store.queue().clone(),
            Registry::new().register::<BenchProbe>(ProbeHandler(self.probe.clone())),
            settings,
        );
        let stop = CancellationToken::new();
        let runs_before = self.probe.runs.load(Ordering::Relaxed);
        let drain_started = Instant::now();
        let worker = tokio::spawn(worker.run(stop.clone()));
        while self.probe.runs.load(Ordering::Relaxed) - runs_before < self.jobs as u64 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        while self.store.queue().count_unfinished_jobs(&queue).await? > 0 {
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let drain_per_s = self.jobs as f64 / drain_started.elapsed().as_secs_f64();
        Ok(Drained {
            queue,
            worker,
            stop,
            enqueue_per_s,
            drain_per_s,
        })
    }
}

/// The idle queue: one job at a time, each waiting to start before the next is enqueued.
async fn idle_latency(
    store: &Store,
    probe: &Probe,
    samples: usize,
    new_job: impl Fn(Option<i64>) -> NewJob,
) -> anyhow::Result<()> {
    for _ in 0..samples {
        let before = probe.runs.load(Ordering::Relaxed);
        store.queue().enqueue(&[new_job(Some(now_us()))]).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while probe.runs.load(Ordering::Relaxed) == before && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(())
}

impl QueueReport {
    fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            println!(
                "{} jobs on {}: enqueue {:.0} jobs/s, drain {:.0} jobs/s (concurrency {}); \
                 idle enqueue-to-start p50 {:.2} ms, p99 {:.2} ms",
                self.jobs,
                self.backend,
                self.enqueue_per_s,
                self.drain_per_s,
                self.concurrency,
                self.latency_p50_ms,
                self.latency_p99_ms
            );
            if let Some(limited) = self.drain_under_limits_per_s {
                println!(
                    "the same under limits not reached: drain {limited:.0} jobs/s ({:.2}x)",
                    limited / self.drain_per_s
                );
            }
        }
        Ok(())
    }
}
