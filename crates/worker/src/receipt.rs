//! `send_receipt`: the order confirmation e-mail, in plain text and HTML.
//!
//! The `Message-ID` is derived from the order id, so a receipt sent twice (the job ran again
//! after a crash) is recognisably the same message; in outbox mode it overwrites its file.

use lettre::message::header::ContentType;
use lettre::message::{Mailbox, MultiPart, SinglePart};
use lettre::{Address, Message};
use orderly_domain::{Email, Order, OrderId, format_money as money, receipt_message_id};
use orderly_queue::kinds::{self, OrderArgs};
use orderly_queue::{BoxFuture, Handler, Job, JobError};
use orderly_storage::Store;
use tokio_util::sync::CancellationToken;

use crate::coalesce::Coalescer;
use crate::mail::Mailer;

/// The most orders one statement reads, or marks as sent, for receipts running at once.
const MAX_BATCH: usize = 64;

/// Sends an order's receipt and records when it went out. Receipts running at the same time
/// share their reads of the orders and their `receipt_sent_at` updates (see `coalesce`).
#[derive(Debug, Clone)]
pub struct ReceiptSender {
    mailer: Mailer,
    orders: Coalescer<OrderId, Option<Order>>,
    sent: Coalescer<OrderId, ()>,
}

impl ReceiptSender {
    /// The handler, with its batching tasks started on the current tokio runtime.
    pub fn new(store: Store, mailer: Mailer) -> Self {
        let reader = store.clone();
        let orders = Coalescer::start(MAX_BATCH, move |ids: Vec<OrderId>| {
            let store = reader.clone();
            async move { store.orders_by_ids(&ids).await }
        });
        let sent = Coalescer::start(MAX_BATCH, move |ids: Vec<OrderId>| {
            let store = store.clone();
            async move {
                store
                    .mark_receipts_sent(&ids, orderly_domain::now())
                    .await
                    .map(|()| vec![(); ids.len()])
            }
        });
        Self {
            mailer,
            orders,
            sent,
        }
    }
}

impl Handler<kinds::SendReceipt> for ReceiptSender {
    fn run<'a>(
        &'a self,
        args: OrderArgs,
        _job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let id = OrderId::from_uuid(args.order_id);
            tracing::Span::current().record("order_id", tracing::field::display(id));
            let order = self
                .orders
                .call(id)
                .await
                .map_err(|e| JobError::transient("loading the order", &e))?
                .ok_or_else(|| JobError::Permanent(format!("order {id} does not exist")))?;
            let message = receipt(&order, self.mailer.from())?;
            self.mailer
                .send(&message, &format!("receipt-{id}"), cancel)
                .await?;
            self.sent
                .call(id)
                .await
                .map_err(|e| JobError::transient("recording the receipt", &e))?;
            tracing::info!(order_id = %id, "receipt sent");
            Ok(())
        })
    }
}

/// The stable `Message-ID` of an order's receipt, on the sender's domain.
pub fn message_id(order: OrderId, from: &Mailbox) -> String {
    receipt_message_id(order, from.email.domain())
}

/// `text` safe inside HTML.
pub(crate) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The order's customer as a recipient. Addressed from the parts the domain's parser keeps:
/// the address was accepted when the order was placed only if these checks pass (an order
/// kept from before that parser may still fail them, and is not mailed).
pub(crate) fn customer(order: &Order) -> Result<Mailbox, JobError> {
    let unusable = |e: &dyn std::fmt::Display| {
        JobError::Permanent(format!("unusable recipient {}: {e}", order.email))
    };
    let email = Email::parse("customer.email", &order.email).map_err(|e| unusable(&e.message))?;
    let address = Address::new(email.local_part(), email.domain()).map_err(|e| unusable(&e))?;
    Ok(Mailbox::new(Some(order.name.clone()), address))
}

/// Builds the receipt message for `order`.
pub fn receipt(order: &Order, from: &Mailbox) -> Result<Message, JobError> {
    let to = customer(order)?;
    let mut text = format!(
        "Thank you for your order, {}.\n\nOrder {}\n\n",
        order.name, order.id
    );
    let mut rows = String::new();
    for line in &order.lines {
        text.push_str(&format!(
            "{} x {} ({})  {} each  {}\n",
            line.quantity,
            line.name,
            line.sku,
            money(line.unit_price, &order.currency),
            money(line.line_total, &order.currency)
        ));
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{} <small>({})</small></td><td>{}</td><td>{}</td></tr>",
            line.quantity,
            escape(&line.name),
            escape(&line.sku),
            money(line.unit_price, &order.currency),
            money(line.line_total, &order.currency)
        ));
    }
    let total = money(order.total, &order.currency);
    text.push_str(&format!("\nTotal: {total}\n"));
    let html = format!(
        "<!doctype html><html><body><p>Thank you for your order, {}.</p>\
         <p>Order <code>{}</code></p><table>\
         <tr><th>Qty</th><th>Item</th><th>Each</th><th>Line total</th></tr>{rows}</table>\
         <p><strong>Total: {total}</strong></p></body></html>",
        escape(&order.name),
        order.id
    );
    let subject = format!("Your order {}", order.id);
    let id = message_id(order.id, from);
    customer_message(from, to, subject, id, text, html)
}

