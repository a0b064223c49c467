//! `orderly healthcheck`: asks the process running beside it (same configuration) whether it
//! is alive, for a container's `HEALTHCHECK` or an `exec` probe, so that the image needs no
//! `curl`.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::{Context, bail};

use crate::config::Config;

/// Succeeds when `/healthz` answers `200` on the API's address or, when nothing listens
/// there (a worker-only process), on the worker's metrics address.
pub async fn run(config: &Config, timeout: Duration) -> anyhow::Result<()> {
    let client = reqwest::Client::builder()
        .timeout(timeout)
        .build()
        .context("cannot build an HTTP client")?;
    let mut refused = Vec::new();
    for addr in [config.http.listen, config.worker.metrics_listen] {
        let url = format!("http://{}/healthz", reachable(addr));
        match client.get(&url).send().await {
            Ok(response) if response.status().is_success() => return Ok(()),
            Ok(response) => {
                let status = response.status();
                let body = response.text().await.unwrap_or_default();
                bail!("{url} answered {status}: {}", body.trim());
            }
            Err(e) if e.is_connect() => refused.push(url),
            Err(e) => return Err(e).with_context(|| format!("no answer from {url}")),
        }
    }
    bail!("nothing listens at {}", refused.join(" or "))
}

/// The address to call for one a server listens on: a wildcard means this host's loopback.
fn reachable(listen: SocketAddr) -> SocketAddr {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    SocketAddr::new(ip, listen.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wildcard_listen_address_is_called_on_loopback() {
        let at = |s: &str| s.parse::<SocketAddr>().unwrap();
        assert_eq!(reachable(at("0.0.0.0:8080")), at("127.0.0.1:8080"));
        assert_eq!(reachable(at("[::]:9101")), at("[::1]:9101"));
        assert_eq!(reachable(at("10.0.0.5:8080")), at("10.0.0.5:8080"));
    }
}
