//! Client side: an order, its validation, its sharing into one payload per node, and
//! the reconstruction of a fill from the shares the nodes send back. See
//! `docs/auction.md` for the encoding.
//!
//! An order is packed into one 64-bit word — bit 0 the side (1 = buy), bits 1..=8 the
//! limit level, bits 9..=40 the quantity — and that word is XOR-shared:
//! `w = w_0 ⊕ w_1 ⊕ w_2`, node `i` receiving `(w_i, w_{i+1})`. Every field is in range
//! by construction: whatever a client puts in the word, the nodes read a side bit, a
//! limit below `2^m` and a quantity below `2^32`.

use crate::error::Error;
use crate::party::PartyId;
use rand::{CryptoRng, RngCore};
use std::fmt;
use zeroize::Zeroize;

/// Longest order id, in bytes.
pub const MAX_ORDER_ID_LEN: usize = 64;
/// Most price levels of a grid.
pub const MAX_LEVELS: u32 = 256;
/// Quantities are below `2^32`.
pub const QTY_BITS: u32 = 32;
/// Bit position of the limit in the packed word.
pub(crate) const LIMIT_SHIFT: u32 = 1;
/// Bit position of the quantity in the packed word.
pub(crate) const QTY_SHIFT: u32 = 9;

/// Buy or sell the BASE currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// Buy BASE, pay QUOTE.
    Buy,
    /// Sell BASE, receive QUOTE.
    Sell,
}

/// A limit order on a grid of `P` levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Order {
    /// Buy or sell.
    pub side: Side,
    /// Limit level `ℓ`: a buy is eligible at levels `k ≤ ℓ`, a sell at `k ≥ ℓ`.
    pub limit: u32,
    /// Quantity of BASE.
    pub qty: u64,
}

/// `m = ⌈log2 P⌉`, the number of limit bits the circuit reads; checks `1 ≤ P ≤ 256`.
pub fn limit_bits(levels: u32) -> Result<u32, Error> {
    if levels == 0 || levels > MAX_LEVELS {
        return Err(Error::InvalidLevels(levels));
    }
    Ok(32 - (levels - 1).leading_zeros())
}

impl Order {
    /// Checks `limit < P` and `1 ≤ qty < 2^32`.
    pub fn validate(&self, levels: u32) -> Result<(), Error> {
        limit_bits(levels)?;
        if self.limit >= levels {
            return Err(Error::LimitOutOfRange {
                limit: self.limit,
                levels,
            });
        }
        if self.qty == 0 || self.qty >= 1 << QTY_BITS {
            return Err(Error::QuantityOutOfRange(self.qty));
        }
        Ok(())
    }

    /// The packed word (no validation; limit and quantity are truncated to their fields).
    pub(crate) fn pack(&self) -> u64 {
        let side = u64::from(self.side == Side::Buy);
        side | (u64::from(self.limit) & 0xFF) << LIMIT_SHIFT | (self.qty & 0xFFFF_FFFF) << QTY_SHIFT
    }

    /// What the circuit reads from a packed word on a grid with `m` limit bits.
    #[cfg(test)]
    pub(crate) fn unpack(word: u64, m: u32) -> Order {
        Order {
            side: if word & 1 == 1 { Side::Buy } else { Side::Sell },
            limit: ((word >> LIMIT_SHIFT) & ((1u64 << m) - 1)) as u32,
            qty: (word >> QTY_SHIFT) & 0xFFFF_FFFF,
        }
    }
}

/// An order's public identifier (1..=64 bytes), unique within a round.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OrderId(Vec<u8>);

impl OrderId {
    /// An id from bytes.
    pub fn new(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.is_empty() || bytes.len() > MAX_ORDER_ID_LEN {
            return Err(Error::InvalidOrderId(bytes.len()));
        }
        Ok(OrderId(bytes.to_vec()))
    }

    /// The bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match std::str::from_utf8(&self.0) {
            Ok(s) if s.chars().all(|c| c.is_ascii_graphic()) => f.write_str(s),
            _ => f.write_str(&hex::encode(&self.0)),
        }
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderId({self})")
    }
}

