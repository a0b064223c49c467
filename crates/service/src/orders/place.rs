//! Placing an order, the whole rule: whether a new order is let in at all (asked once, before
//! its body is read), its write through the group-commit writer (stock, the order, its
//! `order.created` event and idempotency record in one transaction), the receipt job that
//! must follow it (enqueued in that transaction), the cached product reads it leaves stale,
//! and its counter and log line. The API's `POST /v1/orders` extracts, calls and renders.

use orderly_domain::{Currency, NewOrder, Order, OrderId};
use orderly_queue::NewJob;
use orderly_queue::kinds::SendReceipt;
use orderly_storage::{AdmittedOrder, CreateOrder, CreateOutcome, OrderWriter, StoreError};
use uuid::Uuid;

pub use orderly_storage::OrderRejection;

use crate::Services;

/// Places orders for one API process; cheap to clone.
#[derive(Debug, Clone)]
pub struct OrderPlacement {
    services: Services,
    writer: OrderWriter,
    /// The store's currency: every product ordered must be priced in it.
    currency: Currency,
    /// Runs each receipt job gets, looked up once rather than per order.
    receipt_attempts: i32,
}

/// A request to place one order.
#[derive(Debug, Clone)]
pub struct PlaceOrder {
    /// The API key placing the order; idempotency keys are scoped to it.
    pub api_key: Uuid,
    /// Who places it, as its `order.created` event records.
    pub actor: orderly_domain::Actor,
    pub idempotency_key: String,
    /// A hash of the request body: a retry must send the same body.
    pub fingerprint: Vec<u8>,
    pub order: NewOrder,
    /// The W3C `traceparent` of the request, continued by the order's receipt and events.
    pub trace_context: Option<String>,
}

/// How a request to place an order ended.
#[derive(Debug, Clone)]
pub enum Placement {
    /// The order is committed.
    Created(Box<Order>),
    /// A retry of a request that already created an order: that order as it was created.
    Replayed(Box<Order>),
    /// The idempotency key was used before with a different body.
    KeyReused,
    /// The same idempotency key is being processed right now.
    InFlight,
    /// Nothing was written; the client must change the request.
    Rejected(OrderRejection),
}

impl OrderPlacement {
    pub fn new(services: Services, writer: OrderWriter, currency: Currency) -> Self {
        let receipt_attempts = services.settings.attempts.of::<SendReceipt>();
        Self {
            receipt_attempts,
            services,
            writer,
            currency,
        }
    }

    /// Lets a new order in, or `None` when it is to be refused at once (counted as
    /// `orders_shed_total{reason="congested"}`): the writer's admission
    /// ([`OrderWriter::admit`]), asked once per order before its body is read. Hold what
    /// it gives until the order is answered.
    pub fn admit(&self) -> Option<AdmittedOrder> {
        let admitted = self.writer.admit();
        if admitted.is_none() {
            metrics::counter!("orders_shed_total", "reason" => "congested").increment(1);
        }
        admitted
    }

    /// Places one order and waits for its commit.
    pub async fn place(&self, request: PlaceOrder) -> Result<Placement, StoreError> {
        let id = OrderId::generate();
        let receipt = self.receipt_job(id, request.trace_context.as_deref());
        let outcome = self
            .writer
            .place(CreateOrder {
                id,
                api_key: request.api_key,
                actor: request.actor,
                idempotency_key: request.idempotency_key,
                fingerprint: request.fingerprint,
                order: request.order,
                currency: self.currency.as_str().to_owned(),
                trace_context: request.trace_context,
                follow_up: vec![receipt],
            })
            .await?;
        Ok(match outcome {
            CreateOutcome::Created(order) => {
                self.services
                    .forget_products(order.lines.iter().map(|l| (l.product_id, None)))
                    .await;
                metrics::counter!("orders_created_total").increment(1);
                tracing::info!(order_id = %order.id, total = order.total, lines = order.lines.len(), "order placed");
                Placement::Created(order)
            }
            CreateOutcome::Replayed(order) => Placement::Replayed(order),
            CreateOutcome::KeyReused => Placement::KeyReused,
            CreateOutcome::InFlight => Placement::InFlight,
            CreateOutcome::Rejected(rejection) => Placement::Rejected(rejection),
        })
    }

    /// The job that sends order `id`'s receipt: at most one per order.
    fn receipt_job(&self, id: OrderId, trace: Option<&str>) -> NewJob {
        SendReceipt::job(id.as_uuid())
            .max_attempts(self.receipt_attempts)
            .traced(trace)
    }
}
