//! Client side: an order, its validation, its sharing into one payload per node, and
//! the reconstruction of a fill from the shares the nodes send back. See
//! `docs/auction.md` for the encoding.
//!
//! An order is packed into one 64-bit word — bit 0 the side (1 = buy), bits 1..=8 the
//! limit level, bits 9..=40 the quantity — and that word is XOR-shared:
//! `w = w_0 ⊕ w_1 ⊕ w_2`, node `i` receiving `(w_i, w_{i+1})`. Every field is in range
//! by construction: whatever a client puts in the word, the nodes read a side bit, a
//! limit below `2^m` and a quantity below `2^32`.

use crate::binding::{
    BLINDING_SHARES_LEN, BlindingShares, MAX_QTY, MAX_STATEMENT_LEN, OrderStatement,
    commit_and_prove,
};
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

/// A pair of share components: what node `i` seals to an order's owner (a fill share).
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

/// The share of a fill that a node sends (sealed) to the order's owner.
pub type FillShare = SharePayload;

/// What a client sends (sealed) to one node: its pair of word components, its pair
/// of blinding shares (secret) and the order's public statement — the commitments
/// `C_q`, `C_l` and their range proofs, the same for all three nodes.
#[derive(Clone, PartialEq, Eq)]
pub struct OrderPayload {
    /// The auction round.
    pub round: [u8; 16],
    /// The order.
    pub id: OrderId,
    /// The node this share is for.
    pub party: PartyId,
    comps: [u64; 2],
    blind: BlindingShares,
    /// The public commitments and range proofs.
    pub statement: OrderStatement,
}

impl Drop for OrderPayload {
    fn drop(&mut self) {
        self.comps.zeroize();
    }
}

impl fmt::Debug for OrderPayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "OrderPayload(order {}, party {}, {:?}, <secret>)",
            self.id, self.party, self.statement
        )
    }
}

/// Longest encoded order payload.
pub const MAX_ORDER_PAYLOAD_LEN: usize =
    4 + 1 + 16 + 1 + 1 + MAX_ORDER_ID_LEN + 16 + BLINDING_SHARES_LEN + MAX_STATEMENT_LEN;

impl OrderPayload {
    pub(crate) fn comps(&self) -> [u64; 2] {
        self.comps
    }

    pub(crate) fn blinding(&self) -> &BlindingShares {
        &self.blind
    }

    /// `"VGMO" | version 2 | round [16] | party u8 | id len u8 | id | 2 × u64 |
    /// blinding shares [128] | statement` (what the client seals to the node).
    pub fn order_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(MAX_ORDER_PAYLOAD_LEN);
        out.extend_from_slice(ORDER_TAG);
        out.push(2);
        out.extend_from_slice(&self.round);
        out.push(self.party.as_u8());
        out.push(self.id.0.len() as u8);
        out.extend_from_slice(&self.id.0);
        out.extend_from_slice(&self.comps[0].to_le_bytes());
        out.extend_from_slice(&self.comps[1].to_le_bytes());
        out.extend_from_slice(&self.blind.to_bytes());
        out.extend_from_slice(&self.statement.to_bytes());
        out
    }

    /// Decode an order share (size-limited).
    pub fn from_order_bytes(bytes: &[u8]) -> Result<Self, Error> {
        if bytes.len() > MAX_ORDER_PAYLOAD_LEN || bytes.len() < 24 {
            return Err(Error::Malformed("order payload length"));
        }
        if &bytes[..4] != ORDER_TAG || bytes[4] != 2 {
            return Err(Error::Malformed("order payload tag or version"));
        }
        let mut round = [0u8; 16];
        round.copy_from_slice(&bytes[5..21]);
        let party = PartyId::new(bytes[21]).map_err(|_| Error::Malformed("order payload party"))?;
        let idlen = bytes[22] as usize;
        let fixed = 23 + idlen + 16 + BLINDING_SHARES_LEN;
        if bytes.len() < fixed {
            return Err(Error::Malformed("order payload length"));
        }
        let id = OrderId::new(&bytes[23..23 + idlen])
            .map_err(|_| Error::Malformed("order payload id"))?;
        let rest = &bytes[23 + idlen..];
        let word = |o: usize| {
            let mut b = [0u8; 8];
            b.copy_from_slice(&rest[o..o + 8]);
            u64::from_le_bytes(b)
        };
        let comps = [word(0), word(8)];
        let blind = BlindingShares::from_bytes(&rest[16..16 + BLINDING_SHARES_LEN])?;
        let statement = OrderStatement::from_bytes(&rest[16 + BLINDING_SHARES_LEN..])?;
        Ok(OrderPayload {
            round,
            id,
            party,
            comps,
            blind,
            statement,
        })
    }
}

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
/// Longest encoded fill share.
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
    share_with_statement(
        round,
        id,
        order.pack(),
        (order.qty, u64::from(order.limit)),
        levels,
        ((1, MAX_QTY), (0, u64::from(levels - 1))),
        rng,
    )
}

