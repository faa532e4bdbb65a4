//! The self-contained inclusion proof document (DESIGN.md "Entries and hashes"): everything a
//! third party needs, with the log's verifier key, to check one entry offline.

use crate::checkpoint::{Checkpoint, Verifier};
use crate::entry::Record;
use crate::error::{Error, Result};
use crate::merkle::{leaf_hash, verify_inclusion, Hash};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::{Deserialize, Serialize};

/// An inclusion proof of one entry against a signed checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    pub log: String,
    pub seq: u64,
    pub tree_size: u64,
    /// Base64 of the entry bytes.
    pub entry: String,
    #[serde(with = "crate::hexser")]
    pub leaf_hash: Hash,
    /// Sibling hashes from the leaf up (RFC 6962 §2.1.1 order).
    #[serde(with = "crate::hexser::list")]
    pub audit_path: Vec<Hash>,
    #[serde(with = "crate::hexser")]
    pub root_hash: Hash,
    /// The signed checkpoint note of size `tree_size`.
    pub checkpoint: String,
}

/// What a verified proof establishes.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    pub record: Record,
    pub checkpoint: Checkpoint,
}

fn mismatch(detail: String) -> Error {
    Error::Malformed {
        what: "proof",
        detail,
    }
}

impl Proof {
    /// Checks the proof offline: the entry hashes to `leaf_hash`, the record is at `seq` of
    /// `log`, the path leads to `root_hash` (RFC 9162 §2.1.3.2), and the checkpoint is signed
    /// by `verifier` for exactly that size and root.
    pub fn verify(&self, verifier: &Verifier) -> Result<Verified> {
        let entry = B64
            .decode(&self.entry)
            .map_err(|e| mismatch(format!("entry is not base64: {e}")))?;
        let computed = leaf_hash(&entry);
        if computed != self.leaf_hash {
            return Err(mismatch(format!(
                "leaf_hash is {} but the entry hashes to {}",
                hex::encode(self.leaf_hash),
                hex::encode(computed)
            )));
        }
        let record = Record::parse(&entry)?;
        if record.seq != self.seq || record.log != self.log {
            return Err(mismatch(format!(
                "entry is seq {} of log {:?}, the proof claims seq {} of {:?}",
                record.seq, record.log, self.seq, self.log
            )));
        }
        verify_inclusion(
            self.seq,
            self.tree_size,
            &self.leaf_hash,
            &self.audit_path,
            &self.root_hash,
        )?;
        let checkpoint = Checkpoint::open(&self.checkpoint, verifier)?;
        if checkpoint.size != self.tree_size || checkpoint.root != self.root_hash {
            return Err(mismatch(format!(
                "checkpoint is for size {} root {}, the proof for size {} root {}",
                checkpoint.size,
                hex::encode(checkpoint.root),
                self.tree_size,
                hex::encode(self.root_hash)
            )));
        }
        Ok(Verified { record, checkpoint })
    }
}
