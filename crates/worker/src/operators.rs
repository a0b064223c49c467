//! Mail to the operators (`mail.operators`): notices such as `endpoint.disabled`, sent as
//! `notify_operators` jobs, and the daily sales summary — both through the same mail path as
//! receipts, so they survive a mail outage the way a receipt does.

use lettre::Message;
use lettre::message::Mailbox;
use lettre::message::header::ContentType;
use orderly_domain::format_money as money;
use orderly_queue::kinds::{self, NoticeArgs, TickArgs};
use orderly_queue::{BoxFuture, Handler, Job, JobError, NewJob};
use orderly_storage::{SalesSummary, Store};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio_util::sync::CancellationToken;

use crate::mail::Mailer;

/// A notice for the operators; `key` makes it unique (queued twice, sent once) and names its
/// `Message-ID`.
pub fn notice_job(key: &str, subject: &str, text: &str) -> NewJob {
    NewJob::of::<kinds::NotifyOperators>(&NoticeArgs {
        key: key.to_owned(),
        subject: subject.to_owned(),
        text: text.to_owned(),
    })
    .unique(format!("notice:{key}"))
}

/// Sends operator notices.
#[derive(Debug, Clone)]
pub struct OperatorNotifier {
    pub mailer: Mailer,
    pub operators: Vec<Mailbox>,
}

impl Handler<kinds::NotifyOperators> for OperatorNotifier {
    fn run<'a>(
        &'a self,
        args: NoticeArgs,
        _job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            send_to_operators(
                &self.mailer,
                &self.operators,
                &args.key,
                &args.subject,
                &args.text,
                cancel,
            )
            .await
        })
    }
}

/// Mails a plain-text message to every operator. With none configured the message is only
/// logged: there is nobody to send it to, and retrying would not change that.
pub(crate) async fn send_to_operators(
    mailer: &Mailer,
    operators: &[Mailbox],
    key: &str,
    subject: &str,
    text: &str,
    cancel: &CancellationToken,
) -> Result<(), JobError> {
    if operators.is_empty() {
        tracing::warn!(%subject, "no operator addresses configured (mail.operators); notice not mailed");
        return Ok(());
    }
    let from = mailer.from();
    let mut builder = Message::builder()
        .from(from.clone())
        .subject(subject)
        .message_id(Some(format!("<{key}@{}>", from.email.domain())));
    for operator in operators {
        builder = builder.to(operator.clone());
    }
    let message = builder
        .header(ContentType::TEXT_PLAIN)
        .body(text.to_owned())
        .map_err(|e| JobError::permanent("building the message", &e))?;
    let file_name: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    mailer.send(&message, &file_name, cancel).await?;
    tracing::info!(%subject, recipients = operators.len(), "operator notice sent");
    Ok(())
}

/// `sales_summary`: the 24 hours before the schedule's tick (or before now, when queued by
/// hand), mailed to the operators. The tick names the message, so a run repeated after a
/// crash sends the same message again rather than a second one.
#[derive(Debug, Clone)]
pub struct SalesSummaryReporter {
    pub store: Store,
    pub mailer: Mailer,
    pub operators: Vec<Mailbox>,
    /// The store currency, for the amounts.
    pub currency: String,
    pub top_products: u32,
    pub low_stock: i64,
}

impl Handler<kinds::SalesSummary> for SalesSummaryReporter {
    fn run<'a>(
        &'a self,
        args: TickArgs,
        _job: &'a Job,
        cancel: &'a CancellationToken,
    ) -> BoxFuture<'a, Result<(), JobError>> {
        Box::pin(async move {
            let to = match args.tick.as_deref() {
                Some(tick) => OffsetDateTime::parse(tick, &Rfc3339)
                    .map_err(|e| JobError::Permanent(format!("args.tick {tick:?}: {e}")))?,
                None => orderly_domain::now(),
            };
            let from = to - time::Duration::DAY;
            let summary = self
                .store
                .sales_summary(from, to, self.top_products, self.low_stock)
                .await
                .map_err(|e| JobError::transient("reading the figures", &e))?;
            let key = format!("sales-summary-{}", to.unix_timestamp());
            let subject = format!(
                "Sales summary: {} orders, {} revenue",
                summary.orders,
                money(summary.revenue, &self.currency)
            );
            let text = summary_text(&summary, &self.currency);
            send_to_operators(&self.mailer, &self.operators, &key, &subject, &text, cancel).await
        })
    }
}

/// The summary as plain text.
fn summary_text(summary: &SalesSummary, currency: &str) -> String {
    let when = |t: OffsetDateTime| t.format(&Rfc3339).unwrap_or_default();
    let mut text = format!(
        "Sales from {} to {}\n\n\
         Orders placed: {}\n  paid or fulfilled: {} ({})\n  awaiting payment: {}\n  \
         cancelled or expired: {}\n\nRevenue (paid or fulfilled): {}\n",
        when(summary.from),
        when(summary.to),
        summary.orders,
        summary.paid,
        money(summary.revenue, currency),
        summary.pending,
        summary.lost,
        money(summary.revenue, currency),
    );
    text.push_str(&format!(
        "\nMoney in the window: captured {}, refunded {}, net {}\n",
        money(summary.captured, currency),
        money(summary.refunded, currency),
        money(summary.captured - summary.refunded, currency),
    ));
    text.push_str("\nTop products by units ordered:\n");
    if summary.top_products.is_empty() {
        text.push_str("  (no sales)\n");
    }
    for (rank, p) in summary.top_products.iter().enumerate() {
        text.push_str(&format!(
            "  {}. {} ({}): {} units, {}\n",
            rank + 1,
            p.name,
            p.sku,
            p.units,
            money(p.amount, currency)
        ));
    }
    text.push_str("\nLow stock:\n");
    if summary.low_stock.is_empty() {
        text.push_str("  (none)\n");
    }
    for p in &summary.low_stock {
        text.push_str(&format!("  {} ({}): {} left\n", p.name, p.sku, p.stock));
    }
    text
}
