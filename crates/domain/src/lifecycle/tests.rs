//! The lifecycle's rules, one by one and under a property test: any sequence of changes keeps
//! every unit within its line, refunds within captures, and the statuses as the figures say.

use super::*;

fn order(lines: &[(i64, i64)]) -> Ledger {
    Ledger {
        status: OrderStatus::Pending,
        lines: lines
            .iter()
            .map(|&(unit_price, quantity)| LineFigures::ordered(unit_price, quantity))
            .collect(),
        captured: 0,
        refunded: 0,
    }
}

fn units(line: usize, units: i64) -> LineUnits {
    LineUnits { line, units }
}

#[test]
fn two_captures_pay_an_order_and_a_third_is_refused() {
    let mut o = order(&[(1_000, 2), (500, 1)]);
    assert_eq!((o.total(), o.balance_due()), (2_500, 2_500));
    o.capture(1_000).unwrap();
    assert_eq!(o.payment_status(), PaymentStatus::PartiallyPaid);
    assert_eq!(o.status, OrderStatus::Pending);
    assert_eq!(
        o.capture(1_501),
        Err(LifecycleError::OverBalance {
            amount: 1_501,
            due: 1_500
        })
    );
    o.capture(1_500).unwrap();
    assert_eq!(
        (o.status, o.payment_status()),
        (OrderStatus::Paid, PaymentStatus::Paid)
    );
    assert_eq!(
        o.capture(1),
        Err(LifecycleError::OverBalance { amount: 1, due: 0 })
    );
    assert_eq!(o.capture(0), Err(LifecycleError::NotPositive));
}

#[test]
fn shipping_waits_for_payment_and_takes_only_open_units() {
    let mut o = order(&[(1_000, 3)]);
    assert_eq!(
        o.ship(&[units(0, 1)]),
        Err(LifecycleError::Unpaid { due: 3_000 })
    );
    o.capture(3_000).unwrap();
    o.ship(&[units(0, 1)]).unwrap();
    assert_eq!(
        o.fulfillment_status(),
        FulfillmentStatus::PartiallyFulfilled
    );
    assert_eq!(o.status, OrderStatus::Paid);
    assert!(matches!(
        o.ship(&[units(0, 3)]),
        Err(LifecycleError::TooManyUnits { open: 2, .. })
    ));
    assert!(
        o.ship(&[units(0, 1), units(0, 1)]).is_err(),
        "a line named twice"
    );
    assert!(o.ship(&[units(1, 1)]).is_err(), "no such line");
    o.ship(&[units(0, 2)]).unwrap();
    assert_eq!(
        (o.status, o.fulfillment_status()),
        (OrderStatus::Fulfilled, FulfillmentStatus::Fulfilled)
    );
    assert_eq!(o.ship(&o.open_units()), Err(LifecycleError::NothingOpen));
}

#[test]
fn cancelling_units_lowers_the_total_and_a_paid_order_then_owes_a_refund() {
    let mut o = order(&[(1_000, 2), (500, 2)]);
    o.capture(3_000).unwrap();
    o.ship(&[units(0, 1)]).unwrap();
    o.cancel(&[units(1, 1)]).unwrap();
    assert_eq!(
        (o.total(), o.refund_owed(), o.balance_due()),
        (2_500, 500, 0)
    );
    o.refund(500, Some(&[units(1, 1)])).unwrap();
    assert_eq!(o.refund_owed(), 0);
    assert_eq!(o.payment_status(), PaymentStatus::PartiallyRefunded);
    // Cancelling what is left unshipped: every kept unit has shipped.
    o.cancel(&o.open_units()).unwrap();
    assert_eq!(o.status, OrderStatus::Fulfilled);
    assert_eq!(o.lines[0].kept(), 1);
}

#[test]
fn an_order_with_every_unit_cancelled_is_cancelled_and_then_closed() {
    let mut o = order(&[(1_000, 1)]);
    o.cancel(&o.open_units()).unwrap();
    assert_eq!((o.status, o.total()), (OrderStatus::Cancelled, 0));
    assert_eq!(
        o.capture(1),
        Err(LifecycleError::Closed(OrderStatus::Cancelled))
    );
    assert_eq!(
        o.cancel(&[units(0, 1)]),
        Err(LifecycleError::Closed(OrderStatus::Cancelled))
    );
}

