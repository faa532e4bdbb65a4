//! Anchors against real storage: a directory, SeaweedFS with Object Lock, and an RFC 3161 TSA
//! made with `openssl ts -reply`, the servers started on 127.0.0.1 by the tests (see
//! `../support/servers.rs`).
//!
//! Where a new test belongs: behaviour every anchor must have is a scenario in `suite.rs`
//! (and runs for every backend through `run_all`); what only one backend does goes below,
//! in its section; timestamp-token verification (fixtures, chains, key usage) in `tokens.rs`;
//! the archive of old segments (`dir:` and `s3://`, its scenarios and its backends) in
//! `archive.rs`.

mod archive;
#[path = "../support/servers.rs"]
mod servers;
mod suite;
mod tokens;

use aitrail_anchor::dir::DirAnchor;
use aitrail_anchor::s3::S3Anchor;
use aitrail_anchor::tsa::TsaAnchor;
use aitrail_anchor::{Anchor, AnchorError, Retention, TokenError};
use aws_sdk_s3::error::ProvideErrorMetadata;
use servers::{runtime, Seaweed, Tsa};

// ----- dir: ---------------------------------------------------------------------------------

#[test]
fn dir_anchor_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite::run_all(&DirAnchor::new(dir.path()));
}

#[test]
fn dir_anchor_keeps_one_read_only_file_per_checkpoint() {
    let dir = tempfile::tempdir().unwrap();
    let anchor = DirAnchor::new(dir.path());
    let note = suite::note(&suite::signer(1), 12);
    let receipt = anchor.put("default", &note).unwrap();
    let expected = dir
        .path()
        .join(aitrail_anchor::object_name("default", &note).unwrap());
    assert_eq!(receipt.location, expected.display().to_string());
    assert_eq!(std::fs::read_to_string(&expected).unwrap(), note);
    assert!(std::fs::metadata(&expected)
        .unwrap()
        .permissions()
        .readonly());
}

// ----- s3:// (SeaweedFS) --------------------------------------------------------------------

fn s3_anchor(server: &Seaweed, bucket: &str, retention: Retention) -> S3Anchor {
    S3Anchor::new(bucket, "aitrail/test", retention, server.settings()).unwrap()
}

#[test]
fn s3_anchor_passes_the_suite() {
    let Some(server) = Seaweed::get() else { return };
    let bucket = server.bucket(true);
    suite::run_all(&s3_anchor(server, &bucket, Retention::Days(1)));
}

