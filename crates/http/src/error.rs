//! The one error type of the HTTP layer and its RFC 9457 `application/problem+json` form.
//!
//! Every failure a client can see has a stable `code`. Client mistakes are 4xx with details;
//! server faults are logged with their whole cause chain and answered with a generic body.

use std::error::Error as StdError;

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderly_domain::ValidationErrors;
use orderly_queue::QueueError;
use orderly_storage::StoreError;
pub use orderly_storage::cause_chain;
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// `Retry-After` on every `503`, in seconds.
const RETRY_AFTER_SECS: &str = "1";

/// An RFC 9457 problem document.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// Always `about:blank`: `code` is the machine-readable kind of problem.
    #[serde(rename = "type")]
    pub kind: &'static str,
    /// The HTTP status phrase.
    pub title: &'static str,
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// Stable and machine-readable: `validation_failed`, `not_found`, `sku_taken`, …
    pub code: &'static str,
    /// One entry per problem field, for `validation_failed` and `invalid_query`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ProblemField>,
}

/// One problem with one field of the request.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProblemField {
    /// Where: a field name or a path such as `lines[2].quantity`.
    pub field: String,
    /// Stable reason: `required`, `invalid_type`, `out_of_range`, `unknown_field`, …
    pub code: &'static str,
    pub message: String,
}

