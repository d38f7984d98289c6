//! Verifiable mode: commitments, aggregated range proofs, the opening check and the audit.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use veilgrid_aggregation::*;

fn verifiable_params(len: u32, bits: u32) -> RoundParams {
    RoundParams::new(len, bits, 8, 3, 1)
        .unwrap()
        .verifiable()
        .unwrap()
}

fn audit_of(msgs: &[ClientMessage], result: &AggregateResult) -> AuditTranscript {
    AuditTranscript::from_round(msgs, result).unwrap()
}

#[test]
fn verifiable_round_sums_and_audits() {
    // B = 16 is a Bulletproofs bit size; B = 10 needs the complement proof too.
    for bits in [16u32, 10] {
        let s = setup(verifiable_params(16, bits), bits as u8);
        let inputs = random_inputs(&mut rng(bits as u64), 4, 16, bits);
        let mut msgs = client_messages(&s, &inputs, 0);
        // One extreme client: every entry at the bound's maximum.
        msgs.push(client_messages(&s, &[vec![(1 << bits) - 1; 16]], 4).remove(0));
        let result = run(&s, &msgs, &[1, 3]).unwrap();
        let mut all = inputs.clone();
        all.push(vec![(1 << bits) - 1; 16]);
        assert_eq!(result.sum, plain_sum(&all));
        // The auditor re-checks offline from the transcript bytes.
        let audit = audit_of(&msgs, &result);
        let bytes = audit.to_bytes(&s.round);
        let decoded = AuditTranscript::from_bytes(&s.round, &bytes).unwrap();
        assert_eq!(decoded, audit);
        decoded.verify(&s.round).unwrap();
        // A transcript with a different sum, or a missing client, does not verify.
        let mut wrong = audit.clone();
        wrong.sum[3] += 1;
        assert_eq!(
            wrong.verify(&s.round).unwrap_err(),
            Error::InconsistentRound
        );
        let mut missing = audit.clone();
        missing.clients.pop();
        assert_eq!(
            missing.verify(&s.round).unwrap_err(),
            Error::InconsistentRound
        );
    }
}

/// Client 2 keeps the valid commitments and proof of its honest input but adds `delta` to its
/// first entry in the masked vector (`Δ·delta` more in the masked value).
fn forged_round(delta: u64, tag: u8) -> Result<AggregateResult, Error> {
    let s = setup(verifiable_params(8, 16), tag);
    let inputs = random_inputs(&mut rng(tag as u64), 3, 8, 16);
    let mut msgs = client_messages(&s, &inputs, 0);
    let p = s.round.params().ring().output_modulus();
    let d = s.round.params().scale_bits();
    let mut bytes = msgs[2].to_bytes(&s.round);
    let v = first_masked(&s.round, &bytes);
    set_first_masked(&s.round, &mut bytes, p.add(v, delta << d));
    msgs[2] = ClientMessage::from_bytes(&s.round, &bytes)?;
    // Its range proof still verifies (it proves the committed values): the server accepts it.
    run(&s, &msgs, &[1, 2])
}

#[test]
fn a_client_whose_masked_vector_differs_from_its_commitments_aborts_the_round() {
    // A small shift keeps the sum plausible: only the commitments catch it.
    assert_eq!(forged_round(1, 30).unwrap_err(), Error::InconsistentRound);
    // A large one is already caught by decoding (beyond any sum of in-range entries).
    assert!(matches!(
        forged_round(1 << 20, 31).unwrap_err(),
        Error::Decode(_)
    ));
}

#[test]
fn proofs_are_bound_to_client_and_round_and_bad_ones_are_rejected() {
    let s = setup(verifiable_params(8, 8), 40);
    let msgs = client_messages(&s, &random_inputs(&mut rng(40), 2, 8, 8), 0);
    let mut server = ServerCollecting::new(&s.round);
    // Client 1 presents client 0's commitments and proof: the transcript binds the client id.
    let mut stolen = msgs[1].to_bytes(&s.round);
    let att_len = veilgrid_aggregation::verifiable::Attachment::encoded_len(&s.round);
    let src = msgs[0].to_bytes(&s.round);
    let n = stolen.len();
    stolen[n - att_len..].copy_from_slice(&src[n - att_len..]);
    let stolen = ClientMessage::from_bytes(&s.round, &stolen).unwrap();
    assert_eq!(server.accept(&stolen).unwrap_err(), Error::RangeProof(1));
    // A corrupted proof.
    let mut bad = msgs[0].to_bytes(&s.round);
    let last = bad.len() - 40;
    bad[last] ^= 1;
    match ClientMessage::from_bytes(&s.round, &bad) {
        Ok(m) => assert_eq!(server.accept(&m).unwrap_err(), Error::RangeProof(0)),
        Err(e) => assert!(matches!(e, Error::Malformed { .. })),
    }
    // The honest messages are still accepted: the bad ones changed nothing.
    server.accept(&msgs[0]).unwrap();
    server.accept_bytes(&msgs[1].to_bytes(&s.round)).unwrap();
    // A plain round's message claiming an attachment is refused.
    let plain = setup(RoundParams::new(8, 8, 8, 3, 1).unwrap(), 40);
    let pm = client_messages(&plain, &[vec![1; 8]], 0).remove(0);
    let mut b = pm.to_bytes(&plain.round);
    *b.last_mut().unwrap() = 1;
    assert!(matches!(
        ClientMessage::from_bytes(&plain.round, &b).unwrap_err(),
        Error::Mode(_)
    ));
}

#[test]
fn verifiable_limbs_fit_the_capacity() {
    for (n, bits) in [(8u32, 16u32), (1000, 16), (1000, 30), (100_000, 8)] {
        let p = RoundParams::new(4, bits, n, 3, 1)
            .unwrap()
            .verifiable()
            .unwrap();
        assert!(params::fits(p.ring(), n, p.limb_bits()));
        assert!(p.limb_bits() >= bits.min(32));
        assert_eq!(p.masked_length(), 4 * (1 + p.limbs_per_scalar()));
    }
}

/// `cargo test -p veilgrid-aggregation --release -- --ignored verifiable_round_at_l_4096`
#[test]
#[ignore = "heavy: Bulletproofs over 4096 entries (about 40 s in release)"]
fn verifiable_round_at_l_4096() {
    let s = setup(
        RoundParams::new(4096, 16, 4, 3, 1)
            .unwrap()
            .verifiable()
            .unwrap(),
        50,
    );
    let inputs = random_inputs(&mut rng(50), 2, 4096, 16);
    let msgs = client_messages(&s, &inputs, 0);
    let result = run(&s, &msgs, &[2, 3]).unwrap();
    assert_eq!(result.sum, plain_sum(&inputs));
    audit_of(&msgs, &result).verify(&s.round).unwrap();
}
