//! Request extractors whose every rejection is a problem document: a JSON body, query
//! parameters, and the `If-Match` precondition.

use std::error::Error as StdError;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use orderly_domain::{FieldError, ValidationErrors};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::body_deadline::is_body_timeout;
use crate::error::ApiError;

/// A JSON request body. The content type must say JSON; the body must fit the configured limit
/// (axum's `DefaultBodyLimit`) and parse as JSON. Field-level checks are the handler's.
#[derive(Debug)]
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        if !is_json(req.headers().get(header::CONTENT_TYPE)) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let bytes = Bytes::from_request(req, state)
            .await
            .map_err(|rejection| body_rejection(rejection, state))?;
        parse_json(&bytes).map(JsonBody)
    }
}

/// What a body that could not be read is answered with: `408` past the body deadline (see
/// [`crate::body_deadline`]), `413` past the size limit, else `400`.
pub(crate) fn body_rejection(rejection: BytesRejection, state: &AppState) -> ApiError {
    match rejection {
        BytesRejection::FailedToBufferBody(e) if is_body_timeout(&e) => {
            ApiError::BodyTimeout(state.settings.body_read_timeout)
        }
        BytesRejection::FailedToBufferBody(e) if is_length_limit(&e) => ApiError::PayloadTooLarge {
            limit: state.settings.body_limit,
        },
        _ => ApiError::BodyUnreadable,
    }
}

/// Parses a body: syntax errors (including invalid UTF-8) are 400; a document of the wrong
/// shape, such as an array where an object belongs, or one repeating a key within an object,
/// is 422.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if let Some(field) = crate::duplicate_keys::first_duplicate(bytes) {
        return Err(ApiError::Validation(ValidationErrors::single(
            FieldError::new(
                field,
                "duplicate_key",
                "this key appears more than once in its object; send it once",
            ),
        )));
    }
    serde_json::from_slice(bytes).map_err(|e| match e.classify() {
        serde_json::error::Category::Data => ApiError::Validation(ValidationErrors::single(
            FieldError::new("", "invalid_type", without_type_names(&e.to_string())),
        )),
        _ => ApiError::MalformedJson(e.to_string()),
    })
}

/// serde's message with the Rust type names it carries ("expected struct CreateProduct")
/// said in the client's terms.
fn without_type_names(message: &str) -> String {
    let mut plain = message.to_owned();
    for (marker, said) in [
        ("struct ", "a JSON object"),
        ("enum ", "one of the allowed values"),
    ] {
        while let Some(start) = plain.find(marker) {
            let name = &plain[start + marker.len()..];
            let end = name
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(name.len());
            plain.replace_range(start..start + marker.len() + end, said);
        }
    }
    plain
}

fn is_json(content_type: Option<&header::HeaderValue>) -> bool {
    let Some(value) = content_type.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    let Some((kind, subtype)) = essence.split_once('/') else {
        return false;
    };
    kind.eq_ignore_ascii_case("application")
        && (subtype.eq_ignore_ascii_case("json") || subtype.to_ascii_lowercase().ends_with("+json"))
}

fn is_length_limit(error: &(dyn StdError + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<axum::extract::rejection::LengthLimitError>()
            || e.to_string().contains("length limit exceeded")
        {
            return true;
        }
        current = e.source();
    }
    false
}

/// Query parameters, rejected as `400 invalid_query` when they do not parse (unknown names
/// included, when `T` denies unknown fields).
#[derive(Debug)]
pub struct QueryParams<T>(pub T);

impl<S, T> FromRequestParts<S> for QueryParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        check_encoded_values(query.as_bytes()).map_err(ApiError::InvalidQuery)?;
        serde_urlencoded::from_str(query)
            .map(QueryParams)
            .map_err(|e| {
                ApiError::InvalidQuery(ValidationErrors::single(FieldError::new(
                    "",
                    "invalid_query",
                    e.to_string(),
                )))
            })
    }
}

