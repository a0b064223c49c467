//! Worker processes as operators run them: killed mid-job, stopped mid-burst, three at once
//! on one PostgreSQL database, and three held to fleet-wide limits (`fleet.rs`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use orderly_queue::{JobKind, JobState, NewJob, kinds};
use orderly_storage::{Store, StoreOptions};
use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::helpers::{Backend, TestDatabase, eventually};

mod cancel;
mod fleet;
mod process;

/// An `orderly worker` process logging JSON to a file; killed on drop if still running.
pub(crate) struct WorkerProcess {
    child: Child,
    log: PathBuf,
}

impl WorkerProcess {
    pub(crate) fn start(
        database_url: &str,
        dir: &Path,
        name: &str,
        extra: &[(&str, &str)],
    ) -> Self {
        let log = crate::helpers::test_log_dir()
            .map(|logs| {
                let _ = std::fs::create_dir_all(&logs);
                logs.join(format!("worker-{name}-{}.log", uuid::Uuid::new_v4()))
            })
            .unwrap_or_else(|| dir.join(format!("{name}.log")));
        let mut command = Command::new(env!("CARGO_BIN_EXE_orderly"));
        command
            .arg("worker")
            .env("ORDERLY_DATABASE_URL", database_url)
            .env("ORDERLY_LOG_FORMAT", "json")
            .env("RUST_LOG", "info")
            .env("ORDERLY_MAIL_OUTBOX", dir.join("outbox"))
            .env("ORDERLY_WORKER__POLL_INTERVAL", "100ms")
            .env("ORDERLY_DATABASE__MIGRATE_ON_START", "false")
            .env("ORDERLY_WORKER__METRICS_LISTEN", "127.0.0.1:0")
            .env("ORDERLY_WORKER__SCHEDULER", "false")
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null());
        for (k, v) in extra {
            command.env(k, v);
        }
        Self {
            child: command.spawn().unwrap(),
            log,
        }
    }

    pub(crate) fn signal(&self, signal: &str) {
        let sent = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
    }

    /// Sends SIGTERM once the process is serving (before that the signal's default action
    /// ends it: a finisher with nothing left to do was signalled as it spawned) and waits for
    /// a clean exit.
    async fn stop(mut self) -> Vec<Value> {
        ops_address(&self).await;
        self.signal("-TERM");
        let status = eventually(20, "the worker to exit", || {
            let status = self.child.try_wait().unwrap();
            async move { status }
        })
        .await;
        assert!(status.success(), "the worker exited with {status}");
        self.log_lines()
    }

    pub(crate) fn log_lines(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.log)
            .unwrap()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The API (no worker) on a fresh PostgreSQL database, its webhooks allowed to this machine's
/// receivers, and a product `sku` with `stock` to order; `None` without PostgreSQL.
pub(crate) async fn webhook_api(sku: &str, stock: i64) -> Option<crate::helpers::TestApp> {
    let app = crate::helpers::TestApp::spawn_with(
        Backend::Postgres,
        &[("ORDERLY_WEBHOOKS_ALLOW_PRIVATE", "true")],
    )
    .await?;
    app.create_product(sku, 100, stock).await;
    Some(app)
}

