//! The transparency log over its store: restarts, refusal to fork over a damaged
//! store, and fork detection between checkpoints.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{FailingStore, SharedStore, receipt_entry};
use veilgrid_core::sign::SigningIdentity;
use veilgrid_zk::Error;
use veilgrid_zk::log::{LogStore, MAX_ENTRY_BYTES, MemoryStore, TransparencyLog};
use veilgrid_zk::note::LogSigner;

const ORIGIN: &str = "veilgrid.test/audit-log";

fn log_key() -> SigningIdentity {
    SigningIdentity::from_secret_bytes(&[42u8; 32])
}

fn signer() -> LogSigner {
    LogSigner::new(ORIGIN, log_key()).unwrap()
}

/// A log with `n` receipts and checkpoints at sizes 3 and `n`.
fn populated(n: u64) -> TransparencyLog<MemoryStore> {
    let provider = SigningIdentity::generate();
    let mut log = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    for i in 0..n {
        assert_eq!(log.append(&receipt_entry(&provider, i)).unwrap(), i);
        if i == 2 {
            log.checkpoint().unwrap();
        }
    }
    log.checkpoint().unwrap();
    log
}

#[test]
fn reopening_an_intact_store_restores_the_same_log() {
    let log = populated(10);
    let (root, latest) = (log.root(), log.latest_checkpoint().unwrap().clone());
    let reopened = TransparencyLog::open(log.into_store(), signer()).unwrap();
    assert_eq!(reopened.size(), 10);
    assert_eq!(reopened.root(), root);
    assert_eq!(reopened.latest_checkpoint().unwrap(), &latest);
    reopened.audit_store().unwrap();
}

#[test]
fn checkpoints_of_an_unchanged_log_are_not_re_signed() {
    let mut log = populated(5);
    let count = log.store().checkpoint_count().unwrap();
    let again = log.checkpoint().unwrap();
    assert_eq!(&again, log.latest_checkpoint().unwrap());
    assert_eq!(log.store().checkpoint_count().unwrap(), count);
}

#[test]
fn a_truncated_store_makes_open_fail() {
    let (mut entries, checkpoints) = populated(10).into_store().into_parts();
    entries.pop();
    let err =
        TransparencyLog::open(MemoryStore::from_parts(entries, checkpoints), signer()).unwrap_err();
    assert_eq!(
        err,
        Error::StoreTruncated {
            stored: 9,
            checkpoint: 10
        }
    );
}

#[test]
fn an_altered_entry_makes_open_fail_naming_the_checkpoint_it_breaks() {
    for victim in [0usize, 2, 3, 9] {
        let (mut entries, checkpoints) = populated(10).into_store().into_parts();
        entries[victim][20] ^= 1;
        let err = TransparencyLog::open(MemoryStore::from_parts(entries, checkpoints), signer())
            .unwrap_err();
        // Entries 0..=2 are under the checkpoint of size 3, which is checked first.
        let size = if victim < 3 { 3 } else { 10 };
        assert_eq!(err, Error::StoreDiverged { size }, "entry {victim}");
    }
}

#[test]
fn a_removed_or_inserted_entry_makes_open_fail() {
    let (entries, checkpoints) = populated(10).into_store().into_parts();
    let mut removed = entries.clone();
    removed.remove(4);
    removed.push(b"padding to keep the length".to_vec());
    assert!(matches!(
        TransparencyLog::open(
            MemoryStore::from_parts(removed, checkpoints.clone()),
            signer()
        ),
        Err(Error::StoreDiverged { size: 10 })
    ));
    let mut inserted = entries;
    inserted.insert(1, b"inserted".to_vec());
    assert!(matches!(
        TransparencyLog::open(MemoryStore::from_parts(inserted, checkpoints), signer()),
        Err(Error::StoreDiverged { size: 3 })
    ));
}

