//! How a signed receipt is stored as a log entry: `canonical receipt bytes ‖ 64-byte signature`.
//!
//! The canonical receipt encoding is `veilgrid_core::receipt`'s (fixed layout,
//! self-delimiting), so the signature is simply the last 64 bytes.

use veilgrid_core::receipt::{MAX_RECEIPT_LEN, Receipt, SignedReceipt};

use crate::Error;
use crate::error::check_len;

/// Length of an Ed25519 signature.
const SIGNATURE_LEN: usize = 64;

/// Longest encoded receipt entry.
pub const MAX_RECEIPT_ENTRY_LEN: usize = MAX_RECEIPT_LEN + SIGNATURE_LEN;

/// Encode a signed receipt as a log entry.
pub fn encode_receipt_entry(receipt: &SignedReceipt) -> Result<Vec<u8>, Error> {
    let mut out = receipt
        .receipt
        .canonical_bytes()
        .map_err(|e| Error::malformed("receipt", e.to_string()))?;
    out.extend_from_slice(&receipt.signature);
    Ok(out)
}

/// Decode a log entry as a signed receipt (size-limited, strict). The signature is not verified here.
pub fn decode_receipt_entry(entry: &[u8]) -> Result<SignedReceipt, Error> {
    check_len("receipt entry", entry.len(), MAX_RECEIPT_ENTRY_LEN)?;
    let split = entry
        .len()
        .checked_sub(SIGNATURE_LEN)
        .ok_or_else(|| Error::malformed("receipt entry", "shorter than a signature"))?;
    let (body, sig) = entry.split_at(split);
    let receipt = Receipt::from_canonical_bytes(body)
        .map_err(|e| Error::malformed("receipt", e.to_string()))?;
    let mut signature = [0u8; SIGNATURE_LEN];
    signature.copy_from_slice(sig);
    Ok(SignedReceipt { receipt, signature })
}