/// A pair of share components addressed to one node: what a client seals to node `i`
/// (an order share) or what node `i` seals to an order's owner (a fill share).
#[derive(Clone, PartialEq, Eq)]
pub struct SharePayload {
    /// The auction round.
    pub round: [u8; 16],
    /// The order.
    pub id: OrderId,
    /// The node that holds (or sent) these components.
    pub party: PartyId,
    comps: [u64; 2],
}

/// The share of an order that a client sends (sealed) to one node.
pub type OrderPayload = SharePayload;
/// The share of a fill that a node sends (sealed) to the order's owner.
pub type FillShare = SharePayload;

impl Drop for SharePayload {
    fn drop(&mut self) {
        self.comps.zeroize();
    }
}

impl fmt::Debug for SharePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SharePayload(order {}, party {}, <secret>)",
            self.id, self.party
        )
    }
}

const ORDER_TAG: &[u8; 4] = b"VGMO";
const FILL_TAG: &[u8; 4] = b"VGMF";
/// Longest encoded payload.
pub const MAX_PAYLOAD_LEN: usize = 4 + 1 + 16 + 1 + 1 + MAX_ORDER_ID_LEN + 16;

impl SharePayload {
    pub(crate) fn new(round: [u8; 16], id: OrderId, party: PartyId, comps: [u64; 2]) -> Self {
        SharePayload {
            round,
            id,
            party,
            comps,
        }
    }

    pub(crate) fn comps(&self) -> [u64; 2] {
        self.comps
    }

    fn encode(&self, tag: &[u8; 4]) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_PAYLOAD_LEN);
        out.extend_from_slice(tag);
        out.push(1);
        out.extend_from_slice(&self.round);
        out.push(self.party.as_u8());
        out.push(self.id.0.len() as u8);
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.comps[0].to_le_bytes());
        out.extend_from_slice(&self.comps[1].to_le_bytes());
        out
    }

    fn decode(bytes: &[u8], tag: &[u8; 4]) -> Result<Self, Error> {
        if bytes.len() > MAX_PAYLOAD_LEN || bytes.len() < 4 + 1 + 16 + 1 + 1 + 1 + 16 {
            return Err(Error::Malformed("share payload length"));
        }
        if &bytes[..4] != tag || bytes[4] != 1 {
            return Err(Error::Malformed("share payload tag or version"));
        }
        let mut round = [0u8; 16];
        round.copy_from_slice(&bytes[5..21]);
        let party = PartyId::new(bytes[21]).map_err(|_| Error::Malformed("share payload party"))?;
        let idlen = bytes[22] as usize;
        if bytes.len() != 23 + idlen + 16 {
            return Err(Error::Malformed("share payload length"));
        }
        let id = OrderId::new(&bytes[23..23 + idlen])
            .map_err(|_| Error::Malformed("share payload id"))?;
        let rest = &bytes[23 + idlen..];
        let word = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rest[o..o + 8]);
            u64::from_le_bytes(b)
        };
        Ok(SharePayload {
            round,
            id,
            party,
            comps: [word(0), word(8)],
        })
    }

    /// Encoding of an order share (what the client seals to the node).
    pub fn order_bytes(&self) -> Vec<u8> {
        self.encode(ORDER_TAG)
    }

    /// Decode an order share (size-limited).
    pub fn from_order_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode(bytes, ORDER_TAG)
    }

    /// Encoding of a fill share (what the node seals to the owner).
    pub fn fill_bytes(&self) -> Vec<u8> {
        self.encode(FILL_TAG)
    }

    /// Decode a fill share (size-limited).
    pub fn from_fill_bytes(bytes: &[u8]) -> Result<Self, Error> {
        Self::decode(bytes, FILL_TAG)
    }
}

/// Validate an order and share it into three payloads, element `i` for node `i`.
pub fn share_order(
    round: [u8; 16],
    id: &OrderId,
    order: &Order,
    levels: u32,
) -> Result<[OrderPayload; 3], Error> {
    share_order_with_rng(round, id, order, levels, &mut rand::rngs::OsRng)
}

