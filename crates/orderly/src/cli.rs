//! The command line: one binary, one subcommand per role or operator task.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use orderly_domain::Role;
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "orderly",
    version,
    about = "An order service: one binary, from laptop to fleet"
)]
pub struct Cli {
    /// Configuration file (TOML). Without it, ./orderly.toml is read when it exists.
    #[arg(long, global = true, env = "ORDERLY_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the whole service in one process (the embedded default). On an empty database it
    /// creates a first admin key and prints it once.
    Run(ServeArgs),
    /// Run the HTTP API only; run as many as you like behind a load balancer.
    Api(ServeArgs),
    /// Run job workers only; run as many as you like against one PostgreSQL database.
    Worker(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Inspect jobs, and retry or cancel them.
    #[command(subcommand)]
    Jobs(JobsCommand),
    /// List the job queues, and pause or resume one for every worker.
    #[command(subcommand)]
    Queues(QueuesCommand),
    /// Record a capture or a shipment for an order, as the API does (the actor is `cli`).
    #[command(subcommand)]
    Orders(OrdersCommand),
    /// Print the effective configuration as TOML, secrets masked.
    Config {
        /// Print instead the reference of every key (Markdown: its default, environment
        /// variable and documentation), as docs/configuration.md holds it.
        #[arg(long)]
        reference: bool,
    },
    /// Exit 0 when the orderly process beside this one (same configuration) answers
    /// `/healthz`: on the API's address, else on a worker's metrics address. For container
    /// health checks.
    Healthcheck {
        /// How long to wait for the answer.
        #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
        timeout: std::time::Duration,
    },
    /// Built-in load generators that print comparable figures.
    #[command(subcommand)]
    Bench(BenchCommand),
}

#[derive(Debug, Subcommand)]
pub enum JobsCommand {
    /// List jobs, newest first.
    List {
        /// Only jobs in this state: available, running, completed, discarded, cancelled.
        #[arg(long)]
        state: Option<String>,
        /// Only jobs of this kind, such as send_receipt.
        #[arg(long)]
        kind: Option<String>,
        /// Only jobs of this queue.
        #[arg(long)]
        queue: Option<String>,
        /// How many (1–100).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
    /// Show one job, with its last error.
    Show { id: i64 },
    /// Send a discarded or cancelled job round again.
    Retry { id: i64 },
    /// Cancel an available or running job.
    Cancel { id: i64 },
}

#[derive(Debug, Subcommand)]
pub enum OrdersCommand {
    /// Record a capture of money for an order: at most its balance due.
    Pay {
        /// The order's id.
        id: String,
        /// As people write it: 12.50 (in the store's currency).
        #[arg(long)]
        amount: String,
        /// Who took the money.
        #[arg(long, default_value = "manual")]
        provider: String,
        /// The provider's id of the capture; recorded once however often it is sent.
        #[arg(long)]
        reference: String,
    },
    /// Record a shipment of units: once nothing is due, at most each line's open units.
    Ship {
        /// The order's id.
        id: String,
        /// A line shipped, as SKU=UNITS; repeat for each line.
        #[arg(long = "line", required = true)]
        lines: Vec<String>,
        #[arg(long)]
        carrier: Option<String>,
        /// The tracking number.
        #[arg(long)]
        number: Option<String>,
        /// The tracking URL (http or https).
        #[arg(long)]
        url: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum QueuesCommand {
    /// Each queue with its available, scheduled, running and discarded jobs.
    List,
    /// Stop every worker from starting jobs of a queue; jobs running now finish.
    Pause { name: String },
    /// Let workers start jobs of a paused queue again.
    Resume { name: String },
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Place real orders over HTTP with fresh idempotency keys; print orders/s, p50, p99 and
    /// errors. Creates its own products first.
    Orders(OrdersBenchArgs),
    /// Run orderly's order transaction directly on the database, one transaction per order,
    /// without HTTP: the ceiling to compare `bench orders` with.
    Ceiling(CeilingArgs),
    /// Enqueue no-op jobs in batches, drain them with a worker, then measure the
    /// enqueue-to-start latency on the idle queue.
    Queue(QueueBenchArgs),
    /// Run orderly with local webhook receivers, place orders, and measure the fan-out:
    /// deliveries per second and the time from event commit to receipt.
    Webhooks(WebhooksBenchArgs),
    /// Run orderly relaying to NATS, place orders as `bench orders` does, and measure the
    /// relay: events/s from commit to broker acknowledgement, and the lag p50/p99.
    Events(EventsBenchArgs),
    /// Place orders with no worker running, then send their receipts over SMTP with one
    /// worker: receipts/s and CPU per receipt (see bench/receipts.sh).
    Receipts(ReceiptsBenchArgs),
}

#[derive(Debug, Args)]
pub struct ReceiptsBenchArgs {
    /// The SMTP server to send to, e.g. `smtp://127.0.0.1:2525` (Postfix's `smtp-sink`).
    #[arg(long)]
    pub smtp: String,
    /// The database to run against (default: the configured one). Use a database of its
    /// own: the benchmark's orders stay.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Orders placed, and so receipts sent.
    #[arg(long, default_value_t = 20_000)]
    pub receipts: u64,
    /// Receipts the worker sends at once (default: `worker.queues.default`).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// HTTP clients placing the orders.
    #[arg(long, default_value_t = 16)]
    pub order_clients: usize,
    /// Give up when the receipts are not all sent within this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Print one JSON object instead of sentences.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct EventsBenchArgs {
    /// The database to run against (default: the configured one). Use a fresh one: the
    /// relay starts from the oldest event it holds.
    #[arg(long)]
    pub database_url: Option<String>,
    /// The NATS server; the benchmark creates a stream of its own and deletes it after.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    pub nats_url: String,
    /// Clients sending orders at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds of orders.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Give up when the relay has not caught up this many seconds after the orders stop.
    #[arg(long, default_value_t = 60)]
    pub timeout_secs: u64,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct WebhooksBenchArgs {
    /// The database to run against (default: the configured one). Use a database of its
    /// own: the benchmark's orders, endpoints and events stay.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Events to fan out (one order placed per event).
    #[arg(long, default_value_t = 1_000)]
    pub events: usize,
    /// Local receivers, each an endpoint subscribed to `order.created`.
    #[arg(long, default_value_t = 10)]
    pub endpoints: usize,
    /// Deliveries the worker makes at once (default: `worker.queues.webhooks`).
    #[arg(long)]
    pub concurrency: Option<usize>,
    /// HTTP clients placing the orders.
    #[arg(long, default_value_t = 16)]
    pub order_clients: usize,
    /// Give up when not every delivery arrived within this many seconds.
    #[arg(long, default_value_t = 300)]
    pub timeout_secs: u64,
    /// Print one JSON object instead of sentences.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct QueueBenchArgs {
    /// The database to run against (default: the configured one). Use a database of its
    /// own: the benchmark's jobs stay until pruned.
    #[arg(long)]
    pub database_url: Option<String>,
    /// Jobs to enqueue and drain.
    #[arg(long, default_value_t = 20_000)]
    pub jobs: usize,
    /// Jobs the worker runs at once.
    #[arg(long, default_value_t = 10)]
    pub concurrency: usize,
    /// Single jobs enqueued one at a time on the idle queue to measure latency.
    #[arg(long, default_value_t = 200)]
    pub latency_samples: usize,
    /// Drain the jobs a second time under fleet-wide limits that are never reached (the
    /// queue's, the kind's at once and per second), and report both drains.
    #[arg(long)]
    pub limits: bool,
    /// Print one JSON object instead of sentences.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct OrdersBenchArgs {
    /// Where orderly listens.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    pub url: String,
    /// An admin key (products are created before the run).
    #[arg(long, env = "ORDERLY_BENCH_KEY")]
    pub key: String,
    /// Clients sending orders at once.
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Open loop: start this many orders a second whatever the answers (each order its own
    /// request), with at most `--concurrency` unanswered. Without it, `--concurrency` clients
    /// each send their next order when the last is answered.
    #[arg(long)]
    pub rate: Option<f64>,
    /// Products the orders spread over.
    #[arg(long, default_value_t = 100)]
    pub products: usize,
    /// Lines per order.
    #[arg(long, default_value_t = 1)]
    pub lines: usize,
    /// Retry as a careful client does: on a connection error, a timeout, `502`, `503`, `429` or
    /// `409 idempotency_key_in_flight`, send the same order again with the same
    /// Idempotency-Key, until `--retry-for` has passed. Without it, every failure counts.
    #[arg(long)]
    pub retry: bool,
    /// With `--retry`, how long one order may keep being retried before it counts as failed.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration)]
    pub retry_for: std::time::Duration,
    /// How long one attempt may take before it counts as timed out.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Append one line per acknowledged order (`<idempotency key> <order id>`) to this file,
    /// for checking afterwards that each of them is stored.
    #[arg(long, value_name = "PATH")]
    pub record: Option<PathBuf>,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CeilingArgs {
    /// The database to run against (default: the configured one).
    #[arg(long)]
    pub database_url: Option<String>,
    /// Transactions running at once (and pool connections).
    #[arg(long, default_value_t = 32)]
    pub concurrency: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Products the orders spread over.
    #[arg(long, default_value_t = 100)]
    pub products: usize,
    /// Lines per order.
    #[arg(long, default_value_t = 1)]
    pub lines: usize,
    /// Print one JSON object instead of a sentence.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Do not apply pending migrations at start (run `orderly migrate` separately).
    #[arg(long)]
    pub no_migrate: bool,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key and print it, as the only line on stdout. It is not shown again.
    Create {
        /// What the key may do: `admin` or `storefront`.
        #[arg(long, value_parser = parse_role)]
        role: Role,
        /// A label to recognise the key by, such as the client that uses it.
        #[arg(long)]
        name: String,
    },
    /// List keys (never their secrets).
    List,
    /// Revoke a key at once.
    Revoke {
        /// The key's id, as `keys list` shows it.
        id: Uuid,
    },
}

fn parse_role(s: &str) -> Result<Role, String> {
    s.parse()
        .map_err(|e: orderly_domain::api_key::UnknownRole| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn keys_create_takes_a_role_and_a_name() {
        let cli = Cli::try_parse_from([
            "orderly",
            "keys",
            "create",
            "--role",
            "storefront",
            "--name",
            "shop",
        ])
        .unwrap();
        assert!(matches!(
            cli.command,
            Command::Keys(KeysCommand::Create {
                role: Role::Storefront,
                ..
            })
        ));
        assert!(
            Cli::try_parse_from(["orderly", "keys", "create", "--role", "root", "--name", "x"])
                .is_err()
        );
    }
}
