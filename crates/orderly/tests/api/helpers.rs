//! Starting the application for a test, and the databases behind it.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use orderly::{Application, Config};
use orderly_domain::Role;
use orderly_storage::NewApiKey;
use serde_json::Value;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

pub use reqwest::StatusCode;

/// With `ORDERLY_TEST_LOG_DIR` set (CI sets it), the in-process apps of this test binary log
/// JSON lines at `debug` to a file there, and worker processes log there too, so that
/// `scripts/scan-logs.sh` can check that no key or password ever reached a log line.
pub fn test_log_dir() -> Option<PathBuf> {
    std::env::var_os("ORDERLY_TEST_LOG_DIR").map(PathBuf::from)
}

fn init_test_logging() {
    static INIT: std::sync::Once = std::sync::Once::new();
    INIT.call_once(|| {
        let Some(dir) = test_log_dir() else { return };
        std::fs::create_dir_all(&dir).expect("create the test log folder");
        let file =
            std::fs::File::create(dir.join(format!("in-process-{}.log", std::process::id())))
                .expect("create the test log file");
        let _ = tracing_subscriber::fmt()
            .json()
            .with_env_filter(tracing_subscriber::EnvFilter::new("debug"))
            .with_writer(std::sync::Mutex::new(file))
            .try_init();
    });
}

/// An HTTP client for talking to the apps under test.
pub fn http_client() -> reqwest::Client {
    orderly::install_crypto_provider();
    reqwest::Client::new()
}

/// The variable naming the PostgreSQL server the PostgreSQL variants run against.
pub const POSTGRES_URL_VAR: &str = "ORDERLY_TEST_POSTGRES_URL";

/// Defines each test twice, as `<name>::sqlite` and `<name>::postgres`, with `$app` bound to a
/// running [`TestApp`] on that backend.
macro_rules! backend_tests {
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $app = $crate::helpers::TestApp::spawn($crate::helpers::Backend::Sqlite)
                        .await
                        .expect("SQLite is always available");
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some($app) =
                        $crate::helpers::TestApp::spawn($crate::helpers::Backend::Postgres).await
                    else {
                        return;
                    };
                    $body
                }
            }
        )*
    };
}
pub(crate) use backend_tests;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test and removed after it.
pub enum TestDatabase {
    Sqlite { dir: PathBuf },
    Postgres { admin_url: String, name: String },
}

impl TestDatabase {
    /// A fresh database and its URL, or `None` (said loudly) when PostgreSQL is not configured.
    pub async fn create(backend: Backend) -> Option<(Self, String)> {
        match backend {
            Backend::Sqlite => {
                let dir = std::env::temp_dir().join(format!("orderly-test-{}", Uuid::new_v4()));
                std::fs::create_dir_all(&dir).expect("create a temporary directory");
                let url = format!("sqlite://{}", dir.join("orderly.db").display());
                Some((Self::Sqlite { dir }, url))
            }
            Backend::Postgres => {
                let Ok(admin_url) = std::env::var(POSTGRES_URL_VAR) else {
                    assert!(
                        std::env::var_os("CI").is_none(),
                        "{POSTGRES_URL_VAR} must be set in CI"
                    );
                    eprintln!(
                        "\n*** {POSTGRES_URL_VAR} is not set: the PostgreSQL variant of this test \
                         did NOT run. Set it (e.g. postgres://postgres@127.0.0.1:5432/postgres) \
                         or run .ci/run. ***\n"
                    );
                    return None;
                };
                let name = format!("orderly_test_{}", Uuid::new_v4().simple());
                let admin = sqlx::PgPool::connect(&admin_url)
                    .await
                    .expect("connect to the test PostgreSQL server");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&admin)
                    .await
                    .expect("create a test database");
                admin.close().await;
                let url = replace_database(&admin_url, &name);
                Some((Self::Postgres { admin_url, name }, url))
            }
        }
    }
}

