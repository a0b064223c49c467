//! The catalogue: products, and the parsed forms of the input that creates or changes one.

use std::fmt;
use std::str::FromStr;

use time::OffsetDateTime;
use uuid::Uuid;

use crate::validation::{FieldError, check_length, check_range, check_text};

/// A product's id: a UUIDv7, so ids sort by creation time (cheap index inserts, stable cursor
/// pagination) while their 74 random bits keep them unguessable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProductId(Uuid);

impl ProductId {
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

impl fmt::Display for ProductId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ProductId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// A stock-keeping unit: 1 to 64 characters of ASCII letters, digits, `-`, `_` and `.`;
/// unique across the catalogue and compared exactly (case matters).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Sku(String);

impl Sku {
    pub const MAX_LEN: usize = 64;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_length(field, value, 1, Self::MAX_LEN)?;
        if !value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        {
            return Err(FieldError::new(
                field,
                "invalid_format",
                "may contain only ASCII letters, digits, '-', '_' and '.'",
            ));
        }
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product's display name: 1 to 200 characters, not blank, no control characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductName(String);

impl ProductName {
    pub const MAX_LEN: usize = 200;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_length(field, value.trim(), 1, Self::MAX_LEN)?;
        check_text(field, value, &[])?;
        Ok(Self(value.trim().to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A product's description: up to 5,000 characters; line breaks and tabs are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Description(String);

impl Description {
    pub const MAX_LEN: usize = 5_000;

    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        check_length(field, value, 0, Self::MAX_LEN)?;
        check_text(field, value, &['\n', '\r', '\t'])?;
        Ok(Self(value.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A unit price in integer minor units (cents): 0 to 100,000,000,000. The ceiling keeps any
/// order total of up to 100 lines × 1,000 units far inside `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Price(i64);

impl Price {
    pub const MAX: i64 = 100_000_000_000;

    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        check_range(field, value, 0, Self::MAX, " minor units").map(Self)
    }

    pub fn minor_units(self) -> i64 {
        self.0
    }
}

/// Units on hand: 0 to 1,000,000,000. Never negative, here or in the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stock(i64);

impl Stock {
    pub const MAX: i64 = 1_000_000_000;

    pub fn parse(field: &str, value: i64) -> Result<Self, FieldError> {
        check_range(field, value, 0, Self::MAX, "").map(Self)
    }

    pub fn units(self) -> i64 {
        self.0
    }
}

/// An ISO 4217 currency code: three upper-case ASCII letters. The store has exactly one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    pub fn parse(field: &str, value: &str) -> Result<Self, FieldError> {
        match value.as_bytes() {
            &[a, b, c] if [a, b, c].iter().all(u8::is_ascii_uppercase) => Ok(Self([a, b, c])),
            _ => Err(FieldError::new(
                field,
                "invalid_format",
                "must be a three-letter upper-case ISO 4217 code such as EUR",
            )),
        }
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from three ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("???")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A product as stored and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Product {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub description: String,
    /// Unit price in minor units of `currency`.
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    /// Whether the product can be ordered. Archived products are never active.
    pub active: bool,
    /// Bumped by every change; the source of the product's `ETag`.
    pub version: i64,
    /// When the product was archived; archived products are read-only.
    pub archived_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl Product {
    /// The entity tag for this version of the product, quoted as HTTP wants it.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }
}

/// A validated request to create a product.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewProduct {
    pub sku: Sku,
    pub name: ProductName,
    pub description: Description,
    pub price: Price,
    pub currency: Currency,
    pub stock: Stock,
    pub active: bool,
}

/// A validated partial update: `None` leaves a field as it is.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProductPatch {
    pub sku: Option<Sku>,
    pub name: Option<ProductName>,
    pub description: Option<Description>,
    pub price: Option<Price>,
    pub stock: Option<Stock>,
    pub active: Option<bool>,
}

impl ProductPatch {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn sku_accepts_the_documented_alphabet_only() {
        assert!(Sku::parse("sku", "TSHIRT-red_M.2").is_ok());
        for bad in ["", "has space", "émoji☕", "a/b", &"x".repeat(65)] {
            assert!(Sku::parse("sku", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn name_is_trimmed_and_must_not_be_blank() {
        assert_eq!(
            ProductName::parse("name", "  Mug  ").unwrap().as_str(),
            "Mug"
        );
        assert!(ProductName::parse("name", "   ").is_err());
        assert!(ProductName::parse("name", "bad\u{7}bell").is_err());
    }

    #[test]
    fn price_and_stock_refuse_negative_and_huge_values() {
        assert!(Price::parse("price", -1).is_err());
        assert!(Price::parse("price", Price::MAX + 1).is_err());
        assert!(Price::parse("price", 0).is_ok());
        assert!(Stock::parse("stock", -5).is_err());
        assert!(Stock::parse("stock", i64::MAX).is_err());
    }

    #[test]
    fn currency_is_three_upper_case_letters() {
        assert_eq!(Currency::parse("c", "EUR").unwrap().as_str(), "EUR");
        for bad in ["eur", "EU", "EURO", "E1R", "ÉUR"] {
            assert!(Currency::parse("c", bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn product_ids_sort_by_creation_time() {
        let first = ProductId::generate();
        let second = ProductId::generate();
        assert!(first < second);
        assert!(first.to_string() < second.to_string());
    }

    proptest! {
        #[test]
        fn parsers_never_panic_on_any_text(s in "\\PC*|.*") {
            let _ = Sku::parse("f", &s);
            let _ = ProductName::parse("f", &s);
            let _ = Description::parse("f", &s);
            let _ = Currency::parse("f", &s);
        }

        #[test]
        fn accepted_names_hold_no_control_characters(s in any::<String>()) {
            if let Ok(name) = ProductName::parse("f", &s) {
                prop_assert!(!name.as_str().chars().any(char::is_control));
            }
        }
    }
}
