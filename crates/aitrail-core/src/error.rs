//! Errors of aitrail-core: each variant names what was wrong.

use thiserror::Error;

/// Everything that can fail in the pure logic.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum Error {
    /// The event did not pass validation; each problem names its field path.
    #[error("invalid event: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InvalidEvent(Vec<crate::event::FieldError>),
    /// JSON that could not be canonicalized (RFC 8785 forbids NaN and infinities, for example).
    #[error("cannot canonicalize JSON: {0}")]
    Canonical(String),
    /// A Merkle proof request outside the tree.
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    /// A consistency proof request with sizes out of order.
    #[error("cannot prove consistency from size {from} to size {to}: need 0 < from <= to")]
    BadSizes { from: u64, to: u64 },
    /// A proof whose length does not fit the sizes it claims.
    #[error("proof has the wrong length for index {index} in a tree of size {size}")]
    ProofLength { index: u64, size: u64 },
    /// A proof that leads to another root than the one claimed.
    #[error("root mismatch: expected {expected}, computed {computed}")]
    RootMismatch { expected: String, computed: String },
    /// A key, note or checkpoint that does not follow its format.
    #[error("malformed {what}: {detail}")]
    Malformed { what: &'static str, detail: String },
    /// A signed note without a valid signature from the expected key.
    #[error("no valid signature by key {key} on the note")]
    BadSignature { key: String },
    /// A node source (the store) could not provide a hash it needs.
    #[error("node source: {0}")]
    Source(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
