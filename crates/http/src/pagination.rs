//! Every listing's paging, read and written in one place: the `limit` query parameter and an
//! opaque `cursor`, the last id of a page, base64url-encoded (a UUID's 16 bytes or an integer
//! id's 8).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderly_domain::{FieldError, PageLimit, ValidationErrors};
use uuid::Uuid;

/// An id a listing pages by.
pub trait Cursor: Sized {
    fn encode(&self) -> String;
    fn decode(bytes: &[u8]) -> Option<Self>;
}

impl Cursor for Uuid {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.as_bytes())
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        Uuid::from_slice(bytes).ok()
    }
}

impl Cursor for i64 {
    fn encode(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.to_be_bytes())
    }

    fn decode(bytes: &[u8]) -> Option<Self> {
        <[u8; 8]>::try_from(bytes).ok().map(i64::from_be_bytes)
    }
}

fn decode_cursor<C: Cursor>(raw: &str) -> Result<C, FieldError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| C::decode(&bytes))
        .ok_or_else(|| {
            FieldError::new(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })
}

/// A listing's `limit` and `cursor` parameters, each problem recorded in `errors`: the page
/// size (absent when invalid) and where the page starts.
pub fn read_page<C: Cursor>(
    limit: Option<&str>,
    cursor: Option<&str>,
    errors: &mut ValidationErrors,
) -> (Option<PageLimit>, Option<C>) {
    let limit = parse_limit(limit, errors);
    let cursor = cursor.and_then(|raw| errors.check(decode_cursor(raw)));
    (limit, cursor)
}

/// The `limit` query parameter: 1–100, 50 when absent.
pub fn parse_limit(raw: Option<&str>, errors: &mut ValidationErrors) -> Option<PageLimit> {
    match raw {
        None => Some(PageLimit::DEFAULT),
        Some(raw) => errors.check(
            raw.parse::<i64>()
                .map_err(|_| FieldError::new("limit", "invalid_type", "must be a whole number"))
                .and_then(PageLimit::parse),
        ),
    }
}

/// A query parameter naming one of a fixed set of values (a status, a state), recorded as an
/// `invalid_value` problem on `field` when it names none of them.
pub fn parse_choice<T: std::str::FromStr>(
    raw: Option<String>,
    field: &'static str,
    choices: &str,
    errors: &mut ValidationErrors,
) -> Option<T> {
    raw.and_then(|raw| {
        errors.check(
            raw.parse::<T>()
                .map_err(|_| FieldError::new(field, "invalid_value", format!("must be {choices}"))),
        )
    })
}

/// The page size, unless some query parameter was invalid.
pub fn page_limit(
    limit: Option<PageLimit>,
    errors: ValidationErrors,
) -> Result<PageLimit, crate::error::ApiError> {
    match limit {
        Some(limit) if errors.is_empty() => Ok(limit),
        _ => Err(crate::error::ApiError::InvalidQuery(errors)),
    }
}

/// The cursor for the page after `items`: present only when the page is full.
pub fn next_cursor<T, C: Cursor>(
    items: &[T],
    limit: PageLimit,
    id: impl Fn(&T) -> C,
) -> Option<String> {
    if items.len() == limit.get() as usize {
        items.last().map(|last| id(last).encode())
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let id = Uuid::now_v7();
        assert_eq!(decode_cursor::<Uuid>(&id.encode()).unwrap(), id);
        assert_eq!(decode_cursor::<i64>(&42_i64.encode()).unwrap(), 42);
        assert!(decode_cursor::<Uuid>(&42_i64.encode()).is_err());
        assert!(decode_cursor::<Uuid>("zzz").is_err());
        assert!(decode_cursor::<i64>("").is_err());
    }
}
