//! RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2 (consistency) proof verification.
//!
//! Both are the RFC's algorithms step by step; a verifier holds only hashes and
//! sizes. Before running them, the number of proof hashes is checked against
//! the number the two sizes require, so an over-long proof is refused up front
//! with [`Error::ProofLength`] rather than hashed.

use super::hash::{Hash, empty_root, node_hash};
use crate::Error;

/// Number of hashes in `PATH(index, D[0:size])` (`index < size`).
pub fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // Levels where the path to `index` and the path to the last leaf differ
    // contribute one sibling each ("inner"); above them, one sibling per set
    // bit of what is left of the index ("border").
    let inner = 64 - (index ^ (size - 1)).leading_zeros();
    let border = (index >> inner).count_ones();
    (inner + border) as usize
}

/// Number of hashes in `PROOF(size1, D[0:size2])` (`0 < size1 < size2`).
pub fn consistency_proof_len(size1: u64, size2: u64) -> usize {
    let inner = 64 - ((size1 - 1) ^ (size2 - 1)).leading_zeros();
    let shift = (size1 - 1).trailing_ones().min(inner);
    let border = ((size1 - 1) >> inner).count_ones();
    // The starting hash is implicit (it is root1) when size1 is a power of two.
    let start = usize::from(!size1.is_power_of_two());
    (inner - shift) as usize + border as usize + start
}

/// RFC 9162 §2.1.3.2: recompute the root from leaf `index` of a tree of `size`
/// leaves, its leaf hash and its inclusion proof.
pub fn root_from_inclusion_proof(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
) -> Result<Hash, Error> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    if proof.len() != expected {
        return Err(Error::ProofLength {
            what: "inclusion proof",
            expected,
            actual: proof.len(),
        });
    }
    let mut fnode = index;
    let mut snode = size - 1;
    let mut r = *leaf;
    for p in proof {
        if snode == 0 {
            return Err(Error::InclusionFailed { index, size });
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(Error::InclusionFailed { index, size });
    }
    Ok(r)
}

/// Verify that `leaf` (a leaf hash) is at `index` in the tree of `size` leaves with root `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), Error> {
    let computed = root_from_inclusion_proof(index, size, leaf, proof)?;
    if &computed != root {
        return Err(Error::InclusionFailed { index, size });
    }
    Ok(())
}

/// RFC 9162 §2.1.4.2: verify that the tree of `size2` leaves with root `root2`
/// extends the tree of `size1` leaves with root `root1`.
///
/// A tree of size 0 has the root `SHA-256()` and is consistent with every tree
/// through an empty proof; equal sizes need equal roots and an empty proof.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<(), Error> {
    if size1 > size2 {
        return Err(Error::SizesOutOfOrder { size1, size2 });
    }
    let fail = Error::ConsistencyFailed { size1, size2 };
    if size1 == 0 || size1 == size2 {
        if !proof.is_empty() {
            return Err(Error::ProofLength {
                what: "consistency proof",
                expected: 0,
                actual: proof.len(),
            });
        }
        let ok = if size1 == 0 {
            *root1 == empty_root() && (size2 > 0 || root2 == root1)
        } else {
            root1 == root2
        };
        return if ok { Ok(()) } else { Err(fail) };
    }
    let expected = consistency_proof_len(size1, size2);
    if proof.len() != expected {
        return Err(Error::ProofLength {
            what: "consistency proof",
            expected,
            actual: proof.len(),
        });
    }
    // Step 2: if size1 is an exact power of two, root1 is the first node.
    let (first, rest): (&Hash, &[Hash]) = if size1.is_power_of_two() {
        (root1, proof)
    } else {
        match proof.split_first() {
            Some((f, r)) => (f, r),
            None => return Err(fail),
        }
    };
    let mut fnode = size1 - 1;
    let mut snode = size2 - 1;
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let mut fr = *first;
    let mut sr = *first;
    for c in rest {
        if snode == 0 {
            return Err(fail);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while fnode & 1 == 0 && fnode != 0 {
                fnode >>= 1;
                snode >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode == 0 && &fr == root1 && &sr == root2 {
        Ok(())
    } else {
        Err(fail)
    }
}
