//! Schedules, whoever acts on them: the scheduler's pass that enqueues the ticks due (run by
//! the worker holding the `scheduler` lease, `orderly_worker::scheduler`), and an operator's
//! pause, resume and "run now" (the console). A paused schedule (a row in `schedule_pauses`)
//! lets its ticks pass without enqueuing them, and is not caught up when resumed: it goes on
//! from the next tick. What a schedule is and which ticks it has due: `cron.rs`.

mod cron;

pub use cron::{CronPattern, Missed, Schedule, Zone};

use orderly_storage::{StoreError, cause_chain};
use time::OffsetDateTime;

use crate::Services;

impl Services {
    /// One pass of the scheduler at `now`: for each schedule, the ticks due since its last
    /// recorded one are enqueued (or let pass while it is paused) and the latest recorded. A
    /// schedule that fails is logged and tried again next pass; the others go on.
    pub async fn enqueue_due_ticks(
        &self,
        schedules: &[Schedule],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        let paused = self.store.paused_schedules().await?;
        for schedule in schedules {
            let is_paused = paused.iter().any(|p| p.name == schedule.name);
            if let Err(e) = self.enqueue_due(schedule, now, is_paused).await {
                tracing::warn!(schedule = %schedule.name, error = %cause_chain(&e), "scheduling failed");
            }
        }
        Ok(())
    }

    async fn enqueue_due(
        &self,
        schedule: &Schedule,
        now: OffsetDateTime,
        paused: bool,
    ) -> Result<(), StoreError> {
        let Some(last) = self.store.last_tick(&schedule.name).await? else {
            // A new schedule starts from now: nothing before it was missed.
            return self.store.set_last_tick(&schedule.name, now).await;
        };
        let (ticks, latest) = schedule.pass(last, now, paused);
        let Some(latest) = latest else {
            return Ok(());
        };
        let jobs: Vec<_> = ticks
            .iter()
            .map(|tick| schedule.tick_job(tick, false))
            .collect();
        if !jobs.is_empty() {
            self.store.queue().enqueue(&jobs).await?;
        }
        self.store.set_last_tick(&schedule.name, latest).await
    }

    /// Pauses `schedule` for every worker; `by` names who asked.
    pub async fn pause_schedule(&self, schedule: &Schedule, by: &str) -> Result<(), StoreError> {
        self.store.pause_schedule(&schedule.name, by).await?;
        tracing::info!(schedule = %schedule.name, by, "schedule paused");
        Ok(())
    }

    /// Resumes `schedule` from its next tick.
    pub async fn resume_schedule(&self, schedule: &Schedule) -> Result<(), StoreError> {
        self.store.resume_schedule(&schedule.name).await?;
        tracing::info!(schedule = %schedule.name, "schedule resumed");
        Ok(())
    }

    /// Enqueues a tick of `schedule` now, outside its pattern (paused or not); the id of the
    /// job, `None` if the same tick was enqueued already.
    pub async fn run_schedule_now(&self, schedule: &Schedule) -> Result<Option<i64>, StoreError> {
        let now = orderly_domain::now();
        let tick = now
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_else(|_| now.unix_timestamp().to_string());
        let ids = self
            .store
            .queue()
            .enqueue(&[schedule.tick_job(&tick, true)])
            .await?;
        tracing::info!(schedule = %schedule.name, %tick, "schedule run by hand");
        Ok(ids.first().copied())
    }

    /// Whether each of `schedules` is paused and when it last ticked, in their order.
    pub async fn schedule_states(
        &self,
        schedules: &[std::sync::Arc<Schedule>],
    ) -> Result<Vec<ScheduleState>, StoreError> {
        let paused = self.store.paused_schedules().await?;
        let mut states = Vec::with_capacity(schedules.len());
        for schedule in schedules {
            states.push(ScheduleState {
                paused: paused.iter().any(|p| p.name == schedule.name),
                last_tick: self.store.last_tick(&schedule.name).await?,
            });
        }
        Ok(states)
    }
}

/// A schedule's state, as operators see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScheduleState {
    pub paused: bool,
    /// The latest tick recorded (enqueued, or let pass while paused).
    pub last_tick: Option<OffsetDateTime>,
}
