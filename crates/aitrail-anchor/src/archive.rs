//! The archive: where old log entries are moved, as one segment object per log and day
//! (`default/2026-03-01.seg.gz`), kept write-once until their expiry date and deletable after.
//!
//! - [`DirArchive`] (`dir:PATH`): files written once, as [`crate::dir`] writes notes (a
//!   temporary file, fsync'd, hard-linked to its name, so a key is never half-written and
//!   never replaced). A directory has no lock: `retain_until` is not enforced there, and
//!   `delete` removes a segment whenever it is asked to.
//! - [`S3Archive`] (`s3://BUCKET/PREFIX`): objects under S3 Object Lock in COMPLIANCE mode
//!   until `retain_until`, checked after the write as [`crate::s3`] does for notes; the store
//!   itself refuses to delete a version before then ([`AnchorError::Locked`]). S3 cannot lock
//!   into the past, so `put` refuses a `retain_until` that is already past.
//!
//! What goes into a segment, and when it is due for deletion, is decided above [`Archive`]:
//! archives only store.

use crate::dir::{existing_dir, sync_dir, write_once};
use crate::error::{io, AnchorError, Result};
use crate::s3::{S3Bucket, S3Settings};
use crate::spec::AnchorSpec;
use aws_sdk_s3::error::ProvideErrorMetadata;
use std::path::{Path, PathBuf};

/// Where archive segments are kept: `dir:PATH` or `s3://BUCKET/PREFIX`.
pub trait Archive: Send + Sync {
    /// How reports name this archive: the spec it was opened from.
    fn name(&self) -> &str;

    /// Writes `bytes` under `key` once. Where the store can lock (S3: Object Lock COMPLIANCE),
    /// the object is locked until `retain_until`, and the lock is checked after the write as
    /// s3.rs does for notes. The same bytes again: Ok, nothing written. Other bytes under the
    /// key: [`AnchorError::Conflict`]. Returns the object's location (path, or
    /// `s3://bucket/key?versionId=..`).
    fn put(&self, key: &str, bytes: &[u8], retain_until: time::OffsetDateTime) -> Result<String>;

    /// The object's bytes (latest version), or None when there is no such object.
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>>;

    /// Deletes the object, every version of it on S3. Ok(true) when something was deleted,
    /// Ok(false) when there was nothing; [`AnchorError::Locked`] when the store refuses because
    /// a lock still holds.
    fn delete(&self, key: &str) -> Result<bool>;
}

/// Keys are relative paths of plain segments, `LOG/FILE`: the same key names a file under a
/// directory and an object under a prefix, and cannot reach outside either.
fn check_key(key: &str) -> Result<()> {
    let bad = |reason| {
        Err(AnchorError::ArchiveKey {
            key: key.to_owned(),
            reason,
        })
    };
    if key.is_empty() {
        return bad("empty");
    }
    if key.starts_with('/') {
        return bad("starts with '/'");
    }
    if key.contains('\\') {
        return bad("contains a backslash");
    }
    if key.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    for segment in key.split('/') {
        match segment {
            "" => return bad("has an empty segment ('//' or a trailing '/')"),
            "." | ".." => return bad("has a '.' or '..' segment"),
            _ => {}
        }
    }
    Ok(())
}

// ----- dir: ---------------------------------------------------------------------------------

/// A directory archive. The directory must exist (a missing mount point is an error). It has
/// no lock: `retain_until` is not enforced, anyone with write access can delete a segment.
#[derive(Debug)]
pub struct DirArchive {
    name: String,
    root: PathBuf,
}

impl DirArchive {
    pub fn new(root: &Path) -> DirArchive {
        DirArchive {
            name: format!("dir:{}", root.display()),
            root: root.to_owned(),
        }
    }

    fn path(&self, key: &str) -> Result<PathBuf> {
        existing_dir(&self.root, "archive")?;
        check_key(key)?;
        Ok(self.root.join(key))
    }
}

impl Archive for DirArchive {
    fn name(&self) -> &str {
        &self.name
    }

    /// Writes the file once, read-only; `retain_until` is not enforced (a directory has no
    /// lock).
    fn put(&self, key: &str, bytes: &[u8], _retain_until: time::OffsetDateTime) -> Result<String> {
        let path = self.path(key)?;
        write_once(&path, bytes, crate::dir::PRIVATE)?;
        Ok(path.display().to_string())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        let path = self.path(key)?;
        match std::fs::read(&path) {
            Ok(bytes) => Ok(Some(bytes)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io("reading", &path)(e)),
        }
    }

