//! Where a job is in its life, and the retry schedule a failing job follows.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

/// Where a job is in its life.
///
/// ```text
/// available ──fetch──▶ running ──ok──▶ completed
///     ▲  ▲                │ └──fails, attempts left──▶ available (later)
///     │  └──lease expired─┘ └──fails, none left──────▶ discarded
///     └──────────── retry by hand ◀──── discarded | cancelled
/// available | running ──cancel──▶ cancelled
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum JobState {
    /// Waiting to run at or after its `run_at`.
    Available,
    /// Held by a worker whose lease has not expired.
    Running,
    Completed,
    /// Failed on every allowed attempt, or failed permanently; kept for inspection and retry.
    Discarded,
    Cancelled,
}

impl JobState {
    pub const ALL: [JobState; 5] = [
        JobState::Available,
        JobState::Running,
        JobState::Completed,
        JobState::Discarded,
        JobState::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            JobState::Available => "available",
            JobState::Running => "running",
            JobState::Completed => "completed",
            JobState::Discarded => "discarded",
            JobState::Cancelled => "cancelled",
        }
    }

    /// Whether an operator may send the job round again.
    pub fn can_retry(self) -> bool {
        matches!(self, JobState::Discarded | JobState::Cancelled)
    }

    /// Whether an operator may cancel the job.
    pub fn can_cancel(self) -> bool {
        matches!(self, JobState::Available | JobState::Running)
    }
}

impl fmt::Display for JobState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A state name that is none of [`JobState::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown job state {0:?}")]
pub struct UnknownJobState(pub String);

impl FromStr for JobState {
    type Err = UnknownJobState;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| UnknownJobState(s.to_owned()))
    }
}

/// Exponential backoff with jitter: attempt `n` (1-based) waits about `base × 2^(n-1)`,
/// capped at `max`, scaled by a factor in `[0.75, 1.25)` taken from `jitter` (a number in
/// `[0, 1)`) so that jobs failing together do not retry together.
pub fn backoff(attempt: u32, base: Duration, max: Duration, jitter: f64) -> Duration {
    let exponent = attempt.saturating_sub(1).min(30);
    let nominal = base.saturating_mul(1u32 << exponent).min(max);
    nominal.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 0.999_999))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_per_attempt_within_the_jitter_band_and_stops_at_the_cap() {
        let base = Duration::from_secs(2);
        let max = Duration::from_secs(60);
        for (attempt, nominal) in [
            (1, 2.0),
            (2, 4.0),
            (3, 8.0),
            (4, 16.0),
            (5, 32.0),
            (6, 60.0),
            (40, 60.0),
        ] {
            for jitter in [0.0, 0.5, 0.999] {
                let wait = backoff(attempt, base, max, jitter).as_secs_f64();
                assert!(
                    wait >= nominal * 0.75 - 1e-9 && wait < nominal * 1.25,
                    "attempt {attempt}: {wait}"
                );
            }
        }
    }

    #[test]
    fn only_finished_jobs_can_be_retried_and_only_unfinished_ones_cancelled() {
        let retryable: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.can_retry())
            .collect();
        assert_eq!(retryable, [JobState::Discarded, JobState::Cancelled]);
        let cancellable: Vec<_> = JobState::ALL
            .into_iter()
            .filter(|s| s.can_cancel())
            .collect();
        assert_eq!(cancellable, [JobState::Available, JobState::Running]);
        for state in JobState::ALL {
            assert_eq!(state.as_str().parse::<JobState>().unwrap(), state);
        }
    }
}
