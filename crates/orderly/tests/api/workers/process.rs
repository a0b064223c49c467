//! The worker as a process: a task that fails stops it non-zero and named; a worker whose
//! heartbeat stops fails `/healthz`; shutdown with the database gone ends within its deadline;
//! a `LISTEN` session ended is listened again.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_fails_stops_the_process_non_zero_within_seconds_and_is_named() {
    let (_db, url, _store, dir) = migrated(Backend::Sqlite).await.unwrap();
    // The scheduler task panics shortly after it starts (debug builds' fault injection).
    let mut worker = WorkerProcess::start(
        &url,
        &dir,
        "failing",
        &[
            ("ORDERLY_WORKER__SCHEDULER", "true"),
            ("ORDERLY_FAIL_TASK", "scheduler"),
        ],
    );
    let started = std::time::Instant::now();
    let status = eventually(5, "the process to exit", || {
        let status = worker.child.try_wait().unwrap();
        async move { status }
    })
    .await;
    assert!(!status.success(), "exited with {status}");
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    let lines = worker.log_lines();
    assert!(
        lines.iter().any(
            |l| l["message"] == "a task stopped; shutting the process down"
                && l["task"] == "scheduler"
                && l["reason"] == "panicked"
        ),
        "the failed task is named: {lines:?}"
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_only_process_whose_worker_stops_beating_fails_healthz() {
    let (_db, url, _store, dir) = migrated(Backend::Sqlite).await.unwrap();
    // The worker never makes progress, as if deadlocked; its heartbeat is due within a lease.
    let worker = WorkerProcess::start(
        &url,
        &dir,
        "hung",
        &[
            ("ORDERLY_WORKER__LEASE", "2s"),
            ("ORDERLY_FAIL_TASK", "worker:hang"),
        ],
    );
    let addr = ops_address(&worker).await;
    let body = eventually(10, "/healthz to fail", || async {
        let response = crate::helpers::http_client()
            .get(format!("http://{addr}/healthz"))
            .send()
            .await
            .ok()?;
        (response.status() == 503).then_some(())?;
        response.text().await.ok()
    })
    .await;
    assert!(body.contains("no heartbeat"), "{body}");
    let _ = std::fs::remove_dir_all(dir);
}

/// Makes the test database refuse connections and drops those it has, as a failed server
/// would; `false` lets it take connections again.
async fn cut_database(db: &TestDatabase, cut: bool) {
    let TestDatabase::Postgres { admin_url, name } = db else {
        unreachable!("PostgreSQL only")
    };
    let admin = sqlx::PgPool::connect(admin_url).await.unwrap();
    let allow = if cut { "false" } else { "true" };
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS {allow}"
    )))
    .execute(&admin)
    .await
    .unwrap();
    if cut {
        sqlx::query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
        )
        .bind(name)
        .execute(&admin)
        .await
        .unwrap();
    }
    admin.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_with_the_database_gone_ends_within_its_deadline_and_the_jobs_run_again() {
    let Some((db, url, store, dir)) = migrated(Backend::Postgres).await else {
        return;
    };
    enqueue_noops(&store, 5, json!({"sleep_ms": 1_500})).await;
    let settings = [
        ("ORDERLY_WORKER__LEASE", "2s"),
        ("ORDERLY_WORKER__SHUTDOWN_GRACE", "1s"),
    ];
    let mut worker = WorkerProcess::start(&url, &dir, "cut-off", &settings);
    eventually(15, "the jobs to start", || async {
        (count(&store, JobState::Running).await == 5).then_some(())
    })
    .await;
    store.close().await;

    // The database goes away while the jobs run; then the worker is asked to stop. It cannot
    // record what ran nor release what it holds, and stops anyway within its deadline: grace
    // (1 s), then recording and releasing (5 s each at most).
    cut_database(&db, true).await;
    worker.signal("-TERM");
    let asked = std::time::Instant::now();
    eventually(20, "the worker to exit", || {
        let status = worker.child.try_wait().unwrap();
        async move { status }
    })
    .await;
    let took = asked.elapsed();
    assert!(
        took < std::time::Duration::from_secs(13),
        "stopping took {took:?}"
    );

    // Back again: the jobs it held are rescued when their leases run out, and run to the end.
    cut_database(&db, false).await;
    let store = Store::connect(&url, &StoreOptions::default())
        .await
        .unwrap();
    let second = WorkerProcess::start(&url, &dir, "after", &settings);
    eventually(30, "every job to complete", || async {
        (count(&store, JobState::Completed).await == 5).then_some(())
    })
    .await;
    second.stop().await;
    let _ = std::fs::remove_dir_all(dir);
}

/// The backend of the worker's `LISTEN` session (pid, or none).
async fn listen_session(pool: &sqlx::PgPool) -> Option<i32> {
    sqlx::query_scalar(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() \
         AND application_name = 'orderly worker' AND query LIKE 'LISTEN%'",
    )
    .fetch_optional(pool)
    .await
    .unwrap()
}

/// A failover ends every session, the worker's `LISTEN` one included (the server's `FATAL`
/// first, then the close). The worker listens again on a new connection by itself, and a job
/// inserted afterwards is heard at once, long before the next poll (a minute away here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_whose_listen_session_is_ended_listens_again_and_hears_new_jobs() {
    let Some((_db, url, store, dir)) = migrated(Backend::Postgres).await else {
        return;
    };
    let worker = WorkerProcess::start(
        &url,
        &dir,
        "listener",
        &[("ORDERLY_WORKER__POLL_INTERVAL", "60s")],
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let first = eventually(15, "the worker to listen", || listen_session(&pool)).await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(first)
        .execute(&pool)
        .await
        .unwrap();
    eventually(10, "the worker to listen on a new session", || async {
        listen_session(&pool).await.filter(|pid| *pid != first)
    })
    .await;

    enqueue_noops(&store, 1, json!({})).await;
    eventually(5, "the job to run without waiting for a poll", || async {
        (count(&store, JobState::Completed).await == 1).then_some(())
    })
    .await;
    let lines = worker.stop().await;
    assert!(
        lines.iter().any(|l| l["message"]
            .as_str()
            .unwrap_or("")
            .starts_with("job notifications resumed")),
        "no line says the notifications resumed"
    );
    let _ = std::fs::remove_dir_all(dir);
}
