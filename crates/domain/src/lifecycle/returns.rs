//! Returns: shipped units a customer sends back. A return is requested for shipped units —
//! never more than shipped less those already received back or on a return — and later
//! received: the units that came back, line by line, each put back in stock or not. Units
//! received back leave the order's total (so what was paid for them shows as owed until it
//! is refunded); units asked for but not received are no longer on a return (the customer
//! kept them), so they may be asked for again. A return changes no status: a fulfilled order
//! stays fulfilled.

use time::OffsetDateTime;
use uuid::Uuid;

use super::{Ledger, LifecycleError, LineUnits};
use crate::ProductId;

/// Where a return stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnStatus {
    Requested,
    Received,
}

impl ReturnStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReturnStatus::Requested => "requested",
            ReturnStatus::Received => "received",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "requested" => Some(ReturnStatus::Requested),
            "received" => Some(ReturnStatus::Received),
            _ => None,
        }
    }
}

/// A return of an order, as stored and served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderReturn {
    pub id: Uuid,
    pub status: ReturnStatus,
    pub reason: Option<String>,
    pub lines: Vec<ReturnLine>,
    /// The refund recorded when it was received, if one was.
    pub refund_id: Option<Uuid>,
    pub created_at: OffsetDateTime,
    pub received_at: Option<OffsetDateTime>,
}

/// One line of a return: the units asked for and, once received, those that came back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReturnLine {
    /// The order line's index.
    pub line: usize,
    pub sku: String,
    pub product_id: ProductId,
    pub quantity: i64,
    pub received: Option<i64>,
    pub restock: Option<bool>,
}

impl OrderReturn {
    /// The units this return asked for, as the ledger's rules take them.
    pub fn requested(&self) -> Vec<LineUnits> {
        self.lines
            .iter()
            .map(|l| LineUnits {
                line: l.line,
                units: l.quantity,
            })
            .collect()
    }
}

/// Units of a line that came back, and whether they go back on sale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReceivedUnits {
    pub line: usize,
    pub units: i64,
    pub restock: bool,
}

impl Ledger {
    /// Puts `units` on a return: each at most its line's shipped units not already on one.
    pub fn request_return(&mut self, units: &[LineUnits]) -> Result<(), LifecycleError> {
        self.open_for_changes()?;
        if units.is_empty() {
            return Err(LifecycleError::NothingOpen);
        }
        self.check_units(units)?;
        for u in units {
            let line = &self.lines[u.line];
            let returnable = line.shipped - line.returned - line.return_requested;
            if u.units > returnable {
                return Err(LifecycleError::TooManyReturned {
                    line: u.line,
                    returnable,
                    asked: u.units,
                });
            }
        }
        for u in units {
            self.lines[u.line].return_requested += u.units;
        }
        Ok(())
    }

    /// Receives a return that asked for `requested`: `received` are the units that came
    /// back, each at most what its line asked for; those with `restock` go back in stock.
    pub fn receive_return(
        &mut self,
        requested: &[LineUnits],
        received: &[ReceivedUnits],
    ) -> Result<(), LifecycleError> {
        let mut seen = vec![false; self.lines.len()];
        for r in received {
            let asked = requested
                .iter()
                .find(|u| u.line == r.line)
                .map_or(0, |u| u.units);
            let twice = seen
                .get_mut(r.line)
                .is_none_or(|s| std::mem::replace(s, true));
            if r.units <= 0 || r.units > asked || twice {
                return Err(LifecycleError::NotOnReturn {
                    line: r.line,
                    requested: asked,
                    asked: r.units,
                });
            }
        }
        for u in requested {
            self.lines[u.line].return_requested -= u.units;
        }
        for r in received {
            self.lines[r.line].returned += r.units;
        }
        for r in received.iter().filter(|r| r.restock) {
            self.lines[r.line].restocked += r.units;
        }
        Ok(())
    }

    /// The refund a received return gives unless told otherwise: its units' price less what
    /// was refunded on their lines before, within the money the shop kept.
    pub fn return_refund(&self, received: &[ReceivedUnits]) -> i64 {
        let on_lines = received
            .iter()
            .map(|r| {
                let line = &self.lines[r.line];
                (line.unit_price.saturating_mul(r.units) - line.refunded).max(0)
            })
            .fold(0_i64, i64::saturating_add);
        on_lines.min(self.net_paid()).max(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::order::OrderStatus;

    /// An order of three units at 10.00 and one at 5.00, paid and shipped in full.
    fn shipped() -> Ledger {
        let mut ledger = Ledger {
            status: OrderStatus::Pending,
            lines: [(1_000, 3), (500, 1)]
                .iter()
                .map(|&(unit_price, quantity)| {
                    super::super::LineFigures::ordered(unit_price, quantity)
                })
                .collect(),
            captured: 0,
            refunded: 0,
        };
        ledger.capture(3_500).unwrap();
        let all = ledger.open_units();
        ledger.ship(&all).unwrap();
        ledger
    }

    fn units(line: usize, units: i64) -> LineUnits {
        LineUnits { line, units }
    }

    #[test]
    fn a_return_takes_shipped_units_not_already_on_one() {
        let mut ledger = shipped();
        ledger.request_return(&[units(0, 2)]).unwrap();
        assert_eq!(
            ledger.request_return(&[units(0, 2)]),
            Err(LifecycleError::TooManyReturned {
                line: 0,
                returnable: 1,
                asked: 2
            })
        );
        ledger.request_return(&[units(0, 1), units(1, 1)]).unwrap();
        assert_eq!(
            (
                ledger.lines[0].return_requested,
                ledger.lines[1].return_requested
            ),
            (3, 1)
        );
        assert_eq!(
            ledger.status,
            OrderStatus::Fulfilled,
            "a return moves no status"
        );
    }

    #[test]
    fn receiving_restocks_what_is_chosen_and_frees_what_did_not_come_back() {
        let mut ledger = shipped();
        let asked = [units(0, 2), units(1, 1)];
        ledger.request_return(&asked).unwrap();
        let before = ledger.clone();
        for bad in [
            ReceivedUnits {
                line: 0,
                units: 3,
                restock: true,
            },
            ReceivedUnits {
                line: 0,
                units: 0,
                restock: true,
            },
            ReceivedUnits {
                line: 7,
                units: 1,
                restock: true,
            },
        ] {
            assert!(ledger.receive_return(&asked, &[bad]).is_err(), "{bad:?}");
            assert_eq!(ledger, before, "a refused receipt changes nothing");
        }
        let came_back = [ReceivedUnits {
            line: 0,
            units: 1,
            restock: true,
        }];
        ledger.receive_return(&asked, &came_back).unwrap();
        assert_eq!(
            (ledger.lines[0].returned, ledger.lines[0].restocked),
            (1, 1)
        );
        assert_eq!(ledger.lines[1].returned, 0, "the plate did not come back");
        assert_eq!(
            ledger.lines.iter().map(|l| l.return_requested).sum::<i64>(),
            0
        );
        assert_eq!(
            ledger.total(),
            2_500,
            "the mug that came back leaves the total"
        );
        assert_eq!(
            ledger.refund_owed(),
            1_000,
            "and what was paid for it is owed"
        );
        assert_eq!(ledger.return_refund(&came_back), 1_000);
        ledger.refund(3_000, None).unwrap();
        assert_eq!(
            ledger.return_refund(&came_back),
            500,
            "within what the shop kept"
        );
    }
}
