//! The audit log as the service runs it: the transparency log over its SQLite
//! store behind one lock, receipts pushed by routers in idempotent batches (each
//! batch, its source cursor and a fresh signed checkpoint commit in one
//! transaction), and the queries auditors make.

use std::{path::Path, sync::Mutex};

use veilgrid_core::receipt::MAX_RECEIPT_LEN;
use veilgrid_kit::{identity::Identity, store_spec::StoreSpec};
use veilgrid_zk::log::{ConsistencyBundle, ProofBundle, TransparencyLog, decode_receipt_entry};
use veilgrid_zk::merkle::Hash;
use veilgrid_zk::note::{LogSigner, LogVerifier, SignedCheckpoint};

use crate::{
    ProverError,
    store::{self, ProverStore},
};

/// Most receipts in one push, and most bundles in one answer.
pub const MAX_BATCH: usize = 1000;

/// The default origin (and note key name) of the log.
pub const DEFAULT_ORIGIN: &str = "veilgrid.example/audit-log";

/// The running log.
pub struct AuditLog {
    log: Mutex<TransparencyLog<Box<dyn ProverStore>>>,
    verifier: LogVerifier,
    /// Set once the store was found altered: from then on nothing is served.
    poisoned: Mutex<Option<veilgrid_zk::Error>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("origin", &self.verifier.origin())
            .finish_non_exhaustive()
    }
}

/// What a push did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The source's last sequence number the log holds.
    pub last_seq: u64,
    /// Entries in the log.
    pub tree_size: u64,
}

impl AuditLog {
    /// Open the log kept under `dir` (its key in `<dir>/log-key`), or a fresh
    /// in-memory log with a fresh key. Refuses to start if a stored entry was
    /// truncated or altered ([`veilgrid_zk::Error::StoreTruncated`],
    /// [`veilgrid_zk::Error::StoreDiverged`]).
    pub fn open(dir: Option<&Path>, origin: &str) -> Result<Self, ProverError> {
        Self::open_store(&StoreSpec::Default, dir, origin)
    }

    /// Open the log in the store `spec` names (`--store`: `sqlite:DIR`, a PostgreSQL
    /// database, or by default `log.sqlite3` under `dir`), its key in `<dir>/log-key`
    /// (a fresh one without `dir`). The same checks as [`open`](Self::open) on every
    /// backend: a store that was truncated or altered refuses to start.
    pub fn open_store(
        spec: &StoreSpec,
        dir: Option<&Path>,
        origin: &str,
    ) -> Result<Self, ProverError> {
        let store = store::open(spec, dir)?;
        let key = match dir {
            Some(d) => Identity::load_or_create(&d.join("log-key"))?,
            None => Identity::generate(),
        };
        let signer = LogSigner::new(origin, key.signing)?;
        let verifier = signer.verifier();
        let mut log = TransparencyLog::open(store, signer)?;
        log.checkpoint()?;
        Ok(Self {
            log: Mutex::new(log),
            verifier,
            poisoned: Mutex::new(None),
        })
    }

