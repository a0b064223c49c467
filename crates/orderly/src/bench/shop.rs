//! The shop a benchmark sets up through the API before it measures: an admin key, a product
//! with stock for any run, and orders of it placed from many clients at once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, bail};
use orderly_domain::Role;
use orderly_storage::{NewApiKey, Store};
use serde_json::json;

/// The API a benchmark talks to, with an admin key.
pub struct Shop {
    pub client: reqwest::Client,
    pub base: String,
    pub key: String,
}

impl Shop {
    /// The API served on `port` of this machine, with a new admin key named `name`.
    pub async fn open(store: &Store, port: u16, name: &str) -> anyhow::Result<Self> {
        let (_, key) = store
            .create_api_key(&NewApiKey {
                name: name.into(),
                role: Role::Admin,
            })
            .await?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            base: format!("http://127.0.0.1:{port}"),
            key,
        })
    }

    /// Creates the product `sku`, with stock for any run.
    pub async fn create_product(&self, sku: &str) -> anyhow::Result<()> {
        let product = self
            .client
            .post(format!("{}/v1/products", self.base))
            .bearer_auth(&self.key)
            .json(&json!({"sku": sku, "name": "Bench", "price": 100, "stock": 1_000_000_000}))
            .send()
            .await?;
        if !product.status().is_success() {
            bail!("creating the product: {}", product.text().await?);
        }
        Ok(())
    }

    /// Places `count` orders of one `sku` each, from `clients` clients at once.
    pub async fn place_orders(&self, sku: &str, count: u64, clients: usize) -> anyhow::Result<()> {
        let next = Arc::new(AtomicU64::new(0));
        let mut placing = Vec::new();
        for _ in 0..clients.max(1) {
            let (client, base, key) = (self.client.clone(), self.base.clone(), self.key.clone());
            let (next, sku) = (next.clone(), sku.to_owned());
            placing.push(tokio::spawn(async move {
                while next.fetch_add(1, Ordering::Relaxed) < count {
                    let placed = client
                        .post(format!("{base}/v1/orders"))
                        .bearer_auth(&key)
                        .header("idempotency-key", uuid::Uuid::new_v4().to_string())
                        .json(&json!({
                            "customer": {"email": "bench@example.com", "name": "Bench"},
                            "lines": [{"sku": sku, "quantity": 1}],
                        }))
                        .send()
                        .await?;
                    if placed.status() != reqwest::StatusCode::CREATED {
                        bail!("placing an order: {}", placed.text().await?);
                    }
                }
                Ok(())
            }));
        }
        for placing in placing {
            placing.await.context("an order client panicked")??;
        }
        Ok(())
    }
}
