//! The request bodies of the catalogue API and their parsing into domain types.
//!
//! Fields arrive as raw JSON values so that each problem (a missing field, a wrong type, a bad
//! value, a field we do not know) is reported with all the others in one `422`.

use orderly_domain::{
    Currency, Description, NewProduct, Price, ProductName, ProductPatch, Sku, Stock,
    ValidationErrors,
};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::fields::{Fields, present};

/// A new product.
#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateProduct {
    /// Unique; 1–64 of `A–Z a–z 0–9 - _ .`
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = true, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$", example = "MUG-BLUE-350")]
    pub sku: Option<Value>,
    /// 1–200 characters.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, required = true, example = "Blue mug, 350 ml")]
    pub name: Option<Value>,
    /// Up to 5,000 characters; defaults to empty.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub description: Option<Value>,
    /// Unit price in minor units of the store currency (cents): 0–100,000,000,000.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, required = true, minimum = 0, maximum = 100_000_000_000_i64, example = 1250)]
    pub price: Option<Value>,
    /// The store currency; optional, and refused if it is any other.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, example = "EUR")]
    pub currency: Option<Value>,
    /// Units on hand: 0–1,000,000,000. Defaults to 0.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000_000, example = 40)]
    pub stock: Option<Value>,
    /// Whether it can be ordered. Defaults to true.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub active: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: Map<String, Value>,
}

impl CreateProduct {
    pub fn parse(self, store_currency: Currency) -> Result<NewProduct, ValidationErrors> {
        let mut f = Fields::new();
        f.reject_unknown(&self.unknown);
        let sku = f.required("sku", self.sku);
        let sku = f
            .string("sku", sku)
            .and_then(|s| f.check(Sku::parse("sku", &s)));
        let name = f.required("name", self.name);
        let name = f
            .string("name", name)
            .and_then(|s| f.check(ProductName::parse("name", &s)));
        let description = match f.string("description", self.description) {
            Some(s) => f.check(Description::parse("description", &s)),
            None => Some(Description::default()),
        };
        let price = f.required("price", self.price);
        let price = f
            .integer("price", price)
            .and_then(|p| f.check(Price::parse("price", p)));
        if let Some(currency) = f.string("currency", self.currency) {
            check_currency(&mut f, &currency, store_currency);
        }
        let stock = match f.integer("stock", self.stock) {
            Some(s) => f.check(Stock::parse("stock", s)),
            None => f.check(Stock::parse("stock", 0)),
        };
        let active = f.boolean("active", self.active).unwrap_or(true);
        f.finish(|| {
            Some(NewProduct {
                sku: sku?,
                name: name?,
                description: description?,
                price: price?,
                currency: store_currency,
                stock: stock?,
                active,
            })
        })
    }
}

/// Changes to a product; absent fields stay as they are. At least one field is required.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateProduct {
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 64, pattern = "^[A-Za-z0-9._-]+$")]
    pub sku: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub name: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub description: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 0, maximum = 100_000_000_000_i64)]
    pub price: Option<Value>,
    /// Refused unless it names the store currency, which cannot change.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String)]
    pub currency: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = i64, minimum = 0, maximum = 1_000_000_000)]
    pub stock: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = bool)]
    pub active: Option<Value>,
    /// Why the stock changed (a stock count, damaged goods, a delivery): 1–500 characters, no
    /// control characters; only with `stock`. The `product.stock_adjusted` event carries it.
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = String, min_length = 1, max_length = 500, example = "stock count")]
    pub reason: Option<Value>,
    #[serde(flatten)]
    #[schema(ignore)]
    pub unknown: Map<String, Value>,
}

/// The longest reason for a stock adjustment, in characters.
const MAX_REASON_CHARS: usize = 500;

impl UpdateProduct {
    /// The patch, and the reason given for a change of stock.
    pub fn parse(
        self,
        store_currency: Currency,
    ) -> Result<(ProductPatch, Option<String>), ValidationErrors> {
        let mut f = Fields::new();
        f.reject_unknown(&self.unknown);
        let empty = self.unknown.is_empty()
            && [
                &self.sku,
                &self.name,
                &self.description,
                &self.price,
                &self.currency,
                &self.stock,
                &self.active,
            ]
            .iter()
            .all(|field| field.is_none());
        let stock_given = self.stock.is_some();
        let patch = ProductPatch {
            sku: f
                .string("sku", self.sku)
                .and_then(|s| f.check(Sku::parse("sku", &s))),
            name: f
                .string("name", self.name)
                .and_then(|s| f.check(ProductName::parse("name", &s))),
            description: f
                .string("description", self.description)
                .and_then(|s| f.check(Description::parse("description", &s))),
            price: f
                .integer("price", self.price)
                .and_then(|p| f.check(Price::parse("price", p))),
            stock: f
                .integer("stock", self.stock)
                .and_then(|s| f.check(Stock::parse("stock", s))),
            active: f.boolean("active", self.active),
        };
        if let Some(currency) = f.string("currency", self.currency) {
            check_currency(&mut f, &currency, store_currency);
        }
        let with_reason = self.reason.is_some();
        let reason = f.string("reason", self.reason).and_then(|text| {
            let checked = orderly_domain::validation::check_length(
                "reason",
                text.trim(),
                1,
                MAX_REASON_CHARS,
            )
            .and_then(|()| orderly_domain::validation::check_text("reason", &text, &[]));
            f.check(checked).map(|()| text.trim().to_owned())
        });
        if with_reason && !stock_given {
            f.push(orderly_domain::FieldError::new(
                "reason",
                "requires_stock",
                "a reason explains a change of stock: give it with stock",
            ));
        }
        if empty {
            f.push(orderly_domain::FieldError::new(
                "",
                "empty",
                "name at least one field to change",
            ));
        }
        f.finish(|| Some((patch, reason)))
    }
}

