//! The catalogue API under `/v1/products`: create, read (by id and by sku), list, update and
//! archive. Admin keys manage the catalogue; storefront keys read it.

mod body;
pub mod read;
mod resource;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use orderly_domain::{FieldError, Product, ProductId, Sku, ValidationErrors};
use orderly_storage::{Caller, ProductFilter, ProductWrite, UpdateOutcome};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use body::{CreateProduct, UpdateProduct};
pub use resource::{ProductPage, ProductResource};

use crate::AppState;
use crate::auth::{Authorized, ManageCatalogue, ReadCatalogue};
use crate::error::{ApiError, Problem};
use crate::extract::{IfMatch, JsonBody, PathParams, QueryParams};
use crate::pagination::{next_cursor, page_limit, read_page};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product))
        .routes(routes!(get_product_by_sku))
        .routes(routes!(archive_product))
}

/// A product with its `ETag`, and a `Location` when it was just created.
fn product_response(status: StatusCode, product: Product) -> Response {
    let mut headers = HeaderMap::new();
    if let Ok(etag) = HeaderValue::from_str(&product.etag()) {
        headers.insert(header::ETAG, etag);
    }
    if status == StatusCode::CREATED
        && let Ok(location) = HeaderValue::from_str(&format!("/v1/products/{}", product.id))
    {
        headers.insert(header::LOCATION, location);
    }
    (status, headers, Json(ProductResource::from(product))).into_response()
}

/// A cached product as a `200` with its `ETag`.
fn cached_response(product: &orderly_cache::CachedProduct) -> Response {
    // Room for the headers every layer adds on the way out, so the map is not grown twice.
    let mut headers = HeaderMap::with_capacity(8);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(etag) = HeaderValue::from_str(&product.etag) {
        headers.insert(header::ETAG, etag);
    }
    (StatusCode::OK, headers, product.body.clone()).into_response()
}

/// Who makes a catalogue change, and the request's trace, as its events record them.
fn written_by(caller: &Caller) -> ProductWrite {
    ProductWrite {
        actor: caller.actor(),
        trace: crate::tracing_context::current_traceparent(),
    }
}

/// An id from the path; anything that is not a UUID cannot name a product.
fn parse_id(raw: &str) -> Result<ProductId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound("product"))
}

