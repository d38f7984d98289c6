//! The audit log on a real PostgreSQL (tables `prover_*`): it survives restarts, and the
//! same tamper checks as on SQLite hold — a log whose entries or checkpoints were truncated
//! or altered refuses to start, and one altered while running stops serving.
//!
//! Needs `VEILGRID_TEST_POSTGRES=postgres://user@host:port/db` naming a role allowed to create
//! databases (`.ci/postgres.sh` starts a server and sets it); each test creates its own
//! database and drops it after. Without the variable the tests print a notice and pass
//! without checking anything.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::io::Write as _;

use veilgrid_core::{
    protocol::ProtocolId,
    receipt::{Receipt, request_hash, response_hash},
    sign::SigningIdentity,
};
use veilgrid_kit::{pg::ScratchDb, store_spec::StoreSpec};
use veilgrid_prover::{
    ProverError,
    audit_log::AuditLog,
    store::{POSTGRES_MIGRATIONS, PostgresLogStore},
};
use veilgrid_zk::log::{ProofBundle, encode_receipt_entry};

const ORIGIN: &str = "test.example/log";

/// A scratch database and a directory for the log's key.
struct Env {
    db: ScratchDb,
    keys: tempfile::TempDir,
}

impl Env {
    fn new(test: &str) -> Option<Self> {
        let Ok(admin) = std::env::var("VEILGRID_TEST_POSTGRES") else {
            let _ = writeln!(
                std::io::stderr(),
                "skipping {test}: VEILGRID_TEST_POSTGRES is not set (.ci/postgres.sh starts a server and sets it)"
            );
            return None;
        };
        let name = format!("vg_prover_{}_{test}", std::process::id());
        Some(Self {
            db: ScratchDb::create(&admin, &name).unwrap(),
            keys: tempfile::tempdir().unwrap(),
        })
    }

    fn open(&self) -> Result<AuditLog, ProverError> {
        AuditLog::open_store(
            &StoreSpec::Postgres(self.db.url().to_owned()),
            Some(self.keys.path()),
            ORIGIN,
        )
    }

    /// Run SQL behind the log's back.
    fn sql(&self, statement: &str) {
        let mut c = postgres::Client::connect(self.db.url(), postgres::NoTls).unwrap();
        c.batch_execute(statement).unwrap();
    }
}

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

fn is_data_loss(e: &ProverError) -> bool {
    e.code() == tonic::Code::DataLoss
}

#[test]
fn restart_keeps_entries_checkpoints_cursor_and_proofs() {
    let Some(env) = Env::new("restart") else {
        return;
    };
    let log = env.open().unwrap();
    let a = log.append_receipts("router", 0, &receipts(1, 5)).unwrap();
    assert_eq!((a.last_seq, a.tree_size), (5, 5));
    let cp5 = log.latest().unwrap();
    let proof = log.with_store(|s| s.add_proof(b"proof")).unwrap();
    drop(log);

    let log = env.open().unwrap();
    assert_eq!(
        log.latest().unwrap(),
        cp5,
        "same signed checkpoint after restart"
    );
    let stale = log.append_receipts("router", 0, &receipts(1, 5)).unwrap();
    assert_eq!((stale.last_seq, stale.tree_size), (5, 5));
    let more = log.append_receipts("router", 5, &receipts(6, 3)).unwrap();
    assert_eq!((more.last_seq, more.tree_size), (8, 8));
    assert_eq!(log.checkpoint(5, false).unwrap(), cp5);
    log.consistency(5, 0)
        .unwrap()
        .verify(log.verifier())
        .unwrap();
    for b in log.bundles(0, 8, 0).unwrap() {
        ProofBundle::parse(b.to_text().as_bytes())
            .unwrap()
            .verify_receipt(log.verifier())
            .unwrap();
    }
    assert_eq!(
        log.with_store(|s| s.proofs(0, 10)).unwrap(),
        vec![(proof, b"proof".to_vec())]
    );
    // Its own writes are not someone else's: the log keeps serving.
    assert_eq!(log.latest().unwrap().size(), 8);
    let store = PostgresLogStore::connect(env.db.url()).unwrap();
    drop(store);
    let mut c = postgres::Client::connect(env.db.url(), postgres::NoTls).unwrap();
    let v: i32 = c
        .query_one(
            "SELECT MAX(version) FROM veilgrid_migrations WHERE component = 'prover'",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(v as usize, POSTGRES_MIGRATIONS.len());
}

#[test]
fn a_truncated_or_holed_store_refuses_to_start() {
    let Some(env) = Env::new("truncated") else {
        return;
    };
    env.open()
        .unwrap()
        .append_receipts("router", 0, &receipts(1, 6))
        .unwrap();
    env.sql("DELETE FROM prover_entries WHERE idx = 5");
    let err = env.open().unwrap_err();
    assert!(is_data_loss(&err), "{err}");
    env.sql("DELETE FROM prover_entries WHERE idx = 2");
    let err = env.open().unwrap_err();
    assert!(is_data_loss(&err), "{err}");
}

#[test]
fn an_altered_entry_or_checkpoint_refuses_to_start() {
    let Some(env) = Env::new("altered") else {
        return;
    };
    env.open()
        .unwrap()
        .append_receipts("router", 0, &receipts(1, 6))
        .unwrap();
    // Flip one bit of entry 3.
    env.sql(
        "UPDATE prover_entries SET data = set_byte(data, 40, get_byte(data, 40) # 1) WHERE idx = 3",
    );
    let err = env.open().unwrap_err();
    assert!(is_data_loss(&err), "{err}");
    assert!(err.to_string().contains("no longer match"), "{err}");
    // Undo it: the log starts again; then alter the checkpoint of size 6.
    env.sql(
        "UPDATE prover_entries SET data = set_byte(data, 40, get_byte(data, 40) # 1) WHERE idx = 3",
    );
    env.open().unwrap();
    env.sql(
        "UPDATE prover_checkpoints SET note = replace(note, E'\\n6\\n', E'\\n5\\n') WHERE size = 6",
    );
    assert!(env.open().is_err());
}

#[test]
fn altering_the_store_while_running_stops_serving() {
    let Some(env) = Env::new("running") else {
        return;
    };
    let log = env.open().unwrap();
    log.append_receipts("router", 0, &receipts(1, 4)).unwrap();
    assert!(log.latest().is_ok());
    env.sql("UPDATE prover_entries SET data = '\\x00' WHERE idx = 1");
    let err = log.latest().unwrap_err();
    assert!(is_data_loss(&err), "{err}");
    assert!(log.checkpoint(0, false).is_err());
    assert!(log.bundles(0, 4, 0).is_err());
    assert!(log.append_receipts("router", 4, &receipts(5, 1)).is_err());
}

#[test]
fn truncating_the_store_while_running_stops_serving() {
    let Some(env) = Env::new("truncated_running") else {
        return;
    };
    let log = env.open().unwrap();
    log.append_receipts("router", 0, &receipts(1, 4)).unwrap();
    env.sql("TRUNCATE prover_entries");
    let err = log.latest().unwrap_err();
    assert!(is_data_loss(&err), "{err}");
}
