//! Pausing and resuming a queue for every worker: over the API with the worker in the same
//! process, and from the command line with two `orderly worker` processes.

use orderly_queue::{JobKind, JobState, NewJob, kinds};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp, TestDatabase, backend_tests, eventually, problem};
use crate::workers::WorkerProcess;

/// Two jobs of the default queue run at once; up to 20 are fetched ahead.
const WORKER: &[(&str, &str)] = &[
    ("ORDERLY_WORKER__QUEUES__DEFAULT", "2"),
    ("ORDERLY_WORKER__LOCAL_QUEUE", "20"),
];

async fn enqueue_sleepers(store: &orderly_storage::Store, n: usize, sleep_ms: u64) {
    let jobs: Vec<NewJob> = (0..n)
        .map(|_| NewJob::named(kinds::Noop::NAME, json!({"sleep_ms": sleep_ms})))
        .collect();
    store.queue().enqueue(&jobs).await.unwrap();
}

/// Enqueues `n` jobs on the `webhooks` queue and waits until they have completed: proof that
/// the workers fetched after everything enqueued before them.
async fn run_witnesses(store: &orderly_storage::Store, n: usize) {
    let jobs: Vec<NewJob> = (0..n)
        .map(|_| NewJob::named(kinds::Noop::NAME, json!({})).on_queue("webhooks"))
        .collect();
    let ids = store.queue().enqueue(&jobs).await.unwrap();
    eventually(
        20,
        "the witnesses on the webhooks queue to complete",
        || async {
            let mut done = 0;
            for id in &ids {
                let job = store.queue().job(*id).await.unwrap();
                done += usize::from(job.is_some_and(|job| job.state == JobState::Completed));
            }
            (done == ids.len()).then_some(())
        },
    )
    .await;
}

/// A worker of the default queue that runs only when stepped by hand.
fn stepped_worker(store: &orderly_storage::Store) -> orderly_queue::Worker {
    use orderly_queue::{Registry, Worker, WorkerSettings};
    Worker::new(
        store.queue().clone(),
        Registry::new().register::<kinds::Noop>(orderly_worker::NoopHandler),
        WorkerSettings {
            id: "stepped-by-hand".into(),
            queues: vec![("default".into(), 1)],
            ..orderly::config::Config::load_from(None, [])
                .unwrap()
                .worker_settings()
        },
    )
}

async fn count(store: &orderly_storage::Store, state: JobState) -> i64 {
    store.queue().count_jobs_in(state).await.unwrap()
}

