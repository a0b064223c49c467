//! The order lifecycle's rules, in one place: captures, shipments, cancellations of units and
//! refunds, each checked against the order's figures as they stand, and the statuses that
//! follow from those figures. Pure: storage reads the figures under the order's lock, applies
//! one change here, and writes back what changed.
//!
//! Amounts are integers in the order's currency's minor units; nothing is rounded. The
//! figures:
//! - `total` = Σ unit price × (ordered − cancelled − received back by a return);
//! - `balance_due` = max(0, total − (captured − refunded));
//! - `refund_owed` = max(0, (captured − refunded) − total).
//!
//! `status` keeps the five values clients know: `pending` until nothing is due, then `paid`
//! (a later refund does not take it back), `fulfilled` once every unit not cancelled has
//! shipped, `cancelled` once every unit is cancelled; `expired` only from the `expire_orders`
//! chore, and never for an order with a capture.

mod edit;
pub mod returns;

use std::fmt;

use crate::order::{Order, OrderStatus};

pub use returns::ReceivedUnits;

/// Where an order's money stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Unpaid,
    PartiallyPaid,
    Paid,
    PartiallyRefunded,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Unpaid => "unpaid",
            PaymentStatus::PartiallyPaid => "partially_paid",
            PaymentStatus::Paid => "paid",
            PaymentStatus::PartiallyRefunded => "partially_refunded",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

/// Where an order's shipping stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FulfillmentStatus {
    Unfulfilled,
    PartiallyFulfilled,
    Fulfilled,
}

impl FulfillmentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FulfillmentStatus::Unfulfilled => "unfulfilled",
            FulfillmentStatus::PartiallyFulfilled => "partially_fulfilled",
            FulfillmentStatus::Fulfilled => "fulfilled",
        }
    }
}

impl fmt::Display for PaymentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for FulfillmentStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One line's figures: its price and units, and the money refunded against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineFigures {
    pub unit_price: i64,
    pub quantity: i64,
    pub cancelled: i64,
    pub shipped: i64,
    /// Refunded against this line (a refund that names lines), in minor units.
    pub refunded: i64,
    /// Units on a return asked for and not yet received.
    pub return_requested: i64,
    /// Units received back: they leave the total. With those on a return, never more than
    /// shipped.
    pub returned: i64,
    /// Units received back and put back in stock.
    pub restocked: i64,
}

impl LineFigures {
    /// A line as ordered: nothing cancelled, shipped, refunded or returned yet.
    pub fn ordered(unit_price: i64, quantity: i64) -> Self {
        Self {
            unit_price,
            quantity,
            cancelled: 0,
            shipped: 0,
            refunded: 0,
            return_requested: 0,
            returned: 0,
            restocked: 0,
        }
    }

    /// Units neither cancelled nor shipped.
    pub fn open(&self) -> i64 {
        self.quantity - self.cancelled - self.shipped
    }

    /// Units not cancelled.
    pub fn kept(&self) -> i64 {
        self.quantity - self.cancelled
    }

    /// Units the customer pays for: neither cancelled nor received back.
    pub fn billable(&self) -> i64 {
        self.quantity - self.cancelled - self.returned
    }
}

/// An order's figures, as the rules below read and change them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub status: OrderStatus,
    pub lines: Vec<LineFigures>,
    pub captured: i64,
    pub refunded: i64,
}

/// Units of one line (its index in the order) that a shipment, a cancellation or a refund
/// names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineUnits {
    pub line: usize,
    pub units: i64,
}

/// Why a change to an order was refused; nothing changed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LifecycleError {
    #[error("the order is {0}: nothing more can happen to it")]
    Closed(OrderStatus),
    #[error("the amount must be above zero")]
    NotPositive,
    #[error("{amount} is more than the {due} due")]
    OverBalance { amount: i64, due: i64 },
    #[error("the order has {due} due: it ships once nothing is due")]
    Unpaid { due: i64 },
    #[error("line {line} has {open} units neither shipped nor cancelled, fewer than {asked}")]
    TooManyUnits { line: usize, open: i64, asked: i64 },
    #[error("nothing is left to ship or cancel")]
    NothingOpen,
    #[error("{amount} is more than the {refundable} that may be refunded")]
    OverRefundable { amount: i64, refundable: i64 },
    #[error("the amounts do not fit in 64 bits")]
    Overflow,
    #[error(
        "line {line} has {returnable} shipped units not already on a return, fewer than {asked}"
    )]
    TooManyReturned {
        line: usize,
        returnable: i64,
        asked: i64,
    },
    #[error("line {line} has {requested} units on this return, fewer than {asked}")]
    NotOnReturn {
        line: usize,
        requested: i64,
        asked: i64,
    },
    #[error("the return was received already")]
    ReturnReceived,
    #[error("a unit of the order has shipped: its lines can no longer be edited")]
    Shipped,
}

