//! The shared Redis tier: get/set with a short timeout, a breaker that skips Redis for a
//! second after a failure (so a dead Redis costs one timeout per second, not one per read),
//! and the pub/sub listener that drops local entries other processes invalidated.

use crate::CacheError;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{Entry, Key};

/// How long Redis is skipped after it failed.
const BREAK: Duration = Duration::from_secs(1);

/// Redis's state as readiness reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisHealth {
    pub up: bool,
    pub latency: Duration,
    pub error: Option<String>,
}

pub(crate) struct RedisTier {
    client: redis::Client,
    namespace: String,
    /// The channel invalidated keys are published on: `<namespace>:invalidate`.
    channel: String,
    connection: ConnectionManager,
    timeout: Duration,
    broken_until: Mutex<Option<Instant>>,
}

impl RedisTier {
    pub(crate) fn new(url: &str, timeout: Duration, namespace: &str) -> Result<Self, CacheError> {
        let client = redis::Client::open(url).map_err(CacheError::BadUrl)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let connection = ConnectionManager::new_lazy_with_config(client.clone(), config)
            .map_err(CacheError::Setup)?;
        Ok(Self {
            client,
            namespace: namespace.to_owned(),
            channel: format!("{namespace}:invalidate"),
            connection,
            timeout,
            broken_until: Mutex::new(None),
        })
    }

    fn broken(&self) -> bool {
        let until = *self.broken_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|until| Instant::now() < until)
    }

    fn failed(&self, what: &str, error: &str) {
        let mut until = self.broken_until.lock().unwrap_or_else(|e| e.into_inner());
        if until.is_none_or(|u| Instant::now() >= u) {
            tracing::warn!(
                error,
                "redis {what} failed; using the database for {BREAK:?}"
            );
        }
        *until = Some(Instant::now() + BREAK);
    }

    async fn run<T>(
        &self,
        what: &str,
        call: impl std::future::Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, ()> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => {
                self.failed(what, &e.to_string());
                Err(())
            }
            Err(_) => {
                self.failed(what, &format!("no answer within {:?}", self.timeout));
                Err(())
            }
        }
    }

    /// The value at `key`. `Err(true)`: skipped, Redis failed within the last second;
    /// `Err(false)`: this call failed.
    pub(crate) async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, bool> {
        if self.broken() {
            return Err(true);
        }
        let mut connection = self.connection.clone();
        self.run("read", connection.get::<_, Option<Vec<u8>>>(key))
            .await
            .map_err(|()| false)
    }

    pub(crate) async fn set(&self, key: &str, value: Vec<u8>, ttl: Duration) {
        if self.broken() {
            return;
        }
        let mut connection = self.connection.clone();
        let millis = ttl.as_millis().max(1) as u64;
        let _ = self
            .run("write", connection.pset_ex::<_, _, ()>(key, value, millis))
            .await;
    }

    /// Deletes `keys` and publishes each, so every process drops its local copy.
    pub(crate) async fn invalidate(&self, keys: &[String]) {
        let mut pipe = redis::pipe();
        pipe.del(keys).ignore();
        for key in keys {
            pipe.publish(&self.channel, key).ignore();
        }
        let mut connection = self.connection.clone();
        // Tried even while the breaker is open: a stale shared entry is worse than a wait.
        let _ = self
            .run("invalidation", pipe.query_async::<()>(&mut connection))
            .await;
    }

    pub(crate) async fn health(&self) -> RedisHealth {
        let started = Instant::now();
        let mut connection = self.connection.clone();
        let result = tokio::time::timeout(
            self.timeout.max(Duration::from_millis(500)),
            redis::cmd("PING").query_async::<String>(&mut connection),
        )
        .await;
        let error = match result {
            Ok(Ok(_)) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some("no answer".to_owned()),
        };
        RedisHealth {
            up: error.is_none(),
            latency: started.elapsed(),
            error,
        }
    }

    /// Listens for invalidations from other processes, reconnecting after failures. Local
    /// entries are all dropped on every (re)connection: messages may have been missed.
    pub(crate) fn listen(
        &self,
        local: moka::future::Cache<Key, Entry>,
        stop: tokio_util::sync::CancellationToken,
        tasks: &tokio_util::task::TaskTracker,
    ) {
        let client = self.client.clone();
        let (namespace, channel) = (self.namespace.clone(), self.channel.clone());
        tasks.spawn(async move {
            stop.run_until_cancelled(async move {
                Self::listen_forever(client, local, &namespace, &channel).await;
            })
            .await;
        });
    }

    async fn listen_forever(
        client: redis::Client,
        local: moka::future::Cache<Key, Entry>,
        namespace: &str,
        channel: &str,
    ) {
        {
            loop {
                match client.get_async_pubsub().await {
                    Ok(mut pubsub) => match pubsub.subscribe(channel).await {
                        Ok(()) => {
                            local.invalidate_all();
                            let mut messages = pubsub.on_message();
                            while let Some(message) = messages.next().await {
                                if let Ok(key) = message.get_payload::<String>()
                                    && let Some(key) = Key::from_redis_key(&key, namespace)
                                {
                                    local.invalidate(&key).await;
                                }
                            }
                            tracing::warn!("redis invalidation stream ended; reconnecting");
                        }
                        Err(e) => tracing::debug!(error = %e, "redis subscribe failed"),
                    },
                    Err(e) => tracing::debug!(error = %e, "redis pub/sub connect failed"),
                }
                local.invalidate_all();
                tokio::time::sleep(BREAK).await;
            }
        }
    }
}
