//! Offline-verifiable proof bundles in the C2SP `tlog-proof` format
//! (<https://c2sp.org/tlog-proof>), carrying the logged receipt on the `extra` line.
//!
//! ```text
//! c2sp.org/tlog-proof@v1
//! extra <base64(entry bytes, i.e. the encoded signed receipt)>
//! index <zero-based index>
//! <base64 inclusion proof hash, leaf sibling first>
//! ...
//!
//! <signed checkpoint, verbatim>
//! ```
//!
//! The spec says the `extra` data is not authenticated and must not be trusted
//! implicitly; it is not: the verifier hashes it as the leaf and checks that the
//! leaf is in the tree the log signed.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use veilgrid_core::receipt::SignedReceipt;

use super::receipt_entry::decode_receipt_entry;
use super::transparency_log::MAX_ENTRY_BYTES;
use crate::Error;
use crate::error::{BundleItem, check_len};
use crate::merkle::{Hash, leaf_hash, verify_inclusion};
use crate::note::{
    LogVerifier, MAX_NOTE_BYTES, SignedCheckpoint, SignedNote, parse_decimal, parse_hash,
};

/// The first line of every bundle.
pub const TLOG_PROOF_HEADER: &str = "c2sp.org/tlog-proof@v1";
/// Largest bundle accepted, in bytes.
pub const MAX_BUNDLE_BYTES: usize = 128 * 1024;
/// Most inclusion proof hashes accepted (a tree of 2^64 leaves needs 64).
pub const MAX_PROOF_HASHES: usize = 64;

/// A logged entry (receipt), its index, its inclusion proof and the checkpoint it is proven against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProofBundle {
    /// The logged entry bytes (an encoded signed receipt).
    pub entry: Vec<u8>,
    /// Zero-based index of the entry in the log.
    pub index: u64,
    /// RFC 9162 inclusion proof of the entry in the checkpointed tree.
    pub inclusion: Vec<Hash>,
    /// The signed checkpoint (note text), verbatim.
    pub checkpoint: String,
}

/// What a successful bundle verification establishes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedEntry {
    /// Index of the entry in the log.
    pub index: u64,
    /// The verified checkpoint the entry is included in.
    pub checkpoint: SignedCheckpoint,
}

fn next_line(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b'\n')?;
    Some((&s[..i], &s[i + 1..]))
}

impl ProofBundle {
    /// The `.tlog-proof` text.
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(
            64 + self.entry.len() * 4 / 3 + 45 * self.inclusion.len() + self.checkpoint.len(),
        );
        out.push_str(TLOG_PROOF_HEADER);
        out.push('\n');
        out.push_str("extra ");
        out.push_str(&B64.encode(&self.entry));
        out.push('\n');
        out.push_str(&format!("index {}\n", self.index));
        for h in &self.inclusion {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push('\n');
        out.push_str(&self.checkpoint);
        out
    }

