//! Opaque cursors for paginated listings: the last id of a page, base64url-encoded.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use orderly_domain::{FieldError, PageLimit, ValidationErrors};
use uuid::Uuid;

pub fn encode_cursor(last_id: Uuid) -> String {
    URL_SAFE_NO_PAD.encode(last_id.as_bytes())
}

pub fn decode_cursor(raw: &str) -> Result<Uuid, FieldError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| Uuid::from_slice(&bytes).ok())
        .ok_or_else(|| {
            FieldError::new(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })
}

/// A cursor for listings keyed by integer ids.
fn encode_id_cursor(last_id: i64) -> String {
    URL_SAFE_NO_PAD.encode(last_id.to_be_bytes())
}

pub fn decode_id_cursor(raw: &str) -> Result<i64, FieldError> {
    URL_SAFE_NO_PAD
        .decode(raw)
        .ok()
        .and_then(|bytes| <[u8; 8]>::try_from(bytes.as_slice()).ok())
        .map(i64::from_be_bytes)
        .ok_or_else(|| {
            FieldError::new(
                "cursor",
                "invalid_cursor",
                "is not a cursor this API returned",
            )
        })
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
pub fn next_cursor<T>(items: &[T], limit: PageLimit, id: impl Fn(&T) -> Uuid) -> Option<String> {
    if items.len() == limit.get() as usize {
        items.last().map(|last| encode_cursor(id(last)))
    } else {
        None
    }
}

/// [`next_cursor`] for listings keyed by integer ids.
pub fn next_id_cursor<T>(items: &[T], limit: PageLimit, id: impl Fn(&T) -> i64) -> Option<String> {
    if items.len() == limit.get() as usize {
        items.last().map(|last| encode_id_cursor(id(last)))
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
        assert_eq!(decode_cursor(&encode_cursor(id)).unwrap(), id);
        assert!(decode_cursor("zzz").is_err());
        assert!(decode_cursor("").is_err());
    }
}
