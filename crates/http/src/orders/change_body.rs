//! The bodies of the routes that change an order (payments, fulfillments, cancellations,
//! refunds) and their parsing into an [`OrderChange`], every problem reported at once. The
//! free-text fields are bounded and refuse control characters; a tracking URL is `http(s)`
//! only, at most 2 KiB.

use orderly_domain::{Currency, FieldError, ValidationErrors};
use orderly_service::{OrderChange, Tracking, UnitsOf};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::body::parse_lines;
use crate::fields::Fields;

/// The largest amount a payment or a refund may name, in minor units: far above any order
/// (an order's total is bounded by its lines), far below where sums could overflow.
const MAX_AMOUNT: i64 = 1_000_000_000_000_000;

/// A capture reported by the shop's payment provider.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the wire format; the body is read field by field.
pub struct PaymentBody {
    /// In the order's currency's minor units; at most the balance due.
    #[schema(example = 1_250, minimum = 1)]
    amount: i64,
    /// Who took the money, 1–100 characters.
    #[schema(example = "stripe")]
    provider: String,
    /// The provider's id of the capture, 1–200 characters: a `(provider, reference)` reported
    /// twice is recorded once.
    #[schema(example = "ch_3PqR2s")]
    reference: String,
    /// The order's currency, if given: another one is refused.
    #[schema(example = "EUR")]
    currency: Option<String>,
}

/// A shipment of units.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct FulfillmentBody {
    /// The units shipped: each line names a product of the order and at most its units not
    /// yet shipped or cancelled.
    #[schema(value_type = Vec<super::body::OrderLineBody>, min_items = 1, max_items = 100)]
    lines: Vec<Value>,
    tracking: Option<TrackingBody>,
}

/// Where a shipment is.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct TrackingBody {
    /// 1–100 characters.
    #[schema(example = "DHL")]
    carrier: Option<String>,
    /// 1–200 characters.
    #[schema(example = "JD014600006281230701")]
    number: Option<String>,
    /// `http` or `https`, without credentials or spaces, at most 2,048 characters.
    #[schema(example = "https://www.dhl.com/track?id=JD014600006281230701")]
    url: Option<String>,
}

/// Units to cancel; no `lines` (an empty object) cancels every unit not yet shipped.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct CancellationBody {
    #[schema(value_type = Option<Vec<super::body::OrderLineBody>>)]
    lines: Option<Vec<Value>>,
}

/// Money the shop's payment provider gave back.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct RefundBody {
    /// In minor units; at most what was captured and not refunded.
    #[schema(example = 500, minimum = 1)]
    amount: i64,
    /// Up to 1,000 characters.
    #[schema(example = "arrived broken")]
    reason: Option<String>,
    /// The units refunded, if the refund is for some: the amount is then at most their price
    /// less what was refunded on them before.
    #[schema(value_type = Option<Vec<super::body::OrderLineBody>>)]
    lines: Option<Vec<Value>>,
    /// The order's currency, if given: another one is refused.
    currency: Option<String>,
}

/// Which change a route makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeRoute {
    Payments,
    Fulfillments,
    Cancellations,
    Refunds,
    Returns,
    /// `returns/{id}/receive`.
    ReceiveReturn(uuid::Uuid),
    /// `PATCH /v1/orders/{id}`: the lines replaced.
    Edit,
}

impl ChangeRoute {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeRoute::Payments => "payments",
            ChangeRoute::Fulfillments => "fulfillments",
            ChangeRoute::Cancellations => "cancellations",
            ChangeRoute::Refunds => "refunds",
            ChangeRoute::Returns => "returns",
            ChangeRoute::ReceiveReturn(_) => "returns/receive",
            ChangeRoute::Edit => "edit",
        }
    }

    /// Parses `body` (a JSON object) into the change this route makes; `currency` is the
    /// store's.
    pub fn parse(self, body: Value, currency: Currency) -> Result<OrderChange, ValidationErrors> {
        let mut f = Fields::new();
        let Value::Object(mut body) = body else {
            f.push(FieldError::new("", "invalid_type", "must be a JSON object"));
            return f.finish(|| None);
        };
        let change = match self {
            ChangeRoute::Payments => payment(&mut f, &mut body, currency),
            ChangeRoute::Fulfillments => fulfillment(&mut f, &mut body),
            ChangeRoute::Cancellations => {
                let lines = optional_lines(&mut f, body.remove("lines"));
                lines.map(|lines| OrderChange::Cancel { lines })
            }
            ChangeRoute::Refunds => refund(&mut f, &mut body, currency),
            ChangeRoute::Returns => super::return_body::request(&mut f, &mut body),
            ChangeRoute::ReceiveReturn(id) => super::return_body::receive(&mut f, &mut body, id),
            ChangeRoute::Edit => {
                let lines = f.required("lines", body.remove("lines"));
                let lines = lines.and_then(|lines| units(&mut f, lines));
                lines.map(|lines| OrderChange::Edit { lines })
            }
        };
        f.reject_unknown(&body);
        f.finish(|| change)
    }
}

