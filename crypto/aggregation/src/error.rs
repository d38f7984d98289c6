//! The crate's one error type.

/// Everything that can go wrong in a round. No variant carries secret material.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum Error {
    /// Round parameters that cannot work (zero length, threshold too large, ...).
    #[error("invalid round parameters: {0}")]
    InvalidParams(&'static str),
    /// The sum of `clients` entries of `bits` bits does not fit the PRG's output modulus.
    #[error(
        "capacity: {clients} clients of {bits}-bit entries need {needed_bits} bits, the ring parameter set holds {available_bits}"
    )]
    Capacity {
        /// Maximum number of clients of the round.
        clients: u32,
        /// Bits per entry.
        bits: u32,
        /// Bits needed (encoding scale plus the largest sum).
        needed_bits: u32,
        /// Bits available below the output modulus.
        available_bits: u32,
    },
    /// A vector of the wrong length.
    #[error("wrong vector length: expected {expected}, got {got}")]
    WrongLength {
        /// Length the round expects.
        expected: usize,
        /// Length received.
        got: usize,
    },
    /// An entry at or above `2^bits`.
    #[error("entry {index} is over the bound of the round (must be < 2^{bits})")]
    EntryOverBound {
        /// Position of the first offending entry.
        index: usize,
        /// The round's bits per entry.
        bits: u32,
    },
    /// A message built for a different round (other round id, parameters, seed or committee).
    #[error("message belongs to another round")]
    WrongRound,
    /// A client id seen twice.
    #[error("duplicate submission from client {0}")]
    DuplicateClient(u64),
    /// More clients than the round's maximum.
    #[error("round is full: at most {0} clients")]
    TooManyClients(u32),
    /// Bytes that do not decode (bad tag, bad length, non-canonical value, trailing bytes, ...).
    #[error("malformed {what}: {reason}")]
    Malformed {
        /// What was being decoded.
        what: &'static str,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A sealed share payload that does not open, or opens to the wrong client, member or round.
    #[error("malformed share payload from client {client}: {reason}")]
    BadSharePayload {
        /// The client the payload claims to come from.
        client: u64,
        /// Why it was rejected.
        reason: &'static str,
    },
    /// A member index outside `1..=m`.
    #[error("unknown committee member {0}")]
    UnknownMember(u16),
    /// A committee member answered twice.
    #[error("duplicate message from committee member {0}")]
    DuplicateMember(u16),
    /// The declared present set lacks a share for a client, or is otherwise unusable.
    #[error("declared client set: {0}")]
    DeclaredSet(&'static str),
    /// A member's share sum covers a client set other than the declared one.
    #[error("committee member {0} summed over a client set different from the declared one")]
    MemberSetMismatch(u16),
    /// Not enough committee members answered to reconstruct the seed sum.
    #[error("not enough committee members: {have} answered, {need} needed; no sum is released")]
    NotEnoughMembers {
        /// Members that answered.
        have: usize,
        /// Members needed (threshold + 1).
        need: usize,
    },
    /// The member messages are not shares of one polynomial of the threshold's degree.
    #[error("committee share sums are inconsistent (member {0} disagrees); no sum is released")]
    InconsistentMembers(u16),
    /// Fewer present clients than the round's minimum.
    #[error("only {have} clients present, the round needs at least {need}")]
    TooFewClients {
        /// Clients present.
        have: usize,
        /// Minimum of the round.
        need: usize,
    },
    /// The unmasked result does not decode (a masked vector was not produced by the protocol).
    #[error("the unmasked sum does not decode: {0}")]
    Decode(&'static str),
    /// A client's range proof does not verify.
    #[error("range proof of client {0} does not verify")]
    RangeProof(u64),
    /// The product of the accepted commitments does not open to the sum: the round aborts.
    #[error(
        "verifiable round is inconsistent: the accepted commitments do not open to the sum; no sum is released"
    )]
    InconsistentRound,
    /// This operation needs a verifiable round (or a plain one).
    #[error("round mode mismatch: {0}")]
    Mode(&'static str),
    /// Sealing or opening through `veilgrid-core` failed.
    #[error("sealing: {0}")]
    Seal(String),
}

impl From<veilgrid_core::Error> for Error {
    fn from(e: veilgrid_core::Error) -> Self {
        Error::Seal(e.to_string())
    }
}
