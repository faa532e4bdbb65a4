//! Proof verification by the algorithms of RFC 9162 §2.1.3.2 (inclusion) and §2.1.4.2
//! (consistency). These are deliberately a different algorithm from the generating
//! recursion, so the two check each other.

use super::{node_hash, Hash};
use crate::error::{Error, Result};

/// The root an inclusion proof leads to (RFC 9162 §2.1.3.2).
pub fn root_from_inclusion(index: u64, size: u64, leaf: &Hash, path: &[Hash]) -> Result<Hash> {
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let (mut fnode, mut snode) = (index, size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return Err(Error::ProofLength { index, size });
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
        return Err(Error::ProofLength { index, size });
    }
    Ok(r)
}

/// Checks that `path` proves `leaf` at `index` in the tree of `size` with `root`.
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    path: &[Hash],
    root: &Hash,
) -> Result<()> {
    let computed = root_from_inclusion(index, size, leaf, path)?;
    if &computed != root {
        return Err(Error::RootMismatch {
            expected: hex::encode(root),
            computed: hex::encode(computed),
        });
    }
    Ok(())
}

/// Checks that the tree of `size2` with `root2` extends the tree of `size1` with `root1`
/// (RFC 9162 §2.1.4.2).
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    root1: &Hash,
    root2: &Hash,
    proof: &[Hash],
) -> Result<()> {
    if size1 > size2 {
        return Err(Error::BadSizes {
            from: size1,
            to: size2,
        });
    }
    if size1 == size2 || size1 == 0 {
        if !proof.is_empty() {
            return Err(Error::ProofLength {
                index: size1,
                size: size2,
            });
        }
        if size1 == size2 && root1 != root2 {
            return Err(Error::RootMismatch {
                expected: hex::encode(root2),
                computed: hex::encode(root1),
            });
        }
        return Ok(());
    }
    if proof.is_empty() {
        return Err(Error::ProofLength {
            index: size1,
            size: size2,
        });
    }
    // Step 1: when size1 is a power of two, the first tree's root is the proof's first node.
    let mut nodes = Vec::with_capacity(proof.len() + 1);
    if size1.is_power_of_two() {
        nodes.push(*root1);
    }
    nodes.extend_from_slice(proof);
    let (mut fnode, mut snode) = (size1 - 1, size2 - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    let (mut fr, mut sr) = (nodes[0], nodes[0]);
    for c in &nodes[1..] {
        if snode == 0 {
            return Err(Error::ProofLength {
                index: size1,
                size: size2,
            });
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
    if snode != 0 {
        return Err(Error::ProofLength {
            index: size1,
            size: size2,
        });
    }
    if &fr != root1 {
        return Err(Error::RootMismatch {
            expected: hex::encode(root1),
            computed: hex::encode(fr),
        });
    }
    if &sr != root2 {
        return Err(Error::RootMismatch {
            expected: hex::encode(root2),
            computed: hex::encode(sr),
        });
    }
    Ok(())
}