    /// Parse a `.tlog-proof` file (size-limited; every error names the bundle item).
    ///
    /// Lines are split as bytes and each item is decoded on its own, so even an
    /// invalid UTF-8 byte is reported against the item it is in.
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        use BundleItem::*;
        check_len("proof bundle", bytes.len(), MAX_BUNDLE_BYTES)
            .map_err(|e| e.in_bundle(Header))?;
        let truncated = |item| Error::malformed("proof bundle", "truncated").in_bundle(item);
        let line_str = |what: &'static str, line: &[u8], item| {
            core::str::from_utf8(line)
                .map(str::to_owned)
                .map_err(|_| Error::malformed(what, "not valid UTF-8").in_bundle(item))
        };

        let (header, rest) = next_line(bytes).ok_or_else(|| truncated(Header))?;
        if header != TLOG_PROOF_HEADER.as_bytes() {
            return Err(Error::malformed(
                "proof bundle",
                "first line is not c2sp.org/tlog-proof@v1",
            )
            .in_bundle(Header));
        }

        let (line, rest) = next_line(rest).ok_or_else(|| truncated(Receipt))?;
        let b64 = line.strip_prefix(b"extra ".as_slice()).ok_or_else(|| {
            Error::malformed("proof bundle", "no `extra` line carrying the receipt")
                .in_bundle(Receipt)
        })?;
        check_len(
            "receipt (base64)",
            b64.len(),
            MAX_ENTRY_BYTES.div_ceil(3) * 4,
        )
        .map_err(|e| e.in_bundle(Receipt))?;
        let entry = B64
            .decode(b64)
            .map_err(|e| Error::malformed("receipt", e.to_string()).in_bundle(Receipt))?;

        let (line, mut rest) = next_line(rest).ok_or_else(|| truncated(InclusionProof))?;
        let index = line
            .strip_prefix(b"index ".as_slice())
            .ok_or_else(|| {
                Error::malformed("proof bundle", "no `index` line").in_bundle(InclusionProof)
            })
            .and_then(|n| line_str("entry index", n, InclusionProof))
            .and_then(|n| {
                parse_decimal("entry index", &n).map_err(|e| e.in_bundle(InclusionProof))
            })?;

        let mut inclusion = Vec::new();
        loop {
            let (line, after) = next_line(rest).ok_or_else(|| truncated(InclusionProof))?;
            rest = after;
            if line.is_empty() {
                break;
            }
            if inclusion.len() == MAX_PROOF_HASHES {
                return Err(Error::TooLarge {
                    what: "inclusion proof hashes",
                    actual: MAX_PROOF_HASHES + 1,
                    limit: MAX_PROOF_HASHES,
                }
                .in_bundle(InclusionProof));
            }
            let line = line_str("inclusion proof hash", line, InclusionProof)?;
            inclusion.push(
                parse_hash("inclusion proof hash", &line)
                    .map_err(|e| e.in_bundle(InclusionProof))?,
            );
        }

        check_len("checkpoint", rest.len(), MAX_NOTE_BYTES).map_err(|e| e.in_bundle(Checkpoint))?;
        SignedNote::parse(rest).map_err(|e| e.in_bundle(Checkpoint))?;
        let checkpoint = line_str("checkpoint", rest, Checkpoint)?;
        Ok(Self {
            entry,
            index,
            inclusion,
            checkpoint,
        })
    }

    /// Verify the bundle with only the log's public key: the checkpoint's signature
    /// and origin, then that the entry is at `index` in the checkpointed tree.
    pub fn verify(&self, log: &LogVerifier) -> Result<VerifiedEntry, Error> {
        self.verify_with(log, |_| Ok(()))
    }

    /// Like [`verify`](Self::verify), and also run `check_entry` on the entry bytes
    /// (after the checkpoint, before the inclusion proof) so that an altered entry is
    /// reported as the receipt's failure rather than the inclusion proof's.
    pub fn verify_with(
        &self,
        log: &LogVerifier,
        check_entry: impl FnOnce(&[u8]) -> Result<(), Error>,
    ) -> Result<VerifiedEntry, Error> {
        use BundleItem::*;
        let checkpoint = log
            .verify_checkpoint(self.checkpoint.as_bytes())
            .map_err(|e| e.in_bundle(Checkpoint))?;
        check_len("receipt", self.entry.len(), MAX_ENTRY_BYTES)
            .map_err(|e| e.in_bundle(Receipt))?;
        check_entry(&self.entry).map_err(|e| e.in_bundle(Receipt))?;
        let size = checkpoint.size();
        if self.index >= size {
            return Err(Error::IndexOutOfRange {
                index: self.index,
                size,
            }
            .in_bundle(InclusionProof));
        }
        check_len(
            "inclusion proof hashes",
            self.inclusion.len(),
            MAX_PROOF_HASHES,
        )
        .map_err(|e| e.in_bundle(InclusionProof))?;
        verify_inclusion(
            self.index,
            size,
            &leaf_hash(&self.entry),
            &self.inclusion,
            checkpoint.root(),
        )
        .map_err(|e| e.in_bundle(InclusionProof))?;
        Ok(VerifiedEntry {
            index: self.index,
            checkpoint,
        })
    }

    /// Verify the bundle and the receipt in it: the entry must decode as a
    /// [`SignedReceipt`] (see [`encode_receipt_entry`](super::encode_receipt_entry))
    /// whose provider signature verifies. Returns the receipt and what was verified.
    pub fn verify_receipt(
        &self,
        log: &LogVerifier,
    ) -> Result<(SignedReceipt, VerifiedEntry), Error> {
        let mut receipt = None;
        let verified = self.verify_with(log, |entry| {
            let r = decode_receipt_entry(entry)?;
            r.verify()
                .map_err(|e| Error::ReceiptRejected(e.to_string()))?;
            receipt = Some(r);
            Ok(())
        })?;
        let receipt = receipt.ok_or_else(|| {
            Error::ReceiptRejected("receipt was not checked".into()).in_bundle(BundleItem::Receipt)
        })?;
        Ok((receipt, verified))
    }
}
