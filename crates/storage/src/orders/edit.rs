//! An edit of an order's lines before shipping, as the store prepares it: the new set of lines
//! matched against the order's, new products read at today's price, and every product whose
//! units change locked in id order, as placing orders locks them (taking one lock later, out
//! of that order, deadlocks against a placement), those that grow checked for stock, so that
//! the edit is refused as a whole — nothing written — when one cannot be satisfied. The
//! rule itself is the lifecycle's (`Ledger::edit`).

use std::future::Future;

use orderly_domain::{LineFigures, Order, OrderLine, ProductId, ProductRef};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use super::change::{ChangeOutcome, UnitsOf};

/// A product as an edit needs it.
#[derive(Debug, Clone)]
pub(crate) struct Offer {
    pub id: Uuid,
    pub sku: String,
    pub name: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub active: bool,
    pub archived: bool,
}

impl<'r, R> FromRow<'r, R> for Offer
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    bool: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self {
            id: row.try_get("id")?,
            sku: row.try_get("sku")?,
            name: row.try_get("name")?,
            price: row.try_get("price")?,
            currency: row.try_get("currency")?,
            stock: row.try_get("stock")?,
            active: row.try_get("active")?,
            archived: row.try_get("archived")?,
        })
    }
}

/// What an edit does to the order's lines.
#[derive(Debug)]
pub(crate) struct Plan {
    /// The units each of the order's lines keeps.
    pub kept: Vec<i64>,
    /// New lines, at today's prices.
    pub added: Vec<OrderLine>,
}

impl Plan {
    pub fn added_figures(&self) -> Vec<LineFigures> {
        self.added
            .iter()
            .map(|l| LineFigures::ordered(l.unit_price, l.quantity))
            .collect()
    }
}

/// The statements of an edit, on one connection inside an open write transaction.
pub(crate) trait EditSql {
    /// The product `product` names; with `lock`, its row locked until the transaction ends.
    fn offer(
        &mut self,
        product: &ProductRef,
        lock: bool,
    ) -> impl Future<Output = Result<Option<Offer>, sqlx::Error>> + Send;
    /// Takes `units` of the product's stock (checked beforehand, under its lock).
    fn reserve_stock(
        &mut self,
        product: ProductId,
        units: i64,
        at: OffsetDateTime,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
    fn insert_line(
        &mut self,
        order: Uuid,
        line_no: i32,
        line: &OrderLine,
    ) -> impl Future<Output = Result<(), sqlx::Error>> + Send;
}

macro_rules! offer_sql {
    ($column:literal, $lock:literal) => {
        concat!(
            "SELECT id, sku, name, price, currency, stock, active, \
             archived_at IS NOT NULL AS archived FROM products WHERE ",
            $column,
            " = $1",
            $lock
        )
    };
}

macro_rules! impl_edit_sql {
    ($connection:ty, $lock:literal) => {
        impl EditSql for $connection {
            async fn offer(
                &mut self,
                product: &ProductRef,
                lock: bool,
            ) -> Result<Option<Offer>, sqlx::Error> {
                let query = match (product, lock) {
                    (ProductRef::Id(_), true) => offer_sql!("id", $lock),
                    (ProductRef::Id(_), false) => offer_sql!("id", ""),
                    (ProductRef::Sku(_), true) => offer_sql!("sku", $lock),
                    (ProductRef::Sku(_), false) => offer_sql!("sku", ""),
                };
                let query = sqlx::query_as::<_, Offer>(query);
                match product {
                    ProductRef::Id(id) => query.bind(id.as_uuid()),
                    ProductRef::Sku(sku) => query.bind(sku.as_str().to_owned()),
                }
                .fetch_optional(&mut *self)
                .await
            }

            async fn reserve_stock(
                &mut self,
                product: ProductId,
                units: i64,
                at: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "UPDATE products SET stock = stock - $2, version = version + 1, \
                     updated_at = $3 WHERE id = $1",
                )
                .bind(product.as_uuid())
                .bind(units)
                .bind(orderly_db::Timestamp::new(at))
                .execute(&mut *self)
                .await
                .map(|_| ())
            }

            async fn insert_line(
                &mut self,
                order: Uuid,
                line_no: i32,
                line: &OrderLine,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(
                    "INSERT INTO order_lines (order_id, line_no, product_id, sku, name, \
                     unit_price, quantity, line_total) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(order)
                .bind(line_no)
                .bind(line.product_id.as_uuid())
                .bind(&line.sku)
                .bind(&line.name)
                .bind(line.unit_price)
                .bind(line.quantity)
                .bind(line.line_total)
                .execute(&mut *self)
                .await
                .map(|_| ())
            }
        }
    };
}

impl_edit_sql!(sqlx::SqliteConnection, "");
impl_edit_sql!(sqlx::PgConnection, " FOR UPDATE");

/// Matches `lines` (the new full set) against `order`'s, reads new products and checks the
/// stock of every product whose units grow; the outcome to answer with when the edit cannot
/// be made.
pub(crate) async fn plan<C: EditSql>(
    conn: &mut C,
    order: &Order,
    lines: &[UnitsOf],
) -> Result<Result<Plan, ChangeOutcome>, sqlx::Error> {
    let mut kept = vec![0; order.lines.len()];
    let mut added = Vec::new();
    // (product, units more than now (fewer when negative), index of the request's line)
    let mut touched: Vec<(ProductId, i64, usize)> = Vec::new();
    for (index, wanted) in lines.iter().enumerate() {
        let held = order.lines.iter().position(|line| match &wanted.product {
            ProductRef::Sku(sku) => line.sku == sku.as_str(),
            ProductRef::Id(id) => line.product_id == *id,
        });
        if let Some(i) = held {
            kept[i] = wanted.quantity;
            continue;
        }
        let Some(offer) = conn.offer(&wanted.product, false).await? else {
            return Ok(Err(ChangeOutcome::NotOrderable { index }));
        };
        let Some(line_total) = offer.price.checked_mul(wanted.quantity) else {
            return Ok(Err(ChangeOutcome::NotOrderable { index }));
        };
        let id = ProductId::from_uuid(offer.id);
        touched.push((id, wanted.quantity, index));
        added.push(OrderLine::placed(
            id,
            offer.sku,
            offer.name,
            offer.price,
            wanted.quantity,
            line_total,
        ));
    }
    for (i, line) in order.lines.iter().enumerate() {
        let more = kept[i] - (line.quantity - line.cancelled);
        if more != 0 {
            // The request's line naming it, for the answer; a dropped line is named by none.
            let index = lines
                .iter()
                .position(|w| match &w.product {
                    ProductRef::Sku(sku) => line.sku == sku.as_str(),
                    ProductRef::Id(id) => line.product_id == *id,
                })
                .unwrap_or(0);
            touched.push((line.product_id, more, index));
        }
    }
    touched.sort_by_key(|(product, _, _)| *product);
    for (product, more, index) in touched {
        let offer = conn.offer(&ProductRef::Id(product), true).await?;
        if more <= 0 {
            continue;
        }
        match offer {
            Some(o) if o.active && !o.archived && o.currency == order.currency => {
                if o.stock < more {
                    return Ok(Err(ChangeOutcome::OutOfStock {
                        index,
                        available: o.stock,
                    }));
                }
            }
            _ => return Ok(Err(ChangeOutcome::NotOrderable { index })),
        }
    }
    Ok(Ok(Plan { kept, added }))
}
