//! The body of `POST /v1/orders` and its parsing into a [`NewOrder`], reporting every problem
//! (per line, with its index) at once.

use std::collections::HashSet;

use orderly_domain::{
    CustomerName, Email, FieldError, NewOrder, NewOrderLine, Note, ProductRef, Quantity, Sku,
    ValidationErrors,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::fields::{Fields, present};

/// A new order.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateOrderBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = CustomerBody, required = true)]
    pub customer: Option<Value>,
    /// 1–100 lines, each product at most once.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Vec<OrderLineBody>, required = true, min_items = 1, max_items = 100)]
    pub lines: Option<Value>,
    /// Up to 1,000 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub note: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: Map<String, Value>,
}

/// Who the order is for.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the wire format; the body is read field by field.
pub struct CustomerBody {
    #[schema(example = "ana@example.com")]
    email: String,
    #[schema(example = "Ana Lima")]
    name: String,
}

/// One line: a product by `product_id` or by `sku` (exactly one), and a quantity of 1–1,000.
#[derive(Debug, ToSchema)]
#[allow(dead_code)] // Documents the wire format; the body is read field by field.
pub(crate) struct OrderLineBody {
    product_id: Option<uuid::Uuid>,
    #[schema(example = "MUG-BLUE")]
    sku: Option<String>,
    #[schema(example = 2, minimum = 1, maximum = 1_000)]
    quantity: i64,
}

impl CreateOrderBody {
    pub fn parse(self) -> Result<NewOrder, ValidationErrors> {
        let mut f = Fields::new();
        f.reject_unknown(&self.unknown);
        let customer = f.required("customer", self.customer);
        let (email, name) = match customer {
            Some(Value::Object(mut customer)) => {
                let email = customer.remove("email");
                let name = customer.remove("name");
                f.reject_unknown_in("customer", &customer);
                let email = f.required("customer.email", email);
                let email = f
                    .string("customer.email", email)
                    .and_then(|s| f.check(Email::parse("customer.email", &s)));
                let name = f.required("customer.name", name);
                let name = f
                    .string("customer.name", name)
                    .and_then(|s| f.check(CustomerName::parse("customer.name", &s)));
                (email, name)
            }
            Some(_) => {
                f.push(FieldError::new(
                    "customer",
                    "invalid_type",
                    "must be an object",
                ));
                (None, None)
            }
            None => (None, None),
        };
        let lines = f.required("lines", self.lines);
        let lines = match lines {
            Some(Value::Array(lines)) => parse_lines(&mut f, lines),
            Some(_) => {
                f.push(FieldError::new("lines", "invalid_type", "must be an array"));
                None
            }
            None => None,
        };
        let note = match f.string("note", self.note) {
            Some(s) => f.check(Note::parse("note", &s)).map(Some),
            None => Some(None),
        };
        f.finish(|| {
            Some(NewOrder {
                email: email?,
                name: name?,
                lines: lines?,
                note: note?,
            })
        })
    }
}

