//! Orders: what a customer asked for, the state machine an order moves through, and the
//! parsed form of a request to create one.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::product::{ProductId, Sku};
use crate::validation::{FieldError, check_length, check_range, check_text};

/// An order's id: a UUIDv7, time-ordered and unguessable like product ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(Uuid);

impl OrderId {
    pub fn generate() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn from_uuid(uuid: Uuid) -> Self {
        Self(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for OrderId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// Where an order is in its life.
///
/// ```text
/// pending ──pay──▶ paid ──fulfill──▶ fulfilled
///    │ └──expire──▶ expired           
///    └──cancel──▶ cancelled ◀──cancel── paid
/// ```
/// Cancelling and expiring give the reserved stock back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderStatus {
    Pending,
    Paid,
    Fulfilled,
    Cancelled,
    Expired,
}

/// Something that moves an order from one status to another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OrderAction {
    Pay,
    Fulfill,
    Cancel,
    /// Used by the scheduler for orders left unpaid too long.
    Expire,
}

/// The action is not allowed from the order's current status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("cannot {action} an order that is {from}")]
pub struct InvalidTransition {
    pub from: OrderStatus,
    pub action: OrderAction,
}

impl OrderStatus {
    pub const ALL: [OrderStatus; 5] = [
        OrderStatus::Pending,
        OrderStatus::Paid,
        OrderStatus::Fulfilled,
        OrderStatus::Cancelled,
        OrderStatus::Expired,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::Pending => "pending",
            OrderStatus::Paid => "paid",
            OrderStatus::Fulfilled => "fulfilled",
            OrderStatus::Cancelled => "cancelled",
            OrderStatus::Expired => "expired",
        }
    }

    /// The status `action` leads to from this one, if it is allowed.
    pub fn apply(self, action: OrderAction) -> Result<OrderStatus, InvalidTransition> {
        use OrderAction::*;
        use OrderStatus::*;
        match (self, action) {
            (Pending, Pay) => Ok(Paid),
            (Paid, Fulfill) => Ok(Fulfilled),
            (Pending | Paid, Cancel) => Ok(Cancelled),
            (Pending, Expire) => Ok(Expired),
            (from, action) => Err(InvalidTransition { from, action }),
        }
    }

    /// The statuses from which `action` is allowed.
    pub fn sources(action: OrderAction) -> Vec<OrderStatus> {
        Self::ALL
            .into_iter()
            .filter(|s| s.apply(action).is_ok())
            .collect()
    }

    /// Whether an order that ends here has given its stock back.
    pub fn releases_stock(self) -> bool {
        matches!(self, OrderStatus::Cancelled | OrderStatus::Expired)
    }
}

impl OrderAction {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderAction::Pay => "pay",
            OrderAction::Fulfill => "fulfill",
            OrderAction::Cancel => "cancel",
            OrderAction::Expire => "expire",
        }
    }
}

impl fmt::Display for OrderStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for OrderAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for OrderStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| format!("unknown order status {s:?}"))
    }
}

/// The `Message-ID` of an order's receipt, `<receipt-<order id>@<domain>>`: stable, so a
/// receipt sent again (its job ran twice) is one message to the recipient's mail system.
pub fn receipt_message_id(order: OrderId, domain: &str) -> String {
    format!("<receipt-{order}@{domain}>")
}

/// The `Message-ID` of the mail telling a customer about one change to their order (event
/// `event`): stable, so a mail sent twice is one message to the recipient's mail system.
pub fn order_update_message_id(event: uuid::Uuid, domain: &str) -> String {
    format!("<update-{event}@{domain}>")
}

/// A customer's e-mail address: at most 254 characters, a local part and a domain that the
/// mailer can send to. This is the one place that decides: the receipt is addressed from the
/// parts kept here, with the checks lettre makes of them (`email_address`'s local part and
/// domain rules, an internationalised domain by its ASCII form), and the domain must also be
/// dotted (no `localhost`) and name no address literal. So `a,b@example.com`,
/// `a(c)@example.com` or `x@evil.example,y@example.com` are refused when the order is placed,
/// not discarded later as unusable recipients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    address: String,
    /// Where the `@` is.
    at: usize,
}

