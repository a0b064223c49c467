//! A consumer of orderly's events on NATS JetStream: a durable pull consumer that survives
//! its own restarts (the server remembers what it acknowledged), handles each event once by
//! its id, and acknowledges only after handling it.
//!
//! ```sh
//! cargo run -p orderly --example events_consumer -- nats://127.0.0.1:4222 warehouse ORDERLY_EVENTS
//! ```

use std::collections::{HashSet, VecDeque};

use async_nats::jetstream::{self, consumer::AckPolicy, consumer::pull};
use futures_util::StreamExt;

/// Event ids seen lately. Delivery is at least once: a message whose acknowledgement was lost
/// comes again. A real consumer records the ids in the same transaction as its own writes;
/// this keeps the last 100,000 in memory.
struct Seen {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Seen {
    const LIMIT: usize = 100_000;

    /// `true` the first time `id` is seen.
    fn first(&mut self, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.order.push_back(id.to_owned());
        if self.order.len() > Self::LIMIT
            && let Some(oldest) = self.order.pop_front()
        {
            self.ids.remove(&oldest);
        }
        true
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), async_nats::Error> {
    let mut args = std::env::args().skip(1);
    let url = args
        .next()
        .unwrap_or_else(|| "nats://127.0.0.1:4222".into());
    let name = args.next().unwrap_or_else(|| "warehouse".into());
    let stream = args.next().unwrap_or_else(|| "ORDERLY_EVENTS".into());
    let jetstream = jetstream::new(async_nats::connect(url).await?);
    let stream = jetstream.get_stream(stream).await?;
    let consumer: jetstream::consumer::PullConsumer = stream
        .get_or_create_consumer(
            &name,
            pull::Config {
                durable_name: Some(name.clone()),
                // Only what this consumer needs: here every order event.
                filter_subject: "orderly.order.>".into(),
                ack_policy: AckPolicy::Explicit,
                ..Default::default()
            },
        )
        .await?;
    let mut seen = Seen {
        ids: HashSet::new(),
        order: VecDeque::new(),
    };
    let mut messages = consumer.messages().await?;
    while let Some(message) = messages.next().await {
        let message = message?;
        let event: serde_json::Value = serde_json::from_slice(&message.payload)?;
        let id = event["id"].as_str().unwrap_or_default();
        if seen.first(id) {
            // Handle it: one order's events arrive in the order they happened.
            println!(
                "{} {} order {} at {}",
                event["position"], event["type"], event["subject_id"], event["occurred_at"]
            );
        }
        message.ack().await?;
    }
    Ok(())
}
