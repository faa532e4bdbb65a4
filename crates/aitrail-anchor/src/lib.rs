//! aitrail-anchor: where signed checkpoints go to be kept outside aitrail, and how they are
//! read back.
//!
//! A checkpoint signed with the log's own key proves little against someone who also holds
//! that key: they can rewrite the log and sign new checkpoints. A copy kept where nobody here
//! can change it can be compared with the log later, and any rewrite of the history it covers
//! shows up as a failed RFC 6962 consistency proof ([`check`]).
//!
//! - [`Anchor`]: the one interface: `put` a signed note, `list` what is kept for a log.
//! - [`dir::DirAnchor`] (`dir:PATH`): files written once, never overwritten, fsync'd.
//! - [`s3::S3Anchor`] (`s3://BUCKET/PREFIX`): objects under S3 Object Lock in COMPLIANCE
//!   mode, which nobody (not even the account root) can delete or shorten before retention ends.
//! - [`tsa::TsaAnchor`] (`tsa:URL`): an RFC 3161 timestamp token over the note, checked
//!   against the TSA's CA ([`rfc3161`]); it proves the note existed at the token's time.
//! - [`spec`]: parses `--anchor SPEC` and opens the anchor it names.
//! - [`archive`]: the other thing kept outside the log: old entries moved to cold storage as
//!   per-day segment objects ([`Archive`]: `dir:PATH` or `s3://BUCKET/PREFIX`, opened with
//!   [`open_archive`]), write-once and, on S3, locked until their expiry date.
//!
//! ```
//! use aitrail_anchor::{dir::DirAnchor, Anchor};
//! use aitrail_core::checkpoint::{Checkpoint, Signer};
//! let signer = Signer::from_seed("example.com/log", [7; 32]).unwrap();
//! let note = Checkpoint { origin: signer.name.clone(), size: 3, root: [1; 32] }.sign(&signer).unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let anchor = DirAnchor::new(dir.path());
//! assert!(anchor.put("default", &note).unwrap().created);
//! assert!(!anchor.put("default", &note).unwrap().created); // written once
//! assert_eq!(anchor.list("default").unwrap()[0].note, note);
//! ```

pub mod archive;
pub mod check;
pub mod dir;
mod error;
mod net;
mod pkix;
pub mod rfc3161;
pub mod s3;
pub mod spec;
pub mod tsa;

pub use archive::{open_archive, Archive};
pub use error::{AnchorError, Result, TokenError};
pub use spec::{open, AnchorSpec, Options, Retention};

use aitrail_core::checkpoint::Checkpoint;
use serde::Serialize;

/// When, and by whom, a note was timestamped (RFC 3161 §2.4.2 TSTInfo).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Timestamp {
    /// genTime, RFC 3339.
    pub gen_time: String,
    /// serialNumber, hex.
    pub serial: String,
    /// The subject of the TSA certificate that signed the token.
    pub tsa: String,
    /// The TSA policy OID.
    pub policy: String,
}

/// What an anchor did with a note.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Where the note is kept: a file path, `s3://bucket/key#version`, a token file.
    pub location: String,
    /// False when the anchor already held this very note (nothing was written).
    pub created: bool,
    /// The timestamp, for a TSA.
    pub timestamp: Option<Timestamp>,
}

/// A checkpoint as read back from an anchor. Nothing in it is trusted yet: the note's
/// signature and its consistency with the log are checked by [`check::check`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchored {
    /// The signed note text as kept.
    pub note: String,
    /// Where it was read from.
    pub location: String,
    /// The verified timestamp, for a TSA.
    pub timestamp: Option<Timestamp>,
    /// What is wrong with the anchor's own evidence (a timestamp token that does not
    /// verify, for example); `None` when the anchor found nothing wrong.
    pub fault: Option<String>,
}

/// A place where signed checkpoints are kept independently of aitrail.
///
/// Implementations keep each note under [`object_name`], write it at most once, and never
/// replace it with other content.
pub trait Anchor: Send + Sync {
    /// How reports name this anchor: the spec it was opened from, e.g. `dir:/mnt/worm`.
    fn name(&self) -> &str;

    /// Keeps `note`, a signed checkpoint of `log`. The same note again is a no-op
    /// (`created: false`); another note under the same name is [`AnchorError::Conflict`].
    fn put(&self, log: &str, note: &str) -> Result<Receipt>;

    /// Every checkpoint of `log` the anchor holds, smallest tree first.
    fn list(&self, log: &str) -> Result<Vec<Anchored>>;
}

/// The checkpoint a note carries, read without checking its signature (the caller does that
/// with the log's key). C2SP signed-note: the text ends at the last blank line.
pub fn note_checkpoint(note: &str) -> Result<Checkpoint> {
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| AnchorError::BadNote("no blank line before the signatures".into()))?;
    Checkpoint::parse_body(&note[..split + 1]).map_err(|e| AnchorError::BadNote(e.to_string()))
}

/// The name a checkpoint of `log` is kept under, relative to the anchor's root:
/// `<log>/<tree size, 20 digits>-<root hash hex>.note`. Names sort by tree size.
pub fn object_name(log: &str, note: &str) -> Result<String> {
    check_log_name(log)?;
    let cp = note_checkpoint(note)?;
    Ok(format!(
        "{log}/{:020}-{}.note",
        cp.size,
        hex::encode(cp.root)
    ))
}

/// Log names become path segments: the same rule as the data directory's key files.
pub(crate) fn check_log_name(log: &str) -> Result<()> {
    let ok = !log.is_empty()
        && !log.starts_with('.')
        && log
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if ok {
        Ok(())
    } else {
        Err(AnchorError::LogName(log.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aitrail_core::checkpoint::Signer;

    #[test]
    fn object_names_sort_by_size_and_refuse_path_tricks() {
        let s = Signer::from_seed("example.com/log", [1; 32]).unwrap();
        let note = |size| {
            Checkpoint {
                origin: s.name.clone(),
                size,
                root: [0xab; 32],
            }
            .sign(&s)
            .unwrap()
        };
        let a = object_name("default", &note(9)).unwrap();
        let b = object_name("default", &note(10)).unwrap();
        assert_eq!(a, format!("default/{:020}-{}.note", 9, "ab".repeat(32)));
        assert!(a < b);
        for bad in ["", "..", "../x", "a/b", ".hidden"] {
            assert!(matches!(
                object_name(bad, &note(1)),
                Err(AnchorError::LogName(_))
            ));
        }
        assert!(matches!(
            object_name("default", "no checkpoint\n"),
            Err(AnchorError::BadNote(_))
        ));
    }
}
