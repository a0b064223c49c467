//! `orderly bench …`: load generators that print comparable figures. They measure; they do not
//! judge. Compare figures taken in one run on one machine (see `bench/` and
//! `docs/benchmarks.md`).

mod ceiling;
mod events;
mod orders;
mod queue;
mod receipts;
mod shop;
mod webhooks;

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::cli::BenchCommand;
use crate::config::Config;

pub async fn run(command: BenchCommand, config: &Config) -> anyhow::Result<()> {
    let (report, json) = match command {
        BenchCommand::Orders(args) => {
            let json = args.json;
            (orders::run(args).await?, json)
        }
        BenchCommand::Ceiling(args) => {
            let json = args.json;
            (ceiling::run(args, config).await?, json)
        }
        BenchCommand::Queue(args) => return queue::run(args, config).await,
        BenchCommand::Webhooks(args) => return webhooks::run(args, config).await,
        BenchCommand::Events(args) => return events::run(args, config).await,
        BenchCommand::Receipts(args) => return receipts::run(args, config).await,
    };
    if json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        println!(
            "{}: {:.0} orders/s over {:.1} s, p50 {:.2} ms, p99 {:.2} ms, {} ok, {} errors, {} retries, {} shed, {} not sent",
            report.name,
            report.orders_per_s,
            report.seconds,
            report.p50_ms,
            report.p99_ms,
            report.ok,
            report.errors,
            report.retries,
            report.shed,
            report.skipped
        );
    }
    Ok(())
}

/// What a load run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub name: &'static str,
    pub concurrency: usize,
    pub seconds: f64,
    pub ok: u64,
    /// Orders that finally failed (after every retry, with `--retry`).
    pub errors: u64,
    /// Requests sent again with the same Idempotency-Key (`--retry`).
    pub retries: u64,
    /// Answers that shed the request at once (`503 overloaded`, `429 rate_limited`); without
    /// `--retry` each is also an error.
    pub shed: u64,
    /// With `--rate`: orders not sent because `--concurrency` were unanswered.
    pub skipped: u64,
    pub orders_per_s: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

/// Latencies from one worker: a fixed-size histogram (1 µs to 60 s, 3 significant digits),
/// so a long run never grows memory.
#[derive(Debug)]
pub struct Tally {
    latencies: Histogram<u64>,
    ok: u64,
    errors: u64,
    retries: u64,
    shed: u64,
    skipped: u64,
}

impl Default for Tally {
    fn default() -> Self {
        Self {
            latencies: Histogram::new_with_bounds(1, 60_000_000, 3)
                .expect("constant histogram bounds are valid"),
            ok: 0,
            errors: 0,
            retries: 0,
            shed: 0,
            skipped: 0,
        }
    }
}

impl Tally {
    pub fn record(&mut self, ok: bool, latency: Duration) {
        if ok {
            self.ok += 1;
            let _ = self.latencies.record(
                u64::try_from(latency.as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        } else {
            self.errors += 1;
        }
    }

    /// Counts one request sent again.
    pub fn retried(&mut self) {
        self.retries += 1;
    }

    /// Counts one answer that shed the request (`503 overloaded`, `429 rate_limited`).
    pub fn shed(&mut self) {
        self.shed += 1;
    }

    /// Counts one order the open-loop generator did not send: too many were unanswered.
    pub fn skipped(&mut self) {
        self.skipped += 1;
    }

    pub fn merge(&mut self, other: &Tally) {
        let _ = self.latencies.add(&other.latencies);
        self.ok += other.ok;
        self.errors += other.errors;
        self.retries += other.retries;
        self.shed += other.shed;
        self.skipped += other.skipped;
    }

    pub fn report(&self, name: &'static str, concurrency: usize, elapsed: Duration) -> Report {
        let seconds = elapsed.as_secs_f64();
        let ms = |q| self.latencies.value_at_quantile(q) as f64 / 1_000.0;
        Report {
            name,
            concurrency,
            seconds,
            ok: self.ok,
            errors: self.errors,
            retries: self.retries,
            shed: self.shed,
            skipped: self.skipped,
            orders_per_s: self.ok as f64 / seconds,
            p50_ms: ms(0.50),
            p99_ms: ms(0.99),
        }
    }
}

/// A small, fast, seeded generator for picking products; statistical quality is not needed.
#[derive(Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}