/// `url` with its database name replaced by `name`.
fn replace_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match self {
            Self::Sqlite { dir } => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Self::Postgres { admin_url, name } => {
                let (admin_url, name) = (admin_url.clone(), name.clone());
                // Drop runs inside the test's runtime, which cannot block on itself.
                let _ = std::thread::spawn(move || {
                    let runtime = tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime to drop the test database");
                    runtime.block_on(async {
                        if let Ok(admin) = sqlx::PgPool::connect(&admin_url).await {
                            let sql = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
                            let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&admin).await;
                            admin.close().await;
                        }
                    });
                })
                .join();
            }
        }
    }
}

/// A running application, its keys and an HTTP client.
pub struct TestApp {
    pub address: String,
    /// A folder of the test's own, removed afterwards; receipts go to `outbox` inside it.
    pub dir: PathBuf,
    pub backend: Backend,
    pub database_url: String,
    pub client: reqwest::Client,
    pub admin_key: String,
    pub storefront_key: String,
    pub store: orderly_storage::Store,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<Result<(), orderly::AppError>>>,
    /// The product cache of this instance, when caching is on.
    pub cache: Option<orderly_cache::ProductCache>,
    // Declared last: dropped after the server has stopped. `None` for an instance sharing
    // another's database.
    _database: Option<TestDatabase>,
}

