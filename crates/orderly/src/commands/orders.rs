//! `orderly orders pay|ship`: a capture or a shipment recorded from the shell. The arguments
//! become the API's body and are read by the API's own rules (`ChangeRoute::parse`), then the
//! service layer changes the order as it does for a request; the actor is `cli`.

use anyhow::{Context, bail};
use orderly_domain::{Actor, OrderId};
use orderly_http::ChangeRoute;
use orderly_service::{ChangeOutcome, ChangeRequest, Services};
use serde_json::{Map, Value, json};

use crate::app;
use crate::cli::OrdersCommand;
use crate::config::Config;

pub async fn run(command: OrdersCommand, config: &Config) -> anyhow::Result<()> {
    let (id, route, body) = api_body(command)?;
    let order: OrderId = id
        .parse()
        .with_context(|| format!("{id:?} is not an order id"))?;
    let change = route
        .parse(body, config.currency())
        .map_err(|errors| anyhow::anyhow!("{errors}"))?;
    let store = app::open_store(config, "orderly orders").await?;
    store
        .migrate()
        .await
        .context("cannot migrate the database")?;
    let services = Services::new(store.clone(), None, config.service_settings());
    let request = ChangeRequest {
        order,
        change,
        actor: Actor::cli(),
        expected_version: None,
        key: None,
        trace: None,
    };
    let outcome = services.change_order(&request).await;
    store.close().await;
    match outcome? {
        ChangeOutcome::Done(order) | ChangeOutcome::RecordedBefore(Some(order)) => {
            let ledger = order.ledger();
            println!(
                "order {}: {}, payment {}, fulfillment {}, captured {}, balance due {}",
                order.id,
                order.status,
                ledger.payment_status(),
                ledger.fulfillment_status(),
                orderly_domain::format_money(order.captured, &order.currency),
                orderly_domain::format_money(ledger.balance_due(), &order.currency),
            );
            Ok(())
        }
        ChangeOutcome::NotFound => bail!("no order {order}"),
        ChangeOutcome::Refused { reason, .. } => bail!("refused: {reason}"),
        ChangeOutcome::UnknownLine { index } => {
            bail!("line {} names a product the order does not hold", index + 1)
        }
        ChangeOutcome::RecordedBefore(None) => {
            bail!("this reference was recorded for another order")
        }
        other => bail!("not recorded: {other:?}"),
    }
}

/// The order's id, the route and the API's body for `command`.
fn api_body(command: OrdersCommand) -> anyhow::Result<(String, ChangeRoute, Value)> {
    Ok(match command {
        OrdersCommand::Pay {
            id,
            amount,
            provider,
            reference,
        } => {
            let minor = orderly_domain::parse_money(&amount)
                .with_context(|| format!("{amount:?} is not an amount such as 12.50"))?;
            let body = json!({"amount": minor, "provider": provider, "reference": reference});
            (id, ChangeRoute::Payments, body)
        }
        OrdersCommand::Ship {
            id,
            lines,
            carrier,
            number,
            url,
        } => {
            let mut shipped = Vec::with_capacity(lines.len());
            for line in &lines {
                let Some((sku, units)) = line.split_once('=') else {
                    bail!("{line:?} is not SKU=UNITS");
                };
                let units: i64 = units.parse().with_context(|| format!("{line:?}: units"))?;
                shipped.push(json!({"sku": sku, "quantity": units}));
            }
            let tracking: Map<String, Value> =
                [("carrier", carrier), ("number", number), ("url", url)]
                    .into_iter()
                    .filter_map(|(name, value)| Some((name.to_owned(), Value::String(value?))))
                    .collect();
            let mut body = json!({"lines": shipped});
            if !tracking.is_empty() {
                body["tracking"] = Value::Object(tracking);
            }
            (id, ChangeRoute::Fulfillments, body)
        }
    })
}
