//! What the orders API answers with.

use orderly_domain::{Order, OrderReturn};
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResource {
    pub id: Uuid,
    /// `pending` until nothing is due, then `paid`; `fulfilled` once every unit not cancelled
    /// has shipped; `cancelled` once every unit is cancelled; `expired` when left unpaid.
    pub status: &'static str,
    /// `unpaid`, `partially_paid`, `paid`, `partially_refunded` or `refunded`.
    pub payment_status: &'static str,
    /// `unfulfilled`, `partially_fulfilled` or `fulfilled`.
    pub fulfillment_status: &'static str,
    pub customer: Customer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub currency: String,
    /// Σ unit price × units neither cancelled nor received back, in minor units.
    pub total: i64,
    /// Money captured, in minor units.
    pub captured: i64,
    /// Money refunded, in minor units.
    pub refunded: i64,
    /// What is still to be paid: max(0, total − (captured − refunded)).
    pub balance_due: i64,
    /// What the shop owes back: max(0, (captured − refunded) − total).
    pub refund_owed: i64,
    pub lines: Vec<OrderLineResource>,
    /// When the receipt e-mail went out; absent until it has.
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub receipt_sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    pub updated_at: OffsetDateTime,
    /// Its returns, oldest first; shown when one order is read or changed, not in listings.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub returns: Option<Vec<ReturnResource>>,
}

/// A return of shipped units.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnResource {
    /// The id to receive it with (`POST /v1/orders/{id}/returns/{return_id}/receive`).
    pub id: Uuid,
    /// `requested` or `received`.
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub lines: Vec<ReturnLineResource>,
    /// The refund recorded when it was received, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refund_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub received_at: Option<OffsetDateTime>,
}

/// Units of a line on a return.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReturnLineResource {
    pub product_id: Uuid,
    pub sku: String,
    /// Units asked for.
    pub quantity: i64,
    /// Units that came back; absent until received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub received: Option<i64>,
    /// Whether they went back in stock; absent until received.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restock: Option<bool>,
}

impl From<&OrderReturn> for ReturnResource {
    fn from(r: &OrderReturn) -> Self {
        Self {
            id: r.id,
            status: r.status.as_str(),
            reason: r.reason.clone(),
            lines: r
                .lines
                .iter()
                .map(|l| ReturnLineResource {
                    product_id: l.product_id.as_uuid(),
                    sku: l.sku.clone(),
                    quantity: l.quantity,
                    received: l.received,
                    restock: l.restock,
                })
                .collect(),
            refund_id: r.refund_id,
            created_at: r.created_at,
            received_at: r.received_at,
        }
    }
}

/// Who the order is for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Customer {
    pub email: String,
    pub name: String,
}

/// A line, with the price and name the product had when the order was placed.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderLineResource {
    pub product_id: Uuid,
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    /// Units ordered.
    pub quantity: i64,
    /// `unit_price` × `quantity`: the line as ordered.
    pub line_total: i64,
    /// Units cancelled (their stock given back).
    pub cancelled: i64,
    /// Units shipped.
    pub shipped: i64,
    /// Units on a return asked for and not yet received.
    pub return_requested: i64,
    /// Units received back by a return: they leave the total.
    pub returned: i64,
    /// Units received back and put back in stock.
    pub restocked: i64,
}

impl From<&Order> for OrderResource {
    fn from(order: &Order) -> Self {
        let ledger = order.ledger();
        Self {
            id: order.id.as_uuid(),
            status: order.status.as_str(),
            payment_status: ledger.payment_status().as_str(),
            fulfillment_status: ledger.fulfillment_status().as_str(),
            customer: Customer {
                email: order.email.clone(),
                name: order.name.clone(),
            },
            note: order.note.clone(),
            currency: order.currency.clone(),
            // From the lines, as `balance_due` and `refund_owed` are: the stored figure is the
            // same, except on an order the release before returns changed after a unit came
            // back (it counts returned units), until this release changes it again.
            total: ledger.total(),
            captured: order.captured,
            refunded: order.refunded,
            balance_due: ledger.balance_due(),
            refund_owed: ledger.refund_owed(),
            lines: order
                .lines
                .iter()
                .map(|l| OrderLineResource {
                    product_id: l.product_id.as_uuid(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    line_total: l.line_total,
                    cancelled: l.cancelled,
                    shipped: l.shipped,
                    return_requested: l.return_requested,
                    returned: l.returned,
                    restocked: l.restocked,
                })
                .collect(),
            receipt_sent_at: order.receipt_sent_at,
            created_at: order.created_at,
            updated_at: order.updated_at,
            returns: order
                .returns
                .as_ref()
                .map(|returns| returns.iter().map(ReturnResource::from).collect()),
        }
    }
}

/// One page of orders.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderPage {
    pub data: Vec<OrderResource>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}
