//! The auction MPC against the plaintext rule: the issue's test vector, random books
//! (property tests), the bad inputs of the issue, and deviating parties.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use rand::{Rng, SeedableRng, rngs::StdRng};
use veilgrid_mpc::order::share_order_with_rng;
use veilgrid_mpc::plain::{clear_plain, test_vector_book};
use veilgrid_mpc::sim::{run_round, run_round_with};
use veilgrid_mpc::{
    ClearingResult, Collecting, Error, NodeKeys, Order, OrderId, OrderPayload, RoundConfig,
    SecurityMode, Side, share_order,
};

const ROUND: [u8; 16] = [42; 16];

fn cfg(levels: u32, mode: SecurityMode) -> RoundConfig {
    RoundConfig {
        round: ROUND,
        levels,
        mode,
    }
}

fn payloads(book: &[Order], levels: u32, seed: u64) -> Vec<[OrderPayload; 3]> {
    let mut rng = StdRng::seed_from_u64(seed);
    book.iter()
        .enumerate()
        .map(|(i, o)| {
            let id = OrderId::new(format!("o{i}").as_bytes()).unwrap();
            share_order_with_rng(ROUND, &id, o, levels, &mut rng).unwrap()
        })
        .collect()
}

/// Run the MPC and compare result and every fill with the plaintext rule.
fn check_book(levels: u32, book: &[Order], mode: SecurityMode) {
    let keys = NodeKeys::generate_all();
    let run = run_round(cfg(levels, mode), &keys, &payloads(book, levels, 1)).unwrap();
    let want = clear_plain(levels, book);
    assert_eq!(run.result, want.clearing, "levels {levels} book {book:?}");
    let fills = run.reconstruct_fills(ROUND).unwrap();
    assert_eq!(fills, want.fills, "levels {levels} book {book:?}");
}

#[test]
fn issue_test_vector() {
    let book = test_vector_book();
    let keys = NodeKeys::generate_all();
    let run = run_round(
        cfg(64, SecurityMode::SemiHonest),
        &keys,
        &payloads(&book, 64, 7),
    )
    .unwrap();
    assert_eq!(
        run.result,
        ClearingResult::Trade {
            level: 33,
            volume: 10937
        }
    );
    let fills = run.reconstruct_fills(ROUND).unwrap();
    assert_eq!(fills[0], 0, "first buyer");
    assert_eq!(fills[500], 4, "first seller");
    assert_eq!(fills, clear_plain(64, &book).fills);
    assert!(run.dropped.is_empty());
}

#[test]
fn issue_test_vector_malicious_mode() {
    let book = test_vector_book();
    let keys = NodeKeys::generate_all();
    let run = run_round(
        cfg(64, SecurityMode::Malicious),
        &keys,
        &payloads(&book, 64, 8),
    )
    .unwrap();
    assert_eq!(
        run.result,
        ClearingResult::Trade {
            level: 33,
            volume: 10937
        }
    );
    assert_eq!(
        run.reconstruct_fills(ROUND).unwrap(),
        clear_plain(64, &book).fills
    );
}

fn b(limit: u32, qty: u64) -> Order {
    Order {
        side: Side::Buy,
        limit,
        qty,
    }
}
fn s(limit: u32, qty: u64) -> Order {
    Order {
        side: Side::Sell,
        limit,
        qty,
    }
}

#[test]
fn single_level_grid() {
    check_book(1, &[b(0, 3), s(0, 5), b(0, 4)], SecurityMode::SemiHonest);
    check_book(1, &[b(0, 3)], SecurityMode::SemiHonest);
}

#[test]
fn one_side_empty_is_no_trade_and_every_fill_is_zero() {
    for book in [vec![b(3, 10), b(5, 1)], vec![s(0, 7), s(63, 2)]] {
        let keys = NodeKeys::generate_all();
        let run = run_round(
            cfg(64, SecurityMode::SemiHonest),
            &keys,
            &payloads(&book, 64, 2),
        )
        .unwrap();
        assert_eq!(run.result, ClearingResult::NoTrade);
        assert_eq!(run.reconstruct_fills(ROUND).unwrap(), vec![0; book.len()]);
    }
}

#[test]
fn empty_book_and_no_crossing() {
    check_book(64, &[], SecurityMode::SemiHonest);
    check_book(64, &[b(2, 10), s(5, 10)], SecurityMode::SemiHonest);
}

