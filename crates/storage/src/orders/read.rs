//! Reading orders back: one by id, a page by filter, many by ids, each with its lines (read
//! for all the orders at once in one statement).

use orderly_domain::{Order, OrderId, OrderLine, ProductId};
use sqlx::{ColumnIndex, Decode, FromRow, Row, Type};
use time::OffsetDateTime;
use uuid::Uuid;

use super::OrderFilter;
use super::returns::ReturnSql as _;
use crate::{Store, StoreError, with_pool};

const ORDER_BY_ID: &str = "SELECT id, status, email, name, note, currency, total, captured, \
                           refunded, version, created_by, receipt_sent_at, created_at, \
                           updated_at FROM orders WHERE id = $1";

/// Followed by the page's conditions (`list_orders`).
const LIST_ORDERS: &str = "SELECT id, status, email, name, note, currency, total, captured, \
                           refunded, version, created_by, receipt_sent_at, created_at, \
                           updated_at FROM orders WHERE id > ";

/// Followed by the id list (`push_id_list`).
const ORDERS_BY_IDS: &str = "SELECT id, status, email, name, note, currency, total, captured, \
                             refunded, version, created_by, receipt_sent_at, created_at, \
                             updated_at FROM orders WHERE id IN ";

/// Followed by the id list (`push_id_list`) and the ordering.
const LINES_OF_ORDERS: &str = "SELECT order_id, product_id, sku, name, unit_price, quantity, \
                               line_total, cancelled, shipped, refunded, return_requested, returned, \
                               restocked FROM order_lines \
                               WHERE order_id IN ";

/// Appends `(…)` with one bound parameter per id: the same text on both backends (SQLite has
/// no arrays). Its statements run unprepared (`persistent(false)`): one per batch size would
/// fill each connection's statement cache, and a plan cached while the table was small
/// (a sequential scan) would outlive the table's growth until the next `ANALYZE`.
pub(super) fn push_id_list<DB>(query: &mut sqlx::QueryBuilder<DB>, ids: impl Iterator<Item = Uuid>)
where
    DB: sqlx::Database,
    for<'t> Uuid: sqlx::Encode<'t, DB> + Type<DB>,
{
    query.push("(");
    let mut list = query.separated(", ");
    for id in ids {
        list.push_bind(id);
    }
    list.push_unseparated(")");
}

pub(super) struct OrderRow(pub(super) Order);

impl<'r, R> FromRow<'r, R> for OrderRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
    OffsetDateTime: Decode<'r, R::Database> + Type<R::Database>,
    Option<OffsetDateTime>: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        let status: String = row.try_get("status")?;
        Ok(Self(Order {
            id: OrderId::from_uuid(row.try_get("id")?),
            status: status
                .parse()
                .map_err(|e: String| sqlx::Error::Decode(e.into()))?,
            email: row.try_get("email")?,
            name: row.try_get("name")?,
            note: row.try_get("note")?,
            currency: row.try_get("currency")?,
            total: row.try_get("total")?,
            captured: row.try_get("captured")?,
            refunded: row.try_get("refunded")?,
            version: row.try_get("version")?,
            lines: Vec::new(),
            created_by: row.try_get("created_by")?,
            receipt_sent_at: row.try_get("receipt_sent_at")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            returns: None,
        }))
    }
}

/// A line with the id of its order, for reads of many orders' lines at once.
pub(super) struct LineRow(pub(super) Uuid, pub(super) OrderLine);

impl<'r, R> FromRow<'r, R> for LineRow
where
    R: Row,
    &'static str: ColumnIndex<R>,
    Uuid: Decode<'r, R::Database> + Type<R::Database>,
    String: Decode<'r, R::Database> + Type<R::Database>,
    i64: Decode<'r, R::Database> + Type<R::Database>,
{
    fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
        Ok(Self(
            row.try_get("order_id")?,
            OrderLine {
                product_id: ProductId::from_uuid(row.try_get("product_id")?),
                sku: row.try_get("sku")?,
                name: row.try_get("name")?,
                unit_price: row.try_get("unit_price")?,
                quantity: row.try_get("quantity")?,
                line_total: row.try_get("line_total")?,
                cancelled: row.try_get("cancelled")?,
                shipped: row.try_get("shipped")?,
                refunded: row.try_get("refunded")?,
                return_requested: row.try_get("return_requested")?,
                returned: row.try_get("returned")?,
                restocked: row.try_get("restocked")?,
            },
        ))
    }
}

