//! Buckets in Redis, shared by every process: one Lua script takes a token atomically (the
//! same GCRA as governor's, on Redis's own clock, so processes with skewed clocks agree).
//! Each bucket is one key holding its "theoretical arrival time", expiring once the bucket
//! would be full again, so idle clients cost Redis nothing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::{Client, Decision, Policy};

/// How long Redis is skipped after it failed: a dead Redis costs one timeout per second,
/// not one per request.
const BREAK: Duration = Duration::from_secs(1);

/// KEYS[1]: the bucket. ARGV[1]: microseconds per token; ARGV[2]: burst.
/// Returns {allowed (0/1), tokens left, µs until a token (refused), µs until full}.
const TAKE_TOKEN: &str = r"
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000000 + tonumber(time[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + interval
local allow_at = next_tat - interval * burst
if allow_at > now then
  return {0, 0, allow_at - now, tat - now}
end
redis.call('SET', KEYS[1], next_tat, 'PX', math.ceil((next_tat - now) / 1000) + 1)
return {1, math.floor((now - allow_at) / interval), 0, next_tat - now}
";

/// Where the shared buckets are.
#[derive(Debug, Clone)]
pub struct RedisSettings {
    pub url: String,
    /// Longest a check may take before the local bucket decides instead.
    pub timeout: Duration,
    /// Prefix of the bucket keys: `<namespace>:ratelimit:<policy>:<client>`.
    pub namespace: String,
}

pub(crate) struct Buckets {
    connection: ConnectionManager,
    script: redis::Script,
    timeout: Duration,
    namespace: String,
    broken_until: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Buckets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Buckets")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Buckets {
    pub(crate) fn new(settings: RedisSettings) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(settings.url.as_str())?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(settings.timeout.max(Duration::from_millis(100))))
            .set_response_timeout(Some(settings.timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(Self {
            connection: ConnectionManager::new_lazy_with_config(client, config)?,
            script: redis::Script::new(TAKE_TOKEN),
            timeout: settings.timeout,
            namespace: settings.namespace,
            broken_until: Mutex::new(None),
        })
    }

    /// The decision Redis gave, or `None` when it failed (or failed within the last second).
    pub(crate) async fn check(&self, policy: &Policy, client: Client) -> Option<Decision> {
        if self.broken() {
            return None;
        }
        let key = format!("{}:ratelimit:{}:{client}", self.namespace, policy.name);
        let interval = policy.quota.interval().as_micros().max(1) as u64;
        let mut connection = self.connection.clone();
        let mut invocation = self.script.key(key);
        invocation.arg(interval).arg(policy.quota.burst);
        let answer = tokio::time::timeout(
            self.timeout,
            invocation.invoke_async::<(u8, u32, u64, u64)>(&mut connection),
        )
        .await;
        match answer {
            Ok(Ok((allowed, remaining, retry_after, reset))) => Some(Decision {
                allowed: allowed == 1,
                remaining,
                retry_after: Duration::from_micros(retry_after),
                reset: Duration::from_micros(reset),
            }),
            Ok(Err(error)) => {
                self.failed(&error.to_string());
                None
            }
            Err(_) => {
                self.failed(&format!("no answer within {:?}", self.timeout));
                None
            }
        }
    }

    fn broken(&self) -> bool {
        let until = *self.broken_until.lock().unwrap_or_else(|e| e.into_inner());
        until.is_some_and(|until| Instant::now() < until)
    }

    fn failed(&self, error: &str) {
        metrics::counter!("rate_limit_redis_failures_total").increment(1);
        let mut until = self.broken_until.lock().unwrap_or_else(|e| e.into_inner());
        if until.is_none_or(|u| Instant::now() >= u) {
            tracing::warn!(
                error,
                "redis rate-limit check failed; each process limits on its own for {BREAK:?}"
            );
        }
        *until = Some(Instant::now() + BREAK);
    }
}
