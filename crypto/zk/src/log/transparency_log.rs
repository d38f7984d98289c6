//! The append-only transparency log: entries in a [`LogStore`], the Merkle tree
//! in memory, signed checkpoints, proofs and bundles.

use super::bundle::ProofBundle;
use super::consistency_bundle::ConsistencyBundle;
use super::store::LogStore;
use crate::Error;
use crate::error::check_len;
use crate::merkle::{Hash, MerkleTree, leaf_hash};
use crate::note::{Checkpoint, LogSigner, LogVerifier, SignedCheckpoint, SignedNote};

/// Largest entry (e.g. an encoded signed receipt) the log accepts.
pub const MAX_ENTRY_BYTES: usize = 64 * 1024;

/// An append-only RFC 6962 log of opaque entries (receipts) with signed C2SP checkpoints.
///
/// Appends go to the store first and then to the in-memory tree, so the tree
/// never holds an entry the store refused. Checkpoints are signed on request
/// ([`checkpoint`](Self::checkpoint)), recorded in the store, and never signed
/// over a state that is not an extension of the previous checkpoint.
pub struct TransparencyLog<S: LogStore> {
    store: S,
    tree: MerkleTree,
    signer: LogSigner,
    latest: Option<SignedCheckpoint>,
}

impl<S: LogStore> core::fmt::Debug for TransparencyLog<S> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("TransparencyLog")
            .field("origin", &self.signer.origin())
            .field("size", &self.tree.size())
            .field(
                "checkpointed",
                &self.latest.as_ref().map(SignedCheckpoint::size),
            )
            .finish_non_exhaustive()
    }
}

impl<S: LogStore> TransparencyLog<S> {
    /// Open the log kept in `store`, signing with `signer`.
    ///
    /// Rehashes every stored entry and checks every stored checkpoint against
    /// the rebuilt tree: the sizes must not go back, each must be this log's,
    /// each root must equal the rebuilt root at its size, and the latest must
    /// carry a valid signature by `signer`'s key. A truncated store fails with
    /// [`Error::StoreTruncated`], an altered entry with [`Error::StoreDiverged`].
    pub fn open(store: S, signer: LogSigner) -> Result<Self, Error> {
        let len = store.len()?;
        let mut tree = MerkleTree::new();
        store.scan(0, len, &mut |_, entry| {
            tree.push_leaf_hash(leaf_hash(entry));
            Ok(())
        })?;
        if tree.size() != len {
            return Err(Error::Store(format!(
                "store reported {len} entries but yielded {}",
                tree.size()
            )));
        }

        let verifier = signer.verifier();
        let count = store.checkpoint_count()?;
        let mut previous: Option<u64> = None;
        let mut latest = None;
        for i in 0..count {
            let note = store.checkpoint(i)?;
            let checkpoint = if i + 1 == count {
                let signed = verifier.verify_checkpoint(note.as_bytes())?;
                let cp = signed.checkpoint().clone();
                latest = Some(signed);
                cp
            } else {
                let parsed = SignedNote::parse(note.as_bytes())?;
                Checkpoint::from_note_text(parsed.text())?
            };
            if checkpoint.origin != signer.origin() {
                return Err(Error::OriginMismatch {
                    expected: signer.origin().to_owned(),
                    found: checkpoint.origin,
                });
            }
            if let Some(earlier) = previous
                && checkpoint.size < earlier
            {
                return Err(Error::CheckpointsOutOfOrder {
                    earlier,
                    later: checkpoint.size,
                });
            }
            previous = Some(checkpoint.size);
            if checkpoint.size > len {
                return Err(Error::StoreTruncated {
                    stored: len,
                    checkpoint: checkpoint.size,
                });
            }
            if tree.root_at(checkpoint.size)? != checkpoint.root {
                return Err(Error::StoreDiverged {
                    size: checkpoint.size,
                });
            }
        }
        Ok(Self {
            store,
            tree,
            signer,
            latest,
        })
    }

    /// Append an entry; returns its index. Nothing is appended if the store fails.
    pub fn append(&mut self, entry: &[u8]) -> Result<u64, Error> {
        check_len("log entry", entry.len(), MAX_ENTRY_BYTES)?;
        self.store.append(entry)?;
        Ok(self.tree.push_leaf_hash(leaf_hash(entry)))
    }

    /// Number of entries.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// Current root hash (not necessarily checkpointed yet).
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The log's origin.
    pub fn origin(&self) -> &str {
        self.signer.origin()
    }

    /// What auditors need to verify this log: origin and public key.
    pub fn verifier(&self) -> LogVerifier {
        self.signer.verifier()
    }

    /// The latest signed checkpoint, if any.
    pub fn latest_checkpoint(&self) -> Option<&SignedCheckpoint> {
        self.latest.as_ref()
    }

