//! The ledger writer: group commit of promise outcomes, off the request path.
//!
//! Every routed request ends in one ledger entry (kept with its receipt, or
//! broken). The request's task counts it in the in-memory tallies at once and
//! hands the entry to one dedicated writer thread, then answers the caller; it
//! does not wait for the commit. The thread wakes for the first waiting entry,
//! waits [`LINGER`] (1 ms) for others to join it, drains whatever arrived (up to
//! [`MAX_BATCH`]) and writes them all in one transaction. Under load a commit and a
//! wake-up are shared by many requests (the linger took 10–20 % off the router's CPU
//! per 1 KiB request at ≈ 10,000 requests per second,
//! `benches/results/router_overhead_perf_pass.md`); an idle router commits each
//! entry about a millisecond after answering.
//!
//! Durability, precisely: a clean stop ([`Ledger::flush`], called when the router's
//! server stops on Ctrl-C or SIGTERM) commits everything queued, so a restart loses
//! no ledger entry. A crash of the router process (SIGKILL, power loss) can lose the
//! entries of requests answered since the last commit — the batch in flight and
//! what arrived during its linger, about a millisecond of traffic; the caller
//! still holds the provider-signed receipt of each. Waiting for
//! the commit before answering cost an idle router about 60 µs per request (two
//! thread hand-offs and a WAL append on the critical path;
//! `benches/results/router_overhead.md`).
//!
//! A failed write is retried (with backoff up to one second) and logged; the batch
//! is kept, never dropped, while the router runs. So that a store that stays broken
//! cannot grow the queue without bound, [`Ledger::submit`] refuses new entries once
//! [`MAX_PENDING`] are waiting, which fails the requests (`UNAVAILABLE`) instead of
//! losing their entries silently.

use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc,
    },
    time::Duration,
};

use tokio::sync::oneshot;

use crate::{
    RouterError,
    store::{LedgerEntry, Store},
};

/// Most entries written in one transaction.
pub(crate) const MAX_BATCH: usize = 512;
/// Most entries queued but not yet committed.
pub(crate) const MAX_PENDING: usize = 100_000;
/// How long the writer waits, after waking for an entry, for others to join it.
pub(crate) const LINGER: Duration = Duration::from_millis(1);
/// Longest pause between retries of a failed write.
const MAX_BACKOFF: Duration = Duration::from_secs(1);

enum Job {
    Record(Box<LedgerEntry>),
    /// Answered once everything queued before it is committed (or the last write
    /// failed: then with that error, the entries staying queued for retry).
    Flush(oneshot::Sender<Result<(), String>>),
}

/// Handle to the writer thread; the thread ends when the last handle is dropped,
/// after writing everything already queued (call [`Ledger::flush`] to wait for it).
pub(crate) struct Ledger {
    tx: mpsc::Sender<Job>,
    pending: Arc<AtomicUsize>,
}

impl Ledger {
    /// Start the writer thread over `store`.
    pub(crate) fn start(store: Arc<dyn Store>) -> Result<Self, RouterError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = pending.clone();
        std::thread::Builder::new()
            .name("veilgrid-ledger".into())
            .spawn(move || write_loop(store.as_ref(), &rx, &counter))
            .map_err(|e| RouterError::Ledger(format!("cannot start the ledger writer: {e}")))?;
        Ok(Self { tx, pending })
    }

    /// Queue `entry` for the next group commit; returns at once.
    pub(crate) fn submit(&self, entry: LedgerEntry) -> Result<(), RouterError> {
        if self.pending.fetch_add(1, Ordering::AcqRel) >= MAX_PENDING {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(RouterError::Ledger(format!(
                "{MAX_PENDING} ledger entries are waiting for a store that keeps failing; \
                 refusing new requests until it recovers"
            )));
        }
        self.send(Job::Record(Box::new(entry)))
    }

    /// Wait until every entry submitted before this call is committed.
    pub(crate) async fn flush(&self) -> Result<(), RouterError> {
        let (done, wait) = oneshot::channel();
        self.send(Job::Flush(done))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(RouterError::Ledger(e)),
            Err(_) => Err(RouterError::Ledger(
                "the ledger writer stopped before committing".into(),
            )),
        }
    }

    fn send(&self, job: Job) -> Result<(), RouterError> {
        self.tx
            .send(job)
            .map_err(|_| RouterError::Ledger("the ledger writer has stopped".into()))
    }
}

