//! The log survives restarts and never rewrites history: a store whose entries
//! were truncated or altered makes the service refuse to start, and refuse to
//! serve a checkpoint while running, instead of silently forking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use rusqlite::{Connection, params};
use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, request_hash, response_hash},
    sign::SigningIdentity,
};
use veilgrid_prover::{ProverError, audit_log::AuditLog, store::DB_FILE};
use veilgrid_zk::log::{ProofBundle, encode_receipt_entry};

const ORIGIN: &str = "test.example/log";

fn receipts(from: u64, n: u64) -> Vec<(u64, Vec<u8>)> {
    let id = SigningIdentity::generate();
    let p = ProtocolId::from_name("veilgrid/echo/v1");
    (from..from + n)
        .map(|seq| {
            let payload = seq.to_be_bytes();
            let r = Receipt {
                request_hash: request_hash(&p, &payload),
                response_hash: response_hash(&payload),
                provider_id: id.verifier().to_bytes(),
                protocol_id: p,
                price: seq,
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

fn db(dir: &std::path::Path) -> Connection {
    Connection::open(dir.join(DB_FILE)).unwrap()
}

fn is_data_loss(e: &ProverError) -> bool {
    e.code() == tonic::Code::DataLoss
}

#[test]
fn restart_keeps_entries_checkpoints_and_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    let a = log.append_receipts("router", 0, &receipts(1, 5)).unwrap();
    assert_eq!((a.last_seq, a.tree_size), (5, 5));
    let cp5 = log.latest().unwrap();
    drop(log);

    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    assert_eq!(
        log.latest().unwrap(),
        cp5,
        "same signed checkpoint after restart"
    );
    // A stale push (the router thinks the log holds nothing) appends nothing and
    // tells the router where to resume.
    let stale = log.append_receipts("router", 0, &receipts(1, 5)).unwrap();
    assert_eq!((stale.last_seq, stale.tree_size), (5, 5));
    let more = log.append_receipts("router", 5, &receipts(6, 3)).unwrap();
    assert_eq!((more.last_seq, more.tree_size), (8, 8));
    // The old checkpoint is still served and the new one extends it.
    assert_eq!(log.checkpoint(5, false).unwrap(), cp5);
    let c = log.consistency(5, 0).unwrap();
    c.verify(log.verifier()).unwrap();
    // Bundles verify offline against the log key.
    for b in log.bundles(0, 8, 0).unwrap() {
        ProofBundle::parse(b.to_text().as_bytes())
            .unwrap()
            .verify_receipt(log.verifier())
            .unwrap();
    }
}

#[test]
fn refuses_receipts_with_bad_signatures_or_out_of_order() {
    let log = AuditLog::open(None, ORIGIN).unwrap();
    let mut r = receipts(1, 2);
    let last = r[1].1.len() - 1;
    r[1].1[last] ^= 1;
    assert!(log.append_receipts("router", 0, &r).is_err());
    let mut r = receipts(1, 2);
    r[1].0 = 1;
    assert!(log.append_receipts("router", 0, &r).is_err());
    assert_eq!(log.latest().unwrap().size(), 0, "nothing appended");
}

#[test]
fn a_truncated_store_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    log.append_receipts("router", 0, &receipts(1, 6)).unwrap();
    drop(log);
    db(dir.path())
        .execute("DELETE FROM entries WHERE idx = 5", [])
        .unwrap();
    let err = AuditLog::open(Some(dir.path()), ORIGIN).unwrap_err();
    assert!(is_data_loss(&err), "{err}");
    assert!(
        err.to_string().contains("truncated") || err.to_string().contains("5"),
        "{err}"
    );
}

#[test]
fn a_hole_in_the_middle_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    log.append_receipts("router", 0, &receipts(1, 6)).unwrap();
    drop(log);
    db(dir.path())
        .execute("DELETE FROM entries WHERE idx = 2", [])
        .unwrap();
    let err = AuditLog::open(Some(dir.path()), ORIGIN).unwrap_err();
    assert!(is_data_loss(&err), "{err}");
}

#[test]
fn an_altered_entry_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    log.append_receipts("router", 0, &receipts(1, 6)).unwrap();
    drop(log);
    let conn = db(dir.path());
    let mut data: Vec<u8> = conn
        .query_row("SELECT data FROM entries WHERE idx = 3", [], |r| r.get(0))
        .unwrap();
    data[40] ^= 0x01;
    conn.execute("UPDATE entries SET data = ?1 WHERE idx = 3", params![data])
        .unwrap();
    drop(conn);
    let err = AuditLog::open(Some(dir.path()), ORIGIN).unwrap_err();
    assert!(is_data_loss(&err), "{err}");
    assert!(err.to_string().contains("no longer match"), "{err}");
}

#[test]
fn an_altered_checkpoint_refuses_to_start() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    log.append_receipts("router", 0, &receipts(1, 3)).unwrap();
    drop(log);
    let conn = db(dir.path());
    conn.execute(
        "UPDATE checkpoints SET note = replace(note, char(10) || '3' || char(10), char(10) || '2' || char(10)) WHERE size = 3",
        [],
    )
    .unwrap();
    drop(conn);
    assert!(AuditLog::open(Some(dir.path()), ORIGIN).is_err());
}

#[test]
fn altering_the_store_while_running_stops_serving_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    log.append_receipts("router", 0, &receipts(1, 4)).unwrap();
    assert!(log.latest().is_ok());
    // Someone edits an entry behind the service's back.
    db(dir.path())
        .execute("UPDATE entries SET data = x'00' WHERE idx = 1", [])
        .unwrap();
    let err = log.latest().unwrap_err();
    assert!(is_data_loss(&err), "{err}");
    assert!(log.checkpoint(0, false).is_err());
    assert!(log.bundles(0, 4, 0).is_err());
}

#[test]
fn truncating_the_store_while_running_stops_serving_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let log = AuditLog::open(Some(dir.path()), ORIGIN).unwrap();
    log.append_receipts("router", 0, &receipts(1, 4)).unwrap();
    db(dir.path())
        .execute("DELETE FROM entries WHERE idx = 3", [])
        .unwrap();
    let err = log.latest().unwrap_err();
    assert!(is_data_loss(&err), "{err}");
}