/// Create a product.
#[utoipa::path(
    post, path = "/v1/products", tag = "products",
    request_body = CreateProduct,
    responses(
        (status = 201, description = "Created", body = ProductResource,
            headers(("Location" = String, description = "The product's URL"), ("ETag" = String))),
        (status = 409, description = "The sku is taken", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn create_product(
    auth: Authorized<ManageCatalogue>,
    State(state): State<AppState>,
    JsonBody(body): JsonBody<CreateProduct>,
) -> Result<Response, ApiError> {
    let new = body
        .parse(state.settings.currency)
        .map_err(ApiError::Validation)?;
    let product = state
        .services
        .create_product(&new, &written_by(&auth.caller))
        .await?;
    Ok(product_response(StatusCode::CREATED, product))
}

/// Read a product by id.
#[utoipa::path(
    get, path = "/v1/products/{id}", tag = "products",
    params(("id" = uuid::Uuid, Path, description = "The product id")),
    responses(
        (status = 200, description = "The product", body = ProductResource, headers(("ETag" = String))),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn get_product(
    _auth: Authorized<ReadCatalogue>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
) -> Result<Response, ApiError> {
    let product = read::by_id(&state, parse_id(&id)?)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    Ok(cached_response(&product))
}

/// Read a product by its sku.
#[utoipa::path(
    get, path = "/v1/products/by-sku/{sku}", tag = "products",
    params(("sku" = String, Path, description = "The product's sku")),
    responses(
        (status = 200, description = "The product", body = ProductResource, headers(("ETag" = String))),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn get_product_by_sku(
    _auth: Authorized<ReadCatalogue>,
    State(state): State<AppState>,
    PathParams(sku): PathParams<String>,
) -> Result<Response, ApiError> {
    let sku = Sku::parse("sku", &sku).map_err(|_| ApiError::NotFound("product"))?;
    let product = read::by_sku(&state, &sku)
        .await?
        .ok_or(ApiError::NotFound("product"))?;
    Ok(cached_response(&product))
}

/// Query parameters of the product listing.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ListQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100)]
    limit: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[A-Za-z0-9_-]{21}[AQgw]$")]
    cursor: Option<String>,
    /// Only active (`true`) or inactive (`false`) products.
    #[param(value_type = Option<bool>)]
    active: Option<String>,
}

impl ListQuery {
    fn parse(self) -> Result<ProductFilter, ApiError> {
        let mut errors = ValidationErrors::new();
        let (limit, after) = read_page(self.limit.as_deref(), self.cursor.as_deref(), &mut errors);
        let after = after.map(ProductId::from_uuid);
        let active = match self.active.as_deref() {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => errors.check(Err(FieldError::new(
                "active",
                "invalid_type",
                "must be true or false",
            ))),
        };
        Ok(ProductFilter {
            active,
            after,
            limit: page_limit(limit, errors)?,
        })
    }
}

/// List products in creation order, a page at a time.
#[utoipa::path(
    get, path = "/v1/products", tag = "products",
    params(ListQuery),
    responses(
        (status = 200, description = "One page of products", body = ProductPage),
        (status = 400, description = "Invalid query parameters", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn list_products(
    _auth: Authorized<ReadCatalogue>,
    State(state): State<AppState>,
    QueryParams(query): QueryParams<ListQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let filter = query.parse()?;
    let products = state.store.list_products(&filter).await?;
    let next_cursor = next_cursor(&products, filter.limit, |p| p.id.as_uuid());
    Ok(Json(ProductPage {
        data: products.into_iter().map(ProductResource::from).collect(),
        next_cursor,
    }))
}

/// Change some fields of a product. With `If-Match`, only if it is still at that version.
#[utoipa::path(
    patch, path = "/v1/products/{id}", tag = "products",
    params(
        ("id" = uuid::Uuid, Path, description = "The product id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    request_body = UpdateProduct,
    responses(
        (status = 200, description = "The changed product", body = ProductResource, headers(("ETag" = String))),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "The product is archived, or the new sku is taken", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The product has changed since that ETag", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn update_product(
    auth: Authorized<ManageCatalogue>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    if_match: IfMatch,
    JsonBody(body): JsonBody<UpdateProduct>,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let (patch, reason) = body
        .parse(state.settings.currency)
        .map_err(ApiError::Validation)?;
    let expected = if_match
        .required_version(current_version(&state, id))
        .await?;
    let outcome = state
        .services
        .update_product(
            id,
            expected,
            &patch,
            reason.as_deref(),
            &written_by(&auth.caller),
        )
        .await?;
    match outcome {
        UpdateOutcome::Updated(product) => Ok(product_response(StatusCode::OK, product)),
        UpdateOutcome::NotFound => Err(ApiError::NotFound("product")),
        UpdateOutcome::Archived(_) => Err(archived()),
        UpdateOutcome::VersionMismatch(_) => Err(ApiError::PreconditionFailed),
    }
}

/// The product's version now, for an `If-Match` that lists several tags.
async fn current_version(state: &AppState, id: ProductId) -> Result<Option<i64>, ApiError> {
    Ok(state.store.product_by_id(id).await?.map(|p| p.version))
}

fn archived() -> ApiError {
    ApiError::Conflict {
        code: "product_archived",
        detail: "the product is archived and can no longer change".into(),
    }
}

/// Archive a product: it can no longer be ordered or changed. Archiving twice is harmless.
#[utoipa::path(
    post, path = "/v1/products/{id}/archive", tag = "products",
    params(
        ("id" = uuid::Uuid, Path, description = "The product id"),
        ("If-Match" = Option<String>, Header, description = "The ETag the change is based on"),
    ),
    responses(
        (status = 200, description = "The archived product", body = ProductResource, headers(("ETag" = String))),
        (status = 404, description = "No such product", body = Problem, content_type = "application/problem+json"),
        (status = 412, description = "The product has changed since that ETag", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
async fn archive_product(
    auth: Authorized<ManageCatalogue>,
    State(state): State<AppState>,
    PathParams(id): PathParams<String>,
    if_match: IfMatch,
) -> Result<Response, ApiError> {
    let id = parse_id(&id)?;
    let expected = if_match
        .required_version(current_version(&state, id))
        .await?;
    match state
        .services
        .archive_product(id, expected, &written_by(&auth.caller))
        .await?
    {
        UpdateOutcome::Updated(product) => Ok(product_response(StatusCode::OK, product)),
        UpdateOutcome::Archived(product) => Ok(product_response(StatusCode::OK, product)),
        UpdateOutcome::NotFound => Err(ApiError::NotFound("product")),
        UpdateOutcome::VersionMismatch(_) => Err(ApiError::PreconditionFailed),
    }
}
