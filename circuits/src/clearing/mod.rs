//! The `clearing` circuit: a uniform-price clearing of a committed order book.
#![doc = include_str!("../../docs/clearing.md")]

mod book;
mod circuit;
mod rule;

pub use book::{
    BookCommitment, BookShape, FillsCommitment, MAX_LEVELS, MAX_ORDERS, MAX_QTY_BITS, Order,
    OrderBook, Side,
};
pub use circuit::{ClearingCircuit, ClearingPublic, count_constraints, is_satisfied};
pub use rule::{Clearing, clear};
