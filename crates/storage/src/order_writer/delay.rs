//! How long orders wait in the writer's queue, and what the writer does about it: the
//! standing-queue detection (CoDel's sojourn time at the head of the queue), the adaptive
//! limit of orders let in at once, and the spell after a shed during which new orders are
//! refused at once (see the writer's description in `mod.rs`).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

/// Until when new orders are refused at once, as microseconds after `since`; 0: not now.
#[derive(Debug)]
pub(super) struct Congestion {
    pub(super) since: Instant,
    pub(super) until_micros: AtomicU64,
}

impl Congestion {
    pub(super) fn now_micros(&self) -> u64 {
        self.since.elapsed().as_micros() as u64
    }

    pub(super) fn active(&self) -> bool {
        self.now_micros() < self.until_micros.load(Ordering::Relaxed)
    }

    pub(super) fn extend(&self, by: std::time::Duration) {
        let until = self.now_micros() + by.as_micros() as u64;
        self.until_micros.fetch_max(until, Ordering::Relaxed);
    }
}

/// Whether the queue is standing (see the module's description), from the waits of the orders
/// the writers take, one after another.
#[derive(Debug)]
pub(super) struct QueueDelay {
    pub(super) target: std::time::Duration,
    pub(super) interval: std::time::Duration,
    pub(super) state: Mutex<DelayState>,
    /// Most orders let in at once (admitted and not yet answered): the queue's size at first,
    /// so that a burst may queue; halved each interval the queue is standing, raised by a
    /// sixteenth with each batch whose oldest order waited less than the target, back up to
    /// the queue's size.
    pub(super) limit: AtomicUsize,
    pub(super) max_limit: usize,
    /// How long a batch's transaction takes, a moving average in microseconds: waiting for
    /// the batch before is what group commit costs, not a standing queue, so the target is
    /// at least twice this.
    pub(super) batch_micros: AtomicU64,
}

/// The least the adaptive limit goes down to.
pub(super) const MIN_ADMITTED: usize = 8;

#[derive(Debug, Default)]
pub(super) struct DelayState {
    /// Since when every order taken had waited at least the target.
    pub(super) above_since: Option<Instant>,
    /// When the limit was last lowered.
    pub(super) lowered_at: Option<Instant>,
}

impl QueueDelay {
    /// The wait past which the queue may be standing: the configured target, or twice the
    /// time a batch takes, whichever is longer.
    pub(super) fn target(&self) -> std::time::Duration {
        let batch = std::time::Duration::from_micros(self.batch_micros.load(Ordering::Relaxed));
        self.target.max(batch * 2)
    }

    /// Records how long a batch's transaction took.
    pub(super) fn batch_took(&self, took: std::time::Duration) {
        let sample = took.as_micros().min(u128::from(u32::MAX)) as u64;
        let average = self.batch_micros.load(Ordering::Relaxed);
        self.batch_micros
            .store(average - average / 8 + sample / 8, Ordering::Relaxed);
    }

    /// Whether the queue is standing, from the wait of the oldest order of a batch taken
    /// `now` (CoDel's sojourn time at the head of the queue) and whether the batch was full:
    /// a queue that a batch empties is not standing, however long its commits take.
    pub(super) fn standing(&self, waited: std::time::Duration, full: bool, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if !full || waited < self.target() {
            state.above_since = None;
            let limit = self.limit.load(Ordering::Relaxed);
            self.limit.store(
                (limit + limit / 16 + 1).min(self.max_limit),
                Ordering::Relaxed,
            );
            return false;
        }
        let since = *state.above_since.get_or_insert(now);
        let standing = now.duration_since(since) >= self.interval;
        if standing
            && state
                .lowered_at
                .is_none_or(|at| now.duration_since(at) >= self.interval)
        {
            state.lowered_at = Some(now);
            let limit = self.limit.load(Ordering::Relaxed);
            self.limit
                .store((limit / 2).max(MIN_ADMITTED), Ordering::Relaxed);
        }
        standing
    }
}
