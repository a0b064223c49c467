//! The order as it was created, kept with its idempotency record so that a retry gets the
//! same order back. Storage keeps the order, not an answer: whoever replays it renders it.
//!
//! The stored form is fixed here, apart from any representation: it has the fields and
//! nesting of the API's order in version 1 of the API (`customer` holding `email` and `name`),
//! so records written by earlier versions, which stored the rendered answer itself, read back
//! as snapshots, and a process of an earlier version replays a snapshot written by this one
//! as the answer it would have rendered (both run side by side during a rolling deploy).
//! The lifecycle's figures (`captured`, `refunded`, `version`, and per line `cancelled`,
//! `shipped`, `refunded`), then its returns (per line `returned` and `restocked`, and the
//! order's `returns`), were added later: records without them read as an order just placed,
//! which is what they were, and a process that does not know them ignores them.

use orderly_domain::{
    Order, OrderId, OrderLine, OrderReturn, OrderStatus, ProductId, ReturnLine, ReturnStatus,
};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use uuid::Uuid;

#[derive(Serialize, Deserialize)]
struct Snapshot {
    id: Uuid,
    status: String,
    customer: Customer,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    note: Option<String>,
    currency: String,
    total: i64,
    #[serde(default)]
    captured: i64,
    #[serde(default)]
    refunded: i64,
    #[serde(default = "first_version")]
    version: i64,
    lines: Vec<Line>,
    #[serde(
        default,
        with = "time::serde::rfc3339::option",
        skip_serializing_if = "Option::is_none"
    )]
    receipt_sent_at: Option<OffsetDateTime>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339")]
    updated_at: OffsetDateTime,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    returns: Option<Vec<Return>>,
}

#[derive(Serialize, Deserialize)]
struct Return {
    id: Uuid,
    status: String,
    reason: Option<String>,
    lines: Vec<ReturnLineSnapshot>,
    refund_id: Option<Uuid>,
    #[serde(with = "time::serde::rfc3339")]
    created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    received_at: Option<OffsetDateTime>,
}

#[derive(Serialize, Deserialize)]
struct ReturnLineSnapshot {
    line: usize,
    sku: String,
    product_id: Uuid,
    quantity: i64,
    received: Option<i64>,
    restock: Option<bool>,
}

