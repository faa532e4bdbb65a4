//! Proof generation by the definitions of RFC 6962 §2.1.1 (PATH) and §2.1.2 (PROOF/SUBPROOF),
//! over any `NodeSource` that can give the hash of a perfect subtree.
//!
//! Every range the recursion visits starts at a multiple of its left half's size, so any
//! subtree hash decomposes into perfect nodes: O(log n) node reads per proof.

use super::{node_hash, split_point, Hash};
use crate::error::{Error, Result};

/// Gives the hash of the perfect subtree at `level` (0 = leaves) and `index`, covering leaves
/// `index << level .. (index + 1) << level`. Callers only ask for nodes inside the tree.
pub trait NodeSource {
    fn node(&mut self, level: u32, index: u64) -> Result<Hash>;
}

/// MTH(D[start:end]) (RFC 6962 §2.1), for `start` aligned as the recursion leaves it.
pub fn subtree_hash(src: &mut dyn NodeSource, start: u64, end: u64) -> Result<Hash> {
    let n = end - start;
    if n.is_power_of_two() && start.is_multiple_of(n) {
        return src.node(n.trailing_zeros(), start >> n.trailing_zeros());
    }
    let k = split_point(n);
    let left = subtree_hash(src, start, start + k)?;
    let right = subtree_hash(src, start + k, end)?;
    Ok(node_hash(&left, &right))
}

/// The root of the first `size` leaves.
pub fn root_at(src: &mut dyn NodeSource, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(super::empty_root());
    }
    subtree_hash(src, 0, size)
}

/// PATH(index, D[0:size]) (RFC 6962 §2.1.1): sibling hashes from the leaf up.
pub fn inclusion_proof(src: &mut dyn NodeSource, index: u64, size: u64) -> Result<Vec<Hash>> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let mut path = Vec::new();
    path_rec(src, index, 0, size, &mut path)?;
    Ok(path)
}

fn path_rec(
    src: &mut dyn NodeSource,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let k = split_point(n);
    if m < k {
        path_rec(src, m, start, start + k, out)?;
        out.push(subtree_hash(src, start + k, end)?);
    } else {
        path_rec(src, m - k, start + k, end, out)?;
        out.push(subtree_hash(src, start, start + k)?);
    }
    Ok(())
}

/// PROOF(from, D[0:to]) (RFC 6962 §2.1.2). Empty when `from == to`.
pub fn consistency_proof(src: &mut dyn NodeSource, from: u64, to: u64) -> Result<Vec<Hash>> {
    if from == 0 || from > to {
        return Err(Error::BadSizes { from, to });
    }
    let mut proof = Vec::new();
    subproof_rec(src, from, 0, to, true, &mut proof)?;
    Ok(proof)
}

fn subproof_rec(
    src: &mut dyn NodeSource,
    m: u64,
    start: u64,
    end: u64,
    whole: bool,
    out: &mut Vec<Hash>,
) -> Result<()> {
    let n = end - start;
    if m == n {
        if !whole {
            out.push(subtree_hash(src, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    if m <= k {
        subproof_rec(src, m, start, start + k, whole, out)?;
        out.push(subtree_hash(src, start + k, end)?);
    } else {
        subproof_rec(src, m - k, start + k, end, false, out)?;
        out.push(subtree_hash(src, start, start + k)?);
    }
    Ok(())
}
