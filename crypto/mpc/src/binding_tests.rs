//! Rounds with range proofs bound to the shares: honest clients, clients whose shares
//! are not their committed values, out-of-range values, tampered statements and a node
//! that lies in the commitment check. Three nodes in process (`sim`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]

use crate::binding::{MAX_QTY, OrderStatement, verify_round_record, verify_statements};
use crate::ctx::SecurityMode;
use crate::error::Error;
use crate::message::{Message, Phase};
use crate::node::{Collecting, DropReason, NodeKeys, ProofVerdict, RoundConfig};
use crate::order::{
    Order, OrderId, OrderPayload, Side, share_order_with_rng, share_with_statement,
};
use crate::party::PartyId;
use crate::plain::clear_plain;
use crate::sim::{run_round, run_round_with};
use rand::{Rng, SeedableRng, rngs::StdRng};

const ROUND: [u8; 16] = [7; 16];

fn cfg(levels: u32, mode: SecurityMode) -> RoundConfig {
    RoundConfig {
        round: ROUND,
        levels,
        mode,
    }
}

fn id(k: usize) -> OrderId {
    OrderId::new(format!("o{k}").as_bytes()).unwrap()
}

fn honest(book: &[Order], levels: u32, rng: &mut StdRng) -> Vec<[OrderPayload; 3]> {
    book.iter()
        .enumerate()
        .map(|(k, o)| share_order_with_rng(ROUND, &id(k), o, levels, rng).unwrap())
        .collect()
}

fn random_book(n: usize, levels: u32, rng: &mut StdRng) -> Vec<Order> {
    (0..n)
        .map(|_| Order {
            side: if rng.r#gen() { Side::Buy } else { Side::Sell },
            limit: rng.gen_range(0..levels),
            qty: rng.gen_range(1..1000),
        })
        .collect()
}

#[test]
fn honest_round_clears_as_plain_and_its_record_verifies() {
    let mut rng = StdRng::seed_from_u64(1);
    let keys = NodeKeys::generate_all();
    for (levels, n) in [(8, 12), (13, 9)] {
        let book = random_book(n, levels, &mut rng);
        let p = honest(&book, levels, &mut rng);
        for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
            let run = run_round(cfg(levels, mode), &keys, &p).unwrap();
            let want = clear_plain(levels, &book);
            assert!(run.dropped.is_empty(), "{:?}", run.drop_reasons);
            assert_eq!(run.result, want.clearing);
            assert_eq!(run.reconstruct_fills(ROUND).unwrap(), want.fills);
            assert_eq!(run.record.len(), n);
            // a statement has a fixed size: 2 commitments, a 2 × 32-bit and a 2 × 8-bit proof
            assert!(run.record.iter().all(|(_, s)| s.to_bytes().len() == 1290));
            verify_round_record(&ROUND, levels, &run.record, &run.order_set_hash).unwrap();
            // the record is bound to the round, the grid and the signed hash
            assert!(
                verify_round_record(&[8; 16], levels, &run.record, &run.order_set_hash).is_err()
            );
            assert!(
                verify_round_record(&ROUND, levels - 1, &run.record, &run.order_set_hash).is_err()
            );
            let mut other = run.record.clone();
            other.swap(0, 1);
            assert!(verify_round_record(&ROUND, levels, &other, &run.order_set_hash).is_err());
            let mut fewer = run.record.clone();
            fewer.pop();
            assert!(verify_round_record(&ROUND, levels, &fewer, &run.order_set_hash).is_err());
        }
    }
}

#[test]
fn extreme_values_pass_the_commitment_check() {
    // the largest quantity and limit, the smallest ones: every carry case of the lift
    let mut rng = StdRng::seed_from_u64(2);
    let levels = 256;
    let book: Vec<Order> = (0..16)
        .map(|k| Order {
            side: if k % 2 == 0 { Side::Buy } else { Side::Sell },
            limit: if k % 4 < 2 { 255 } else { 0 },
            qty: if k % 3 == 0 { MAX_QTY } else { 1 },
        })
        .collect();
    let p = honest(&book, levels, &mut rng);
    let run = run_round(
        cfg(levels, SecurityMode::SemiHonest),
        &NodeKeys::generate_all(),
        &p,
    )
    .unwrap();
    assert!(run.dropped.is_empty(), "{:?}", run.drop_reasons);
    assert_eq!(run.result, clear_plain(levels, &book).clearing);
}

/// A client that commits to `committed` (and proves it in range) but shares `shared`.
fn liar(
    k: usize,
    shared: Order,
    committed: (u64, u64),
    levels: u32,
    rng: &mut StdRng,
) -> [OrderPayload; 3] {
    share_with_statement(
        ROUND,
        &id(k),
        shared.pack(),
        committed,
        levels,
        ((1, MAX_QTY), (0, u64::from(levels - 1))),
        rng,
    )
    .unwrap()
}