impl Ledger {
    /// Σ unit price × units neither cancelled nor received back.
    pub fn total(&self) -> i64 {
        self.lines
            .iter()
            .map(|l| l.unit_price.saturating_mul(l.billable()))
            .fold(0_i64, i64::saturating_add)
    }

    /// Money kept by the shop: captured less refunded.
    pub fn net_paid(&self) -> i64 {
        self.captured - self.refunded
    }

    pub fn balance_due(&self) -> i64 {
        (self.total() - self.net_paid()).max(0)
    }

    pub fn refund_owed(&self) -> i64 {
        (self.net_paid() - self.total()).max(0)
    }

    pub fn payment_status(&self) -> PaymentStatus {
        match (self.captured, self.refunded) {
            (0, _) => PaymentStatus::Unpaid,
            (captured, 0) if captured < self.total() => PaymentStatus::PartiallyPaid,
            (_, 0) => PaymentStatus::Paid,
            (captured, refunded) if refunded < captured => PaymentStatus::PartiallyRefunded,
            _ => PaymentStatus::Refunded,
        }
    }

    pub fn fulfillment_status(&self) -> FulfillmentStatus {
        let shipped: i64 = self.lines.iter().map(|l| l.shipped).sum();
        let open: i64 = self.lines.iter().map(LineFigures::open).sum();
        match (shipped, open) {
            (0, _) => FulfillmentStatus::Unfulfilled,
            (_, 0) => FulfillmentStatus::Fulfilled,
            _ => FulfillmentStatus::PartiallyFulfilled,
        }
    }

    /// The status the figures lead to from the current one.
    fn settled_status(&self) -> OrderStatus {
        let kept: i64 = self.lines.iter().map(LineFigures::kept).sum();
        let open: i64 = self.lines.iter().map(LineFigures::open).sum();
        if kept == 0 {
            OrderStatus::Cancelled
        } else if open == 0 {
            OrderStatus::Fulfilled
        } else if self.status == OrderStatus::Paid || self.balance_due() == 0 {
            OrderStatus::Paid
        } else {
            OrderStatus::Pending
        }
    }

    /// Nothing happens to a cancelled or expired order; a fulfilled one can still be refunded.
    fn open_for_changes(&self) -> Result<(), LifecycleError> {
        match self.status {
            OrderStatus::Cancelled | OrderStatus::Expired => {
                Err(LifecycleError::Closed(self.status))
            }
            _ => Ok(()),
        }
    }

    /// Records a capture of `amount`: at most what is due.
    pub fn capture(&mut self, amount: i64) -> Result<(), LifecycleError> {
        self.open_for_changes()?;
        if amount <= 0 {
            return Err(LifecycleError::NotPositive);
        }
        let due = self.balance_due();
        if amount > due {
            return Err(LifecycleError::OverBalance { amount, due });
        }
        self.captured = self
            .captured
            .checked_add(amount)
            .ok_or(LifecycleError::Overflow)?;
        self.status = self.settled_status();
        Ok(())
    }

    /// Ships `units`: only once nothing is due, at most the open units of each line.
    pub fn ship(&mut self, units: &[LineUnits]) -> Result<(), LifecycleError> {
        self.open_for_changes()?;
        let due = self.balance_due();
        if due > 0 {
            return Err(LifecycleError::Unpaid { due });
        }
        self.take_open_units(units)?;
        for u in units {
            self.lines[u.line].shipped += u.units;
        }
        self.status = self.settled_status();
        Ok(())
    }

    /// Every open unit, line by line: what `/fulfill` ships and `/cancel` cancels.
    pub fn open_units(&self) -> Vec<LineUnits> {
        self.lines
            .iter()
            .enumerate()
            .filter(|(_, l)| l.open() > 0)
            .map(|(line, l)| LineUnits {
                line,
                units: l.open(),
            })
            .collect()
    }

    /// Cancels `units` (their stock goes back on sale): at most the open units of each line.
    pub fn cancel(&mut self, units: &[LineUnits]) -> Result<(), LifecycleError> {
        self.open_for_changes()?;
        self.take_open_units(units)?;
        for u in units {
            self.lines[u.line].cancelled += u.units;
        }
        self.status = self.settled_status();
        Ok(())
    }