#[test]
fn refunds_stay_within_the_money_kept_and_the_lines_named() {
    let mut o = order(&[(1_000, 2), (300, 1)]);
    assert_eq!(
        o.refund(1, None),
        Err(LifecycleError::OverRefundable {
            amount: 1,
            refundable: 0
        })
    );
    o.capture(2_300).unwrap();
    assert_eq!(
        o.refund(301, Some(&[units(1, 1)])),
        Err(LifecycleError::OverRefundable {
            amount: 301,
            refundable: 300
        })
    );
    o.refund(200, Some(&[units(1, 1)])).unwrap();
    assert_eq!(
        o.refund(101, Some(&[units(1, 1)])),
        Err(LifecycleError::OverRefundable {
            amount: 101,
            refundable: 100
        })
    );
    o.refund(2_100, None).unwrap();
    assert_eq!(
        (o.refunded, o.payment_status()),
        (2_300, PaymentStatus::Refunded)
    );
    assert_eq!(
        o.status,
        OrderStatus::Paid,
        "a refund does not take paid back"
    );
    assert!(o.refund(1, None).is_err());
}

/// One change, as drawn by the property test: which, how much, on which line.
#[derive(Debug, Clone)]
enum Step {
    Capture(i64),
    PayInFull,
    Ship(usize, i64),
    ShipAll,
    Cancel(usize, i64),
    Refund(i64, Option<(usize, i64)>),
}

fn step() -> impl proptest::strategy::Strategy<Value = Step> {
    use proptest::prelude::*;
    prop_oneof![
        (1_i64..5_000).prop_map(Step::Capture),
        Just(Step::PayInFull),
        (0_usize..3, 1_i64..4).prop_map(|(l, n)| Step::Ship(l, n)),
        Just(Step::ShipAll),
        (0_usize..3, 1_i64..4).prop_map(|(l, n)| Step::Cancel(l, n)),
        (1_i64..3_000, proptest::option::of((0_usize..3, 1_i64..4)))
            .prop_map(|(a, lines)| Step::Refund(a, lines)),
    ]
}

proptest::proptest! {
    /// Whatever changes are asked, in whatever order, the figures keep their rules: units
    /// never over-shipped or over-cancelled, refunds never above captures, the total as
    /// defined, statuses consistent with the figures, and a refused change changes nothing.
    #[test]
    fn any_sequence_of_changes_keeps_the_invariants(steps in proptest::collection::vec(step(), 0..40)) {
        let mut o = order(&[(1_000, 3), (250, 2), (999, 1)]);
        for step in steps {
            let before = o.clone();
            let result = match step {
                Step::Capture(amount) => o.capture(amount),
                Step::PayInFull => o.capture(o.balance_due()),
                Step::Ship(line, n) => o.ship(&[units(line, n)]),
                Step::ShipAll => o.ship(&o.open_units()),
                Step::Cancel(line, n) => o.cancel(&[units(line, n)]),
                Step::Refund(amount, lines) => {
                    let lines = lines.map(|(line, n)| vec![units(line, n)]);
                    o.refund(amount, lines.as_deref())
                }
            };
            if result.is_err() {
                proptest::prop_assert_eq!(&o, &before, "a refused change changed nothing");
            }
            for line in &o.lines {
                proptest::prop_assert!(line.shipped + line.cancelled <= line.quantity);
                proptest::prop_assert!(line.refunded >= 0 && line.shipped >= 0 && line.cancelled >= 0);
            }
            let total: i64 = o.lines.iter().map(|l| l.unit_price * (l.quantity - l.cancelled)).sum();
            proptest::prop_assert_eq!(o.total(), total);
            proptest::prop_assert!(0 <= o.refunded && o.refunded <= o.captured);
            if o.captured > before.captured {
                proptest::prop_assert!(o.net_paid() <= o.total(), "a capture pays no more than is due");
            }
            proptest::prop_assert_eq!(o.balance_due(), (total - (o.captured - o.refunded)).max(0));
            proptest::prop_assert_eq!(o.refund_owed(), ((o.captured - o.refunded) - total).max(0));
            let kept: i64 = o.lines.iter().map(LineFigures::kept).sum();
            let open: i64 = o.lines.iter().map(LineFigures::open).sum();
            let shipped: i64 = o.lines.iter().map(|l| l.shipped).sum();
            match o.status {
                OrderStatus::Cancelled => proptest::prop_assert_eq!(kept, 0),
                OrderStatus::Fulfilled => proptest::prop_assert!(open == 0 && kept > 0),
                OrderStatus::Paid => proptest::prop_assert!(open > 0),
                OrderStatus::Pending => {
                    proptest::prop_assert!(o.balance_due() > 0 && shipped == 0 && open > 0)
                }
                OrderStatus::Expired => proptest::prop_assert!(false, "nothing here expires"),
            }
            if shipped > 0 {
                proptest::prop_assert!(o.status != OrderStatus::Pending, "nothing ships unpaid");
            }
        }
    }
}
