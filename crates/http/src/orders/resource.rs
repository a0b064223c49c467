//! What the orders API answers with.

use orderly_domain::Order;
use serde::Serialize;
use time::OffsetDateTime;
use utoipa::ToSchema;
use uuid::Uuid;

/// An order.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrderResource {
    pub id: Uuid,
    /// `pending`, `paid`, `fulfilled`, `cancelled` or `expired`.
    pub status: &'static str,
    pub customer: Customer,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub currency: String,
    /// Sum of the line totals, in minor units.
    pub total: i64,
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
    pub quantity: i64,
    pub line_total: i64,
}

impl From<&Order> for OrderResource {
    fn from(order: &Order) -> Self {
        Self {
            id: order.id.as_uuid(),
            status: order.status.as_str(),
            customer: Customer {
                email: order.email.clone(),
                name: order.name.clone(),
            },
            note: order.note.clone(),
            currency: order.currency.clone(),
            total: order.total,
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
                })
                .collect(),
            receipt_sent_at: order.receipt_sent_at,
            created_at: order.created_at,
            updated_at: order.updated_at,
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