#[test]
fn shares_that_are_not_the_committed_values_are_dropped() {
    let mut rng = StdRng::seed_from_u64(3);
    let levels = 8;
    let book = vec![
        Order {
            side: Side::Buy,
            limit: 5,
            qty: 10,
        },
        Order {
            side: Side::Sell,
            limit: 2,
            qty: 7,
        },
        Order {
            side: Side::Buy,
            limit: 6,
            qty: 5,
        },
        Order {
            side: Side::Sell,
            limit: 3,
            qty: 9,
        },
        Order {
            side: Side::Buy,
            limit: 4,
            qty: 3,
        },
    ];
    let mut p = honest(&book, levels, &mut rng);
    // order 2: proof for q = 5, shares q' = 4,000,000,000 (which would buy everything)
    p[2] = liar(
        2,
        Order {
            qty: 4_000_000_000,
            ..book[2]
        },
        (5, 6),
        levels,
        &mut rng,
    );
    // order 4: proof for limit 4, shares limit 7
    p[4] = liar(
        4,
        Order {
            limit: 7,
            ..book[4]
        },
        (3, 4),
        levels,
        &mut rng,
    );
    let keys = NodeKeys::generate_all();
    for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
        let run = run_round(cfg(levels, mode), &keys, &p).unwrap();
        assert_eq!(
            run.drop_reasons,
            vec![
                (id(2), DropReason::CommitmentMismatch),
                (id(4), DropReason::CommitmentMismatch)
            ]
        );
        let rest = vec![book[0], book[1], book[3]];
        let want = clear_plain(levels, &rest);
        assert_eq!(run.result, want.clearing);
        assert_eq!(run.reconstruct_fills(ROUND).unwrap(), want.fills);
        assert_eq!(run.record.len(), 3);
        verify_round_record(&ROUND, levels, &run.record, &run.order_set_hash).unwrap();
    }
}

#[test]
fn out_of_range_values_are_refused_by_the_proofs() {
    let mut rng = StdRng::seed_from_u64(4);
    let levels = 6;
    let o = Order {
        side: Side::Buy,
        limit: 2,
        qty: 3,
    };
    // an honest client cannot even make them
    assert!(share_order_with_rng(ROUND, &id(0), &Order { qty: 0, ..o }, levels, &mut rng).is_err());
    assert!(
        share_order_with_rng(ROUND, &id(0), &Order { limit: 6, ..o }, levels, &mut rng).is_err()
    );
    // the prover refuses a value outside its own bounds
    assert!(matches!(
        share_with_statement(
            ROUND,
            &id(0),
            o.pack(),
            (0, 2),
            levels,
            ((1, MAX_QTY), (0, 5)),
            &mut rng
        ),
        Err(Error::RangeProof(_))
    ));
    // a client that proves q = 0 in [0, Q] or ℓ = P in [0, P] (other statements): the
    // nodes verify [1, Q] and [0, P−1] and drop the order
    let zero = share_with_statement(
        ROUND,
        &id(1),
        Order { qty: 0, ..o }.pack(),
        (0, 2),
        levels,
        ((0, MAX_QTY), (0, 5)),
        &mut rng,
    )
    .unwrap();
    let above = share_with_statement(
        ROUND,
        &id(2),
        Order { limit: 6, ..o }.pack(),
        (3, 6),
        levels,
        ((1, MAX_QTY), (0, 6)),
        &mut rng,
    )
    .unwrap();
    let good = share_order_with_rng(
        ROUND,
        &id(3),
        &Order {
            side: Side::Sell,
            ..o
        },
        levels,
        &mut rng,
    )
    .unwrap();
    let run = run_round(
        cfg(levels, SecurityMode::Malicious),
        &NodeKeys::generate_all(),
        &[zero, above, good],
    )
    .unwrap();
    assert_eq!(
        run.drop_reasons,
        vec![
            (id(1), DropReason::InvalidRangeProof),
            (id(2), DropReason::InvalidRangeProof)
        ]
    );
    assert_eq!(run.record.len(), 1);
}

fn with_statement(p: &[OrderPayload; 3], st: &OrderStatement) -> [OrderPayload; 3] {
    p.clone().map(|mut x| {
        x.statement = st.clone();
        x
    })
}