fn check_currency(f: &mut Fields, given: &str, store_currency: Currency) {
    if let Some(currency) = f.check(Currency::parse("currency", given))
        && currency != store_currency
    {
        f.push(orderly_domain::FieldError::new(
            "currency",
            "unsupported_currency",
            format!("this store sells in {store_currency} only"),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn eur() -> Currency {
        Currency::parse("c", "EUR").unwrap()
    }

    fn create(body: Value) -> Result<NewProduct, ValidationErrors> {
        serde_json::from_value::<CreateProduct>(body)
            .unwrap()
            .parse(eur())
    }

    fn codes(errors: &ValidationErrors) -> Vec<(String, &'static str)> {
        errors
            .errors()
            .iter()
            .map(|e| (e.field.clone(), e.code))
            .collect()
    }

    #[test]
    fn a_complete_body_parses_with_defaults_filled_in() {
        let p = create(json!({"sku": "MUG-1", "name": "Mug", "price": 1250})).unwrap();
        assert_eq!(p.sku.as_str(), "MUG-1");
        assert_eq!(p.stock.units(), 0);
        assert!(p.active);
        assert_eq!(p.currency, eur());
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let errors = create(json!({
            "sku": "has space", "price": -5, "stock": "ten", "active": null,
            "currency": "USD", "colour": "blue"
        }))
        .unwrap_err();
        assert_eq!(
            codes(&errors),
            [
                ("colour".into(), "unknown_field"),
                ("sku".into(), "invalid_format"),
                ("name".into(), "required"),
                ("price".into(), "out_of_range"),
                ("currency".into(), "unsupported_currency"),
                ("stock".into(), "invalid_type"),
                ("active".into(), "invalid_type"),
            ]
        );
    }

    #[test]
    fn an_empty_patch_is_refused_and_null_is_not_a_value() {
        let parse = |v| {
            serde_json::from_value::<UpdateProduct>(v)
                .unwrap()
                .parse(eur())
        };
        assert_eq!(
            codes(&parse(json!({})).unwrap_err()),
            [("".into(), "empty")]
        );
        assert_eq!(
            codes(&parse(json!({"name": null})).unwrap_err()),
            [("name".into(), "invalid_type")]
        );
        assert_eq!(
            parse(json!({"stock": 3})).unwrap().0.stock.unwrap().units(),
            3
        );
    }

    #[test]
    fn a_reason_comes_with_a_stock_change_only_and_is_plain_bounded_text() {
        let parse = |v| {
            serde_json::from_value::<UpdateProduct>(v)
                .unwrap()
                .parse(eur())
        };
        let (patch, reason) = parse(json!({"stock": 7, "reason": " stock count "})).unwrap();
        assert_eq!(patch.stock.unwrap().units(), 7);
        assert_eq!(reason.as_deref(), Some("stock count"));
        assert_eq!(parse(json!({"stock": 7})).unwrap().1, None);
        assert_eq!(
            codes(&parse(json!({"name": "Mug", "reason": "renamed"})).unwrap_err()),
            [("reason".into(), "requires_stock")]
        );
        for (bad, code) in [
            (json!("a\u{0}b"), "invalid_character"),
            (json!("line\nbreak"), "invalid_character"),
            (json!("   "), "too_short"),
            (json!("x".repeat(501)), "too_long"),
            (json!(5), "invalid_type"),
        ] {
            assert_eq!(
                codes(&parse(json!({"stock": 1, "reason": bad})).unwrap_err()),
                [("reason".into(), code)]
            );
        }
    }

    fn arbitrary_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
                prop::collection::hash_map(
                    prop_oneof![
                        Just("sku".to_owned()),
                        Just("name".to_owned()),
                        Just("price".to_owned()),
                        Just("stock".to_owned()),
                        Just("active".to_owned()),
                        Just("currency".to_owned()),
                        Just("description".to_owned()),
                        any::<String>(),
                    ],
                    inner,
                    0..8,
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Any JSON document either parses into a product or yields field errors: never a
        /// panic, so never a 5xx.
        #[test]
        fn any_json_body_parses_or_is_refused_with_field_errors(body in arbitrary_json()) {
            let bytes = serde_json::to_vec(&body).unwrap();
            match crate::extract::parse_json::<CreateProduct>(&bytes) {
                Ok(create) => {
                    if let Err(errors) = create.parse(eur()) {
                        prop_assert!(!errors.is_empty());
                    }
                }
                Err(e) => prop_assert!(matches!(e, crate::error::ApiError::Validation(_))),
            }
            if let Ok(update) = crate::extract::parse_json::<UpdateProduct>(&bytes)
                && let Err(errors) = update.parse(eur())
            {
                prop_assert!(!errors.is_empty());
            }
        }
    }
}
