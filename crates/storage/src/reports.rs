//! Figures for the operators' reports: the sales of a time window, its best sellers, and the
//! products running low.

use orderly_db::Timestamp;
use time::OffsetDateTime;

use crate::{Store, StoreError, with_pool};

/// Sales of orders placed in `[from, to)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SalesSummary {
    pub from: OffsetDateTime,
    pub to: OffsetDateTime,
    /// Every order placed in the window.
    pub orders: i64,
    /// Of those, how many are paid or fulfilled, and their total in minor units.
    pub paid: i64,
    pub revenue: i64,
    /// Still waiting for payment.
    pub pending: i64,
    /// Cancelled or expired.
    pub lost: i64,
    /// Money captured and refunded in the window (whenever its orders were placed), in minor
    /// units; net revenue is their difference.
    pub captured: i64,
    pub refunded: i64,
    /// Best sellers by units ordered (cancelled and expired orders left out).
    pub top_products: Vec<ProductSales>,
    /// Active products with stock at or below the threshold, lowest first.
    pub low_stock: Vec<LowStock>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductSales {
    pub sku: String,
    pub name: String,
    pub units: i64,
    pub amount: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LowStock {
    pub sku: String,
    pub name: String,
    pub stock: i64,
}

/// Orders placed in `[$1, $2)`: all, paid (or fulfilled) and their revenue, pending, lost.
const TOTALS: &str = "SELECT COUNT(*), \
     CAST(COALESCE(SUM(CASE WHEN status IN ('paid', 'fulfilled') THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN status IN ('paid', 'fulfilled') THEN total ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS BIGINT), \
     CAST(COALESCE(SUM(CASE WHEN status IN ('cancelled', 'expired') THEN 1 ELSE 0 END), 0) AS BIGINT) \
     FROM orders o WHERE o.created_at >= $1 AND o.created_at < $2";

/// The `$3` products sold most in orders placed in `[$1, $2)` and not lost.
const BEST_SELLERS: &str = "SELECT l.sku, l.name, CAST(SUM(l.quantity) AS BIGINT), \
     CAST(SUM(l.line_total) AS BIGINT) \
     FROM order_lines l JOIN orders o ON o.id = l.order_id \
     WHERE o.created_at >= $1 AND o.created_at < $2 \
     AND o.status IN ('pending', 'paid', 'fulfilled') \
     GROUP BY l.sku, l.name ORDER BY 3 DESC, l.sku LIMIT $3";

/// Money captured and refunded in `[$1, $2)`, on the `created_at` indexes.
const MONEY: &str = "SELECT \
     CAST(COALESCE((SELECT SUM(amount) FROM payments WHERE created_at >= $1 AND created_at < $2), 0) AS BIGINT), \
     CAST(COALESCE((SELECT SUM(amount) FROM refunds WHERE created_at >= $1 AND created_at < $2), 0) AS BIGINT)";

/// The most low-stock products a summary lists.
const MAX_LOW_STOCK: i64 = 50;

impl Store {
    pub async fn sales_summary(
        &self,
        from: OffsetDateTime,
        to: OffsetDateTime,
        top: u32,
        low_stock: i64,
    ) -> Result<SalesSummary, StoreError> {
        let (from_at, to_at) = (Timestamp::new(from), Timestamp::new(to));
        let (orders, paid, revenue, pending, lost): (i64, i64, i64, i64, i64) = with_pool!(self, pool => sqlx::query_as(TOTALS)
                .bind(from_at)
                .bind(to_at)
                .fetch_one(pool)
                .await)?;
        let (captured, refunded): (i64, i64) = with_pool!(self, pool => sqlx::query_as(MONEY)
                .bind(from_at)
                .bind(to_at)
                .fetch_one(pool)
                .await)?;
        let top_products: Vec<(String, String, i64, i64)> = with_pool!(self, pool => sqlx::query_as(BEST_SELLERS)
                .bind(from_at)
                .bind(to_at)
                .bind(i64::from(top))
                .fetch_all(pool)
                .await)?;
        let low: Vec<(String, String, i64)> = with_pool!(self, pool => sqlx::query_as(
            "SELECT sku, name, stock FROM products WHERE active AND stock <= $1 \
             ORDER BY stock, sku LIMIT $2")
            .bind(low_stock)
            .bind(MAX_LOW_STOCK)
            .fetch_all(pool)
            .await)?;
        Ok(SalesSummary {
            from,
            to,
            orders,
            paid,
            revenue,
            pending,
            lost,
            captured,
            refunded,
            top_products: top_products
                .into_iter()
                .map(|(sku, name, units, amount)| ProductSales {
                    sku,
                    name,
                    units,
                    amount,
                })
                .collect(),
            low_stock: low
                .into_iter()
                .map(|(sku, name, stock)| LowStock { sku, name, stock })
                .collect(),
        })
    }
}
