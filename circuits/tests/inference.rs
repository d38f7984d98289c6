//! The inference circuit against the plaintext quantized model.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use ark_std::rand::Rng;
use common::{small_linear, small_trees, test_rng};
use veilgrid_circuits::field::Fr;
use veilgrid_circuits::inference::{
    InferenceCircuit, InferencePublic, Model, ModelKind, PrivateInput, commit_input, is_satisfied,
};

fn random_input(model: &Model, rng: &mut impl Rng) -> Vec<u64> {
    (0..model.n_features)
        .map(|_| rng.gen_range(0..(1u64 << model.input_bits)))
        .collect()
}

fn check_model_on_random_inputs(model: &Model, rounds: usize, seed: u64) {
    let mut rng = test_rng(seed);
    let mut seen = [0usize; 2];
    for _ in 0..rounds {
        let x = random_input(model, &mut rng);
        let input = PrivateInput::new(x.clone(), &mut rng);
        let circuit = InferenceCircuit::new(model.clone(), input.clone()).unwrap();
        let public = circuit.public();
        assert_eq!(public.class, model.predict(&x).unwrap());
        seen[public.class as usize] += 1;
        assert!(is_satisfied(circuit).unwrap(), "honest proof must satisfy");
        // the other class is not provable
        let wrong = InferencePublic {
            class: 1 - public.class,
            ..public
        };
        let lie = InferenceCircuit::with_claim(model.clone(), input, wrong);
        assert!(!is_satisfied(lie).unwrap(), "wrong class must not satisfy");
    }
    assert!(
        seen[0] > 0 && seen[1] > 0,
        "test inputs must reach both classes: {seen:?}"
    );
}

#[test]
fn linear_model_matches_plaintext_on_random_inputs() {
    check_model_on_random_inputs(&small_linear(), 12, 1);
}

#[test]
fn tree_ensemble_matches_plaintext_on_random_inputs() {
    check_model_on_random_inputs(&small_trees(), 12, 2);
}

#[test]
fn negative_scores_and_boundary_are_exact() {
    // score = -7·x1 + bias: walk x1 across the threshold, both signs of the score
    let model = Model {
        n_features: 2,
        input_bits: 8,
        param_bits: 8,
        kind: ModelKind::Linear(veilgrid_circuits::inference::LinearModel {
            weights: vec![0, -7],
            bias: 100,
            threshold: -40,
        }),
    };
    let mut rng = test_rng(3);
    for x1 in [0u64, 19, 20, 21, 255] {
        let x = vec![5, x1];
        let expected = u8::from(100 - 7 * x1 as i64 >= -40);
        let input = PrivateInput::new(x, &mut rng);
        let c = InferenceCircuit::new(model.clone(), input.clone()).unwrap();
        assert_eq!(c.public().class, expected, "x1 = {x1}");
        assert!(is_satisfied(c.clone()).unwrap());
        let lie = InferencePublic {
            class: 1 - expected,
            ..c.public()
        };
        assert!(!is_satisfied(InferenceCircuit::with_claim(model.clone(), input, lie)).unwrap());
    }
}

#[test]
fn another_model_under_the_published_hash_is_rejected() {
    let model = small_linear();
    let mut rng = test_rng(4);
    let input = PrivateInput::new(vec![1, 2, 3, 4], &mut rng);
    let honest = InferenceCircuit::new(model.clone(), input.clone())
        .unwrap()
        .public();
    let mut other = model.clone();
    if let ModelKind::Linear(m) = &mut other.kind {
        m.bias += 1;
    }
    let swapped = InferenceCircuit::with_claim(other, input, honest);
    assert!(!is_satisfied(swapped).unwrap());
}

#[test]
fn another_input_under_the_commitment_is_rejected() {
    let model = small_trees();
    let mut rng = test_rng(5);
    let input = PrivateInput::new(vec![1, 2, 3, 4, 5], &mut rng);
    let honest = InferenceCircuit::new(model.clone(), input.clone())
        .unwrap()
        .public();
    let mut changed = input.clone();
    changed.features[0] = 9;
    let public = InferencePublic {
        class: model.predict(&changed.features).unwrap(),
        ..honest
    };
    assert!(!is_satisfied(InferenceCircuit::with_claim(model.clone(), changed, public)).unwrap());
    let mut reblinded = input;
    reblinded.blinding += Fr::from(1u64);
    assert!(!is_satisfied(InferenceCircuit::with_claim(model, reblinded, honest)).unwrap());
}

#[test]
fn out_of_range_feature_is_unsatisfiable() {
    let model = small_linear();
    let mut rng = test_rng(6);
    let input = PrivateInput::new(vec![256, 0, 0, 0], &mut rng); // 2^8 does not fit B = 8
    assert!(InferenceCircuit::new(model.clone(), input.clone()).is_err());
    // force it past validation: the range check catches it
    let public = InferencePublic {
        model_hash: model.hash().unwrap(),
        input_commitment: Fr::from(0u64),
        class: 0,
    };
    assert!(!is_satisfied(InferenceCircuit::with_claim(model, input, public)).unwrap());
}

#[test]
fn commitment_hides_with_blinding_and_binds_features() {
    let mut rng = test_rng(7);
    let a = PrivateInput::new(vec![1, 2, 3, 4], &mut rng);
    let b = PrivateInput::new(vec![1, 2, 3, 4], &mut rng);
    let ca = commit_input(&a, 8).unwrap();
    let cb = commit_input(&b, 8).unwrap();
    assert_ne!(
        ca, cb,
        "same features, fresh blinding: unlinkable commitments"
    );
    let mut c = a.clone();
    c.features[3] = 5;
    assert_ne!(commit_input(&c, 8).unwrap(), ca);
    assert!(
        !format!("{a:?}").contains('2'),
        "Debug must not print the features"
    );
}

#[test]
fn model_json_roundtrip_and_limits() {
    let m = small_trees();
    let json = m.to_json();
    assert_eq!(Model::from_json(json.as_bytes()).unwrap(), m);
    assert!(Model::from_json(&vec![b' '; (1 << 20) + 1]).is_err());
    let linear_json = br#"{"n_features":2,"input_bits":8,"param_bits":8,"kind":"linear","weights":[1,-128],"bias":-5,"threshold":0}"#;
    let lm = Model::from_json(linear_json).unwrap();
    assert_eq!(lm.predict(&[200, 1]).unwrap(), 1);
    let bad_weight = br#"{"n_features":2,"input_bits":8,"param_bits":8,"kind":"linear","weights":[1,128],"bias":-5,"threshold":0}"#;
    assert!(Model::from_json(bad_weight).is_err());
    let bad_feature = br#"{"n_features":1,"input_bits":4,"param_bits":8,"kind":"trees","depth":1,"trees":[{"features":[1],"thresholds":[3],"leaves":[1,2]}],"base":0,"threshold":0}"#;
    assert!(Model::from_json(bad_feature).is_err());
    assert_ne!(m.hash().unwrap(), small_linear().hash().unwrap());
}
