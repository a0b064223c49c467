//! Every request body the API takes, decoded as its handler decodes it: the JSON first, then
//! each field's checks. The fuzz targets under `fuzz/` drive this with arbitrary bytes and hold
//! that none panics and every refusal is a client error (4xx).

use orderly_domain::Currency;

use crate::error::ApiError;
use crate::extract::parse_json;
use crate::products::{CreateProduct, UpdateProduct};
use crate::webhooks::{CreateWebhook, UpdateWebhook};

/// Which route's body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `POST /v1/orders`
    CreateOrder,
    /// `POST /v1/products`
    CreateProduct,
    /// `PATCH /v1/products/{id}`
    UpdateProduct,
    /// `POST /v1/webhooks`
    CreateWebhook,
    /// `PATCH /v1/webhooks/{id}`
    UpdateWebhook,
}

impl BodyKind {
    pub const ALL: [BodyKind; 5] = [
        BodyKind::CreateOrder,
        BodyKind::CreateProduct,
        BodyKind::UpdateProduct,
        BodyKind::CreateWebhook,
        BodyKind::UpdateWebhook,
    ];
}

/// Decodes `bytes` as the body of `kind`'s route for a store selling in `currency`; `Ok`
/// when the handler would go on to the database. Webhook URLs are checked as written (no
/// DNS lookup).
pub fn decode(
    kind: BodyKind,
    bytes: &[u8],
    currency: Currency,
    allow_private: bool,
) -> Result<(), ApiError> {
    match kind {
        BodyKind::CreateOrder => crate::orders::decode_order(&parse_json(bytes)?).map(drop),
        BodyKind::CreateProduct => parse_json::<CreateProduct>(bytes)?
            .parse(currency)
            .map(drop)
            .map_err(ApiError::Validation),
        BodyKind::UpdateProduct => parse_json::<UpdateProduct>(bytes)?
            .parse(currency)
            .map(drop)
            .map_err(ApiError::Validation),
        BodyKind::CreateWebhook => parse_json::<CreateWebhook>(bytes)?
            .parse(allow_private)
            .map(drop)
            .map_err(ApiError::Validation),
        BodyKind::UpdateWebhook => parse_json::<UpdateWebhook>(bytes)?
            .parse(allow_private)
            .map(drop)
            .map_err(ApiError::Validation),
    }
}
