//! Webhook endpoints' use cases that more than one adapter offers: sending a delivery again
//! (the API's `redeliver` and the console's button), and replaying every event an endpoint
//! missed since a time (the API's `replay` and the console's form).

use orderly_queue::kinds::DeliverWebhook;
use orderly_queue::{JobKind, JobState, NewJob, QueueError};
use orderly_storage::{MissedEvent, StoreError, redelivery_job};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::Services;

/// A delivery queued again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Redelivery {
    pub job_id: i64,
    pub event_id: Uuid,
}

/// Why a delivery was not queued again.
#[derive(Debug, thiserror::Error)]
pub enum RedeliveryError {
    #[error("no such webhook endpoint")]
    EndpointNotFound,
    #[error("the endpoint is disabled: enable it before sending events to it")]
    EndpointDisabled,
    #[error("no such delivery attempt of that endpoint")]
    AttemptNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Queue(#[from] QueueError),
    #[error("the redelivery job was not queued")]
    NotQueued,
}

impl Services {
    /// Checks that endpoint `endpoint_id` exists and is enabled: events are sent again only
    /// to such an endpoint.
    async fn enabled_endpoint(&self, endpoint_id: Uuid) -> Result<(), RedeliveryError> {
        let endpoint = self
            .store
            .webhook(endpoint_id)
            .await?
            .ok_or(RedeliveryError::EndpointNotFound)?;
        if endpoint.disabled_at.is_some() {
            return Err(RedeliveryError::EndpointDisabled);
        }
        Ok(())
    }

    /// Queues the event of attempt `attempt_id` to endpoint `endpoint_id` again, with a fresh
    /// retry schedule counted from the attempts the pair has had.
    pub async fn redeliver(
        &self,
        endpoint_id: Uuid,
        attempt_id: i64,
    ) -> Result<Redelivery, RedeliveryError> {
        self.enabled_endpoint(endpoint_id).await?;
        let attempt = self
            .store
            .webhook_attempt(endpoint_id, attempt_id)
            .await?
            .ok_or(RedeliveryError::AttemptNotFound)?;
        let attempts_before = self
            .store
            .count_webhook_attempts(endpoint_id, attempt.event_id)
            .await?;
        let job = redelivery_job(attempt.event_id, endpoint_id, attempts_before);
        let ids = self.store.queue().enqueue(&[job]).await?;
        let job_id = ids.first().copied().ok_or(RedeliveryError::NotQueued)?;
        tracing::info!(%endpoint_id, event_id = %attempt.event_id, job_id, "webhook redelivery queued");
        Ok(Redelivery {
            job_id,
            event_id: attempt.event_id,
        })
    }
}

/// What a replay queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Replay {
    /// Events to be sent again: the sum of the three below.
    pub events: u64,
    /// Given up on (or never to be retried): a delivery queued anew.
    pub queued: u64,
    /// Waiting for a retry: brought forward to now, not queued twice.
    pub brought_forward: u64,
    /// Being sent at this moment: left to finish.
    pub in_flight: u64,
}

/// Events a replay reads at once.
const REPLAY_PAGE: u32 = 500;

impl Services {
    /// Sends `endpoint_id` once more every event since `since` that it missed: each with
    /// attempts to it and none that succeeded. A delivery still waiting for its retry is
    /// brought forward; one running is left to finish; for the rest a delivery is queued,
    /// with a fresh retry schedule and a unique key of the event, endpoint and attempts so
    /// far, so that a replay asked twice queues each once. In pages, however many there are.
    pub async fn replay_webhook(
        &self,
        endpoint_id: Uuid,
        since: OffsetDateTime,
    ) -> Result<Replay, RedeliveryError> {
        self.enabled_endpoint(endpoint_id).await?;
        let queue = self.store.queue();
        let partition = endpoint_id.to_string();
        let mut replay = Replay::default();
        let mut after = None;
        loop {
            let missed = self
                .store
                .missed_webhook_events(endpoint_id, since, after, REPLAY_PAGE)
                .await?;
            let Some(last) = missed.last() else { break };
            after = Some((last.created_at, last.event_id));
            let ids: Vec<String> = missed.iter().map(|m| m.event_id.to_string()).collect();
            let unfinished = queue
                .unfinished_by_arg(DeliverWebhook::NAME, &partition, "event_id", &ids)
                .await?;
            // A delivery that was running when the attempts were read and has finished since
            // recorded its attempt before its job finished: read again now, after the jobs,
            // a success it made is seen, and its event is not queued twice.
            let idle: Vec<_> = missed
                .iter()
                .map(|m| m.event_id)
                .filter(|event| !unfinished.iter().any(|(_, e, _)| *e == event.to_string()))
                .collect();
            let delivered = self
                .store
                .webhook_events_delivered(endpoint_id, &idle)
                .await?;
            let mut waiting = Vec::new();
            let mut fresh: Vec<NewJob> = Vec::new();
            for MissedEvent {
                event_id, attempts, ..
            } in &missed
            {
                let event = event_id.to_string();
                let jobs: Vec<_> = unfinished.iter().filter(|(_, e, _)| *e == event).collect();
                if jobs.iter().any(|(_, _, state)| *state == JobState::Running) {
                    replay.in_flight += 1;
                } else if delivered.contains(event_id) {
                    // Delivered while the replay looked: nothing to send.
                } else if jobs.is_empty() {
                    fresh.push(
                        redelivery_job(*event_id, endpoint_id, *attempts)
                            .unique(format!("replay:{event_id}:{endpoint_id}:{attempts}")),
                    );
                } else {
                    waiting.extend(jobs.iter().map(|(id, _, _)| *id));
                    replay.brought_forward += 1;
                }
            }
            queue.bring_forward(&waiting).await?;
            replay.queued += queue.enqueue(&fresh).await?.len() as u64;
            if missed.len() < REPLAY_PAGE as usize {
                break;
            }
        }
        replay.events = replay.queued + replay.brought_forward + replay.in_flight;
        tracing::info!(%endpoint_id, %since, events = replay.events, queued = replay.queued, brought_forward = replay.brought_forward, in_flight = replay.in_flight, "webhook replay queued");
        Ok(replay)
    }
}
