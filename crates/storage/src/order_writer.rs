//! Group commit for orders. Handlers hand their order to a bounded queue; writer tasks take
//! whatever has queued up (up to a batch limit) and place it in one transaction, one savepoint
//! per order, so a burst of orders shares one durable commit instead of paying one each.
//!
//! Bounds: the queue holds at most `queue` orders; when it is full an order is refused at
//! once ([`StoreError::Overloaded`], a `503` the client retries) rather than left waiting
//! with its connection held. A batch holds at most `max_batch`. The in-flight key set holds at
//! most one entry per queued or running order.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, PoisonError};

use tokio::sync::{mpsc, oneshot};
use uuid::Uuid;

use crate::orders::{CreateOrder, CreateOutcome, OrderSettings, RenderOrder};
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
    /// Attempts each order's receipt job gets.
    pub receipt_max_attempts: i32,
    /// Longest one batch's transaction may take (see [`Store::create_orders`]).
    pub write_timeout: std::time::Duration,
}

type Reply = oneshot::Sender<Result<CreateOutcome, StoreError>>;
type InFlight = Mutex<HashSet<(Uuid, String)>>;

/// The handle handlers place orders through. Cheap to clone; the writers stop when the last
/// clone is dropped and the queue is empty.
#[derive(Clone)]
pub struct OrderWriter {
    sender: mpsc::Sender<(CreateOrder, Reply)>,
    in_flight: Arc<InFlight>,
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
    pub fn new(
        store: Store,
        settings: OrderWriterSettings,
        render: Arc<RenderOrder>,
    ) -> (Self, Vec<WriteLoop>) {
        let (sender, receiver) = mpsc::channel(settings.queue.max(1));
        let receiver = Arc::new(tokio::sync::Mutex::new(receiver));
        let writers = match store.kind() {
            BackendKind::Sqlite => 1,
            BackendKind::Postgres => settings.writers.max(1),
        };
        let loops = (0..writers)
            .map(|_| {
                WriteLoop(Box::pin(write_loop(
                    store.clone(),
                    receiver.clone(),
                    settings.clone(),
                    render.clone(),
                )))
            })
            .collect();
        let writer = Self {
            sender,
            in_flight: Arc::new(Mutex::new(HashSet::new())),
        };
        (writer, loops)
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
            .try_send((request, reply))
            .map_err(|error| match error {
                mpsc::error::TrySendError::Full(_) => StoreError::Overloaded,
                mpsc::error::TrySendError::Closed(_) => StoreError::WriterStopped,
            })?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn write_loop(
    store: Store,
    receiver: Arc<tokio::sync::Mutex<mpsc::Receiver<(CreateOrder, Reply)>>>,
    settings: OrderWriterSettings,
    render: Arc<RenderOrder>,
) {
    let order_settings = OrderSettings {
        idempotency_ttl: settings.idempotency_ttl,
        render: render.as_ref(),
        receipt_max_attempts: settings.receipt_max_attempts,
        write_timeout: settings.write_timeout,
    };
    loop {
        let mut requests = Vec::with_capacity(settings.max_batch);
        let mut replies = Vec::with_capacity(settings.max_batch);
        {
            let mut receiver = receiver.lock().await;
            let Some((request, reply)) = receiver.recv().await else {
                return;
            };
            requests.push(request);
            replies.push(reply);
            while requests.len() < settings.max_batch {
                match receiver.try_recv() {
                    Ok((request, reply)) => {
                        requests.push(request);
                        replies.push(reply);
                    }
                    Err(_) => break,
                }
            }
        }
        match store.create_orders(&requests, &order_settings).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) if requests.len() > 1 && !error.is_unavailable() => {
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
                        .create_orders(std::slice::from_ref(&request), &order_settings)
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
}