/// The configuration a test app runs with, on `database_url`, plus `extra` variables.
pub fn test_config(database_url: &str, extra: &[(&str, &str)]) -> Config {
    let mut env = vec![
        ("ORDERLY_DATABASE_URL".to_owned(), database_url.to_owned()),
        ("ORDERLY_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ("ORDERLY_HTTP__SHUTDOWN_GRACE".to_owned(), "2s".to_owned()),
        // No load balancer to wait for; the drain test sets its own.
        ("ORDERLY_HTTP__DRAIN".to_owned(), "0s".to_owned()),
        (
            "ORDERLY_DATABASE__MAX_CONNECTIONS".to_owned(),
            "4".to_owned(),
        ),
        // The queue's time bound is sized for a release build; these tests run a debug build
        // several times slower, and their bursts would be shed. The overload tests set it.
        (
            "ORDERLY_ORDERS__MAX_QUEUE_WAIT".to_owned(),
            "30s".to_owned(),
        ),
        (
            "ORDERLY_ORDERS__QUEUE_WAIT_TARGET".to_owned(),
            "30s".to_owned(),
        ),
    ];
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    Config::load_from(None, env).expect("a valid test configuration")
}

impl TestApp {
    /// Starts the application on a fresh database; `None` when the backend is not configured.
    pub async fn spawn(backend: Backend) -> Option<Self> {
        Self::spawn_with(backend, &[]).await
    }

    /// Like [`TestApp::spawn`], with extra `ORDERLY_*` settings.
    pub async fn spawn_with(backend: Backend, extra: &[(&str, &str)]) -> Option<Self> {
        Self::spawn_roles(backend, orderly::Roles::API, extra).await
    }

    /// The API and a worker in one process, with fast retries and short leases, mail to the
    /// outbox unless `extra` says otherwise.
    pub async fn spawn_with_worker(backend: Backend, extra: &[(&str, &str)]) -> Option<Self> {
        let mut settings = vec![
            ("ORDERLY_WORKER__POLL_INTERVAL", "100ms"),
            ("ORDERLY_WORKER__BACKOFF_BASE", "100ms"),
            ("ORDERLY_WORKER__BACKOFF_MAX", "1s"),
            ("ORDERLY_WORKER__LEASE", "2s"),
            ("ORDERLY_WORKER__SHUTDOWN_GRACE", "2s"),
            // Scheduled chores would add jobs the tests do not expect.
            ("ORDERLY_WORKER__SCHEDULER", "false"),
        ];
        settings.extend_from_slice(extra);
        Self::spawn_roles(backend, orderly::Roles::ALL, &settings).await
    }

    /// A second instance (API only) on `other`'s database, as another process would be.
    pub async fn spawn_sharing(other: &TestApp, extra: &[(&str, &str)]) -> Self {
        Self::start(
            other.backend,
            None,
            other.database_url.clone(),
            orderly::Roles::API,
            extra,
        )
        .await
    }

    /// A second instance (API only) on `other`'s database reached through `url` (another
    /// route to the same server, such as a relay a test can break).
    pub async fn spawn_on(other: &TestApp, url: &str, extra: &[(&str, &str)]) -> Self {
        Self::start(
            other.backend,
            None,
            url.to_owned(),
            orderly::Roles::API,
            extra,
        )
        .await
    }

    async fn spawn_roles(
        backend: Backend,
        roles: orderly::Roles,
        extra: &[(&str, &str)],
    ) -> Option<Self> {
        let (database, url) = TestDatabase::create(backend).await?;
        Some(Self::start(backend, Some(database), url, roles, extra).await)
    }

    async fn start(
        backend: Backend,
        database: Option<TestDatabase>,
        url: String,
        roles: orderly::Roles,
        extra: &[(&str, &str)],
    ) -> Self {
        init_test_logging();
        let dir = std::env::temp_dir().join(format!("orderly-test-files-{}", Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("create a test folder");
        let outbox = dir.join("outbox").display().to_string();
        let mut settings = vec![("ORDERLY_MAIL_OUTBOX", outbox.as_str())];
        settings.extend_from_slice(extra);
        let config = test_config(&url, &settings);
        let application = Application::build(&config, roles)
            .await
            .expect("the app starts");
        let store = application.store().clone();
        let cache = application.cache().cloned();
        let admin_key = key(&store, Role::Admin).await;
        let storefront_key = key(&store, Role::Storefront).await;
        let address = format!("http://127.0.0.1:{}", application.port());
        let shutdown = CancellationToken::new();
        let server = tokio::spawn(application.serve(shutdown.clone()));
        Self {
            address,
            dir,
            backend,
            cache,
            database_url: url,
            client: http_client(),
            admin_key,
            storefront_key,
            store,
            shutdown,
            server: Some(server),
            _database: database,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request with the admin key.
    pub fn admin(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.admin_key)
    }

    /// `GET path` with the admin key, as JSON.
    pub async fn read(&self, path: &str) -> Value {
        self.admin(reqwest::Method::GET, path)
            .send()
            .await
            .expect("request sent")
            .json()
            .await
            .expect("a JSON body")
    }

    /// A request with the storefront key.
    pub fn storefront(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, self.url(path))
            .bearer_auth(&self.storefront_key)
    }

    /// Creates a product as admin and returns its JSON.
    pub async fn create_product(&self, sku: &str, price: i64, stock: i64) -> Value {
        let response = self
            .admin(reqwest::Method::POST, "/v1/products")
            .json(&serde_json::json!({
                "sku": sku, "name": format!("Product {sku}"), "price": price, "stock": stock
            }))
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), StatusCode::CREATED, "creating {sku}");
        response.json().await.expect("a product")
    }

    /// Runs `sql` on a connection of its own and returns the first column of the first row.
    pub async fn scalar(&self, sql: &'static str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
                let value = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                value
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
                let value = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
                pool.close().await;
                value
            }
        }
    }

    /// Checks, on SQLite, that every time stored in any table is in the one fixed form
    /// (`2026-12-02T06:29:36.000120Z`) whose text order is time order; a no-op on PostgreSQL.
    /// Time columns are found by name (`…_at`, `…_since`, `last_tick`).
    pub async fn assert_times_in_one_form(&self) {
        if self.backend != Backend::Sqlite {
            return;
        }
        let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
        let columns: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE '\\_sqlx%' ESCAPE '\\' \
             AND (p.name LIKE '%\\_at' ESCAPE '\\' OR p.name LIKE '%\\_since' ESCAPE '\\' \
             OR p.name = 'last_tick')",
        )
        .fetch_all(&pool)
        .await
        .unwrap();
        assert!(columns.len() > 20, "time columns found: {columns:?}");
        for (table, column) in columns {
            let odd: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT CAST({column} AS TEXT) FROM {table} WHERE {column} IS NOT NULL \
                 AND {column} NOT GLOB '[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T\
                 [0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9][0-9][0-9][0-9]Z'"
            )))
            .fetch_all(&pool)
            .await
            .unwrap();
            assert!(odd.is_empty(), "{table}.{column} holds {odd:?}");
        }
        pool.close().await;
    }

    /// Runs statements on a connection of their own, choosing the text by backend.
    pub async fn execute(&self, sqlite: &'static str, postgres: &'static str) {
        match self.backend {
            Backend::Sqlite => {
                let pool = sqlx::SqlitePool::connect(&self.database_url).await.unwrap();
                sqlx::raw_sql(sqlite).execute(&pool).await.unwrap();
                pool.close().await;
            }
            Backend::Postgres => {
                let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
                sqlx::raw_sql(postgres).execute(&pool).await.unwrap();
                pool.close().await;
            }
        }
    }

    /// Makes every insert into `events` fail, so a transaction that writes an event fails
    /// after its earlier writes: a fault injected in the database, not in the code.
    pub async fn fail_event_inserts(&self) {
        self.execute(
            "CREATE TRIGGER fail_events BEFORE INSERT ON events \
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            "CREATE FUNCTION fail_event() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
             CREATE TRIGGER fail_events BEFORE INSERT ON events \
             FOR EACH ROW EXECUTE FUNCTION fail_event();",
        )
        .await;
    }

    /// Makes every insert into `table` take `seconds` (a trigger that sleeps), so that a test
    /// can hold requests in the database: a slow database made in the database, not in the
    /// code. PostgreSQL only.
    pub async fn slow_inserts(&self, table: &str, seconds: u32) {
        assert_eq!(self.backend, Backend::Postgres, "pg_sleep is PostgreSQL's");
        let pool = sqlx::PgPool::connect(&self.database_url).await.unwrap();
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!(
            "CREATE FUNCTION slow_{table}() RETURNS trigger LANGUAGE plpgsql AS \
             $$ BEGIN PERFORM pg_sleep({seconds}); RETURN NEW; END $$; \
             CREATE TRIGGER slow_{table} BEFORE INSERT ON {table} \
             FOR EACH ROW EXECUTE FUNCTION slow_{table}();"
        )))
        .execute(&pool)
        .await
        .unwrap();
        pool.close().await;
    }

    /// Places an order as the storefront with a fresh idempotency key.
    pub async fn place_order(&self, lines: Value) -> reqwest::Response {
        self.storefront(reqwest::Method::POST, "/v1/orders")
            .header("idempotency-key", Uuid::new_v4().to_string())
            .json(&serde_json::json!({
                "customer": {"email": "ana@example.com", "name": "Ana Lima"},
                "lines": lines,
            }))
            .send()
            .await
            .expect("request sent")
    }

    /// Stops the server as SIGTERM would and waits for it to finish draining.
    pub async fn stop(mut self) -> Result<(), orderly::AppError> {
        self.shutdown.cancel();
        match self.server.take() {
            Some(server) => server.await.expect("the server task does not panic"),
            None => Ok(()),
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Polls `check` every 20 ms until it returns `Some`, or fails the test after `seconds`.
pub async fn eventually<T, F, Fut>(seconds: u64, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(seconds);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

async fn key(store: &orderly_storage::Store, role: Role) -> String {
    let new = NewApiKey {
        name: format!("test {role}"),
        role,
    };
    store.create_api_key(&new).await.expect("create a key").1
}

/// Waits for a message whose file name starts with `prefix` in the app's mail outbox, and
/// returns it.
pub async fn outbox_message(app: &TestApp, prefix: &str) -> Vec<u8> {
    eventually(10, &format!("a {prefix} message in the outbox"), || async {
        std::fs::read_dir(app.dir.join("outbox"))
            .ok()?
            .filter_map(|e| e.ok())
            .find(|e| e.file_name().to_string_lossy().starts_with(prefix))
            .map(|e| std::fs::read(e.path()).unwrap())
    })
    .await
}

/// Reads a problem response, checking it is `application/problem+json` with `status`.
pub async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.expect("a JSON problem");
    assert_eq!(body["status"], status.as_u16());
    assert!(body["code"].is_string(), "{body}");
    body
}

#[test]
fn replace_database_keeps_credentials_host_and_parameters() {
    assert_eq!(
        replace_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
        "postgres://u:p@h:5432/t1?sslmode=disable"
    );
    assert_eq!(replace_database("postgres://h", "t2"), "postgres://h/t2");
}

/// An `orderly run` process of its own (its own metrics recorder and tracer), logging JSON:
/// its first admin key, its base URL, and every log line it has written so far.
pub struct RunProcess {
    child: std::process::Child,
    pub key: String,
    pub base: String,
    pub lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>>,
}

impl RunProcess {
    pub fn start(database_url: &str, env: &[(&str, &str)]) -> Self {
        use std::io::{BufRead, BufReader};
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_orderly"));
        command
            .arg("run")
            .env("ORDERLY_DATABASE_URL", database_url)
            .env("ORDERLY_LISTEN", "127.0.0.1:0")
            .env("ORDERLY_LOG_FORMAT", "json")
            .env("ORDERLY_WORKER__SCHEDULER", "false")
            .env("ORDERLY_HTTP__DRAIN", "0s")
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        for (k, v) in env {
            command.env(k, v);
        }
        let mut child = command.spawn().expect("orderly run starts");
        // Keep reading stderr on a thread, so the pipe stays open for the life of the process.
        let stderr = BufReader::new(child.stderr.take().expect("stderr is piped"));
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let key = rx
            .iter()
            .find(|l| l.trim().starts_with("oly_"))
            .expect("the first admin key is printed")
            .trim()
            .to_owned();
        let lines: std::sync::Arc<std::sync::Mutex<Vec<Value>>> = Default::default();
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let addr = loop {
            let line = stdout.next().expect("a log line").expect("readable");
            let entry: Value = serde_json::from_str(&line).expect("log lines are JSON");
            let serving = entry["message"] == "serving HTTP";
            let addr = entry["addr"].as_str().map(str::to_owned);
            lines.lock().expect("not poisoned").push(entry);
            if serving {
                break addr.expect("an address");
            }
        };
        let collected = lines.clone();
        std::thread::spawn(move || {
            for line in stdout.map_while(Result::ok) {
                if let Ok(entry) = serde_json::from_str(&line) {
                    collected.lock().expect("not poisoned").push(entry);
                }
            }
        });
        Self {
            child,
            key,
            base: format!("http://{addr}"),
            lines,
        }
    }

    /// Sends SIGTERM and waits for the process to exit.
    pub async fn stop(self) -> std::process::ExitStatus {
        self.terminate();
        self.exited().await
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// Waits (at most 20 s) for the process to exit.
    pub async fn exited(mut self) -> std::process::ExitStatus {
        eventually(20, "orderly run to exit", || {
            let status = self.child.try_wait().expect("waitable");
            async move { status }
        })
        .await
    }
}

impl Drop for RunProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The Redis the shared-tier tests use (CI sets it), or `None`, said loudly.
pub fn redis_url() -> Option<String> {
    match std::env::var("ORDERLY_TEST_REDIS_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "ORDERLY_TEST_REDIS_URL must be set in CI"
            );
            eprintln!(
                "\n*** ORDERLY_TEST_REDIS_URL is not set: this Redis test did NOT run. ***\n"
            );
            None
        }
    }
}

/// A Redis namespace of the test's own, so parallel tests sharing one Redis do not meet.
pub fn redis_namespace() -> String {
    format!("test-{}", uuid::Uuid::new_v4().simple())
}

/// A Redis server of the test's own, so it can be stopped and started.
pub struct OwnRedis {
    pub port: u16,
    child: Option<Child>,
}

impl OwnRedis {
    pub async fn start(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        eventually(10, "redis-server to listen", || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .ok()
                .map(|_| ())
        })
        .await;
        Some(Self {
            port,
            child: Some(child),
        })
    }

    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}
