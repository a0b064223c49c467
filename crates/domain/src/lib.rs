//! orderly's domain: the types the rest of the service speaks in, how raw input is parsed into
//! them, and the rules they keep. Nothing here performs I/O or knows about HTTP or SQL.

pub mod actor;
pub mod api_key;
pub mod breaker;
pub mod lifecycle;
pub mod money;
pub mod order;
pub mod page;
pub mod product;
pub mod reservation;
pub mod validation;
pub mod webhook;

pub use actor::{Actor, ActorKind};
pub use api_key::Role;
pub use lifecycle::{
    FulfillmentStatus, Ledger, LifecycleError, LineFigures, LineUnits, PaymentStatus,
    ReceivedUnits,
    returns::{OrderReturn, ReturnLine, ReturnStatus},
};
pub use money::{format_money, parse_money};
pub use order::{
    CustomerName, Email, NewOrder, NewOrderLine, Note, Order, OrderAction, OrderId, OrderLine,
    OrderStatus, ProductRef, Quantity, order_update_message_id, receipt_message_id,
};
pub use page::PageLimit;
pub use product::{
    Currency, Description, NewProduct, Price, Product, ProductId, ProductName, ProductPatch, Sku,
    Stock,
};
pub use validation::{FieldError, ValidationErrors};

/// The current time, truncated to microseconds: the precision both databases keep, so a value
/// written and read back compares equal to the one that was returned to the client.
pub fn now() -> time::OffsetDateTime {
    let now = time::OffsetDateTime::now_utc();
    now.replace_nanosecond(now.nanosecond() / 1_000 * 1_000)
        .unwrap_or(now)
}
