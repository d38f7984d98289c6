//! Groth16 setup / prove / verify, key ids and hostile bytes.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::{small_linear, small_trees, test_rng};
use veilgrid_circuits::Error;
use veilgrid_circuits::clearing::{BookShape, ClearingCircuit, Order, OrderBook, Side};
use veilgrid_circuits::field::Fr;
use veilgrid_circuits::groth16::{self, VerifyingKeyId};
use veilgrid_circuits::inference::{InferenceCircuit, PrivateInput};

#[test]
fn inference_proof_verifies_and_lies_do_not() {
    let model = small_linear();
    let mut rng = test_rng(20);
    let keys = groth16::setup(InferenceCircuit::blank(model.shape()).unwrap(), &mut rng).unwrap();
    let input = PrivateInput::new(vec![10, 20, 30, 40], &mut rng);
    let circuit = InferenceCircuit::new(model, input).unwrap();
    let public = circuit.public().to_field_elements();
    let proof = groth16::prove(&keys.proving_key, circuit, &mut rng).unwrap();
    groth16::verify(&keys.verifying_key, &public, &proof).unwrap();

    for i in 0..public.len() {
        let mut bad = public.clone();
        bad[i] += Fr::from(1u64);
        assert!(matches!(
            groth16::verify(&keys.verifying_key, &bad, &proof),
            Err(Error::ProofRejected(_))
        ));
    }
    assert!(groth16::verify(&keys.verifying_key, &public[..2], &proof).is_err());
    let prepared = groth16::PreparedVerifier::new(&keys.verifying_key);
    prepared.verify(&public, &proof).unwrap();
    let mut bad = public.clone();
    bad[2] = Fr::from(1u64) - bad[2];
    assert!(prepared.verify(&bad, &proof).is_err());
    let id = groth16::verifying_key_id(&keys.verifying_key);
    assert_eq!(prepared.id(), id);
    assert!(groth16::PreparedVerifier::pinned(&id, &keys.verifying_key).is_ok());
    assert!(
        groth16::PreparedVerifier::pinned(&VerifyingKeyId([7; 32]), &keys.verifying_key).is_err()
    );
}

#[test]
fn tree_and_clearing_proofs_verify() {
    let mut rng = test_rng(21);
    let model = small_trees();
    let keys = groth16::setup(InferenceCircuit::blank(model.shape()).unwrap(), &mut rng).unwrap();
    let circuit =
        InferenceCircuit::new(model, PrivateInput::new(vec![1, 5, 9, 13, 15], &mut rng)).unwrap();
    let public = circuit.public().to_field_elements();
    let proof = groth16::prove(&keys.proving_key, circuit, &mut rng).unwrap();
    groth16::verify(&keys.verifying_key, &public, &proof).unwrap();

    let shape = BookShape {
        max_orders: 4,
        levels: 4,
    };
    let keys = groth16::setup(ClearingCircuit::blank(shape).unwrap(), &mut rng).unwrap();
    let orders = vec![
        Order {
            side: Side::Buy,
            limit: 3,
            qty: 7,
        },
        Order {
            side: Side::Sell,
            limit: 1,
            qty: 5,
        },
        Order {
            side: Side::Sell,
            limit: 2,
            qty: 4,
        },
    ];
    let book = OrderBook::with_random_blindings(shape, orders, &mut rng).unwrap();
    let (circuit, fills) = ClearingCircuit::new(book).unwrap();
    assert_eq!(fills, vec![7, 5, 2]);
    let public = circuit.public();
    assert_eq!((public.level, public.volume), (2, 7));
    let proof = groth16::prove(&keys.proving_key, circuit, &mut rng).unwrap();
    groth16::verify(&keys.verifying_key, &public.to_field_elements(), &proof).unwrap();
}

#[test]
fn proofs_are_rerandomized_and_reveal_only_public_inputs() {
    let model = small_linear();
    let mut rng = test_rng(22);
    let keys = groth16::setup(InferenceCircuit::blank(model.shape()).unwrap(), &mut rng).unwrap();
    let input = PrivateInput::new(vec![201, 202, 203, 204], &mut rng);
    let c = InferenceCircuit::new(model, input).unwrap();
    let p1 = groth16::prove(&keys.proving_key, c.clone(), &mut rng).unwrap();
    let p2 = groth16::prove(&keys.proving_key, c.clone(), &mut rng).unwrap();
    let b1 = groth16::proof_to_bytes(&p1).unwrap();
    let b2 = groth16::proof_to_bytes(&p2).unwrap();
    assert_ne!(b1, b2, "two proofs of one statement must be unlinkable");
    // what an auditor receives: proof + public inputs; the features are not among them
    let public = c.public().to_field_elements();
    for f in [201u64, 202, 203, 204] {
        assert!(!public.contains(&Fr::from(f)));
    }
}

