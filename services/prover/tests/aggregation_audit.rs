//! `audit verify` on verifiable aggregation rounds (no network): every client's
//! range proof is batch-verified and reported by name, the product of the
//! counted commitments must open to the sum with the aggregated blinding, the
//! result must be covered by a logged receipt; one flipped byte of a commitment,
//! a proof or the sum fails that item, by name.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::path::Path;

use prost::Message;
use veilgrid_aggregation::{AuditTranscript, Client, CommitteeMember, Round, RoundParams};
use veilgrid_aggregation::{ServerCollecting, server::AggregateResult};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, request_hash, response_hash},
    seal::SealKeyPair,
    sign::SigningIdentity,
};
use veilgrid_proto::aggregation::v1 as agg;
use veilgrid_prover::{
    audit::{self, AGGREGATION, CHECKPOINT, ENTRIES, LOG_VKEY, Status, entry_file},
    audit_log::AuditLog,
};
use veilgrid_zk::log::encode_receipt_entry;

/// A finished verifiable round of `inputs.len()` clients (ids 1..) and its `Result` completion.
fn round(tag: u8, bits: u32, inputs: &[Vec<u64>]) -> (Round, Vec<u8>) {
    let len = inputs[0].len() as u32;
    let params = RoundParams::new(len, bits, 8, 3, 1)
        .unwrap()
        .verifiable()
        .unwrap();
    let keys: Vec<SealKeyPair> = (0..3).map(|_| SealKeyPair::generate()).collect();
    let round = Round::new(
        [tag; 32],
        params,
        [tag ^ 0x55; 32],
        keys.iter().map(|k| k.public()).collect(),
    )
    .unwrap();
    let mut rng = rand_core::OsRng;
    let msgs: Vec<_> = inputs
        .iter()
        .enumerate()
        .map(|(i, x)| {
            Client::new(&round, i as u64 + 1)
                .encode(x)
                .unwrap()
                .mask(&mut rng)
                .unwrap()
        })
        .collect();
    let mut server = ServerCollecting::new(&round);
    for m in &msgs {
        server.accept(m).unwrap();
    }
    let mut server = server.close().unwrap();
    for i in [1u16, 2] {
        let mut m = CommitteeMember::new(&round, i, &keys[i as usize - 1]).unwrap();
        for msg in &msgs {
            m.accept_share(msg.client(), msg.sealed_share(i).unwrap())
                .unwrap();
        }
        server
            .accept_member(&m.respond(server.present()).unwrap())
            .unwrap();
    }
    let result: AggregateResult = server.finish().unwrap();
    let transcript = AuditTranscript::from_round(&msgs, &result).unwrap();
    let resp = agg::ResultResponse {
        sum: result.sum.clone(),
        counted: result.counted.clone(),
        members: vec![1, 2],
        blindings: transcript
            .blindings
            .iter()
            .map(|b| b.as_bytes().to_vec().into())
            .collect(),
        transcript: transcript.to_bytes(&round).into(),
        excluded: vec![],
    };
    (round, resp.encode_to_vec())
}

