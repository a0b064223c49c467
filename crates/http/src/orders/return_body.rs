//! The bodies of the return routes — asking for a return of shipped units, and receiving it —
//! and their parsing into an [`OrderChange`], every problem reported at once.

use orderly_service::{OrderChange, ReceivedOf, ReturnRefund};
use serde_json::{Map, Value};
use utoipa::ToSchema;
use uuid::Uuid;

use super::change_body::{amount_in_range, text, units};
use crate::fields::Fields;

/// Shipped units the customer sends back.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the wire format; the body is read field by field.
pub struct ReturnBody {
    /// The units: each line names a product of the order and at most its shipped units not
    /// already on a return.
    #[schema(value_type = Vec<super::body::OrderLineBody>, min_items = 1, max_items = 100)]
    lines: Vec<Value>,
    /// Up to 1,000 characters.
    #[schema(example = "the wrong size")]
    reason: Option<String>,
}

/// What came back on a return.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReceiveReturnBody {
    /// The units that came back, each at most what its line of the return asked for; a line
    /// of the return not named here did not come back.
    #[schema(min_items = 1, max_items = 100)]
    lines: Vec<ReceivedLineBody>,
    /// A refund to record with it: an amount in minor units (at most what the received
    /// units' lines may still refund, and what was captured and not refunded), or `true` for
    /// the received units' price less what was refunded on their lines, within what was
    /// captured and not refunded. Absent (or `false`): no refund.
    #[schema(value_type = Option<Object>, example = true)]
    refund: Option<Value>,
}

/// Units of a line that came back.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct ReceivedLineBody {
    /// The product's id; give this or `sku`.
    product_id: Option<Uuid>,
    /// The product's SKU; give this or `product_id`.
    sku: Option<String>,
    #[schema(minimum = 1, maximum = 1_000)]
    quantity: i64,
    /// Whether the units go back in stock (default `true`).
    restock: Option<bool>,
}

/// `{"lines", "reason"}`: a return requested.
pub(super) fn request(f: &mut Fields, body: &mut Map<String, Value>) -> Option<OrderChange> {
    let lines = f.required("lines", body.remove("lines"));
    let lines = lines.and_then(|lines| units(f, lines));
    let reason = text(f, "reason", body.remove("reason"), 1_000, false);
    Some(OrderChange::RequestReturn {
        lines: lines?,
        reason: reason?,
    })
}

/// `{"lines": [{…, "restock"}], "refund"}`: return `return_id` received.
pub(super) fn receive(
    f: &mut Fields,
    body: &mut Map<String, Value>,
    return_id: Uuid,
) -> Option<OrderChange> {
    let lines = f.required("lines", body.remove("lines"));
    // Each line's `restock` is taken out first; the rest is an order line as everywhere.
    let mut restock = Vec::new();
    let lines = lines.and_then(|mut lines| {
        if let Value::Array(items) = &mut lines {
            for (i, item) in items.iter_mut().enumerate() {
                let flag = item.as_object_mut().and_then(|o| o.remove("restock"));
                let name = format!("lines[{i}].restock");
                restock.push(match flag {
                    None | Some(Value::Null) => Some(true),
                    flag => f.boolean(&name, flag),
                });
            }
        }
        units(f, lines)
    });
    let refund = match body.remove("refund") {
        None | Some(Value::Null | Value::Bool(false)) => Some(None),
        Some(Value::Bool(true)) => Some(Some(ReturnRefund::Due)),
        Some(amount) => amount_in_range(f, "refund", Some(amount))
            .map(|amount| Some(ReturnRefund::Amount(amount))),
    };
    let lines = lines?
        .into_iter()
        .zip(restock)
        .map(|(line, restock)| {
            Some(ReceivedOf {
                product: line.product,
                quantity: line.quantity,
                restock: restock?,
            })
        })
        .collect::<Option<Vec<_>>>();
    // (A `restock` that is not a boolean was reported by `f.boolean`.)
    Some(OrderChange::ReceiveReturn {
        return_id,
        lines: lines?,
        refund: refund?,
    })
}