/// Everything a handler can fail with.
#[derive(Debug)]
pub enum ApiError {
    /// 400: the body is not JSON.
    MalformedJson(String),
    /// 400: query parameters that do not parse.
    InvalidQuery(ValidationErrors),
    /// 400: a required header is missing or malformed.
    BadHeader { code: &'static str, detail: String },
    /// 401: no key, or not a live key.
    Unauthenticated,
    /// 403: a live key whose role may not do this.
    Forbidden,
    /// 404: nothing at this address.
    NotFound(&'static str),
    /// 405.
    MethodNotAllowed,
    /// 409 with a specific code.
    Conflict { code: &'static str, detail: String },
    /// 409: order lines asking for more than is in stock, one entry per line.
    OutOfStock(ValidationErrors),
    /// 412: `If-Match` did not match the current version.
    PreconditionFailed,
    /// 413: body larger than the configured limit.
    PayloadTooLarge { limit: usize },
    /// 415: the body is not declared as JSON.
    UnsupportedMediaType,
    /// 422: the body is JSON, but its content is wrong.
    Validation(ValidationErrors),
    /// 422 with a specific code, for a well-formed request that cannot be carried out.
    Unprocessable { code: &'static str, detail: String },
    /// 408: the request body did not arrive in time.
    BodyTimeout(std::time::Duration),
    /// 400: the request body could not be read (a broken chunked encoding, a cut connection).
    BodyUnreadable,
    /// 429: the caller's rate limit is spent for now.
    RateLimited {
        /// `this API key` or `this client address`.
        whose: &'static str,
        rate: u32,
        burst: u32,
        retry_after_secs: u64,
    },
    /// 503: the request took longer than its deadline; the client may retry.
    RequestTimeout(std::time::Duration),
    /// 503: more work than this process takes on at once; the client may retry.
    Overloaded,
    /// 503: a dependency is down; the client may retry.
    Unavailable(Box<dyn StdError + Send + Sync>),
    /// 503 at once: a recent request found the database unreachable, and it has not
    /// answered since (see `orderly_storage::Store::report_unreachable`).
    DatabaseAway,
    /// 503: the database failed while an order's commit ran, so whether it was placed is
    /// unknown; the client retries with the same `Idempotency-Key` to learn it.
    CommitOutcomeUnknown(Box<dyn StdError + Send + Sync>),
    /// 507: the database's disk is full; nothing was written.
    StorageFull(Box<dyn StdError + Send + Sync>),
    /// 500: a fault of ours.
    Internal(Box<dyn StdError + Send + Sync>),
}

impl ApiError {
    pub fn internal(error: impl StdError + Send + Sync + 'static) -> Self {
        Self::Internal(Box::new(error))
    }

    #[allow(clippy::too_many_lines)] // A table: one arm per error, with its status, code and detail.
    pub(crate) fn parts(&self) -> (StatusCode, &'static str, String) {
        use ApiError::*;
        match self {
            MalformedJson(detail) => (
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("the request body is not valid JSON: {detail}"),
            ),
            InvalidQuery(_) => (
                StatusCode::BAD_REQUEST,
                "invalid_query",
                "one or more query parameters are invalid".into(),
            ),
            BadHeader { code, detail } => (StatusCode::BAD_REQUEST, code, detail.clone()),
            Unauthenticated => (
                StatusCode::UNAUTHORIZED,
                "unauthenticated",
                "send a live API key as `Authorization: Bearer <key>`".into(),
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key's role may not do this".into(),
            ),
            NotFound(what) => (
                StatusCode::NOT_FOUND,
                "not_found",
                format!("no such {what}"),
            ),
            MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "this method is not allowed on this resource".into(),
            ),
            Conflict { code, detail } => (StatusCode::CONFLICT, code, detail.clone()),
            OutOfStock(_) => (
                StatusCode::CONFLICT,
                "insufficient_stock",
                "some lines ask for more than is in stock".into(),
            ),
            PreconditionFailed => (
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                "If-Match does not name the current version; fetch it and try again".into(),
            ),
            PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "body_too_large",
                format!("the request body exceeds the limit of {limit} bytes"),
            ),
            UnsupportedMediaType => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as `Content-Type: application/json`".into(),
            ),
            Validation(_) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation_failed",
                "the request body has invalid fields".into(),
            ),
            Unprocessable { code, detail } => {
                (StatusCode::UNPROCESSABLE_ENTITY, code, detail.clone())
            }
            BodyTimeout(limit) => (
                StatusCode::REQUEST_TIMEOUT,
                "body_timeout",
                format!(
                    "the request body did not arrive within {} s",
                    limit.as_secs_f64()
                ),
            ),
            BodyUnreadable => (
                StatusCode::BAD_REQUEST,
                "body_unreadable",
                "the request body could not be read (broken framing, or the connection ended)"
                    .into(),
            ),
            RateLimited {
                whose,
                rate,
                burst,
                retry_after_secs,
            } => (
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limited",
                format!(
                    "{whose} may make {rate} requests a second (bursts of {burst}); retry after \
                     {retry_after_secs} s"
                ),
            ),
            RequestTimeout(limit) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "request_timeout",
                format!(
                    "the request took longer than {} s and its answer was given up; it may or \
                     may not have taken effect. Retry shortly (an order with the same \
                     Idempotency-Key, which tells whether it was placed)",
                    limit.as_secs_f64()
                ),
            ),
            Overloaded => (
                StatusCode::SERVICE_UNAVAILABLE,
                "overloaded",
                "the service is taking on as much as it can; retry shortly".into(),
            ),
            Unavailable(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "a dependency is unavailable; retry shortly".into(),
            ),
            DatabaseAway => (
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "the database cannot be reached; retry shortly".into(),
            ),
            CommitOutcomeUnknown(_) => (
                StatusCode::SERVICE_UNAVAILABLE,
                "commit_outcome_unknown",
                "the database failed while this order was being committed, so it may or may not \
                 have been placed; retry with the same Idempotency-Key: the retry returns the \
                 order if it was placed, or places it once"
                    .into(),
            ),
            StorageFull(_) => (
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the database has no room left to store this; nothing was written. Retry later \
                 (an order with the same Idempotency-Key)"
                    .into(),
            ),
            Internal(_) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "an internal error occurred; it has been logged".into(),
            ),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::SkuTaken => ApiError::Conflict {
                code: "sku_taken",
                detail: "a product with this sku already exists".into(),
            },
            StoreError::Overloaded => ApiError::Overloaded,
            e if e.is_storage_full() => ApiError::StorageFull(Box::new(e)),
            e if e.is_commit_outcome_unknown() => ApiError::CommitOutcomeUnknown(Box::new(e)),
            e if e.is_unavailable() => ApiError::Unavailable(Box::new(e)),
            other => ApiError::internal(other),
        }
    }
}