/// An audit directory holding `rounds` and a log whose receipts cover their results.
fn audit_dir(root: &Path, rounds: &[(Round, Vec<u8>)]) {
    let log = AuditLog::open(None, "agg-audit.example/log").unwrap();
    let id = SigningIdentity::generate();
    let p = ProtocolId::from_name("veilgrid/agg/result/v1");
    let entries: Vec<(u64, Vec<u8>)> = rounds
        .iter()
        .enumerate()
        .map(|(i, (round, result))| {
            let r = Receipt {
                request_hash: request_hash(&p, round.id()),
                response_hash: response_hash(result),
                provider_id: id.verifier().to_bytes(),
                protocol_id: p,
                price: 0,
                currency: "VG".into(),
                started_at_ms: 1,
                finished_at_ms: 2,
            }
            .sign(&id)
            .unwrap();
            (i as u64 + 1, encode_receipt_entry(&r).unwrap())
        })
        .collect();
    log.append_receipts("router", 0, &entries).unwrap();
    std::fs::create_dir_all(root.join(ENTRIES)).unwrap();
    std::fs::create_dir_all(root.join(AGGREGATION)).unwrap();
    std::fs::write(root.join(LOG_VKEY), log.verifier().to_vkey()).unwrap();
    std::fs::write(root.join(CHECKPOINT), log.latest().unwrap().note()).unwrap();
    for (i, b) in log.bundles(0, rounds.len(), 0).unwrap().iter().enumerate() {
        std::fs::write(root.join(ENTRIES).join(entry_file(i as u64)), b.to_text()).unwrap();
    }
    for (round, result) in rounds {
        let stem = hex::encode(round.id());
        std::fs::write(
            root.join(AGGREGATION).join(format!("{stem}.round")),
            round.to_bytes(),
        )
        .unwrap();
        std::fs::write(
            root.join(AGGREGATION).join(format!("{stem}.result")),
            result,
        )
        .unwrap();
    }
}

fn failures(root: &Path) -> Vec<(String, String, String)> {
    let r = audit::verify_path(root, None).unwrap();
    assert_eq!(r.ok, r.failed == 0);
    r.items
        .into_iter()
        .filter(|i| i.status == Status::Failed)
        .map(|i| (i.item, i.part.unwrap_or_default(), i.detail))
        .collect()
}

/// Rewrite round `tag`'s result with `edit`.
fn edit(root: &Path, tag: u8, edit: impl FnOnce(&mut agg::ResultResponse)) {
    let p = root
        .join(AGGREGATION)
        .join(format!("{}.result", hex::encode([tag; 32])));
    let mut r = agg::ResultResponse::decode(std::fs::read(&p).unwrap().as_slice()).unwrap();
    edit(&mut r);
    std::fs::write(&p, r.encode_to_vec()).unwrap();
}

fn flip(root: &Path, tag: u8, offset: usize) {
    edit(root, tag, |r| {
        let mut t = r.transcript.to_vec();
        t[offset] ^= 0x01;
        r.transcript = t.into();
    });
}

/// Transcript offsets (L = 3): header 4 + 1 + 32 + 4, then per client id 8 ‖ 3 × 32 ‖ len 4 ‖ proof.
const FIRST_COMMITMENT: usize = 4 + 1 + 32 + 4 + 8;
const FIRST_PROOF: usize = FIRST_COMMITMENT + 96 + 4;

fn fixture() -> (tempfile::TempDir, std::path::PathBuf) {
    let inputs = vec![vec![1, 2, 3], vec![10, 20, 30], vec![100, 200, 255]];
    // B = 8: a Bulletproofs size; B = 10: the complement is proven too.
    let rounds = vec![round(7, 8, &inputs), round(9, 10, &inputs)];
    let t = tempfile::tempdir().unwrap();
    let root = t.path().join("audit");
    audit_dir(&root, &rounds);
    (t, root)
}

