//! Every decoder of untrusted bytes returns an error on garbage, never panics,
//! and accepts nothing it should not (random mutations of valid inputs).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::OnceLock;

use proptest::prelude::*;
use veilgrid_core::sign::SigningIdentity;
use veilgrid_zk::log::{
    ConsistencyBundle, MemoryStore, ProofBundle, TransparencyLog, decode_receipt_entry,
};
use veilgrid_zk::note::{Checkpoint, LogSigner, LogVerifier, NoteVerifier, SignedNote};
use veilgrid_zk::range::{BoundedProof, Commitment, RangeProof};

struct Samples {
    bundle: String,
    consistency: String,
    verifier: LogVerifier,
}

fn samples() -> &'static Samples {
    static S: OnceLock<Samples> = OnceLock::new();
    S.get_or_init(|| {
        let provider = SigningIdentity::generate();
        let signer = LogSigner::new("veilgrid.test/fuzz", SigningIdentity::generate()).unwrap();
        let mut log = TransparencyLog::open(MemoryStore::new(), signer).unwrap();
        for i in 0..5 {
            log.append(&common::receipt_entry(&provider, i)).unwrap();
        }
        let older = log.checkpoint().unwrap();
        for i in 5..9 {
            log.append(&common::receipt_entry(&provider, i)).unwrap();
        }
        let newer = log.checkpoint().unwrap();
        Samples {
            bundle: log.bundle(3).unwrap().to_text(),
            consistency: log.consistency_bundle(&older, &newer).unwrap().to_text(),
            verifier: log.verifier(),
        }
    })
}

fn mutate(text: &str, edits: &[(usize, u8)]) -> Vec<u8> {
    let mut b = text.as_bytes().to_vec();
    for &(pos, byte) in edits {
        let i = pos % b.len();
        if b[i] == byte {
            b[i] ^= 0x55;
        } else {
            b[i] = byte;
        }
    }
    b
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn garbage_is_refused_without_panicking(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        prop_assert!(ProofBundle::parse(&bytes).is_err());
        prop_assert!(ConsistencyBundle::parse(&bytes).is_err());
        let _ = SignedNote::parse(&bytes);
        let _ = RangeProof::from_bytes(&bytes);
        let _ = BoundedProof::from_bytes(&bytes);
        let _ = Commitment::from_bytes(&bytes);
        let _ = decode_receipt_entry(&bytes);
        if let Ok(s) = std::str::from_utf8(&bytes) {
            let _ = Checkpoint::from_note_text(s);
            let _ = NoteVerifier::from_vkey(s);
            let _ = LogVerifier::from_vkey(s);
        }
    }

    #[test]
    fn mutated_bundles_never_verify(edits in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..4)) {
        let s = samples();
        let b = mutate(&s.bundle, &edits);
        let ok = ProofBundle::parse(&b).and_then(|p| p.verify_receipt(&s.verifier).map(|_| ()));
        prop_assert!(ok.is_err());
        let c = mutate(&s.consistency, &edits);
        let ok = ConsistencyBundle::parse(&c).and_then(|p| p.verify(&s.verifier).map(|_| ()));
        prop_assert!(ok.is_err());
    }
}

#[test]
fn the_unmutated_samples_verify() {
    let s = samples();
    ProofBundle::parse(s.bundle.as_bytes())
        .unwrap()
        .verify_receipt(&s.verifier)
        .unwrap();
    ConsistencyBundle::parse(s.consistency.as_bytes())
        .unwrap()
        .verify(&s.verifier)
        .unwrap();
}
