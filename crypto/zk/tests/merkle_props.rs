//! Property tests of the Merkle tree: every proof the tree produces verifies, has
//! the length the sizes imply, and any single change to it or its inputs is refused.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proptest::prelude::*;
use veilgrid_zk::merkle::{
    MerkleTree, consistency_proof_len, inclusion_proof_len, leaf_hash, verify_consistency,
    verify_inclusion,
};

fn tree_of(n: u64) -> MerkleTree {
    let mut t = MerkleTree::new();
    for i in 0..n {
        t.append(&i.to_le_bytes());
    }
    t
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn inclusion_proofs_verify_and_bind(n in 1u64..600, seed in any::<u64>(), flip in any::<(usize, u8)>()) {
        let t = tree_of(n);
        let size = 1 + seed % n;
        let index = (seed / n) % size;
        let proof = t.inclusion_proof(index, size).unwrap();
        prop_assert_eq!(proof.len(), inclusion_proof_len(index, size));
        let root = t.root_at(size).unwrap();
        let leaf = leaf_hash(&index.to_le_bytes());
        verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
        // Another leaf, another index or another root is refused.
        prop_assert!(verify_inclusion(index, size, &leaf_hash(b"other"), &proof, &root).is_err());
        if size > 1 {
            prop_assert!(verify_inclusion((index + 1) % size, size, &leaf, &proof, &root).is_err());
            let mut bad = proof.clone();
            let i = flip.0 % bad.len();
            bad[i][(flip.1 % 32) as usize] ^= 1 << (flip.1 % 8);
            prop_assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
        }
    }

    #[test]
    fn consistency_proofs_verify_and_bind(n in 1u64..600, a in any::<u64>(), b in any::<u64>(), flip in any::<(usize, u8)>()) {
        let t = tree_of(n);
        let size2 = 1 + a % n;
        let size1 = b % (size2 + 1);
        let proof = t.consistency_proof(size1, size2).unwrap();
        let (r1, r2) = (t.root_at(size1).unwrap(), t.root_at(size2).unwrap());
        if size1 > 0 && size1 < size2 {
            prop_assert_eq!(proof.len(), consistency_proof_len(size1, size2));
        } else {
            prop_assert!(proof.is_empty());
        }
        verify_consistency(size1, size2, &r1, &r2, &proof).unwrap();
        if size1 > 0 && size1 < size2 {
            let mut bad = proof.clone();
            let i = flip.0 % bad.len();
            bad[i][(flip.1 % 32) as usize] ^= 1 << (flip.1 % 8);
            prop_assert!(verify_consistency(size1, size2, &r1, &r2, &bad).is_err());
            // A fork: the same sizes over different entries.
            let mut forked = tree_of(size1 - 1);
            forked.append(b"rewritten history");
            while forked.size() < size2 { forked.append(b"more"); }
            let fr2 = forked.root_at(size2).unwrap();
            let fproof = forked.consistency_proof(size1, size2).unwrap();
            prop_assert!(verify_consistency(size1, size2, &r1, &fr2, &fproof).is_err());
        }
    }

    #[test]
    fn incremental_roots_equal_fresh_roots(n in 0u64..300) {
        let t = tree_of(n);
        for size in [0, n / 3, n / 2, n] {
            prop_assert_eq!(t.root_at(size).unwrap(), tree_of(size).root());
        }
    }
}
