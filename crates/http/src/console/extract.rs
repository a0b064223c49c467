//! The console's extractors: the API's checks on paths and queries (a path that does not
//! parse is `404`; a query value with control characters is `400`, so a NUL never reaches
//! PostgreSQL) and a form that does not parse, or has such a value, is `400` (one too slow to arrive `408`, too
//! large `413`), each answered as a console page rather than a JSON problem.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::layout::PageError;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams, body_rejection, check_encoded_values};

/// Path parameters.
#[derive(Debug)]
pub(crate) struct Path<T>(pub(crate) T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Path<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let PathParams(value) = PathParams::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// Query parameters.
#[derive(Debug)]
pub(crate) struct Query<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequestParts<AppState> for Query<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, PageError> {
        let QueryParams(value) = QueryParams::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// A form post (`application/x-www-form-urlencoded`).
#[derive(Debug)]
pub(crate) struct Form<T>(pub(crate) T);

impl<T: DeserializeOwned> FromRequest<AppState> for Form<T> {
    type Rejection = PageError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, PageError> {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|v| {
                v.trim()
                    .eq_ignore_ascii_case("application/x-www-form-urlencoded")
            });
        let invalid = |detail: String| {
            PageError::Api(ApiError::BadHeader {
                code: "invalid_form",
                detail: format!("the form could not be read: {detail}"),
            })
        };
        if !is_form {
            return Err(invalid(
                "the content type is not application/x-www-form-urlencoded".into(),
            ));
        }
        // Read as the API reads its bodies: past the body deadline `408`, past the size
        // limit `413`.
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| PageError::Api(body_rejection(rejection, state)))?;
        check_encoded_values(&bytes).map_err(|errors| {
            let named: Vec<&str> = errors.errors().iter().map(|e| e.field.as_str()).collect();
            invalid(format!("control characters in {}", named.join(", ")))
        })?;
        serde_urlencoded::from_bytes(&bytes)
            .map(Self)
            .map_err(|e| invalid(e.to_string()))
    }
}
