//! Range proofs: single and aggregated proofs of 32 and 64 bits, bounded proofs,
//! encoding, transcript binding (Frozen Heart) and batch verification.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use veilgrid_zk::Error;
use veilgrid_zk::range::{
    BatchVerifier, BitSize, Blinding, BoundedProof, Commitment, MAX_RANGE_PROOF_BYTES,
    RangeContext, RangeProof, domains,
};

fn ctx(round: u64) -> RangeContext {
    RangeContext::new(domains::AGG_VERIFIABLE_INPUT)
        .bind_u64(b"round", round)
        .bind(b"client", b"client-7")
}

fn blindings(n: usize) -> Vec<Blinding> {
    (0..n).map(|_| Blinding::random()).collect()
}

fn values(rng: &mut StdRng, bits: BitSize, n: usize) -> Vec<u64> {
    (0..n)
        .map(|_| rng.r#gen::<u64>() & bits.max_value())
        .collect()
}

#[test]
fn single_and_aggregated_proofs_of_32_and_64_bits_verify() {
    let mut rng = StdRng::seed_from_u64(1);
    for bits in [BitSize::Bits32, BitSize::Bits64] {
        for n in [1usize, 3, 16] {
            let vals = values(&mut rng, bits, n);
            let (proof, commitments) =
                RangeProof::prove(&ctx(1), bits, &vals, &blindings(n)).unwrap();
            assert_eq!(commitments.len(), n);
            proof.verify(&ctx(1), bits, &commitments).unwrap();
            let decoded = RangeProof::from_bytes(&proof.to_bytes()).unwrap();
            decoded.verify(&ctx(1), bits, &commitments).unwrap();
        }
    }
    // The extremes of the range.
    let (p, c) =
        RangeProof::prove(&ctx(1), BitSize::Bits64, &[0, u64::MAX], &blindings(2)).unwrap();
    p.verify(&ctx(1), BitSize::Bits64, &c).unwrap();
    let (p, c) =
        RangeProof::prove(&ctx(1), BitSize::Bits32, &[u32::MAX as u64], &blindings(1)).unwrap();
    p.verify(&ctx(1), BitSize::Bits32, &c).unwrap();
}

fn sixty_four_values(bits: BitSize) {
    let mut rng = StdRng::seed_from_u64(2);
    let vals = values(&mut rng, bits, 64);
    let (proof, c) = RangeProof::prove(&ctx(3), bits, &vals, &blindings(64)).unwrap();
    // (2·lg(64·n) + 9) group elements plus the 3-byte header.
    let lg = (64 * bits.bits()).trailing_zeros() as usize;
    assert_eq!(proof.to_bytes().len(), 3 + (2 * lg + 9) * 32);
    assert!(proof.to_bytes().len() <= MAX_RANGE_PROOF_BYTES);
    proof.verify(&ctx(3), bits, &c).unwrap();
    let mut swapped = c.clone();
    swapped.swap(0, 63);
    assert!(proof.verify(&ctx(3), bits, &swapped).is_err());
}

#[test]
fn sixty_four_32_bit_values_aggregate_into_one_proof() {
    sixty_four_values(BitSize::Bits32);
}

/// About a second of CPU; run with
/// `cargo test -p veilgrid-zk --test range_proofs -- --ignored` (the benchmark also proves and verifies it).
#[test]
#[ignore = "heavy: 64 x 64-bit aggregated proof"]
fn sixty_four_64_bit_values_aggregate_into_one_proof() {
    sixty_four_values(BitSize::Bits64);
}

#[test]
fn out_of_range_values_and_bad_shapes_are_refused_by_the_prover() {
    assert_eq!(
        RangeProof::prove(&ctx(1), BitSize::Bits32, &[1 << 32], &blindings(1)).unwrap_err(),
        Error::ValueOutOfRange
    );
    assert!(matches!(
        RangeProof::prove(&ctx(1), BitSize::Bits32, &[], &[]),
        Err(Error::CountMismatch { .. })
    ));
    assert!(matches!(
        RangeProof::prove(&ctx(1), BitSize::Bits32, &[1, 2], &blindings(1)),
        Err(Error::CountMismatch { .. })
    ));
    assert!(matches!(
        RangeProof::prove(&ctx(1), BitSize::Bits8, &[1; 65], &blindings(65)),
        Err(Error::TooLarge { .. })
    ));
}

#[test]
fn every_public_value_is_bound_into_the_transcript() {
    let vals = [17u64, 4000, 123_456];
    let r = blindings(3);
    let (proof, c) = RangeProof::prove(&ctx(9), BitSize::Bits32, &vals, &r).unwrap();
    proof.verify(&ctx(9), BitSize::Bits32, &c).unwrap();

    let wrong_contexts = [
        ctx(10), // another round
        RangeContext::new(domains::MATCH_ORDER_QUANTITY) // another domain
            .bind_u64(b"round", 9)
            .bind(b"client", b"client-7"),
        RangeContext::new(domains::AGG_VERIFIABLE_INPUT) // fields reordered
            .bind(b"client", b"client-7")
            .bind_u64(b"round", 9),
        ctx(9).bind(b"extra", b""),         // an extra field
        ctx(9).bind(b"blob", &[0u8; 2000]), // a long field
        RangeContext::new(domains::AGG_VERIFIABLE_INPUT) // a field dropped
            .bind_u64(b"round", 9),
        RangeContext::new(domains::AGG_VERIFIABLE_INPUT) // same bytes, other label
            .bind_u64(b"epoch", 9)
            .bind(b"client", b"client-7"),
    ];
    for (i, wrong) in wrong_contexts.iter().enumerate() {
        assert!(
            proof.verify(wrong, BitSize::Bits32, &c).is_err(),
            "context {i}"
        );
    }
    // Commitments swapped, replaced or dropped.
    let swapped = vec![c[1], c[0], c[2]];
    assert!(proof.verify(&ctx(9), BitSize::Bits32, &swapped).is_err());
    let mut other = c.clone();
    other[2] = Commitment::commit(123_456, &Blinding::random());
    assert!(proof.verify(&ctx(9), BitSize::Bits32, &other).is_err());
    assert!(matches!(
        proof.verify(&ctx(9), BitSize::Bits32, &c[..2]),
        Err(Error::CountMismatch { .. })
    ));
    // A long field is bound by its hash, under its own label: the hash as a short value differs.
    let long = vec![7u8; 2000];
    let (lp, lc) =
        RangeProof::prove(&ctx(9).bind(b"blob", &long), BitSize::Bits32, &vals, &r).unwrap();
    lp.verify(&ctx(9).bind(b"blob", &long), BitSize::Bits32, &lc)
        .unwrap();
    let mut other_long = long.clone();
    other_long[1999] = 8;
    assert!(
        lp.verify(&ctx(9).bind(b"blob", &other_long), BitSize::Bits32, &lc)
            .is_err()
    );
    {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(&long);
        assert!(
            lp.verify(&ctx(9).bind(b"blob", &digest), BitSize::Bits32, &lc)
                .is_err()
        );
    }
    // The verifier's bit-size policy is enforced.
    assert!(proof.verify(&ctx(9), BitSize::Bits64, &c).is_err());
}

#[test]
fn flipping_any_byte_of_an_encoded_proof_is_refused() {
    let (proof, c) = RangeProof::prove(&ctx(4), BitSize::Bits32, &[99], &blindings(1)).unwrap();
    let bytes = proof.to_bytes();
    for pos in 0..bytes.len() {
        let mut b = bytes.clone();
        b[pos] ^= 0x01;
        let ok = RangeProof::from_bytes(&b).and_then(|p| p.verify(&ctx(4), BitSize::Bits32, &c));
        assert!(ok.is_err(), "flip at {pos} verified");
    }
    assert!(RangeProof::from_bytes(&bytes[..bytes.len() - 32]).is_err());
    assert!(RangeProof::from_bytes(&[bytes.clone(), vec![0; 32]].concat()).is_err());
    assert!(RangeProof::from_bytes(&vec![0u8; MAX_RANGE_PROOF_BYTES + 1]).is_err());
    assert!(RangeProof::from_bytes(&[]).is_err());
}

#[test]
fn bounded_proofs_for_order_quantities_and_limit_indexes() {
    // A limit index among 64 price levels, an order quantity in [1, 10^9].
    let limit_ctx = RangeContext::new(domains::MATCH_LIMIT_INDEX).bind(b"order", b"order-1");
    for idx in [0u64, 17, 63] {
        let r = blindings(1);
        let (p, c) = BoundedProof::prove(&limit_ctx, BitSize::Bits8, 0, 63, &[idx], &r).unwrap();
        p.verify(&limit_ctx, BitSize::Bits8, 0, 63, &c).unwrap();
        c[0].verify_opening(u128::from(idx), &r[0]).unwrap();
        // The bounds are part of the statement.
        assert!(p.verify(&limit_ctx, BitSize::Bits8, 0, 62, &c).is_err());
        assert!(p.verify(&limit_ctx, BitSize::Bits8, 1, 63, &c).is_err());
    }
    assert_eq!(
        BoundedProof::prove(&limit_ctx, BitSize::Bits8, 0, 63, &[64], &blindings(1)).unwrap_err(),
        Error::ValueOutOfRange
    );

    let qty_ctx = RangeContext::new(domains::MATCH_ORDER_QUANTITY).bind(b"round", b"r1");
    let qty = [1u64, 500, 1_000_000_000, 42];
    let (p, c) = BoundedProof::prove(
        &qty_ctx,
        BitSize::Bits32,
        1,
        1_000_000_000,
        &qty,
        &blindings(4),
    )
    .unwrap();
    assert_eq!(p.count(), 4);
    p.verify(&qty_ctx, BitSize::Bits32, 1, 1_000_000_000, &c)
        .unwrap();
    BoundedProof::from_bytes(&p.to_bytes())
        .unwrap()
        .verify(&qty_ctx, BitSize::Bits32, 1, 1_000_000_000, &c)
        .unwrap();
    assert_eq!(
        BoundedProof::prove(
            &qty_ctx,
            BitSize::Bits32,
            1,
            1_000_000_000,
            &[0],
            &blindings(1)
        )
        .unwrap_err(),
        Error::ValueOutOfRange
    );
    // A quantity commitment proven for one order is not accepted for another one's.
    let mut other = c.clone();
    other[1] = Commitment::commit(500, &Blinding::random());
    assert!(
        p.verify(&qty_ctx, BitSize::Bits32, 1, 1_000_000_000, &other)
            .is_err()
    );
    // Ranges that cannot be proven with the chosen width are refused.
    assert!(matches!(
        BoundedProof::prove(&qty_ctx, BitSize::Bits8, 0, 256, &[3], &blindings(1)),
        Err(Error::InvalidRange { .. })
    ));
    assert!(matches!(
        BoundedProof::prove(&qty_ctx, BitSize::Bits8, 5, 4, &[5], &blindings(1)),
        Err(Error::InvalidRange { .. })
    ));
    // Full 64-bit bounds work.
    let (p, c) = BoundedProof::prove(
        &qty_ctx,
        BitSize::Bits64,
        0,
        u64::MAX,
        &[u64::MAX],
        &blindings(1),
    )
    .unwrap();
    p.verify(&qty_ctx, BitSize::Bits64, 0, u64::MAX, &c)
        .unwrap();
}

#[test]
fn a_range_proof_is_not_a_bounded_proof() {
    let (p, c) =
        BoundedProof::prove(&ctx(1), BitSize::Bits32, 0, 1000, &[5], &blindings(1)).unwrap();
    // Same bytes read as a plain range proof over two values: different statement, refused.
    let as_range = RangeProof::from_bytes(&p.to_bytes()).unwrap();
    let derived = [c[0], c[0]];
    assert!(as_range.verify(&ctx(1), BitSize::Bits32, &derived).is_err());
}

#[test]
fn aggregation_round_commitment_check() {
    // Verifiable aggregation: each client commits to each coordinate of its vector
    // and proves it in range; the server publishes the sum and the summed blinding,
    // and anyone checks the sum against the product of the commitments.
    let mut rng = StdRng::seed_from_u64(5);
    let clients = 5;
    let dim = 4;
    let mut sum = vec![0u128; dim];
    let mut blinding_sums: Vec<Vec<Blinding>> = vec![Vec::new(); dim];
    let mut per_coordinate: Vec<Vec<Commitment>> = vec![Vec::new(); dim];
    let mut batch = BatchVerifier::new();
    for client in 0..clients {
        let vals = values(&mut rng, BitSize::Bits32, dim);
        let r = blindings(dim);
        let c_ctx = RangeContext::new(domains::AGG_VERIFIABLE_INPUT)
            .bind_u64(b"round", 77)
            .bind_u64(b"client", client);
        let (proof, commitments) = RangeProof::prove(&c_ctx, BitSize::Bits32, &vals, &r).unwrap();
        batch
            .add_range(&c_ctx, BitSize::Bits32, &commitments, &proof)
            .unwrap();
        for k in 0..dim {
            sum[k] += u128::from(vals[k]);
            blinding_sums[k].push(r[k].clone());
            per_coordinate[k].push(commitments[k]);
        }
    }
    batch.verify().unwrap();
    for k in 0..dim {
        let total = Commitment::sum(&per_coordinate[k]).unwrap();
        let r = Blinding::sum(&blinding_sums[k]);
        total.verify_opening(sum[k], &r).unwrap();
        assert_eq!(
            total.verify_opening(sum[k] + 1, &r),
            Err(Error::OpeningFailed)
        );
    }
}

#[test]
fn batch_verification_accepts_valid_batches_and_names_the_bad_proof() {
    let mut rng = StdRng::seed_from_u64(6);
    let mut batch = BatchVerifier::new();
    let mut statements = Vec::new();
    for i in 0..12u64 {
        let bits = if i % 2 == 0 {
            BitSize::Bits32
        } else {
            BitSize::Bits64
        };
        let n = [1usize, 2, 4, 3][i as usize % 4];
        let vals = values(&mut rng, bits, n);
        let (p, c) = RangeProof::prove(&ctx(i), bits, &vals, &blindings(n)).unwrap();
        batch.add_range(&ctx(i), bits, &c, &p).unwrap();
        statements.push((i, bits, p, c));
    }
    let (bp, bc) =
        BoundedProof::prove(&ctx(99), BitSize::Bits8, 0, 63, &[5, 60], &blindings(2)).unwrap();
    batch
        .add_bounded(&ctx(99), BitSize::Bits8, 0, 63, &bc, &bp)
        .unwrap();
    assert_eq!(batch.len(), 13);
    batch.verify().unwrap();

    // The same batch with proof #7 checked against the wrong context.
    for bad in [0usize, 7, 11] {
        let mut batch = BatchVerifier::new();
        for (j, (i, bits, p, c)) in statements.iter().enumerate() {
            let round = if j == bad { i + 1000 } else { *i };
            batch.add_range(&ctx(round), *bits, c, p).unwrap();
        }
        batch
            .add_bounded(&ctx(99), BitSize::Bits8, 0, 63, &bc, &bp)
            .unwrap();
        assert_eq!(batch.verify(), Err(Error::BatchItemFailed { index: bad }));
    }
    // A bounded proof with the wrong bounds at the end of the batch.
    let mut batch = BatchVerifier::new();
    let (i, bits, p, c) = &statements[0];
    batch.add_range(&ctx(*i), *bits, c, p).unwrap();
    batch
        .add_bounded(&ctx(99), BitSize::Bits8, 0, 62, &bc, &bp)
        .unwrap();
    assert_eq!(batch.verify(), Err(Error::BatchItemFailed { index: 1 }));
    // Shape errors are reported when adding.
    let mut batch = BatchVerifier::new();
    assert_eq!(*bits, BitSize::Bits32);
    assert!(batch.add_range(&ctx(*i), BitSize::Bits64, c, p).is_err());
    assert!(batch.add_range(&ctx(*i), *bits, &c[..0], p).is_err());
    BatchVerifier::new().verify().unwrap();
}

#[test]
fn commitments_hide_the_value_and_proofs_are_randomized() {
    // The same value proven twice: unrelated commitments and proofs, so an observer
    // cannot tell that two clients (or one client twice) sent the same value.
    let (p1, c1) = RangeProof::prove(&ctx(1), BitSize::Bits32, &[5], &blindings(1)).unwrap();
    let (p2, c2) = RangeProof::prove(&ctx(1), BitSize::Bits32, &[5], &blindings(1)).unwrap();
    assert_ne!(c1, c2);
    assert_ne!(p1.to_bytes(), p2.to_bytes());
    // Verification needs only public data: the commitment, the proof and the context.
    p1.verify(&ctx(1), BitSize::Bits32, &c1).unwrap();
    // A proof for one commitment does not verify for the other, even with the same value.
    assert!(p1.verify(&ctx(1), BitSize::Bits32, &c2).is_err());
}

#[test]
fn deterministic_rng_gives_reproducible_proofs() {
    let r = [Blinding::from_bytes(&[3u8; 32]).unwrap()];
    let a = RangeProof::prove_with_rng(
        &ctx(1),
        BitSize::Bits16,
        &[7],
        &r,
        &mut StdRng::seed_from_u64(9),
    )
    .unwrap();
    let b = RangeProof::prove_with_rng(
        &ctx(1),
        BitSize::Bits16,
        &[7],
        &r,
        &mut StdRng::seed_from_u64(9),
    )
    .unwrap();
    assert_eq!(a.0.to_bytes(), b.0.to_bytes());
    assert_eq!(a.1, b.1);
}
