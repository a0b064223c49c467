//! `orderly bench ceiling`: the order transaction orderly runs, driven directly against the
//! database with one transaction per order and no HTTP, JSON or authentication: the ceiling
//! the HTTP figure is compared with.

use std::sync::Arc;
use std::time::{Duration, Instant};

use orderly_domain::{
    Currency, CustomerName, Description, Email, NewOrder, NewOrderLine, NewProduct, OrderId, Price,
    ProductName, ProductRef, Quantity, Role, Sku, Stock,
};
use orderly_storage::{CreateOrder, CreateOutcome, NewApiKey, OrderSettings, Store, StoreOptions};

use super::{Report, Tally, XorShift};
use crate::cli::CeilingArgs;
use crate::config::Config;

pub async fn run(args: CeilingArgs, config: &Config) -> anyhow::Result<Report> {
    let url = args
        .database_url
        .unwrap_or_else(|| config.database.url.expose().to_owned());
    let store = Store::connect(
        &url,
        &StoreOptions {
            max_connections: args.concurrency as u32,
            ..StoreOptions::default()
        },
    )
    .await?;
    store.migrate().await?;
    let (key, _) = store
        .create_api_key(&NewApiKey {
            name: "bench ceiling".into(),
            role: Role::Storefront,
        })
        .await?;
    let currency = config.currency();
    let skus = products(&store, args.products, currency).await?;
    eprintln!(
        "running the order transaction directly on {} from {} tasks for {} s",
        store.kind().as_str(),
        args.concurrency,
        args.duration
    );
    let skus = Arc::new(skus);
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut workers = Vec::new();
    for worker in 0..args.concurrency {
        let (store, skus) = (store.clone(), skus.clone());
        let lines = args.lines;
        workers.push(tokio::spawn(async move {
            let settings = OrderSettings {
                idempotency_ttl: time::Duration::hours(24),
                write_timeout: Duration::from_secs(30),
            };
            let mut rng = XorShift::new(worker as u64 + 1);
            let mut tally = Tally::default();
            while Instant::now() < deadline {
                let request = order(&mut rng, &skus, lines, key.id, currency);
                let sent = Instant::now();
                let ok = matches!(
                    store
                        .create_orders(std::slice::from_ref(&request), &settings)
                        .await
                        .as_deref(),
                    Ok([CreateOutcome::Created(_)])
                );
                tally.record(ok, sent.elapsed());
            }
            tally
        }));
    }
    let mut total = Tally::default();
    for worker in workers {
        total.merge(&worker.await?);
    }
    let report = total.report(
        "order transaction, direct",
        args.concurrency,
        started.elapsed(),
    );
    store.close().await;
    Ok(report)
}

fn order(
    rng: &mut XorShift,
    skus: &[Sku],
    lines: usize,
    api_key: uuid::Uuid,
    currency: Currency,
) -> CreateOrder {
    let first = rng.below(skus.len());
    let lines = (0..lines)
        .map(|i| NewOrderLine {
            product: ProductRef::Sku(skus[(first + i) % skus.len()].clone()),
            quantity: Quantity::parse("q", 1).unwrap_or_else(|_| unreachable!()),
        })
        .collect();
    let id = OrderId::generate();
    CreateOrder {
        id,
        api_key,
        actor: orderly_domain::Actor::new(orderly_domain::ActorKind::System, "bench", "bench"),
        idempotency_key: uuid::Uuid::new_v4().to_string(),
        fingerprint: uuid::Uuid::new_v4().as_bytes().to_vec(),
        order: NewOrder {
            email: Email::parse("email", "bench@example.com").unwrap_or_else(|_| unreachable!()),
            name: CustomerName::parse("name", "Bench").unwrap_or_else(|_| unreachable!()),
            lines,
            note: None,
        },
        currency: currency.as_str().to_owned(),
        trace_context: None,
        // As the placing use case does: the receipt job in the order's transaction.
        follow_up: vec![orderly_queue::kinds::SendReceipt::job(id.as_uuid())],
    }
}

/// `count` products of the currency `currency` with stock out of reach, for the run alone.
async fn products(store: &Store, count: usize, currency: Currency) -> anyhow::Result<Vec<Sku>> {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let mut skus = Vec::with_capacity(count);
    let by = orderly_storage::ProductWrite {
        actor: orderly_domain::Actor::cli(),
        trace: None,
    };
    for i in 0..count {
        let sku = Sku::parse("sku", &format!("CEIL-{}-{i}", &run[..8]))?;
        store
            .create_product(
                &NewProduct {
                    sku: sku.clone(),
                    name: ProductName::parse("name", &format!("Ceiling product {i}"))?,
                    description: Description::default(),
                    price: Price::parse("price", 1250)?,
                    currency,
                    stock: Stock::parse("stock", 1_000_000_000)?,
                    active: true,
                },
                &by,
            )
            .await?;
        skus.push(sku);
    }
    Ok(skus)
}
