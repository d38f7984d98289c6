//! The public outcome of a round and its canonical byte encoding, which every node signs.
//!
//! ```text
//! "veilgrid/match/outcome/v1" | round id [16] | base len u8 | base | quote len u8 | quote
//!   | levels u16 | cross u8 (0/1) | level u16 | volume u64 | order-set hash [32]
//! ```
//! (integers little-endian; `level` and `volume` are 0 when there is no trade).

use crate::binding::OrderStatement;
use crate::error::Error;
use crate::order::OrderId;
use sha2::{Digest, Sha256};

/// What a round reveals to everyone.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClearingResult {
    /// The maximal volume is 0: nothing else is revealed.
    NoTrade,
    /// The clearing level `k*` and the volume `V` traded on each side.
    Trade {
        /// `k*`; the rate is `p_min · ratio^k*`.
        level: u32,
        /// `V`.
        volume: u64,
    },
}

/// The signed public outcome of one auction round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoundOutcome {
    /// Round id.
    pub round: [u8; 16],
    /// BASE currency id (at most 255 bytes).
    pub base: String,
    /// QUOTE currency id (at most 255 bytes).
    pub quote: String,
    /// Number of price levels `P`.
    pub levels: u32,
    /// `k*` and `V`, or no trade.
    pub result: ClearingResult,
    /// [`accepted_set_hash`] of the orders that took part and their statements.
    pub order_set_hash: [u8; 32],
}

const TAG: &[u8] = b"veilgrid/match/outcome/v1";
/// Longest encoding.
pub const MAX_OUTCOME_LEN: usize = 25 + 16 + 1 + 255 + 1 + 255 + 2 + 1 + 2 + 8 + 32;

/// `SHA-256("veilgrid/match/orders/v1" ‖ count u32 ‖ (len u8 ‖ id)*)` over the orders of
/// a round in submission order.
pub fn order_set_hash<'a>(ids: impl IntoIterator<Item = &'a OrderId>) -> [u8; 32] {
    let ids: Vec<&OrderId> = ids.into_iter().collect();
    let mut h = Sha256::new();
    h.update(b"veilgrid/match/orders/v1");
    h.update((ids.len() as u32).to_le_bytes());
    for id in ids {
        h.update([id.as_bytes().len() as u8]);
        h.update(id.as_bytes());
    }
    h.finalize().into()
}

/// `SHA-256("veilgrid/match/orders/v2" ‖ count u32 ‖ (len u8 ‖ id ‖ statement digest)*)`
/// over the accepted orders of a round, in submission order, with the digest of each
/// order's public statement (commitments and range proofs): the `order_set_hash` of
/// the signed outcome, so the signatures cover the round's public record.
pub fn accepted_set_hash<'a>(
    orders: impl IntoIterator<Item = (&'a OrderId, &'a OrderStatement)>,
) -> [u8; 32] {
    let orders: Vec<(&OrderId, &OrderStatement)> = orders.into_iter().collect();
    let mut h = Sha256::new();
    h.update(b"veilgrid/match/orders/v2");
    h.update((orders.len() as u32).to_le_bytes());
    for (id, st) in orders {
        h.update([id.as_bytes().len() as u8]);
        h.update(id.as_bytes());
        h.update(st.digest());
    }
    h.finalize().into()
}

