//! The transparency log of completions: storage, the log itself, receipt entries and proof bundles.
#![doc = include_str!("../../docs/log.md")]

mod bundle;
mod consistency_bundle;
mod receipt_entry;
mod store;
mod transparency_log;

pub use bundle::{
    MAX_BUNDLE_BYTES, MAX_PROOF_HASHES, ProofBundle, TLOG_PROOF_HEADER, VerifiedEntry,
};
pub use consistency_bundle::{
    CONSISTENCY_HEADER, ConsistencyBundle, MAX_CONSISTENCY_BUNDLE_BYTES, VerifiedConsistency,
};
pub use receipt_entry::{MAX_RECEIPT_ENTRY_LEN, decode_receipt_entry, encode_receipt_entry};
pub use store::{EntryVisitor, LogStore, MemoryStore};
pub use transparency_log::{MAX_ENTRY_BYTES, TransparencyLog};
