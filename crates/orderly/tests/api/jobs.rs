//! The job queue and receipts: the transactional guarantee, delivery by outbox and by real
//! SMTP, retries to discard and back, and the operator's API.

use orderly_queue::{JobKind, kinds};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, StatusCode, TestApp, backend_tests, eventually, problem};

async fn receipt_jobs(app: &TestApp) -> i64 {
    app.scalar("SELECT COUNT(*) FROM jobs WHERE kind = 'send_receipt'")
        .await
}

async fn job(app: &TestApp, id: i64) -> Value {
    app.read(&format!("/v1/jobs/{id}")).await
}

/// Enqueues one job through the store, as any enqueuer would, and returns its id.
async fn enqueue(app: &TestApp, kind: &str, args: Value, max_attempts: i32) -> i64 {
    let ids = app
        .store
        .queue()
        .enqueue(&[orderly_queue::NewJob::named(kind, args).max_attempts(max_attempts)])
        .await
        .unwrap();
    ids[0]
}

async fn wait_for_state(app: &TestApp, id: i64, state: &str, seconds: u64) -> Value {
    eventually(seconds, &format!("job {id} to be {state}"), || async {
        let job = job(app, id).await;
        (job["state"] == state).then_some(job)
    })
    .await
}

backend_tests! {
    async fn a_placed_order_has_exactly_one_receipt_job_and_a_failed_one_has_none(app) {
        app.create_product("RCPT", 100, 10).await;
        let placed: Value = app.place_order(json!([{"sku": "RCPT", "quantity": 1}])).await.json().await.unwrap();
        assert_eq!(receipt_jobs(&app).await, 1);
        let jobs: Value = app.read("/v1/jobs?kind=send_receipt").await;
        let receipt = &jobs["data"][0];
        assert_eq!(receipt["args"]["order_id"], placed["id"]);
        assert_eq!(receipt["state"], "available");
        assert_eq!(receipt["unique_key"], format!("send_receipt:{}", placed["id"].as_str().unwrap()));

        // An order whose transaction fails leaves no job behind.
        app.fail_event_inserts().await;
        let failed = app.place_order(json!([{"sku": "RCPT", "quantity": 1}])).await;
        assert_eq!(failed.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(receipt_jobs(&app).await, 1);
        assert_eq!(app.scalar("SELECT COUNT(*) FROM orders").await, 1);
    }

    async fn jobs_are_fetched_by_priority_then_age_and_leased_to_one_worker(app) {
        let mut ids = Vec::new();
        for priority in [9, 0, 5, 0] {
            let mut job = orderly_queue::NewJob::named(kinds::Noop::NAME, json!({})).max_attempts(1);
            job.queue = "manual".into();
            job.priority = priority;
            ids.extend(app.store.queue().enqueue(&[job]).await.unwrap());
        }
        let lease = orderly_domain::now() + time::Duration::seconds(30);
        let mut order = Vec::new();
        for _ in 0..4 {
            let fetched = app.store.queue().fetch_jobs("manual", "test-worker", 1, lease).await.unwrap();
            order.push((fetched[0].id, fetched[0].priority));
        }
        assert_eq!(order, [(ids[1], 0), (ids[3], 0), (ids[2], 5), (ids[0], 9)]);
        assert!(app.store.queue().fetch_jobs("manual", "other-worker", 10, lease).await.unwrap().is_empty());
        let running = job(&app, ids[0]).await;
        assert_eq!((running["state"].as_str(), running["locked_by"].as_str()), (Some("running"), Some("test-worker")));
    }

    async fn a_batch_of_completions_completes_each_run_it_names_and_no_later_one(app) {
        use orderly_queue::{Completed, Finished, JobState, Outcome};
        let queue = app.store.queue();
        for (mode, completed) in [("kept", Completed::Kept), ("deleted", Completed::Deleted)] {
            let on_queue = format!("batch-{mode}");
            let mut ids = Vec::new();
            for n in 0..4 {
                let job = orderly_queue::NewJob::named(kinds::Noop::NAME, json!({}))
                    .on_queue(&on_queue)
                    .max_attempts(3)
                    .unique(format!("{mode}-{n}"));
                ids.extend(queue.enqueue(&[job]).await.unwrap());
            }
            // The first job's lease runs out and the same worker takes it again: its first
            // run's completion, arriving late, must not complete the second run.
            let expired = orderly_domain::now() - time::Duration::seconds(1);
            let first_run = queue.fetch_jobs(&on_queue, "test-worker", 1, expired).await.unwrap();
            assert_eq!(queue.rescue_expired_jobs().await.unwrap(), 1);
            let lease = orderly_domain::now() + time::Duration::seconds(30);
            let runs = queue.fetch_jobs(&on_queue, "test-worker", 10, lease).await.unwrap();
            assert_eq!(runs.len(), 4);
            let completed_run = |id: i64, attempt: i32| Finished { id, attempt, outcome: Outcome::Completed };
            // One batch: the stale completion, two completions, and a job discarded for good
            // (the path that records completions beside other outcomes).
            let mut batch = vec![completed_run(first_run[0].id, first_run[0].attempt)];
            batch.extend(runs.iter().filter(|r| r.id != ids[0] && r.id != ids[3]).map(|r| completed_run(r.id, r.attempt)));
            let last = runs.iter().find(|r| r.id == ids[3]).unwrap();
            batch.push(Finished { id: last.id, attempt: last.attempt, outcome: Outcome::Discard { error: "bad arguments".into() } });
            queue.finish_jobs("test-worker", &batch, completed).await.unwrap();
            let state = |id: i64| async move { queue.job(id).await.unwrap().map(|j| (j.state, j.attempt)) };
            let done = |attempt| (completed == Completed::Kept).then_some((JobState::Completed, attempt));
            assert_eq!(state(ids[0]).await, Some((JobState::Running, 2)), "{mode}");
            assert_eq!((state(ids[1]).await, state(ids[2]).await), (done(1), done(1)), "{mode}");
            assert_eq!(state(ids[3]).await, Some((JobState::Discarded, 1)), "{mode}: discarded jobs are kept");
            // Another worker's completion of a run it does not hold changes nothing either.
            queue.finish_jobs("other-worker", &[completed_run(ids[0], 2)], completed).await.unwrap();
            assert_eq!(state(ids[0]).await, Some((JobState::Running, 2)), "{mode}");
            queue.finish_jobs("test-worker", &[completed_run(ids[0], 2)], completed).await.unwrap();
            assert_eq!(state(ids[0]).await, done(2), "{mode}");
            // A unique key blocks a second job while its job is kept, and no longer once it
            // is deleted.
            let again = orderly_queue::NewJob::named(kinds::Noop::NAME, json!({})).on_queue(&on_queue).unique(format!("{mode}-1"));
            let inserted = queue.enqueue(&[again]).await.unwrap().len();
            assert_eq!(inserted, usize::from(completed == Completed::Deleted), "{mode}");
        }
    }

    async fn a_discarded_job_keeps_the_run_at_it_was_due_at_on_either_path(app) {
        let due = orderly_domain::now() - time::Duration::seconds(5);
        let mut ids = Vec::new();
        for _ in 0..2 {
            let mut job = orderly_queue::NewJob::named(kinds::Noop::NAME, json!({})).max_attempts(1);
            job.queue = "manual".into();
            job.run_at = Some(due);
            ids.extend(app.store.queue().enqueue(&[job]).await.unwrap());
        }
        // One fails for good; the other's lease runs out with no attempts left.
        let lease = orderly_domain::now() + time::Duration::seconds(30);
        let first = app.store.queue().fetch_jobs("manual", "test-worker", 1, lease).await.unwrap();
        app.store.queue().finish_jobs("test-worker", &[orderly_queue::Finished {
            id: first[0].id,
            attempt: first[0].attempt,
            outcome: orderly_queue::Outcome::Discard { error: "bad arguments".into() },
        }], orderly_queue::Completed::Kept).await.unwrap();
        let expired = orderly_domain::now() - time::Duration::seconds(1);
        app.store.queue().fetch_jobs("manual", "test-worker", 1, expired).await.unwrap();
        assert_eq!(app.store.queue().rescue_expired_jobs().await.unwrap(), 1);
        for id in ids {
            let job = app.store.queue().job(id).await.unwrap().unwrap();
            assert_eq!(job.state, orderly_queue::JobState::Discarded);
            assert_eq!(job.run_at, due, "job {id} keeps its run_at");
            assert!(job.finished_at.unwrap() >= due);
        }
    }

    async fn a_worker_stepped_by_hand_runs_what_is_due_and_records_each_outcome(app) {
        use orderly_queue::{Outcome, Registry, Worker, WorkerSettings};
        let queue = app.store.queue();
        let mut ids = Vec::new();
        for args in [json!({}), json!({"fail": "later"}), json!({"fail": "never", "permanent": true})] {
            let job = orderly_queue::NewJob::named(kinds::Noop::NAME, args).on_queue("stepped").max_attempts(3);
            ids.extend(queue.enqueue(&[job]).await.unwrap());
        }
        let worker = Worker::new(
            queue.clone(),
            Registry::new().register::<kinds::Noop>(orderly_worker::NoopHandler),
            WorkerSettings {
                queues: vec![("stepped".into(), 1)],
                ..orderly::config::Config::load_from(None, []).unwrap().worker_settings()
            },
        );
        let ran = worker.run_due("stepped", 10).await.unwrap();
        let outcomes: Vec<(i64, &str)> = ran.iter().map(|f| (f.id, match f.outcome {
            Outcome::Completed => "completed",
            Outcome::Retry { .. } => "retry",
            Outcome::Discard { .. } => "discard",
            Outcome::Snooze { .. } => "snooze",
            Outcome::Cancelled { .. } => "cancelled",
        })).collect();
        assert_eq!(outcomes, [(ids[0], "completed"), (ids[1], "retry"), (ids[2], "discard")]);
        for (id, state) in ids.iter().zip(["completed", "available", "discarded"]) {
            assert_eq!(job(&app, *id).await["state"], state, "job {id}");
        }
        // The retry waits out its backoff: nothing is due now.
        assert!(worker.run_due("stepped", 10).await.unwrap().is_empty());
    }

    async fn the_operator_api_lists_filters_and_refuses_impossible_changes(app) {
        let first = enqueue(&app, kinds::Noop::NAME, json!({}), 3).await;
        let second = enqueue(&app, kinds::Noop::NAME, json!({"n": 2}), 3).await;
        let page: Value = app.read("/v1/jobs?limit=1&kind=noop").await;
        assert_eq!(page["data"][0]["id"], second, "newest first");
        let cursor = page["next_cursor"].as_str().unwrap();
        let next: Value = app.read(&format!("/v1/jobs?limit=1&kind=noop&cursor={cursor}")).await;
        assert_eq!(next["data"][0]["id"], first);
        let retry = app.admin(Method::POST, &format!("/v1/jobs/{first}/retry")).send().await.unwrap();
        assert_eq!(problem(retry, StatusCode::CONFLICT).await["code"], "invalid_job_state");
        let cancelled: Value = app.admin(Method::POST, &format!("/v1/jobs/{first}/cancel")).send().await.unwrap().json().await.unwrap();
        assert_eq!(cancelled["state"], "cancelled");
        let again = app.admin(Method::POST, &format!("/v1/jobs/{first}/cancel")).send().await.unwrap();
        problem(again, StatusCode::CONFLICT).await;
        let missing = app.admin(Method::GET, "/v1/jobs/999999").send().await.unwrap();
        problem(missing, StatusCode::NOT_FOUND).await;
        let bad = app.admin(Method::GET, "/v1/jobs?state=lost").send().await.unwrap();
        problem(bad, StatusCode::BAD_REQUEST).await;
    }
}

mod with_worker {
    use super::*;

    async fn spawn(backend: Backend) -> Option<TestApp> {
        TestApp::spawn_with_worker(backend, &[]).await
    }

    macro_rules! worker_tests {
        ($($test:tt)*) => {
            backend_tests! { spawn = spawn; $($test)* }
        };
    }

    worker_tests! {
        async fn a_job_failing_on_the_database_keeps_the_whole_cause_in_its_last_error(app) {
            // The receipt cannot load its order: the table has gone (as in a botched migration).
            app.execute(
                "ALTER TABLE orders RENAME TO orders_elsewhere;",
                "ALTER TABLE orders RENAME TO orders_elsewhere;",
            ).await;
            let args = json!({"order_id": uuid::Uuid::now_v7().to_string()});
            let id = enqueue(&app, kinds::SendReceipt::NAME, args, 1).await;
            let discarded = wait_for_state(&app, id, "discarded", 10).await;
            let error = discarded["last_error"].as_str().unwrap();
            assert!(error.starts_with("loading the order: database query failed: "), "{error}");
            assert!(
                error.contains("no such table: orders") || error.contains("relation \"orders\" does not exist"),
                "the driver's own words are kept: {error}"
            );
        }

        async fn the_receipt_lands_in_the_outbox_as_a_parseable_message(app) {
            app.create_product("EML", 1250, 10).await;
            let order: Value = app.place_order(json!([{"sku": "EML", "quantity": 2}])).await.json().await.unwrap();
            let id = order["id"].as_str().unwrap().to_owned();
            let read = eventually(10, "the receipt to be recorded", || async {
                let read: Value = app.storefront(Method::GET, &format!("/v1/orders/{id}")).send().await.unwrap().json().await.unwrap();
                read["receipt_sent_at"].is_string().then_some(read)
            }).await;
            assert!(read["receipt_sent_at"].is_string());
            let file = app.dir.join("outbox").join(format!("receipt-{id}.eml"));
            let raw = std::fs::read(&file).unwrap();
            let message = mail_parser::MessageParser::default().parse(&raw).expect("a parseable message");
            assert_eq!(message.message_id(), Some(format!("receipt-{id}@orderly.localhost").as_str()));
            assert_eq!(message.to().and_then(|to| to.first()).and_then(|a| a.address()), Some("ana@example.com"));
            assert!(message.subject().unwrap().contains(&id));
            let text = message.body_text(0).unwrap();
            assert!(text.contains("25.00 EUR") && text.contains("EML"), "{text}");
            assert!(message.body_html(0).unwrap().contains("<table>"));
            // The outcome is recorded in a batch just after the handler returns.
            let id = app.read("/v1/jobs?kind=send_receipt").await["data"][0]["id"].as_i64().unwrap();
            wait_for_state(&app, id, "completed", 5).await;
        }

        async fn a_job_that_always_fails_backs_off_is_discarded_and_can_be_sent_round_again(app) {
            let started = std::time::Instant::now();
            let id = enqueue(&app, kinds::Noop::NAME, json!({"fail": "the printer is on fire"}), 3).await;
            let discarded = wait_for_state(&app, id, "discarded", 15).await;
            let elapsed = started.elapsed();
            assert_eq!(discarded["attempt"], 3);
            assert_eq!(discarded["last_error"], "the printer is on fire");
            // Two waits, nominally 100 ms and 200 ms, each within ±25 %.
            assert!(elapsed.as_millis() >= 225, "retried too soon: {elapsed:?}");

            let retried: Value = app.admin(Method::POST, &format!("/v1/jobs/{id}/retry")).send().await.unwrap().json().await.unwrap();
            assert_eq!(retried["attempt"], 0);
            let again = wait_for_state(&app, id, "discarded", 15).await;
            assert_eq!(again["attempt"], 3);

            // The same power from the shell.
            let cli = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
                .env("ORDERLY_DATABASE_URL", &app.database_url)
                .env_remove("RUST_LOG")
                .args(["jobs", "retry", &id.to_string()])
                .output()
                .unwrap();
            assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
            assert!(String::from_utf8_lossy(&cli.stdout).contains("available"));
            wait_for_state(&app, id, "discarded", 15).await;
            let listed = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"))
                .env("ORDERLY_DATABASE_URL", &app.database_url)
                .args(["jobs", "list", "--state", "discarded"])
                .output()
                .unwrap();
            let listed = String::from_utf8_lossy(&listed.stdout);
            assert!(listed.contains("the printer is on fire"), "{listed}");
        }

        async fn a_permanent_failure_is_discarded_at_once(app) {
            let id = enqueue(&app, kinds::Noop::NAME, json!({"fail": "bad input", "permanent": true}), 5).await;
            let job = wait_for_state(&app, id, "discarded", 10).await;
            assert_eq!(job["attempt"], 1);
            let unknown = enqueue(&app, "no_such_kind", json!({}), 5).await;
            let job = wait_for_state(&app, unknown, "discarded", 10).await;
            assert!(job["last_error"].as_str().unwrap().contains("no handler"));
        }

        async fn a_unique_job_is_enqueued_once(app) {
            let mut job = orderly_queue::NewJob::named(kinds::Noop::NAME, json!({})).max_attempts(1);
            job.unique_key = Some("tick:2026-11-28T03:00".into());
            assert_eq!(app.store.queue().enqueue(std::slice::from_ref(&job)).await.unwrap().len(), 1);
            assert_eq!(app.store.queue().enqueue(&[job.clone(), job]).await.unwrap().len(), 0);
            assert_eq!(app.scalar("SELECT COUNT(*) FROM jobs WHERE unique_key IS NOT NULL").await, 1);
        }

        async fn a_delayed_job_does_not_run_before_its_time(app) {
            let later = orderly_domain::now() + time::Duration::milliseconds(800);
            let mut delayed = orderly_queue::NewJob::named(kinds::Noop::NAME, json!({})).max_attempts(1);
            delayed.run_at = Some(later);
            let id = app.store.queue().enqueue(&[delayed]).await.unwrap()[0];
            // The no-op finishes as it starts: finishing at or after `run_at` is starting then.
            let done = wait_for_state(&app, id, "completed", 10).await;
            let finished = time::OffsetDateTime::parse(done["finished_at"].as_str().unwrap(), &time::format_description::well_known::Rfc3339).unwrap();
            assert!(finished >= later);
        }
    }
}
