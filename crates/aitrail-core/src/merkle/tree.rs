//! The growing tree: `Frontier` keeps the compact range (one perfect subtree per set bit of
//! the size) so appends and roots cost O(log n); `MemoryTree` keeps every node, for tests and
//! small in-memory logs.

use super::{empty_root, node_hash, Hash, NodeSource};
use crate::error::Result;

/// The right edge of a tree: the roots of its perfect subtrees, largest first.
///
/// Appending a leaf merges equal-sized subtrees like a binary counter; every merge completes a
/// perfect node, reported to the caller so it can be stored for proofs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Frontier {
    size: u64,
    nodes: Vec<Hash>,
}

impl Frontier {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds the frontier of a tree of `size` leaves from a node source.
    pub fn from_source(src: &mut dyn NodeSource, size: u64) -> Result<Self> {
        let mut nodes = Vec::new();
        let mut start = 0u64;
        for level in (0..64).rev() {
            if size & (1 << level) != 0 {
                nodes.push(src.node(level, start >> level)?);
                start += 1 << level;
            }
        }
        Ok(Frontier { size, nodes })
    }

    /// The number of leaves.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; `completed(level, index, hash)` is called for every perfect inner node
    /// (level >= 1) the append completes, lowest first.
    pub fn push(&mut self, leaf: Hash, mut completed: impl FnMut(u32, u64, &Hash)) {
        let mut carry = leaf;
        let mut level = 0u32;
        while self.size & (1 << level) != 0 {
            let left = self.nodes.pop().expect("a set bit has its subtree");
            carry = node_hash(&left, &carry);
            level += 1;
            completed(level, self.size >> level, &carry);
        }
        self.nodes.push(carry);
        self.size += 1;
    }

    /// MTH of the current tree (RFC 6962 §2.1): the subtrees folded from the right.
    pub fn root(&self) -> Hash {
        let mut iter = self.nodes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// A tree held wholly in memory, keeping every perfect node: `levels[l][i]` is the root of
/// leaves `i << l .. (i + 1) << l`.
#[derive(Clone, Debug, Default)]
pub struct MemoryTree {
    levels: Vec<Vec<Hash>>,
    frontier: Frontier,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, leaf: Hash) {
        let levels = &mut self.levels;
        if levels.is_empty() {
            levels.push(Vec::new());
        }
        levels[0].push(leaf);
        self.frontier.push(leaf, |level, _, hash| {
            let level = level as usize;
            if levels.len() <= level {
                levels.push(Vec::new());
            }
            levels[level].push(*hash);
        });
    }

    pub fn size(&self) -> u64 {
        self.frontier.size()
    }

    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

impl NodeSource for MemoryTree {
    fn node(&mut self, level: u32, index: u64) -> Result<Hash> {
        self.levels
            .get(level as usize)
            .and_then(|l| l.get(index as usize))
            .copied()
            .ok_or_else(|| crate::Error::Source(format!("no node at level {level} index {index}")))
    }
}