/// [`share_order`] with a caller's random generator.
pub fn share_order_with_rng<R: RngCore + CryptoRng>(
    round: [u8; 16],
    id: &OrderId,
    order: &Order,
    levels: u32,
    rng: &mut R,
) -> Result<[OrderPayload; 3], Error> {
    order.validate(levels)?;
    Ok(share_word(round, id, order.pack(), rng))
}

/// XOR-share a packed word without validation (also used by tests to play a
/// misbehaving client).
pub(crate) fn share_word<R: RngCore + CryptoRng>(
    round: [u8; 16],
    id: &OrderId,
    mut word: u64,
    rng: &mut R,
) -> [OrderPayload; 3] {
    let w0 = rng.next_u64();
    let w1 = rng.next_u64();
    let mut c = [w0, w1, word ^ w0 ^ w1];
    word.zeroize();
    let out = PartyId::ALL.map(|p| {
        let i = p.index();
        SharePayload::new(round, id.clone(), p, [c[i], c[(i + 1) % 3]])
    });
    c.zeroize();
    out
}

/// Reconstruct a fill from the three shares the nodes sent to the owner: each share
/// component arrives twice (from its two holders) and both copies must agree.
pub fn reconstruct_fill(round: [u8; 16], id: &OrderId, shares: &[FillShare]) -> Result<u64, Error> {
    let mut by_party: [Option<&FillShare>; 3] = [None, None, None];
    for s in shares {
        if s.round != round {
            return Err(Error::Misaddressed {
                what: "round",
                got: hex::encode(s.round),
                expected: hex::encode(round),
            });
        }
        if &s.id != id {
            return Err(Error::Misaddressed {
                what: "order",
                got: s.id.to_string(),
                expected: id.to_string(),
            });
        }
        let slot = &mut by_party[s.party.index()];
        if slot.is_some() {
            return Err(Error::Malformed("two fill shares from one node"));
        }
        *slot = Some(s);
    }
    let [Some(s0), Some(s1), Some(s2)] = by_party else {
        return Err(Error::Malformed("need one fill share from each node"));
    };
    let views = [s0, s1, s2];
    for i in 0..3 {
        // party i's second component is component i+1, party (i+1)'s first
        let j = (i + 1) % 3;
        if views[i].comps[1] != views[j].comps[0] {
            return Err(Error::FillShareMismatch {
                component: j as u8,
                a: views[i].party,
                b: views[j].party,
            });
        }
    }
    let fill = s0.comps[0]
        .wrapping_add(s1.comps[0])
        .wrapping_add(s2.comps[0]);
    if fill >= 1 << QTY_BITS {
        return Err(Error::Malformed("fill is not below 2^32"));
    }
    Ok(fill)
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
    fn limit_bits_of_grids() {
        assert_eq!(limit_bits(1).unwrap(), 0);
        assert_eq!(limit_bits(2).unwrap(), 1);
        assert_eq!(limit_bits(64).unwrap(), 6);
        assert_eq!(limit_bits(65).unwrap(), 7);
        assert_eq!(limit_bits(256).unwrap(), 8);
        assert!(limit_bits(0).is_err());
        assert!(limit_bits(257).is_err());
    }

    #[test]
    fn validation_rejects_bad_orders() {
        let ok = Order {
            side: Side::Buy,
            limit: 63,
            qty: 1,
        };
        assert!(ok.validate(64).is_ok());
        assert_eq!(
            Order { limit: 64, ..ok }.validate(64),
            Err(Error::LimitOutOfRange {
                limit: 64,
                levels: 64
            })
        );
        assert_eq!(
            Order { qty: 0, ..ok }.validate(64),
            Err(Error::QuantityOutOfRange(0))
        );
        assert_eq!(
            Order { qty: 1 << 32, ..ok }.validate(64),
            Err(Error::QuantityOutOfRange(1 << 32))
        );
        assert!(
            Order {
                qty: (1 << 32) - 1,
                ..ok
            }
            .validate(64)
            .is_ok()
        );
        assert!(Order { limit: 0, ..ok }.validate(1).is_ok());
        assert!(Order { limit: 1, ..ok }.validate(1).is_err());
        let id = OrderId::new(b"x").unwrap();
        assert!(share_order([0; 16], &id, &Order { qty: 0, ..ok }, 64).is_err());
        assert!(OrderId::new(&[]).is_err());
        assert!(OrderId::new(&[1; 65]).is_err());
    }

    #[test]
    fn pack_unpack_roundtrip() {
        for (side, limit, qty) in [
            (Side::Buy, 0, 1),
            (Side::Sell, 255, (1u64 << 32) - 1),
            (Side::Buy, 33, 12345),
        ] {
            let o = Order { side, limit, qty };
            assert_eq!(Order::unpack(o.pack(), 8), o);
        }
    }

    #[test]
    fn shares_reconstruct_and_each_node_sees_random_words() {
        let id = OrderId::new(b"order-1").unwrap();
        let o = Order {
            side: Side::Sell,
            limit: 5,
            qty: 77,
        };
        let p = share_order([3; 16], &id, &o, 64).unwrap();
        let w = p[0].comps[0] ^ p[1].comps[0] ^ p[2].comps[0];
        assert_eq!(Order::unpack(w, 6), o);
        for i in 0..3 {
            assert_eq!(p[i].comps[1], p[(i + 1) % 3].comps[0]);
            // no single node's pair determines the word
            assert_ne!(p[i].comps[0] ^ p[i].comps[1], w);
        }
        let q = share_order([3; 16], &id, &o, 64).unwrap();
        assert_ne!(p[0].comps, q[0].comps, "fresh randomness per sharing");
        for s in &p {
            let b = s.order_bytes();
            assert_eq!(SharePayload::from_order_bytes(&b).unwrap(), *s);
            assert!(SharePayload::from_fill_bytes(&b).is_err());
            assert!(SharePayload::from_order_bytes(&b[..b.len() - 1]).is_err());
            let mut long = b.clone();
            long.push(0);
            assert!(SharePayload::from_order_bytes(&long).is_err());
        }
        assert!(!format!("{:?}", p[0]).contains(&p[0].comps[0].to_string()));
    }

    #[test]
    fn one_nodes_pair_is_uniform_whatever_the_order() {
        // Node 0 sees (w_0, w_1) and node 1 sees (w_1, w_2): over many sharings of one
        // fixed order every bit of what a node sees is balanced.
        let id = OrderId::new(b"u").unwrap();
        let o = Order {
            side: Side::Buy,
            limit: 0,
            qty: 1,
        };
        let n = 4000;
        let mut ones = [[0u32; 64]; 4];
        for _ in 0..n {
            let p = share_order([0; 16], &id, &o, 64).unwrap();
            let seen = [
                p[0].comps[0],
                p[0].comps[1],
                p[1].comps[1],
                p[2].comps[0] ^ p[2].comps[1],
            ];
            for (k, w) in seen.iter().enumerate() {
                for t in 0..64 {
                    ones[k][t] += ((w >> t) & 1) as u32;
                }
            }
        }
        // mean 2000, standard deviation ~32: 6 sigma
        for row in ones {
            for c in row {
                assert!((1800..=2200).contains(&c), "{c}");
            }
        }
    }

    #[test]
    fn fill_reconstruction_checks_both_copies() {
        let id = OrderId::new(b"f").unwrap();
        let r = [1; 16];
        let f = 1234u64;
        let (a, b) = (0xdead_beefu64, 0x1234_5678_9abc_def0u64);
        let c = [a, b, f.wrapping_sub(a).wrapping_sub(b)];
        let mk = |i: usize| FillShare::new(r, id.clone(), PartyId::ALL[i], [c[i], c[(i + 1) % 3]]);
        let shares = [mk(0), mk(1), mk(2)];
        assert_eq!(reconstruct_fill(r, &id, &shares).unwrap(), f);
        let mut bad = shares.clone();
        bad[1].comps[1] ^= 1;
        assert_eq!(
            reconstruct_fill(r, &id, &bad),
            Err(Error::FillShareMismatch {
                component: 2,
                a: PartyId::ALL[1],
                b: PartyId::ALL[2]
            })
        );
        assert!(reconstruct_fill(r, &id, &shares[..2]).is_err());
        assert!(reconstruct_fill([2; 16], &id, &shares).is_err());
        let dup = [mk(0), mk(0), mk(2)];
        assert!(reconstruct_fill(r, &id, &dup).is_err());
    }
}