fn copy(root: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(root).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

fn tampered(root: &Path, f: impl FnOnce(&Path)) -> Vec<(String, String, String)> {
    let t = tempfile::tempdir().unwrap();
    let c = t.path().join("copy");
    copy(root, &c);
    f(&c);
    let fails = failures(&c);
    assert!(!fails.is_empty(), "tampering went unnoticed");
    fails
}

#[test]
fn verifiable_rounds_verify_item_by_item() {
    let (_t, root) = fixture();
    let r = audit::verify_path(&root, None).unwrap();
    assert!(r.ok, "{r:#?}");
    let range: Vec<_> = r.items.iter().filter(|i| i.kind == "range proof").collect();
    assert_eq!(range.len(), 6, "3 clients in each of 2 rounds");
    assert!(
        range.iter().all(|i| i.detail.contains("batch-verified")),
        "{range:#?}"
    );
    assert_eq!(
        r.items
            .iter()
            .filter(|i| i.kind == "aggregation round" && i.status == Status::Verified)
            .count(),
        2
    );
}

#[test]
fn a_flipped_commitment_fails_that_clients_range_proof() {
    let (_t, root) = fixture();
    let f = tampered(&root, |d| flip(d, 7, FIRST_COMMITMENT + 5));
    let name = format!("{AGGREGATION}/{}.result#client-1", hex::encode([7u8; 32]));
    assert!(
        f.iter()
            .any(|(item, part, _)| *item == name && part == "client 1"),
        "{f:?}"
    );
    // Only that round's client: the other clients and the other round still verify.
    assert!(
        !f.iter()
            .any(|(item, _, _)| item.ends_with("#client-2")
                || item.contains(&hex::encode([9u8; 32]))),
        "{f:?}"
    );
}

#[test]
fn a_flipped_proof_byte_fails_that_clients_range_proof() {
    let (_t, root) = fixture();
    // Inside t_x (element 4 of the proof), and inside an inner-product L point (element 7).
    for offset in [FIRST_PROOF + 4 * 32 + 2, FIRST_PROOF + 7 * 32 + 1] {
        let f = tampered(&root, |d| flip(d, 9, offset));
        assert!(
            f.iter()
                .any(|(item, part, _)| item.ends_with("#client-1") && part == "client 1"),
            "offset {offset}: {f:?}"
        );
        assert!(
            f.iter()
                .all(|(item, _, _)| item.contains(&hex::encode([9u8; 32]))),
            "{f:?}"
        );
    }
}

#[test]
fn a_changed_sum_fails_the_rounds_sum_or_commitment_check() {
    let (_t, root) = fixture();
    // The released sum alone: it no longer matches the transcript.
    let f = tampered(&root, |d| edit(d, 7, |r| r.sum[2] ^= 1));
    assert!(
        f.iter()
            .any(|(item, part, _)| item.ends_with(".result") && part == "sum"),
        "{f:?}"
    );
    // Both sums, consistently: the commitments no longer open to it.
    let f = tampered(&root, |d| {
        edit(d, 7, |r| {
            r.sum[0] += 1;
            let mut t = r.transcript.to_vec();
            let at = t.len() - 3 * 32 - 3 * 8;
            t[at] = t[at].wrapping_add(1);
            r.transcript = t.into();
        })
    });
    assert!(
        f.iter()
            .any(|(item, part, _)| item.ends_with(".result") && part == "commitment check"),
        "{f:?}"
    );
    // An aggregated blinding: the round's blinding check names it.
    let f = tampered(&root, |d| {
        edit(d, 7, |r| {
            let mut b = r.blindings[1].to_vec();
            b[0] ^= 1;
            r.blindings[1] = b.into();
        })
    });
    assert!(f.iter().any(|(_, part, _)| part == "blindings"), "{f:?}");
}

#[test]
fn a_dropped_client_or_an_unlogged_result_fails() {
    let (_t, root) = fixture();
    // A counted client removed from both the transcript and the result: the commitment check fails.
    let f = tampered(&root, |d| {
        let p = d
            .join(AGGREGATION)
            .join(format!("{}.round", hex::encode([7u8; 32])));
        let round = Round::from_bytes(&std::fs::read(p).unwrap()).unwrap();
        edit(d, 7, |r| {
            let mut t = AuditTranscript::from_bytes(&round, &r.transcript).unwrap();
            t.clients.pop();
            r.counted.pop();
            r.transcript = t.to_bytes(&round).into();
        })
    });
    assert!(
        f.iter().any(|(_, part, _)| part == "commitment check"),
        "{f:?}"
    );
    // A re-encoded but otherwise valid result that no receipt covers.
    let f = tampered(&root, |d| edit(d, 9, |r| r.members.push(3)));
    assert!(
        f.iter().any(|(_, part, _)| part == "receipt binding"),
        "{f:?}"
    );
}
