//! Buckets kept in this process, with governor: one keyed limiter per policy. Used when no
//! Redis is configured, and while Redis fails.

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::state::keyed::HashMapStateStore;

use crate::{Client, Decision, Policy};

type Limiter = governor::RateLimiter<
    Client,
    HashMapStateStore<Client>,
    DefaultClock,
    StateInformationMiddleware,
>;

/// How many checks pass between two looks at the number of tracked clients.
const SWEEP_EVERY: u32 = 1024;

#[derive(Debug)]
pub(crate) struct Buckets {
    limiters: Vec<(&'static str, Limiter)>,
    clock: DefaultClock,
    max_tracked: usize,
    checks: AtomicU32,
    /// Set while more than `max_tracked` clients are tracked even after a sweep: then every
    /// client address shares the one `Crowd` bucket, so the table stops growing.
    crowded: AtomicBool,
}

impl Buckets {
    pub(crate) fn new(policies: &[Policy], max_tracked: usize) -> Self {
        let clock = DefaultClock::default();
        let limiters = policies
            .iter()
            .map(|policy| {
                let quota = governor::Quota::with_period(policy.quota.interval())
                    .unwrap_or_else(|| governor::Quota::per_second(NonZeroU32::MIN))
                    .allow_burst(NonZeroU32::new(policy.quota.burst).unwrap_or(NonZeroU32::MIN));
                let limiter = Limiter::new(quota, HashMapStateStore::default(), clock.clone());
                (policy.name, limiter)
            })
            .collect();
        Self {
            limiters,
            clock,
            max_tracked,
            checks: AtomicU32::new(0),
            crowded: AtomicBool::new(false),
        }
    }

    pub(crate) fn check(&self, policy: &Policy, client: Client) -> Decision {
        let Some((_, limiter)) = self.limiters.iter().find(|(name, _)| *name == policy.name) else {
            // A policy this process was not built with: nothing to limit by.
            return Decision {
                allowed: true,
                remaining: policy.quota.burst,
                retry_after: Duration::ZERO,
                reset: Duration::ZERO,
            };
        };
        if self
            .checks
            .fetch_add(1, Ordering::Relaxed)
            .is_multiple_of(SWEEP_EVERY)
        {
            self.sweep();
        }
        let client = match client {
            Client::Address(_) if self.crowded.load(Ordering::Relaxed) => Client::Crowd,
            other => other,
        };
        let burst = policy.quota.burst;
        match limiter.check_key(&client) {
            Ok(state) => {
                let remaining = state.remaining_burst_capacity();
                Decision {
                    allowed: true,
                    remaining,
                    retry_after: Duration::ZERO,
                    reset: policy.quota.interval() * burst.saturating_sub(remaining),
                }
            }
            Err(not_until) => Decision {
                allowed: false,
                remaining: 0,
                retry_after: not_until.wait_time_from(self.clock.now()),
                reset: policy.quota.interval() * burst,
            },
        }
    }

    /// Forgets buckets that have filled up again (they hold nothing a new one would not), and
    /// turns crowding on or off by how many are left.
    fn sweep(&self) {
        let mut tracked = 0;
        for (_, limiter) in &self.limiters {
            if limiter.len() > self.max_tracked / 2 {
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
            tracked = tracked.max(limiter.len());
        }
        let crowded = tracked >= self.max_tracked;
        if crowded != self.crowded.swap(crowded, Ordering::Relaxed) {
            if crowded {
                tracing::warn!(
                    tracked,
                    "rate limits track as many client addresses as they may; the addresses \
                     beyond share one bucket until some are forgotten"
                );
            } else {
                tracing::info!(tracked, "rate limits track each client address again");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Quota;

    const POLICY: Policy = Policy {
        name: "test",
        quota: Quota { rate: 1, burst: 3 },
    };

    #[test]
    fn a_bucket_gives_its_burst_then_refuses_until_it_refills() {
        let buckets = Buckets::new(&[POLICY], 100);
        let client = Client::address([192, 0, 2, 1].into());
        let remaining: Vec<u32> = (0..3)
            .map(|_| buckets.check(&POLICY, client))
            .inspect(|d| assert!(d.allowed))
            .map(|d| d.remaining)
            .collect();
        assert_eq!(remaining, [2, 1, 0]);
        let refused = buckets.check(&POLICY, client);
        assert!(!refused.allowed);
        assert!(
            refused.retry_after > Duration::from_millis(900),
            "{refused:?}"
        );
        assert!(refused.retry_after <= Duration::from_secs(1), "{refused:?}");
        // Another client has its own bucket.
        assert!(
            buckets
                .check(&POLICY, Client::address([192, 0, 2, 2].into()))
                .allowed
        );
    }

    #[test]
    fn past_the_most_tracked_addresses_new_ones_share_one_bucket() {
        let buckets = Buckets::new(&[POLICY], 4);
        for i in 0..10u8 {
            buckets.check(&POLICY, Client::address([192, 0, 2, i].into()));
        }
        buckets.sweep();
        assert!(buckets.crowded.load(Ordering::Relaxed));
        // Every address now draws on the crowd's bucket: three at most between them.
        let allowed = (100..110u8)
            .filter(|i| {
                buckets
                    .check(&POLICY, Client::address([198, 51, 100, *i].into()))
                    .allowed
            })
            .count();
        assert_eq!(allowed, 3);
        // API keys are not crowded: there are only as many as the operators made.
        assert!(
            buckets
                .check(&POLICY, Client::Key(uuid::Uuid::nil()))
                .allowed
        );
    }
}