async fn default_queue(app: &TestApp) -> Value {
    let queues = app.read("/v1/queues").await;
    queues["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "default")
        .cloned()
        .expect("the default queue is listed")
}

macro_rules! worker_tests {
    ($($test:tt)*) => {
        backend_tests! { spawn = |backend| TestApp::spawn_with_worker(backend, WORKER); $($test)* }
    };
}

worker_tests! {
    async fn a_paused_queue_starts_nothing_gives_back_what_was_fetched_ahead_and_resumes(app) {
        let store = &app.store;
        enqueue_sleepers(store, 40, 300).await;
        // The worker holds up to 20 jobs: two run, the others wait in its local queue.
        eventually(10, "jobs to be fetched ahead", || async {
            (count(store, JobState::Running).await > 2).then_some(())
        }).await;

        let paused: Value = app.admin(Method::POST, "/v1/queues/default/pause").send().await.unwrap().json().await.unwrap();
        assert_eq!(paused["paused"], true, "{paused}");
        assert!(paused["paused_by"].is_string(), "{paused}");

        // Within a second the jobs waiting in the worker are back in the queue, with their
        // attempt not counted; the two running finish.
        let started = std::time::Instant::now();
        eventually(5, "the jobs fetched ahead to be given back", || async {
            (count(store, JobState::Running).await <= 2).then_some(())
        }).await;
        assert!(started.elapsed() < std::time::Duration::from_millis(1_500), "took {:?}", started.elapsed());
        eventually(5, "the running jobs to finish", || async {
            (count(store, JobState::Running).await == 0).then_some(())
        }).await;
        let completed = count(store, JobState::Completed).await;
        // Nothing starts while paused, shown without waiting on the clock: a job on another
        // queue, enqueued after them, wakes the worker and runs to completion, while the paused
        // queue's jobs stay put; and a worker stepped by hand gets nothing from it.
        run_witnesses(store, 1).await;
        assert!(stepped_worker(store).run_due("default", 10).await.unwrap().is_empty());
        assert_eq!(count(store, JobState::Running).await, 0, "nothing starts while paused");
        assert_eq!(count(store, JobState::Completed).await, completed + 1);
        let waiting = 40 - completed;
        let completed = completed + 1;
        assert!(waiting >= 30, "most jobs wait: {completed} completed");
        let queue = default_queue(&app).await;
        assert_eq!(queue["paused"], true);
        assert_eq!(queue["available"], waiting, "{queue}");
        assert!(queue["oldest_due_at"].is_string(), "{queue}");
        let page = app.read("/v1/jobs?state=available&limit=100").await;
        assert!(page["data"].as_array().unwrap().iter().all(|job| job["attempt"] == 0), "released jobs keep their attempts: {page}");
        // Pausing again changes nothing.
        let again: Value = app.admin(Method::POST, "/v1/queues/default/pause").send().await.unwrap().json().await.unwrap();
        assert_eq!(again["paused_at"], paused["paused_at"]);

        let resumed: Value = app.admin(Method::POST, "/v1/queues/default/resume").send().await.unwrap().json().await.unwrap();
        assert_eq!(resumed["paused"], false, "{resumed}");
        assert!(resumed.get("paused_at").is_none());
        eventually(30, "every job to complete after the resume", || async {
            (count(store, JobState::Completed).await == 41).then_some(())
        }).await;
        let queue = default_queue(&app).await;
        assert_eq!((queue["available"].as_i64(), queue["running"].as_i64()), (Some(0), Some(0)), "{queue}");
        assert!(queue["completed_last_minute"].as_i64().unwrap() >= 30, "{queue}");
    }

    async fn pausing_a_queue_needs_an_admin_key_and_a_queue_that_exists(app) {
        problem(app.admin(Method::POST, "/v1/queues/nope/pause").send().await.unwrap(), StatusCode::NOT_FOUND).await;
        problem(app.admin(Method::POST, "/v1/queues/nope/resume").send().await.unwrap(), StatusCode::NOT_FOUND).await;
        problem(app.storefront(Method::POST, "/v1/queues/default/pause").send().await.unwrap(), StatusCode::FORBIDDEN).await;
        problem(app.storefront(Method::GET, "/v1/queues").send().await.unwrap(), StatusCode::FORBIDDEN).await;
        let anonymous = crate::helpers::http_client().post(app.url("/v1/queues/default/pause")).send().await.unwrap();
        problem(anonymous, StatusCode::UNAUTHORIZED).await;
        assert_eq!(default_queue(&app).await["paused"], false);
        // Resuming a queue that runs is no error.
        let resumed = app.admin(Method::POST, "/v1/queues/webhooks/resume").send().await.unwrap();
        assert_eq!(resumed.status(), StatusCode::OK);
    }
}

fn cli(database_url: &str, args: &[&str]) -> String {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
        .env("ORDERLY_DATABASE_URL", database_url)
        .env_remove("RUST_LOG")
        .args(args)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "orderly {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

async fn paused_across_two_worker_processes(backend: Backend) {
    let Some((_db, url)) = TestDatabase::create(backend).await else {
        return;
    };
    let store = orderly_storage::Store::connect(&url, &Default::default())
        .await
        .unwrap();
    store.migrate().await.unwrap();
    let dir = std::env::temp_dir().join(format!("orderly-queues-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let workers = [
        WorkerProcess::start(&url, &dir, "one", WORKER),
        WorkerProcess::start(&url, &dir, "two", WORKER),
    ];

    let listed = cli(&url, &["queues", "pause", "default"]);
    assert!(
        listed.contains("default") && listed.contains("paused"),
        "{listed}"
    );
    enqueue_sleepers(&store, 20, 10).await;
    // Jobs on another queue, enqueued after them, are fetched and run by the workers, which
    // are therefore awake; the paused queue's jobs stay put.
    run_witnesses(&store, 4).await;
    assert_eq!(
        count(&store, JobState::Completed).await,
        4,
        "no worker starts a job of a paused queue"
    );
    assert_eq!(count(&store, JobState::Running).await, 0);
    let list = cli(&url, &["queues", "list"]);
    let line = list
        .lines()
        .find(|l| l.starts_with("default"))
        .unwrap_or_default();
    assert!(line.contains("paused") && line.contains(" 20 "), "{list}");

    cli(&url, &["queues", "resume", "default"]);
    eventually(20, "every job to complete once resumed", || async {
        (count(&store, JobState::Completed).await == 24).then_some(())
    })
    .await;
    drop(workers);
    let _ = std::fs::remove_dir_all(&dir);
}

orderly_testing::on_both_backends! {
    async fn a_queue_paused_from_the_shell_waits_in_every_worker_process(backend) {
        paused_across_two_worker_processes(backend).await;
    }
}
