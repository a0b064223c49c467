//! The outbox's readers' side, run in every worker; the one holding the `events` lease does
//! the work: it positions committed events (the order `GET /v1/events` pages in and the relay
//! publishes in), and, when NATS is configured, relays them ([`relay`]). Every worker with a
//! relay samples its backlog into the metrics, so a relay that is not running at all still
//! shows.

mod relay;

use std::time::{Duration, Instant};

use orderly_storage::{NATS_RELAY, Store, cause_chain};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub use async_nats::jetstream::stream::RetentionPolicy;
use relay::Relay;
pub use relay::RelaySettings;

/// How long the leader's lease lasts without renewal: a successor takes over within it.
const LEASE: Duration = Duration::from_secs(5);
/// How often the leader renews its lease, and a follower tries to take it.
const RENEW: Duration = Duration::from_secs(1);
/// The wait between passes that found nothing to do.
const IDLE: Duration = Duration::from_millis(50);
/// Events positioned per statement.
const SEQUENCE_BATCH: i64 = 2_000;
/// Longest between two writes of the relay's position while it moves.
const CHECKPOINT: Duration = Duration::from_millis(200);
/// How often the relay's backlog is sampled into the metrics.
const SAMPLE: Duration = Duration::from_secs(1);

/// Runs until `shutdown`: leads when it holds the lease, follows otherwise. The lease and
/// the relay's durable cursor are written by tasks of their own, so that neither write (on
/// SQLite, a wait for the lock behind the order writer) holds up publishing.
pub async fn run(
    store: Store,
    relay: Option<RelaySettings>,
    holder: String,
    shutdown: CancellationToken,
) {
    let (lease_tx, mut lease) = watch::channel(false);
    let lease_task = tokio::spawn(hold_lease(
        store.clone(),
        holder,
        lease_tx,
        shutdown.clone(),
    ));
    let (acked_tx, acked) = watch::channel(0);
    let checkpoint_task = tokio::spawn(checkpoint(store.clone(), acked, shutdown.clone()));
    let mut relay = relay.map(|settings| Relay::new(settings, acked_tx));
    let mut leading = false;
    let mut sampled = Instant::now() - SAMPLE;
    let mut backoff = Backoff::default();
    loop {
        if lease.has_changed().unwrap_or(false) {
            leading = *lease.borrow_and_update();
            if let Some(relay) = &mut relay {
                // Another worker may have moved the cursor meanwhile.
                relay.forget_position();
            }
        }
        if relay.is_some() && sampled.elapsed() >= SAMPLE {
            sampled = Instant::now();
            sample(&store).await;
        }
        let mut busy = false;
        if leading {
            match store.sequence_events(SEQUENCE_BATCH).await {
                Ok(n) => busy |= n as i64 == SEQUENCE_BATCH,
                Err(e) => tracing::warn!(error = %cause_chain(&e), "sequencing events failed"),
            }
            if let Some(relay) = relay.as_mut().filter(|_| backoff.ready()) {
                match relay.pass(&store).await {
                    Ok(relayed) => {
                        backoff.reset();
                        busy |= relayed > 0;
                    }
                    Err(e) => {
                        let error = cause_chain(&*e);
                        let retry_in_ms = backoff.next().as_millis() as u64;
                        tracing::warn!(%error, retry_in_ms, "relaying events to NATS failed");
                        metrics::counter!("events_relay_failures_total").increment(1);
                        if let Err(e) = store.relay_failed(NATS_RELAY, &error).await {
                            tracing::warn!(error = %cause_chain(&e), "recording the relay's failure failed");
                        }
                    }
                }
            }
        }
        if shutdown.is_cancelled() {
            break;
        }
        if !busy {
            tokio::select! {
                () = tokio::time::sleep(IDLE) => {},
                () = shutdown.cancelled() => break,
            }
        }
    }
    drop(relay);
    let _ = lease_task.await;
    let _ = checkpoint_task.await;
}

/// Takes or renews the `events` lease every [`RENEW`], and says whether this process holds it.
async fn hold_lease(
    store: Store,
    holder: String,
    leading: watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut renew = tokio::time::interval(RENEW);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = renew.tick() => {},
            () = shutdown.cancelled() => return,
        }
        let until = orderly_domain::now() + LEASE;
        let held = match store.acquire_lease("events", &holder, until).await {
            Ok(held) => held,
            Err(e) => {
                tracing::warn!(error = %cause_chain(&e), "events lease check failed");
                false
            }
        };
        if held != *leading.borrow() {
            tracing::info!(%holder, leading = held, "events sequencer and relay lease");
            leading.send_replace(held);
        }
    }
}

/// Records the relay's acknowledged position in the database as it moves, at most every
/// [`CHECKPOINT`]: a relay that restarts republishes from there, within the stream's
/// duplicate window. The last position is recorded at shutdown.
async fn checkpoint(store: Store, mut acked: watch::Receiver<i64>, shutdown: CancellationToken) {
    let mut recorded = 0;
    loop {
        let stopping = tokio::select! {
            changed = acked.changed() => changed.is_err(),
            () = shutdown.cancelled() => true,
        };
        let position = *acked.borrow_and_update();
        if position > recorded {
            match store.relay_delivered(NATS_RELAY, position).await {
                Ok(()) => recorded = position,
                Err(e) => {
                    tracing::warn!(error = %cause_chain(&e), "recording the relay's position failed")
                }
            }
        }
        if stopping {
            return;
        }
        tokio::time::sleep(CHECKPOINT).await;
    }
}

/// The relay's backlog, as gauges: how many events wait and how old the oldest is.
async fn sample(store: &Store) {
    match store.relay_state(NATS_RELAY).await {
        Ok(state) => {
            let lag = state.oldest_waiting.map_or(0.0, |at| {
                (orderly_domain::now() - at).as_seconds_f64().max(0.0)
            });
            metrics::gauge!("events_relay_lag_seconds").set(lag);
            metrics::gauge!("events_relay_waiting").set(state.waiting as f64);
            metrics::gauge!("events_relay_failing")
                .set(f64::from(u8::from(state.failing_since.is_some())));
        }
        Err(e) => tracing::warn!(error = %cause_chain(&e), "sampling the relay's backlog failed"),
    }
}

/// Waits between failed relay passes: 100 ms doubling to 5 s, reset by a success.
#[derive(Debug, Default)]
struct Backoff {
    wait: Option<Duration>,
    until: Option<Instant>,
}

impl Backoff {
    fn ready(&self) -> bool {
        self.until.is_none_or(|until| Instant::now() >= until)
    }

    /// The next wait, which starts now.
    fn next(&mut self) -> Duration {
        let wait = self.wait.map_or(Duration::from_millis(100), |w| {
            (w * 2).min(Duration::from_secs(5))
        });
        self.wait = Some(wait);
        self.until = Some(Instant::now() + wait);
        wait
    }

    fn reset(&mut self) {
        self.wait = None;
        self.until = None;
    }
}
