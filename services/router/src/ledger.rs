//! The ledger writer: group commit of promise outcomes, off the async runtime.
//!
//! Every routed request ends in one ledger entry (kept with its receipt, or
//! broken). Writing each in its own SQLite transaction from the request's task
//! would block a runtime worker on the store's lock and pay one commit per
//! request. Instead one dedicated thread owns the writes: it takes the first
//! waiting entry, drains whatever else arrived meanwhile (up to [`MAX_BATCH`]),
//! writes them all in one transaction and then wakes every waiter. Under load a
//! commit is shared by many requests; an idle router pays one commit per request
//! as before. A request is answered only after its entry is committed, so the
//! durability promise of the store is unchanged.

use std::sync::{Arc, mpsc};

use tokio::sync::oneshot;

use crate::{
    RouterError,
    store::{LedgerEntry, Store},
};

/// Most entries written in one transaction.
pub(crate) const MAX_BATCH: usize = 512;

type Job = (LedgerEntry, oneshot::Sender<Result<(), String>>);

/// Handle to the writer thread; the thread ends when the last handle is dropped,
/// after writing everything already queued.
pub(crate) struct Ledger {
    tx: mpsc::Sender<Job>,
}

impl Ledger {
    /// Start the writer thread over `store`.
    pub(crate) fn start(store: Arc<dyn Store>) -> Result<Self, RouterError> {
        let (tx, rx) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("veilgrid-ledger".into())
            .spawn(move || write_loop(store.as_ref(), &rx))
            .map_err(|e| RouterError::Ledger(format!("cannot start the ledger writer: {e}")))?;
        Ok(Self { tx })
    }

    /// Queue `entry` and wait until it is committed.
    pub(crate) async fn record(&self, entry: LedgerEntry) -> Result<(), RouterError> {
        let (done, wait) = oneshot::channel();
        self.tx
            .send((entry, done))
            .map_err(|_| RouterError::Ledger("the ledger writer has stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RouterError::Ledger(e)),
            Err(_) => Err(RouterError::Ledger(
                "the ledger writer stopped before committing".into(),
            )),
        }
    }
}

fn write_loop(store: &dyn Store, rx: &mpsc::Receiver<Job>) {
    let mut entries = Vec::with_capacity(MAX_BATCH);
    let mut waiters = Vec::with_capacity(MAX_BATCH);
    // `recv` fails only once every sender is gone and the queue is empty.
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some((entry, done)) = next {
            entries.push(entry);
            waiters.push(done);
            next = if entries.len() < MAX_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        let result = store.record_batch(&entries).map_err(|e| {
            tracing::error!(error = %e, n = entries.len(), "ledger write failed");
            e.to_string()
        });
        entries.clear();
        for done in waiters.drain(..) {
            // A waiter that gave up (its request was cancelled) is fine to skip.
            let _ = done.send(result.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::SqliteStore;
    use veilgrid_core::protocol::ProtocolId;

    fn entry(i: u8, kept: bool) -> LedgerEntry {
        LedgerEntry {
            provider_id: [i; 32],
            protocol: ProtocolId::from_name("veilgrid/echo/v1"),
            kept,
            at_ms: 1,
            receipt: None,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_records_are_all_committed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(dir.path()).unwrap());
        let ledger = Arc::new(Ledger::start(store.clone()).unwrap());
        let mut tasks = Vec::new();
        for i in 0..400u32 {
            let l = ledger.clone();
            tasks.push(tokio::spawn(async move {
                l.record(entry((i % 4) as u8, i % 3 != 0)).await
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        // Every request that was answered is in the store, exactly once.
        let mut tallies = store.tallies().unwrap();
        tallies.sort_by_key(|t| t.0);
        let total: u64 = tallies.iter().map(|t| t.2.kept + t.2.broken).sum();
        assert_eq!(total, 400);
        let kept: u64 = tallies.iter().map(|t| t.2.kept).sum();
        assert_eq!(kept, (0..400u32).filter(|i| i % 3 != 0).count() as u64);
        drop(ledger);
        // Reopening sees the same ledger.
        drop(store);
        let again = SqliteStore::open(dir.path()).unwrap();
        let total: u64 = again
            .tallies()
            .unwrap()
            .iter()
            .map(|t| t.2.kept + t.2.broken)
            .sum();
        assert_eq!(total, 400);
    }

    /// A store whose writes fail: every waiter hears about it.
    struct Broken;
    impl Store for Broken {
        fn put_lease(&self, _: &crate::store::LeaseRecord) -> Result<(), RouterError> {
            Ok(())
        }
        fn extend_lease(&self, _: &[u8; 32], _: u64) -> Result<(), RouterError> {
            Ok(())
        }
        fn remove_lease(&self, _: &[u8; 32]) -> Result<(), RouterError> {
            Ok(())
        }
        fn leases(&self) -> Result<Vec<crate::store::LeaseRecord>, RouterError> {
            Ok(vec![])
        }
        fn record(
            &self,
            _: &[u8; 32],
            _: &ProtocolId,
            _: bool,
            _: u64,
            _: Option<&veilgrid_core::receipt::SignedReceipt>,
        ) -> Result<(), RouterError> {
            Err(RouterError::Ledger("disk full".into()))
        }
        fn tallies(&self) -> Result<Vec<([u8; 32], ProtocolId, crate::store::Tally)>, RouterError> {
            Ok(vec![])
        }
        fn receipts(
            &self,
            _: u64,
            _: usize,
        ) -> Result<Vec<(u64, veilgrid_core::receipt::SignedReceipt)>, RouterError> {
            Ok(vec![])
        }
    }

    #[tokio::test]
    async fn a_failed_write_is_reported_to_the_waiter() {
        let ledger = Ledger::start(Arc::new(Broken)).unwrap();
        let e = ledger.record(entry(1, true)).await.unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
    }
}
