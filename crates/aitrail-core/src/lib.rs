//! aitrail-core: the pure logic of a tamper-evident audit trail for AI decisions.
//!
//! No I/O and no async: everything here is a function of its inputs, so it is easy to test and
//! to trust. The path of an event:
//!
//! 1. [`event::Event`] validates the wire JSON, reporting every problem by field path.
//! 2. [`pii`] replaces `subject.id` (and fields a policy names) by keyed references, rewrites
//!    PII found in free text, and seals the content of events about a subject.
//! 3. [`entry`] builds the stored record and its RFC 8785 entry bytes ([`canonical`]).
//! 4. [`merkle`] hashes the bytes into an RFC 6962 tree; [`chain`] links every entry to the
//!    one before.
//! 5. [`checkpoint`] signs the tree head as a C2SP signed note; [`proof`] packs an inclusion
//!    proof anyone can check offline.
//!
//! ```
//! use aitrail_core::merkle::{leaf_hash, MemoryTree, inclusion_proof, verify_inclusion};
//! let mut tree = MemoryTree::new();
//! for entry in [b"a", b"b", b"c"] {
//!     tree.push(leaf_hash(entry));
//! }
//! let path = inclusion_proof(&mut tree, 1, 3).unwrap();
//! verify_inclusion(1, 3, &leaf_hash(b"b"), &path, &tree.root()).unwrap();
//! ```

pub mod canonical;
pub mod chain;
pub mod checkpoint;
pub mod entry;
mod error;
pub mod event;
pub mod export;
pub mod hexser;
pub mod merkle;
pub mod period;
pub mod pii;
pub mod proof;
pub mod timeline;

pub use error::{Error, Result};
