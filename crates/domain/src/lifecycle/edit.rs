//! Edits before shipping: the order's lines replaced by a new full set. Each line of the order
//! keeps the units the edit names (fewer are cancelled, more are ordered at the line's price),
//! a line the edit leaves out has its units cancelled, and a product the order did not hold
//! becomes a new line at today's price. Only while nothing has shipped; the totals follow, so
//! on a paid order the difference shows as `balance_due` or `refund_owed`.

use super::{Ledger, LifecycleError, LineFigures};

impl Ledger {
    /// Edits the lines: `kept[i]` is the units line `i` keeps (0 to cancel them all); `added`
    /// are new lines. Refused when a unit has shipped or the edit keeps nothing.
    pub fn edit(&mut self, kept: &[i64], added: &[LineFigures]) -> Result<(), LifecycleError> {
        self.open_for_changes()?;
        if self.lines.iter().any(|l| l.shipped > 0) {
            return Err(LifecycleError::Shipped);
        }
        let units: i64 = kept.iter().chain(added.iter().map(|l| &l.quantity)).sum();
        if kept.len() != self.lines.len() || kept.iter().any(|&k| k < 0) || units <= 0 {
            return Err(LifecycleError::NothingOpen);
        }
        for (line, &keep) in self.lines.iter_mut().zip(kept) {
            let had = line.kept();
            if keep < had {
                line.cancelled += had - keep;
            } else {
                line.quantity += keep - had;
            }
        }
        self.lines.extend_from_slice(added);
        self.status = self.settled_status();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::OrderStatus;

    fn line(unit_price: i64, quantity: i64) -> LineFigures {
        LineFigures::ordered(unit_price, quantity)
    }

    fn order() -> Ledger {
        Ledger {
            status: OrderStatus::Pending,
            lines: vec![line(1_000, 2), line(500, 1)],
            captured: 0,
            refunded: 0,
        }
    }

    #[test]
    fn an_edit_cancels_what_it_drops_orders_what_it_adds_and_the_totals_follow() {
        let mut ledger = order();
        ledger.capture(2_500).unwrap();
        assert_eq!(ledger.status, OrderStatus::Paid);
        ledger.edit(&[3, 0], &[line(700, 1)]).unwrap();
        assert_eq!(
            (ledger.lines[0].quantity, ledger.lines[0].cancelled),
            (3, 0)
        );
        assert_eq!(
            (ledger.lines[1].quantity, ledger.lines[1].cancelled),
            (1, 1)
        );
        assert_eq!(ledger.total(), 3_700);
        assert_eq!(ledger.balance_due(), 1_200, "the difference is due");
        assert_eq!(ledger.status, OrderStatus::Paid, "a paid order stays paid");
        ledger.edit(&[1, 0, 1], &[]).unwrap();
        assert_eq!(ledger.refund_owed(), 800, "or owed back");
    }

    #[test]
    fn nothing_shipped_and_something_kept() {
        let mut ledger = order();
        assert_eq!(ledger.edit(&[0, 0], &[]), Err(LifecycleError::NothingOpen));
        ledger.capture(2_500).unwrap();
        ledger
            .ship(&[super::super::LineUnits { line: 1, units: 1 }])
            .unwrap();
        let before = ledger.clone();
        assert_eq!(ledger.edit(&[1, 1], &[]), Err(LifecycleError::Shipped));
        assert_eq!(ledger, before);
    }
}