/// Checks every value of a URL-encoded query or form as body text is checked: no control
/// characters (a NUL would reach PostgreSQL, which cannot take it, as a 500; a `%01` in a
/// console `next` reached a `Location` header, which cannot either).
pub(crate) fn check_encoded_values(encoded: &[u8]) -> Result<(), ValidationErrors> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(encoded).unwrap_or_default();
    let mut errors = ValidationErrors::default();
    for (name, value) in &pairs {
        errors.check(orderly_domain::validation::check_text(name, value, &[]));
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// Path parameters. One that does not parse (such as a percent-encoded byte that is not
/// UTF-8) names nothing that exists: `404`, as a problem document like every other answer.
#[derive(Debug)]
pub struct PathParams<T>(pub T);

impl<S, T> FromRequestParts<S> for PathParams<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(value)| PathParams(value))
            .map_err(|_| ApiError::NotFound("resource"))
    }
}

/// The `If-Match` precondition of a conditional write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IfMatch {
    /// No header: write unconditionally.
    Absent,
    /// `*`: any current version.
    Any,
    /// One version, from a strong entity tag such as `"3"`.
    Version(i64),
    /// Any of these versions, from a list such as `"3", "4"` (RFC 9110: it matches when one
    /// of the listed tags is the current one).
    OneOf(Vec<i64>),
    /// A tag that can never match ours (weak, malformed or a list of other tags).
    Never,
}

impl IfMatch {
    /// The version a conditional write must find: `None` for any, and for a tag that cannot
    /// match, a version no product has — so the write still reports 404 before 412.
    /// `current` is the version the resource has now (asked only for a list of tags, and
    /// `None` when it does not exist): a listed version that is current is required, so the
    /// write still fails if it changes meanwhile.
    pub async fn required_version<F>(self, current: F) -> Result<Option<i64>, ApiError>
    where
        F: Future<Output = Result<Option<i64>, ApiError>>,
    {
        Ok(match self {
            IfMatch::Absent | IfMatch::Any => None,
            IfMatch::Version(v) => Some(v),
            IfMatch::OneOf(versions) => match current.await? {
                Some(now) if versions.contains(&now) => Some(now),
                _ => Some(i64::MIN),
            },
            IfMatch::Never => Some(i64::MIN),
        })
    }
}

impl<S: Send + Sync> FromRequestParts<S> for IfMatch {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let Some(value) = parts.headers.get(header::IF_MATCH) else {
            return Ok(IfMatch::Absent);
        };
        let value = value.to_str().unwrap_or_default().trim();
        if value == "*" {
            return Ok(IfMatch::Any);
        }
        // Strong tags only: a weak one (`W/"3"`) never matches for a write.
        let mut versions: Vec<i64> = value
            .split(',')
            .filter_map(|tag| {
                tag.trim()
                    .strip_prefix('"')
                    .and_then(|v| v.strip_suffix('"'))
                    .and_then(|v| v.parse().ok())
            })
            .collect();
        Ok(match versions.len() {
            0 => IfMatch::Never,
            1 => IfMatch::Version(versions.remove(0)),
            _ => IfMatch::OneOf(versions),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn json_content_types_are_recognised_with_parameters_and_suffixes() {
        for ok in [
            "application/json",
            "application/json; charset=utf-8",
            "Application/JSON",
            "application/merge-patch+json",
        ] {
            assert!(is_json(Some(&HeaderValue::from_static(ok))), "{ok}");
        }
        for bad in ["text/plain", "application/xml", "json", ""] {
            assert!(!is_json(Some(&HeaderValue::from_static(bad))), "{bad}");
        }
        assert!(!is_json(None));
    }

    #[test]
    fn syntax_errors_are_400_and_shape_errors_are_422() {
        let syntax = parse_json::<serde_json::Map<String, serde_json::Value>>(b"{\"a\":");
        assert!(matches!(syntax, Err(ApiError::MalformedJson(_))));
        let invalid_utf8 = parse_json::<serde_json::Value>(b"{\"a\":\"\xff\"}");
        assert!(matches!(invalid_utf8, Err(ApiError::MalformedJson(_))));
        let shape = parse_json::<serde_json::Map<String, serde_json::Value>>(b"[1,2]");
        assert!(matches!(shape, Err(ApiError::Validation(_))));
    }

    #[test]
    fn messages_name_no_rust_type() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct CreateProduct {
            sku: String,
        }
        let Err(ApiError::Validation(errors)) = parse_json::<CreateProduct>(b"\"text\"") else {
            panic!("a shape error")
        };
        let message = &errors.errors()[0].message;
        assert!(!message.contains("CreateProduct"), "{message}");
        assert!(message.contains("expected a JSON object"), "{message}");
    }
}