/// XOR-share a packed word and attach a statement about `committed = (q, ℓ)` proved
/// for `bounds = ((q_min, q_max), (ℓ_min, ℓ_max))` — no validation, and nothing
/// forces the word to hold the committed values (tests use this to play a
/// misbehaving client; [`share_order_with_rng`] is the honest client).
pub(crate) fn share_with_statement<R: RngCore + CryptoRng>(
    round: [u8; 16],
    id: &OrderId,
    mut word: u64,
    committed: (u64, u64),
    levels: u32,
    bounds: ((u64, u64), (u64, u64)),
    rng: &mut R,
) -> Result<[OrderPayload; 3], Error> {
    let (statement, blind) = commit_and_prove(&round, id, committed, levels, bounds, rng)?;
    let mut c = xor_share(word, rng);
    word.zeroize();
    let [b0, b1, b2] = blind;
    let mut blind = [Some(b0), Some(b1), Some(b2)];
    let mut out = Vec::with_capacity(3);
    for p in PartyId::ALL {
        let i = p.index();
        out.push(OrderPayload {
            round,
            id: id.clone(),
            party: p,
            comps: [c[i], c[(i + 1) % 3]],
            blind: blind[i].take().ok_or(Error::State("blinding shares"))?,
            statement: statement.clone(),
        });
    }
    c.zeroize();
    out.try_into()
        .map_err(|_| Error::State("three order payloads"))
}

/// `[w_0, w_1, w ⊕ w_0 ⊕ w_1]` with `w_0`, `w_1` uniform.
fn xor_share<R: RngCore + CryptoRng>(word: u64, rng: &mut R) -> [u64; 3] {
    let w0 = rng.next_u64();
    let w1 = rng.next_u64();
    [w0, w1, word ^ w0 ^ w1]
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
            assert_eq!(OrderPayload::from_order_bytes(&b).unwrap(), *s);
            assert!(SharePayload::from_fill_bytes(&b).is_err());
            assert!(OrderPayload::from_order_bytes(&b[..b.len() - 1]).is_err());
            let mut long = b.clone();
            long.push(0);
            assert!(OrderPayload::from_order_bytes(&long).is_err());
            // the statement is the same for all nodes, the blinding shares are not printed
            assert_eq!(s.statement, p[0].statement);
            assert!(format!("{s:?}").contains("<secret>"));
            assert!(!format!("{:?}", s.blinding()).contains(&hex::encode(s.blinding().qty[0])));
        }
        assert!(!format!("{:?}", p[0]).contains(&p[0].comps[0].to_string()));
    }

    #[test]
    fn one_nodes_pair_is_uniform_whatever_the_order() {
        // Node 0 sees (w_0, w_1) and node 1 sees (w_1, w_2): over many sharings of one
        // fixed order every bit of what a node sees is balanced.

        let o = Order {
            side: Side::Buy,
            limit: 0,
            qty: 1,
        };
        let n = 4000;
        let mut ones = [[0u32; 64]; 4];
        for _ in 0..n {
            // the same sharing as `share_order` (without its proofs, which are slow)
            let c = xor_share(o.pack(), &mut rand::rngs::OsRng);
            let seen = [c[0], c[1], c[2], c[2] ^ c[0]];
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