#[test]
fn all_orders_at_one_level() {
    let book: Vec<Order> = (0..20)
        .map(|i| {
            if i % 3 == 0 {
                s(17, i + 1)
            } else {
                b(17, 2 * i + 1)
            }
        })
        .collect();
    check_book(64, &book, SecurityMode::SemiHonest);
    let book: Vec<Order> = (0..9)
        .map(|i| if i % 2 == 0 { s(0, 5) } else { b(0, 5) })
        .collect();
    check_book(64, &book, SecurityMode::SemiHonest);
    let book: Vec<Order> = (0..9)
        .map(|i| if i % 2 == 0 { s(255, 5) } else { b(255, 5) })
        .collect();
    check_book(256, &book, SecurityMode::SemiHonest);
}

#[test]
fn ties_and_non_power_of_two_grids() {
    check_book(8, &[b(5, 6), b(4, 2), s(3, 6)], SecurityMode::SemiHonest);
    check_book(8, &[b(5, 4), b(4, 6), s(3, 5)], SecurityMode::SemiHonest);
    check_book(8, &[b(5, 10), s(3, 10)], SecurityMode::SemiHonest);
    check_book(
        100,
        &[b(99, 6), b(64, 2), s(3, 6), s(70, 9), b(70, 1)],
        SecurityMode::SemiHonest,
    );
    check_book(
        3,
        &[b(2, 1), s(2, 1), s(0, 1), b(1, 3)],
        SecurityMode::SemiHonest,
    );
    // largest quantities
    let big = (1u64 << 32) - 1;
    check_book(
        16,
        &[b(9, big), b(9, big), s(2, big), s(9, big), s(15, 1)],
        SecurityMode::SemiHonest,
    );
}

#[test]
fn out_of_range_orders_are_rejected_by_the_client() {
    let id = OrderId::new(b"x").unwrap();
    assert_eq!(
        share_order(ROUND, &id, &b(64, 1), 64).unwrap_err(),
        Error::LimitOutOfRange {
            limit: 64,
            levels: 64
        }
    );
    assert_eq!(
        share_order(ROUND, &id, &b(3, 0), 64).unwrap_err(),
        Error::QuantityOutOfRange(0)
    );
    assert_eq!(
        share_order(ROUND, &id, &b(3, 1 << 32), 64).unwrap_err(),
        Error::QuantityOutOfRange(1 << 32)
    );
    assert_eq!(
        share_order(ROUND, &id, &b(0, 1), 0).unwrap_err(),
        Error::InvalidLevels(0)
    );
    assert_eq!(
        share_order(ROUND, &id, &b(0, 1), 257).unwrap_err(),
        Error::InvalidLevels(257)
    );
}

#[test]
fn nodes_reject_duplicates_and_misaddressed_payloads() {
    let keys = NodeKeys::generate_all();
    let p = payloads(&[b(1, 1), s(1, 1)], 64, 3);
    let mut c = Collecting::new(cfg(64, SecurityMode::SemiHonest), &keys[0]).unwrap();
    c.add_order(&p[0][0]).unwrap();
    assert!(matches!(
        c.add_order(&p[0][0]),
        Err(Error::DuplicateOrder(_))
    ));
    assert!(matches!(
        c.add_order(&p[1][1]),
        Err(Error::Misaddressed { what: "party", .. })
    ));
    let other = RoundConfig {
        round: [1; 16],
        ..cfg(64, SecurityMode::SemiHonest)
    };
    let mut c2 = Collecting::new(other, &keys[0]).unwrap();
    assert!(matches!(
        c2.add_order(&p[0][0]),
        Err(Error::Misaddressed { what: "round", .. })
    ));
    assert!(c2.add_order_bytes(&[1, 2, 3]).is_err());
    assert!(Collecting::new(cfg(0, SecurityMode::SemiHonest), &keys[0]).is_err());
    assert!(Collecting::new(cfg(257, SecurityMode::SemiHonest), &keys[0]).is_err());
    // the bytes path works too
    let mut c3 = Collecting::new(cfg(64, SecurityMode::SemiHonest), &keys[2]).unwrap();
    assert_eq!(
        c3.add_order_bytes(&p[1][2].order_bytes()).unwrap(),
        p[1][2].id
    );
}