#[test]
fn damaged_or_reordered_stored_checkpoints_make_open_fail() {
    let (entries, checkpoints) = populated(10).into_store().into_parts();
    // The latest checkpoint's signature is checked.
    let mut forged = checkpoints.clone();
    let last = forged.len() - 1;
    forged[last] = forged[last].replacen("\n10\n", "\n9\n", 1);
    assert!(matches!(
        TransparencyLog::open(MemoryStore::from_parts(entries.clone(), forged), signer()),
        Err(Error::BadSignature { .. })
    ));
    // Older checkpoints are checked against the tree.
    let other = LogSigner::new(ORIGIN, log_key()).unwrap();
    let mut wrong_root = checkpoints.clone();
    wrong_root[0] = other.sign(3, [9u8; 32]).unwrap().note().to_owned();
    assert_eq!(
        TransparencyLog::open(
            MemoryStore::from_parts(entries.clone(), wrong_root),
            signer()
        )
        .unwrap_err(),
        Error::StoreDiverged { size: 3 }
    );
    let mut reordered = checkpoints.clone();
    reordered.swap(0, 1);
    reordered.push(checkpoints[1].clone());
    assert_eq!(
        TransparencyLog::open(
            MemoryStore::from_parts(entries.clone(), reordered),
            signer()
        )
        .unwrap_err(),
        Error::CheckpointsOutOfOrder {
            earlier: 10,
            later: 3
        }
    );
    // Opened with another key: the latest checkpoint is not trusted.
    let stranger = LogSigner::new(ORIGIN, SigningIdentity::generate()).unwrap();
    assert!(matches!(
        TransparencyLog::open(
            MemoryStore::from_parts(entries.clone(), checkpoints.clone()),
            stranger
        ),
        Err(Error::NoTrustedSignature { .. })
    ));
    // Opened under another origin.
    let renamed = LogSigner::new("veilgrid.test/other-log", log_key()).unwrap();
    assert!(TransparencyLog::open(MemoryStore::from_parts(entries, checkpoints), renamed).is_err());
}

#[test]
fn a_running_log_refuses_to_sign_over_a_store_damaged_behind_its_back() {
    let provider = SigningIdentity::generate();
    let store = SharedStore::default();
    let mut log = TransparencyLog::open(store.clone(), signer()).unwrap();
    for i in 0..6 {
        log.append(&receipt_entry(&provider, i)).unwrap();
    }
    log.checkpoint().unwrap();
    for i in 6..9 {
        log.append(&receipt_entry(&provider, i)).unwrap();
    }

    // An entry appended since the last checkpoint is altered.
    let (mut entries, checkpoints) = store.parts();
    let good = entries.clone();
    entries[7][30] ^= 0x80;
    store.replace(entries, checkpoints.clone());
    assert_eq!(
        log.checkpoint().unwrap_err(),
        Error::StoreDiverged { size: 8 }
    );

    // The store loses its last entries.
    let mut truncated = good.clone();
    truncated.truncate(7);
    store.replace(truncated, checkpoints.clone());
    assert_eq!(
        log.checkpoint().unwrap_err(),
        Error::StoreTruncated {
            stored: 7,
            checkpoint: 9
        }
    );

    // Someone appends directly to the store.
    let mut extra = good.clone();
    extra.push(b"smuggled".to_vec());
    store.replace(extra, checkpoints.clone());
    assert!(matches!(log.checkpoint(), Err(Error::Store(_))));

    // An already checkpointed entry altered: the periodic audit catches it.
    let mut old = good.clone();
    old[1][40] ^= 1;
    store.replace(old, checkpoints.clone());
    assert_eq!(
        log.audit_store().unwrap_err(),
        Error::StoreDiverged { size: 2 }
    );

    // Repaired: signing works again and nothing was signed in between.
    store.replace(good, checkpoints.clone());
    let cp = log.checkpoint().unwrap();
    assert_eq!(cp.size(), 9);
    assert_eq!(store.parts().1.len(), checkpoints.len() + 1);
}

#[test]
fn failed_appends_leave_the_log_unchanged() {
    let mut log = TransparencyLog::open(FailingStore::default(), signer()).unwrap();
    assert!(matches!(log.append(b"receipt"), Err(Error::Store(_))));
    assert_eq!(log.size(), 0);
    let mut ok = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    assert!(matches!(
        ok.append(&vec![0u8; MAX_ENTRY_BYTES + 1]),
        Err(Error::TooLarge { .. })
    ));
    assert_eq!(ok.size(), 0);
    ok.append(&vec![0u8; MAX_ENTRY_BYTES]).unwrap();
}

#[test]
fn consistency_between_checkpoints_holds_for_an_honest_log() {
    let provider = SigningIdentity::generate();
    let mut log = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    let mut checkpoints = Vec::new();
    for i in 0..40 {
        log.append(&receipt_entry(&provider, i)).unwrap();
        if i % 7 == 0 {
            checkpoints.push(log.checkpoint().unwrap());
        }
    }
    let verifier = log.verifier();
    for (a, old) in checkpoints.iter().enumerate() {
        for new in &checkpoints[a..] {
            let proof = log.consistency_proof(old.size(), new.size()).unwrap();
            // The auditor re-verifies both checkpoints from their text, then the proof.
            let old = verifier.verify_checkpoint(old.note().as_bytes()).unwrap();
            let new = verifier.verify_checkpoint(new.note().as_bytes()).unwrap();
            new.verify_extends(&old, &proof).unwrap();
        }
    }
}

