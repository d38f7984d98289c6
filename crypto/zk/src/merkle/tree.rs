//! An append-only Merkle tree of any size with RFC 9162 roots and proofs.
//!
//! The tree keeps every *complete* subtree hash: `levels[h][i]` is the root of
//! the perfect subtree over leaves `[i·2^h, (i+1)·2^h)`. Appending a leaf adds
//! one hash per level that it completes (amortised one node hash per append).
//! Every subtree the RFC 9162 recursion asks for starts at a multiple of the
//! largest power of two below its length, so its root is a fold of at most
//! 64 stored hashes; roots of past sizes, inclusion and consistency proofs all
//! cost `O(log² n)` hashes without touching the leaves.

use super::hash::{Hash, empty_root, leaf_hash, node_hash, split_point};
use crate::Error;

/// An in-memory append-only RFC 6962 Merkle tree.
#[derive(Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl core::fmt::Debug for MerkleTree {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("MerkleTree")
            .field("size", &self.size())
            .finish_non_exhaustive()
    }
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over `entries`, in order.
    pub fn from_entries<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Self {
        let mut tree = Self::new();
        for e in entries {
            tree.append(e);
        }
        tree
    }

    /// Number of leaves.
    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64)
    }

    /// Append an entry; returns its leaf index.
    pub fn append(&mut self, entry: &[u8]) -> u64 {
        self.push_leaf_hash(leaf_hash(entry))
    }

    /// Append an already computed leaf hash `SHA-256(0x00 || entry)`; returns its index.
    pub fn push_leaf_hash(&mut self, leaf: Hash) -> u64 {
        let index = self.size();
        let mut node = leaf;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            let row = &mut self.levels[level];
            row.push(node);
            // A row of even length just completed a pair: its parent is complete too.
            if row.len() % 2 == 1 {
                break;
            }
            node = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
        index
    }

    /// The leaf hash at `index`.
    pub fn leaf_hash(&self, index: u64) -> Result<Hash, Error> {
        let size = self.size();
        if index >= size {
            return Err(Error::IndexOutOfRange { index, size });
        }
        Ok(self.levels[0][index as usize])
    }

    /// The current root hash `MTH(D[0:size])`.
    pub fn root(&self) -> Hash {
        let size = self.size();
        if size == 0 {
            return empty_root();
        }
        self.subtree_root(0, size)
    }

    /// The root the tree had when it held its first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, Error> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.subtree_root(0, size))
    }

    /// RFC 9162 §2.1.3.1 `PATH(index, D[0:size])`: the inclusion proof of leaf
    /// `index` in the tree of the first `size` leaves, leaf sibling first.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, Error> {
        self.check_size(size)?;
        if index >= size {
            return Err(Error::IndexOutOfRange { index, size });
        }
        let mut out = Vec::with_capacity(64);
        self.path(index, 0, size, &mut out);
        Ok(out)
    }

    /// RFC 9162 §2.1.4.1 `PROOF(size1, D[0:size2])`: the consistency proof
    /// between the tree of the first `size1` leaves and that of the first `size2`.
    /// Empty when `size1` is 0 or equal to `size2`.
    pub fn consistency_proof(&self, size1: u64, size2: u64) -> Result<Vec<Hash>, Error> {
        self.check_size(size2)?;
        if size1 > size2 {
            return Err(Error::SizesOutOfOrder { size1, size2 });
        }
        let mut out = Vec::with_capacity(64);
        if size1 > 0 && size1 < size2 {
            self.subproof(size1, 0, size2, true, &mut out);
        }
        Ok(out)
    }

    fn check_size(&self, size: u64) -> Result<(), Error> {
        let available = self.size();
        if size > available {
            return Err(Error::SizeOutOfRange {
                requested: size,
                available,
            });
        }
        Ok(())
    }

    /// `MTH(D[start:end])` for a range the RFC recursion produces (`start` is a
    /// multiple of the largest power of two below `end - start`, and `end <= size`).
    fn subtree_root(&self, start: u64, end: u64) -> Hash {
        let len = end - start;
        if len.is_power_of_two() && start.is_multiple_of(len) {
            let level = len.trailing_zeros() as usize;
            return self.levels[level][(start / len) as usize];
        }
        let k = split_point(len);
        node_hash(
            &self.subtree_root(start, start + k),
            &self.subtree_root(start + k, end),
        )
    }

    /// `PATH(m, D[start:end])` with `m` relative to `start`.
    fn path(&self, m: u64, start: u64, end: u64, out: &mut Vec<Hash>) {
        let n = end - start;
        if n <= 1 {
            return;
        }
        let k = split_point(n);
        if m < k {
            self.path(m, start, start + k, out);
            out.push(self.subtree_root(start + k, end));
        } else {
            self.path(m - k, start + k, end, out);
            out.push(self.subtree_root(start, start + k));
        }
    }

    /// `SUBPROOF(m, D[start:end], b)`.
    fn subproof(&self, m: u64, start: u64, end: u64, b: bool, out: &mut Vec<Hash>) {
        let n = end - start;
        if m == n {
            if !b {
                out.push(self.subtree_root(start, end));
            }
            return;
        }
        let k = split_point(n);
        if m <= k {
            self.subproof(m, start, start + k, b, out);
            out.push(self.subtree_root(start + k, end));
        } else {
            self.subproof(m - k, start + k, end, false, out);
            out.push(self.subtree_root(start, start + k));
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    /// The RFC 9162 definition, computed directly from the leaves.
    fn reference_root(entries: &[Vec<u8>]) -> Hash {
        match entries.len() {
            0 => empty_root(),
            1 => leaf_hash(&entries[0]),
            n => {
                let k = split_point(n as u64) as usize;
                node_hash(
                    &reference_root(&entries[..k]),
                    &reference_root(&entries[k..]),
                )
            }
        }
    }

    #[test]
    fn roots_match_the_recursive_definition_for_every_size_up_to_70() {
        let entries: Vec<Vec<u8>> = (0u32..70).map(|i| i.to_be_bytes().to_vec()).collect();
        let tree = MerkleTree::from_entries(entries.iter().map(Vec::as_slice));
        for size in 0..=70usize {
            assert_eq!(
                tree.root_at(size as u64).unwrap(),
                reference_root(&entries[..size]),
                "size {size}"
            );
        }
        assert_eq!(tree.root(), reference_root(&entries));
    }

    #[test]
    fn out_of_range_requests_are_errors() {
        let tree = MerkleTree::from_entries([b"a".as_slice(), b"b"]);
        assert_eq!(
            tree.root_at(3),
            Err(Error::SizeOutOfRange {
                requested: 3,
                available: 2
            })
        );
        assert_eq!(
            tree.inclusion_proof(2, 2),
            Err(Error::IndexOutOfRange { index: 2, size: 2 })
        );
        assert!(tree.inclusion_proof(0, 3).is_err());
        assert_eq!(
            tree.consistency_proof(2, 1),
            Err(Error::SizesOutOfOrder { size1: 2, size2: 1 })
        );
        assert!(tree.leaf_hash(2).is_err());
    }
}
