//! The RFC 6962 / RFC 9162 Merkle tree: hashing, an append-only tree, proofs and their verification.
#![doc = include_str!("../../docs/merkle.md")]

mod hash;
mod tree;
mod verify;

pub use hash::{HASH_LEN, Hash, empty_root, leaf_hash, node_hash};
pub use tree::MerkleTree;
pub use verify::{
    consistency_proof_len, inclusion_proof_len, root_from_inclusion_proof, verify_consistency,
    verify_inclusion,
};
