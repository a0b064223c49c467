//! One queue's run slots in a worker, and how much it should fetch ahead of them.
//!
//! Fetching ahead saves a round trip per job on a busy queue of quick jobs, but a job fetched
//! ahead waits for a slot of this worker, leased and out of every other worker's reach. When
//! the slots are held by slow jobs (an endpoint that hangs), what waits behind them would be
//! late for nothing, and under a fleet-wide limit it also holds a slot of the fleet. So:
//! - a queue with limits fetches the free slots plus what its pace (slots freed a moment ago)
//!   says will start within [`AHEAD`]: a queue of quick jobs still fetches hundreds ahead, one
//!   whose slots hang fetches nothing it cannot start;
//! - a limited queue whose slots are all taken and none has changed for [`STALL`] is stalled:
//!   it gives back the jobs it fetched ahead (to workers that can start them).
//!
//! A queue without limits fetches ahead as it always did: receipts finish in bursts (they run
//! together), so "no slot freed for half a second" is their normal pace under load, and giving
//! their jobs back then only moved them from one busy worker to another.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

/// How long every slot may stay taken, none freeing, before the queue counts as stalled.
pub(super) const STALL: Duration = Duration::from_millis(500);
/// How far ahead a limited queue fetches, at its pace.
const AHEAD: Duration = Duration::from_millis(20);
/// The window over which the pace is counted.
const WINDOW: Duration = Duration::from_millis(100);

/// Slots freed per window: the current one and the one before.
#[derive(Debug)]
struct Pace {
    started: Instant,
    current: u32,
    previous: u32,
}

/// One queue's run slots.
#[derive(Debug)]
pub(super) struct RunSlots {
    semaphore: Arc<Semaphore>,
    changed_at: Mutex<Instant>,
    pace: Mutex<Pace>,
    freed: Notify,
}

impl RunSlots {
    pub(super) fn new(concurrency: usize) -> Self {
        Self {
            semaphore: Arc::new(Semaphore::new(concurrency.max(1))),
            changed_at: Mutex::new(Instant::now()),
            pace: Mutex::new(Pace {
                started: Instant::now(),
                current: 0,
                previous: 0,
            }),
            freed: Notify::new(),
        }
    }

    /// Every slot taken, and none taken or freed for [`STALL`].
    pub(super) fn stalled(&self) -> bool {
        self.semaphore.available_permits() == 0
            && self
                .changed_at
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .elapsed()
                >= STALL
    }

    /// The most jobs the fetch loop should take now; `None` for as many as its local queue
    /// holds.
    pub(super) fn fetch_cap(&self, limited: bool) -> Option<usize> {
        limited.then(|| self.semaphore.available_permits() + self.ahead())
    }

    /// The jobs that will start within [`AHEAD`] at the pace slots freed of late.
    fn ahead(&self) -> usize {
        let mut pace = self.pace.lock().unwrap_or_else(PoisonError::into_inner);
        pace.roll();
        let per_window = pace.current.max(pace.previous) as usize;
        per_window * AHEAD.as_millis() as usize / WINDOW.as_millis() as usize
    }

    fn touch(&self) {
        *self
            .changed_at
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Instant::now();
    }

    /// Takes a slot, waiting for one.
    pub(super) async fn take(self: &Arc<Self>) -> Option<OwnedSemaphorePermit> {
        let permit = self.semaphore.clone().acquire_owned().await.ok()?;
        self.touch();
        Some(permit)
    }

    /// Gives `permit` back, counts it in the pace, and tells a fetch loop waiting for a slot.
    pub(super) fn free(&self, permit: Option<OwnedSemaphorePermit>) {
        drop(permit);
        self.touch();
        {
            let mut pace = self.pace.lock().unwrap_or_else(PoisonError::into_inner);
            pace.roll();
            pace.current += 1;
        }
        self.freed.notify_waiters();
    }

    /// Resolves when a slot is next freed.
    pub(super) fn freed(&self) -> tokio::sync::futures::Notified<'_> {
        self.freed.notified()
    }

    /// Resolves once the queue is stalled.
    pub(super) async fn until_stalled(&self) {
        loop {
            tokio::time::sleep(STALL / 4).await;
            if self.stalled() {
                return;
            }
        }
    }
}

impl Pace {
    /// Moves to the window now is in.
    fn roll(&mut self) {
        let elapsed = self.started.elapsed();
        if elapsed < WINDOW {
            return;
        }
        self.previous = if elapsed < WINDOW * 2 {
            self.current
        } else {
            0
        };
        self.current = 0;
        self.started = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_limited_queue_fetches_ahead_only_at_its_pace() {
        let slots = Arc::new(RunSlots::new(2));
        assert_eq!(slots.fetch_cap(true), Some(2), "idle: the free slots");
        assert_eq!(slots.fetch_cap(false), None);
        let a = slots.take().await;
        let _b = slots.take().await;
        assert_eq!(
            slots.fetch_cap(true),
            Some(0),
            "both slots taken, nothing freed of late"
        );
        // Quick jobs: fifty freed within the window make ten ahead (20 ms of 100).
        slots.free(a);
        for _ in 0..49 {
            let again = slots.take().await;
            slots.free(again);
        }
        assert_eq!(slots.fetch_cap(true), Some(1 + 10));
    }

    #[tokio::test]
    async fn slots_held_with_none_freeing_stall_the_queue() {
        let slots = Arc::new(RunSlots::new(1));
        let held = slots.take().await;
        assert!(!slots.stalled());
        // The slots keep the standard clock, which only time passing moves.
        std::thread::sleep(STALL);
        assert!(slots.stalled());
        assert_eq!(slots.fetch_cap(true), Some(0));
        slots.free(held);
        assert!(!slots.stalled());
        assert_eq!(
            slots.fetch_cap(false),
            None,
            "a queue without limits fetches ahead as ever"
        );
    }
}
