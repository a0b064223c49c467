//! The product read cache: cache-aside with a TTL, single-flight loads, short negative
//! caching, and invalidation after every committed write.
//!
//! Tiers: an in-process tier ([`moka`], bounded) always; with Redis configured, a shared Redis
//! tier behind it, with invalidations broadcast over Redis pub/sub so other processes drop
//! their local copies at once. The local tier then keeps entries for at most one second, so a
//! missed broadcast costs at most a second of staleness. Redis being down, slow or restarting
//! turns its reads into misses (served from the database), never into client errors.
//!
//! A load that raced a write could put the old value back after the write's invalidation;
//! loads therefore re-read when a write was invalidated while they ran, and every
//! invalidation is repeated once shortly after.

mod redis_tier;

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use moka::Expiry;
use uuid::Uuid;

pub use redis_tier::RedisHealth;
use redis_tier::RedisTier;

/// What the cache holds for a key.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Key {
    /// A product by id.
    Id(Uuid),
    /// Which product has a sku.
    Sku(String),
}

impl Key {
    fn redis_key(&self, namespace: &str) -> String {
        match self {
            Key::Id(id) => format!("{namespace}:product:id:{id}"),
            Key::Sku(sku) => format!("{namespace}:product:sku:{sku}"),
        }
    }

    fn from_redis_key(key: &str, namespace: &str) -> Option<Key> {
        let rest = key.strip_prefix(namespace)?.strip_prefix(":product:")?;
        if let Some(id) = rest.strip_prefix("id:") {
            id.parse().ok().map(Key::Id)
        } else {
            rest.strip_prefix("sku:")
                .map(|sku| Key::Sku(sku.to_owned()))
        }
    }
}

/// A product as served: its rendered body and entity tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedProduct {
    pub id: Uuid,
    pub sku: String,
    pub etag: String,
    /// The JSON body, rendered once and served as is on every hit.
    pub body: Bytes,
}

/// A cached answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Product(Arc<CachedProduct>),
    /// The id of the product with a sku.
    IdOf(Uuid),
    /// Nothing there (cached briefly).
    Missing,
}

impl Entry {
    /// The form stored in Redis: a tag line, then the value.
    fn encode(&self) -> Vec<u8> {
        match self {
            Entry::Product(p) => {
                let mut out = format!("P\n{}\n{}\n{}\n", p.id, p.sku, p.etag).into_bytes();
                out.extend_from_slice(&p.body);
                out
            }
            Entry::IdOf(id) => format!("I\n{id}").into_bytes(),
            Entry::Missing => b"M".to_vec(),
        }
    }

    fn decode(bytes: &[u8]) -> Option<Entry> {
        match bytes.first()? {
            b'M' => Some(Entry::Missing),
            b'I' => std::str::from_utf8(&bytes[2..])
                .ok()?
                .parse()
                .ok()
                .map(Entry::IdOf),
            b'P' => {
                let mut parts = bytes[2..].splitn(4, |&b| b == b'\n');
                let id = std::str::from_utf8(parts.next()?).ok()?.parse().ok()?;
                let sku = String::from_utf8(parts.next()?.to_vec()).ok()?;
                let etag = String::from_utf8(parts.next()?.to_vec()).ok()?;
                let body = Bytes::copy_from_slice(parts.next()?);
                Some(Entry::Product(Arc::new(CachedProduct {
                    id,
                    sku,
                    etag,
                    body,
                })))
            }
            _ => None,
        }
    }
}

/// How the cache behaves.
#[derive(Debug, Clone)]
pub struct CacheSettings {
    /// How long a product stays cached.
    pub ttl: Duration,
    /// How long "not found" stays cached.
    pub negative_ttl: Duration,
    /// Most entries in the in-process tier; the least recently used go first.
    pub max_entries: u64,
    /// Shared tier; `None` for in-process only.
    pub redis_url: Option<String>,
    /// Longest a Redis call may take before it counts as a failure (and a miss).
    pub redis_timeout: Duration,
    /// Prefix of every Redis key and of the invalidation channel, so that deployments can
    /// share a Redis.
    pub redis_namespace: String,
}

