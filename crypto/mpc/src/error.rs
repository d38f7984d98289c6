//! The one error type of this crate.

use crate::party::PartyId;

/// Everything that can go wrong in the matching MPC.
///
/// Errors that name parties say which party's messages disagreed; under an honest
/// majority at least one of the named parties deviated (or, for client inputs, the
/// client did).
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// A party index outside `0..3`.
    #[error("party index {0} is not 0, 1 or 2")]
    InvalidParty(u8),
    /// The price grid must have between 1 and 256 levels.
    #[error("the price grid has {0} levels; it must have 1..=256")]
    InvalidLevels(u32),
    /// An order's limit level is not on the grid `[0, P)`.
    #[error("limit level {limit} is outside the grid [0, {levels})")]
    LimitOutOfRange {
        /// The limit that was asked for.
        limit: u32,
        /// The number of levels `P`.
        levels: u32,
    },
    /// An order's quantity is not in `[1, 2^32)`.
    #[error("quantity {0} is outside [1, 2^32)")]
    QuantityOutOfRange(u64),
    /// An order id is empty or longer than [`crate::order::MAX_ORDER_ID_LEN`] bytes.
    #[error("order id has {0} bytes; it must have 1..=64")]
    InvalidOrderId(usize),
    /// The same order id was submitted twice in one round.
    #[error("order {0} was submitted twice")]
    DuplicateOrder(String),
    /// Two orders carry the same sequence number.
    #[error("sequence number {0} was given to two orders")]
    DuplicateSequence(u64),
    /// More orders than a round accepts.
    #[error("a round accepts at most {max} orders")]
    TooManyOrders {
        /// The limit.
        max: usize,
    },
    /// A payload meant for another round or another party.
    #[error("payload is for {what} {got}, this is {expected}")]
    Misaddressed {
        /// `"round"` or `"party"`.
        what: &'static str,
        /// What the payload says (hex for rounds).
        got: String,
        /// What this node is.
        expected: String,
    },
    /// Bytes that do not decode (wrong length, tag or version, or over a size limit).
    #[error("malformed {0}")]
    Malformed(&'static str),
    /// A message from the wrong party, for the wrong step, or of the wrong size.
    #[error("unexpected message: {0}")]
    UnexpectedMessage(String),
    /// The three nodes do not hold the same ordered list of orders.
    #[error("party {with} holds a different order list")]
    OrderSetMismatch {
        /// The party whose list differs from ours.
        with: PartyId,
    },
    /// The two copies of an opened share disagree: `value_from` sent the share,
    /// `digest_from` sent the digest of its own copy. One of them deviated.
    #[error(
        "opened value at step {step} is inconsistent: party {value_from} and party {digest_from} disagree"
    )]
    OpenMismatch {
        /// Message step at which the open happened.
        step: u32,
        /// The party that sent the share value.
        value_from: PartyId,
        /// The party that sent the digest of its copy.
        digest_from: PartyId,
    },
    /// Malicious mode: the multiplication check failed; some party deviated.
    #[error("malicious-mode verification failed: {0}")]
    VerificationFailed(&'static str),
    /// Malicious mode: a party's coin-toss opening does not match its commitment.
    #[error("party {0} opened a coin toss that does not match its commitment")]
    CoinTossMismatch(PartyId),
    /// A fill share's two copies of one component disagree (a node sent a wrong share).
    #[error("fill shares disagree on component {component} (from parties {a} and {b})")]
    FillShareMismatch {
        /// The share component index.
        component: u8,
        /// One holder.
        a: PartyId,
        /// The other holder.
        b: PartyId,
    },
    /// A range proof or commitment could not be made or does not verify.
    #[error("range proof: {0}")]
    RangeProof(String),
    /// The commitment check: the two copies of share point `P_component` (from its two
    /// holders) differ; one of the two parties lied.
    #[error(
        "share point P_{component} of the commitment check differs between party {a} and party {b}; one of them deviated"
    )]
    CommitmentShareMismatch {
        /// The share component whose point differs.
        component: u8,
        /// One holder.
        a: PartyId,
        /// The other holder.
        b: PartyId,
    },
    /// The protocol driver was used out of order (a bug in the caller).
    #[error("protocol state: {0}")]
    State(&'static str),
}
