//! `orderly bench queue`: enqueue no-op jobs in batches, drain them with an in-process worker,
//! and measure enqueue-to-start latency on the idle queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use orderly_queue::kinds::{BenchProbe, ProbeArgs};
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
    fn run<'a>(&'a self, args: ProbeArgs, _job: &'a Job) -> BoxFuture<'a, Result<(), JobError>> {
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
    let queue = format!("bench-{}", &uuid::Uuid::new_v4().simple().to_string()[..8]);
    let new_job =
        |enqueued_us| NewJob::of::<BenchProbe>(&ProbeArgs { enqueued_us }).on_queue(&queue);

    let started = Instant::now();
    for chunk in (0..args.jobs).collect::<Vec<_>>().chunks(1_000) {
        let batch: Vec<NewJob> = chunk.iter().map(|_| new_job(None)).collect();
        store.queue().enqueue(&batch).await?;
    }
    let enqueue_per_s = args.jobs as f64 / started.elapsed().as_secs_f64();

    let probe = Arc::new(Probe {
        runs: AtomicU64::new(0),
        waits: Mutex::new(Histogram::new_with_bounds(1, 60_000_000, 3)?),
    });
    let settings = WorkerSettings {
        queues: vec![(queue.clone(), args.concurrency)],
        ..config.worker_settings()
    };
    let worker = Worker::new(
        store.queue().clone(),
        Registry::new().register::<BenchProbe>(ProbeHandler(probe.clone())),
        settings,
    );
    let stop = CancellationToken::new();
    let drain_started = Instant::now();
    let running = tokio::spawn(worker.run(stop.clone()));
    while probe.runs.load(Ordering::Relaxed) < args.jobs as u64 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    while store.queue().count_unfinished_jobs(&queue).await? > 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let drain_per_s = args.jobs as f64 / drain_started.elapsed().as_secs_f64();

    idle_latency(&store, &probe, args.latency_samples, new_job).await?;
    stop.cancel();
    running.await??;
    let (latency_p50_ms, latency_p99_ms) = {
        let waits = probe.waits.lock().unwrap_or_else(PoisonError::into_inner);
        let ms = |q| waits.value_at_quantile(q) as f64 / 1_000.0;
        (ms(0.5), ms(0.99))
    };
    let report = QueueReport {
        backend: store.kind().as_str(),
        jobs: args.jobs,
        concurrency: args.concurrency,
        enqueue_per_s,
        drain_per_s,
        latency_p50_ms,
        latency_p99_ms,
    };
    store.close().await;
    report.print(args.json)
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
        }
        Ok(())
    }
}
