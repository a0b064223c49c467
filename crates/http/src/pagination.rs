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
pub fn encode_id_cursor(last_id: i64) -> String {
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

/// The cursor for the page after `items`: present only when the page is full.
pub fn next_cursor<T>(items: &[T], limit: PageLimit, id: impl Fn(&T) -> Uuid) -> Option<String> {
    if items.len() == limit.get() as usize {
        items.last().map(|last| encode_cursor(id(last)))
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
