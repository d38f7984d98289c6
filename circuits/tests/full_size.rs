//! Full-size circuits end to end (setup, prove, verify): seconds each, so ignored
//! in CI. `cargo test -p veilgrid-circuits --release --test full_size -- --ignored`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ark_std::rand::Rng;
use common::test_rng;
use veilgrid_circuits::clearing::{BookShape, ClearingCircuit, Order, OrderBook, Side, clear};
use veilgrid_circuits::groth16;

#[test]
#[ignore = "full 64 x 64 clearing: a few seconds in release"]
fn clearing_64_orders_64_levels_proves_and_verifies() {
    let mut rng = test_rng(50);
    let orders: Vec<Order> = (0..64)
        .map(|i| Order {
            side: if i % 2 == 0 { Side::Buy } else { Side::Sell },
            limit: rng.gen_range(0..64),
            qty: rng.gen_range(1..100_000),
        })
        .collect();
    let expected = clear(64, &orders);
    assert!(expected.volume > 0);
    let keys = groth16::setup(
        ClearingCircuit::blank(BookShape::DEFAULT).unwrap(),
        &mut rng,
    )
    .unwrap();
    let book = OrderBook::with_random_blindings(BookShape::DEFAULT, orders, &mut rng).unwrap();
    let (circuit, fills) = ClearingCircuit::new(book).unwrap();
    assert_eq!(fills, expected.fills);
    let public = circuit.public();
    assert_eq!(public.volume, expected.volume);
    let proof = groth16::prove(&keys.proving_key, circuit, &mut rng).unwrap();
    groth16::verify(&keys.verifying_key, &public.to_field_elements(), &proof).unwrap();
    let mut lie = public;
    lie.volume -= 1;
    assert!(groth16::verify(&keys.verifying_key, &lie.to_field_elements(), &proof).is_err());
}