pub(super) fn parse_lines(f: &mut Fields, lines: Vec<Value>) -> Option<Vec<NewOrderLine>> {
    if lines.is_empty() || lines.len() > NewOrder::MAX_LINES {
        f.push(FieldError::new(
            "lines",
            "invalid_length",
            format!("must hold 1 to {} lines", NewOrder::MAX_LINES),
        ));
        return None;
    }
    let mut parsed = Vec::with_capacity(lines.len());
    let mut seen = HashSet::new();
    for (i, line) in lines.into_iter().enumerate() {
        let at = |name: &str| format!("lines[{i}].{name}");
        let Value::Object(mut line) = line else {
            f.push(FieldError::new(
                format!("lines[{i}]"),
                "invalid_type",
                "must be an object",
            ));
            continue;
        };
        let product_id = line.remove("product_id");
        let sku = line.remove("sku");
        let quantity = line.remove("quantity");
        f.reject_unknown_in(&format!("lines[{i}]"), &line);
        let product = match (product_id, sku) {
            (Some(id), None) => f.string(&at("product_id"), Some(id)).and_then(|s| {
                let parsed = s.parse().map(ProductRef::Id).map_err(|_| {
                    FieldError::new(at("product_id"), "invalid_format", "must be a product id")
                });
                f.check(parsed)
            }),
            (None, Some(sku)) => f
                .string(&at("sku"), Some(sku))
                .and_then(|s| f.check(Sku::parse(&at("sku"), &s)).map(ProductRef::Sku)),
            _ => {
                f.push(FieldError::new(
                    format!("lines[{i}]"),
                    "invalid_product_ref",
                    "must name its product by exactly one of `product_id` and `sku`",
                ));
                None
            }
        };
        let quantity = f.required(&at("quantity"), quantity);
        let quantity = f
            .integer(&at("quantity"), quantity)
            .and_then(|q| f.check(Quantity::parse(&at("quantity"), q)));
        if let Some(product) = &product
            && !seen.insert(product.clone())
        {
            f.push(FieldError::new(
                format!("lines[{i}]"),
                "duplicate_product",
                "names a product another line already orders; raise that line's quantity",
            ));
        }
        if let (Some(product), Some(quantity)) = (product, quantity) {
            parsed.push(NewOrderLine { product, quantity });
        }
    }
    Some(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(body: Value) -> Result<NewOrder, ValidationErrors> {
        serde_json::from_value::<CreateOrderBody>(body)
            .unwrap()
            .parse()
    }

    fn fields(errors: ValidationErrors) -> Vec<(String, &'static str)> {
        errors
            .errors()
            .iter()
            .map(|e| (e.field.clone(), e.code))
            .collect()
    }

    #[test]
    fn a_valid_order_parses_with_lines_by_id_and_by_sku() {
        let order = parse(json!({
            "customer": {"email": "ana@example.com", "name": "Ana"},
            "lines": [
                {"product_id": "01a21ff0-71d8-7330-9881-6fa8c8ac4471", "quantity": 2},
                {"sku": "MUG-1", "quantity": 1}
            ],
            "note": "gift wrap"
        }))
        .unwrap();
        assert_eq!(order.lines.len(), 2);
        assert_eq!(order.note.unwrap().as_str(), "gift wrap");
    }

    #[test]
    fn each_bad_line_is_reported_with_its_index() {
        let errors = parse(json!({
            "customer": {"email": "not-an-email", "name": "", "age": 3},
            "lines": [
                {"sku": "A", "quantity": 0},
                {"sku": "A", "quantity": 1},
                {"product_id": "nope", "quantity": 1001},
                {"sku": "B", "product_id": "01a21ff0-71d8-7330-9881-6fa8c8ac4471", "quantity": 1},
                7
            ]
        }))
        .unwrap_err();
        assert_eq!(
            fields(errors),
            [
                ("customer.age".into(), "unknown_field"),
                ("customer.email".into(), "invalid_format"),
                ("customer.name".into(), "too_short"),
                ("lines[0].quantity".into(), "out_of_range"),
                ("lines[1]".into(), "duplicate_product"),
                ("lines[2].product_id".into(), "invalid_format"),
                ("lines[2].quantity".into(), "out_of_range"),
                ("lines[3]".into(), "invalid_product_ref"),
                ("lines[4]".into(), "invalid_type"),
            ]
        );
    }

    #[test]
    fn zero_and_too_many_lines_are_refused() {
        let customer = json!({"email": "a@b.co", "name": "A"});
        let empty = parse(json!({"customer": customer, "lines": []})).unwrap_err();
        assert_eq!(fields(empty), [("lines".into(), "invalid_length")]);
        let many: Vec<Value> = (0..101)
            .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
            .collect();
        let errors = parse(json!({"customer": customer, "lines": many})).unwrap_err();
        assert_eq!(fields(errors), [("lines".into(), "invalid_length")]);
    }
}