#[test]
fn inconsistent_client_sharing_drops_that_order_only() {
    let book = vec![b(5, 10), s(3, 7), b(6, 4), s(2, 3)];
    let mut p = payloads(&book, 8, 4);
    // order 2's client gives node 0 a second component that node 1 does not have
    let bad = p[2][0].clone();
    let mut bytes = bad.order_bytes();
    bytes[23 + 2 + 15] ^= 0x40; // the top byte of the second word component
    p[2][0] = OrderPayload::from_order_bytes(&bytes).unwrap();
    let keys = NodeKeys::generate_all();
    for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
        let run = run_round(cfg(8, mode), &keys, &p).unwrap();
        assert_eq!(run.dropped, vec![OrderId::new(b"o2").unwrap()]);
        let rest = vec![book[0], book[1], book[3]];
        let want = clear_plain(8, &rest);
        assert_eq!(run.result, want.clearing);
        assert_eq!(run.reconstruct_fills(ROUND).unwrap(), want.fills);
    }
}

#[test]
fn nodes_with_different_order_lists_abort() {
    let book = vec![b(5, 10), s(3, 7)];
    let p = payloads(&book, 8, 5);
    let keys = NodeKeys::generate_all();
    let mut nodes = Vec::new();
    for k in &keys {
        let mut c = Collecting::new(cfg(8, SecurityMode::SemiHonest), k).unwrap();
        let i = k.party().index();
        // node 2 received the two orders in the other order
        let order: Vec<usize> = if i == 2 { vec![1, 0] } else { vec![0, 1] };
        for j in order {
            c.add_order(&p[j][i]).unwrap();
        }
        nodes.push(c.close().unwrap());
    }
    let nodes: [_; 3] = nodes.try_into().unwrap();
    let err =
        veilgrid_mpc::sim::run_phase(nodes, &mut Default::default(), &mut |_| {}).unwrap_err();
    assert!(
        err.0
            .iter()
            .any(|(_, e)| matches!(e, Error::OrderSetMismatch { .. })),
        "{err}"
    );
}

#[test]
fn sequenced_orders_arriving_in_different_orders_clear_in_sequence_order() {
    // 40 orders whose fills depend on submission order (more demand than supply)
    let book: Vec<Order> = (0..40)
        .map(|i| {
            if i % 2 == 0 {
                b(6, 10 + i as u64)
            } else {
                s(2, 7)
            }
        })
        .collect();
    let p = payloads(&book, 8, 9);
    let keys = NodeKeys::generate_all();
    let mut rng = StdRng::seed_from_u64(3);
    let mut nodes = Vec::new();
    for k in &keys {
        let mut c = Collecting::new(cfg(8, SecurityMode::SemiHonest), k).unwrap();
        let i = k.party().index();
        // each node sees its own random interleaving of the submissions
        let mut arrival: Vec<usize> = (0..book.len()).collect();
        for j in (1..arrival.len()).rev() {
            arrival.swap(j, rng.gen_range(0..=j));
        }
        for j in arrival {
            c.add_sequenced(j as u64, &p[j][i]).unwrap();
        }
        // a number cannot be used twice
        let extra = payloads(&[b(1, 1)], 8, 10);
        let mut other = extra[0][i].clone();
        other.id = OrderId::new(b"extra").unwrap();
        assert!(matches!(
            c.add_sequenced(3, &other),
            Err(Error::DuplicateSequence(3))
        ));
        nodes.push(c.close().unwrap());
    }
    let nodes: [_; 3] = nodes.try_into().unwrap();
    let mut t = Default::default();
    let checked = veilgrid_mpc::sim::run_phase(nodes, &mut t, &mut |_| {}).unwrap();
    let cleared = veilgrid_mpc::sim::clear_all(checked, &mut t, &mut |_| {}).unwrap();
    let want = clear_plain(8, &book);
    assert_eq!(cleared[0].result(), want.clearing);
    let [f0, f1, f2] = veilgrid_mpc::sim::fill_all(cleared, &mut t, &mut |_| {}).unwrap();
    let shares = [f0.into_shares(), f1.into_shares(), f2.into_shares()];
    let fills: Vec<u64> = (0..book.len())
        .map(|k| {
            let s = [
                shares[0][k].clone(),
                shares[1][k].clone(),
                shares[2][k].clone(),
            ];
            assert_eq!(s[0].id.as_bytes(), format!("o{k}").as_bytes());
            veilgrid_mpc::reconstruct_fill(ROUND, &s[0].id.clone(), &s).unwrap()
        })
        .collect();
    assert_eq!(fills, want.fills);
    // the fills really depend on the order: not everyone eligible is filled in full
    assert!(fills.iter().zip(&book).any(|(f, o)| *f > 0 && *f < o.qty));
}

