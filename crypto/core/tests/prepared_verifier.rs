//! `PreparedVerifier` must accept exactly what `verify_strict` accepts: edge-case
//! vectors, constructed mixed-order signatures, encodings, and random signatures.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use curve25519_dalek::{
    constants::{ED25519_BASEPOINT_POINT as B, EIGHT_TORSION},
    edwards::{CompressedEdwardsY, EdwardsPoint},
    scalar::Scalar,
};
use ed25519_dalek::{Signature, VerifyingKey};
use proptest::prelude::*;
use sha2::{Digest, Sha512};
use veilgrid_core::{
    prepared_verifier::PreparedVerifier,
    sign::{SigningIdentity, VerifierKey},
};

/// `verify_strict`'s verdict and the prepared verifier's, for one case.
fn verdicts(key: &[u8; 32], msg: &[u8], sig: &[u8; 64]) -> Option<(bool, bool)> {
    let strict_key = VerifyingKey::from_bytes(key).ok()?;
    let strict = strict_key
        .verify_strict(msg, &Signature::from_bytes(sig))
        .is_ok();
    let ours = PreparedVerifier::new(VerifierKey::from_bytes(key).unwrap())
        .verify(msg, sig)
        .is_ok();
    Some((strict, ours))
}

fn assert_same(key: &[u8; 32], msg: &[u8], sig: &[u8; 64], what: &str) -> bool {
    let (strict, ours) = verdicts(key, msg, sig).unwrap_or_else(|| panic!("{what}: key"));
    assert_eq!(
        strict, ours,
        "{what}: verify_strict says {strict}, prepared says {ours}"
    );
    strict
}

fn hex32(s: &str) -> [u8; 32] {
    hex::decode(s).unwrap().try_into().unwrap()
}

#[test]
fn taming_the_many_eddsas_vectors_get_verify_stricts_verdict() {
    let cases: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("vectors/ed25519_speccheck_cases.json")).unwrap();
    assert_eq!(cases.len(), 10);
    let mut accepted = 0;
    for (i, c) in cases.iter().enumerate() {
        let key = hex32(c["pub_key"].as_str().unwrap());
        let msg = hex::decode(c["message"].as_str().unwrap()).unwrap();
        let sig: [u8; 64] = hex::decode(c["signature"].as_str().unwrap())
            .unwrap()
            .try_into()
            .unwrap();
        if VerifyingKey::from_bytes(&key).is_err() {
            // Not a point: refused before either verifier is reached.
            assert!(VerifierKey::from_bytes(&key).is_err(), "case {i}");
            continue;
        }
        if assert_same(&key, &msg, &sig, &format!("speccheck case {i}")) {
            accepted += 1;
        }
    }
    // Only case 3 (mixed-order A and R, where both the cofactored and the
    // cofactorless equation hold) passes a strict verifier; the others are
    // small-order, non-canonical, or hold only cofactored.
    assert_eq!(accepted, 1, "verify_strict accepts exactly one of the ten");
}

/// A mixed-order key `A = [a]B + T` (T of order 8) and its secret `a`.
fn mixed_key(seed: u8) -> (Scalar, EdwardsPoint) {
    let a = Scalar::from_bytes_mod_order_wide(&Sha512::digest([seed; 1]).into());
    (a, a * B + EIGHT_TORSION[1])
}

fn challenge(r: &[u8; 32], a: &[u8; 32], msg: &[u8]) -> Scalar {
    let mut h = Sha512::new();
    h.update(r);
    h.update(a);
    h.update(msg);
    Scalar::from_bytes_mod_order_wide(&h.finalize().into())
}

fn sig_bytes(r: &[u8; 32], s: &Scalar) -> [u8; 64] {
    let mut sig = [0u8; 64];
    sig[..32].copy_from_slice(r);
    sig[32..].copy_from_slice(s.as_bytes());
    sig
}

