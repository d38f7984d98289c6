//! The statement context bound into every range proof's Fiat–Shamir transcript.
//!
//! The "Frozen Heart" class of bugs (Trail of Bits, 2022) is a Fiat–Shamir
//! transcript that omits public values: a proof made for one statement then
//! verifies for another. Here the transcript of every proof absorbs, before
//! any prover message, with distinct labels: the protocol version, the
//! application domain, every caller-bound field (round id, party id, order id, …),
//! the proof kind and its public parameters (bounds), the bit size, the number
//! of values and every commitment. bulletproofs then adds `n`, `m` and the
//! (padded) commitments again under its own `rangeproof v1` separator.

use merlin::Transcript;

use super::pedersen::Commitment;

/// Transcript label of this crate's range proofs (changing the construction changes this).
pub(crate) const TRANSCRIPT_LABEL: &[u8] = b"veilgrid-zk/range-proof/v1";

/// Application domains, one per use of range proofs in Veilgrid.
pub mod domains {
    /// Inputs of the aggregation service's verifiable mode (each coordinate of a client's vector).
    pub const AGG_VERIFIABLE_INPUT: &[u8] = b"veilgrid/agg/verifiable-input/v1";
    /// Order quantities in the matching service.
    pub const MATCH_ORDER_QUANTITY: &[u8] = b"veilgrid/match/order-quantity/v1";
    /// Limit-price indexes in the matching service.
    pub const MATCH_LIMIT_INDEX: &[u8] = b"veilgrid/match/limit-index/v1";
}

/// Largest value of one context field.
pub const MAX_CONTEXT_FIELD_LEN: usize = 1024;

/// The public context a range proof is made for: a domain and labelled fields.
///
/// A proof verifies only with a context that has the same domain and the same
/// fields with the same values in the same order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RangeContext {
    domain: &'static [u8],
    fields: Vec<Field>,
}

/// One bound field: its label and its value, or the SHA-256 of a long value.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Field {
    label: &'static [u8],
    value: Vec<u8>,
    hashed: bool,
}

/// What kind of statement a transcript is for (bound as its own message).
#[derive(Clone, Copy, Debug)]
pub(crate) enum StatementKind {
    /// Each committed value is in `[0, 2^n)`.
    Range,
    /// Each committed value is in `[min, max]`.
    Bounded {
        /// Lower bound.
        min: u64,
        /// Upper bound.
        max: u64,
    },
}

impl RangeContext {
    /// A context in `domain` (see [`domains`]) with no fields yet.
    pub fn new(domain: &'static [u8]) -> Self {
        Self {
            domain,
            fields: Vec::new(),
        }
    }

    /// Bind a labelled public value (a round id, a party id, a public sum, …).
    /// Values longer than [`MAX_CONTEXT_FIELD_LEN`] are bound by their SHA-256 hash,
    /// under a different transcript label than short values.
    #[must_use]
    pub fn bind(mut self, label: &'static [u8], value: &[u8]) -> Self {
        use sha2::{Digest, Sha256};
        let hashed = value.len() > MAX_CONTEXT_FIELD_LEN;
        let value = if hashed {
            Sha256::digest(value).to_vec()
        } else {
            value.to_vec()
        };
        self.fields.push(Field {
            label,
            value,
            hashed,
        });
        self
    }

    /// Bind a labelled `u64` (big-endian).
    #[must_use]
    pub fn bind_u64(self, label: &'static [u8], value: u64) -> Self {
        self.bind(label, &value.to_be_bytes())
    }

    /// The domain.
    pub fn domain(&self) -> &'static [u8] {
        self.domain
    }

    /// The transcript for one statement, with everything public absorbed.
    pub(crate) fn transcript(
        &self,
        kind: StatementKind,
        bits: usize,
        commitments: &[Commitment],
    ) -> Transcript {
        let mut t = Transcript::new(TRANSCRIPT_LABEL);
        t.append_message(b"domain", self.domain);
        t.append_u64(b"field-count", self.fields.len() as u64);
        for field in &self.fields {
            t.append_message(b"field-label", field.label);
            let value_label: &'static [u8] = if field.hashed {
                b"field-value-sha256"
            } else {
                b"field-value"
            };
            t.append_message(value_label, &field.value);
        }
        match kind {
            StatementKind::Range => t.append_message(b"kind", b"range"),
            StatementKind::Bounded { min, max } => {
                t.append_message(b"kind", b"bounded");
                t.append_u64(b"min", min);
                t.append_u64(b"max", max);
            }
        }
        t.append_u64(b"bits", bits as u64);
        t.append_u64(b"count", commitments.len() as u64);
        for c in commitments {
            t.append_message(b"commitment", c.0.as_bytes());
        }
        t
    }
}
