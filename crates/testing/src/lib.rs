//! What orderly's test suites share, so that a test is written once and runs on every
//! backend: [`TestDatabase`], a database of a test's own on SQLite or PostgreSQL, dropped
//! with the test, and [`on_both_backends!`], which defines each test once per backend. Suites
//! that need more (the API's running app, the queue's worker) start it from the backend the
//! macro hands them. The PostgreSQL variants run against `ORDERLY_TEST_POSTGRES_URL`; when
//! it is not set they say so loudly and do not run, and in CI (`CI` set) they fail, unless
//! `ORDERLY_TEST_SERVERS=elsewhere` says that this run leaves them to another (CI's SQLite
//! half, `.ci/run test-sqlite`).

use std::path::PathBuf;

use uuid::Uuid;

/// The variable naming the PostgreSQL server the PostgreSQL variants run against.
pub const POSTGRES_URL_VAR: &str = "ORDERLY_TEST_POSTGRES_URL";

/// Whether this run leaves the tests that need PostgreSQL or Redis to another run
/// (`ORDERLY_TEST_SERVERS=elsewhere`): they say so and do not run, even in CI.
pub fn servers_elsewhere() -> bool {
    std::env::var("ORDERLY_TEST_SERVERS").is_ok_and(|v| v == "elsewhere")
}

/// Defines each test twice, as `<name>::sqlite` and `<name>::postgres`, with `$backend`
/// bound to that [`Backend`]. The body starts what it needs on it (and returns when
/// [`TestDatabase::create`] says PostgreSQL is not configured).
#[macro_export]
macro_rules! on_both_backends {
    ($(async fn $name:ident($backend:ident) $body:block)*) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let $backend = $crate::Backend::Sqlite;
                    $body
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let $backend = $crate::Backend::Postgres;
                    $body
                }
            }
        )*
    };
}

/// The database a test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// A database made for one test and removed after it.
#[derive(Debug)]
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
                if servers_elsewhere() {
                    eprintln!(
                        "*** ORDERLY_TEST_SERVERS=elsewhere: this PostgreSQL test runs in \
                         the other half of CI (.ci/run test-postgres). ***"
                    );
                    return None;
                }
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

#[cfg(test)]
#[test]
fn replace_database_keeps_credentials_host_and_parameters() {
    assert_eq!(
        replace_database("postgres://u:p@h:5432/postgres?sslmode=disable", "t1"),
        "postgres://u:p@h:5432/t1?sslmode=disable"
    );
    assert_eq!(replace_database("postgres://h", "t2"), "postgres://h/t2");
}