#[test]
fn small_order_r_that_satisfies_the_equation_is_refused() {
    // With A = [a]B + T, R = −[k]T and s = k·a satisfy [s]B − [k]A = R. Only the
    // small-order check on R refuses it; find such a signature and check both do.
    let (a, big_a) = mixed_key(1);
    let a_bytes = big_a.compress().to_bytes();
    let mut found = 0;
    for n in 0u32..400 {
        let msg = n.to_le_bytes();
        for t in EIGHT_TORSION {
            let r = t.compress().to_bytes();
            let k = challenge(&r, &a_bytes, &msg);
            if -(k * EIGHT_TORSION[1]) == t {
                let sig = sig_bytes(&r, &(k * a));
                // the cofactorless equation really holds
                assert_eq!(B * (k * a) - k * big_a, t);
                assert!(!assert_same(&a_bytes, &msg, &sig, "small-order R"));
                found += 1;
            }
        }
    }
    assert!(found > 10, "constructed {found} such signatures");
}

#[test]
fn identity_r_that_satisfies_the_equation_is_refused_for_honest_keys() {
    // A = [a]B in the prime-order subgroup; R = O and s = k·a satisfy the equation.
    // Only the small-order check refuses it, in both its encodings (y = 1, and the
    // non-canonical y = p + 1).
    let a = Scalar::from_bytes_mod_order_wide(&Sha512::digest(b"honest").into());
    let a_bytes = (a * B).compress().to_bytes();
    let canonical = EdwardsPoint::default().compress().to_bytes();
    let mut non_canonical = [0xffu8; 32];
    non_canonical[0] = 0xee;
    non_canonical[31] = 0x7f;
    assert_eq!(
        CompressedEdwardsY(non_canonical).decompress(),
        Some(EdwardsPoint::default())
    );
    for r in [canonical, non_canonical] {
        for msg in [&b"a"[..], b"b", b"c"] {
            let k = challenge(&r, &a_bytes, msg);
            let sig = sig_bytes(&r, &(k * a));
            assert_eq!(B * (k * a) - k * (a * B), EdwardsPoint::default());
            assert!(!assert_same(&a_bytes, msg, &sig, "identity R"));
        }
    }
    // and an honest signature under the same key passes both
    let r_scalar = Scalar::from(77u64);
    let r = (r_scalar * B).compress().to_bytes();
    let k = challenge(&r, &a_bytes, b"a");
    assert!(assert_same(
        &a_bytes,
        b"a",
        &sig_bytes(&r, &(r_scalar + k * a)),
        "honest"
    ));
}

#[test]
fn mixed_order_r_that_satisfies_the_equation_is_accepted_by_both() {
    // R = [r]B + T' with T' = −[k]T: strict verification accepts it (no small
    // order, equation holds), and so must the prepared verifier.
    let (a, big_a) = mixed_key(2);
    let a_bytes = big_a.compress().to_bytes();
    let mut found = 0;
    for n in 0u32..200 {
        let r_scalar = Scalar::from(1000u64 + u64::from(n));
        for t in &EIGHT_TORSION[1..] {
            let big_r = r_scalar * B + t;
            let r = big_r.compress().to_bytes();
            let msg = b"mixed order";
            let k = challenge(&r, &a_bytes, msg);
            if -(k * EIGHT_TORSION[1]) == *t {
                let sig = sig_bytes(&r, &(r_scalar + k * a));
                assert!(assert_same(&a_bytes, msg, &sig, "mixed-order R"));
                found += 1;
            }
        }
    }
    assert!(found > 10, "constructed {found} such signatures");
}

#[test]
fn small_order_keys_refuse_everything() {
    for (i, t) in EIGHT_TORSION.iter().enumerate() {
        let key = t.compress().to_bytes();
        // R = identity, s = 0: [0]B − [k]T = R holds for k ≡ 0 mod the order of T,
        // and for the identity key always; both refuse regardless.
        let sig = sig_bytes(
            &EdwardsPoint::default().compress().to_bytes(),
            &Scalar::ZERO,
        );
        for msg in [&b""[..], b"x", b"small order key"] {
            assert!(!assert_same(
                &key,
                msg,
                &sig,
                &format!("small-order key {i}")
            ));
        }
        let p = PreparedVerifier::new(VerifierKey::from_bytes(&key).unwrap());
        assert!(p.verify(b"", &sig).is_err());
    }
}

