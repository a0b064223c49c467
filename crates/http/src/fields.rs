//! Reading the fields of a JSON object one by one, so that every wrong type, missing field and
//! unknown field is reported together instead of stopping at the first, as serde would.

use orderly_domain::{FieldError, ValidationErrors};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

/// Deserializes a field so that `null` stays distinguishable from absence: a present field,
/// even `null`, becomes `Some`.
pub fn present<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(deserializer).map(Some)
}

/// Collects problems while fields are read.
#[derive(Debug, Default)]
pub struct Fields {
    errors: ValidationErrors,
}

impl Fields {
    pub fn new() -> Self {
        Self::default()
    }

    /// Records every field the body should not have.
    pub fn reject_unknown(&mut self, unknown: &Map<String, Value>) {
        self.reject_unknown_in("", unknown);
    }

    /// Records every field of the nested object at `path` (`""` for the body itself) that it
    /// should not have.
    pub fn reject_unknown_in(&mut self, path: &str, unknown: &Map<String, Value>) {
        let mut names: Vec<&String> = unknown.keys().collect();
        names.sort();
        for name in names {
            let field = if path.is_empty() {
                name.clone()
            } else {
                format!("{path}.{name}")
            };
            self.errors.push(FieldError::new(
                field,
                "unknown_field",
                "is not a field of this resource",
            ));
        }
    }

    /// Records a domain parser's verdict.
    pub fn check<T>(&mut self, result: Result<T, FieldError>) -> Option<T> {
        self.errors.check(result)
    }

    pub fn push(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// A field that must be present.
    pub fn required(&mut self, name: &str, value: Option<Value>) -> Option<Value> {
        if value.is_none() {
            self.errors
                .push(FieldError::new(name, "required", "is required"));
        }
        value
    }

    pub fn string(&mut self, name: &str, value: Option<Value>) -> Option<String> {
        match value? {
            Value::String(s) => Some(s),
            other => self.wrong_type(name, "a string", &other),
        }
    }

    /// A whole number that fits `i64`. JSON has one number type, so `1.0`, `1e2` and `-0`
    /// are the whole numbers 1, 100 and 0 (as JSON Schema's `integer` says); fractions are
    /// refused, and numbers past `i64` (`1e300`, `2^64`) as out of range.
    pub fn integer(&mut self, name: &str, value: Option<Value>) -> Option<i64> {
        match value? {
            Value::Number(n) => {
                if let Some(i) = n.as_i64() {
                    return Some(i);
                }
                let value = n.as_f64().unwrap_or(f64::INFINITY);
                if value.fract() != 0.0 {
                    self.errors.push(FieldError::new(
                        name,
                        "invalid_type",
                        "must be a whole number, not a fraction",
                    ));
                } else if value.abs() < 9.2e18 {
                    return Some(value as i64);
                } else {
                    self.errors
                        .push(FieldError::new(name, "out_of_range", "is far too large"));
                }
                None
            }
            other => self.wrong_type(name, "a whole number", &other),
        }
    }

    pub fn boolean(&mut self, name: &str, value: Option<Value>) -> Option<bool> {
        match value? {
            Value::Bool(b) => Some(b),
            other => self.wrong_type(name, "true or false", &other),
        }
    }

    fn wrong_type<T>(&mut self, name: &str, expected: &str, got: &Value) -> Option<T> {
        let got = match got {
            Value::Null => "null",
            Value::Bool(_) => "a boolean",
            Value::Number(_) => "a number",
            Value::String(_) => "a string",
            Value::Array(_) => "an array",
            Value::Object(_) => "an object",
        };
        self.errors.push(FieldError::new(
            name,
            "invalid_type",
            format!("must be {expected}, not {got}"),
        ));
        None
    }

    /// The parsed value when no problem was recorded, else every problem.
    pub fn finish<T>(self, value: impl FnOnce() -> Option<T>) -> Result<T, ValidationErrors> {
        if !self.errors.is_empty() {
            return Err(self.errors);
        }
        // Every field a value needs was recorded as a problem when missing.
        value().ok_or_else(|| {
            ValidationErrors::single(FieldError::new("", "invalid", "the body is incomplete"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn integers_refuse_fractions_and_numbers_past_i64() {
        let mut f = Fields::new();
        assert_eq!(f.integer("a", Some(json!(5))), Some(5));
        assert_eq!(f.integer("b", Some(json!(5.5))), None);
        assert_eq!(f.integer("c", Some(json!(u64::MAX))), None);
        assert_eq!(f.integer("d", Some(json!(1e300))), None);
        assert_eq!(f.integer("e", Some(json!("5"))), None);
        let errors = f.finish(|| Some(())).unwrap_err();
        let codes: Vec<_> = errors.errors().iter().map(|e| e.code).collect();
        assert_eq!(
            codes,
            [
                "invalid_type",
                "out_of_range",
                "out_of_range",
                "invalid_type"
            ]
        );
    }

    #[test]
    fn whole_numbers_written_as_decimals_are_those_numbers() {
        for (text, expected) in [("1.0", 1), ("1e2", 100), ("-0", 0), ("-0.0", 0)] {
            let mut f = Fields::new();
            let value: Value = serde_json::from_str(text).unwrap();
            assert_eq!(f.integer("n", Some(value)), Some(expected), "{text}");
        }
    }

    #[test]
    fn every_unknown_field_is_reported() {
        let mut f = Fields::new();
        let unknown = json!({"zeta": 1, "alpha": 2});
        f.reject_unknown(unknown.as_object().unwrap());
        let errors = f.finish(|| Some(())).unwrap_err();
        let fields: Vec<_> = errors.errors().iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["alpha", "zeta"]);
    }
}