/// Counters for metrics and tests.
#[derive(Debug, Default)]
pub struct Stats {
    pub local_hits: AtomicU64,
    pub redis_hits: AtomicU64,
    /// Loads from the database (after both tiers missed, or with the cache down).
    pub loads: AtomicU64,
    pub redis_errors: AtomicU64,
    /// Reads that skipped Redis because it was failing.
    pub redis_fallbacks: AtomicU64,
}

/// Keeps local entries for their tier's time to live, "not found" for the negative TTL.
struct TierExpiry {
    found: Duration,
    missing: Duration,
}

impl Expiry<Key, Entry> for TierExpiry {
    fn expire_after_create(&self, _key: &Key, value: &Entry, _now: Instant) -> Option<Duration> {
        Some(match value {
            Entry::Missing => self.missing,
            _ => self.found,
        })
    }
}

struct Inner {
    /// Stops the invalidation listener when the cache goes away, or at [`ProductCache::close`].
    stop: tokio_util::sync::DropGuard,
    /// The cache's own tasks (the listener, repeated invalidations), awaited by `close`.
    tasks: tokio_util::task::TaskTracker,
    local: moka::future::Cache<Key, Entry>,
    redis: Option<RedisTier>,
    settings: CacheSettings,
    stats: Stats,
    /// Invalidation counters, striped by key hash: a load that saw its key's stripe move
    /// re-reads. Striped so that writes to other products rarely cost a re-read.
    writes: [AtomicU64; STRIPES],
    /// Repeated invalidations not yet done, for [`ProductCache::settled`].
    repeats_pending: tokio::sync::watch::Sender<usize>,
}

const STRIPES: usize = 64;

fn stripe(key: &Key) -> usize {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    (hasher.finish() % STRIPES as u64) as usize
}

/// The product cache. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct ProductCache(Arc<Inner>);

impl std::fmt::Debug for ProductCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProductCache")
            .field("redis", &self.0.redis.is_some())
            .field("entries", &self.0.local.entry_count())
            .finish()
    }
}