#[test]
fn a_forked_log_is_detected_by_the_consistency_check() {
    // The operator keeps two versions of history under the same key and origin.
    let provider = SigningIdentity::generate();
    let mut honest = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    let mut forked = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    for i in 0..5 {
        honest.append(&receipt_entry(&provider, i)).unwrap();
        let entry = if i == 3 {
            receipt_entry(&provider, 1000)
        } else {
            receipt_entry(&provider, i)
        };
        forked.append(&entry).unwrap();
    }
    let seen_by_auditor = honest.checkpoint().unwrap();
    for i in 5..8 {
        forked.append(&receipt_entry(&provider, i)).unwrap();
    }
    let later = forked.checkpoint().unwrap();
    // Both checkpoints carry valid signatures...
    let verifier = honest.verifier();
    verifier
        .verify_checkpoint(seen_by_auditor.note().as_bytes())
        .unwrap();
    verifier.verify_checkpoint(later.note().as_bytes()).unwrap();
    // ...but no consistency proof connects them.
    let proof = forked.consistency_proof(5, 8).unwrap();
    assert_eq!(
        later.verify_extends(&seen_by_auditor, &proof),
        Err(Error::ConsistencyFailed { size1: 5, size2: 8 })
    );
    let proof = honest.consistency_proof(5, 5).unwrap();
    assert!(later.verify_extends(&seen_by_auditor, &proof).is_err());
    // A checkpoint of the same size with a different root is a fork too.
    let same_size = TransparencyLog::open(
        MemoryStore::from_parts(
            (0..5).map(|i| receipt_entry(&provider, 100 + i)).collect(),
            vec![],
        ),
        signer(),
    )
    .unwrap()
    .checkpoint()
    .unwrap();
    assert!(same_size.verify_extends(&seen_by_auditor, &[]).is_err());
}

#[test]
fn consistency_bundles_verify_offline_and_expose_forks() {
    use veilgrid_zk::BundleItem;
    use veilgrid_zk::log::ConsistencyBundle;
    use veilgrid_zk::note::LogVerifier;

    let provider = SigningIdentity::generate();
    let mut log = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    for i in 0..6 {
        log.append(&receipt_entry(&provider, i)).unwrap();
    }
    let older = log.checkpoint().unwrap();
    for i in 6..11 {
        log.append(&receipt_entry(&provider, i)).unwrap();
    }
    let newer = log.checkpoint().unwrap();
    let text = log.consistency_bundle(&older, &newer).unwrap().to_text();
    let verifier = LogVerifier::from_vkey(&log.verifier().to_vkey()).unwrap();
    let parsed = ConsistencyBundle::parse(text.as_bytes()).unwrap();
    assert_eq!(parsed.to_text(), text);
    let verified = parsed.verify(&verifier).unwrap();
    assert_eq!((verified.older.size(), verified.newer.size()), (6, 11));

    // Every byte flipped: refused, naming the header, the proof or one of the checkpoints.
    for pos in 0..text.len() {
        let mut b = text.clone().into_bytes();
        b[pos] ^= 0x01;
        let err = ConsistencyBundle::parse(&b)
            .and_then(|c| c.verify(&verifier).map(|_| ()))
            .expect_err(&format!("flip at {pos} verified"));
        assert!(err.bundle_item().is_some(), "{err}");
    }
    // Swapped checkpoints are refused as a consistency failure.
    let mut swapped = parsed.clone();
    std::mem::swap(&mut swapped.older, &mut swapped.newer);
    assert_eq!(
        swapped.verify(&verifier).unwrap_err().bundle_item(),
        Some(BundleItem::ConsistencyProof)
    );

    // A fork: the operator rewrote entry 2 and signed a larger tree.
    let mut forked = TransparencyLog::open(MemoryStore::new(), signer()).unwrap();
    for i in 0..11 {
        let entry = if i == 2 {
            b"rewritten".to_vec()
        } else {
            receipt_entry(&provider, i)
        };
        forked.append(&entry).unwrap();
    }
    let forked_cp = forked.checkpoint().unwrap();
    let evidence = ConsistencyBundle {
        older: older.note().to_owned(),
        newer: forked_cp.note().to_owned(),
        proof: forked.consistency_proof(6, 11).unwrap(),
    };
    let err = evidence.verify(&verifier).unwrap_err();
    assert_eq!(err.bundle_item(), Some(BundleItem::ConsistencyProof));
    // The log refuses to produce evidence for a checkpoint that is not its own history.
    assert!(log.consistency_bundle(&older, &forked_cp).is_err());
}
