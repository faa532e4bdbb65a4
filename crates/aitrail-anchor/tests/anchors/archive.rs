//! The archive of old segments against a directory and SeaweedFS with Object Lock: the
//! scenarios every archive must pass, each a function of `&dyn Archive` run by every backend's
//! `*_passes_the_suite` test, then what only one backend does, in its section.
//! Each scenario uses keys of its own, so one archive instance can run them all.

use crate::servers::{runtime, unique, Seaweed};
use aitrail_anchor::archive::{Archive, DirArchive, S3Archive};
use aitrail_anchor::AnchorError;
use std::time::Duration;
use time::OffsetDateTime;

/// A key no other scenario or test uses: `LOG/2026-03-01.seg.gz`.
fn key(scenario: &str) -> String {
    format!("{scenario}-{}/2026-03-01.seg.gz", unique())
}

fn tomorrow() -> OffsetDateTime {
    OffsetDateTime::now_utc() + time::Duration::days(1)
}

/// Runs every scenario against `archive`.
pub fn run_all(archive: &dyn Archive) {
    put_then_get_returns_the_bytes(archive);
    the_same_bytes_again_write_nothing(archive);
    other_bytes_under_a_key_are_refused(archive);
    a_missing_key_is_none(archive);
    bad_keys_are_refused(archive);
}

pub fn put_then_get_returns_the_bytes(archive: &dyn Archive) {
    let k = key("put");
    let bytes: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    let location = archive.put(&k, &bytes, tomorrow()).unwrap();
    assert!(location.contains(&k), "{}: {location}", archive.name());
    assert_eq!(archive.get(&k).unwrap().as_deref(), Some(&bytes[..]));
}

pub fn the_same_bytes_again_write_nothing(archive: &dyn Archive) {
    let k = key("again");
    let first = archive.put(&k, b"segment", tomorrow()).unwrap();
    let second = archive.put(&k, b"segment", tomorrow()).unwrap();
    assert_eq!(
        second,
        first,
        "{}: a second put wrote again",
        archive.name()
    );
    assert_eq!(archive.get(&k).unwrap().as_deref(), Some(&b"segment"[..]));
}

pub fn other_bytes_under_a_key_are_refused(archive: &dyn Archive) {
    let k = key("conflict");
    let location = archive.put(&k, b"segment", tomorrow()).unwrap();
    let err = archive.put(&k, b"another segment", tomorrow()).unwrap_err();
    match &err {
        AnchorError::Conflict { location: at, .. } => assert_eq!(at, &location),
        _ => panic!("{}: {err}", archive.name()),
    }
    assert_eq!(archive.get(&k).unwrap().as_deref(), Some(&b"segment"[..]));
}

pub fn a_missing_key_is_none(archive: &dyn Archive) {
    let k = key("missing");
    assert_eq!(archive.get(&k).unwrap(), None, "{}", archive.name());
    assert!(!archive.delete(&k).unwrap(), "{}", archive.name());
}

pub fn bad_keys_are_refused(archive: &dyn Archive) {
    for bad in [
        "",
        "/abs/x.seg.gz",
        "../x.seg.gz",
        "a/./b",
        "a//b",
        "a/",
        "a\\b",
    ] {
        let refused = |r: Result<(), AnchorError>, what: &str| match r {
            Err(AnchorError::ArchiveKey { key, .. }) => assert_eq!(key, bad),
            other => panic!("{}: {what} {bad:?}: {other:?}", archive.name()),
        };
        refused(archive.put(bad, b"x", tomorrow()).map(drop), "put");
        refused(archive.get(bad).map(drop), "get");
        refused(archive.delete(bad).map(drop), "delete");
    }
}

// ----- dir: ---------------------------------------------------------------------------------

#[test]
fn dir_archive_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    run_all(&DirArchive::new(dir.path()));
}

#[test]
fn dir_archive_keeps_read_only_files_and_deletes_them_when_asked() {
    let dir = tempfile::tempdir().unwrap();
    let archive = DirArchive::new(dir.path());
    assert_eq!(archive.name(), format!("dir:{}", dir.path().display()));
    let k = "default/2026-03-01.seg.gz";
    // A directory has no lock: a retain-until date far ahead does not keep the file.
    let location = archive.put(k, b"segment", tomorrow()).unwrap();
    let path = dir.path().join(k);
    assert_eq!(location, path.display().to_string());
    assert_eq!(std::fs::read(&path).unwrap(), b"segment");
    assert!(std::fs::metadata(&path).unwrap().permissions().readonly());
    let names: Vec<_> = std::fs::read_dir(dir.path().join("default"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["2026-03-01.seg.gz"], "no temporary file is left");

    assert!(archive.delete(k).unwrap());
    assert!(!path.exists());
    assert_eq!(archive.get(k).unwrap(), None);
    assert!(!archive.delete(k).unwrap());
    // Deleted, the key can be written again.
    archive.put(k, b"segment again", tomorrow()).unwrap();
    assert_eq!(
        archive.get(k).unwrap().as_deref(),
        Some(&b"segment again"[..])
    );
}

#[test]
fn dir_archive_needs_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let archive = DirArchive::new(&dir.path().join("not-mounted"));
    let err = archive
        .put("default/2026-03-01.seg.gz", b"x", tomorrow())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("archive directory") && err.contains("not-mounted"),
        "{err}"
    );
}

