//! Authentication and authorisation as extractors: a handler that takes
//! `Authorized<ManageCatalogue>` runs only for a live key whose role allows it, and the check
//! happens before the body is read, so an unauthorised caller learns nothing about it.

use std::marker::PhantomData;
use std::time::Duration;

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use orderly_domain::Role;
use orderly_storage::Caller;

use crate::AppState;
use crate::error::ApiError;

/// Keys verified in the last few seconds, so that a busy client costs one database lookup
/// per key per interval instead of one per request. Lookups are single-flight: a burst of
/// requests with a key not yet verified makes one query, the others wait for its answer
/// (2,000 clients of one shop arriving at once otherwise queued 2,000 lookups for the pool). Keyed by the key's digest, never the key.
/// Bounded: at most 10,000 keys, each for `ttl`. A key revoked by another process keeps
/// working here until its entry expires; one revoked in this process is dropped at once.
#[derive(Debug, Clone)]
pub struct KeyCache(Option<moka::future::Cache<[u8; 32], Caller>>);

impl KeyCache {
    /// A cache holding entries for `ttl`; zero turns caching off.
    pub fn new(ttl: Duration) -> Self {
        Self((!ttl.is_zero()).then(|| {
            moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ttl)
                .build()
        }))
    }

    pub(crate) async fn caller(
        &self,
        state: &AppState,
        digest: &[u8; 32],
    ) -> Result<Option<Caller>, ApiError> {
        let Some(cache) = &self.0 else {
            return Ok(state.store.authenticate_digest(digest).await?);
        };
        let lookup = async {
            match state.store.authenticate_digest(digest).await {
                Ok(Some(caller)) => Ok(caller),
                Ok(None) => Err(None),
                Err(error) => Err(Some(std::sync::Arc::new(error))),
            }
        };
        // An unknown key is not cached (`Err(None)`): it may be created a moment later.
        match cache.try_get_with(*digest, lookup).await {
            Ok(caller) => Ok(Some(caller)),
            Err(failure) => match failure.as_ref() {
                None => Ok(None),
                Some(error) => Err(error.clone().into()),
            },
        }
    }
}

/// A rule about which roles may do something.
pub trait Policy: Send + Sync + 'static {
    fn allows(role: Role) -> bool;
}

/// Create, change and archive products.
#[derive(Debug)]
pub struct ManageCatalogue;

impl Policy for ManageCatalogue {
    fn allows(role: Role) -> bool {
        role.can_manage_catalogue()
    }
}

/// Read products.
#[derive(Debug)]
pub struct ReadCatalogue;

impl Policy for ReadCatalogue {
    fn allows(role: Role) -> bool {
        role.can_read_catalogue()
    }
}

/// Place orders and read one's own.
#[derive(Debug)]
pub struct PlaceOrders;

impl Policy for PlaceOrders {
    fn allows(role: Role) -> bool {
        role.can_place_orders()
    }
}

/// Read every order and move orders between states.
#[derive(Debug)]
pub struct ManageOrders;

impl Policy for ManageOrders {
    fn allows(role: Role) -> bool {
        role.can_manage_orders()
    }
}

/// Inspect, retry and cancel jobs.
#[derive(Debug)]
pub struct ManageJobs;

impl Policy for ManageJobs {
    fn allows(role: Role) -> bool {
        role.can_manage_jobs()
    }
}

/// Read the event feed.
#[derive(Debug)]
pub struct ReadEvents;

impl Policy for ReadEvents {
    fn allows(role: Role) -> bool {
        role.can_manage_webhooks()
    }
}

/// Manage webhook endpoints and their deliveries.
#[derive(Debug)]
pub struct ManageWebhooks;

impl Policy for ManageWebhooks {
    fn allows(role: Role) -> bool {
        role.can_manage_webhooks()
    }
}

/// The caller, authenticated and allowed by policy `P`.
#[derive(Debug)]
pub struct Authorized<P: Policy> {
    pub caller: Caller,
    policy: PhantomData<P>,
}

impl<P: Policy> FromRequestParts<AppState> for Authorized<P> {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let caller = match parts.extensions.get::<Authenticated>() {
            Some(Authenticated(checked)) => checked.clone(),
            None => {
                let digest = presented_digest(&parts.headers).ok_or(ApiError::Unauthenticated)?;
                state.keys.caller(state, &digest).await?
            }
        }
        .ok_or(ApiError::Unauthenticated)?;
        tracing::Span::current().record("key_id", tracing::field::display(caller.key_id));
        if !P::allows(caller.role) {
            return Err(ApiError::Forbidden);
        }
        Ok(Self {
            caller,
            policy: PhantomData,
        })
    }
}

/// The key presented as `Authorization: Bearer <key>` has been looked up already (by the
/// edge, before admission): its caller, or `None` when it is not a live key.
#[derive(Debug, Clone)]
pub(crate) struct Authenticated(pub(crate) Option<Caller>);

/// The digest of the key presented as `Authorization: Bearer <key>`, if one that could be a
/// key of ours is.
pub(crate) fn presented_digest(headers: &axum::http::HeaderMap) -> Option<[u8; 32]> {
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token)?;
    orderly_storage::key_digest(presented)
}

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_taken_from_the_header_whatever_the_scheme_case() {
        assert_eq!(bearer_token("Bearer oly_abc"), Some("oly_abc"));
        assert_eq!(bearer_token("bearer  oly_abc "), Some("oly_abc"));
        assert_eq!(bearer_token("Basic dXNlcjpwYXNz"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("oly_abc"), None);
    }
}
