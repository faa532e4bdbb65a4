//! Errors of aitrail-anchor (anchors and the archive): each variant names what failed and
//! where (path, bucket, URL).

use std::path::PathBuf;
use thiserror::Error;

/// Everything an anchor can fail at.
#[derive(Debug, Error)]
pub enum AnchorError {
    /// An `--anchor` spec (or a config entry) that does not parse.
    #[error("anchor spec {spec:?}: {reason}")]
    Spec { spec: String, reason: String },
    /// A setting an anchor needs is missing or wrong (e.g. a TSA without `--tsa-ca`).
    #[error("{0}")]
    Config(String),
    /// A log name that cannot be a file or object name.
    #[error("log name {0:?}: use letters, digits, '-', '_' and '.', not starting with '.'")]
    LogName(String),
    /// The text handed to an anchor is not a signed checkpoint.
    #[error("not a signed checkpoint note: {0}")]
    BadNote(String),
    /// File system failure, with the path it happened on.
    #[error("{action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The anchor already holds another note under this checkpoint's name: anchored
    /// checkpoints are never overwritten.
    #[error("{location} already holds another note for this checkpoint; anchored checkpoints are never overwritten ({detail})")]
    Conflict { location: String, detail: String },
    /// The store refused to delete an object because its lock still holds (S3 Object Lock:
    /// the retain-until date of a version is not past yet).
    #[error(
        "{location} is still locked and cannot be deleted before its retention ends ({detail})"
    )]
    Locked { location: String, detail: String },
    /// An archive key that cannot be a relative path in a directory or under a prefix.
    #[error(
        "archive key {key:?}: {reason}; keys are relative paths like default/2026-03-01.seg.gz"
    )]
    ArchiveKey { key: String, reason: &'static str },
    /// An S3 request failed.
    #[error("s3://{bucket}: {operation} failed: {detail}")]
    S3 {
        bucket: String,
        operation: &'static str,
        detail: String,
    },
    /// The bucket has no Object Lock, so what is written there could be deleted.
    #[error("s3://{bucket} has no Object Lock enabled ({detail}); create the bucket with Object Lock (see README: S3 Object Lock)")]
    NotLocked { bucket: String, detail: String },
    /// The object was written but the store did not apply the retention asked for.
    #[error("{location}: the store did not keep the object under COMPLIANCE retention: {detail}")]
    LockNotApplied { location: String, detail: String },
    /// An HTTP exchange with a timestamp authority failed.
    #[error("TSA {url}: {detail}")]
    Http { url: String, detail: String },
    /// The TSA answered, but did not grant a timestamp (RFC 3161 §2.4.2 PKIStatusInfo).
    #[error("TSA {url} refused the request: status {status}{detail}")]
    TsaRefused {
        url: String,
        status: String,
        detail: String,
    },
    /// A timestamp token that fails one of the checks of RFC 3161 §2.4.2 / RFC 5652 §5.
    #[error("timestamp token: {0}")]
    Token(#[from] TokenError),
}

/// Why a timestamp token does not verify.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum TokenError {
    /// Not DER of the structures RFC 3161 and RFC 5652 define.
    #[error("malformed: {0}")]
    Malformed(String),
    /// An algorithm this verifier does not implement.
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The token timestamps other data than the note (RFC 3161 §2.4.2 messageImprint).
    #[error(
        "the message imprint does not match the data: token has {token}, data hashes to {data}"
    )]
    Imprint { token: String, data: String },
    /// The nonce of the reply is not the one sent (RFC 3161 §2.4.2).
    #[error("the nonce in the token is not the one in the request")]
    Nonce,
    /// The CMS signature, its message digest or its signed attributes do not verify
    /// (RFC 5652 §5.4, §5.6).
    #[error("signature does not verify: {0}")]
    Signature(String),
    /// The TSA certificate does not chain to the configured CA (RFC 5280 §6).
    #[error("certificate chain: {0}")]
    Chain(String),
    /// The TSA certificate is not one for timestamping (RFC 3161 §2.3: one critical
    /// extended key usage, id-kp-timeStamping).
    #[error("TSA certificate: {0}")]
    KeyUsage(String),
}

pub type Result<T, E = AnchorError> = std::result::Result<T, E>;

/// Wraps an I/O error with what was being done and where.
pub(crate) fn io(
    action: &'static str,
    path: impl Into<PathBuf>,
) -> impl FnOnce(std::io::Error) -> AnchorError {
    let path = path.into();
    move |source| AnchorError::Io {
        action,
        path,
        source,
    }
}
