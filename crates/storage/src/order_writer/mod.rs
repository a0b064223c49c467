//! Group commit for orders. Handlers hand their order to a bounded queue; writer tasks take
//! whatever has queued up (up to a batch limit) and place it in one transaction, one savepoint
//! per order, so a burst of orders shares one durable commit instead of paying one each.
//!
//! Bounds: the queue holds at most `queue` orders; when it is full an order is refused at
//! once ([`StoreError::Overloaded`], a `503` the client retries) rather than left waiting
//! with its connection held. A batch holds at most `max_batch`. The in-flight key set holds at
//! most one entry per queued or running order.
//!
//! The queue is bounded in time too, the way CoDel bounds a network queue: a burst may queue,
//! a standing queue may not. When every batch the writers took for a whole
//! `queue_wait_interval` was full and its oldest order had waited at least the target (`queue_wait_target`, or twice the time
//! a batch takes when that is longer: waiting for the batch before is group commit, not a
//! standing queue), the queue is standing (more orders arrive than the
//! database takes): from then on, until an order is taken that waited less, an order that
//! waited the target or more is not written but answered `Overloaded`, new orders are refused
//! at once for half an interval after each, and the number of orders let in at once (an
//! adaptive limit, see [`OrderWriter::admit`]) is halved each interval. Whatever
//! the state, an order of a full batch that waited longer than `max_queue_wait` is shed, and
//! new orders are refused for a quarter of that (a batch that empties the queue is written
//! whole: its orders share one commit, however long the one before took). So under more orders
//! than the database takes the queue drains to what it can write promptly instead of standing
//! full: admitted orders stay about as fast as under normal load, and the rest are told at
//! once.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

mod delay;

use delay::{Congestion, MIN_ADMITTED, QueueDelay};

use crate::orders::{CreateOrder, CreateOutcome, OrderSettings};
use crate::{BackendKind, Store, StoreError};

/// How orders are batched.
#[derive(Debug, Clone)]
pub struct OrderWriterSettings {
    /// How long an idempotency key is remembered.
    pub idempotency_ttl: time::Duration,
    /// Most orders in one transaction.
    pub max_batch: usize,
    /// Most orders waiting for a writer.
    pub queue: usize,
    /// Writer tasks (transactions in parallel) on PostgreSQL; SQLite always uses one.
    pub writers: usize,
    /// Longest one batch's transaction may take (see [`Store::create_orders`]).
    pub write_timeout: std::time::Duration,
    /// Longest an order may wait in the queue for a writer (see the module's description).
    pub max_queue_wait: std::time::Duration,
    /// The wait above which a standing queue sheds (see the module's description).
    pub queue_wait_target: std::time::Duration,
    /// How long every order must have waited past the target before the queue counts as
    /// standing.
    pub queue_wait_interval: std::time::Duration,
}

type Reply = oneshot::Sender<Result<CreateOutcome, StoreError>>;
type Queued = (CreateOrder, Reply, Instant);

type InFlight = Mutex<HashSet<(Uuid, String)>>;

/// The handle handlers place orders through. Cheap to clone; the writers stop when the last
/// clone is dropped and the queue is empty.
#[derive(Clone)]
pub struct OrderWriter {
    sender: mpsc::Sender<Queued>,
    in_flight: Arc<InFlight>,
    congestion: Arc<Congestion>,
    delay: Arc<QueueDelay>,
    /// Orders let in (see [`OrderWriter::admit`]) and not yet answered.
    admitted: Arc<AtomicUsize>,
}

impl std::fmt::Debug for OrderWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OrderWriter")
            .field(
                "queued",
                &(self.sender.max_capacity() - self.sender.capacity()),
            )
            .finish()
    }
}

/// An order let in by [`OrderWriter::admit`]; dropped when it is answered.
#[derive(Debug)]
pub struct AdmittedOrder(Arc<AtomicUsize>);

impl Drop for AdmittedOrder {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Removes an idempotency key from the in-flight set when its request is done (or dropped).
struct InFlightGuard<'a> {
    set: &'a InFlight,
    key: Option<(Uuid, String)>,
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if let Some(key) = self.key.take() {
            self.set
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .remove(&key);
        }
    }
}

