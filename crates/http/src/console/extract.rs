//! The console's extractors: the API's checks on paths and queries (a path that does not
//! parse is `404`; a query value with control characters is `400`, so a NUL never reaches
//! PostgreSQL) and a form that does not parse is `400`, each answered as a console page
//! rather than a JSON problem.

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

use super::layout::PageError;
use crate::AppState;
use crate::error::ApiError;
use crate::extract::{PathParams, QueryParams};

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
        axum::Form::from_request(request, state)
            .await
            .map(|axum::Form(value)| Self(value))
            .map_err(|rejection| {
                PageError::Api(ApiError::BadHeader {
                    code: "invalid_form",
                    detail: format!("the form could not be read: {}", rejection.body_text()),
                })
            })
    }
}
