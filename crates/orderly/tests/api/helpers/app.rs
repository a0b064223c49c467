//! The application started for a test, in process, on port 0, with its keys.

use super::*;

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

async fn key(store: &orderly_storage::Store, role: Role) -> String {
    let new = NewApiKey {
        name: format!("test {role}"),
        role,
    };
    store.create_api_key(&new).await.expect("create a key").1
}
