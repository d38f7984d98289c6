//! The clearing circuit against the plaintext auction rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ark_std::rand::Rng;
use common::test_rng;
use proptest::prelude::*;
use veilgrid_circuits::clearing::{
    BookShape, ClearingCircuit, ClearingPublic, Order, OrderBook, Side, clear, is_satisfied,
};
use veilgrid_circuits::field::Fr;

const SMALL: BookShape = BookShape {
    max_orders: 8,
    levels: 8,
};

fn book(shape: BookShape, orders: Vec<Order>, seed: u64) -> OrderBook {
    OrderBook::with_random_blindings(shape, orders, &mut test_rng(seed)).unwrap()
}

fn random_orders(rng: &mut impl Rng, n: usize, levels: usize, max_qty: u32) -> Vec<Order> {
    (0..n)
        .map(|_| Order {
            side: if rng.gen_bool(0.5) {
                Side::Buy
            } else {
                Side::Sell
            },
            limit: rng.gen_range(0..levels) as u8,
            qty: rng.gen_range(1..=max_qty),
        })
        .collect()
}

/// The honest statement satisfies the circuit; every single-field lie does not.
fn check_book(b: OrderBook) {
    let (circuit, fills) = ClearingCircuit::new(b.clone()).unwrap();
    let public = circuit.public();
    let expected = clear(b.shape().levels, b.orders());
    assert_eq!(public.volume, expected.volume);
    assert_eq!(public.level, expected.level.unwrap_or(0) as u64);
    assert_eq!(fills, expected.fills);
    assert!(
        is_satisfied(circuit).unwrap(),
        "honest clearing must satisfy"
    );

    let lies = [
        ClearingPublic {
            volume: public.volume + 1,
            ..public
        },
        ClearingPublic {
            level: (public.level + 1) % b.shape().levels as u64,
            ..public
        },
        ClearingPublic {
            fills_commitment: public.fills_commitment + Fr::from(1u64),
            ..public
        },
        ClearingPublic {
            book_commitment: public.book_commitment + Fr::from(1u64),
            ..public
        },
    ];
    for lie in lies {
        let c = ClearingCircuit::with_claim(b.clone(), expected.argmax, lie);
        assert!(!is_satisfied(c).unwrap(), "lie {lie:?} must not satisfy");
    }
    // a different (non-maximal or tie-losing) clearing level is not provable
    for k in 0..b.shape().levels {
        if k == expected.argmax {
            continue;
        }
        let c = ClearingCircuit::with_claim(b.clone(), k, public);
        assert!(!is_satisfied(c).unwrap(), "argmax {k} must not satisfy");
    }
}

#[test]
fn random_small_books_match_the_rule() {
    let mut rng = test_rng(10);
    for round in 0..4u64 {
        let n = rng.gen_range(1..=8);
        let orders = random_orders(&mut rng, n, 8, 20);
        check_book(book(SMALL, orders, round));
    }
}

#[test]
fn ties_and_no_trade() {
    // equal volume on several levels, tie broken by |D - S| then lowest level
    let tie = vec![
        Order {
            side: Side::Buy,
            limit: 5,
            qty: 10,
        },
        Order {
            side: Side::Sell,
            limit: 1,
            qty: 10,
        },
        Order {
            side: Side::Buy,
            limit: 2,
            qty: 3,
        },
    ];
    assert_eq!(clear(8, &tie).level, Some(3));
    check_book(book(SMALL, tie, 1));
    // no crossing: V = 0, public level 0, all fills 0
    let none = vec![
        Order {
            side: Side::Buy,
            limit: 2,
            qty: 5,
        },
        Order {
            side: Side::Sell,
            limit: 6,
            qty: 5,
        },
    ];
    let b = book(SMALL, none, 2);
    let (c, fills) = ClearingCircuit::new(b.clone()).unwrap();
    assert_eq!((c.public().level, c.public().volume), (0, 0));
    assert_eq!(fills, vec![0, 0]);
    assert!(is_satisfied(c).unwrap());
    // one side empty
    check_book(book(
        SMALL,
        vec![Order {
            side: Side::Buy,
            limit: 7,
            qty: 9,
        }],
        3,
    ));
    // all orders at one level, partial fills in submission order
    let one_level = vec![
        Order {
            side: Side::Buy,
            limit: 4,
            qty: 6,
        },
        Order {
            side: Side::Sell,
            limit: 4,
            qty: 4,
        },
        Order {
            side: Side::Buy,
            limit: 4,
            qty: 6,
        },
        Order {
            side: Side::Sell,
            limit: 4,
            qty: 5,
        },
    ];
    let (c, fills) = ClearingCircuit::new(book(SMALL, one_level.clone(), 4)).unwrap();
    assert_eq!(c.public().volume, 9);
    assert_eq!(fills, vec![6, 4, 3, 5]);
    check_book(book(SMALL, one_level, 4));
}

#[test]
fn maximal_quantities_do_not_overflow() {
    let orders = vec![
        Order {
            side: Side::Buy,
            limit: 7,
            qty: u32::MAX,
        },
        Order {
            side: Side::Buy,
            limit: 7,
            qty: u32::MAX,
        },
        Order {
            side: Side::Sell,
            limit: 0,
            qty: u32::MAX,
        },
    ];
    check_book(book(SMALL, orders, 5));
}

