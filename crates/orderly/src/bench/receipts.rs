//! `orderly bench receipts`: receipts over SMTP. Places `--receipts` orders through an API in
//! this process with no worker running, then starts one worker (every queue, as `orderly
//! worker` runs it) sending to `--smtp`, and measures the drain of that backlog: receipts a
//! second, and this process's CPU per receipt meanwhile. `bench/receipts.sh` runs it under a
//! one-core CPU quota against Postfix's `smtp-sink`.

use std::time::{Duration, Instant};

use anyhow::bail;
use orderly_queue::JobState;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::shop::Shop;
use crate::app::{Application, Roles, open_store};
use crate::cli::ReceiptsBenchArgs;
use crate::config::{Config, SecretUrl};

/// The product every order is for.
const SKU: &str = "BENCH-RECEIPT";

#[derive(Debug, Serialize)]
struct ReceiptsReport {
    backend: &'static str,
    receipts: u64,
    concurrency: usize,
    seconds: f64,
    receipts_per_s: f64,
    /// CPU this process used during the drain (the worker's, and the benchmark's look at
    /// the queue every 20 ms), in milliseconds per receipt and in cores.
    cpu_ms_per_receipt: f64,
    cpu_cores: f64,
    /// Receipt jobs that did not complete (discarded after their attempts).
    failed: i64,
}

pub async fn run(args: ReceiptsBenchArgs, config: &Config) -> anyhow::Result<()> {
    let config = bench_config(&args, config);
    let receipts = args.receipts;

    let api = Application::build(&config, Roles::API).await?;
    // The benchmark's own connections: each application closes its pool when it stops.
    let store = open_store(&config, "orderly bench receipts").await?;
    let shop = Shop::open(&store, api.port(), "bench receipts").await?;
    let stop = CancellationToken::new();
    let serving = tokio::spawn(api.serve(stop.clone()));
    shop.create_product(SKU).await?;
    eprintln!("placing {receipts} orders, no worker running");
    shop.place_orders(SKU, receipts, args.order_clients).await?;
    stop.cancel();
    serving.await??;
    let backlog = store.queue().count_unfinished_jobs("default").await?;
    if backlog < i64::try_from(receipts)? {
        bail!("{backlog} receipts wait to be sent, fewer than the {receipts} orders placed");
    }
    let failed_before = store.queue().count_jobs_in(JobState::Discarded).await?;
    // As after any bulk load: the worker's statements planned for the table as it is.
    store.queue().analyze().await?;

    eprintln!("sending {backlog} receipts with one worker");
    let worker = Application::build(&config, Roles::WORKER).await?;
    let cpu_before = process_cpu_seconds();
    let started = Instant::now();
    let stop = CancellationToken::new();
    let working = tokio::spawn(worker.serve(stop.clone()));
    let deadline = started + Duration::from_secs(args.timeout_secs);
    loop {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let left = store.queue().count_unfinished_jobs("default").await?;
        if left == 0 {
            break;
        }
        if Instant::now() > deadline {
            bail!("{left} receipts still unsent after {} s", args.timeout_secs);
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu = process_cpu_seconds() - cpu_before;
    stop.cancel();
    working.await??;
    let failed = store.queue().count_jobs_in(JobState::Discarded).await? - failed_before;
    let sent = u64::try_from(backlog)?;
    let report = ReceiptsReport {
        backend: store.kind().as_str(),
        receipts: sent,
        concurrency: config.worker.queues.get("default").copied().unwrap_or(0),
        seconds,
        receipts_per_s: sent as f64 / seconds,
        cpu_ms_per_receipt: cpu * 1_000.0 / sent as f64,
        cpu_cores: cpu / seconds,
        failed,
    };
    store.close().await;
    report.print(args.json)
}

/// The configuration the benchmark runs with: receipts over `--smtp`, no scheduler (its jobs
/// would share the queue), no rate limits, the API on a port of its own and the worker's on
/// another.
fn bench_config(args: &ReceiptsBenchArgs, config: &Config) -> Config {
    let mut config = config.clone();
    if let Some(url) = &args.database_url {
        config.database.url = SecretUrl::new(url.clone());
    }
    config.http.listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.worker.metrics_listen = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.worker.scheduler = false;
    // Placing the orders is set-up, not measured: faster than one key's quota allows.
    config.rate_limits.enabled = false;
    config.mail.smtp_url = SecretUrl::new(args.smtp.clone());
    if let Some(concurrency) = args.concurrency {
        config.worker.queues.insert("default".into(), concurrency);
    }
    config
}

/// CPU seconds (user and system) this process has used so far.
fn process_cpu_seconds() -> f64 {
    metrics_process::collector::collect()
        .cpu_seconds_total
        .unwrap_or(0.0)
}

impl ReceiptsReport {
    fn print(&self, json: bool) -> anyhow::Result<()> {
        if json {
            println!("{}", serde_json::to_string(self)?);
        } else {
            println!(
                "{} receipts over SMTP on {}: {:.2} s = {:.0} receipts/s (concurrency {}); \
                 CPU {:.3} ms per receipt, {:.2} cores; {} failed",
                self.receipts,
                self.backend,
                self.seconds,
                self.receipts_per_s,
                self.concurrency,
                self.cpu_ms_per_receipt,
                self.cpu_cores,
                self.failed
            );
        }
        Ok(())
    }
}
