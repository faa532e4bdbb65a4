//! Which Merkle nodes are kept, and how any perfect subtree hash is read back from them.
//!
//! Keeping every inner node would double the rows written. Instead, like tlog tiles, only
//! nodes at levels that are multiples of `STRIDE` are stored; a node between two stored
//! levels is rehashed from at most 2^(STRIDE-1) nodes of the level below. A proof at a million
//! entries then reads about 500 hashes in about 20 range queries: O(log n), well under 1 ms.

use crate::error::Result;
use crate::store::NodeRows;
use aitrail_core::merkle::{node_hash, Hash, NodeSource};

/// Levels kept: 8, 16, 24, ... (level 0, the leaves, lives in the entries).
pub const STRIDE: u32 = 8;

/// Whether a completed node at `level` is stored.
pub fn is_stored(level: u32) -> bool {
    level.is_multiple_of(STRIDE)
}

/// A `NodeSource` over stored rows.
pub struct StridedNodes<'a> {
    pub rows: &'a mut dyn NodeRows,
}

impl NodeSource for StridedNodes<'_> {
    fn node(&mut self, level: u32, index: u64) -> aitrail_core::Result<Hash> {
        let base = level - level % STRIDE;
        let width = 1u64 << (level - base);
        let mut layer = self
            .rows
            .hashes(base, index * width, (index + 1) * width)
            .map_err(|e| aitrail_core::Error::Source(e.to_string()))?;
        while layer.len() > 1 {
            layer = layer
                .chunks_exact(2)
                .map(|p| node_hash(&p[0], &p[1]))
                .collect();
        }
        layer.pop().ok_or_else(|| {
            aitrail_core::Error::Source(format!("no node at level {level} index {index}"))
        })
    }
}

/// Convenience: a node source for one read.
pub fn with_source<T>(
    rows: &mut dyn NodeRows,
    f: impl FnOnce(&mut dyn NodeSource) -> Result<T>,
) -> Result<T> {
    f(&mut StridedNodes { rows })
}