impl Store {
    #[tracing::instrument(name = "db", skip_all, fields(op = "order_by_id"))]
    pub async fn order_by_id(&self, id: OrderId) -> Result<Option<Order>, StoreError> {
        let row = with_pool!(self, pool => sqlx::query_as::<_, OrderRow>(ORDER_BY_ID)
            .bind(id.as_uuid())
            .fetch_optional(pool)
            .await)?;
        match row {
            Some(OrderRow(order)) => {
                let mut found = [order];
                self.attach_lines(&mut found).await?;
                let [mut order] = found;
                let returns = with_pool!(self, pool => async {
                    let mut conn = pool.acquire().await?;
                    conn.order_returns(id.as_uuid()).await
                }.await)?;
                order.returns = Some(returns);
                Ok(Some(order))
            }
            None => Ok(None),
        }
    }

    /// One page of orders in creation order, with their lines.
    #[tracing::instrument(name = "db", skip_all, fields(op = "list_orders"))]
    pub async fn list_orders(&self, filter: &OrderFilter) -> Result<Vec<Order>, StoreError> {
        let after = filter.after.map_or(Uuid::nil(), |id| id.as_uuid());
        // The statement names only the filters given, so that each combination (eight at
        // most) is prepared and planned on its own and finds its index (orders_status_id,
        // orders_email_id, orders_created_by_id). One statement for all, with
        // `($2 IS NULL OR email = $2)`, gets a generic plan on PostgreSQL that walks the
        // primary key past every other customer's orders: seconds at millions of rows.
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(LIST_ORDERS);
            query.push_bind(after);
            if let Some(status) = filter.status {
                query.push(" AND status = ").push_bind(status.as_str());
            }
            if let Some(email) = filter.email.as_deref() {
                query.push(" AND email = ").push_bind(email);
            }
            if let Some(created_by) = filter.created_by {
                query.push(" AND created_by = ").push_bind(created_by);
            }
            query.push(" ORDER BY id LIMIT ").push_bind(i64::from(filter.limit.get()));
            query.build_query_as::<OrderRow>().fetch_all(pool).await
        })?;
        let mut orders: Vec<Order> = rows.into_iter().map(|OrderRow(order)| order).collect();
        self.attach_lines(&mut orders).await?;
        Ok(orders)
    }

    /// The orders with the given ids, with their lines, in two statements whatever their
    /// number: for callers that need many at once (a batch of receipts). Each id's order, or
    /// `None` where there is none, in the order of `ids`.
    #[tracing::instrument(name = "db", skip_all, fields(op = "orders_by_ids", count = ids.len()))]
    pub async fn orders_by_ids(&self, ids: &[OrderId]) -> Result<Vec<Option<Order>>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(ORDERS_BY_IDS);
            push_id_list(&mut query, ids.iter().map(|id| id.as_uuid()));
            query.build_query_as::<OrderRow>().persistent(false).fetch_all(pool).await
        })?;
        let mut found: Vec<Order> = rows.into_iter().map(|OrderRow(order)| order).collect();
        self.attach_lines(&mut found).await?;
        let mut by_id: std::collections::HashMap<OrderId, Order> =
            found.into_iter().map(|order| (order.id, order)).collect();
        Ok(ids.iter().map(|id| by_id.remove(id)).collect())
    }

    /// Reads the lines of every order in `orders` with one statement and puts them in place;
    /// an order a release before the lifecycle changed reads as it meant
    /// ([`Order::settle_legacy`]).
    async fn attach_lines(&self, orders: &mut [Order]) -> Result<(), StoreError> {
        if orders.is_empty() {
            return Ok(());
        }
        let rows = with_pool!(self, pool => {
            let mut query = sqlx::QueryBuilder::new(LINES_OF_ORDERS);
            push_id_list(&mut query, orders.iter().map(|order| order.id.as_uuid()));
            query.push(" ORDER BY order_id, line_no");
            query.build_query_as::<LineRow>().persistent(false).fetch_all(pool).await
        })?;
        let position: std::collections::HashMap<Uuid, usize> = orders
            .iter()
            .enumerate()
            .map(|(i, order)| (order.id.as_uuid(), i))
            .collect();
        for LineRow(order, line) in rows {
            if let Some(&i) = position.get(&order) {
                orders[i].lines.push(line);
            }
        }
        for order in orders {
            order.settle_legacy();
        }
        Ok(())
    }
}