    /// Records `amount` given back to the customer: never more than the money kept; with
    /// `lines`, never more than their price × units less what was refunded on them before
    /// (the amount is then booked on those lines in their order).
    pub fn refund(
        &mut self,
        amount: i64,
        lines: Option<&[LineUnits]>,
    ) -> Result<(), LifecycleError> {
        if amount <= 0 {
            return Err(LifecycleError::NotPositive);
        }
        let refundable = self.net_paid();
        if amount > refundable {
            return Err(LifecycleError::OverRefundable { amount, refundable });
        }
        if let Some(lines) = lines {
            self.check_units(lines)?;
            let room = |lines: &[LineFigures], u: &LineUnits| {
                let line = &lines[u.line];
                (line.unit_price.saturating_mul(u.units) - line.refunded).max(0)
            };
            let on_lines = lines
                .iter()
                .map(|u| room(&self.lines, u))
                .fold(0_i64, i64::saturating_add);
            if amount > on_lines {
                return Err(LifecycleError::OverRefundable {
                    amount,
                    refundable: on_lines,
                });
            }
            let mut left = amount;
            for u in lines {
                let booked = left.min(room(&self.lines, u));
                self.lines[u.line].refunded += booked;
                left -= booked;
            }
        }
        self.refunded += amount;
        Ok(())
    }

    /// Checks that each named line exists, is named once and has a positive count.
    fn check_units(&self, units: &[LineUnits]) -> Result<(), LifecycleError> {
        let mut seen = vec![false; self.lines.len()];
        for u in units {
            let Some(line) = self.lines.get(u.line) else {
                return Err(LifecycleError::TooManyUnits {
                    line: u.line,
                    open: 0,
                    asked: u.units,
                });
            };
            if u.units <= 0 || std::mem::replace(&mut seen[u.line], true) {
                return Err(LifecycleError::TooManyUnits {
                    line: u.line,
                    open: line.open(),
                    asked: u.units,
                });
            }
        }
        Ok(())
    }

    fn take_open_units(&self, units: &[LineUnits]) -> Result<(), LifecycleError> {
        if units.is_empty() {
            return Err(LifecycleError::NothingOpen);
        }
        self.check_units(units)?;
        for u in units {
            let open = self.lines[u.line].open();
            if u.units > open {
                return Err(LifecycleError::TooManyUnits {
                    line: u.line,
                    open,
                    asked: u.units,
                });
            }
        }
        Ok(())
    }
}

impl Order {
    /// The figures the lifecycle's rules judge.
    pub fn ledger(&self) -> Ledger {
        Ledger {
            status: self.status,
            lines: self
                .lines
                .iter()
                .map(|l| LineFigures {
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    cancelled: l.cancelled,
                    shipped: l.shipped,
                    refunded: l.refunded,
                    return_requested: l.return_requested,
                    returned: l.returned,
                    restocked: l.restocked,
                })
                .collect(),
            captured: self.captured,
            refunded: self.refunded,
        }
    }

    /// Takes on the figures of `ledger` (the order after one of the lifecycle's changes).
    pub fn apply(&mut self, ledger: &Ledger) {
        self.status = ledger.status;
        self.captured = ledger.captured;
        self.refunded = ledger.refunded;
        self.total = ledger.total();
        for (line, figures) in self.lines.iter_mut().zip(&ledger.lines) {
            line.quantity = figures.quantity;
            line.line_total = line.unit_price.saturating_mul(figures.quantity);
            line.cancelled = figures.cancelled;
            line.shipped = figures.shipped;
            line.refunded = figures.refunded;
            line.return_requested = figures.return_requested;
            line.returned = figures.returned;
            line.restocked = figures.restocked;
        }
    }

    /// Reads an order the release before the lifecycle changed as that release meant it:
    /// paid or fulfilled with nothing captured is paid in full, fulfilled with nothing
    /// shipped shipped in full, cancelled with nothing cancelled cancelled in full. Orders
    /// written before the lifecycle's migration were rewritten by it; this covers those that
    /// release changes while both run during a rolling deploy.
    pub fn settle_legacy(&mut self) {
        let shipped: i64 = self.lines.iter().map(|l| l.shipped).sum();
        let cancelled: i64 = self.lines.iter().map(|l| l.cancelled).sum();
        match self.status {
            OrderStatus::Cancelled if cancelled == 0 => {
                for line in &mut self.lines {
                    line.cancelled = line.quantity - line.shipped;
                }
                self.total = self.ledger().total();
            }
            OrderStatus::Fulfilled if shipped == 0 => {
                for line in &mut self.lines {
                    line.shipped = line.quantity - line.cancelled;
                }
            }
            _ => {}
        }
        if matches!(self.status, OrderStatus::Paid | OrderStatus::Fulfilled) && self.captured == 0 {
            self.captured = self.total;
        }
    }
}

#[cfg(test)]
mod tests;
