//! Reserving stock for a batch of orders against a snapshot of the products they name.
//!
//! The store loads (and, on PostgreSQL, locks) every product a batch of orders names, then
//! places the orders here one after another, in memory: each order takes its stock from what
//! the orders before it left, or is refused without taking anything. What was taken is then
//! written back in one statement per table. Keeping this pure makes the rules testable without
//! a database and the same on every backend.

use std::collections::{HashMap, HashSet};

use crate::order::{NewOrder, OrderLine, ProductRef, order_total};
use crate::product::ProductId;

/// A product as the batch found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockedProduct {
    pub id: ProductId,
    pub sku: String,
    pub name: String,
    pub price: i64,
    pub currency: String,
    pub stock: i64,
    pub active: bool,
}

/// Why an order was not placed. Nothing was reserved for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderRejection {
    /// Lines naming unknown, repeated or unorderable products.
    InvalidLines(Vec<LineProblem>),
    /// Lines asking for more than is in stock.
    OutOfStock(Vec<ShortLine>),
    /// The total does not fit in 64 bits of minor units.
    TotalTooLarge,
}

/// A line that cannot be ordered as asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineProblem {
    /// Index into the order's lines.
    pub line: usize,
    pub code: &'static str,
    pub message: &'static str,
}

/// A line that asks for more units than are in stock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortLine {
    pub line: usize,
    pub product_id: ProductId,
    pub requested: i64,
    pub available: i64,
}

/// An order that fits: its lines with prices snapshotted, in the order they were asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub lines: Vec<OrderLine>,
    pub total: i64,
}

/// The stock of the products a batch names, as the batch's orders take from it.
#[derive(Debug, Clone)]
pub struct StockBook {
    products: HashMap<ProductId, StockedProduct>,
    by_sku: HashMap<String, ProductId>,
    taken: HashMap<ProductId, i64>,
}

impl StockBook {
    pub fn new(products: impl IntoIterator<Item = StockedProduct>) -> Self {
        let products: HashMap<_, _> = products.into_iter().map(|p| (p.id, p)).collect();
        let by_sku = products.values().map(|p| (p.sku.clone(), p.id)).collect();
        Self {
            products,
            by_sku,
            taken: HashMap::new(),
        }
    }

    /// Places `order` if every line names an active product priced in `currency` with enough
    /// stock left; otherwise refuses it, naming every problem line, and takes nothing.
    pub fn place(&mut self, order: &NewOrder, currency: &str) -> Result<Placement, OrderRejection> {
        let mut problems = Vec::new();
        let mut shorts = Vec::new();
        let mut wanted = Vec::with_capacity(order.lines.len());
        let mut seen = HashSet::new();
        for (line, requested) in order.lines.iter().enumerate() {
            let id = match &requested.product {
                ProductRef::Id(id) => self.products.contains_key(id).then_some(*id),
                ProductRef::Sku(sku) => self.by_sku.get(sku.as_str()).copied(),
            };
            let problem = |code, message| LineProblem {
                line,
                code,
                message,
            };
            let Some(product) = id.and_then(|id| self.products.get(&id)) else {
                problems.push(problem(
                    "unknown_product",
                    "names no product in the catalogue",
                ));
                continue;
            };
            if !seen.insert(product.id) {
                problems.push(problem(
                    "duplicate_product",
                    "names a product another line already orders",
                ));
            } else if !product.active {
                problems.push(problem(
                    "product_unavailable",
                    "the product is inactive or archived",
                ));
            } else if product.currency != currency {
                problems.push(problem(
                    "currency_mismatch",
                    "the product is priced in another currency",
                ));
            } else if product.stock < requested.quantity.get() {
                shorts.push(ShortLine {
                    line,
                    product_id: product.id,
                    requested: requested.quantity.get(),
                    available: product.stock,
                });
            } else {
                wanted.push((product.id, requested.quantity.get()));
            }
        }
        if !problems.is_empty() {
            return Err(OrderRejection::InvalidLines(problems));
        }
        if !shorts.is_empty() {
            return Err(OrderRejection::OutOfStock(shorts));
        }
        let amounts: Vec<(i64, i64)> = wanted
            .iter()
            .map(|(id, quantity)| (self.products[id].price, *quantity))
            .collect();
        let (line_totals, total) = order_total(&amounts).ok_or(OrderRejection::TotalTooLarge)?;
        let mut lines = Vec::with_capacity(wanted.len());
        for ((id, quantity), line_total) in wanted.into_iter().zip(line_totals) {
            let product = self
                .products
                .get_mut(&id)
                .expect("every wanted product was found above");
            product.stock -= quantity;
            *self.taken.entry(id).or_default() += quantity;
            lines.push(OrderLine::placed(
                id,
                product.sku.clone(),
                product.name.clone(),
                product.price,
                quantity,
                line_total,
            ));
        }
        Ok(Placement { lines, total })
    }