#[test]
fn non_canonical_encodings_are_refused() {
    let id = SigningIdentity::generate();
    let key = id.verifier().to_bytes();
    let msg = b"receipt bytes";
    let sig = id.sign(msg);
    assert!(assert_same(&key, msg, &sig, "honest"));
    // s + ℓ
    let l = Scalar::from_canonical_bytes(sig[32..].try_into().unwrap()).unwrap();
    let mut s_plus_l = [0u8; 32];
    let ell: [u8; 32] = hex32("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010");
    let mut carry = 0u16;
    for i in 0..32 {
        let v = u16::from(l.as_bytes()[i]) + u16::from(ell[i]) + carry;
        s_plus_l[i] = v as u8;
        carry = v >> 8;
    }
    let mut bad = sig;
    bad[32..].copy_from_slice(&s_plus_l);
    assert!(!assert_same(&key, msg, &bad, "s + ℓ"));
    // R with the sign bit flipped, and every y ≥ p in both sign forms
    let mut flipped = sig;
    flipped[31] ^= 0x80;
    assert!(!assert_same(&key, msg, &flipped, "R sign flipped"));
    for extra in 0u8..19 {
        for sign in [0u8, 0x80] {
            let mut r = [0xffu8; 32];
            r[0] = 0xed + extra;
            r[31] = 0x7f | sign;
            let mut bad = sig;
            bad[..32].copy_from_slice(&r);
            assert!(!assert_same(&key, msg, &bad, &format!("y = p + {extra}")));
        }
    }
    // the non-canonical encodings of small-order points (y = p, p + 1)
    for t in EIGHT_TORSION {
        let mut r = t.compress().to_bytes();
        r[31] ^= 0x80;
        let mut bad = sig;
        bad[..32].copy_from_slice(&r);
        assert!(!assert_same(&key, msg, &bad, "small-order R, other sign"));
    }
    assert!(
        CompressedEdwardsY(hex32(
            "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f"
        ))
        .decompress()
        .is_some(),
        "y = p decompresses (to the point y = 0): only the explicit check refuses it"
    );
}

#[test]
fn wrong_length_is_an_error_not_a_panic() {
    let id = SigningIdentity::generate();
    let p = PreparedVerifier::new(id.verifier());
    let sig = id.sign(b"m");
    p.verify(b"m", &sig).unwrap();
    assert!(p.verify(b"m", &sig[..63]).is_err());
    assert!(p.verify(b"m", &[sig.as_slice(), &[0]].concat()).is_err());
    assert!(!format!("{p:?}").is_empty());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn agrees_with_verify_strict_on_honest_and_flipped_signatures(
        seed in any::<[u8; 32]>(),
        msg in proptest::collection::vec(any::<u8>(), 0..200),
        bit in 0usize..512,
    ) {
        let id = SigningIdentity::from_secret_bytes(&seed);
        let key = id.verifier().to_bytes();
        let sig = id.sign(&msg);
        prop_assert!(assert_same(&key, &msg, &sig, "honest"));
        let mut bad = sig;
        bad[bit / 8] ^= 1 << (bit % 8);
        assert_same(&key, &msg, &bad, "one bit flipped");
        if !msg.is_empty() {
            let mut other = msg.clone();
            other[0] ^= 1;
            prop_assert!(!assert_same(&key, &other, &sig, "other message"));
        }
    }

    #[test]
    fn agrees_with_verify_strict_on_random_signatures(
        seed in any::<[u8; 32]>(),
        sig in proptest::collection::vec(any::<u8>(), 64),
    ) {
        let key = SigningIdentity::from_secret_bytes(&seed).verifier().to_bytes();
        let sig: [u8; 64] = sig.try_into().unwrap();
        assert_same(&key, b"random", &sig, "random signature");
    }
}
