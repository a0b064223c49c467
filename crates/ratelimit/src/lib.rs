//! Rate limits: a token bucket per client (an API key, or the address of a client without a
//! valid key), with a rate and a burst set per kind of client (a [`Policy`]). With Redis
//! configured every process shares each bucket, checked by one atomic script; without it, or
//! while Redis fails, each process keeps its own buckets (governor's GCRA, the same
//! algorithm). A failing Redis never fails a request: the check falls back to the local
//! bucket, and Redis is skipped for a second before it is tried again.

mod local;
mod shared;

use std::fmt;
use std::net::IpAddr;
use std::time::Duration;

use uuid::Uuid;

pub use shared::RedisSettings;

/// Why the limiter could not be set up (a Redis URL that does not parse).
pub type SetupError = redis::RedisError;

/// How fast a bucket refills and how much it holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quota {
    /// Requests per second, on average.
    pub rate: u32,
    /// Requests at once from a full bucket.
    pub burst: u32,
}

impl Quota {
    /// The time between two tokens.
    pub fn interval(&self) -> Duration {
        Duration::from_nanos(1_000_000_000 / u64::from(self.rate.max(1)))
    }

    /// How long an empty bucket takes to fill, in whole seconds (rounded up): the window of
    /// the `RateLimit-Policy` header, over which `burst` requests may be made.
    pub fn window_secs(&self) -> u64 {
        u64::from(self.burst).div_ceil(u64::from(self.rate.max(1)))
    }
}

/// A named quota, applying to one kind of client (`admin`, `storefront`, `anonymous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub name: &'static str,
    pub quota: Quota,
}

/// Whose bucket a request takes its token from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// An API key, by its id.
    Key(Uuid),
    /// A client without a valid key, by address (an IPv6 address by its /64 prefix, which one
    /// host is usually given whole).
    Address(IpAddr),
    /// Every client address beyond the most a process tracks shares this one bucket.
    Crowd,
}

impl Client {
    pub fn address(address: IpAddr) -> Self {
        Self::Address(match address.to_canonical() {
            IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !u128::from(u64::MAX)).into()),
            v4 => v4,
        })
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Client::Key(id) => write!(f, "key:{id}"),
            Client::Address(address) => write!(f, "addr:{address}"),
            Client::Crowd => f.write_str("crowd"),
        }
    }
}

/// The outcome of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Tokens left in the bucket after this request.
    pub remaining: u32,
    /// When refused: how long until a token is there.
    pub retry_after: Duration,
    /// How long until the bucket is full again.
    pub reset: Duration,
}

/// The rate limiter of one process.
#[derive(Debug)]
pub struct RateLimiter {
    local: local::Buckets,
    shared: Option<shared::Buckets>,
}

impl RateLimiter {
    /// Buckets for `policies`; at most `max_tracked` client addresses per policy are kept in
    /// process (then the rest share [`Client::Crowd`]'s bucket). With `redis`, buckets live
    /// there.
    pub fn new(
        policies: &[Policy],
        max_tracked: usize,
        redis: Option<RedisSettings>,
    ) -> Result<Self, SetupError> {
        Ok(Self {
            local: local::Buckets::new(policies, max_tracked),
            shared: redis.map(shared::Buckets::new).transpose()?,
        })
    }

    /// Takes a token for `client` under `policy`, or says how long until there is one.
    pub async fn check(&self, policy: &Policy, client: Client) -> Decision {
        if let Some(shared) = &self.shared
            && let Some(decision) = shared.check(policy, client).await
        {
            return self.counted(policy, decision);
        }
        let decision = self.local.check(policy, client);
        self.counted(policy, decision)
    }

    fn counted(&self, policy: &Policy, decision: Decision) -> Decision {
        if !decision.allowed {
            metrics::counter!("http_requests_rate_limited_total", "policy" => policy.name)
                .increment(1);
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_are_told_apart_by_their_64_bit_prefix_and_mapped_ipv4_by_the_ipv4() {
        let a = Client::address("2001:db8:1:2:aaaa::1".parse().unwrap());
        let b = Client::address("2001:db8:1:2:bbbb::9".parse().unwrap());
        let c = Client::address("2001:db8:1:3::1".parse().unwrap());
        assert_eq!(a, b);
        assert_ne!(a, c);
        let mapped = Client::address("::ffff:192.0.2.7".parse().unwrap());
        assert_eq!(mapped, Client::Address(IpAddr::from([192, 0, 2, 7])));
    }

    #[test]
    fn the_policy_window_is_how_long_an_empty_bucket_takes_to_fill() {
        assert_eq!(
            Quota {
                rate: 10,
                burst: 20
            }
            .window_secs(),
            2
        );
        assert_eq!(Quota { rate: 3, burst: 10 }.window_secs(), 4);
        assert_eq!(
            Quota {
                rate: 10,
                burst: 10
            }
            .interval(),
            Duration::from_millis(100)
        );
    }
}