    /// The units taken from each product so far, in product-id order (the order in which
    /// rows are written, like the order in which they were locked).
    pub fn taken(&self) -> Vec<(ProductId, i64)> {
        let mut taken: Vec<_> = self.taken.iter().map(|(id, q)| (*id, *q)).collect();
        taken.sort_unstable();
        taken
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::{CustomerName, Email, NewOrderLine, Quantity};
    use crate::product::Sku;

    fn product(sku: &str, price: i64, stock: i64) -> StockedProduct {
        StockedProduct {
            id: ProductId::generate(),
            sku: sku.into(),
            name: format!("Product {sku}"),
            price,
            currency: "EUR".into(),
            stock,
            active: true,
        }
    }

    fn order(lines: &[(&str, i64)]) -> NewOrder {
        NewOrder {
            email: Email::parse("e", "a@b.co").unwrap(),
            name: CustomerName::parse("n", "A").unwrap(),
            lines: lines
                .iter()
                .map(|(sku, q)| NewOrderLine {
                    product: ProductRef::Sku(Sku::parse("s", sku).unwrap()),
                    quantity: Quantity::parse("q", *q).unwrap(),
                })
                .collect(),
            note: None,
        }
    }

    #[test]
    fn orders_take_stock_in_turn_until_it_runs_out() {
        let mut book = StockBook::new([product("A", 100, 3)]);
        assert!(book.place(&order(&[("A", 2)]), "EUR").is_ok());
        let refused = book.place(&order(&[("A", 2)]), "EUR").unwrap_err();
        assert!(matches!(
            refused,
            OrderRejection::OutOfStock(ref s) if s[0].available == 1 && s[0].requested == 2
        ));
        assert!(book.place(&order(&[("A", 1)]), "EUR").is_ok());
        assert_eq!(book.taken().iter().map(|t| t.1).sum::<i64>(), 3);
    }

    #[test]
    fn a_refused_order_takes_nothing_even_from_its_good_lines() {
        let mut book = StockBook::new([product("A", 100, 5), product("B", 100, 1)]);
        let refused = book.place(&order(&[("A", 4), ("B", 2)]), "EUR");
        assert!(
            matches!(refused, Err(OrderRejection::OutOfStock(ref s)) if s.len() == 1 && s[0].line == 1)
        );
        assert!(book.taken().is_empty());
        assert!(book.place(&order(&[("A", 5)]), "EUR").is_ok());
    }

    #[test]
    fn every_bad_line_is_named_and_snapshots_keep_request_order() {
        let mut inactive = product("OFF", 1, 10);
        inactive.active = false;
        let mut book = StockBook::new([product("A", 250, 5), product("B", 100, 5), inactive]);
        let refused = book
            .place(
                &order(&[("A", 1), ("GHOST", 1), ("OFF", 1), ("A", 1)]),
                "EUR",
            )
            .unwrap_err();
        let OrderRejection::InvalidLines(problems) = refused else {
            panic!("expected invalid lines")
        };
        let codes: Vec<_> = problems.iter().map(|p| (p.line, p.code)).collect();
        assert_eq!(
            codes,
            [
                (1, "unknown_product"),
                (2, "product_unavailable"),
                (3, "duplicate_product")
            ]
        );
        let placed = book.place(&order(&[("B", 2), ("A", 3)]), "EUR").unwrap();
        let skus: Vec<_> = placed.lines.iter().map(|l| l.sku.as_str()).collect();
        assert_eq!(skus, ["B", "A"]);
        assert_eq!(placed.total, 2 * 100 + 3 * 250);
    }

    #[test]
    fn a_total_past_i64_is_refused() {
        let mut book = StockBook::new([product("A", i64::MAX / 2, 10)]);
        assert_eq!(
            book.place(&order(&[("A", 3)]), "EUR"),
            Err(OrderRejection::TotalTooLarge)
        );
        assert!(book.taken().is_empty());
    }

    #[test]
    fn another_currency_is_refused() {
        let mut book = StockBook::new([product("A", 1, 1)]);
        let refused = book.place(&order(&[("A", 1)]), "USD");
        assert!(
            matches!(refused, Err(OrderRejection::InvalidLines(ref p)) if p[0].code == "currency_mismatch")
        );
    }
}
