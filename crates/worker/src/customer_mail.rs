//! `notify_customer`: one e-mail to the customer per change to their order that they should
//! hear of — a shipment (with its tracking), units cancelled, a refund — through the same
//! mailer as the receipt. The job carries the change's event, so the mail says what that
//! change did, whatever happened to the order since; its `Message-ID` is derived from the
//! event, so a mail sent twice is recognisably one.

use lettre::Message;
use lettre::message::Mailbox;
use orderly_domain::{Order, OrderId, format_money as money, order_update_message_id};
use orderly_queue::kinds::{self, CustomerNoticeArgs};
use orderly_queue::{BoxFuture, Handler, Job, JobError};
use orderly_storage::Store;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::mail::Mailer;
use crate::receipt::{customer, customer_message, escape};

/// Mails the customer about one change to their order.
#[derive(Debug, Clone)]
pub struct CustomerNotifier {
    pub store: Store,
    pub mailer: Mailer,
}

impl Handler<kinds::NotifyCustomer> for CustomerNotifier {
    fn run<'a>(
        &'a self,
        args: CustomerNoticeArgs,
        _job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let id = OrderId::from_uuid(args.order_id);
            tracing::Span::current().record("order_id", tracing::field::display(id));
            let order = self
                .store
                .order_by_id(id)
                .await
                .map_err(|e| JobError::transient("loading the order", &e))?
                .ok_or_else(|| JobError::Permanent(format!("order {id} does not exist")))?;
            let message = notice(&order, &args, self.mailer.from())?;
            let name = format!("update-{}", args.event_id);
            self.mailer.send(&message, &name, cancel).await?;
            tracing::info!(order_id = %id, event = %args.kind, "customer told of a change");
            Ok(())
        })
    }
}

/// The mail about `args`' change to `order`, from `from`.
pub fn notice(
    order: &Order,
    args: &CustomerNoticeArgs,
    from: &Mailbox,
) -> Result<Message, JobError> {
    let to = customer(order)?;
    let (subject, lines) = content(order, &args.kind, &args.data)
        .ok_or_else(|| JobError::Permanent(format!("no mail for {}", args.kind)))?;
    let text = format!(
        "Hello {},\n\n{}\n\nOrder {}\n",
        order.name,
        lines.join("\n"),
        order.id
    );
    let html = format!(
        "<!doctype html><html><body><p>Hello {},</p>{}<p>Order <code>{}</code></p></body></html>",
        escape(&order.name),
        lines
            .iter()
            .map(|line| format!("<p>{}</p>", escape(line)))
            .collect::<String>(),
        order.id
    );
    let id = order_update_message_id(args.event_id, from.email.domain());
    customer_message(from, to, subject, id, text, html)
}

/// The subject and the lines of text of the mail about event `kind` with `data`.
fn content(order: &Order, kind: &str, data: &Value) -> Option<(String, Vec<String>)> {
    let units = |data: &Value| -> Vec<String> {
        data["lines"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|l| {
                let sku = l["sku"].as_str().unwrap_or("?");
                let name = order
                    .lines
                    .iter()
                    .find(|line| line.sku == sku)
                    .map_or(sku, |line| line.name.as_str());
                format!("{} x {name} ({sku})", l["quantity"].as_i64().unwrap_or(0))
            })
            .collect()
    };
    let amount = |field: &str| money(data[field].as_i64().unwrap_or(0), &order.currency);
    Some(match kind {
        "order.fulfillment_created" => {
            let mut lines = vec!["These items of your order are on their way:".to_owned()];
            lines.extend(units(data));
            let tracking = &data["tracking"];
            for (label, field) in [
                ("Carrier", "carrier"),
                ("Tracking number", "number"),
                ("Track it at", "url"),
            ] {
                if let Some(value) = tracking[field].as_str() {
                    lines.push(format!("{label}: {value}"));
                }
            }
            (format!("Your order {} has shipped", order.id), lines)
        }
        "order.units_cancelled" => {
            let mut lines = vec!["These items of your order were cancelled:".to_owned()];
            lines.extend(units(data));
            lines.push(format!("Your order's total is now {}.", amount("total")));
            if data["refund_owed"].as_i64().unwrap_or(0) > 0 {
                lines.push(format!(
                    "We owe you {}; a refund follows.",
                    amount("refund_owed")
                ));
            }
            (
                format!("Items cancelled from your order {}", order.id),
                lines,
            )
        }
        "order.refunded" => {
            let mut lines = vec![format!("We have refunded {} to you.", amount("amount"))];
            if let Some(reason) = data["reason"].as_str() {
                lines.push(format!("Reason: {reason}"));
            }
            (format!("A refund for your order {}", order.id), lines)
        }
        _ => return later_changes(order, kind, data, &units, &amount),
    })
}

/// The mail about a return received or an edit of the lines.
fn later_changes(
    order: &Order,
    kind: &str,
    data: &Value,
    units: &dyn Fn(&Value) -> Vec<String>,
    amount: &dyn Fn(&str) -> String,
) -> Option<(String, Vec<String>)> {
    Some(match kind {
        "order.edited" => {
            let mut lines = vec!["Your order now holds:".to_owned()];
            let kept: Vec<serde_json::Value> = data["lines_after"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| l["quantity"].as_i64().unwrap_or(0) > 0)
                .cloned()
                .collect();
            lines.extend(units(&serde_json::json!({"lines": kept})));
            lines.push(format!("Its total is now {}.", amount("total")));
            if data["balance_due"].as_i64().unwrap_or(0) > 0 {
                lines.push(format!("{} is still to be paid.", amount("balance_due")));
            }
            if data["refund_owed"].as_i64().unwrap_or(0) > 0 {
                lines.push(format!(
                    "We owe you {}; a refund follows.",
                    amount("refund_owed")
                ));
            }
            (format!("Your order {} has changed", order.id), lines)
        }
        "order.return_received" => {
            let mut lines = vec!["We have received these items you sent back:".to_owned()];
            let came_back: Vec<serde_json::Value> = data["lines"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|l| l["received"].as_i64().unwrap_or(0) > 0)
                .map(|l| serde_json::json!({"sku": l["sku"], "quantity": l["received"]}))
                .collect();
            lines.extend(units(&serde_json::json!({"lines": came_back})));
            if data["refund_id"].is_string() {
                lines.push("Your refund follows in a separate message.".to_owned());
            }
            (format!("Your return for order {}", order.id), lines)
        }
        _ => return None,
    })
}
