//! The one error type of this crate.
//!
//! Every failure names what failed: a decode names the item it was decoding, a
//! verification names the proof, checkpoint or receipt that did not verify.

use core::fmt;

use thiserror::Error as ThisError;

/// Which part of a proof bundle (a `.tlog-proof` file) an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BundleItem {
    /// The `c2sp.org/tlog-proof@v1` header line and the overall layout.
    Header,
    /// The receipt (carried base64-encoded on the `extra` line).
    Receipt,
    /// The inclusion proof: the `index` line and the proof hashes (and whether they
    /// lead from the receipt to the checkpoint root).
    InclusionProof,
    /// The signed checkpoint at the end of the bundle (in a consistency bundle: the newer one).
    Checkpoint,
    /// The older checkpoint of a consistency bundle.
    OlderCheckpoint,
    /// The consistency proof between the two checkpoints of a consistency bundle.
    ConsistencyProof,
}

impl fmt::Display for BundleItem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Header => "bundle header",
            Self::Receipt => "receipt",
            Self::InclusionProof => "inclusion proof",
            Self::Checkpoint => "checkpoint",
            Self::OlderCheckpoint => "older checkpoint",
            Self::ConsistencyProof => "consistency proof",
        })
    }
}

/// Errors of `veilgrid-zk`. Messages never contain secret material.
#[derive(Debug, ThisError, Clone, PartialEq, Eq)]
pub enum Error {
    /// An input was longer than the limit that applies to it.
    #[error("{what} is {actual} bytes/items, over the limit of {limit}")]
    TooLarge {
        /// What was being decoded or appended.
        what: &'static str,
        /// Its size.
        actual: usize,
        /// The limit.
        limit: usize,
    },
    /// Bytes or text did not decode as the expected value.
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// A leaf index is not inside the tree it is claimed to be in.
    #[error("leaf index {index} is outside a tree of size {size}")]
    IndexOutOfRange {
        /// The index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A tree size larger than the tree that exists was requested.
    #[error("tree size {requested} requested but the tree has {available} leaves")]
    SizeOutOfRange {
        /// The requested size.
        requested: u64,
        /// The current size.
        available: u64,
    },
    /// A consistency proof from a larger tree to a smaller one was requested or checked.
    #[error("consistency from size {size1} to smaller size {size2} is meaningless")]
    SizesOutOfOrder {
        /// The older size.
        size1: u64,
        /// The newer size.
        size2: u64,
    },
    /// A proof had the wrong number of hashes for the sizes it claims.
    #[error("{what} has {actual} hashes, expected {expected}")]
    ProofLength {
        /// Which proof.
        what: &'static str,
        /// How many hashes the sizes require.
        expected: usize,
        /// How many were given.
        actual: usize,
    },
    /// An inclusion proof does not lead from the leaf to the root.
    #[error(
        "inclusion proof for leaf {index} does not lead to the root of the tree of size {size} \
         (the entry or the proof hashes were altered)"
    )]
    InclusionFailed {
        /// The leaf index.
        index: u64,
        /// The tree size.
        size: u64,
    },
    /// A consistency proof does not connect the two roots: the log forked or the proof was altered.
    #[error(
        "consistency proof from size {size1} to size {size2} does not connect the two roots \
         (the log forked, or a root or the proof was altered)"
    )]
    ConsistencyFailed {
        /// The older size.
        size1: u64,
        /// The newer size.
        size2: u64,
    },
    /// A note's signature by a known key did not verify.
    #[error("signature by {key_name} does not verify over the note text")]
    BadSignature {
        /// The key name on the signature line.
        key_name: String,
    },
    /// No signature line of a note was made by the expected key.
    #[error("no signature by the trusted key {key_name} on the note")]
    NoTrustedSignature {
        /// The trusted key's name.
        key_name: String,
    },
    /// A checkpoint was issued by a different log.
    #[error("checkpoint origin is {found:?}, expected {expected:?}")]
    OriginMismatch {
        /// The origin the verifier trusts.
        expected: String,
        /// The origin on the checkpoint.
        found: String,
    },
    /// The entry store failed (I/O, database) — reported by the store implementation.
    #[error("entry store: {0}")]
    Store(String),
    /// The entry store holds fewer entries than a checkpoint the log already signed.
    #[error(
        "entry store holds {stored} entries but the log already signed a checkpoint of size \
         {checkpoint}: refusing to fork the log"
    )]
    StoreTruncated {
        /// Entries in the store.
        stored: u64,
        /// Size of the signed checkpoint.
        checkpoint: u64,
    },
    /// Entries in the store no longer hash to a root the log already signed.
    #[error(
        "stored entries no longer match the signed checkpoint of size {size} (an entry was \
         altered or removed): refusing to fork the log"
    )]
    StoreDiverged {
        /// The checkpoint size whose root no longer matches.
        size: u64,
    },
    /// The stored checkpoints go back in size.
    #[error("stored checkpoint of size {later} follows one of size {earlier}")]
    CheckpointsOutOfOrder {
        /// Size of the earlier stored checkpoint.
        earlier: u64,
        /// Size of the later stored checkpoint.
        later: u64,
    },
    /// A Bulletproofs bit size other than 8, 16, 32 or 64.
    #[error("unsupported range-proof bit size {0} (8, 16, 32 or 64)")]
    UnsupportedBitSize(u64),
    /// A value does not fit in the range it should be proven in.
    #[error("value does not fit the range being proven")]
    ValueOutOfRange,
    /// A bounded range is empty or too wide for the chosen bit size.
    #[error("range [{min}, {max}] cannot be proven with {bits}-bit proofs")]
    InvalidRange {
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
        /// Bit size.
        bits: u64,
    },
    /// The number of values and the number of blindings or commitments disagree.
    #[error("{what}: {actual} given, {expected} expected")]
    CountMismatch {
        /// What was counted.
        what: &'static str,
        /// Expected count.
        expected: usize,
        /// Given count.
        actual: usize,
    },
    /// A range proof did not verify for the commitments and context it was checked against.
    #[error("range proof does not verify ({what})")]
    RangeProofFailed {
        /// Which proof (or a reason such as "wrong context or commitments").
        what: &'static str,
    },
    /// One proof of a batch did not verify.
    #[error("range proof #{index} of the batch does not verify")]
    BatchItemFailed {
        /// Position of the first failing proof in the batch.
        index: usize,
    },
    /// A Pedersen commitment does not open to the claimed value and blinding.
    #[error("commitment does not open to the claimed value")]
    OpeningFailed,
    /// A proof bundle failed; `item` names the part of the bundle that failed.
    #[error("{item}: {source}")]
    Bundle {
        /// The failing part of the bundle.
        item: BundleItem,
        /// What went wrong with it.
        source: Box<Error>,
    },
    /// A caller-supplied check of the receipt bytes (e.g. the provider's signature) failed.
    #[error("receipt check failed: {0}")]
    ReceiptRejected(String),
}

impl Error {
    /// The bundle item this error names, if it came from verifying a bundle.
    pub fn bundle_item(&self) -> Option<BundleItem> {
        match self {
            Self::Bundle { item, .. } => Some(*item),
            _ => None,
        }
    }

    pub(crate) fn in_bundle(self, item: BundleItem) -> Self {
        Self::Bundle {
            item,
            source: Box::new(self),
        }
    }

    pub(crate) fn malformed(what: &'static str, reason: impl Into<String>) -> Self {
        Self::Malformed {
            what,
            reason: reason.into(),
        }
    }
}

/// Refuse `len` if it is over `limit`, naming `what` in the error.
pub(crate) fn check_len(what: &'static str, len: usize, limit: usize) -> Result<(), Error> {
    if len > limit {
        return Err(Error::TooLarge {
            what,
            actual: len,
            limit,
        });
    }
    Ok(())
}