impl Email {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        let value = value.trim();
        check_length(field, value, 3, 254)?;
        let invalid = || FieldError::new(field, "invalid_format", "must be an e-mail address");
        let (local, domain) = value.rsplit_once('@').ok_or_else(invalid)?;
        let well_formed = local.chars().count() <= 64
            && !value.chars().any(|c| c.is_whitespace() || c.is_control())
            && email_address::EmailAddress::is_valid_local_part(local)
            // A quoted local part is valid mail, and a trap for every system downstream.
            && !local.contains('"')
            && is_mail_domain(domain);
        if !well_formed {
            return Err(invalid());
        }
        Ok(Self {
            address: value.to_owned(),
            at: local.len(),
        })
    }

    pub fn as_str(&self) -> &str {
        &self.address
    }

    /// The part before the `@`.
    pub fn local_part(&self) -> &str {
        &self.address[..self.at]
    }

    /// The part after the `@`.
    pub fn domain(&self) -> &str {
        &self.address[self.at + 1..]
    }
}

/// A domain name mail can go to: dotted, each label valid, in ASCII or as an internationalised
/// name whose ASCII form is.
fn is_mail_domain(domain: &str) -> bool {
    let valid = |ascii: &str| {
        ascii.contains('.')
            && !ascii.ends_with('.')
            && !ascii.starts_with('[')
            && ascii.parse::<std::net::IpAddr>().is_err()
            && email_address::EmailAddress::is_valid_domain(ascii)
    };
    valid(domain) || idna::domain_to_ascii(domain).is_ok_and(|ascii| valid(&ascii))
}

/// A customer's name: 1 to 200 characters, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerName(String);

impl CustomerName {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_length(field, value.trim(), 1, 200)?;
        check_text(field, value, &[])?;
        Ok(Self(value.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A free-text note on an order: up to 1,000 characters; line breaks allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note(String);

impl Note {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_length(field, value, 0, 1_000)?;
        check_text(field, value, &['\n', '\r', '\t'])?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Units of one product on one line: 1 to 1,000.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quantity(i64);

impl Quantity {
    pub const MAX: i64 = 1_000;

    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        check_range(field, value, 1, Self::MAX, "").map(Self)
    }

    pub fn get(self) -> i64 {
        self.0
    }
}

/// How an order line names its product.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ProductRef {
    Id(ProductId),
    Sku(Sku),
}

/// One requested line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrderLine {
    pub product: ProductRef,
    pub quantity: Quantity,
}

/// A validated request for an order: 1 to 100 lines, each product at most once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOrder {
    pub email: Email,
    pub name: CustomerName,
    pub lines: Vec<NewOrderLine>,
    pub note: Option<Note>,
}

impl NewOrder {
    pub const MAX_LINES: usize = 100;
}

/// A line as ordered, with the product's price and name snapshotted at order time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderLine {
    pub product_id: ProductId,
    pub sku: String,
    pub name: String,
    pub unit_price: i64,
    pub quantity: i64,
    /// `unit_price` × `quantity`: the line as ordered.
    pub line_total: i64,
    /// Units cancelled (their stock given back).
    pub cancelled: i64,
    /// Units shipped.
    pub shipped: i64,
    /// Money refunded against this line by refunds that named it.
    pub refunded: i64,
    /// Units on a return asked for and not yet received.
    pub return_requested: i64,
    /// Units received back by a return.
    pub returned: i64,
    /// Units received back and put back in stock.
    pub restocked: i64,
}

impl OrderLine {
    /// A line as placed: nothing cancelled, shipped or refunded yet.
    pub fn placed(
        product_id: ProductId,
        sku: String,
        name: String,
        unit_price: i64,
        quantity: i64,
        line_total: i64,
    ) -> Self {
        Self {
            product_id,
            sku,
            name,
            unit_price,
            quantity,
            line_total,
            cancelled: 0,
            shipped: 0,
            refunded: 0,
            return_requested: 0,
            returned: 0,
            restocked: 0,
        }
    }
}

/// An order as stored and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Order {
    pub id: OrderId,
    pub status: OrderStatus,
    pub email: String,
    pub name: String,
    pub note: Option<String>,
    pub currency: String,
    /// Σ unit price × units not cancelled, in minor units.
    pub total: i64,
    /// Money captured, and refunded, in minor units.
    pub captured: i64,
    pub refunded: i64,
    /// Moves on with every change: the order's ETag.
    pub version: i64,
    pub lines: Vec<OrderLine>,
    /// The API key that created the order; storefront keys see only their own orders.
    pub created_by: Uuid,
    /// When the receipt e-mail first went out.
    pub receipt_sent_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
    /// Its returns, oldest first, when they were read (reads of one order read them;
    /// listings do not).
    pub returns: Option<Vec<crate::OrderReturn>>,
}

