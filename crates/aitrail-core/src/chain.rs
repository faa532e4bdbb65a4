//! The hash chain: every entry also commits to the one before it, so an edit, deletion or
//! insertion shows at the first row it touches even without a checkpoint.

use crate::merkle::Hash;
use sha2::{Digest, Sha256};

/// `chain_hash[-1]`: 32 zero bytes.
pub const CHAIN_START: Hash = [0u8; 32];

/// `chain_hash[n] = SHA-256(chain_hash[n-1] || leaf_hash[n])`.
pub fn chain_hash(prev: &Hash, leaf: &Hash) -> Hash {
    let mut buf = [0u8; 64];
    buf[..32].copy_from_slice(prev);
    buf[32..].copy_from_slice(leaf);
    Sha256::digest(buf).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_links_previous_and_leaf() {
        let leaf = crate::merkle::leaf_hash(b"x");
        let first = chain_hash(&CHAIN_START, &leaf);
        let mut concat = CHAIN_START.to_vec();
        concat.extend_from_slice(&leaf);
        assert_eq!(first, <[u8; 32]>::from(Sha256::digest(&concat)));
        assert_ne!(chain_hash(&first, &leaf), first);
    }
}