impl Return {
    fn of(r: &OrderReturn) -> Self {
        Self {
            id: r.id,
            status: r.status.as_str().to_owned(),
            reason: r.reason.clone(),
            lines: r
                .lines
                .iter()
                .map(|l| ReturnLineSnapshot {
                    line: l.line,
                    sku: l.sku.clone(),
                    product_id: l.product_id.as_uuid(),
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

    fn into_return(self) -> Result<OrderReturn, String> {
        Ok(OrderReturn {
            id: self.id,
            status: ReturnStatus::parse(&self.status)
                .ok_or_else(|| format!("unknown return status {}", self.status))?,
            reason: self.reason,
            lines: self
                .lines
                .into_iter()
                .map(|l| ReturnLine {
                    line: l.line,
                    sku: l.sku,
                    product_id: ProductId::from_uuid(l.product_id),
                    quantity: l.quantity,
                    received: l.received,
                    restock: l.restock,
                })
                .collect(),
            refund_id: self.refund_id,
            created_at: self.created_at,
            received_at: self.received_at,
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Customer {
    email: String,
    name: String,
}

#[derive(Serialize, Deserialize)]
struct Line {
    product_id: Uuid,
    sku: String,
    name: String,
    unit_price: i64,
    quantity: i64,
    line_total: i64,
    #[serde(default)]
    cancelled: i64,
    #[serde(default)]
    shipped: i64,
    #[serde(default)]
    refunded: i64,
    #[serde(default)]
    return_requested: i64,
    #[serde(default)]
    returned: i64,
    #[serde(default)]
    restocked: i64,
}

fn first_version() -> i64 {
    1
}

/// The stored form of `order`.
pub(crate) fn write(order: &Order) -> String {
    let snapshot = Snapshot {
        id: order.id.as_uuid(),
        status: order.status.as_str().to_owned(),
        customer: Customer {
            email: order.email.clone(),
            name: order.name.clone(),
        },
        note: order.note.clone(),
        currency: order.currency.clone(),
        total: order.total,
        captured: order.captured,
        refunded: order.refunded,
        version: order.version,
        lines: order
            .lines
            .iter()
            .map(|l| Line {
                product_id: l.product_id.as_uuid(),
                sku: l.sku.clone(),
                name: l.name.clone(),
                unit_price: l.unit_price,
                quantity: l.quantity,
                line_total: l.line_total,
                cancelled: l.cancelled,
                shipped: l.shipped,
                refunded: l.refunded,
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
            .map(|returns| returns.iter().map(Return::of).collect()),
    };
    // Strings, integers and RFC 3339 times of years 0–9999: always serializable.
    serde_json::to_string(&snapshot).unwrap_or_default()
}

/// The order stored by [`write`] for a request by `created_by`.
pub(crate) fn read(stored: &str, created_by: Uuid) -> Result<Order, sqlx::Error> {
    let decode = |e: String| sqlx::Error::Decode(format!("idempotency record: {e}").into());
    let s: Snapshot = serde_json::from_str(stored).map_err(|e| decode(e.to_string()))?;
    let status: OrderStatus = s.status.parse().map_err(decode)?;
    Ok(Order {
        id: OrderId::from_uuid(s.id),
        status,
        email: s.customer.email,
        name: s.customer.name,
        note: s.note,
        currency: s.currency,
        total: s.total,
        captured: s.captured,
        refunded: s.refunded,
        version: s.version,
        lines: s
            .lines
            .into_iter()
            .map(|l| OrderLine {
                product_id: ProductId::from_uuid(l.product_id),
                sku: l.sku,
                name: l.name,
                unit_price: l.unit_price,
                quantity: l.quantity,
                line_total: l.line_total,
                cancelled: l.cancelled,
                shipped: l.shipped,
                refunded: l.refunded,
                return_requested: l.return_requested,
                returned: l.returned,
                restocked: l.restocked,
            })
            .collect(),
        created_by,
        receipt_sent_at: s.receipt_sent_at,
        created_at: s.created_at,
        updated_at: s.updated_at,
        returns: s
            .returns
            .map(|returns| returns.into_iter().map(Return::into_return).collect())
            .transpose()
            .map_err(decode)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn order() -> Order {
        let at = orderly_domain::now();
        Order {
            id: OrderId::generate(),
            status: OrderStatus::Pending,
            email: "ada@example.com".into(),
            name: "Ada \u{1F600} \"L\"".into(),
            note: Some("ring twice".into()),
            currency: "EUR".into(),
            total: 1_250,
            captured: 1_250,
            refunded: 250,
            version: 4,
            lines: vec![OrderLine {
                product_id: ProductId::from_uuid(Uuid::now_v7()),
                sku: "TEA-1".into(),
                name: "Tea".into(),
                unit_price: 1_250,
                quantity: 2,
                line_total: 2_500,
                cancelled: 1,
                shipped: 1,
                refunded: 250,
                return_requested: 0,
                returned: 1,
                restocked: 1,
            }],
            created_by: Uuid::now_v7(),
            receipt_sent_at: None,
            created_at: at,
            updated_at: at,
            returns: None,
        }
    }

    #[test]
    fn an_order_reads_back_as_it_was_written() {
        let order = order();
        let read = read(&write(&order), order.created_by).unwrap();
        assert_eq!(format!("{read:?}"), format!("{order:?}"));
    }

    #[test]
    fn an_answer_stored_by_an_earlier_version_reads_as_its_order() {
        let id = Uuid::now_v7();
        let stored = format!(
            r#"{{"id":"{id}","status":"pending","customer":{{"email":"a@b.example","name":"A"}},"currency":"EUR","total":100,"lines":[],"created_at":"2026-12-01T10:00:00.123456Z","updated_at":"2026-12-01T10:00:00.123456Z"}}"#
        );
        let order = read(&stored, Uuid::nil()).unwrap();
        assert_eq!(order.id.as_uuid(), id);
        assert_eq!(order.note, None);
        assert_eq!((order.captured, order.refunded, order.version), (0, 0, 1));
        // Written again, it keeps every field of the earlier form as it was.
        let earlier: serde_json::Value = serde_json::from_str(&stored).unwrap();
        let now: serde_json::Value = serde_json::from_str(&write(&order)).unwrap();
        for (field, value) in earlier.as_object().unwrap() {
            assert_eq!(&now[field], value, "{field}");
        }
    }

    #[test]
    fn a_damaged_record_is_an_error() {
        assert!(read("{\"id\": 1}", Uuid::nil()).is_err());
    }
}
