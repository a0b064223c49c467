//! Schedules driven step by step: each pass of the scheduler is called with the time it is
//! to see (`Services::enqueue_due_ticks(schedules, now)`), so no test waits on the clock to
//! show what a pass does, or that it does nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use orderly_queue::JobState;
use orderly_queue::kinds::{JobKind, Noop};
use orderly_service::{Missed, Schedule, ServiceSettings, Services, Zone};
use orderly_storage::{Store, StoreOptions};
use orderly_testing::{Backend, TestDatabase, on_both_backends};
use time::{Duration, OffsetDateTime};

async fn services(backend: Backend) -> Option<(TestDatabase, Services)> {
    let (database, url) = TestDatabase::create(backend).await?;
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    Some((
        database,
        Services::new(store, None, ServiceSettings::default()),
    ))
}

/// A schedule that ticks every second.
fn every_second() -> Schedule {
    Schedule::new(
        "ticker",
        "* * * * * *".parse().unwrap(),
        Noop::NAME,
        Missed::Skip,
        Zone::utc(),
        3,
    )
}

async fn jobs(services: &Services) -> i64 {
    services
        .store()
        .queue()
        .count_jobs_in(JobState::Available)
        .await
        .unwrap()
}

/// A whole second, so that the ticks fall on the seconds after it.
fn start() -> OffsetDateTime {
    orderly_domain::now().replace_nanosecond(0).unwrap()
}

on_both_backends! {
    async fn each_tick_is_enqueued_once_and_a_new_schedule_starts_from_now(backend) {
        let Some((_db, services)) = services(backend).await else { return };
        let schedules = [every_second()];
        let t0 = start();
        services.enqueue_due_ticks(&schedules, t0).await.unwrap();
        assert_eq!(jobs(&services).await, 0, "nothing before a new schedule was missed");
        services.enqueue_due_ticks(&schedules, t0 + Duration::seconds(2)).await.unwrap();
        assert_eq!(jobs(&services).await, 2);
        // The same pass again (a second scheduler, a pass repeated) enqueues nothing new.
        services.enqueue_due_ticks(&schedules, t0 + Duration::seconds(2)).await.unwrap();
        assert_eq!(jobs(&services).await, 2);
    }

    async fn a_paused_schedule_lets_its_ticks_pass_and_resumes_without_catching_up(backend) {
        let Some((_db, services)) = services(backend).await else { return };
        let schedules = [every_second()];
        let t0 = start();
        services.enqueue_due_ticks(&schedules, t0).await.unwrap();
        services.enqueue_due_ticks(&schedules, t0 + Duration::seconds(1)).await.unwrap();
        assert_eq!(jobs(&services).await, 1);
        services.pause_schedule(&schedules[0], "test").await.unwrap();
        services.enqueue_due_ticks(&schedules, t0 + Duration::seconds(4)).await.unwrap();
        assert_eq!(jobs(&services).await, 1, "no tick is enqueued while paused");
        let state = services.schedule_states(&[schedules[0].clone().into()]).await.unwrap();
        assert!(state[0].paused);
        assert_eq!(state[0].last_tick, Some(t0 + Duration::seconds(4)), "the ticks passed");
        services.resume_schedule(&schedules[0]).await.unwrap();
        services.enqueue_due_ticks(&schedules, t0 + Duration::seconds(5)).await.unwrap();
        assert_eq!(jobs(&services).await, 2, "the next tick only: those let pass are not caught up");
    }

    async fn running_a_schedule_now_enqueues_one_job_paused_or_not(backend) {
        let Some((_db, services)) = services(backend).await else { return };
        let schedule = every_second();
        services.pause_schedule(&schedule, "test").await.unwrap();
        let id = services.run_schedule_now(&schedule).await.unwrap();
        let job = services.job(id.expect("enqueued")).await.unwrap().unwrap();
        assert_eq!(job.kind, Noop::NAME);
        assert_eq!(job.max_attempts, 3);
        assert!(job.unique_key.unwrap().starts_with("schedule:ticker:manual:"));
    }
}
