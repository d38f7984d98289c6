//! RFC 6962 known-answer tests: the vectors of transparency-dev/merkle
//! (see `tests/data/rfc6962_vectors.json` for the source and licence), plus the
//! corruption probes that suite applies to every valid proof.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::Value;
use veilgrid_zk::Error;
use veilgrid_zk::merkle::{
    Hash, MerkleTree, empty_root, leaf_hash, root_from_inclusion_proof, verify_consistency,
    verify_inclusion,
};

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/rfc6962_vectors.json")).unwrap()
}

fn h(v: &Value) -> Hash {
    hex::decode(v.as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap()
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().unwrap().iter().map(h).collect()
}

fn leaves(v: &Value) -> Vec<Vec<u8>> {
    v["leaves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| hex::decode(l.as_str().unwrap()).unwrap())
        .collect()
}

fn tree(v: &Value) -> MerkleTree {
    MerkleTree::from_entries(leaves(v).iter().map(Vec::as_slice))
}

const SOME_HASH: &str = "abacaba000000000000000000000000000000000000000000060061e00123456";

#[test]
fn roots_of_the_eight_standard_leaves() {
    let v = vectors();
    let t = tree(&v);
    assert_eq!(empty_root(), h(&v["empty_root"]));
    assert_eq!(t.root_at(0).unwrap(), empty_root());
    for (i, root) in v["roots"].as_array().unwrap().iter().enumerate() {
        assert_eq!(t.root_at(i as u64 + 1).unwrap(), h(root), "size {}", i + 1);
    }
    assert_eq!(t.root(), h(&v["roots"][7]));
}

#[test]
fn inclusion_proofs_are_generated_and_verified_as_in_the_vectors() {
    let v = vectors();
    let t = tree(&v);
    let leaves = leaves(&v);
    for case in v["inclusion"].as_array().unwrap() {
        let index = case["index"].as_u64().unwrap();
        let size = case["size"].as_u64().unwrap();
        let path = hashes(&case["path"]);
        assert_eq!(
            t.inclusion_proof(index, size).unwrap(),
            path,
            "{index}/{size}"
        );
        let root = t.root_at(size).unwrap();
        let leaf = leaf_hash(&leaves[index as usize]);
        verify_inclusion(index, size, &leaf, &path, &root).unwrap();
        assert_eq!(
            root_from_inclusion_proof(index, size, &leaf, &path).unwrap(),
            root
        );
        for (desc, probe) in corrupt_inclusion(index, size, &leaf, &path, &root) {
            assert!(
                verify_inclusion(probe.0, probe.1, &probe.2, &probe.3, &probe.4).is_err(),
                "{desc} verified for {index}/{size}"
            );
        }
    }
}

type InclusionProbe = (u64, u64, Hash, Vec<Hash>, Hash);

/// (description, size1, size2, root1, root2, proof)
type ConsistencyProbe = (&'static str, u64, u64, Hash, Hash, Vec<Hash>);

fn corrupt_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Vec<(String, InclusionProbe)> {
    let some = h(&Value::String(SOME_HASH.into()));
    let p = proof.to_vec();
    let mut out: Vec<(String, InclusionProbe)> = vec![
        (
            "index - 1".into(),
            (index.wrapping_sub(1), size, *leaf, p.clone(), *root),
        ),
        (
            "index + 1".into(),
            (index + 1, size, *leaf, p.clone(), *root),
        ),
        (
            "index ^ 2".into(),
            (index ^ 2, size, *leaf, p.clone(), *root),
        ),
        (
            "size * 2".into(),
            (index, size * 2, *leaf, p.clone(), *root),
        ),
        (
            "size / 2".into(),
            (index, size / 2, *leaf, p.clone(), *root),
        ),
        (
            "wrong leaf".into(),
            (index, size, leaf_hash(b"WrongLeaf"), p.clone(), *root),
        ),
        (
            "empty root".into(),
            (index, size, *leaf, p.clone(), empty_root()),
        ),
        ("random root".into(), (index, size, *leaf, p.clone(), some)),
        (
            "trailing root".into(),
            (index, size, *leaf, [p.clone(), vec![*root]].concat(), *root),
        ),
        (
            "preceding root".into(),
            (index, size, *leaf, [vec![*root], p.clone()].concat(), *root),
        ),
    ];
    for i in 0..p.len() {
        let mut bad = p.clone();
        bad[i][0] ^= 8;
        out.push((
            format!("modified proof[{i}] bit 3"),
            (index, size, *leaf, bad, *root),
        ));
    }
    if !p.is_empty() {
        out.push((
            "removed component".into(),
            (index, size, *leaf, p[..p.len() - 1].to_vec(), *root),
        ));
    }
    if p.len() > 1 {
        let mut bad = vec![p[0], some];
        bad.extend_from_slice(&p[1..]);
        out.push((
            "inserted component".into(),
            (index, size, *leaf, bad, *root),
        ));
    }
    out
}

#[test]
fn consistency_proofs_are_generated_and_verified_as_in_the_vectors() {
    let v = vectors();
    let t = tree(&v);
    for case in v["consistency"].as_array().unwrap() {
        let s1 = case["size1"].as_u64().unwrap();
        let s2 = case["size2"].as_u64().unwrap();
        let proof = hashes(&case["proof"]);
        assert_eq!(t.consistency_proof(s1, s2).unwrap(), proof, "{s1}->{s2}");
        let (r1, r2) = (t.root_at(s1).unwrap(), t.root_at(s2).unwrap());
        verify_consistency(s1, s2, &r1, &r2, &proof).unwrap();
        if proof.is_empty() {
            continue;
        }
        let some = h(&Value::String(SOME_HASH.into()));
        let mut probes: Vec<ConsistencyProbe> = vec![
            ("size1 - 1", s1 - 1, s2, r1, r2, proof.clone()),
            ("size1 + 1", s1 + 1, s2, r1, r2, proof.clone()),
            ("size1 ^ 2", s1 ^ 2, s2, r1, r2, proof.clone()),
            ("size2 * 2", s1, s2 * 2, r1, r2, proof.clone()),
            ("size2 / 2", s1, s2 / 2, r1, r2, proof.clone()),
            ("wrong root1", s1, s2, some, r2, proof.clone()),
            ("wrong root2", s1, s2, r1, some, proof.clone()),
            ("swapped roots", s1, s2, r2, r1, proof.clone()),
            ("empty proof", s1, s2, r1, r2, vec![]),
            (
                "trailing root1",
                s1,
                s2,
                r1,
                r2,
                [proof.clone(), vec![r1]].concat(),
            ),
            (
                "trailing root2",
                s1,
                s2,
                r1,
                r2,
                [proof.clone(), vec![r2]].concat(),
            ),
            (
                "preceding root1",
                s1,
                s2,
                r1,
                r2,
                [vec![r1], proof.clone()].concat(),
            ),
            (
                "preceding root2",
                s1,
                s2,
                r1,
                r2,
                [vec![r2], proof.clone()].concat(),
            ),
            (
                "preceding proof[0]",
                s1,
                s2,
                r1,
                r2,
                [vec![proof[0]], proof.clone()].concat(),
            ),
            (
                "truncated",
                s1,
                s2,
                r1,
                r2,
                proof[..proof.len() - 1].to_vec(),
            ),
        ];
        for i in 0..proof.len() {
            let mut bad = proof.clone();
            bad[i][0] ^= 16;
            probes.push(("modified proof bit 4", s1, s2, r1, r2, bad));
        }
        for (desc, a, b, ra, rb, p) in probes {
            assert!(
                verify_consistency(a, b, &ra, &rb, &p).is_err(),
                "{desc} verified for {s1}->{s2}"
            );
        }
    }
}

#[test]
fn edge_cases_of_consistency() {
    let e = empty_root();
    let some = leaf_hash(b"x");
    // From the empty tree: only the empty root, only an empty proof.
    verify_consistency(0, 0, &e, &e, &[]).unwrap();
    verify_consistency(0, 5, &e, &some, &[]).unwrap();
    assert!(verify_consistency(0, 5, &some, &some, &[]).is_err());
    assert!(verify_consistency(0, 0, &e, &some, &[]).is_err());
    assert!(matches!(
        verify_consistency(0, 1, &e, &some, &[e]),
        Err(Error::ProofLength { .. })
    ));
    // Equal sizes: equal roots, empty proof.
    verify_consistency(3, 3, &some, &some, &[]).unwrap();
    assert!(verify_consistency(3, 3, &some, &e, &[]).is_err());
    assert!(verify_consistency(3, 3, &some, &some, &[e]).is_err());
    // Time travel.
    assert_eq!(
        verify_consistency(2, 1, &some, &some, &[]),
        Err(Error::SizesOutOfOrder { size1: 2, size2: 1 })
    );
}

#[test]
fn inclusion_edge_cases() {
    let leaf = leaf_hash(b"data");
    verify_inclusion(0, 1, &leaf, &[], &leaf).unwrap();
    assert!(verify_inclusion(0, 1, &leaf, &[], &empty_root()).is_err());
    assert!(verify_inclusion(0, 0, &leaf, &[], &leaf).is_err());
    assert!(verify_inclusion(2, 1, &leaf, &[], &leaf).is_err());
    assert!(verify_inclusion(u64::MAX, u64::MAX, &leaf, &[], &leaf).is_err());
}
