//! Orders, order books and their Poseidon commitments.

use crate::field::Fr;
use crate::gadgets::pack;
use crate::poseidon::{self, Domain};
use crate::{Error, Result};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop};

/// Most orders in a committed book (circuit slots).
pub const MAX_ORDERS: usize = 64;
/// Most price levels.
pub const MAX_LEVELS: usize = 64;
/// Quantities are in `[1, 2^32)`.
pub const MAX_QTY_BITS: usize = 32;

/// Buy or sell the base currency.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
#[serde(rename_all = "snake_case")]
pub enum Side {
    /// Buy base (eligible at level `k` iff `limit >= k`).
    Buy,
    /// Sell base (eligible at level `k` iff `limit <= k`).
    Sell,
}

/// One order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Zeroize)]
pub struct Order {
    /// Side.
    pub side: Side,
    /// Limit level `ℓ ∈ [0, P)`.
    pub limit: u8,
    /// Quantity `q ∈ [1, 2^32)`.
    pub qty: u32,
}

/// The circuit's fixed dimensions: `max_orders` slots and `levels` price levels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BookShape {
    /// Order slots `N` (1..=64); books with fewer orders are padded with empty slots.
    pub max_orders: usize,
    /// Price levels `P` (2..=64).
    pub levels: usize,
}

impl BookShape {
    /// The matching issue's default grid: 64 orders, 64 levels.
    pub const DEFAULT: Self = Self {
        max_orders: 64,
        levels: 64,
    };

    /// Checks the limits.
    pub fn validate(&self) -> Result<()> {
        if self.max_orders == 0 || self.max_orders > MAX_ORDERS {
            return Err(Error::invalid("book shape", "max_orders must be 1..=64"));
        }
        if self.levels < 2 || self.levels > MAX_LEVELS {
            return Err(Error::invalid("book shape", "levels must be 2..=64"));
        }
        Ok(())
    }

    /// Bits of a level index (`⌈log2 P⌉`).
    pub fn level_bits(&self) -> usize {
        let mut b = 1;
        while (1usize << b) < self.levels {
            b += 1;
        }
        b
    }

    /// Descriptor hashed first into the book and fills commitments: `N | P << 8`.
    pub fn descriptor(&self) -> Fr {
        Fr::from(self.max_orders as u64 | (self.levels as u64) << 8)
    }
}

/// An order book in submission order with the commitment's blinding. Only its
/// prover holds it (an operator or one agent), never an MPC node. Zeroized on drop.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct OrderBook {
    #[zeroize(skip)]
    shape: BookShape,
    orders: Vec<Order>,
    blinding: Fr,
    fills_blinding: Fr,
}

impl core::fmt::Debug for OrderBook {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("OrderBook")
            .field("shape", &self.shape)
            .field("orders", &"<hidden>")
            .finish_non_exhaustive()
    }
}

/// `Poseidon(BookCommitment; descriptor, packed slots, blinding)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BookCommitment(pub Fr);

/// `Poseidon(FillsCommitment; descriptor, packed fills, fills_blinding)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FillsCommitment(pub Fr);

impl OrderBook {
    /// A book of `orders` (in submission order) with explicit blindings.
    pub fn new(
        shape: BookShape,
        orders: Vec<Order>,
        blinding: Fr,
        fills_blinding: Fr,
    ) -> Result<Self> {
        shape.validate()?;
        if orders.len() > shape.max_orders {
            return Err(Error::invalid(
                "order book",
                format!(
                    "{} orders, the circuit has {} slots",
                    orders.len(),
                    shape.max_orders
                ),
            ));
        }
        for o in &orders {
            if usize::from(o.limit) >= shape.levels {
                return Err(Error::invalid("order", "limit level outside the grid"));
            }
            if o.qty == 0 {
                return Err(Error::invalid("order", "quantity 0"));
            }
        }
        Ok(Self {
            shape,
            orders,
            blinding,
            fills_blinding,
        })
    }

    /// A book that skips validation, so tests can feed the circuit hostile slots.
    #[doc(hidden)]
    pub fn new_unchecked_for_tests(
        shape: BookShape,
        orders: Vec<Order>,
        blinding: Fr,
        fills_blinding: Fr,
    ) -> Self {
        Self {
            shape,
            orders,
            blinding,
            fills_blinding,
        }
    }

    /// A book with fresh random blindings.
    pub fn with_random_blindings<R: rand_core::RngCore + rand_core::CryptoRng>(
        shape: BookShape,
        orders: Vec<Order>,
        rng: &mut R,
    ) -> Result<Self> {
        use ark_ff::UniformRand;
        let b = Fr::rand(rng);
        let fb = Fr::rand(rng);
        Self::new(shape, orders, b, fb)
    }

    /// The shape.
    pub fn shape(&self) -> BookShape {
        self.shape
    }

    /// The orders (without padding).
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    pub(crate) fn blinding(&self) -> Fr {
        self.blinding
    }

    pub(crate) fn fills_blinding(&self) -> Fr {
        self.fills_blinding
    }

    /// All `N` slots: the orders, then empty slots `(sell, 0, qty 0)`.
    pub(crate) fn slots(&self) -> Vec<Order> {
        let mut s = self.orders.clone();
        s.resize(
            self.shape.max_orders,
            Order {
                side: Side::Sell,
                limit: 0,
                qty: 0,
            },
        );
        s
    }

    /// Packed slot fields `(is_buy: 1 bit, limit: ⌈log2 P⌉ bits, qty: 32 bits)`.
    pub(crate) fn slot_fields(&self) -> Vec<(u128, usize)> {
        let lb = self.shape.level_bits();
        let mut out = Vec::new();
        for o in self.slots() {
            out.push((u128::from(o.side == Side::Buy), 1));
            out.push((u128::from(o.limit), lb));
            out.push((u128::from(o.qty), MAX_QTY_BITS));
        }
        out
    }

    /// The book commitment (public input of the clearing circuit).
    pub fn commitment(&self) -> Result<BookCommitment> {
        let mut elems = vec![self.shape.descriptor()];
        elems.extend(
            pack::pack_native(&self.slot_fields())
                .ok_or_else(|| Error::invalid("order book", "field out of range"))?,
        );
        elems.push(self.blinding);
        Ok(BookCommitment(poseidon::hash(
            Domain::BookCommitment,
            &elems,
        )))
    }

    /// The commitment to `fills` (one per slot; missing slots are 0).
    pub fn fills_commitment(&self, fills: &[u64]) -> Result<FillsCommitment> {
        if fills.len() > self.shape.max_orders {
            return Err(Error::invalid("fills", "more fills than slots"));
        }
        let mut fields: Vec<(u128, usize)> = fills
            .iter()
            .map(|&f| (u128::from(f), MAX_QTY_BITS))
            .collect();
        fields.resize(self.shape.max_orders, (0, MAX_QTY_BITS));
        let mut elems = vec![self.shape.descriptor()];
        elems.extend(
            pack::pack_native(&fields).ok_or_else(|| Error::invalid("fills", "fill >= 2^32"))?,
        );
        elems.push(self.fills_blinding);
        Ok(FillsCommitment(poseidon::hash(
            Domain::FillsCommitment,
            &elems,
        )))
    }
}
