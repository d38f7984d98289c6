//! Privacy claims as tests. Each statistic is also run on a deliberately broken masking to show
//! that the test would catch it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;
use common::*;
use veilgrid_aggregation::*;
use veilgrid_core::seal::SealKeyPair;

/// Pearson chi-square of `counts` against the uniform distribution.
fn chi_square(counts: &[u64]) -> f64 {
    let total: u64 = counts.iter().sum();
    let e = total as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

/// Histogram of the bytes of the packed masked vector (what travels on the wire).
fn byte_histogram(round: &Round, msg: &ClientMessage) -> Vec<u64> {
    let bytes = msg.to_bytes(round);
    let off = MASKED_OFFSET;
    let len = msg.masked().len() * round.params().ring().output_bits() as usize / 8;
    let mut h = vec![0u64; 256];
    for &b in &bytes[off..off + len] {
        h[b as usize] += 1;
    }
    h
}

/// Histogram of 64 buckets of `value · 64 / p` (high bits) and of `value mod 64` (low bits).
fn value_histograms(values: &[u64], p: u64) -> (Vec<u64>, Vec<u64>) {
    let mut hi = vec![0u64; 64];
    let mut lo = vec![0u64; 64];
    for &v in values {
        hi[((v as u128 * 64) / p as u128) as usize] += 1;
        lo[(v % 64) as usize] += 1;
    }
    (hi, lo)
}

// With 255 (resp. 63) degrees of freedom, chi-square exceeds 360 (resp. 120) with probability
// below 1e-5 under the null hypothesis: these thresholds make the tests reliable.
const BYTES_LIMIT: f64 = 360.0;
const BUCKET_LIMIT: f64 = 120.0;

#[test]
fn masked_vectors_of_extreme_inputs_look_uniform() {
    let s = setup(RoundParams::new(8192, 16, 100, 5, 2).unwrap(), 1);
    let p = s.round.params().ring().output_modulus().value();
    let zeros = vec![0u64; 8192];
    let maxes = vec![(1u64 << 16) - 1; 8192];
    let msgs = client_messages(&s, &[zeros.clone(), maxes.clone()], 0);
    for m in &msgs {
        let bytes = chi_square(&byte_histogram(&s.round, m));
        assert!(bytes < BYTES_LIMIT, "wire bytes not uniform: {bytes}");
        let (hi, lo) = value_histograms(m.masked(), p);
        assert!(chi_square(&hi) < BUCKET_LIMIT, "high bits not uniform");
        assert!(chi_square(&lo) < BUCKET_LIMIT, "low bits not uniform");
    }
    // Two-sample check: the two inputs give histograms that agree with each other.
    let (h0, l0) = value_histograms(msgs[0].masked(), p);
    let (h1, l1) = value_histograms(msgs[1].masked(), p);
    let two_sample = |a: &[u64], b: &[u64]| -> f64 {
        a.iter()
            .zip(b)
            .filter(|(x, y)| **x + **y > 0)
            .map(|(&x, &y)| (x as f64 - y as f64).powi(2) / (x + y) as f64)
            .sum()
    };
    assert!(two_sample(&h0, &h1) < BUCKET_LIMIT);
    assert!(two_sample(&l0, &l1) < BUCKET_LIMIT);

    // The same statistics catch a broken masking: no mask (Δ·x), or a mask of only B + d bits.
    let d = s.round.params().scale_bits();
    let unmasked: Vec<u64> = maxes.iter().map(|&x| x << d).collect();
    let (hi, lo) = value_histograms(&unmasked, p);
    assert!(chi_square(&hi) > BUCKET_LIMIT && chi_square(&lo) > BUCKET_LIMIT);
    let mut r = rng(1);
    let short_mask: Vec<u64> = random_inputs(&mut r, 1, 8192, 16 + d)[0]
        .iter()
        .zip(&zeros)
        .map(|(&g, &x)| (x << d) + g)
        .collect();
    let (hi, _) = value_histograms(&short_mask, p);
    assert!(chi_square(&hi) > BUCKET_LIMIT);
}

/// The server's view of a client plus `t` colluding members: the masked vector and `t` opened
/// share payloads. The `t` shares are consistent with every seed (Shamir), so they cannot tell
/// which input was masked; and interpolating with them instead of `t + 1` gives a seed whose
/// expansion does not unmask the vector.
#[test]
fn server_plus_t_members_cannot_unmask_a_client() {
    let s = setup(RoundParams::new(256, 16, 10, 5, 2).unwrap(), 2);
    let x: Vec<u64> = (0..256).map(|i| i * 7).collect();
    let msg = client_messages(&s, std::slice::from_ref(&x), 42).remove(0);
    let present = PresentSet::new(&s.round, vec![42]).unwrap();
    // Members 1 and 2 collude: their "sums" over {42} are exactly their shares of the seed.
    let colluders: Vec<MemberMessage> = [1u16, 2]
        .iter()
        .map(|&i| member_answer(&s, i, std::slice::from_ref(&msg), &present).unwrap())
        .collect();
    // With t shares the server cannot finish ...
    let mut server = ServerCollecting::new(&s.round);
    server.accept(&msg).unwrap();
    let mut server = server.close().unwrap();
    for c in &colluders {
        server.accept_member(c).unwrap();
    }
    assert!(matches!(
        server.finish(),
        Err(Error::NotEnoughMembers { have: 2, need: 3 })
    ));
    // ... and guessing the third share (here: the one that would make the seed zero, or a
    // random one) unmasks to garbage that fails decoding, never to x.
    let mut r = rng(2);
    for attempt in 0..3 {
        let mut server = ServerCollecting::new(&s.round);
        server.accept(&msg).unwrap();
        let mut server = server.close().unwrap();
        for c in &colluders {
            server.accept_member(c).unwrap();
        }
        let fake = member_answer(&s, 3, std::slice::from_ref(&msg), &present).unwrap();
        let mut b = fake.to_bytes(&s.round);
        let off = 4 + 1 + 32 + 2 + 32 + 4;
        let guess = random_inputs(&mut r, 1, 8, 8)[0].clone();
        for (k, g) in guess.iter().enumerate() {
            b[off + k] ^= (*g as u8) | (attempt as u8 + 1);
        }
        let fake = MemberMessage::from_bytes(&s.round, &b).unwrap();
        server.accept_member(&fake).unwrap();
        match server.finish() {
            Err(Error::Decode(_)) => {}
            other => panic!("a guessed share must not unmask: {other:?}"),
        }
    }
}

#[test]
fn sealed_shares_open_only_for_their_member() {
    let s = setup(RoundParams::new(16, 8, 4, 3, 1).unwrap(), 3);
    let msg = client_messages(&s, &[vec![5; 16]], 1).remove(0);
    let outsider = SealKeyPair::generate(); // the server's or the router's key
    for i in 1..=3u16 {
        let sealed = msg.sealed_share(i).unwrap();
        let aad = s.round.share_aad(1, i);
        assert!(outsider.open(round::SHARE_SEAL_INFO, &aad, sealed).is_err());
        for j in 1..=3u16 {
            let opened = s.keys[j as usize - 1].open(round::SHARE_SEAL_INFO, &aad, sealed);
            assert_eq!(opened.is_ok(), i == j);
        }
        // The sealed bytes look uniform (no plaintext structure leaks to the router).
        let mut h = vec![0u64; 16];
        for &b in sealed {
            h[(b >> 4) as usize] += 1;
        }
        assert!(chi_square(&h) < 60.0);
    }
}

#[test]
fn seeds_are_fresh_for_every_message() {
    // Two messages of the same client and input differ everywhere except by chance.
    let s = setup(RoundParams::new(512, 8, 4, 3, 1).unwrap(), 4);
    let a = client_messages(&s, &[vec![3; 512]], 1).remove(0);
    let b = client_messages(&s, &[vec![3; 512]], 1).remove(0);
    let equal = a
        .masked()
        .iter()
        .zip(b.masked())
        .filter(|(x, y)| x == y)
        .count();
    assert!(equal < 3);
}

/// The server's view joined with `t` colluding members: for a client with an all-zero vector
/// and one with an all-maximum vector, the colluders' shares of the seed (what they would add
/// to the server's view) are uniformly distributed at the byte level and agree with each other.
/// Together with the masked vector looking uniform (above), the joint view does not depend on
/// the input. Checked to fail on a broken sharing: shares equal to the seed itself are not
/// independent of the masked vector (the server could unmask), which the last assertion shows.
#[test]
fn t_colluding_members_shares_are_uniform_for_any_input() {
    let s = setup(RoundParams::new(64, 16, 10, 5, 2).unwrap(), 5);
    let set = s.round.params().ring();
    let off = 4 + 1 + 32 + 2 + 32 + 4;
    let len = set.degree() * set.output_bits() as usize / 8;
    let mut histograms = Vec::new();
    for (id, x) in [(1u64, vec![0u64; 64]), (2, vec![(1 << 16) - 1; 64])] {
        let msg = client_messages(&s, std::slice::from_ref(&x), id).remove(0);
        let present = PresentSet::new(&s.round, vec![id]).unwrap();
        let mut h = vec![0u64; 256];
        for member in [1u16, 2] {
            // A member's answer over {client} is exactly its share of the client's seed.
            let b = member_answer(&s, member, std::slice::from_ref(&msg), &present)
                .unwrap()
                .to_bytes(&s.round);
            for &byte in &b[off..off + len] {
                h[byte as usize] += 1;
            }
        }
        assert!(
            chi_square(&h) < BYTES_LIMIT,
            "colluders' shares not uniform"
        );
        histograms.push(h);
    }
    let two_sample: f64 = histograms[0]
        .iter()
        .zip(&histograms[1])
        .filter(|(a, b)| **a + **b > 0)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2) / (a + b) as f64)
        .sum();
    assert!(
        two_sample < BYTES_LIMIT,
        "shares depend on the input: {two_sample}"
    );
}