// ----- s3:// (SeaweedFS) --------------------------------------------------------------------

const PREFIX: &str = "aitrail/archive";

fn s3_archive(server: &Seaweed, bucket: &str) -> S3Archive {
    S3Archive::new(bucket, PREFIX, server.settings()).unwrap()
}

/// The versions and delete markers the bucket holds under exactly `key`.
fn versions_of(server: &Seaweed, bucket: &str, key: &str) -> usize {
    let out = runtime()
        .block_on(
            server
                .client()
                .list_object_versions()
                .bucket(bucket)
                .prefix(key)
                .send(),
        )
        .unwrap();
    let versions = out.versions().iter().filter(|v| v.key() == Some(key));
    let markers = out.delete_markers().iter().filter(|m| m.key() == Some(key));
    versions.count() + markers.count()
}

#[test]
fn s3_archive_passes_the_suite() {
    let Some(server) = Seaweed::get() else { return };
    let bucket = server.bucket(true);
    run_all(&s3_archive(server, &bucket));
}

#[test]
fn s3_archive_segment_is_locked_until_it_expires_then_deleted_with_every_version() {
    let Some(server) = Seaweed::get() else { return };
    let bucket = server.bucket(true);
    let archive = s3_archive(server, &bucket);
    assert_eq!(archive.name(), format!("s3://{bucket}/{PREFIX}"));
    let k = "default/2026-03-01.seg.gz";
    let full = format!("{PREFIX}/{k}");
    let until = OffsetDateTime::now_utc() + time::Duration::seconds(3);
    let location = archive.put(k, b"segment", until).unwrap();
    let version = location
        .strip_prefix(&format!("s3://{bucket}/{full}?versionId="))
        .unwrap_or_else(|| panic!("{location}"))
        .to_owned();
    // A neighbour whose name starts with the key's, locked as long: not touched by delete.
    let neighbour = format!("{k}.bak");
    archive.put(&neighbour, b"neighbour", until).unwrap();

    // Locked in COMPLIANCE mode until `until` (to the second).
    let client = server.client();
    let rt = runtime();
    let retention = rt
        .block_on(
            client
                .get_object_retention()
                .bucket(&bucket)
                .key(&full)
                .version_id(&version)
                .send(),
        )
        .unwrap();
    let retention = retention.retention().unwrap();
    assert_eq!(
        retention.mode(),
        Some(&aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
    );
    assert_eq!(
        retention.retain_until_date().unwrap().secs(),
        until.unix_timestamp()
    );

    // A lock into the past is refused before anything is sent.
    let past = OffsetDateTime::now_utc() - time::Duration::seconds(60);
    let err = archive
        .put("default/2026-02-01.seg.gz", b"x", past)
        .unwrap_err();
    assert!(
        matches!(err, AnchorError::Config(_)) && err.to_string().contains("already past"),
        "{err}"
    );

    // Before then the store refuses, and the segment is still there.
    let err = archive.delete(k).unwrap_err();
    match &err {
        AnchorError::Locked {
            location: at,
            detail,
        } => {
            assert_eq!(at, &location);
            // SeaweedFS 4.48 answers 403 AccessDenied, as AWS does for a COMPLIANCE lock.
            assert!(
                detail.contains("COMPLIANCE") && detail.contains("AccessDenied"),
                "{detail}"
            );
        }
        _ => panic!("{err}"),
    }
    assert_eq!(archive.get(k).unwrap().as_deref(), Some(&b"segment"[..]));

    // Someone writes over it and deletes it without a version: a newer version and a
    // delete marker, both of which delete must remove too.
    rt.block_on(
        client
            .put_object()
            .bucket(&bucket)
            .key(&full)
            .body(b"forged".to_vec().into())
            .send(),
    )
    .unwrap();
    rt.block_on(client.delete_object().bucket(&bucket).key(&full).send())
        .unwrap();
    assert_eq!(
        archive.get(k).unwrap(),
        None,
        "the latest is a delete marker"
    );
    assert_eq!(versions_of(server, &bucket, &full), 3);

    // Past the retain-until date: every version goes.
    let wait = until - OffsetDateTime::now_utc() + time::Duration::milliseconds(1100);
    std::thread::sleep(Duration::try_from(wait).unwrap_or_default());
    assert!(archive.delete(k).unwrap());
    assert_eq!(versions_of(server, &bucket, &full), 0);
    assert_eq!(archive.get(k).unwrap(), None);
    assert!(!archive.delete(k).unwrap());
    assert_eq!(
        archive.get(&neighbour).unwrap().as_deref(),
        Some(&b"neighbour"[..])
    );
}

#[test]
fn s3_archive_refuses_a_bucket_without_object_lock() {
    let Some(server) = Seaweed::get() else { return };
    let bucket = server.bucket(false);
    let err = s3_archive(server, &bucket)
        .put("default/2026-03-01.seg.gz", b"segment", tomorrow())
        .unwrap_err();
    assert!(matches!(err, AnchorError::NotLocked { .. }), "{err}");
}