async fn migrated(backend: Backend) -> Option<(TestDatabase, String, Store, PathBuf)> {
    let (db, url) = TestDatabase::create(backend).await?;
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dir = std::env::temp_dir().join(format!("orderly-workers-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    Some((db, url, store, dir))
}

async fn count(store: &Store, state: JobState) -> i64 {
    store.queue().count_jobs_in(state).await.unwrap()
}

async fn enqueue_noops(store: &Store, n: usize, args: Value) {
    for chunk in (0..n).collect::<Vec<_>>().chunks(1_000) {
        let jobs: Vec<NewJob> = chunk
            .iter()
            .map(|_| NewJob::named(kinds::Noop::NAME, args.clone()).max_attempts(3))
            .collect();
        store.queue().enqueue(&jobs).await.unwrap();
    }
}

macro_rules! process_tests {
    ($($test:tt)*) => {
        orderly_testing::on_both_backends! { $($test)* }
    };
}

process_tests! {
    async fn a_job_whose_worker_is_killed_runs_again_after_its_lease_and_completes(backend) {
        let Some((_db, url, store, dir)) = migrated(backend).await else { return };
        let id = store.queue().enqueue(&[NewJob::named(kinds::Noop::NAME, json!({"sleep_ms": 3_000})).max_attempts(3)]).await.unwrap()[0];
        let lease = [("ORDERLY_WORKER__LEASE", "2s")];
        let first = WorkerProcess::start(&url, &dir, "first", &lease);
        eventually(15, "the job to start", || async {
            let job = store.queue().job(id).await.unwrap().unwrap();
            (job.state == JobState::Running).then_some(())
        }).await;
        first.signal("-KILL");

        let second = WorkerProcess::start(&url, &dir, "second", &lease);
        let done = eventually(30, "the job to complete", || async {
            let job = store.queue().job(id).await.unwrap().unwrap();
            (job.state == JobState::Completed).then_some(job)
        }).await;
        assert_eq!(done.attempt, 2, "the killed attempt counts, the rescue ran it again");
        assert_eq!(done.locked_by, None);
        second.stop().await;
        let _ = std::fs::remove_dir_all(dir);
    }

    async fn sigterm_during_a_burst_loses_no_job_and_leaves_none_running(backend) {
        let Some((_db, url, store, dir)) = migrated(backend).await else { return };
        // 1,000 jobs of 200 ms at 32 at once: about six seconds of work, so the signal
        // lands while most of it is still to do.
        enqueue_noops(&store, 1_000, json!({"sleep_ms": 200})).await;
        let worker = WorkerProcess::start(&url, &dir, "burst", &[]);
        eventually(30, "the burst to be under way", || async {
            (count(&store, JobState::Completed).await >= 50).then_some(())
        }).await;
        // A worker-only process serves its own health and metrics.
        let addr = ops_address(&worker).await;
        let health = crate::helpers::http_client().get(format!("http://{addr}/healthz")).send().await.unwrap();
        assert_eq!(health.status(), 200);
        let metrics = crate::helpers::http_client().get(format!("http://{addr}/metrics")).send().await.unwrap().text().await.unwrap();
        assert!(metrics.contains("jobs_completed_total{kind=\"noop\"}"), "{metrics}");
        worker.stop().await;
        assert_eq!(count(&store, JobState::Running).await, 0, "nothing is left running");
        let completed = count(&store, JobState::Completed).await;
        let available = count(&store, JobState::Available).await;
        assert_eq!(completed + available, 1_000, "no job is lost");
        assert!(available > 0, "the signal came during the burst, not after it");

        let finisher = WorkerProcess::start(&url, &dir, "finisher", &[]);
        eventually(60, "every job to complete", || async {
            (count(&store, JobState::Completed).await == 1_000).then_some(())
        }).await;
        finisher.stop().await;
        let _ = std::fs::remove_dir_all(dir);
    }
}

/// Start and finish times of each run in a worker's log, by job id.
fn runs(lines: &[Value], runs: &mut HashMap<i64, Vec<(String, OffsetDateTime, OffsetDateTime)>>) {
    let mut started: HashMap<(i64, i64), (String, OffsetDateTime)> = HashMap::new();
    for line in lines {
        let Some(span) = line["spans"]
            .as_array()
            .and_then(|s| s.iter().find(|s| s["name"] == "job"))
        else {
            continue;
        };
        let id = span["job_id"].as_i64().unwrap();
        let attempt = span["attempt"].as_i64().unwrap();
        let at = OffsetDateTime::parse(line["timestamp"].as_str().unwrap(), &Rfc3339).unwrap();
        let worker = line["worker"].as_str().unwrap_or_default().to_owned();
        match line["message"].as_str() {
            Some("job started") => {
                started.insert((id, attempt), (worker, at));
            }
            Some("job finished") => {
                let (worker, start) = started
                    .remove(&(id, attempt))
                    .expect("a start before each finish");
                runs.entry(id).or_default().push((worker, start, at));
            }
            _ => {}
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_postgres_run_twenty_thousand_jobs_each_exactly_once() {
    let Some((_db, url, store, dir)) = migrated(Backend::Postgres).await else {
        return;
    };
    const JOBS: usize = 20_000;
    enqueue_noops(&store, JOBS, json!({})).await;
    let workers: Vec<_> = ["a", "b", "c"]
        .into_iter()
        .map(|name| WorkerProcess::start(&url, &dir, name, &[]))
        .collect();
    eventually(180, "20,000 jobs to complete", || async {
        (count(&store, JobState::Completed).await == JOBS as i64).then_some(())
    })
    .await;
    let mut all = HashMap::new();
    for worker in workers {
        runs(&worker.stop().await, &mut all);
    }
    assert_eq!(all.len(), JOBS, "every job ran");
    let mut by_worker: HashMap<String, usize> = HashMap::new();
    for (id, mut executions) in all {
        executions.sort_by_key(|e| e.1);
        for pair in executions.windows(2) {
            assert!(
                pair[1].1 >= pair[0].2,
                "job {id} ran in two places at once: {pair:?}"
            );
        }
        assert_eq!(
            executions.len(),
            1,
            "job {id} ran {} times",
            executions.len()
        );
        *by_worker.entry(executions[0].0.clone()).or_default() += 1;
    }
    assert_eq!(by_worker.len(), 3, "every worker took part: {by_worker:?}");
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_workers_on_postgres_run_each_tick_of_a_per_second_schedule_exactly_once() {
    let Some((_db, url, store, dir)) = migrated(Backend::Postgres).await else {
        return;
    };
    let schedule = [
        ("ORDERLY_WORKER__SCHEDULER", "true"),
        ("ORDERLY_SCHEDULES__TICK__CRON", "* * * * * *"),
        ("ORDERLY_SCHEDULES__TICK__JOB", "noop"),
    ];
    let workers: Vec<WorkerProcess> = ["one", "two", "three"]
        .iter()
        .map(|name| WorkerProcess::start(&url, &dir, name, &schedule))
        .collect();
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let ticks = || async {
        sqlx::query_as::<_, (String, String, i32)>(
            "SELECT unique_key, state, attempt FROM jobs WHERE unique_key LIKE 'schedule:tick:%' \
             ORDER BY unique_key",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    eventually(60, "30 ticks to run", || async {
        let done = ticks()
            .await
            .iter()
            .filter(|(_, state, _)| state == "completed")
            .count();
        (done >= 30).then_some(())
    })
    .await;
    for worker in workers {
        worker.stop().await;
    }
    let ticks = ticks().await;
    let seconds: Vec<OffsetDateTime> = ticks
        .iter()
        .map(|(key, _, _)| {
            OffsetDateTime::parse(key.trim_start_matches("schedule:tick:"), &Rfc3339).unwrap()
        })
        .collect();
    for pair in seconds.windows(2) {
        assert_eq!(
            pair[1] - pair[0],
            time::Duration::SECOND,
            "a tick was skipped or doubled: {pair:?}"
        );
    }
    let ran = ticks
        .iter()
        .filter(|(_, state, _)| state == "completed")
        .count();
    assert!(ran >= 30, "{ran} ticks ran");
    for (key, state, attempt) in &ticks {
        assert!(
            state == "completed" || state == "available",
            "{key} is {state}"
        );
        assert!(*attempt <= 1, "{key} ran {attempt} times");
    }
    drop(store);
    let _ = std::fs::remove_dir_all(dir);
}

/// The address a worker-only process serves `/healthz` on, from its log.
pub(crate) async fn ops_address(worker: &WorkerProcess) -> String {
    eventually(10, "the worker's health address", || async {
        worker
            .log_lines()
            .into_iter()
            .find(|l| l["message"] == "serving worker health and metrics")
            .and_then(|l| l["addr"].as_str().map(str::to_owned))
    })
    .await
}