#[test]
fn tampered_proofs_and_commitments_are_refused() {
    let mut rng = StdRng::seed_from_u64(5);
    let levels = 8;
    let book = random_book(6, levels, &mut rng);
    let p = honest(&book, levels, &mut rng);
    let mut bad = p.clone();
    // 0: one byte of the quantity proof flipped (same at all nodes)
    let mut b = p[0][0].statement.to_bytes();
    b[64 + 2 + 100] ^= 1;
    bad[0] = with_statement(&p[0], &OrderStatement::from_bytes(&b).unwrap());
    // 1: the quantity commitment replaced by another order's
    let s = &p[1][0].statement;
    let swapped = OrderStatement::from_parts(
        p[2][0].statement.qty_commitment,
        s.limit_commitment,
        s.qty_proof().to_vec(),
        s.limit_proof().to_vec(),
    )
    .unwrap();
    bad[1] = with_statement(&p[1], &swapped);
    // 2: another order's whole statement (bound to that order's id)
    bad[2] = with_statement(&p[2], &p[3][0].statement);
    // 3: the limit proof flipped at node 1 only: the copies differ
    let mut b = p[3][0].statement.to_bytes();
    let l = b.len();
    b[l - 5] ^= 1;
    bad[3][1].statement = OrderStatement::from_bytes(&b).unwrap();
    let statements: Vec<OrderStatement> = bad.iter().map(|x| x[0].statement.clone()).collect();
    let ids: Vec<OrderId> = (0..6).map(id).collect();
    assert_eq!(
        verify_statements(&ROUND, levels, &ids, &statements),
        vec![false, false, false, true, true, true]
    );
    let run = run_round(
        cfg(levels, SecurityMode::SemiHonest),
        &NodeKeys::generate_all(),
        &bad,
    )
    .unwrap();
    assert_eq!(
        run.drop_reasons,
        vec![
            (id(0), DropReason::InvalidRangeProof),
            (id(1), DropReason::InvalidRangeProof),
            (id(2), DropReason::InvalidRangeProof),
            (id(3), DropReason::InconsistentSharing),
        ]
    );
    let want = clear_plain(levels, &book[4..]);
    assert_eq!(run.result, want.clearing);
    assert_eq!(run.reconstruct_fills(ROUND).unwrap(), want.fills);
    // an auditor refuses a record with a tampered statement
    let mut rec = run.record.clone();
    rec[0].1 = p[0][0].statement.clone();
    assert!(verify_round_record(&ROUND, levels, &rec, &run.order_set_hash).is_err());
}

#[test]
fn proofs_are_verified_when_orders_arrive() {
    let mut rng = StdRng::seed_from_u64(6);
    let levels = 8;
    let book = random_book(3, levels, &mut rng);
    let p = honest(&book, levels, &mut rng);
    let mut b = p[1][0].statement.to_bytes();
    b[64 + 2 + 100] ^= 1;
    let tampered = OrderStatement::from_bytes(&b).unwrap();
    let keys = NodeKeys::generate_all();
    let c = cfg(levels, SecurityMode::SemiHonest);
    let mut node = Collecting::new(c, &keys[0]).unwrap();
    node.add_order(&p[0][0]).unwrap();
    assert_eq!(node.invalid_proofs(), 0);
    let mut bad = p[1][0].clone();
    bad.statement = tampered;
    node.add_order(&bad).unwrap();
    // the failure is recorded before close
    assert_eq!(node.invalid_proofs(), 1);
    // a verdict made for another order (or round) is refused
    let other = ProofVerdict::check(&c, &p[0][0]);
    assert!(other.holds());
    assert!(node.add_verified(2, &p[2][0], other).is_err());
    let own = ProofVerdict::check(&c, &p[2][0]);
    node.add_verified(2, &p[2][0], own).unwrap();
    assert_eq!((node.len(), node.invalid_proofs()), (3, 1));
}

#[test]
fn a_node_lying_about_a_share_point_aborts_the_round_naming_it() {
    let mut rng = StdRng::seed_from_u64(6);
    let levels = 8;
    let book = random_book(4, levels, &mut rng);
    let p = honest(&book, levels, &mut rng);
    let n = book.len();
    for mode in [SecurityMode::SemiHonest, SecurityMode::Malicious] {
        // node 1 sends node 2 a wrong P_1 for order 0 (another valid point)
        let mut tamper = |m: &mut Message| {
            if m.phase == Phase::Inputs
                && m.from.index() == 1
                && m.to.index() == 2
                && m.words.len() == 8 * n
                && m.step >= 5
            {
                let b = curve25519_dalek::ristretto::RistrettoPoint::random(&mut rand::rngs::OsRng)
                    .compress();
                for k in 0..4 {
                    m.words[k] =
                        u64::from_le_bytes(b.as_bytes()[8 * k..8 * k + 8].try_into().unwrap());
                }
            }
        };
        let errs = run_round_with(
            cfg(levels, mode),
            &NodeKeys::generate_all(),
            &p,
            &mut tamper,
        )
        .unwrap_err()
        .0;
        assert_eq!(errs.len(), 1, "{errs:?}");
        let (at, e) = &errs[0];
        assert_eq!(at.index(), 2);
        assert_eq!(
            *e,
            Error::CommitmentShareMismatch {
                component: 1,
                a: PartyId::new(1).unwrap(),
                b: PartyId::new(0).unwrap()
            }
        );
    }
}