/// One of the writer's loops, for the caller to run ([`WriteLoop::run`]) and watch.
pub struct WriteLoop(std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>);

impl WriteLoop {
    /// Writes orders until every clone of the writer is dropped.
    pub async fn run(self) {
        self.0.await
    }
}

impl std::fmt::Debug for WriteLoop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteLoop")
    }
}

impl OrderWriter {
    /// The writer, and the write loops the caller must run (and watch: orders fail with
    /// [`StoreError::WriterStopped`] once none runs). A loop ends when every clone of the
    /// writer is dropped.
    pub fn new(store: Store, settings: OrderWriterSettings) -> (Self, Vec<WriteLoop>) {
        let (sender, receiver) = mpsc::channel(settings.queue.max(1));
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let congestion = Arc::new(Congestion {
            since: Instant::now(),
            until_micros: AtomicU64::new(0),
        });
        let writers = match store.kind() {
            BackendKind::Sqlite => 1,
            BackendKind::Postgres => settings.writers.max(1),
        };
        let delay = Arc::new(QueueDelay {
            target: settings.queue_wait_target,
            interval: settings.queue_wait_interval,
            state: Mutex::default(),
            limit: AtomicUsize::new(settings.queue.max(MIN_ADMITTED)),
            max_limit: settings.queue.max(MIN_ADMITTED),
            batch_micros: AtomicU64::new(0),
        });
        let loops = (0..writers)
            .map(|_| {
                WriteLoop(Box::pin(write_loop(
                    store.clone(),
                    receiver.clone(),
                    settings.clone(),
                    congestion.clone(),
                    delay.clone(),
                )))
            })
            .collect();
        let writer = Self {
            sender,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
            congestion,
            delay,
            admitted: Arc::new(AtomicUsize::new(0)),
        };
        (writer, loops)
    }

    /// Lets a new order in, or `None` when it is to be refused at once: for a while after an
    /// order was shed, and while as many orders as the adaptive limit allows are in already.
    /// Cheap: asked once per order, before its body is read (the placing use case,
    /// `orderly_service::OrderPlacement::admit`), and what it gets is held until the order is
    /// answered. [`OrderWriter::place`] does not ask again.
    pub fn admit(&self) -> Option<AdmittedOrder> {
        if self.congestion.active() {
            return None;
        }
        let limit = self.delay.limit.load(Ordering::Relaxed);
        let admitted = self.admitted.fetch_add(1, Ordering::AcqRel);
        let order = AdmittedOrder(self.admitted.clone());
        (admitted < limit).then_some(order)
    }

    /// Places one order and waits for its commit. A second request with the same key while
    /// the first is queued or running is answered [`CreateOutcome::InFlight`] at once.
    pub async fn place(&self, request: CreateOrder) -> Result<CreateOutcome, StoreError> {
        let key = (request.api_key, request.idempotency_key.clone());
        if !self
            .in_flight
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key.clone())
        {
            return Ok(CreateOutcome::InFlight);
        }
        let _guard = InFlightGuard {
            set: &self.in_flight,
            key: Some(key),
        };
        let (reply, answer) = oneshot::channel();
        self.sender
            .try_send((request, reply, Instant::now()))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => {
                    metrics::counter!("orders_shed_total", "reason" => "queue_full").increment(1);
                    StoreError::Overloaded
                }
                mpsc::error::TrySendError::Closed(_) => StoreError::WriterStopped,
            })?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn write_loop(
    store: Store,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<Queued>>>,
    settings: OrderWriterSettings,
    congestion: Arc<Congestion>,
    delay: Arc<QueueDelay>,
) {
    let order_settings = OrderSettings {
        idempotency_ttl: settings.idempotency_ttl,
        write_timeout: settings.write_timeout,
    };
    let mut queued = Vec::with_capacity(settings.max_batch);
    loop {
        {
            let mut receiver = receiver.lock().await;
            let Some(first) = receiver.recv().await else {
                return;
            };
            queued.push(first);
            while queued.len() < settings.max_batch {
                match receiver.try_recv() {
                    Ok(next) => queued.push(next),
                    Err(_) => break,
                }
            }
        }
        let (requests, replies) = shed_waited(&mut queued, &settings, &congestion, &delay);
        if requests.is_empty() {
            continue;
        }
        let started = Instant::now();
        let written = store.create_orders(&requests, &order_settings).await;
        delay.batch_took(started.elapsed());
        answer(&store, &order_settings, requests, replies, written).await;
    }
}

