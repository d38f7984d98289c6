//! The embedded SQLite store every stateful service uses: WAL journal,
//! `synchronous = NORMAL` (durable across a crash of the process), a busy timeout,
//! and versioned migrations recorded in `user_version`.

use rusqlite::Connection;

/// Set the pragmas and run every migration in `migrations` not yet applied, in
/// order, in one transaction. Entry `i` is schema version `i + 1`; never edit an
/// entry once released, append a new one.
pub fn prepare(conn: &mut Connection, migrations: &[&str]) -> rusqlite::Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let tx = conn.transaction()?;
    for (i, m) in migrations.iter().enumerate().skip(version.max(0) as usize) {
        tx.execute_batch(m)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_run_once_and_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.sqlite3");
        let v1 = ["CREATE TABLE a (x INTEGER)"];
        let mut c = Connection::open(&path).unwrap();
        prepare(&mut c, &v1).unwrap();
        c.execute("INSERT INTO a VALUES (1)", []).unwrap();
        drop(c);
        // Reopening with one more migration applies only the new one and keeps data.
        let v2 = ["CREATE TABLE a (x INTEGER)", "CREATE TABLE b (y INTEGER)"];
        let mut c = Connection::open(&path).unwrap();
        prepare(&mut c, &v2).unwrap();
        let n: i64 = c
            .query_row("SELECT COUNT(*) FROM a", [], |r| r.get(0))
            .unwrap();
        assert_eq!(n, 1);
        let v: i64 = c
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, 2);
    }
}