fn write_loop(store: &dyn Store, rx: &mpsc::Receiver<Job>, pending: &AtomicUsize) {
    let mut entries: Vec<LedgerEntry> = Vec::with_capacity(MAX_BATCH);
    let mut flushes = Vec::new();
    let mut backoff = Duration::from_millis(10);
    let mut open = true;
    while open || !entries.is_empty() {
        // Gather: block for the first job only when nothing is left to write.
        if entries.is_empty() && flushes.is_empty() {
            match rx.recv() {
                Ok(job) => take(job, &mut entries, &mut flushes),
                // Every sender is gone and the queue is empty.
                Err(_) => return,
            }
            // Let the entries of concurrent requests gather behind the first, so one
            // wake-up and one transaction serve many (not when a flush waits).
            if flushes.is_empty() {
                std::thread::sleep(LINGER);
            }
        }
        while entries.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Job::Flush(done)) => {
                    // Entries after a flush belong to the next batch: stop here.
                    flushes.push(done);
                    break;
                }
                Ok(job) => take(job, &mut entries, &mut flushes),
                Err(mpsc::TryRecvError::Empty) => break,
                Err(mpsc::TryRecvError::Disconnected) => {
                    open = false;
                    break;
                }
            }
        }
        let result = if entries.is_empty() {
            Ok(())
        } else {
            store.record_batch(&entries).map_err(|e| e.to_string())
        };
        match result {
            Ok(()) => {
                pending.fetch_sub(entries.len(), Ordering::AcqRel);
                entries.clear();
                backoff = Duration::from_millis(10);
                for done in flushes.drain(..) {
                    let _ = done.send(Ok(()));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, n = entries.len(), "ledger write failed; retrying");
                for done in flushes.drain(..) {
                    let _ = done.send(Err(e.clone()));
                }
                if !open {
                    tracing::error!(
                        n = entries.len(),
                        "the router stopped with ledger entries unwritten"
                    );
                    return;
                }
                std::thread::sleep(backoff);
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

fn take(
    job: Job,
    entries: &mut Vec<LedgerEntry>,
    flushes: &mut Vec<oneshot::Sender<Result<(), String>>>,
) {
    match job {
        Job::Record(e) => entries.push(*e),
        Job::Flush(done) => flushes.push(done),
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
                l.submit(entry((i % 4) as u8, i % 3 != 0))
            }));
        }
        for t in tasks {
            t.await.unwrap().unwrap();
        }
        ledger.flush().await.unwrap();
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

    /// A store whose writes fail until `heal` is set.
    #[derive(Default)]
    struct Broken {
        heal: std::sync::atomic::AtomicBool,
        written: std::sync::atomic::AtomicUsize,
    }
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
            if self.heal.load(Ordering::Acquire) {
                self.written.fetch_add(1, Ordering::AcqRel);
                Ok(())
            } else {
                Err(RouterError::Ledger("disk full".into()))
            }
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
    async fn a_failed_write_is_reported_and_retried_not_dropped() {
        let store = Arc::new(Broken::default());
        let ledger = Ledger::start(store.clone()).unwrap();
        ledger.submit(entry(1, true)).unwrap();
        ledger.submit(entry(2, false)).unwrap();
        let e = ledger.flush().await.unwrap_err();
        assert!(e.to_string().contains("disk full"), "{e}");
        assert_eq!(store.written.load(Ordering::Acquire), 0);
        // The store recovers: the kept batch is written on the next retry.
        store.heal.store(true, Ordering::Release);
        let mut flushed = ledger.flush().await;
        for _ in 0..50 {
            if flushed.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            flushed = ledger.flush().await;
        }
        flushed.unwrap();
        assert_eq!(store.written.load(Ordering::Acquire), 2);
        assert_eq!(ledger.pending.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_store_that_stays_broken_fills_the_queue_then_requests_are_refused() {
        let store = Arc::new(Broken::default());
        let ledger = Ledger::start(store).unwrap();
        ledger.pending.store(MAX_PENDING, Ordering::Release);
        let e = ledger.submit(entry(1, true)).unwrap_err();
        assert!(e.to_string().contains("keeps failing"), "{e}");
        assert_eq!(ledger.pending.load(Ordering::Acquire), MAX_PENDING);
    }
}