#[test]
fn keys_and_proofs_roundtrip_and_hostile_bytes_fail() {
    let model = small_linear();
    let mut rng = test_rng(23);
    let keys = groth16::setup(InferenceCircuit::blank(model.shape()).unwrap(), &mut rng).unwrap();
    let circuit =
        InferenceCircuit::new(model, PrivateInput::new(vec![1, 2, 3, 4], &mut rng)).unwrap();
    let public = circuit.public().to_field_elements();
    let proof = groth16::prove(&keys.proving_key, circuit, &mut rng).unwrap();

    // verifying key: roundtrip, stable id, trailing bytes, truncation, size limit
    let vk_bytes = groth16::verifying_key_to_bytes(&keys.verifying_key).unwrap();
    let vk2 = groth16::verifying_key_from_bytes(&vk_bytes).unwrap();
    let id = groth16::verifying_key_id(&keys.verifying_key);
    assert_eq!(groth16::verifying_key_id(&vk2), id);
    assert_eq!(VerifyingKeyId::from_hex(&id.to_hex()).unwrap(), id);
    let mut trailing = vk_bytes.clone();
    trailing.push(0);
    assert!(groth16::verifying_key_from_bytes(&trailing).is_err());
    assert!(groth16::verifying_key_from_bytes(&vk_bytes[..vk_bytes.len() - 1]).is_err());
    assert!(matches!(
        groth16::verifying_key_from_bytes(&vec![0u8; groth16::MAX_VERIFYING_KEY_BYTES + 1]),
        Err(Error::TooLarge { .. })
    ));

    // a different setup gives a different id; pinned verification refuses it
    let other = groth16::setup(
        InferenceCircuit::blank(small_linear().shape()).unwrap(),
        &mut rng,
    )
    .unwrap();
    let other_id = groth16::verifying_key_id(&other.verifying_key);
    assert_ne!(other_id, id);
    groth16::verify_pinned(&id, &vk2, &public, &proof).unwrap();
    assert!(matches!(
        groth16::verify_pinned(&id, &other.verifying_key, &public, &proof),
        Err(Error::WrongVerifyingKey { .. })
    ));
    assert!(groth16::verify(&other.verifying_key, &public, &proof).is_err());

    // proof: exact size, every single-byte flip is refused (decode or verify)
    let pb = groth16::proof_to_bytes(&proof).unwrap();
    assert_eq!(pb.len(), groth16::PROOF_BYTES);
    groth16::verify(&vk2, &public, &groth16::proof_from_bytes(&pb).unwrap()).unwrap();
    for i in 0..pb.len() {
        let mut t = pb.clone();
        t[i] ^= 0x01;
        let ok = groth16::proof_from_bytes(&t)
            .and_then(|p| groth16::verify(&vk2, &public, &p))
            .is_ok();
        assert!(!ok, "flipping byte {i} must be detected");
    }
    assert!(groth16::proof_from_bytes(&pb[..127]).is_err());

    // public inputs: canonical only, bounded count
    let pib = groth16::public_inputs_to_bytes(&public);
    assert_eq!(groth16::public_inputs_from_bytes(&pib, 3).unwrap(), public);
    assert!(groth16::public_inputs_from_bytes(&pib, 2).is_err());
    assert!(groth16::public_inputs_from_bytes(&[0xff; 32], 1).is_err());
    assert!(groth16::public_inputs_from_bytes(&[0; 31], 1).is_err());
}

#[test]
fn a_false_statement_gets_no_proof() {
    use veilgrid_circuits::inference::InferencePublic;
    let model = small_linear();
    let mut rng = test_rng(24);
    let keys = groth16::setup(InferenceCircuit::blank(model.shape()).unwrap(), &mut rng).unwrap();
    let input = PrivateInput::new(vec![1, 2, 3, 4], &mut rng);
    let honest = InferenceCircuit::new(model.clone(), input.clone())
        .unwrap()
        .public();
    let lie = InferencePublic {
        class: 1 - honest.class,
        ..honest
    };
    let circuit = InferenceCircuit::with_claim(model, input, lie);
    assert!(matches!(
        groth16::prove(&keys.proving_key, circuit, &mut rng),
        Err(Error::Unsatisfied { .. })
    ));
}
