//! Benchmarks of the matching MPC (filled in below).
#![allow(missing_docs)]
fn main() {}