    /// Removes the file and fsyncs its directory, whatever its `retain_until` was.
    fn delete(&self, key: &str) -> Result<bool> {
        let path = self.path(key)?;
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io("deleting", &path)(e)),
        }
        if let Some(parent) = path.parent() {
            sync_dir(parent)?;
        }
        Ok(true)
    }
}

// ----- s3:// --------------------------------------------------------------------------------

/// An archive in an S3 bucket with Object Lock (endpoint and credentials as for
/// [`crate::s3`]).
#[derive(Debug)]
pub struct S3Archive {
    bucket: S3Bucket,
}

impl S3Archive {
    /// An archive on `bucket`, keeping segments under `prefix` (may be empty). Nothing is
    /// sent until the first call; `put` refuses a bucket without Object Lock.
    pub fn new(bucket: &str, prefix: &str, settings: S3Settings) -> Result<S3Archive> {
        Ok(S3Archive {
            bucket: S3Bucket::new(bucket, prefix, settings)?,
        })
    }

    async fn put_async(
        &self,
        key: &str,
        bytes: &[u8],
        retain_until: time::OffsetDateTime,
    ) -> Result<String> {
        check_key(key)?;
        if retain_until <= time::OffsetDateTime::now_utc() {
            // S3 refuses a lock into the past (SeaweedFS: InvalidRequest), unhelpfully.
            return Err(AnchorError::Config(format!(
                "archiving {key} in {}: retain-until {} is already past; S3 Object Lock only locks until a future date",
                self.bucket.name,
                rfc3339(retain_until.unix_timestamp())
            )));
        }
        self.bucket.ensure_locked().await?;
        let key = self.bucket.key(key);
        let (location, _created) = self
            .bucket
            .write_once_locked(&key, bytes, "application/octet-stream", retain_until)
            .await?;
        Ok(location)
    }

    async fn get_async(&self, key: &str) -> Result<Option<Vec<u8>>> {
        check_key(key)?;
        let read = self.bucket.read(&self.bucket.key(key), None).await?;
        Ok(read.map(|(bytes, _version)| bytes))
    }

    async fn delete_async(&self, key: &str) -> Result<bool> {
        check_key(key)?;
        let key = self.bucket.key(key);
        // The listing is by prefix: `key` also starts `key.bak`, which is not ours.
        let (markers, mut versions): (Vec<_>, Vec<_>) = self
            .bucket
            .versions(&key)
            .await?
            .into_iter()
            .filter(|v| v.key == key)
            .partition(|v| v.delete_marker);
        // Oldest first: the version `put` wrote is the oldest and the locked one, so when
        // the store refuses it, any version written over it is left as it was.
        versions.reverse();
        for v in &versions {
            self.delete_version(&key, v.version.as_deref()).await?;
        }
        for m in &markers {
            self.delete_version(&key, m.version.as_deref()).await?;
        }
        Ok(!versions.is_empty())
    }

    /// Deletes one version (or delete marker) by its id; a refusal on a version whose
    /// retention has not ended is [`AnchorError::Locked`].
    async fn delete_version(&self, key: &str, version: Option<&str>) -> Result<()> {
        let client = self.bucket.client();
        let deleted = client
            .delete_object()
            .bucket(self.bucket.bucket())
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await;
        let e = match deleted {
            Ok(_) => return Ok(()),
            Err(e) if matches!(e.code(), Some("AccessDenied") | Some("InvalidRequest")) => e,
            Err(e) => return Err(self.bucket.failed("DeleteObject")(e)),
        };
        // Refused: a lock when the version is retained until later than now, otherwise
        // something else (a missing permission, say) and reported as it is.
        let retention = client
            .get_object_retention()
            .bucket(self.bucket.bucket())
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await;
        let until = retention.ok().and_then(|r| {
            let r = r.retention()?;
            Some((r.mode()?.as_str().to_owned(), r.retain_until_date()?.secs()))
        });
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        match until {
            Some((mode, secs)) if secs >= now => Err(AnchorError::Locked {
                location: self.bucket.location(key, version),
                detail: format!(
                    "{mode} retention until {} (Unix time {secs}); the store said {}: {}",
                    rfc3339(secs),
                    e.code().unwrap_or("?"),
                    e.message().unwrap_or("")
                ),
            }),
            _ => Err(self.bucket.failed("DeleteObject")(e)),
        }
    }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| unix.to_string())
}

