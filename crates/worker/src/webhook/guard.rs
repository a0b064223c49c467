//! The SSRF guard: webhooks go to customers' servers, never into our own network. Host names
//! are checked by the HTTP client's resolver, at connect time, so the addresses checked are
//! the addresses dialled (a DNS answer that changes after the endpoint was created is caught);
//! address literals in the URL never reach a resolver and are checked before sending.

use std::net::{IpAddr, SocketAddr};

use orderly_domain::webhook::forbidden_address;
use reqwest::Url;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// Why a target was refused; found in a request error's source chain.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub(super) struct Blocked(pub String);

/// Checks a URL whose host is an address literal.
pub(super) fn check_literal(url: &Url) -> Result<(), Blocked> {
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        _ => return Ok(()),
    };
    match forbidden_address(ip) {
        Some(reason) => Err(Blocked(format!("{ip} is a {reason} address"))),
        None => Ok(()),
    }
}

/// Resolves with the system resolver and refuses a name when any of its addresses is one
/// webhooks may not reach (refusing all rather than filtering: a name that mixes public and
/// internal addresses is not a customer's plain web server).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct GuardedResolver;

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            check_resolved(&host, &addrs)?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

/// Refuses `host` when any address it resolved to is forbidden.
fn check_resolved(host: &str, addrs: &[SocketAddr]) -> Result<(), Blocked> {
    for addr in addrs {
        if let Some(reason) = forbidden_address(addr.ip()) {
            return Err(Blocked(format!(
                "{host} resolves to {}, a {reason} address",
                addr.ip()
            )));
        }
    }
    Ok(())
}

/// The [`Blocked`] somewhere in `error`'s sources, if the guard is why it failed.
pub(super) fn blocked_in(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    let mut current = Some(error);
    while let Some(e) = current {
        if let Some(blocked) = e.downcast_ref::<Blocked>() {
            return Some(blocked.0.clone());
        }
        current = e.source();
    }
    None
}
