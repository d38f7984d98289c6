//! Node-to-node messages and their byte encoding.
//!
//! In every step of a phase each party sends exactly one message to its predecessor
//! and one to its successor (either may carry no words) and receives one from each.
//! The encoding is fixed-layout little-endian:
//!
//! ```text
//! "VGMP" | version u8 = 1 | round id [16] | phase u8 | step u32 | from u8 | to u8 | n u32 | n × u64
//! ```

use crate::error::Error;
use crate::party::PartyId;

/// Which protocol phase a message belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Consistency check of client inputs.
    Inputs,
    /// Computing the clearing level and volume.
    Clearing,
    /// Computing each order's fill.
    Fills,
}

impl Phase {
    fn to_u8(self) -> u8 {
        match self {
            Phase::Inputs => 1,
            Phase::Clearing => 2,
            Phase::Fills => 3,
        }
    }

    fn from_u8(b: u8) -> Result<Self, Error> {
        match b {
            1 => Ok(Phase::Inputs),
            2 => Ok(Phase::Clearing),
            3 => Ok(Phase::Fills),
            _ => Err(Error::Malformed("message phase")),
        }
    }
}

/// One message from one node to a neighbouring node.
#[derive(Clone, PartialEq, Eq)]
pub struct Message {
    /// The auction round.
    pub round: [u8; 16],
    /// The phase within the round.
    pub phase: Phase,
    /// The step within the phase, from 0.
    pub step: u32,
    /// Sender.
    pub from: PartyId,
    /// Recipient.
    pub to: PartyId,
    /// Payload: ring elements, bit-sliced words or digests.
    pub words: Vec<u64>,
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Message({:?} step {} {}->{}, {} words)",
            self.phase,
            self.step,
            self.from,
            self.to,
            self.words.len()
        )
    }
}

const MAGIC: &[u8; 4] = b"VGMP";
const VERSION: u8 = 1;
/// Bytes before the words.
pub const HEADER_LEN: usize = 4 + 1 + 16 + 1 + 4 + 1 + 1 + 4;
/// Default limit on the words of one decoded message (32 MiB).
pub const DEFAULT_MAX_WORDS: usize = 1 << 22;

impl Message {
    /// Length of the encoding in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + 8 * self.words.len()
    }

    /// The canonical encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.extend_from_slice(&self.round);
        out.push(self.phase.to_u8());
        out.extend_from_slice(&self.step.to_le_bytes());
        out.push(self.from.as_u8());
        out.push(self.to.as_u8());
        out.extend_from_slice(&(self.words.len() as u32).to_le_bytes());
        for w in &self.words {
            out.extend_from_slice(&w.to_le_bytes());
        }
        out
    }

    /// Decode untrusted bytes, refusing more than `max_words` words.
    pub fn from_bytes(bytes: &[u8], max_words: usize) -> Result<Self, Error> {
        if bytes.len() < HEADER_LEN {
            return Err(Error::Malformed("message header"));
        }
        if &bytes[..4] != MAGIC || bytes[4] != VERSION {
            return Err(Error::Malformed("message tag or version"));
        }
        let mut round = [0u8; 16];
        round.copy_from_slice(&bytes[5..21]);
        let phase = Phase::from_u8(bytes[21])?;
        let step = u32::from_le_bytes([bytes[22], bytes[23], bytes[24], bytes[25]]);
        let from = PartyId::new(bytes[26]).map_err(|_| Error::Malformed("message sender"))?;
        let to = PartyId::new(bytes[27]).map_err(|_| Error::Malformed("message recipient"))?;
        let n = u32::from_le_bytes([bytes[28], bytes[29], bytes[30], bytes[31]]) as usize;
        if n > max_words {
            return Err(Error::Malformed("message over the size limit"));
        }
        let body = &bytes[HEADER_LEN..];
        if body.len() != 8 * n {
            return Err(Error::Malformed("message length"));
        }
        let words = body
            .chunks_exact(8)
            .map(|c| u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]))
            .collect();
        Ok(Message {
            round,
            phase,
            step,
            from,
            to,
            words,
        })
    }
}

#[cfg(test)]
#[allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::needless_range_loop
)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip_and_limits() {
        let m = Message {
            round: [9; 16],
            phase: Phase::Clearing,
            step: 7,
            from: PartyId::new(1).unwrap(),
            to: PartyId::new(0).unwrap(),
            words: vec![1, u64::MAX, 3],
        };
        let b = m.to_bytes();
        assert_eq!(b.len(), m.encoded_len());
        assert_eq!(Message::from_bytes(&b, 10).unwrap(), m);
        assert!(Message::from_bytes(&b, 2).is_err());
        assert!(Message::from_bytes(&b[..b.len() - 1], 10).is_err());
        assert!(Message::from_bytes(&b[..10], 10).is_err());
        let mut bad = b.clone();
        bad[26] = 3;
        assert!(Message::from_bytes(&bad, 10).is_err());
        let mut bad = b;
        bad[21] = 9;
        assert!(Message::from_bytes(&bad, 10).is_err());
    }
}