#[test]
fn a_node_sending_a_wrong_opened_share_is_detected() {
    let full = test_vector_book();
    let book: Vec<Order> = full[..100].iter().chain(&full[500..600]).copied().collect();
    let p = payloads(&book, 64, 6);
    let keys = NodeKeys::generate_all();
    // The last two clearing steps open V and k*; corrupt party 2's share of V.
    let honest = run_round(cfg(64, SecurityMode::SemiHonest), &keys, &p).unwrap();
    assert!(matches!(honest.result, ClearingResult::Trade { .. }));
    let open_v = honest.clearing.steps - 2;
    let mut tamper = |m: &mut veilgrid_mpc::Message| {
        if m.phase == veilgrid_mpc::Phase::Clearing
            && m.step == open_v
            && m.from.index() == 2
            && m.words.len() == 1
        {
            m.words[0] = m.words[0].wrapping_add(1);
        }
    };
    let err =
        run_round_with(cfg(64, SecurityMode::SemiHonest), &keys, &p, &mut tamper).unwrap_err();
    assert!(
        err.0.iter().any(|(who, e)| who.index() == 1
            && *e
                == Error::OpenMismatch {
                    step: open_v,
                    value_from: veilgrid_mpc::PartyId::new(2).unwrap(),
                    digest_from: veilgrid_mpc::PartyId::new(0).unwrap()
                }),
        "{err}"
    );
}

#[test]
fn a_node_corrupting_a_multiplication_is_caught_in_malicious_mode() {
    let full = test_vector_book();
    let book: Vec<Order> = full[..50].iter().chain(&full[500..550]).copied().collect();
    let p = payloads(&book, 64, 9);
    let keys = NodeKeys::generate_all();
    for step in [0u32, 1, 4, 9, 12] {
        let mut tamper = |m: &mut veilgrid_mpc::Message| {
            if m.phase == veilgrid_mpc::Phase::Clearing
                && m.step == step
                && m.from.index() == 0
                && !m.words.is_empty()
            {
                m.words[0] ^= 1 << 5;
            }
        };
        let err =
            run_round_with(cfg(64, SecurityMode::Malicious), &keys, &p, &mut tamper).unwrap_err();
        assert!(
            err.0.iter().any(|(_, e)| matches!(
                e,
                Error::VerificationFailed(_) | Error::OpenMismatch { .. }
            )),
            "step {step}: {err}"
        );
    }
}

#[test]
fn fill_shares_reveal_nothing_alone_and_zero_fills_look_random() {
    // two nodes' shares of an unfilled order differ between runs; the sum is 0
    let book = vec![b(5, 10), s(3, 7), s(7, 3)];
    let keys = NodeKeys::generate_all();
    let r1 = run_round(
        cfg(8, SecurityMode::SemiHonest),
        &keys,
        &payloads(&book, 8, 10),
    )
    .unwrap();
    let r2 = run_round(
        cfg(8, SecurityMode::SemiHonest),
        &NodeKeys::generate_all(),
        &payloads(&book, 8, 11),
    )
    .unwrap();
    assert_eq!(r1.reconstruct_fills(ROUND).unwrap(), vec![7, 7, 0]);
    let a = r1.fill_shares[0][2].fill_bytes();
    let b2 = r2.fill_shares[0][2].fill_bytes();
    assert_ne!(a, b2, "the share of a zero fill is not a constant");
}

fn order_strategy(levels: u32) -> impl Strategy<Value = Order> {
    // small quantities make ties likely; a few large ones test the widths
    let qty = prop_oneof![8 => 1u64..6, 1 => 1u64..(1 << 32)];
    (any::<bool>(), 0..levels, qty).prop_map(|(buy, limit, qty)| Order {
        side: if buy { Side::Buy } else { Side::Sell },
        limit,
        qty,
    })
}