#[test]
fn a_book_with_a_changed_order_does_not_open_the_commitment() {
    let orders = random_orders(&mut test_rng(11), 6, 8, 50);
    let b = book(SMALL, orders.clone(), 6);
    let (c, _) = ClearingCircuit::new(b.clone()).unwrap();
    let mut changed = orders;
    changed[2].qty += 1;
    let other = OrderBook::new(SMALL, changed, Fr::from(1u64), Fr::from(2u64)).unwrap();
    let argmax = clear(8, other.orders()).argmax;
    assert!(!is_satisfied(ClearingCircuit::with_claim(other, argmax, c.public())).unwrap());
}

#[test]
fn invalid_books_are_refused() {
    let bad_level = vec![Order {
        side: Side::Buy,
        limit: 8,
        qty: 1,
    }];
    assert!(OrderBook::new(SMALL, bad_level, Fr::from(0u64), Fr::from(0u64)).is_err());
    let zero_qty = vec![Order {
        side: Side::Buy,
        limit: 1,
        qty: 0,
    }];
    assert!(OrderBook::new(SMALL, zero_qty, Fr::from(0u64), Fr::from(0u64)).is_err());
    let too_many = vec![
        Order {
            side: Side::Buy,
            limit: 1,
            qty: 1
        };
        9
    ];
    assert!(OrderBook::new(SMALL, too_many, Fr::from(0u64), Fr::from(0u64)).is_err());
    assert!(
        BookShape {
            max_orders: 65,
            levels: 8
        }
        .validate()
        .is_err()
    );
    assert!(
        BookShape {
            max_orders: 8,
            levels: 1
        }
        .validate()
        .is_err()
    );
}

#[test]
fn book_debug_hides_orders() {
    let b = book(
        SMALL,
        vec![Order {
            side: Side::Buy,
            limit: 3,
            qty: 4242,
        }],
        7,
    );
    assert!(!format!("{b:?}").contains("4242"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(12))]
    /// Random books, including many ties (tiny quantities on few levels), on a
    /// non-power-of-two grid.
    #[test]
    fn circuit_agrees_with_rule(seed in any::<u64>(), n in 1usize..=6, qmax in 1u32..4) {
        let shape = BookShape { max_orders: 6, levels: 5 };
        let orders = random_orders(&mut test_rng(seed), n, 5, qmax);
        let b = book(shape, orders, seed);
        let (c, fills) = ClearingCircuit::new(b.clone()).unwrap();
        let r = clear(5, b.orders());
        prop_assert_eq!(fills, r.fills);
        prop_assert!(is_satisfied(c).unwrap());
    }
}

/// Off a power-of-two grid a limit in `[P, 2^⌈log2 P⌉)` fits the level bits; the
/// circuit must still refuse it (a sell there would otherwise count as a buy).
#[test]
fn limit_beyond_a_non_power_of_two_grid_is_unsatisfiable() {
    use veilgrid_circuits::clearing::ClearingPublic;
    let shape = BookShape {
        max_orders: 2,
        levels: 5,
    };
    // a legal book to get the shape's public values, then a forged slot at level 6
    let honest = OrderBook::new(
        shape,
        vec![Order {
            side: Side::Buy,
            limit: 1,
            qty: 3,
        }],
        Fr::from(5u64),
        Fr::from(6u64),
    )
    .unwrap();
    let (c, _) = ClearingCircuit::new(honest).unwrap();
    assert!(is_satisfied(c.clone()).unwrap());
    let forged = OrderBook::new_unchecked_for_tests(
        shape,
        vec![
            Order {
                side: Side::Buy,
                limit: 1,
                qty: 3,
            },
            Order {
                side: Side::Sell,
                limit: 6,
                qty: 3,
            },
        ],
        Fr::from(5u64),
        Fr::from(6u64),
    );
    let book_commitment = forged.commitment().unwrap().0;
    // claim what a sell-counted-as-buy-at-level-1 book would clear to: nothing, or anything
    for (level, volume) in [(0u64, 0u64), (1, 3)] {
        let fills = forged.fills_commitment(&[0, 0]).unwrap().0;
        let public = ClearingPublic {
            book_commitment,
            level,
            volume,
            fills_commitment: fills,
        };
        for argmax in 0..5 {
            let c = ClearingCircuit::with_claim(forged.clone(), argmax, public);
            assert!(!is_satisfied(c).unwrap());
        }
    }
}

/// The argmax is found without a histogram, from the crossing of D and S and the
/// left plateau (docs/clearing.md): many small books, including one-sided ones
/// (no crossing, or crossing at the last level), plateaus of equal volume and tiny
/// quantities that make ties likely, on a power-of-two grid and off one.
#[test]
fn crossing_and_plateau_cases_match_the_rule() {
    let mut rng = test_rng(77);
    for round in 0..40u64 {
        let levels = if round % 2 == 0 { 8 } else { 6 };
        let shape = BookShape {
            max_orders: 8,
            levels,
        };
        let n = rng.gen_range(1..=8);
        let mut orders = random_orders(&mut rng, n, levels, 3);
        match round % 5 {
            0 => orders.iter_mut().for_each(|o| o.side = Side::Buy),
            1 => orders.iter_mut().for_each(|o| o.side = Side::Sell),
            _ => {}
        }
        check_book(book(shape, orders, 1000 + round));
    }
}
