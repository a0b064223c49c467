//! A webhook endpoint's circuit breaker, as rules without I/O: after `failures` consecutive
//! failed attempts (an answer other than 2xx, a timeout, a connection that failed) it opens, and
//! deliveries to the endpoint wait without being sent or spending attempts; once `cool_down`
//! has passed one delivery goes through as a probe (the breaker is then half-open, the probe
//! holding it for `probe_lease`, after which another may probe if the first never reported);
//! the probe's success closes it, its failure opens it for another cool-down.
//!
//! The state is the endpoint's, shared by every worker (the storage layer applies these rules
//! to the endpoint's row under its lock); the time it stays open counts toward the endpoint's
//! `disable_after`, since no success clears its failure record meanwhile.

use std::time::Duration;

use time::OffsetDateTime;

/// Where a breaker stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BreakerState {
    /// Deliveries go.
    Closed,
    /// Deliveries wait until the next probe.
    Open,
    /// One probe is in flight; the others wait for its verdict.
    HalfOpen,
}

impl BreakerState {
    pub const ALL: [BreakerState; 3] = [Self::Closed, Self::Open, Self::HalfOpen];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }

    /// The value of the `webhook_breaker_state` gauge: 0 closed, 1 half-open, 2 open.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::HalfOpen => 1.0,
            Self::Open => 2.0,
        }
    }
}

impl std::str::FromStr for BreakerState {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| format!("unknown breaker state {s:?}"))
    }
}

/// When a breaker opens and how long it rests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BreakerPolicy {
    /// Consecutive failed attempts that open it (at least 1).
    pub failures: u32,
    /// How long it stays open before a probe.
    pub cool_down: Duration,
    /// How long a probe holds the half-open breaker: the longest an attempt takes, and some.
    pub probe_lease: Duration,
}

/// A breaker as stored with its endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Breaker {
    pub state: BreakerState,
    /// Failed attempts since the last success.
    pub consecutive_failures: u32,
    /// When it last opened from closed; `None` while closed.
    pub opened_at: Option<OffsetDateTime>,
    /// Open: when the next probe may go. Half-open: when the probe in flight is given up.
    pub probe_at: Option<OffsetDateTime>,
}

impl Default for Breaker {
    fn default() -> Self {
        Self {
            state: BreakerState::Closed,
            consecutive_failures: 0,
            opened_at: None,
            probe_at: None,
        }
    }
}

/// Whether one delivery may be sent now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The breaker is closed: send.
    Send,
    /// Send as the probe; the breaker becomes `breaker`.
    Probe { breaker: Breaker },
    /// Do not send; wait until then (the next probe, or the verdict of the one in flight).
    Wait { until: OffsetDateTime },
}

/// A change of state an attempt's result made, for metrics and the waiting deliveries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transition {
    pub from: BreakerState,
    pub to: BreakerState,
}

impl Breaker {
    /// Whether a delivery may go at `now`.
    pub fn admit(&self, now: OffsetDateTime, policy: &BreakerPolicy) -> Admission {
        match (self.state, self.probe_at) {
            (BreakerState::Closed, _) => Admission::Send,
            (_, Some(at)) if at > now => Admission::Wait { until: at },
            _ => Admission::Probe {
                breaker: Breaker {
                    state: BreakerState::HalfOpen,
                    probe_at: Some(now + policy.probe_lease),
                    ..*self
                },
            },
        }
    }

    /// The breaker after an attempt made at `now` succeeded or not, and the transition, if
    /// any. Any attempt's result counts, a probe's or one sent before the breaker opened.
    pub fn after_attempt(
        &self,
        succeeded: bool,
        now: OffsetDateTime,
        policy: &BreakerPolicy,
    ) -> (Breaker, Option<Transition>) {
        let next = if succeeded {
            Breaker::default()
        } else {
            let failures = self.consecutive_failures.saturating_add(1);
            let opens = match self.state {
                BreakerState::Closed => failures >= policy.failures.max(1),
                BreakerState::HalfOpen => true,
                // Sent before it opened: the rest stays as it is.
                BreakerState::Open => false,
            };
            if opens {
                Breaker {
                    state: BreakerState::Open,
                    consecutive_failures: failures,
                    opened_at: self.opened_at.or(Some(now)),
                    probe_at: Some(now + policy.cool_down),
                }
            } else {
                Breaker {
                    consecutive_failures: failures,
                    ..*self
                }
            }
        };
        let transition = (next.state != self.state).then_some(Transition {
            from: self.state,
            to: next.state,
        });
        (next, transition)
    }
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::*;