/// Multiplies and sums line prices without overflow: `None` when the total does not fit.
pub fn order_total(lines: &[(i64, i64)]) -> Option<(Vec<i64>, i64)> {
    let mut totals = Vec::with_capacity(lines.len());
    let mut sum: i64 = 0;
    for &(unit_price, quantity) in lines {
        let line_total = unit_price.checked_mul(quantity)?;
        sum = sum.checked_add(line_total)?;
        totals.push(line_total);
    }
    Some((totals, sum))
}

#[cfg(test)]
mod tests {
    use super::*;

    use OrderAction::*;
    use OrderStatus::*;

    #[test]
    fn every_pair_of_status_and_action_is_allowed_exactly_as_documented() {
        let allowed = [
            (Pending, Pay, Paid),
            (Paid, Fulfill, Fulfilled),
            (Pending, Cancel, Cancelled),
            (Paid, Cancel, Cancelled),
            (Pending, Expire, Expired),
        ];
        for from in OrderStatus::ALL {
            for action in [Pay, Fulfill, Cancel, Expire] {
                let expected = allowed
                    .iter()
                    .find(|(f, a, _)| *f == from && *a == action)
                    .map(|(_, _, to)| *to);
                match (from.apply(action), expected) {
                    (Ok(to), Some(expected)) => assert_eq!(to, expected, "{from} {action}"),
                    (Err(e), None) => assert_eq!(e, InvalidTransition { from, action }),
                    (got, expected) => {
                        panic!("{from} {action}: got {got:?}, expected {expected:?}")
                    }
                }
            }
        }
    }

    #[test]
    fn terminal_statuses_allow_nothing() {
        for from in [Fulfilled, Cancelled, Expired] {
            for action in [Pay, Fulfill, Cancel, Expire] {
                assert!(from.apply(action).is_err());
            }
        }
    }

    #[test]
    fn only_cancelled_and_expired_orders_give_stock_back() {
        let releasing: Vec<_> = OrderStatus::ALL
            .into_iter()
            .filter(|s| s.releases_stock())
            .collect();
        assert_eq!(releasing, [Cancelled, Expired]);
        assert_eq!(OrderStatus::sources(Cancel), [Pending, Paid]);
    }

    #[test]
    fn amounts_and_receipt_ids_are_written_one_way() {
        assert_eq!(crate::format_money(2_500, "EUR"), "25.00 EUR");
        assert_eq!(crate::format_money(-5, "EUR"), "-0.05 EUR");
        let id = OrderId::generate();
        assert_eq!(
            receipt_message_id(id, "shop.example"),
            format!("<receipt-{id}@shop.example>")
        );
    }

    #[test]
    fn statuses_round_trip_through_their_names() {
        for status in OrderStatus::ALL {
            assert_eq!(status.as_str().parse::<OrderStatus>().unwrap(), status);
        }
    }

    #[test]
    fn emails_need_a_local_part_an_at_and_a_dotted_domain() {
        assert!(Email::parse("e", "ana@example.com").is_ok());
        assert!(Email::parse("e", "  ana+tag@mail.example.co.uk ").is_ok());
        assert!(Email::parse("e", "o'brien.x_y-z!#$%&*/=?^`{|}~@example.com").is_ok());
        assert!(Email::parse("e", "ana@bücher.example").is_ok());
        let email = Email::parse("e", "ana+tag@example.com").unwrap();
        assert_eq!(
            (email.local_part(), email.domain()),
            ("ana+tag", "example.com")
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.com",
            "ana@localhost",
            "a na@example.com",
            "ana@example.com.",
            "<a@b.c>",
            "a,b@example.com",
            "a(c)@example.com",
            "x@evil.example,y@example.com",
            "javascript:alert(1)//@example.com",
            "\"a b\"@example.com",
            "ana@[127.0.0.1]",
            "ana@127.0.0.1",
            "ana@exa mple.com",
            "ana@-example.com",
            "ana\u{0}@example.com",
        ] {
            assert!(Email::parse("e", bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn quantities_are_one_to_a_thousand() {
        assert!(Quantity::parse("q", 0).is_err());
        assert!(Quantity::parse("q", -3).is_err());
        assert!(Quantity::parse("q", 1_001).is_err());
        assert_eq!(Quantity::parse("q", 1_000).unwrap().get(), 1_000);
    }

    #[test]
    fn totals_are_exact_and_overflow_is_detected() {
        assert_eq!(
            order_total(&[(1250, 2), (99, 3)]),
            Some((vec![2500, 297], 2797))
        );
        assert_eq!(order_total(&[(i64::MAX, 2)]), None);
        assert_eq!(order_total(&[(i64::MAX, 1), (1, 1)]), None);
    }
}