/// A mail to a customer with a plain-text and an HTML body, under a stable `Message-ID`.
pub(crate) fn customer_message(
    from: &Mailbox,
    to: Mailbox,
    subject: String,
    message_id: String,
    text: String,
    html: String,
) -> Result<Message, JobError> {
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(subject)
        .message_id(Some(message_id))
        .multipart(
            MultiPart::alternative()
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_PLAIN)
                        .body(text),
                )
                .singlepart(
                    SinglePart::builder()
                        .header(ContentType::TEXT_HTML)
                        .body(html),
                ),
        )
        .map_err(|e| JobError::permanent("building the mail", &e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use orderly_domain::{OrderLine, OrderStatus, ProductId};

    fn order() -> Order {
        let now = orderly_domain::now();
        Order {
            id: OrderId::generate(),
            status: OrderStatus::Pending,
            email: "ana@example.com".into(),
            name: "Ana <script>".into(),
            note: None,
            currency: "EUR".into(),
            total: 2_997,
            captured: 0,
            refunded: 0,
            version: 1,
            lines: vec![OrderLine::placed(
                ProductId::generate(),
                "MUG".into(),
                "Mug & saucer".into(),
                999,
                3,
                2_997,
            )],
            created_by: uuid::Uuid::now_v7(),
            receipt_sent_at: None,
            created_at: now,
            updated_at: now,
            returns: None,
        }
    }

    /// Every address the order's parser accepts, the mailer takes; the addresses it refuses
    /// are ones the mailer would have refused too (the receipt job was discarded).
    #[test]
    fn the_order_parser_and_the_mailer_agree_on_addresses() {
        let from: Mailbox = "Shop <orders@shop.example>".parse().unwrap();
        for address in [
            "ana@example.com",
            "o'brien+x@mail.example.co.uk",
            "ana@bücher.example",
            "a.b-c_d@e-f.example",
        ] {
            assert!(Email::parse("e", address).is_ok(), "{address}");
            let order = Order {
                email: address.into(),
                ..order()
            };
            assert!(receipt(&order, &from).is_ok(), "{address}");
        }
        for address in [
            "a,b@example.com",
            "a(c)@example.com",
            "x@evil.example,y@example.com",
            "javascript:alert(1)//@example.com",
        ] {
            assert!(Email::parse("e", address).is_err(), "{address}");
            assert!(address.parse::<Address>().is_err(), "{address}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        #[test]
        fn no_address_the_order_parser_accepts_is_refused_by_the_mailer(
            address in "[a-z0-9.,;:()<>\\[\\]@!#$%&'*+/=?^_`{|}~\"ü -]{1,24}@[a-z0-9.ü\\[\\]-]{1,12}"
        ) {
            if let Ok(email) = Email::parse("e", &address) {
                proptest::prop_assert!(Address::new(email.local_part(), email.domain()).is_ok());
                proptest::prop_assert!(email.as_str().parse::<Address>().is_ok());
            }
        }
    }

    #[test]
    fn the_receipt_has_both_parts_the_totals_and_a_stable_message_id() {
        let order = order();
        let from: Mailbox = "Shop <orders@shop.example>".parse().unwrap();
        let message = String::from_utf8(receipt(&order, &from).unwrap().formatted()).unwrap();
        assert!(message.contains(&format!("Message-ID: <receipt-{}@shop.example>", order.id)));
        assert!(message.contains("text/plain") && message.contains("text/html"));
        assert!(message.contains("29.97 EUR"));
        assert!(message.contains("Mug &amp; saucer"), "HTML is escaped");
        assert!(
            message.contains("Ana &lt;script&gt;"),
            "names cannot inject markup"
        );
        let to = message.lines().find(|l| l.starts_with("To:")).unwrap();
        assert!(
            !to.contains("<script>"),
            "names cannot break the To header: {to}"
        );
        assert_eq!(
            receipt(&order, &from)
                .unwrap()
                .headers()
                .get_raw("Message-ID"),
            Some(message_id(order.id, &from).as_str())
        );
    }
}
