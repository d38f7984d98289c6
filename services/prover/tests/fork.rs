//! A checkpoint from a log that forked is detected by the consistency check:
//! two copies of one log (same key) that diverge after a common prefix.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, request_hash, response_hash},
    sign::SigningIdentity,
};
use veilgrid_prover::audit_log::AuditLog;
use veilgrid_zk::BundleItem;
use veilgrid_zk::log::{ConsistencyBundle, encode_receipt_entry};

fn receipts(from: u64, n: u64, tag: u8) -> Vec<(u64, Vec<u8>)> {
    let id = SigningIdentity::generate();
    let p = ProtocolId::from_name("veilgrid/echo/v1");
    (from..from + n)
        .map(|seq| {
            let payload = [tag, seq as u8];
            let r = Receipt {
                request_hash: request_hash(&p, &payload),
                response_hash: response_hash(&payload),
                provider_id: id.verifier().to_bytes(),
                protocol_id: p,
                price: 1,
                currency: "VG".into(),
                started_at_ms: 1,
                finished_at_ms: 2,
            }
            .sign(&id)
            .unwrap();
            (seq, encode_receipt_entry(&r).unwrap())
        })
        .collect()
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

#[test]
fn a_forked_log_fails_the_consistency_check() {
    let t = tempfile::tempdir().unwrap();
    let (a_dir, b_dir) = (t.path().join("a"), t.path().join("b"));
    let a = AuditLog::open(Some(&a_dir), "fork.example/log").unwrap();
    a.append_receipts("router", 0, &receipts(1, 4, 0)).unwrap();
    let common = a.latest().unwrap();
    drop(a);
    copy_dir(&a_dir, &b_dir);
    // Same key, same first 4 entries; then the copies diverge.
    let a = AuditLog::open(Some(&a_dir), "fork.example/log").unwrap();
    let b = AuditLog::open(Some(&b_dir), "fork.example/log").unwrap();
    a.append_receipts("router", 4, &receipts(5, 3, 1)).unwrap();
    b.append_receipts("router", 4, &receipts(5, 3, 2)).unwrap();
    let (a7, b7) = (a.latest().unwrap(), b.latest().unwrap());
    assert_eq!(a7.size(), b7.size());
    assert_ne!(a7.root(), b7.root(), "the copies forked");
    // Each copy is consistent with the common prefix on its own...
    a.consistency(common.size(), 0)
        .unwrap()
        .verify(a.verifier())
        .unwrap();
    b.consistency(common.size(), 0)
        .unwrap()
        .verify(b.verifier())
        .unwrap();
    // ...but a checkpoint of the fork does not extend one of the other copy.
    let b6 = b.append_receipts("router", 7, &receipts(8, 2, 3)).unwrap();
    assert_eq!(b6.tree_size, 9);
    let b9 = b.latest().unwrap();
    let forged = ConsistencyBundle {
        older: a7.note().to_owned(),
        newer: b9.note().to_owned(),
        proof: b.consistency(7, 9).unwrap().proof,
    };
    let err = forged.verify(a.verifier()).unwrap_err();
    assert_eq!(
        err.bundle_item(),
        Some(BundleItem::ConsistencyProof),
        "{err}"
    );
}