    /// Sign and record a checkpoint of the current tree (or return the latest one if
    /// nothing was appended since).
    ///
    /// Before signing, the entries appended since the previous checkpoint are reread
    /// from the store and must hash to the leaves in the tree, and the store must
    /// hold exactly the entries of the tree; otherwise the log refuses to sign.
    pub fn checkpoint(&mut self) -> Result<SignedCheckpoint, Error> {
        let size = self.tree.size();
        let stored = self.store.len()?;
        let since = self.latest.as_ref().map_or(0, SignedCheckpoint::size);
        if stored < size {
            return Err(Error::StoreTruncated {
                stored,
                checkpoint: size,
            });
        }
        if stored > size {
            return Err(Error::Store(format!(
                "store holds {stored} entries but the log appended {size}: written behind the log's back"
            )));
        }
        if let Some(latest) = &self.latest
            && latest.size() == size
        {
            return Ok(latest.clone());
        }
        let tree = &self.tree;
        self.store.scan(since, size, &mut |i, entry| {
            if tree.leaf_hash(i)? != leaf_hash(entry) {
                return Err(Error::StoreDiverged { size: i + 1 });
            }
            Ok(())
        })?;
        let signed = self.signer.sign(size, self.tree.root())?;
        self.store.append_checkpoint(signed.note())?;
        self.latest = Some(signed.clone());
        Ok(signed)
    }

    /// Reread every stored entry and compare with the tree (an `O(n)` audit for
    /// periodic use; [`open`](Self::open) does the same).
    pub fn audit_store(&self) -> Result<(), Error> {
        let stored = self.store.len()?;
        let size = self.tree.size();
        if stored < size {
            return Err(Error::StoreTruncated {
                stored,
                checkpoint: size,
            });
        }
        let tree = &self.tree;
        self.store.scan(0, size, &mut |i, entry| {
            if tree.leaf_hash(i)? != leaf_hash(entry) {
                return Err(Error::StoreDiverged { size: i + 1 });
            }
            Ok(())
        })
    }

    /// The root of the tree at an earlier `size`.
    pub fn root_at(&self, size: u64) -> Result<Hash, Error> {
        self.tree.root_at(size)
    }

    /// Inclusion proof of entry `index` in the tree of `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        self.tree.inclusion_proof(index, size)
    }

    /// Consistency proof from the tree of `size1` entries to that of `size2`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, Error> {
        self.tree.consistency_proof(size1, size2)
    }

    /// The entry at `index`, read from the store.
    pub fn entry(&self, index: u64) -> Result<Vec<u8>, Error> {
        self.store.get(index)
    }

    /// An offline-verifiable bundle for entry `index` against the latest checkpoint
    /// (which must already cover `index`; call [`checkpoint`](Self::checkpoint) first).
    pub fn bundle(&self, index: u64) -> Result<ProofBundle, Error> {
        let latest = self
            .latest
            .as_ref()
            .ok_or(Error::IndexOutOfRange { index, size: 0 })?;
        self.bundle_at(index, latest)
    }

    /// An offline-verifiable bundle for entry `index` against a given checkpoint of this log.
    pub fn bundle_at(
        &self,
        index: u64,
        checkpoint: &SignedCheckpoint,
    ) -> Result<ProofBundle, Error> {
        let size = checkpoint.size();
        if index >= size {
            return Err(Error::IndexOutOfRange { index, size });
        }
        if self.tree.root_at(size)? != *checkpoint.root() {
            return Err(Error::StoreDiverged { size });
        }
        let entry = self.store.get(index)?;
        if leaf_hash(&entry) != self.tree.leaf_hash(index)? {
            return Err(Error::StoreDiverged { size: index + 1 });
        }
        Ok(ProofBundle {
            entry,
            index,
            inclusion: self.tree.inclusion_proof(index, size)?,
            checkpoint: checkpoint.note().to_owned(),
        })
    }

    /// Evidence that `newer` extends `older` (two checkpoints of this log), for auditors.
    pub fn consistency_bundle(
        &self,
        older: &SignedCheckpoint,
        newer: &SignedCheckpoint,
    ) -> Result<ConsistencyBundle, Error> {
        for cp in [older, newer] {
            if self.tree.root_at(cp.size())? != *cp.root() {
                return Err(Error::StoreDiverged { size: cp.size() });
            }
        }
        Ok(ConsistencyBundle {
            older: older.note().to_owned(),
            newer: newer.note().to_owned(),
            proof: self.tree.consistency_proof(older.size(), newer.size())?,
        })
    }

    /// The store (e.g. to read entries for serving).
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Close the log, returning its store.
    pub fn into_store(self) -> S {
        self.store
    }
}