/// Why the cache could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    #[error("bad Redis URL")]
    BadUrl(#[source] redis::RedisError),
    #[error("cannot set up the Redis connection")]
    Setup(#[source] redis::RedisError),
}

/// How long after an invalidation it is repeated, to catch a racing load's write-back.
const SECOND_INVALIDATION: Duration = Duration::from_millis(100);

impl ProductCache {
    /// Builds the cache; with a Redis URL, connects lazily and listens for invalidations.
    pub fn new(settings: CacheSettings) -> Result<Self, CacheError> {
        let redis = settings
            .redis_url
            .as_deref()
            .map(|url| RedisTier::new(url, settings.redis_timeout, &settings.redis_namespace))
            .transpose()?;
        // With a shared tier, local copies live at most a second: the bound on how long
        // another process can serve a value after a write if a broadcast is lost.
        let local_ttl = if redis.is_some() {
            settings.ttl.min(Duration::from_secs(1))
        } else {
            settings.ttl
        };
        let local = moka::future::Cache::builder()
            .max_capacity(settings.max_entries)
            .expire_after(TierExpiry {
                found: local_ttl,
                missing: settings.negative_ttl.min(local_ttl),
            })
            .build();
        let stop = tokio_util::sync::CancellationToken::new();
        let tasks = tokio_util::task::TaskTracker::new();
        if let Some(redis) = &redis {
            redis.listen(local.clone(), stop.clone(), &tasks);
        }
        Ok(Self(Arc::new(Inner {
            stop: stop.drop_guard(),
            tasks,
            local,
            redis,
            settings,
            stats: Stats::default(),
            writes: std::array::from_fn(|_| AtomicU64::new(0)),
            repeats_pending: tokio::sync::watch::Sender::new(0),
        })))
    }

    /// Stops listening for invalidations and waits for the cache's own tasks (a repeated
    /// invalidation lasts 100 ms), at most `deadline`.
    pub async fn close(&self, deadline: Duration) {
        self.0.stop.token().cancel();
        self.0.tasks.close();
        if tokio::time::timeout(deadline, self.0.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("cache tasks still running at shutdown");
        }
    }

    pub fn stats(&self) -> &Stats {
        &self.0.stats
    }

    /// The state of the shared tier, for readiness: `None` without Redis.
    pub async fn redis_health(&self) -> Option<RedisHealth> {
        match &self.0.redis {
            Some(redis) => Some(redis.health().await),
            None => None,
        }
    }

    /// The entry for `key`: from the local tier, else Redis, else `load` (the database). A
    /// burst of misses for one key in this process runs `load` once; the others wait for it.
    pub async fn get_or_load<E, F, Fut>(&self, key: Key, load: F) -> Result<Entry, Arc<E>>
    where
        E: Send + Sync + 'static,
        F: Fn() -> Fut + Send + Sync,
        Fut: Future<Output = Result<Entry, E>> + Send,
    {
        let inner = &self.0;
        if let Some(entry) = inner.local.get(&key).await {
            inner.stats.local_hits.fetch_add(1, Ordering::Relaxed);
            metrics::counter!("cache_requests_total", "tier" => "local", "result" => "hit")
                .increment(1);
            return Ok(entry);
        }
        metrics::counter!("cache_requests_total", "tier" => "local", "result" => "miss")
            .increment(1);
        inner
            .local
            .try_get_with(key.clone(), async {
                if let Some(redis) = &inner.redis {
                    match redis
                        .get(&key.redis_key(&inner.settings.redis_namespace))
                        .await
                    {
                        Ok(Some(bytes)) => {
                            if let Some(entry) = Entry::decode(&bytes) {
                                inner.stats.redis_hits.fetch_add(1, Ordering::Relaxed);
                                metrics::counter!("cache_requests_total", "tier" => "redis", "result" => "hit")
                                    .increment(1);
                                return Ok(entry);
                            }
                        }
                        Ok(None) => {
                            metrics::counter!("cache_requests_total", "tier" => "redis", "result" => "miss")
                                .increment(1);
                        }
                        Err(skipped) => {
                            let (counter, metric) = if skipped {
                                (&inner.stats.redis_fallbacks, "cache_fallbacks_total")
                            } else {
                                (&inner.stats.redis_errors, "cache_errors_total")
                            };
                            counter.fetch_add(1, Ordering::Relaxed);
                            metrics::counter!(metric, "tier" => "redis").increment(1);
                        }
                    }
                }
                // Re-read if a write was invalidated while we were reading: what we read may
                // predate it.
                let writes = &inner.writes[stripe(&key)];
                let mut entry;
                let mut attempts = 0;
                loop {
                    let seen = writes.load(Ordering::Acquire);
                    inner.stats.loads.fetch_add(1, Ordering::Relaxed);
                    metrics::counter!("cache_requests_total", "tier" => "database", "result" => "load")
                        .increment(1);
                    entry = load().await?;
                    attempts += 1;
                    if writes.load(Ordering::Acquire) == seen || attempts == 3 {
                        break;
                    }
                }
                if let Some(redis) = &inner.redis {
                    let ttl = match entry {
                        Entry::Missing => inner.settings.negative_ttl,
                        _ => inner.settings.ttl,
                    };
                    let redis_key = key.redis_key(&inner.settings.redis_namespace);
                    redis.set(&redis_key, entry.encode(), ttl).await;
                }
                Ok(entry)
            })
            .await
    }

    /// Drops `keys` here and in Redis, tells other processes to drop them, and does it all
    /// once more a moment later. Call after the write that changed them has committed.
    pub async fn invalidate(&self, keys: &[Key]) {
        if keys.is_empty() {
            return;
        }
        self.invalidate_now(keys).await;
        let again = self.clone();
        let keys = keys.to_vec();
        self.0.repeats_pending.send_modify(|n| *n += 1);
        self.0.tasks.spawn(async move {
            tokio::time::sleep(SECOND_INVALIDATION).await;
            again.invalidate_now(&keys).await;
            again.0.repeats_pending.send_modify(|n| *n -= 1);
        });
    }

    /// Resolves once every invalidation made so far has been repeated: from then on, reads
    /// see only what later writes do. For tests and tools that count loads.
    pub async fn settled(&self) {
        let mut pending = self.0.repeats_pending.subscribe();
        // The sender lives as long as `self`, so the wait cannot fail.
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    async fn invalidate_now(&self, keys: &[Key]) {
        let inner = &self.0;
        for key in keys {
            inner.writes[stripe(key)].fetch_add(1, Ordering::AcqRel);
            inner.local.invalidate(key).await;
        }
        if let Some(redis) = &inner.redis {
            let namespace = &inner.settings.redis_namespace;
            let keys: Vec<String> = keys.iter().map(|k| k.redis_key(namespace)).collect();
            redis.invalidate(&keys).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_survive_the_redis_encoding() {
        let product = Entry::Product(Arc::new(CachedProduct {
            id: Uuid::now_v7(),
            sku: "MUG-1".into(),
            etag: "\"3\"".into(),
            body: Bytes::from_static(b"{\"name\":\"line\\nbreak\"}\n"),
        }));
        for entry in [product, Entry::IdOf(Uuid::now_v7()), Entry::Missing] {
            assert_eq!(Entry::decode(&entry.encode()), Some(entry));
        }
        assert_eq!(Entry::decode(b"garbage"), None);
    }

    #[test]
    fn redis_keys_round_trip() {
        for key in [Key::Id(Uuid::now_v7()), Key::Sku("A.b-c_1".into())] {
            assert_eq!(
                Key::from_redis_key(&key.redis_key("shop"), "shop"),
                Some(key.clone())
            );
            assert_eq!(Key::from_redis_key(&key.redis_key("shop"), "other"), None);
        }
    }

    fn settings() -> CacheSettings {
        CacheSettings {
            ttl: Duration::from_secs(300),
            negative_ttl: Duration::from_millis(200),
            max_entries: 100,
            redis_url: None,
            redis_timeout: Duration::from_millis(50),
            redis_namespace: "test".into(),
        }
    }

    #[tokio::test]
    async fn a_miss_loads_once_and_later_reads_hit() {
        let cache = ProductCache::new(settings()).unwrap();
        let key = Key::Sku("A".into());
        let id = Uuid::now_v7();
        for _ in 0..3 {
            let entry = cache
                .get_or_load(key.clone(), || async { Ok::<_, ()>(Entry::IdOf(id)) })
                .await
                .unwrap();
            assert_eq!(entry, Entry::IdOf(id));
        }
        assert_eq!(cache.stats().loads.load(Ordering::Relaxed), 1);
        assert_eq!(cache.stats().local_hits.load(Ordering::Relaxed), 2);
        cache.invalidate(std::slice::from_ref(&key)).await;
        cache
            .get_or_load(key, || async { Ok::<_, ()>(Entry::Missing) })
            .await
            .unwrap();
        assert_eq!(cache.stats().loads.load(Ordering::Relaxed), 2);
    }

    #[tokio::test]
    async fn not_found_is_cached_only_for_the_negative_ttl() {
        let cache = ProductCache::new(settings()).unwrap();
        let key = Key::Id(Uuid::now_v7());
        let load = || async { Ok::<_, ()>(Entry::Missing) };
        cache.get_or_load(key.clone(), load).await.unwrap();
        cache.get_or_load(key.clone(), load).await.unwrap();
        assert_eq!(cache.stats().loads.load(Ordering::Relaxed), 1);
        tokio::time::sleep(Duration::from_millis(300)).await;
        cache.get_or_load(key, load).await.unwrap();
        assert_eq!(cache.stats().loads.load(Ordering::Relaxed), 2);
    }
}
