//! The relay of the outbox to NATS JetStream: each positioned event published, in position
//! order, to `<prefix>.<type>` with `Nats-Msg-Id` = the event id, a batch at a time with up to
//! `max_in_flight` publishes awaiting acknowledgement, the cursor moved only past events the
//! server acknowledged. A relay that dies republishes at most its last batch, which the
//! stream's duplicate window drops.

use std::collections::VecDeque;
use std::time::Duration;

use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;
use orderly_storage::{EventFilter, EventRecord, NATS_RELAY, Store};
use tokio::sync::watch;

/// What [`Relay::pass`] fails with: NATS's errors and the store's, with their causes.
pub type RelayError = Box<dyn std::error::Error + Send + Sync>;

/// How long connecting, creating the stream and each acknowledgement may take.
const NATS_TIMEOUT: Duration = Duration::from_secs(5);
/// Events read, published and recorded as relayed per pass: one cursor write per batch,
/// which on SQLite waits its turn behind the order writer (measured: at 256 a pass the relay
/// fell seconds behind 1,200 orders/s on SQLite).
const BATCH: i64 = 2_000;

/// Where and how events are relayed (`[events]` in the configuration).
#[derive(Debug, Clone)]
pub struct RelaySettings {
    pub url: String,
    pub subject_prefix: String,
    pub stream: String,
    pub retention: stream::RetentionPolicy,
    pub max_age: Duration,
    pub duplicate_window: Duration,
    /// Publishes awaiting acknowledgement at once.
    pub max_in_flight: usize,
}

pub(super) struct Relay {
    settings: RelaySettings,
    /// Connected, with the stream in place; `None` after a failure, to connect again.
    context: Option<jetstream::Context>,
    /// The cursor as last read or acknowledged; `None` to read it again.
    position: Option<i64>,
    /// Where the acknowledged position goes to be recorded (`super::checkpoint`).
    acked: watch::Sender<i64>,
}

impl Relay {
    pub(super) fn new(settings: RelaySettings, acked: watch::Sender<i64>) -> Self {
        Self {
            settings,
            context: None,
            position: None,
            acked,
        }
    }

    pub(super) fn forget_position(&mut self) {
        self.position = None;
    }

    /// Relays the next batch; returns how many events were acknowledged.
    pub(super) async fn pass(&mut self, store: &Store) -> Result<usize, RelayError> {
        let position = match self.position {
            Some(position) => position,
            None => *self.position.insert(store.start_relay(NATS_RELAY).await?),
        };
        let events = store
            .list_events(&EventFilter {
                after: position,
                kind: None,
                limit: BATCH,
            })
            .await?;
        if events.is_empty() {
            return Ok(0);
        }
        let context = match &self.context {
            Some(context) => context.clone(),
            None => {
                let context = self.connect().await?;
                self.context.insert(context).clone()
            }
        };
        let result = self.publish(&context, &events).await;
        let (acknowledged, error) = match result {
            Ok(n) => (n, None),
            Err((n, e)) => (n, Some(e)),
        };
        if acknowledged > 0 {
            let last = events[acknowledged - 1].position;
            self.acked.send_replace(last);
            self.position = Some(last);
            metrics::counter!("events_relayed_total").increment(acknowledged as u64);
            let now = orderly_domain::now();
            for event in &events[..acknowledged] {
                let lag = (now - event.created_at).as_seconds_f64().max(0.0);
                metrics::histogram!("events_relay_lag_at_publish_seconds").record(lag);
            }
        }
        match error {
            None => Ok(acknowledged),
            Some(e) => {
                // Connect afresh next time: the connection may be what failed.
                self.context = None;
                Err(e)
            }
        }
    }

    /// Connects and makes sure the stream exists (an existing one is used as it is).
    async fn connect(&self) -> Result<jetstream::Context, RelayError> {
        let s = &self.settings;
        let client = async_nats::ConnectOptions::new()
            .name("orderly-event-relay")
            .connection_timeout(NATS_TIMEOUT)
            .request_timeout(Some(NATS_TIMEOUT))
            .connect(s.url.as_str())
            .await?;
        let context = jetstream::ContextBuilder::new()
            .timeout(NATS_TIMEOUT)
            .ack_timeout(NATS_TIMEOUT)
            .max_ack_inflight(s.max_in_flight)
            .build(client);
        context
            .get_or_create_stream(stream::Config {
                name: s.stream.clone(),
                subjects: vec![format!("{}.>", s.subject_prefix)],
                retention: s.retention,
                max_age: s.max_age,
                duplicate_window: s.duplicate_window,
                ..Default::default()
            })
            .await?;
        tracing::info!(stream = %s.stream, "relaying events to NATS");
        Ok(context)
    }

    /// Publishes `events` in order with at most `max_in_flight` unacknowledged, and awaits
    /// each acknowledgement in order: the number acknowledged before the first failure, and
    /// that failure.
    async fn publish(
        &self,
        context: &jetstream::Context,
        events: &[EventRecord],
    ) -> Result<usize, (usize, RelayError)> {
        let mut in_flight: VecDeque<PublishAckFuture> =
            VecDeque::with_capacity(self.settings.max_in_flight);
        let mut acknowledged = 0;
        for event in events {
            if in_flight.len() == self.settings.max_in_flight
                && let Some(ack) = in_flight.pop_front()
            {
                ack.await.map_err(|e| (acknowledged, e.into()))?;
                acknowledged += 1;
            }
            let publish = message(event).map_err(|e| (acknowledged, e))?;
            let subject = format!("{}.{}", self.settings.subject_prefix, event.kind);
            match context.send_publish(subject, publish).await {
                Ok(ack) => in_flight.push_back(ack),
                Err(e) => {
                    // What was sent before may still be acknowledged: count it first.
                    for ack in in_flight {
                        if ack.await.is_err() {
                            break;
                        }
                        acknowledged += 1;
                    }
                    return Err((acknowledged, e.into()));
                }
            }
        }
        for ack in in_flight {
            ack.await.map_err(|e| (acknowledged, e.into()))?;
            acknowledged += 1;
        }
        Ok(acknowledged)
    }
}

/// The message for `event`: its JSON, as `GET /v1/events/{id}` returns it, and headers a
/// consumer can route or trace by without parsing the body.
fn message(event: &EventRecord) -> Result<jetstream::message::PublishMessage, RelayError> {
    let body = serde_json::to_vec(event)?;
    let occurred = event
        .created_at
        .format(&time::format_description::well_known::Rfc3339)?;
    let mut publish = jetstream::message::PublishMessage::build()
        .payload(Bytes::from(body))
        .message_id(event.id.to_string())
        .header("Orderly-Event-Type", event.kind.as_str())
        .header("Orderly-Subject-Id", event.subject_id.to_string().as_str())
        .header("Orderly-Occurred-At", occurred.as_str())
        .header("Orderly-Position", event.position.to_string().as_str());
    if let Some(trace) = &event.trace_context {
        publish = publish.header("traceparent", trace.as_str());
    }
    Ok(publish)
}