fn book_strategy() -> impl Strategy<Value = (u32, Vec<Order>)> {
    prop_oneof![Just(1u32), 2u32..10, Just(16u32), Just(64u32), 65u32..=256].prop_flat_map(
        |levels| {
            (
                Just(levels),
                proptest::collection::vec(order_strategy(levels), 0..24),
            )
        },
    )
}

/// `VEILGRID_MPC_PROPTEST_CASES` sets the number of random books (default 200).
fn cases() -> u32 {
    std::env::var("VEILGRID_MPC_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn mpc_matches_the_plaintext_rule((levels, book) in book_strategy()) {
        check_book(levels, &book, SecurityMode::SemiHonest);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases() / 10 + 1, ..ProptestConfig::default() })]

    #[test]
    fn malicious_mode_matches_the_plaintext_rule((levels, book) in book_strategy()) {
        check_book(levels, &book, SecurityMode::Malicious);
    }
}

#[test]
fn orders_travel_sealed_to_each_node() {
    use veilgrid_core::seal::SealKeyPair;
    let node_keys: Vec<SealKeyPair> = (0..3).map(|_| SealKeyPair::generate()).collect();
    let book = vec![b(5, 10), s(3, 7), b(6, 4)];
    let keys = NodeKeys::generate_all();
    let info = b"veilgrid/match/order/v1";
    let mut nodes: Vec<Collecting> = keys
        .iter()
        .map(|k| Collecting::new(cfg(8, SecurityMode::SemiHonest), k).unwrap())
        .collect();
    for (i, o) in book.iter().enumerate() {
        let id = OrderId::new(format!("o{i}").as_bytes()).unwrap();
        let shares = share_order(ROUND, &id, o, 8).unwrap();
        for (node, share) in shares.iter().enumerate() {
            // the client seals node `node`'s share to that node's key; the router sees only this
            let sealed = node_keys[node]
                .public()
                .seal(info, &ROUND, &share.order_bytes())
                .unwrap();
            // another node cannot open it
            assert!(
                node_keys[(node + 1) % 3]
                    .open(info, &ROUND, &sealed)
                    .is_err()
            );
            let plain = node_keys[node].open(info, &ROUND, &sealed).unwrap();
            assert_eq!(nodes[node].add_order_bytes(&plain).unwrap(), id);
        }
    }
    let steps: Vec<_> = nodes.into_iter().map(|n| n.close().unwrap()).collect();
    let checked = veilgrid_mpc::sim::run_phase(
        steps.try_into().unwrap(),
        &mut Default::default(),
        &mut |_| {},
    )
    .unwrap();
    let cleared =
        veilgrid_mpc::sim::clear_all(checked, &mut Default::default(), &mut |_| {}).unwrap();
    let outcomes: Vec<_> = cleared
        .iter()
        .map(|c| c.outcome("ALICE", "BOB").to_bytes().unwrap())
        .collect();
    assert_eq!(outcomes[0], outcomes[1]);
    assert_eq!(outcomes[1], outcomes[2]);
    assert_eq!(cleared[0].result(), clear_plain(8, &book).clearing);
}

#[test]
fn the_transcript_shape_does_not_depend_on_the_orders() {
    // Two different books of the same size that both trade: every party sends the same
    // number of bytes in the same number of steps, so sizes and timing of messages
    // carry nothing about the orders; only the outputs differ.
    let book1 = vec![b(5, 10), s(3, 7), b(6, 4), s(2, 3), b(1, 9)];
    let book2 = vec![s(7, 1), s(0, 100), b(7, 50), b(2, 2), s(6, 6)];
    let keys = NodeKeys::generate_all();
    for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
        let r1 = run_round(cfg(8, mode), &keys, &payloads(&book1, 8, 12)).unwrap();
        let r2 = run_round(cfg(8, mode), &keys, &payloads(&book2, 8, 13)).unwrap();
        assert!(matches!(r1.result, ClearingResult::Trade { .. }));
        assert!(matches!(r2.result, ClearingResult::Trade { .. }));
        assert_ne!(r1.result, r2.result);
        assert_eq!(r1.inputs, r2.inputs);
        assert_eq!(r1.clearing, r2.clearing);
        assert_eq!(r1.fills, r2.fills);
    }
}
