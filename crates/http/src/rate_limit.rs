//! Rate limits on the API: each API key draws on a bucket sized by its role, and a request
//! without a valid key on its client address's bucket (so a client guessing keys or
//! without one gets 401s at the anonymous rate at most, and a valid key is never held back
//! by what others at its address do). Past its bucket a request is answered
//! `429 rate_limited` with `Retry-After`; every limited answer carries the IETF `RateLimit`
//! and `RateLimit-Policy` headers. `/healthz`, `/readyz` and `/metrics` are never limited.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::body::Body;
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Response};
use axum::response::IntoResponse;
use orderly_domain::Role;
use orderly_ratelimit::{Client, Decision, Policy, RateLimiter};

use crate::AppState;
use crate::auth::Authenticated;
use crate::error::ApiError;

const RATELIMIT: HeaderName = HeaderName::from_static("ratelimit");
const RATELIMIT_POLICY: HeaderName = HeaderName::from_static("ratelimit-policy");

/// The limiter and which policy applies to whom.
#[derive(Debug)]
pub struct RateLimits {
    pub limiter: RateLimiter,
    pub admin: Policy,
    pub storefront: Policy,
    /// Requests without a valid key, per client address.
    pub anonymous: Policy,
    /// The header a trusted balancer puts the client's address in (its last entry is
    /// taken: the one the balancer added). `None`: the connection's peer address.
    pub client_address_header: Option<HeaderName>,
}

impl RateLimits {
    fn for_role(&self, role: Role) -> &Policy {
        match role {
            Role::Admin => &self.admin,
            Role::Storefront => &self.storefront,
        }
    }

    fn client_address(&self, request: &Request) -> IpAddr {
        self.client_address_header
            .as_ref()
            .and_then(|name| forwarded_address(request.headers(), name))
            .or_else(|| {
                request
                    .extensions()
                    .get::<ConnectInfo<SocketAddr>>()
                    .map(|ConnectInfo(peer)| peer.ip())
            })
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
    }
}

/// The last address in `name` (`X-Forwarded-For: client, proxy1, proxy2` ends with the
/// address the nearest proxy saw, the only one a client cannot forge).
fn forwarded_address(headers: &HeaderMap, name: &HeaderName) -> Option<IpAddr> {
    let value = headers.get_all(name).iter().next_back()?.to_str().ok()?;
    value.rsplit(',').next()?.trim().parse().ok()
}

/// Runs `handler` if the caller's bucket has room, else answers `429`; the answer says how
/// much room is left either way.
pub async fn check<F>(
    state: &AppState,
    request: Request,
    handler: impl FnOnce(Request) -> F,
) -> Response<Body>
where
    F: Future<Output = Response<Body>>,
{
    let Some(limits) = &state.rate_limits else {
        return handler(request).await;
    };
    if matches!(request.uri().path(), "/healthz" | "/readyz" | "/metrics") {
        return handler(request).await;
    }
    // The edge looked the presented key up before admitting the request.
    let caller = request
        .extensions()
        .get::<Authenticated>()
        .and_then(|Authenticated(caller)| caller.as_ref());
    let (policy, client, whose) = match caller {
        Some(caller) => (
            limits.for_role(caller.role),
            Client::Key(caller.key_id),
            "this API key",
        ),
        None => (
            &limits.anonymous,
            Client::address(limits.client_address(&request)),
            "this client address",
        ),
    };
    let decision = limits.limiter.check(policy, client).await;
    if !decision.allowed {
        let console = request.uri().path().starts_with("/console");
        return refused(policy, decision, whose, console);
    }
    let mut response = handler(request).await;
    describe(response.headers_mut(), policy, &decision);
    response
}

/// The `429`: a problem document, or for the console a page saying the same.
fn refused(
    policy: &Policy,
    decision: Decision,
    whose: &'static str,
    console: bool,
) -> Response<Body> {
    let error = ApiError::RateLimited {
        whose,
        rate: policy.quota.rate,
        burst: policy.quota.burst,
        retry_after_secs: decision.retry_after.as_secs_f64().ceil().max(1.0) as u64,
    };
    let mut response = if console {
        crate::console::error_page(error)
    } else {
        error.into_response()
    };
    describe(response.headers_mut(), policy, &decision);
    response
}

/// `RateLimit-Policy: "storefront";q=2000;w=2` (the burst, over the time an empty bucket
/// takes to fill) and `RateLimit: "storefront";r=1999;t=1` (tokens left, and seconds until
/// the bucket is full), as draft-ietf-httpapi-ratelimit-headers writes them.
fn describe(headers: &mut HeaderMap, policy: &Policy, decision: &Decision) {
    let name = policy.name;
    let policy_value = format!(
        "\"{name}\";q={};w={}",
        policy.quota.burst,
        policy.quota.window_secs()
    );
    let reset = decision.reset.as_secs_f64().ceil() as u64;
    let state_value = format!("\"{name}\";r={};t={reset}", decision.remaining);
    for (header, value) in [(RATELIMIT_POLICY, policy_value), (RATELIMIT, state_value)] {
        if let Ok(value) = HeaderValue::from_str(&value) {
            headers.insert(header, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_forwarded_address_is_the_last_the_balancer_added() {
        let name = HeaderName::from_static("x-forwarded-for");
        let mut headers = HeaderMap::new();
        headers.append(&name, HeaderValue::from_static("203.0.113.9, 10.0.0.1"));
        headers.append(&name, HeaderValue::from_static("198.51.100.4"));
        assert_eq!(
            forwarded_address(&headers, &name),
            Some(IpAddr::from([198, 51, 100, 4]))
        );
        headers.insert(&name, HeaderValue::from_static("not an address"));
        assert_eq!(forwarded_address(&headers, &name), None);
    }
}