fn payment(
    f: &mut Fields,
    body: &mut Map<String, Value>,
    currency: Currency,
) -> Option<OrderChange> {
    let amount = amount(f, body.remove("amount"));
    let provider = text(f, "provider", body.remove("provider"), 100, true);
    let reference = text(f, "reference", body.remove("reference"), 200, true);
    same_currency(f, body.remove("currency"), currency);
    Some(OrderChange::Capture {
        amount: amount?,
        provider: provider??,
        reference: reference??,
    })
}

fn fulfillment(f: &mut Fields, body: &mut Map<String, Value>) -> Option<OrderChange> {
    let lines = f.required("lines", body.remove("lines"));
    let lines = lines.and_then(|lines| units(f, lines));
    let tracking = match body.remove("tracking") {
        None | Some(Value::Null) => Some(Tracking::default()),
        Some(Value::Object(mut t)) => {
            let carrier = text(f, "tracking.carrier", t.remove("carrier"), 100, false);
            let number = text(f, "tracking.number", t.remove("number"), 200, false);
            let url = text(f, "tracking.url", t.remove("url"), 2_048, false)
                .map(|url| url.filter(|url| tracking_url(f, url)));
            f.reject_unknown_in("tracking", &t);
            Some(Tracking {
                carrier: carrier?,
                number: number?,
                url: url?,
            })
        }
        Some(_) => {
            f.push(FieldError::new(
                "tracking",
                "invalid_type",
                "must be an object",
            ));
            None
        }
    };
    Some(OrderChange::Ship {
        lines: Some(lines?),
        tracking: tracking?,
    })
}

fn refund(
    f: &mut Fields,
    body: &mut Map<String, Value>,
    currency: Currency,
) -> Option<OrderChange> {
    let amount = amount(f, body.remove("amount"));
    let reason = text(f, "reason", body.remove("reason"), 1_000, false);
    let lines = optional_lines(f, body.remove("lines"));
    same_currency(f, body.remove("currency"), currency);
    Some(OrderChange::Refund {
        amount: amount?,
        reason: reason?,
        lines: lines?,
    })
}

/// A required amount: a whole number of minor units, 1 to [`MAX_AMOUNT`].
fn amount(f: &mut Fields, value: Option<Value>) -> Option<i64> {
    amount_in_range(f, "amount", value)
}

/// The required field `name`: a whole number of minor units, 1 to [`MAX_AMOUNT`].
pub(super) fn amount_in_range(f: &mut Fields, name: &str, value: Option<Value>) -> Option<i64> {
    let value = f.required(name, value);
    let amount = f.integer(name, value)?;
    if (1..=MAX_AMOUNT).contains(&amount) {
        Some(amount)
    } else {
        f.push(FieldError::new(
            name,
            "out_of_range",
            format!("must be 1 to {MAX_AMOUNT} minor units"),
        ));
        None
    }
}

/// A text field of 1 to `max` characters without control characters: `Some(None)` when it
/// is absent (or null) and not `required`, `None` when it is invalid.
pub(super) fn text(
    f: &mut Fields,
    name: &str,
    value: Option<Value>,
    max: usize,
    required: bool,
) -> Option<Option<String>> {
    let value = match value {
        None | Some(Value::Null) if !required => return Some(None),
        value => f.required(name, value),
    };
    let text = f.string(name, value)?;
    let checked = orderly_domain::validation::check_length(name, text.trim(), 1, max)
        .and_then(|()| orderly_domain::validation::check_text(name, &text, &[]));
    f.check(checked).map(|()| Some(text.trim().to_owned()))
}

/// Whether `url` is an absolute `http` or `https` URL; records the problem when not.
fn tracking_url(f: &mut Fields, url: &str) -> bool {
    // No credentials and no whitespace: a link for a customer to follow, nothing else.
    let ok = !url.chars().any(char::is_whitespace)
        && url::Url::parse(url).is_ok_and(|u| {
            matches!(u.scheme(), "http" | "https")
                && u.host().is_some()
                && u.username().is_empty()
                && u.password().is_none()
        });
    if !ok {
        f.push(FieldError::new(
            "tracking.url",
            "invalid_format",
            "must be an http or https URL, without credentials or spaces",
        ));
    }
    ok
}

/// Refuses a `currency` other than the store's.
fn same_currency(f: &mut Fields, value: Option<Value>, currency: Currency) {
    let Some(value) = value.filter(|v| !v.is_null()) else {
        return;
    };
    if let Some(given) = f.string("currency", Some(value))
        && given != currency.as_str()
    {
        f.push(FieldError::new(
            "currency",
            "currency_mismatch",
            format!("the order is in {}", currency.as_str()),
        ));
    }
}

/// `lines` when given: `Some(None)` when absent.
fn optional_lines(f: &mut Fields, value: Option<Value>) -> Option<Option<Vec<UnitsOf>>> {
    match value {
        None | Some(Value::Null) => Some(None),
        Some(lines) => units(f, lines).map(Some),
    }
}

pub(super) fn units(f: &mut Fields, lines: Value) -> Option<Vec<UnitsOf>> {
    let Value::Array(lines) = lines else {
        f.push(FieldError::new("lines", "invalid_type", "must be an array"));
        return None;
    };
    let lines = parse_lines(f, lines)?;
    Some(
        lines
            .into_iter()
            .map(|line| UnitsOf {
                product: line.product,
                quantity: line.quantity.get(),
            })
            .collect(),
    )
}