    fn lock(
        &self,
    ) -> Result<std::sync::MutexGuard<'_, TransparencyLog<Box<dyn ProverStore>>>, ProverError> {
        self.log
            .lock()
            .map_err(|_| ProverError::Internal("audit log lock poisoned".into()))
    }

    /// The log's verifier (origin and public key), what auditors pin.
    pub fn verifier(&self) -> &LogVerifier {
        &self.verifier
    }

    /// Append a batch of `(seq, entry)` receipts from `source` after `after_seq`.
    /// Every entry must decode as a signed receipt whose signature verifies.
    /// If `after_seq` is not the source's cursor nothing is appended.
    pub fn append_receipts(
        &self,
        source: &str,
        after_seq: u64,
        receipts: &[(u64, Vec<u8>)],
    ) -> Result<Appended, ProverError> {
        if source.is_empty() || source.len() > 128 {
            return Err(ProverError::bad("source must be 1..=128 bytes"));
        }
        if receipts.len() > MAX_BATCH {
            return Err(ProverError::bad(format!(
                "{} receipts in one push, over the limit of {MAX_BATCH}",
                receipts.len()
            )));
        }
        let mut prev = after_seq;
        for (seq, entry) in receipts {
            if *seq <= prev {
                return Err(ProverError::bad(format!(
                    "receipt sequence numbers must increase ({seq} after {prev})"
                )));
            }
            prev = *seq;
            if entry.len() > MAX_RECEIPT_LEN + 64 {
                return Err(ProverError::bad("receipt entry too long"));
            }
            let r = decode_receipt_entry(entry)?;
            r.verify()
                .map_err(|e| ProverError::bad(format!("receipt {seq}: {e}")))?;
        }
        let mut log = self.lock()?;
        self.check_untouched(&mut log)?;
        let current = log.store().source_seq(source)?;
        if current != after_seq || receipts.is_empty() {
            return Ok(Appended {
                last_seq: current,
                tree_size: log.size(),
            });
        }
        log.store().begin()?;
        let done = (|| -> Result<(), ProverError> {
            for (_, entry) in receipts {
                log.append(entry)?;
            }
            log.store().set_source_seq(source, prev)?;
            log.checkpoint()?;
            Ok(())
        })();
        match done.and_then(|()| log.store().commit()) {
            Ok(()) => Ok(Appended {
                last_seq: prev,
                tree_size: log.size(),
            }),
            Err(e) => {
                // The tree may now hold entries the store rolled back: reopen from the store.
                log.store().rollback();
                tracing::error!(error = %e, "append failed; the log must be reopened");
                Err(e)
            }
        }
    }

    /// Append one opaque entry and checkpoint (tests, benchmarks and local tools).
    pub fn append_entry(&self, entry: &[u8]) -> Result<u64, ProverError> {
        let mut log = self.lock()?;
        let i = log.append(entry)?;
        log.checkpoint()?;
        Ok(i)
    }

    /// Before answering from the in-memory tree: if anything else wrote to the
    /// database, reread every entry and refuse — now and until restart — to serve
    /// if one was altered or removed.
    fn check_untouched(
        &self,
        log: &mut TransparencyLog<Box<dyn ProverStore>>,
    ) -> Result<(), ProverError> {
        let mut poisoned = self
            .poisoned
            .lock()
            .map_err(|_| ProverError::Internal("audit log lock poisoned".into()))?;
        if let Some(e) = poisoned.as_ref() {
            return Err(e.clone().into());
        }
        if !log.store().written_by_others()? {
            return Ok(());
        }
        let audited = log.audit_store().and_then(|()| {
            let size = log.latest_checkpoint().map_or(0, SignedCheckpoint::size);
            match log.store().checkpoint_of_size(size) {
                Ok(Some(_)) => Ok(()),
                Ok(None) if size == 0 => Ok(()),
                Ok(None) => Err(veilgrid_zk::Error::Store(format!(
                    "the checkpoint of size {size} was removed from the store"
                ))),
                Err(e) => Err(veilgrid_zk::Error::Store(e.to_string())),
            }
        });
        if let Err(e) = audited {
            tracing::error!(error = %e, "the audit log's store was altered behind its back; refusing to serve");
            *poisoned = Some(e.clone());
            return Err(e.into());
        }
        Ok(())
    }

    /// The latest signed checkpoint (after checking that the store was not altered behind the log's back).
    pub fn latest(&self) -> Result<SignedCheckpoint, ProverError> {
        let mut log = self.lock()?;
        self.check_untouched(&mut log)?;
        log.checkpoint().map_err(Into::into)
    }

    /// A published checkpoint: `size` 0 = the latest, `oldest` = the first one signed.
    pub fn checkpoint(&self, size: u64, oldest: bool) -> Result<SignedCheckpoint, ProverError> {
        let latest = self.latest()?;
        let log = self.lock()?;
        let note = if oldest {
            log.store().oldest_checkpoint()?
        } else if size == 0 || size == latest.size() {
            return Ok(latest);
        } else {
            log.store().checkpoint_of_size(size)?
        };
        let note = note.ok_or_else(|| {
            ProverError::NotFound(format!("no published checkpoint of size {size}"))
        })?;
        let cp = self.verifier.verify_checkpoint(note.as_bytes())?;
        if log.root_at(cp.size())? != *cp.root() {
            return Err(veilgrid_zk::Error::StoreDiverged { size: cp.size() }.into());
        }
        Ok(cp)
    }

    /// Inclusion proof of `index` against the checkpoint of `size` (0 = latest).
    pub fn inclusion(
        &self,
        index: u64,
        size: u64,
    ) -> Result<(Vec<Hash>, SignedCheckpoint), ProverError> {
        let cp = self.checkpoint(size, false)?;
        let log = self.lock()?;
        Ok((log.inclusion_proof(index, cp.size())?, cp))
    }

    /// Consistency bundle between two published checkpoints (newer 0 = latest).
    pub fn consistency(&self, older: u64, newer: u64) -> Result<ConsistencyBundle, ProverError> {
        let older = if older == 0 {
            self.checkpoint(0, true)?
        } else {
            self.checkpoint(older, false)?
        };
        let newer = self.checkpoint(newer, false)?;
        let log = self.lock()?;
        Ok(log.consistency_bundle(&older, &newer)?)
    }

    /// Bundles of entries `[from, from + count)` against the checkpoint of `size` (0 = latest).
    pub fn bundles(
        &self,
        from: u64,
        count: usize,
        size: u64,
    ) -> Result<Vec<ProofBundle>, ProverError> {
        if count > MAX_BATCH {
            return Err(ProverError::bad(format!(
                "{count} bundles asked for, over the limit of {MAX_BATCH}"
            )));
        }
        let cp = self.checkpoint(size, false)?;
        let to = from.saturating_add(count as u64).min(cp.size());
        let log = self.lock()?;
        (from..to)
            .map(|i| log.bundle_at(i, &cp).map_err(Into::into))
            .collect()
    }

    /// Run `f` on the store (proof records).
    pub fn with_store<T>(
        &self,
        f: impl FnOnce(&dyn ProverStore) -> Result<T, ProverError>,
    ) -> Result<T, ProverError> {
        let log = self.lock()?;
        f(log.store().as_ref())
    }

    /// Reread every entry and compare with the tree.
    pub fn audit(&self) -> Result<(), ProverError> {
        Ok(self.lock()?.audit_store()?)
    }
}
