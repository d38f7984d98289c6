//! Offline-verifiable evidence that one checkpoint extends another (or that the log forked).
//!
//! C2SP defines no file format for consistency proofs, so this is Veilgrid's own,
//! in the same spirit as `tlog-proof` (text, base64 hashes, checkpoints verbatim).
//! Checkpoints contain blank lines, so each is preceded by its byte length:
//!
//! ```text
//! veilgrid/tlog-consistency@v1
//! proof <number of hashes>
//! <base64 hash>
//! ...
//! older <byte length of the older checkpoint>
//! <older signed checkpoint, verbatim>
//! newer <byte length of the newer checkpoint>
//! <newer signed checkpoint, verbatim>
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use super::bundle::MAX_PROOF_HASHES;
use crate::Error;
use crate::error::{BundleItem, check_len};
use crate::merkle::Hash;
use crate::note::{LogVerifier, MAX_NOTE_BYTES, SignedCheckpoint, parse_decimal, parse_hash};

/// The first line of a consistency bundle.
pub const CONSISTENCY_HEADER: &str = "veilgrid/tlog-consistency@v1";
/// Largest consistency bundle accepted, in bytes.
pub const MAX_CONSISTENCY_BUNDLE_BYTES: usize = 2 * MAX_NOTE_BYTES + 64 * 46 + 128;

/// Two checkpoints of one log and the RFC 9162 consistency proof between them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConsistencyBundle {
    /// The older signed checkpoint (note text).
    pub older: String,
    /// The newer signed checkpoint (note text).
    pub newer: String,
    /// `PROOF(older size, D[0:newer size])`.
    pub proof: Vec<Hash>,
}

/// What a verified consistency bundle establishes: both checkpoints are the log's, and the newer extends the older.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedConsistency {
    /// The older checkpoint.
    pub older: SignedCheckpoint,
    /// The newer checkpoint.
    pub newer: SignedCheckpoint,
}

fn take_line(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let i = s.iter().position(|&b| b == b'\n')?;
    Some((&s[..i], &s[i + 1..]))
}

fn prefixed_number(line: &[u8], prefix: &'static str, item: BundleItem) -> Result<u64, Error> {
    let rest = line
        .strip_prefix(prefix.as_bytes())
        .and_then(|r| r.strip_prefix(b" "))
        .ok_or_else(|| {
            Error::malformed("consistency bundle", format!("expected a `{prefix}` line"))
                .in_bundle(item)
        })?;
    let text = core::str::from_utf8(rest)
        .map_err(|_| Error::malformed("consistency bundle", "not valid UTF-8").in_bundle(item))?;
    parse_decimal("consistency bundle count", text).map_err(|e| e.in_bundle(item))
}

fn take_note(rest: &[u8], len: u64, item: BundleItem) -> Result<(String, &[u8]), Error> {
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    check_len("checkpoint", len, MAX_NOTE_BYTES).map_err(|e| e.in_bundle(item))?;
    if rest.len() < len {
        return Err(Error::malformed("consistency bundle", "truncated checkpoint").in_bundle(item));
    }
    let (note, tail) = rest.split_at(len);
    let note = core::str::from_utf8(note)
        .map_err(|_| Error::malformed("checkpoint", "not valid UTF-8").in_bundle(item))?;
    Ok((note.to_owned(), tail))
}

impl ConsistencyBundle {
    /// The text form.
    pub fn to_text(&self) -> String {
        let mut out = format!("{CONSISTENCY_HEADER}\nproof {}\n", self.proof.len());
        for h in &self.proof {
            out.push_str(&B64.encode(h));
            out.push('\n');
        }
        out.push_str(&format!("older {}\n{}", self.older.len(), self.older));
        out.push_str(&format!("newer {}\n{}", self.newer.len(), self.newer));
        out
    }

    /// Parse (size-limited; every error names the item: header, consistency proof, older or newer checkpoint).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        use BundleItem::*;
        check_len(
            "consistency bundle",
            bytes.len(),
            MAX_CONSISTENCY_BUNDLE_BYTES,
        )
        .map_err(|e| e.in_bundle(Header))?;
        let truncated = |item| Error::malformed("consistency bundle", "truncated").in_bundle(item);
        let (header, rest) = take_line(bytes).ok_or_else(|| truncated(Header))?;
        if header != CONSISTENCY_HEADER.as_bytes() {
            return Err(Error::malformed("consistency bundle", "unknown header").in_bundle(Header));
        }
        let (line, mut rest) = take_line(rest).ok_or_else(|| truncated(ConsistencyProof))?;
        let count = prefixed_number(line, "proof", ConsistencyProof)?;
        let count = usize::try_from(count).unwrap_or(usize::MAX);
        check_len("consistency proof hashes", count, MAX_PROOF_HASHES)
            .map_err(|e| e.in_bundle(ConsistencyProof))?;
        let mut proof = Vec::with_capacity(count);
        for _ in 0..count {
            let (line, after) = take_line(rest).ok_or_else(|| truncated(ConsistencyProof))?;
            rest = after;
            let line = core::str::from_utf8(line).map_err(|_| {
                Error::malformed("consistency proof hash", "not valid UTF-8")
                    .in_bundle(ConsistencyProof)
            })?;
            proof.push(
                parse_hash("consistency proof hash", line)
                    .map_err(|e| e.in_bundle(ConsistencyProof))?,
            );
        }
        let (line, rest) = take_line(rest).ok_or_else(|| truncated(OlderCheckpoint))?;
        let len = prefixed_number(line, "older", OlderCheckpoint)?;
        let (older, rest) = take_note(rest, len, OlderCheckpoint)?;
        let (line, rest) = take_line(rest).ok_or_else(|| truncated(Checkpoint))?;
        let len = prefixed_number(line, "newer", Checkpoint)?;
        let (newer, rest) = take_note(rest, len, Checkpoint)?;
        if !rest.is_empty() {
            return Err(
                Error::malformed("consistency bundle", "trailing bytes").in_bundle(Checkpoint)
            );
        }
        Ok(Self {
            older,
            newer,
            proof,
        })
    }

    /// Verify both checkpoints with the log's key, then that the newer extends the older.
    /// A failure of the last step with two validly signed checkpoints means the log forked.
    pub fn verify(&self, log: &LogVerifier) -> Result<VerifiedConsistency, Error> {
        let older = log
            .verify_checkpoint(self.older.as_bytes())
            .map_err(|e| e.in_bundle(BundleItem::OlderCheckpoint))?;
        let newer = log
            .verify_checkpoint(self.newer.as_bytes())
            .map_err(|e| e.in_bundle(BundleItem::Checkpoint))?;
        check_len(
            "consistency proof hashes",
            self.proof.len(),
            MAX_PROOF_HASHES,
        )
        .map_err(|e| e.in_bundle(BundleItem::ConsistencyProof))?;
        newer
            .verify_extends(&older, &self.proof)
            .map_err(|e| e.in_bundle(BundleItem::ConsistencyProof))?;
        Ok(VerifiedConsistency { older, newer })
    }
}
