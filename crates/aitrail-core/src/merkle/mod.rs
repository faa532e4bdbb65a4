//! RFC 6962 Merkle tree hashing (RFC 9162 §2.1): leaf and node hashes, the incremental
//! frontier, proof generation from any node source, and proof verification.
//!
//! Leaves are entry bytes; `leaf_hash = SHA-256(0x00 || entry)`, inner nodes
//! `SHA-256(0x01 || left || right)` (RFC 6962 §2.1).

mod proof;
mod tree;
mod verify;

pub use proof::{consistency_proof, inclusion_proof, root_at, subtree_hash, NodeSource};
pub use tree::{Frontier, MemoryTree};
pub use verify::{root_from_inclusion, verify_consistency, verify_inclusion};

use sha2::{Digest, Sha256};

/// A SHA-256 digest: leaf, node, root or chain hash.
pub type Hash = [u8; 32];

/// MTH({}) = SHA-256() (RFC 6962 §2.1): the root of the empty tree.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// MTH({d}) = SHA-256(0x00 || d) (RFC 6962 §2.1).
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(entry);
    h.finalize().into()
}

/// SHA-256(0x01 || left || right) (RFC 6962 §2.1).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut buf = [0u8; 65];
    buf[0] = 1;
    buf[1..33].copy_from_slice(left);
    buf[33..].copy_from_slice(right);
    Sha256::digest(buf).into()
}

/// The largest power of two strictly less than `n` (n >= 2): RFC 6962's split point `k`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_point_is_largest_power_of_two_below() {
        assert_eq!(split_point(2), 1);
        assert_eq!(split_point(3), 2);
        assert_eq!(split_point(4), 2);
        assert_eq!(split_point(5), 4);
        assert_eq!(split_point(8), 4);
        assert_eq!(split_point(9), 8);
    }
}