/// Takes the batch out of `queued`, answering `Overloaded` to the orders that waited too
/// long; the rest are to be written.
fn shed_waited(
    queued: &mut Vec<Queued>,
    settings: &OrderWriterSettings,
    congestion: &Congestion,
    delay: &QueueDelay,
) -> (Vec<CreateOrder>, Vec<Reply>) {
    let mut requests = Vec::with_capacity(queued.len());
    let mut replies = Vec::with_capacity(queued.len());
    let now = Instant::now();
    let full = queued.len() >= settings.max_batch;
    let standing = queued
        .first()
        .is_some_and(|(_, _, since)| delay.standing(now.duration_since(*since), full, now));
    for (request, reply, since) in queued.drain(..) {
        let waited = now.duration_since(since);
        // After a shed, new orders are refused at once for a while: a quarter of
        // max_queue_wait past that bound, half an interval in a standing queue. Only a
        // full batch sheds: one that empties the queue writes all its orders in one
        // commit, so refusing some of them (say, behind a commit a slow disk held up)
        // would spare the database nothing.
        let shed = if full && waited > settings.max_queue_wait {
            Some(("queue_wait", settings.max_queue_wait / 4))
        } else if standing && waited >= delay.target() {
            Some(("standing_queue", settings.queue_wait_interval / 2))
        } else {
            None
        };
        if let Some((reason, refuse_for)) = shed {
            congestion.extend(refuse_for);
            metrics::counter!("orders_shed_total", "reason" => reason).increment(1);
            let _ = reply.send(Err(StoreError::Overloaded));
        } else {
            requests.push(request);
            replies.push(reply);
        }
    }
    (requests, replies)
}

/// Answers each order of a written batch.
async fn answer(
    store: &Store,
    order_settings: &OrderSettings,
    requests: Vec<CreateOrder>,
    replies: Vec<Reply>,
    written: Result<Vec<CreateOutcome>, StoreError>,
) {
    match written {
        Ok(outcomes) => {
            for (reply, outcome) in replies.into_iter().zip(outcomes) {
                let _ = reply.send(Ok(outcome));
            }
        }
        Err(error) if requests.len() > 1 && !error.is_unavailable() && !error.is_storage_full() => {
            // A batch fails whole when any of its orders meets an unexpected error (or the
            // commit fails). Each order then gets a transaction of its own, so one bad
            // order fails alone; one that did commit is replayed by its idempotency key.
            // Not when the database is unavailable (or the commit's outcome unknown):
            // retrying each order against a database that is away would hold this writer
            // for one acquire timeout per order; the clients' retries do it instead.
            tracing::warn!(
                error = %orderly_db::cause_chain(&error),
                batch = requests.len(),
                "order batch failed; retrying its orders one by one"
            );
            for (request, reply) in requests.into_iter().zip(replies) {
                let outcome = store
                    .create_orders(std::slice::from_ref(&request), order_settings)
                    .await
                    .and_then(|mut outcomes| outcomes.pop().ok_or(StoreError::WriterStopped));
                let _ = reply.send(outcome);
            }
        }
        Err(error) => {
            if error.is_commit_outcome_unknown() {
                tracing::warn!(
                    error = %orderly_db::cause_chain(&error),
                    batch = requests.len(),
                    "the connection failed during COMMIT: these orders may or may not exist; \
                     answered 503 so that clients retry with the same Idempotency-Key"
                );
            }
            let error = Arc::new(error);
            for reply in replies {
                let _ = reply.send(Err(StoreError::BatchFailed(error.clone())));
            }
        }
    }
}
