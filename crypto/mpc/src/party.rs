//! The three parties and who holds which share component.
//!
//! Party `i` holds share components `i` and `i+1` (mod 3). Component `j` is
//! therefore held by parties `j` and `j-1`. Party `i` multiplies, then sends to its
//! predecessor `i-1`; openings flow the same way, with a digest going to the successor.

use crate::error::Error;
use std::fmt;

/// One of the three matching nodes, `0`, `1` or `2`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PartyId(u8);

impl PartyId {
    /// All three parties in order.
    pub const ALL: [PartyId; 3] = [PartyId(0), PartyId(1), PartyId(2)];

    /// Party `i`; fails unless `i < 3`.
    pub fn new(i: u8) -> Result<Self, Error> {
        if i < 3 {
            Ok(PartyId(i))
        } else {
            Err(Error::InvalidParty(i))
        }
    }

    /// The index `0..3`.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// The index as a byte.
    pub fn as_u8(self) -> u8 {
        self.0
    }

    /// Party `i+1`.
    pub fn next(self) -> PartyId {
        PartyId((self.0 + 1) % 3)
    }

    /// Party `i-1`.
    pub fn prev(self) -> PartyId {
        PartyId((self.0 + 2) % 3)
    }
}

impl fmt::Display for PartyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}