impl From<std::sync::Arc<StoreError>> for ApiError {
    fn from(error: std::sync::Arc<StoreError>) -> Self {
        if error.is_storage_full() {
            ApiError::StorageFull(Box::new(error))
        } else if error.is_commit_outcome_unknown() {
            ApiError::CommitOutcomeUnknown(Box::new(error))
        } else if error.is_unavailable() {
            ApiError::Unavailable(Box::new(error))
        } else {
            ApiError::Internal(Box::new(error))
        }
    }
}

impl From<QueueError> for ApiError {
    fn from(error: QueueError) -> Self {
        if error.is_storage_full() {
            ApiError::StorageFull(Box::new(error))
        } else if error.is_unavailable() {
            ApiError::Unavailable(Box::new(error))
        } else {
            ApiError::internal(error)
        }
    }
}

/// Left on every answer made from an [`ApiError`]: a server error among them has logged its
/// cause (or, when shed, is counted and summarised), so the edge logs only the others.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Explained;

/// A `303 See Other` to `location`. axum's `Redirect` answers a location that is no valid
/// header value with a bare `500` and logs nothing; this one answers it as an internal error,
/// its cause logged.
pub(crate) fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(location) => (StatusCode::SEE_OTHER, [(header::LOCATION, location)]).into_response(),
        Err(error) => ApiError::Internal(
            format!("redirecting to {location:?}, which is no header value: {error}").into(),
        )
        .into_response(),
    }
}

/// Left on a response whose request could not reach the database, for the admission
/// middleware to report (`orderly_storage::Store::report_unreachable`).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseUnreachable;

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, detail) = self.parts();
        let errors = match &self {
            ApiError::Validation(errors)
            | ApiError::InvalidQuery(errors)
            | ApiError::OutOfStock(errors) => errors
                .errors()
                .iter()
                .map(|e| ProblemField {
                    field: e.field.clone(),
                    code: e.code,
                    message: e.message.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        match &self {
            ApiError::Internal(error) => {
                tracing::error!(error = %cause_chain(error.as_ref()), "request failed")
            }
            ApiError::StorageFull(error) => {
                tracing::error!(error = %cause_chain(error.as_ref()), "the database's disk is full")
            }
            ApiError::Unavailable(error) | ApiError::CommitOutcomeUnknown(error) => {
                tracing::warn!(error = %cause_chain(error.as_ref()), code, "dependency unavailable")
            }
            _ => {}
        }
        let problem = Problem {
            kind: "about:blank",
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code,
            errors,
        };
        let mut response = (status, axum::Json(problem)).into_response();
        response.extensions_mut().insert(Explained);
        if let ApiError::Unavailable(error) | ApiError::CommitOutcomeUnknown(error) = &self
            && orderly_storage::is_unreachable(error.as_ref())
        {
            response.extensions_mut().insert(DatabaseUnreachable);
        }
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        if matches!(self, ApiError::Conflict { code, .. } if code == "idempotency_key_in_flight") {
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        if let ApiError::RateLimited {
            retry_after_secs, ..
        } = self
        {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        if matches!(self, ApiError::Unauthenticated) {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        if status == StatusCode::SERVICE_UNAVAILABLE || status == StatusCode::INSUFFICIENT_STORAGE {
            // A failover or restart is over in seconds; clients back off from here.
            headers.insert(
                header::RETRY_AFTER,
                HeaderValue::from_static(RETRY_AFTER_SECS),
            );
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_redirect_no_header_can_carry_is_an_explained_500_not_a_bare_one() {
        let fine = redirect("/console/jobs?state=discarded");
        assert_eq!(fine.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            fine.headers()[header::LOCATION],
            "/console/jobs?state=discarded"
        );
        let broken = redirect("/console/\u{1}");
        assert_eq!(broken.status(), StatusCode::INTERNAL_SERVER_ERROR);
        // Made from an ApiError, whose cause is logged: the edge sees it was explained.
        assert!(broken.extensions().get::<Explained>().is_some());
    }
}