impl Archive for S3Archive {
    fn name(&self) -> &str {
        &self.bucket.name
    }

    fn put(&self, key: &str, bytes: &[u8], retain_until: time::OffsetDateTime) -> Result<String> {
        self.bucket
            .block_on(self.put_async(key, bytes, retain_until))
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>> {
        self.bucket.block_on(self.get_async(key))
    }

    fn delete(&self, key: &str) -> Result<bool> {
        self.bucket.block_on(self.delete_async(key))
    }
}

// ----- opening ------------------------------------------------------------------------------

fn not_an_archive(spec: &str) -> AnchorError {
    AnchorError::Spec {
        spec: spec.to_owned(),
        reason: "an archive is dir:PATH or s3://BUCKET/PREFIX".into(),
    }
}

/// `dir:PATH` or `s3://BUCKET/PREFIX`, by the rules of [`AnchorSpec`].
fn archive_spec(spec: &str) -> Result<AnchorSpec> {
    if !spec.starts_with("dir:") && !spec.starts_with("s3://") {
        return Err(not_an_archive(spec));
    }
    spec.parse()
}

/// Parses and opens `dir:PATH` or `s3://BUCKET/PREFIX` (S3 settings from the environment,
/// see [`crate::s3`]). Nothing is read or written yet.
pub fn open_archive(spec: &str) -> Result<Box<dyn Archive>> {
    Ok(match archive_spec(spec)? {
        AnchorSpec::Dir(path) => Box::new(DirArchive::new(&path)),
        AnchorSpec::S3 { bucket, prefix } => {
            Box::new(S3Archive::new(&bucket, &prefix, S3Settings::from_env()?)?)
        }
        AnchorSpec::Tsa { .. } => return Err(not_an_archive(spec)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_specs_are_dir_or_s3() {
        assert_eq!(
            archive_spec("dir:/mnt/cold").unwrap(),
            AnchorSpec::Dir("/mnt/cold".into())
        );
        assert_eq!(
            archive_spec("s3://audit-archive/aitrail/prod/").unwrap(),
            AnchorSpec::S3 {
                bucket: "audit-archive".into(),
                prefix: "aitrail/prod".into()
            }
        );
        assert_eq!(
            open_archive("dir:/mnt/cold").unwrap().name(),
            "dir:/mnt/cold"
        );
        for (bad, says) in [
            (
                "tsa:http://127.0.0.1:8318/tsr",
                "an archive is dir:PATH or s3://BUCKET/PREFIX",
            ),
            ("file:/x", "an archive is dir:PATH or s3://BUCKET/PREFIX"),
            ("/x", "an archive is dir:PATH or s3://BUCKET/PREFIX"),
            ("", "an archive is dir:PATH or s3://BUCKET/PREFIX"),
            ("dir:", "expected dir:PATH"),
            ("s3://Upper", "bucket name"),
            ("s3://bucket/../x", ". or .."),
        ] {
            let err = open_archive(bad).err().expect(bad).to_string();
            assert!(
                err.contains(&format!("{bad:?}")) && err.contains(says),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn keys_are_plain_relative_paths() {
        for good in ["default/2026-03-01.seg.gz", "a", "log.v2/x.y/z"] {
            check_key(good).unwrap();
        }
        for (bad, says) in [
            ("", "empty"),
            ("/etc/passwd", "starts with '/'"),
            ("a\\b", "backslash"),
            ("a//b", "empty segment"),
            ("a/", "empty segment"),
            ("./a", "'.' or '..'"),
            ("a/../../b", "'.' or '..'"),
            ("..", "'.' or '..'"),
            ("a\nb", "control"),
        ] {
            let err = check_key(bad).unwrap_err();
            assert!(matches!(err, AnchorError::ArchiveKey { .. }), "{bad:?}");
            let text = err.to_string();
            assert!(
                text.contains(&format!("{bad:?}")) && text.contains(says),
                "{bad:?}: {text}"
            );
        }
    }
}