    const NOW: OffsetDateTime = datetime!(2026-12-07 12:00 UTC);
    const POLICY: BreakerPolicy = BreakerPolicy {
        failures: 3,
        cool_down: Duration::from_secs(30),
        probe_lease: Duration::from_secs(20),
    };

    fn fail(breaker: Breaker, at: OffsetDateTime) -> (Breaker, Option<Transition>) {
        breaker.after_attempt(false, at, &POLICY)
    }

    #[test]
    fn opens_after_the_configured_consecutive_failures_and_a_success_resets_the_count() {
        let (one, _) = fail(Breaker::default(), NOW);
        let (two, none) = fail(one, NOW);
        assert_eq!(
            (two.state, two.consecutive_failures, none),
            (BreakerState::Closed, 2, None)
        );
        let (reset, _) = two.after_attempt(true, NOW, &POLICY);
        assert_eq!(reset, Breaker::default());
        let (three, opened) = fail(two, NOW);
        assert_eq!(three.state, BreakerState::Open);
        assert_eq!(three.opened_at, Some(NOW));
        assert_eq!(three.probe_at, Some(NOW + Duration::from_secs(30)));
        assert_eq!(
            opened,
            Some(Transition {
                from: BreakerState::Closed,
                to: BreakerState::Open
            })
        );
    }

    #[test]
    fn an_open_breaker_lets_one_probe_through_per_cool_down() {
        let open = Breaker {
            state: BreakerState::Open,
            consecutive_failures: 3,
            opened_at: Some(NOW),
            probe_at: Some(NOW + Duration::from_secs(30)),
        };
        let before = NOW + Duration::from_secs(29);
        assert_eq!(
            open.admit(before, &POLICY),
            Admission::Wait {
                until: NOW + Duration::from_secs(30)
            }
        );
        let at = NOW + Duration::from_secs(30);
        let Admission::Probe { breaker: probing } = open.admit(at, &POLICY) else {
            panic!("no probe after the cool-down");
        };
        assert_eq!(probing.state, BreakerState::HalfOpen);
        // While the probe is out, the others wait for its lease.
        assert_eq!(
            probing.admit(at, &POLICY),
            Admission::Wait {
                until: at + Duration::from_secs(20)
            }
        );
        // A probe that never reports is given up after its lease: the next one goes.
        assert!(matches!(
            probing.admit(at + Duration::from_secs(20), &POLICY),
            Admission::Probe { .. }
        ));
        // The probe failed: open again for a cool-down, still since the first opening.
        let (reopened, t) = fail(probing, at + Duration::from_secs(1));
        assert_eq!(reopened.state, BreakerState::Open);
        assert_eq!(reopened.opened_at, Some(NOW));
        assert_eq!(reopened.probe_at, Some(at + Duration::from_secs(31)));
        assert_eq!(t.map(|t| t.to), Some(BreakerState::Open));
        // The probe succeeded: closed.
        let (closed, t) = probing.after_attempt(true, at, &POLICY);
        assert_eq!(closed, Breaker::default());
        assert_eq!(
            t,
            Some(Transition {
                from: BreakerState::HalfOpen,
                to: BreakerState::Closed
            })
        );
    }

    #[test]
    fn a_failure_sent_before_the_breaker_opened_does_not_push_the_probe_back() {
        let open = Breaker {
            state: BreakerState::Open,
            consecutive_failures: 3,
            opened_at: Some(NOW),
            probe_at: Some(NOW + Duration::from_secs(30)),
        };
        let (after, t) = fail(open, NOW + Duration::from_secs(5));
        assert_eq!(after.probe_at, open.probe_at);
        assert_eq!(after.consecutive_failures, 4);
        assert_eq!(t, None);
    }

    #[test]
    fn states_read_back_as_written() {
        for state in BreakerState::ALL {
            assert_eq!(state.as_str().parse::<BreakerState>(), Ok(state));
        }
        assert!("ajar".parse::<BreakerState>().is_err());
    }
}
