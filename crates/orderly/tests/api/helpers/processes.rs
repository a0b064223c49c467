//! Processes of a test's own: `orderly run` (its own metrics recorder and tracer) and
//! `redis-server`.

use super::*;

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
    if orderly_testing::servers_elsewhere() {
        eprintln!(
            "*** ORDERLY_TEST_SERVERS=elsewhere: this Redis test runs in the other half of CI. ***"
        );
        return None;
    }
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
