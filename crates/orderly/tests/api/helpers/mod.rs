//! What the integration tests share: starting the application for a test (`app.rs`) on a
//! database of its own (`orderly_testing`, which the queue's suite uses too), `orderly run`
//! and `redis-server` processes of a test's own (`processes.rs`), and waiting, logging and
//! problem checks (here).

mod app;
mod processes;

pub use app::*;
pub use orderly_testing::{Backend, TestDatabase};
pub use processes::*;

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

/// Defines each test twice, as `<name>::sqlite` and `<name>::postgres`
/// ([`orderly_testing::on_both_backends!`]), with `$app` bound to a running [`TestApp`] on
/// that backend, made by `$spawn` (`TestApp::spawn` when not given).
macro_rules! backend_tests {
    (spawn = $spawn:expr; $(async fn $name:ident($app:ident) $body:block)*) => {
        orderly_testing::on_both_backends! {
            $(
                async fn $name(backend) {
                    let Some($app) = ($spawn)(backend).await else {
                        assert_eq!(backend, $crate::helpers::Backend::Postgres, "SQLite is always there");
                        return;
                    };
                    $body
                }
            )*
        }
    };
    ($(async fn $name:ident($app:ident) $body:block)*) => {
        $crate::helpers::backend_tests! {
            spawn = $crate::helpers::TestApp::spawn;
            $(async fn $name($app) $body)*
        }
    };
}

pub(crate) use backend_tests;

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