impl RoundOutcome {
    /// The canonical bytes that nodes sign.
    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        if self.base.len() > 255 || self.quote.len() > 255 {
            return Err(Error::Malformed("currency id longer than 255 bytes"));
        }
        let levels = u16::try_from(self.levels).map_err(|_| Error::InvalidLevels(self.levels))?;
        let mut out = Vec::with_capacity(MAX_OUTCOME_LEN);
        out.extend_from_slice(TAG);
        out.extend_from_slice(&self.round);
        out.push(self.base.len() as u8);
        out.extend_from_slice(self.base.as_bytes());
        out.push(self.quote.len() as u8);
        out.extend_from_slice(self.quote.as_bytes());
        out.extend_from_slice(&levels.to_le_bytes());
        let (cross, level, volume) = match self.result {
            ClearingResult::NoTrade => (0u8, 0u16, 0u64),
            ClearingResult::Trade { level, volume } => (
                1,
                u16::try_from(level).map_err(|_| Error::Malformed("level"))?,
                volume,
            ),
        };
        out.push(cross);
        out.extend_from_slice(&level.to_le_bytes());
        out.extend_from_slice(&volume.to_le_bytes());
        out.extend_from_slice(&self.order_set_hash);
        Ok(out)
    }

    /// Decode (size-limited; rejects non-canonical encodings).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_OUTCOME_LEN {
            return Err(Error::Malformed("outcome too long"));
        }
        let mut r = Reader { b: bytes };
        if r.take(TAG.len())? != TAG {
            return Err(Error::Malformed("outcome tag"));
        }
        let mut round = [0u8; 16];
        round.copy_from_slice(r.take(16)?);
        let bl = r.take(1)?[0] as usize;
        let base = String::from_utf8(r.take(bl)?.to_vec())
            .map_err(|_| Error::Malformed("outcome base"))?;
        let ql = r.take(1)?[0] as usize;
        let quote = String::from_utf8(r.take(ql)?.to_vec())
            .map_err(|_| Error::Malformed("outcome quote"))?;
        let l = r.take(2)?;
        let levels = u32::from(u16::from_le_bytes([l[0], l[1]]));
        let cross = r.take(1)?[0];
        let l = r.take(2)?;
        let level = u32::from(u16::from_le_bytes([l[0], l[1]]));
        let mut v = [0u8; 8];
        v.copy_from_slice(r.take(8)?);
        let volume = u64::from_le_bytes(v);
        let mut order_set_hash = [0u8; 32];
        order_set_hash.copy_from_slice(r.take(32)?);
        if !r.b.is_empty() {
            return Err(Error::Malformed("outcome trailing bytes"));
        }
        let result = match cross {
            0 if level == 0 && volume == 0 => ClearingResult::NoTrade,
            1 if level < levels && volume > 0 => ClearingResult::Trade { level, volume },
            _ => return Err(Error::Malformed("outcome result")),
        };
        Ok(RoundOutcome {
            round,
            base,
            quote,
            levels,
            result,
            order_set_hash,
        })
    }
}

struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if self.b.len() < n {
            return Err(Error::Malformed("outcome truncated"));
        }
        let (h, t) = self.b.split_at(n);
        self.b = t;
        Ok(h)
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
    fn outcome_roundtrip_and_rejects() {
        let ids = [OrderId::new(b"a").unwrap(), OrderId::new(b"b").unwrap()];
        let o = RoundOutcome {
            round: [5; 16],
            base: "ALICE".into(),
            quote: "BOB".into(),
            levels: 64,
            result: ClearingResult::Trade {
                level: 33,
                volume: 10937,
            },
            order_set_hash: order_set_hash(&ids),
        };
        let b = o.to_bytes().unwrap();
        assert_eq!(RoundOutcome::from_bytes(&b).unwrap(), o);
        for cut in 0..b.len() {
            assert!(RoundOutcome::from_bytes(&b[..cut]).is_err());
        }
        let mut extra = b.clone();
        extra.push(0);
        assert!(RoundOutcome::from_bytes(&extra).is_err());
        let n = RoundOutcome {
            result: ClearingResult::NoTrade,
            ..o.clone()
        };
        assert_eq!(RoundOutcome::from_bytes(&n.to_bytes().unwrap()).unwrap(), n);
        // order matters in the order-set hash; so does every field in the encoding
        assert_ne!(order_set_hash(&ids), order_set_hash([&ids[1], &ids[0]]));
        let other = RoundOutcome {
            result: ClearingResult::Trade {
                level: 32,
                volume: 10937,
            },
            ..o
        };
        assert_ne!(other.to_bytes().unwrap(), b);
    }
}