#[test]
fn s3_anchored_object_cannot_be_deleted_or_overwritten() {
    let Some(server) = Seaweed::get() else { return };
    let bucket = server.bucket(true);
    let anchor = s3_anchor(server, &bucket, Retention::default());
    let note = suite::note(&suite::signer(1), 42);
    let started = time::OffsetDateTime::now_utc();
    let receipt = anchor.put("default", &note).unwrap();
    let key = format!(
        "aitrail/test/{}",
        aitrail_anchor::object_name("default", &note).unwrap()
    );
    let version = receipt
        .location
        .split_once("?versionId=")
        .map(|(_, v)| v.to_owned())
        .expect("the receipt names the object version");
    assert_eq!(
        receipt.location,
        format!("s3://{bucket}/{key}?versionId={version}")
    );
    let client = server.client();
    let rt = runtime();

    // Locked in COMPLIANCE mode for six calendar years.
    let retention = rt
        .block_on(
            client
                .get_object_retention()
                .bucket(&bucket)
                .key(&key)
                .version_id(&version)
                .send(),
        )
        .unwrap();
    let retention = retention.retention().unwrap();
    assert_eq!(
        retention.mode(),
        Some(&aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
    );
    let until = retention.retain_until_date().unwrap().secs();
    let six_years = Retention::Years(6).after(started).unwrap().unix_timestamp();
    assert!(
        (six_years - 5..=six_years + 60).contains(&until),
        "retained until {until}, expected about {six_years}"
    );

    // The locked version cannot be deleted, even bypassing governance, nor its lock shortened.
    let refused = |what: &str, code: Option<&str>| {
        assert!(
            matches!(code, Some("AccessDenied")),
            "{what} was not refused: {code:?}"
        )
    };
    let e = rt
        .block_on(
            client
                .delete_object()
                .bucket(&bucket)
                .key(&key)
                .version_id(&version)
                .send(),
        )
        .unwrap_err();
    refused("deleting the version", e.code());
    let e = rt
        .block_on(
            client
                .delete_object()
                .bucket(&bucket)
                .key(&key)
                .version_id(&version)
                .bypass_governance_retention(true)
                .send(),
        )
        .unwrap_err();
    refused("deleting the version bypassing governance", e.code());
    let e = rt
        .block_on(
            client
                .put_object_retention()
                .bucket(&bucket)
                .key(&key)
                .version_id(&version)
                .retention(
                    aws_sdk_s3::types::ObjectLockRetention::builder()
                        .mode(aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
                        .retain_until_date(aws_sdk_s3::primitives::DateTime::from_secs(
                            started.unix_timestamp() + 60,
                        ))
                        .build(),
                )
                .send(),
        )
        .unwrap_err();
    refused("shortening the retention", e.code());

    // A conditional overwrite is refused; a plain one only adds a version, a delete only a
    // marker: the anchored version is still there, byte for byte.
    let e = rt
        .block_on(
            client
                .put_object()
                .bucket(&bucket)
                .key(&key)
                .if_none_match("*")
                .body(b"forged".to_vec().into())
                .send(),
        )
        .unwrap_err();
    assert_eq!(e.code(), Some("PreconditionFailed"), "{e:?}");
    rt.block_on(
        client
            .put_object()
            .bucket(&bucket)
            .key(&key)
            .body(b"forged".to_vec().into())
            .send(),
    )
    .unwrap();
    rt.block_on(client.delete_object().bucket(&bucket).key(&key).send())
        .unwrap();
    let kept = rt
        .block_on(
            client
                .get_object()
                .bucket(&bucket)
                .key(&key)
                .version_id(&version)
                .send(),
        )
        .unwrap();
    let kept = rt.block_on(kept.body.collect()).unwrap().into_bytes();
    assert_eq!(kept.as_ref(), note.as_bytes());

    // The anchor reads every version: the anchored note, and the forgery beside it (which
    // verification will reject as a note the log's key never signed).
    let listed = anchor.list("default").unwrap();
    let notes: Vec<&str> = listed.iter().map(|a| a.note.as_str()).collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(notes.contains(&note.as_str()) && notes.contains(&"forged"));
    assert!(listed.iter().any(|a| a.location == receipt.location));
}

#[test]
fn s3_bucket_without_object_lock_is_refused() {
    let Some(server) = Seaweed::get() else { return };
    let bucket = server.bucket(false);
    let err = s3_anchor(server, &bucket, Retention::Days(1))
        .put("default", &suite::note(&suite::signer(1), 1))
        .unwrap_err();
    assert!(matches!(err, AnchorError::NotLocked { .. }), "{err}");
    assert!(err.to_string().contains(&bucket), "{err}");
}

#[test]
fn s3_unreachable_endpoint_is_named() {
    // A port nothing listens on; no server needed.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let settings = aitrail_anchor::s3::S3Settings {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        region: "us-east-1".into(),
        access_key_id: "nobody".into(),
        secret_access_key: "not-a-secret".into(),
        session_token: None,
    };
    assert!(!format!("{settings:?}").contains("not-a-secret"));
    let anchor = S3Anchor::new("some-bucket", "", Retention::Days(1), settings).unwrap();
    let err = anchor.list("default").unwrap_err().to_string();
    assert!(
        err.contains("s3://some-bucket") && err.contains("ListObjectVersions"),
        "{err}"
    );
    let err = anchor
        .put("default", &suite::note(&suite::signer(1), 1))
        .unwrap_err()
        .to_string();
    assert!(err.contains("GetObjectLockConfiguration"), "{err}");
}

// ----- tsa: (openssl ts -reply behind tsa_server.py) -----------------------------------------

fn tsa_anchor(server: &Tsa, path: &str, tokens: &std::path::Path) -> TsaAnchor {
    TsaAnchor::new(&format!("{}/{path}", server.base), &server.ca(), tokens).unwrap()
}

#[test]
fn tsa_anchor_passes_the_suite() {
    let Some(server) = Tsa::get() else { return };
    let tokens = tempfile::tempdir().unwrap();
    suite::run_all(&tsa_anchor(server, "tsr", tokens.path()));
}

#[test]
fn tsa_tokens_name_the_tsa_and_time_and_are_checked_when_read_back() {
    let Some(server) = Tsa::get() else { return };
    let tokens = tempfile::tempdir().unwrap();
    let anchor = tsa_anchor(server, "tsr", tokens.path());
    let note = suite::note(&suite::signer(1), 8);
    let before = time::OffsetDateTime::now_utc().unix_timestamp();
    let receipt = anchor.put("default", &note).unwrap();
    let ts = receipt.timestamp.clone().unwrap();
    assert_eq!(ts.tsa, "CN=aitrail test tsa,O=aitrail test");
    assert_eq!(ts.policy, "1.2.3.4.1");
    let at =
        time::OffsetDateTime::parse(&ts.gen_time, &time::format_description::well_known::Rfc3339)
            .unwrap()
            .unix_timestamp();
    assert!((before - 2..=before + 60).contains(&at), "{ts:?}");
    assert!(receipt.location.ends_with(".tst"));

    // Someone edits the kept note (or the token): the anchor reports it as a fault.
    let note_path = std::path::Path::new(&receipt.location).with_extension("note");
    std::fs::write(&note_path, note.replace("\n8\n", "\n9\n")).unwrap();
    let listed = anchor.list("default").unwrap();
    let fault = listed[0].fault.clone().unwrap();
    assert!(fault.contains("message imprint"), "{fault}");
    std::fs::remove_file(&note_path).unwrap();
    let fault = anchor.list("default").unwrap()[0].fault.clone().unwrap();
    assert!(fault.contains("cannot be read"), "{fault}");
}

#[test]
fn tsa_reply_for_other_data_is_refused() {
    let Some(server) = Tsa::get() else { return };
    let tokens = tempfile::tempdir().unwrap();
    let err = tsa_anchor(server, "other", tokens.path())
        .put("default", &suite::note(&suite::signer(1), 1))
        .unwrap_err();
    assert!(
        matches!(err, AnchorError::Token(TokenError::Imprint { .. })),
        "{err}"
    );
}

#[test]
fn tsa_refusal_is_reported_with_its_status() {
    let Some(server) = Tsa::get() else { return };
    let tokens = tempfile::tempdir().unwrap();
    let err = tsa_anchor(server, "reject", tokens.path())
        .put("default", &suite::note(&suite::signer(1), 1))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("Rejection") && err.contains("policy says no") && err.contains("/reject"),
        "{err}"
    );
}

#[test]
fn tsa_under_another_ca_is_refused() {
    let Some(server) = Tsa::get() else { return };
    let tokens = tempfile::tempdir().unwrap();
    let other_ca =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/rfc3161/ts_chain.pem");
    let anchor = TsaAnchor::new(&server.url(), &other_ca, tokens.path()).unwrap();
    let err = anchor
        .put("default", &suite::note(&suite::signer(1), 1))
        .unwrap_err();
    assert!(
        matches!(err, AnchorError::Token(TokenError::Chain(_))),
        "{err}"
    );
}
