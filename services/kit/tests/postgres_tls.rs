//! The PostgreSQL hop under TLS, with libpq's meaning of `sslmode` and `sslrootcert`
//! (services/kit/src/pg_tls.rs): a pool given the server's CA gets an encrypted
//! connection to a server whose certificate it verified and refuses one it cannot
//! verify; without a CA, `prefer` and `require` encrypt without verifying.
//!
//! Needs `VEILGRID_TEST_POSTGRES` (a role allowed to create databases) and
//! `VEILGRID_TEST_POSTGRES_CA` (the CA of the server's certificate); `.ci/postgres.sh`
//! starts such a server and sets both. Without them the tests say so and pass.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::{
    io::Write,
    sync::atomic::{AtomicU32, Ordering},
};

use veilgrid_kit::{
    KitError,
    pg::{Pool, ScratchDb},
};

const MIGRATIONS: &[&str] = &["CREATE TABLE tls_probe (id INTEGER PRIMARY KEY)"];

/// A scratch database and the CA of the server's certificate.
fn setup(test: &str) -> Option<(ScratchDb, String)> {
    let (Ok(admin), Ok(ca)) = (
        std::env::var("VEILGRID_TEST_POSTGRES"),
        std::env::var("VEILGRID_TEST_POSTGRES_CA"),
    ) else {
        let _ = writeln!(
            std::io::stderr(),
            "skipping {test}: VEILGRID_TEST_POSTGRES and VEILGRID_TEST_POSTGRES_CA are not both set (.ci/postgres.sh starts a server with TLS and sets them)"
        );
        return None;
    };
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "vg_tls_{}_{}_{test}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    Some((ScratchDb::create(&admin, &name).unwrap(), ca))
}

/// Whether this pool's connection is encrypted, as the server sees it.
fn encrypted(pool: &Pool) -> bool {
    pool.run(|c| {
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .map(|r| r.get::<_, bool>(0))
        .map_err(veilgrid_kit::pg::pg("asking pg_stat_ssl"))
    })
    .unwrap()
}

fn connect(url: &str) -> Result<Pool, KitError> {
    Pool::connect(url, "tlstest", MIGRATIONS)
}

#[test]
fn sslmode_require_with_the_servers_ca_is_encrypted() {
    let Some((db, ca)) = setup("require") else {
        return;
    };
    let pool = connect(&format!("{}?sslmode=require&sslrootcert={ca}", db.url())).unwrap();
    assert!(
        encrypted(&pool),
        "sslmode=require gave a plaintext connection"
    );
    // libpq's strictest mode is accepted and means the same here
    let pool = connect(&format!(
        "{}?sslmode=verify-full&sslrootcert={ca}",
        db.url()
    ))
    .unwrap();
    assert!(encrypted(&pool));
    // the default (prefer) takes TLS when the server offers it
    let pool = connect(&format!("{}?sslrootcert={ca}", db.url())).unwrap();
    assert!(encrypted(&pool));
    // as libpq, prefer and require without a root certificate encrypt unverified
    if std::env::var_os("PGSSLROOTCERT").is_none() {
        let pool = connect(db.url()).unwrap();
        assert!(
            encrypted(&pool),
            "prefer did not take the TLS the server offers"
        );
        let pool = connect(&format!("{}?sslmode=require", db.url())).unwrap();
        assert!(encrypted(&pool));
    }
    // plaintext only when asked for
    let pool = connect(&format!("{}?sslmode=disable", db.url())).unwrap();
    assert!(!encrypted(&pool));
}

#[test]
fn a_server_certificate_from_another_ca_is_refused() {
    let Some((db, _)) = setup("other_ca") else {
        return;
    };
    let other = tempfile::tempdir().unwrap();
    veilgrid_kit::tls_ca::init(other.path()).unwrap();
    // with a root certificate, require verifies (libpq); verify-full always does
    for mode in ["require", "verify-ca", "verify-full"] {
        let url = format!(
            "{}?sslmode={mode}&sslrootcert={}",
            db.url(),
            other.path().join("ca.pem").display()
        );
        let e = connect(&url).expect_err("connected to an unverified server");
        let msg = e.to_string();
        assert!(matches!(e, KitError::Postgres(_)), "{msg}");
        assert!(msg.contains("UnknownIssuer"), "{mode}: {msg}");
        assert!(msg.contains("sslrootcert"), "no hint: {msg}");
        assert_eq!(msg.matches("postgres store").count(), 1, "{msg}");
    }
    // verify-full without a root certificate checks against the system's roots, which
    // do not hold the test server's CA
    if std::env::var_os("PGSSLROOTCERT").is_none() {
        let e = connect(&format!("{}?sslmode=verify-full", db.url()));
        assert!(e.is_err(), "verify-full took an unknown CA's certificate");
    }
}

#[test]
fn a_missing_rootcert_is_named() {
    let Some((db, _)) = setup("missing") else {
        return;
    };
    let e = connect(&format!(
        "{}?sslmode=require&sslrootcert=/nonexistent/ca.pem",
        db.url()
    ))
    .unwrap_err()
    .to_string();
    assert!(e.contains("/nonexistent/ca.pem"), "{e}");
}
