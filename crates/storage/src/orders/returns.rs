//! Returns in the store: the `order_returns` rows (read with the order, inserted when a return
//! is requested, completed when it is received) and what a return request or receipt records
//! and announces. The rules are the lifecycle's (`orderly_domain::lifecycle::returns`).

use std::future::Future;

use orderly_domain::{Order, OrderReturn, ProductId, ReceivedUnits, ReturnLine, ReturnStatus};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sqlx::types::Json;
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use super::change_sql::ChangeRow;

/// A return line as the `lines` column keeps it.
#[derive(Serialize, Deserialize)]
struct StoredLine {
    line_no: usize,
    sku: String,
    product_id: Uuid,
    quantity: i64,
    received: Option<i64>,
    restock: Option<bool>,
}

fn stored(lines: &[ReturnLine]) -> Vec<StoredLine> {
    lines
        .iter()
        .map(|l| StoredLine {
            line_no: l.line + 1,
            sku: l.sku.clone(),
            product_id: l.product_id.as_uuid(),
            quantity: l.quantity,
            received: l.received,
            restock: l.restock,
        })
        .collect()
}

struct ReturnRow(OrderReturn);

impl<'r, R> FromRow<'r, R> for ReturnRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    Json<Vec<StoredLine>>: Decode<'r, R::Database> + Type<R::Database>,
    OffsetDateTime: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        let Json(lines): Json<Vec<StoredLine>> = row.try_get("lines")?;
        Ok(Self(OrderReturn {
            id: row.try_get("id")?,
            status: ReturnStatus::parse(&status)
                .ok_or_else(|| sqlx::Error::Decode(format!("return status {status}").into()))?,
            reason: row.try_get("reason")?,
            lines: lines
                .into_iter()
                .map(|l| ReturnLine {
                    line: l.line_no.saturating_sub(1),
                    sku: l.sku,
                    product_id: ProductId::from_uuid(l.product_id),
                    quantity: l.quantity,
                    received: l.received,
                    restock: l.restock,
                })
                .collect(),
            refund_id: row.try_get("refund_id")?,
            created_at: row.try_get("created_at")?,
            received_at: row.try_get("received_at")?,
        }))
    }
}

const OF_ORDER: &str = "SELECT id, status, reason, lines, refund_id, created_at, received_at \
                        FROM order_returns WHERE order_id = $1 ORDER BY id";

/// The statements of returns, on one connection.
pub(crate) trait ReturnSql {
    /// The order's returns, oldest first.
    fn order_returns(
        &mut self,
        order: Uuid,
    ) -> impl Future<Output = Result<Vec<OrderReturn>, sqlx::Error>> + Send;
    fn insert_return(
        &mut self,
        row: &ChangeRow<'_>,
        ret: &OrderReturn,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    /// Records the return as received by `row`'s actor, with the units that came back.
    fn receive_return(
        &mut self,
        row: &ChangeRow<'_>,
        ret: &OrderReturn,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

macro_rules! impl_return_sql {
    ($connection:ty) => {
        impl ReturnSql for $connection {
            async fn order_returns(
                &mut self,
                order: Uuid,
            ) -> Result<Vec<OrderReturn>, sqlx::Error> {
                let rows: Vec<ReturnRow> = sqlx::query_as(OF_ORDER)
                    .bind(order)
                    .fetch_all(&mut *self)
                    .await?;
                Ok(rows.into_iter().map(|r| r.0).collect())
            }

            async fn insert_return(
                &mut self,
                row: &ChangeRow<'_>,
                ret: &OrderReturn,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO order_returns (id, order_id, status, reason, lines, actor, \
                     created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(ret.id)
                .bind(row.order)
                .bind(ret.status.as_str())
                .bind(ret.reason.as_deref())
                .bind(Json(stored(&ret.lines)))
                .bind(Json(row.actor))
                .bind(orderly_db::Timestamp::new(row.at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn receive_return(
                &mut self,
                row: &ChangeRow<'_>,
                ret: &OrderReturn,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE order_returns SET status = $2, lines = $3, refund_id = $4, \
                     received_by = $5, received_at = $6 WHERE id = $1",
                )
                .bind(ret.id)
                .bind(ret.status.as_str())
                .bind(Json(stored(&ret.lines)))
                .bind(ret.refund_id)
                .bind(Json(row.actor))
                .bind(orderly_db::Timestamp::new(row.at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }
        }
    };
}

impl_return_sql!(sqlx::SqliteConnection);
impl_return_sql!(sqlx::PgConnection);

/// A new return of `units` (line index, units) of `order`, as requested now.
pub(crate) fn requested(
    order: &Order,
    id: Uuid,
    units: &[orderly_domain::LineUnits],
    reason: Option<String>,
    at: OffsetDateTime,
) -> OrderReturn {
    OrderReturn {
        id,
        status: ReturnStatus::Requested,
        reason,
        lines: units
            .iter()
            .map(|u| {
                let line = &order.lines[u.line];
                ReturnLine {
                    line: u.line,
                    sku: line.sku.clone(),
                    product_id: line.product_id,
                    quantity: u.units,
                    received: None,
                    restock: None,
                }
            })
            .collect(),
        refund_id: None,
        created_at: at,
        received_at: None,
    }
}

/// `ret` as received now: the units that came back per line (none for a line not named),
/// and the refund recorded with it.
pub(crate) fn received(
    ret: &mut OrderReturn,
    units: &[ReceivedUnits],
    refund_id: Option<Uuid>,
    at: OffsetDateTime,
) {
    for line in &mut ret.lines {
        let got = units.iter().find(|u| u.line == line.line);
        line.received = Some(got.map_or(0, |u| u.units));
        line.restock = Some(got.is_some_and(|u| u.restock));
    }
    ret.status = ReturnStatus::Received;
    ret.refund_id = refund_id;
    ret.received_at = Some(at);
}

/// A return as its events carry it.
pub(crate) fn return_json(ret: &OrderReturn) -> Value {
    json!({
        "return_id": ret.id,
        "status": ret.status.as_str(),
        "reason": ret.reason,
        "lines": ret.lines.iter().map(|l| json!({
            "sku": l.sku,
            "product_id": l.product_id.as_uuid(),
            "quantity": l.quantity,
            "received": l.received,
            "restock": l.restock,
        })).collect::<Vec<_>>(),
        "refund_id": ret.refund_id,
    })
}
