//! Coalescing: jobs that run at the same time each ask the store for one thing (their order,
//! "my receipt went out"), and one task answers all who are waiting with one statement, so a
//! busy worker pays a few statements per batch instead of several per job (the "data loader"
//! pattern). Written here because it is a few lines over tokio's channels, and the crates that
//! offer it bring caches and runtimes of their own.
//!
//! Bounds: at most `max_batch` requests per statement, and `4 × max_batch` waiting; past that
//! a caller waits for room (its job's timeout still applies). Batches run one after another,
//! so a batch is what arrived while the one before ran: none when the worker is quiet (a lone
//! request goes at once), larger as it gets busy.

use std::future::Future;
use std::sync::Arc;

use orderly_storage::StoreError;
use tokio::sync::{mpsc, oneshot};

/// Why a coalesced call got no answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CoalesceError {
    /// The batch's statement failed: every caller of the batch gets the same error.
    #[error(transparent)]
    Failed(Arc<StoreError>),
    /// The task that runs batches has stopped (the worker is shutting down).
    #[error("the batching task has stopped")]
    Stopped,
}

type Reply<V> = oneshot::Sender<Result<V, CoalesceError>>;

/// Hands requests of type `K` to a task that answers them in batches with values of type `V`.
#[derive(Debug)]
pub struct Coalescer<K, V> {
    requests: mpsc::Sender<(K, Reply<V>)>,
}

impl<K, V> Clone for Coalescer<K, V> {
    fn clone(&self) -> Self {
        Self {
            requests: self.requests.clone(),
        }
    }
}

impl<K: Send + 'static, V: Send + 'static> Coalescer<K, V> {
    /// Starts the task (on the current tokio runtime). `run` answers a batch of requests
    /// with one value each, in their order. The task ends when every clone is dropped.
    pub fn start<F, Fut>(max_batch: usize, run: F) -> Self
    where
        F: Fn(Vec<K>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Vec<V>, StoreError>> + Send,
    {
        let max_batch = max_batch.max(1);
        let (requests, mut waiting) = mpsc::channel::<(K, Reply<V>)>(4 * max_batch);
        tokio::spawn(async move {
            let mut taken = Vec::with_capacity(max_batch);
            while waiting.recv_many(&mut taken, max_batch).await > 0 {
                let (keys, replies): (Vec<K>, Vec<Reply<V>>) = taken.drain(..).unzip();
                metrics::histogram!("worker_coalesced_batch_size").record(keys.len() as f64);
                match run(keys).await {
                    Ok(values) if values.len() == replies.len() => {
                        for (reply, value) in replies.into_iter().zip(values) {
                            let _ = reply.send(Ok(value));
                        }
                    }
                    Ok(_) => {
                        // A batch function answering the wrong number of values is a defect;
                        // its callers fail (and retry) rather than get another's answer.
                        tracing::error!("a batch was answered with the wrong number of values");
                        for reply in replies {
                            let _ = reply.send(Err(CoalesceError::Stopped));
                        }
                    }
                    Err(error) => {
                        let error = Arc::new(error);
                        for reply in replies {
                            let _ = reply.send(Err(CoalesceError::Failed(error.clone())));
                        }
                    }
                }
            }
        });
        Self { requests }
    }

    /// Asks for `key`'s value, answered with the batch it joins.
    pub async fn call(&self, key: K) -> Result<V, CoalesceError> {
        let (reply, answer) = oneshot::channel();
        self.requests
            .send((key, reply))
            .await
            .map_err(|_| CoalesceError::Stopped)?;
        answer.await.map_err(|_| CoalesceError::Stopped)?
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn concurrent_calls_share_batches_and_each_gets_its_own_answer() {
        let batches = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen = batches.clone();
        let doubler = Coalescer::start(8, move |keys: Vec<u32>| {
            seen.lock().unwrap().push(keys.len());
            let values = keys.iter().map(|k| k * 2).collect();
            async move {
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                Ok(values)
            }
        });
        let calls: Vec<_> = (0..40u32)
            .map(|k| {
                let doubler = doubler.clone();
                tokio::spawn(async move { (k, doubler.call(k).await.unwrap()) })
            })
            .collect();
        for call in calls {
            let (k, doubled) = call.await.unwrap();
            assert_eq!(doubled, k * 2);
        }
        let batches = batches.lock().unwrap();
        assert_eq!(batches.iter().sum::<usize>(), 40);
        assert!(batches.iter().all(|&n| n <= 8), "{batches:?}");
        assert!(batches.len() < 40, "no call shared a batch: {batches:?}");
    }

    #[tokio::test]
    async fn a_failed_batch_fails_each_of_its_callers() {
        let failing = Coalescer::start(4, |_: Vec<u32>| async {
            Err::<Vec<u32>, _>(StoreError::WriterStopped)
        });
        let error = failing.call(1).await.unwrap_err();
        assert!(matches!(error, CoalesceError::Failed(_)), "{error:?}");
    }
}
