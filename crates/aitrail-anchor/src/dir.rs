//! `dir:PATH`: checkpoints kept as files in a directory, ideally on other media (another
//! disk, a mounted share, a WORM volume).
//!
//! Each note is written once: to a temporary file that is fsync'd, then hard-linked to its
//! final name (which fails when the name exists, so nothing is ever replaced), then the
//! directory is fsync'd so the new name survives a crash. Files are created read-only.

use crate::error::{io, AnchorError, Result};
use crate::{object_name, Anchor, Anchored, Receipt};
use std::io::Write;
use std::path::{Path, PathBuf};

/// A directory anchor. The directory must exist: a missing mount point is an error rather
/// than a new, empty directory on the wrong disk.
#[derive(Debug)]
pub struct DirAnchor {
    name: String,
    root: PathBuf,
}

impl DirAnchor {
    pub fn new(root: &Path) -> DirAnchor {
        DirAnchor {
            name: format!("dir:{}", root.display()),
            root: root.to_owned(),
        }
    }

    fn check_root(&self) -> Result<()> {
        existing_dir(&self.root, "anchor")
    }
}

/// Refuses a missing directory: a missing mount point is an error rather than a new, empty
/// directory on the wrong disk. `what` names its use in the message ("anchor", "archive").
pub(crate) fn existing_dir(root: &Path, what: &str) -> Result<()> {
    if root.is_dir() {
        Ok(())
    } else {
        Err(AnchorError::Config(format!(
            "{what} directory {} does not exist (create it, or mount its volume)",
            root.display()
        )))
    }
}

impl Anchor for DirAnchor {
    fn name(&self) -> &str {
        &self.name
    }

    fn put(&self, log: &str, note: &str) -> Result<Receipt> {
        self.check_root()?;
        let path = self.root.join(object_name(log, note)?);
        let created = write_once(&path, note.as_bytes(), PUBLIC)?;
        Ok(Receipt {
            location: path.display().to_string(),
            created,
            timestamp: None,
        })
    }

    fn list(&self, log: &str) -> Result<Vec<Anchored>> {
        self.check_root()?;
        crate::check_log_name(log)?;
        let mut out = Vec::new();
        for path in files_with(&self.root.join(log), "note")? {
            let bytes = std::fs::read(&path).map_err(io("reading", &path))?;
            let (note, fault) = match String::from_utf8(bytes) {
                Ok(s) => (s, None),
                Err(e) => (String::new(), Some(format!("not UTF-8 text: {e}"))),
            };
            out.push(Anchored {
                note,
                location: path.display().to_string(),
                timestamp: None,
                fault,
            });
        }
        Ok(out)
    }
}

/// File mode of what anchors keep: read-only, readable by all (checkpoints are public).
pub(crate) const PUBLIC: u32 = 0o444;
/// File mode of archive segments: read-only, the owner's alone (they hold the trail's content).
pub(crate) const PRIVATE: u32 = 0o400;

/// Writes `bytes` to `path` unless it exists, created with `mode`. Returns true when
/// written, false when the file already holds exactly these bytes, and `Conflict` when it
/// holds anything else.
pub(crate) fn write_once(path: &Path, bytes: &[u8], mode: u32) -> Result<bool> {
    let parent = path
        .parent()
        .ok_or_else(|| AnchorError::Config(format!("{} has no parent", path.display())))?;
    if !parent.is_dir() {
        std::fs::create_dir_all(parent).map_err(io("creating", parent))?;
        if let Some(grand) = parent.parent() {
            sync_dir(grand)?;
        }
    }
    if let Some(same) = same_content(path, bytes)? {
        return if same { Ok(false) } else { Err(conflict(path)) };
    }
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut rnd = [0u8; 8];
    getrandom::getrandom(&mut rnd).map_err(|e| {
        AnchorError::Config(format!("reading random bytes for a temporary name: {e}"))
    })?;
    let tmp = parent.join(format!(".{file_name}.{}.tmp", hex::encode(rnd)));
    let result = (|| {
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, mode);
        let mut f = opts.open(&tmp).map_err(io("creating", &tmp))?;
        f.write_all(bytes).map_err(io("writing", &tmp))?;
        f.sync_all().map_err(io("syncing", &tmp))?;
        drop(f);
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(true),
            // Someone wrote the same name in between: keep theirs, compare.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                match same_content(path, bytes)? {
                    Some(true) => Ok(false),
                    _ => Err(conflict(path)),
                }
            }
            Err(e) => Err(io("linking", path)(e)),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    let created = result?;
    sync_dir(parent)?;
    Ok(created)
}

fn conflict(path: &Path) -> AnchorError {
    AnchorError::Conflict {
        location: path.display().to_string(),
        detail: "the file's content differs".into(),
    }
}

/// `Some(equal)` when `path` exists, `None` when it does not.
fn same_content(path: &Path, bytes: &[u8]) -> Result<Option<bool>> {
    match std::fs::read(path) {
        Ok(existing) => Ok(Some(existing == bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io("reading", path)(e)),
    }
}

/// fsync a directory so the names created in (or removed from) it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io("syncing directory", dir))?;
    Ok(())
}

/// Files in `dir` ending in `.ext`, sorted by name (empty when `dir` does not exist).
pub(crate) fn files_with(dir: &Path, ext: &str) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io("listing", dir)(e)),
    };
    let mut out = Vec::new();
    for entry in entries {
        let path = entry.map_err(io("listing", dir))?.path();
        let hidden = path
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with('.'));
        if !hidden && path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_once_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b.note");
        assert!(write_once(&path, b"one", PUBLIC).unwrap());
        assert!(!write_once(&path, b"one", PUBLIC).unwrap());
        assert!(matches!(
            write_once(&path, b"two", PUBLIC),
            Err(AnchorError::Conflict { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o222, 0, "anchored files are created read-only");
        }
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(dir.path().join("a"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("b.note")]);
    }

    #[test]
    fn a_missing_anchor_directory_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let anchor = DirAnchor::new(&dir.path().join("not-mounted"));
        let err = anchor.list("default").unwrap_err().to_string();
        assert!(
            err.contains("not-mounted") && err.contains("does not exist"),
            "{err}"
        );
    }
}
