//! `s3://BUCKET/PREFIX`: checkpoints kept as objects under S3 Object Lock in COMPLIANCE mode.
//!
//! In COMPLIANCE mode no one, including the account's root user, can delete an object version
//! or shorten its retention before the retain-until date. aitrail writes each note once
//! (`If-None-Match: *`), with its own retention (default six years), checks that the store
//! applied it, and refuses buckets without Object Lock.
//!
//! An S3 "overwrite" of a versioned key only adds a newer version, and a delete only adds a
//! delete marker; the locked version stays. So `list` reads every version of every key, and
//! anything written over or beside an anchored note is read too and checked like the rest.
//!
//! [`S3Bucket`] (client, Object Lock check, write-once-and-lock, version listing) is shared
//! with the archive of old segments ([`crate::archive::S3Archive`]).
//!
//! Endpoint and credentials come from the standard environment: `AWS_ENDPOINT_URL` (or
//! `AWS_ENDPOINT_URL_S3`; path-style addressing is used with a custom endpoint, as local
//! S3-compatible servers need), `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//! `AWS_SESSION_TOKEN`, `AWS_REGION` (or `AWS_DEFAULT_REGION`; default `us-east-1`).

use crate::error::{AnchorError, Result};
use crate::net::Io;
use crate::spec::Retention;
use crate::{object_name, Anchor, Anchored, Receipt};
use aws_sdk_s3::error::{DisplayErrorContext, ProvideErrorMetadata};
use aws_sdk_s3::primitives::{ByteStream, DateTime};
use aws_sdk_s3::types::{ObjectLockEnabled, ObjectLockMode};
use aws_sdk_s3::Client;
use std::sync::OnceLock;
use std::time::Duration;

/// Where and how to reach the S3 service.
#[derive(Clone)]
pub struct S3Settings {
    pub endpoint: Option<String>,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
}

impl std::fmt::Debug for S3Settings {
    // Never print the secret key or the session token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Settings")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

impl S3Settings {
    /// Reads the standard `AWS_*` variables; names the one missing.
    pub fn from_env() -> Result<S3Settings> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let need = |name: &str| {
            var(name).ok_or_else(|| {
                AnchorError::Config(format!(
                    "an s3:// anchor or archive needs {name} in the environment (with AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, and AWS_ENDPOINT_URL for a non-AWS server)"
                ))
            })
        };
        Ok(S3Settings {
            endpoint: var("AWS_ENDPOINT_URL_S3").or_else(|| var("AWS_ENDPOINT_URL")),
            region: var("AWS_REGION")
                .or_else(|| var("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            access_key_id: need("AWS_ACCESS_KEY_ID")?,
            secret_access_key: need("AWS_SECRET_ACCESS_KEY")?,
            session_token: var("AWS_SESSION_TOKEN"),
        })
    }
}

/// A bucket and the prefix under it, reached with one client: what the S3 anchor and the S3
/// archive ([`crate::archive::S3Archive`]) share. Keys handed to it are relative to the prefix.
#[derive(Debug)]
pub(crate) struct S3Bucket {
    /// `s3://BUCKET` or `s3://BUCKET/PREFIX`, as the spec prints.
    pub(crate) name: String,
    bucket: String,
    prefix: String,
    client: Client,
    io: Io,
    /// Set once the bucket's Object Lock was seen enabled.
    locked: OnceLock<()>,
}

/// One version of an object, or a delete marker, as ListObjectVersions returns it.
#[derive(Debug)]
pub(crate) struct ObjectVersion {
    /// The full key (prefix included).
    pub(crate) key: String,
    pub(crate) version: Option<String>,
    pub(crate) delete_marker: bool,
}

impl S3Bucket {
    /// A client for `bucket` (nothing is sent yet); `prefix` may be empty.
    pub(crate) fn new(bucket: &str, prefix: &str, settings: S3Settings) -> Result<S3Bucket> {
        let prefix = prefix.trim_matches('/').to_owned();
        let credentials = aws_sdk_s3::config::Credentials::new(
            settings.access_key_id,
            settings.secret_access_key,
            settings.session_token,
            None,
            "aitrail-environment",
        );
        let timeouts = aws_sdk_s3::config::timeout::TimeoutConfig::builder()
            .connect_timeout(Duration::from_secs(10))
            .operation_timeout(Duration::from_secs(120))
            .build();
        let mut config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new(settings.region))
            .credentials_provider(credentials)
            .timeout_config(timeouts)
            .force_path_style(settings.endpoint.is_some());
        if let Some(endpoint) = settings.endpoint {
            config = config.endpoint_url(endpoint);
        }
        Ok(S3Bucket {
            name: if prefix.is_empty() {
                format!("s3://{bucket}")
            } else {
                format!("s3://{bucket}/{prefix}")
            },
            bucket: bucket.to_owned(),
            prefix,
            client: Client::from_conf(config.build()),
            io: Io::new().map_err(|e| AnchorError::Config(format!("starting I/O: {e}")))?,
            locked: OnceLock::new(),
        })
    }

    /// Runs `f` on the bucket's own runtime (see [`crate::net`]).
    pub(crate) fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.io.block_on(f)
    }

    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn bucket(&self) -> &str {
        &self.bucket
    }

    /// The full key of `name`, under the prefix.
    pub(crate) fn key(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_owned()
        } else {
            format!("{}/{name}", self.prefix)
        }
    }

    pub(crate) fn location(&self, key: &str, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("s3://{}/{key}?versionId={v}", self.bucket),
            None => format!("s3://{}/{key}", self.bucket),
        }
    }

    pub(crate) fn failed<E>(&self, operation: &'static str) -> impl Fn(E) -> AnchorError + '_
    where
        E: std::error::Error,
    {
        move |e| AnchorError::S3 {
            bucket: self.bucket.clone(),
            operation,
            detail: DisplayErrorContext(&e).to_string(),
        }
    }

    /// Refuses a bucket without Object Lock: its objects could be deleted.
    pub(crate) async fn ensure_locked(&self) -> Result<()> {
        if self.locked.get().is_some() {
            return Ok(());
        }
        let not_locked = |detail: String| AnchorError::NotLocked {
            bucket: self.bucket.clone(),
            detail,
        };
        let out = self
            .client
            .get_object_lock_configuration()
            .bucket(&self.bucket)
            .send()
            .await
            .map_err(|e| match e.code() {
                Some("ObjectLockConfigurationNotFoundError") => {
                    not_locked("the bucket has no Object Lock configuration".into())
                }
                _ => self.failed("GetObjectLockConfiguration")(e),
            })?;
        let enabled = out
            .object_lock_configuration()
            .and_then(|c| c.object_lock_enabled());
        if enabled != Some(&ObjectLockEnabled::Enabled) {
            return Err(not_locked(format!("ObjectLockEnabled is {enabled:?}")));
        }
        let _ = self.locked.set(());
        Ok(())
    }

    /// The latest version of `key`: `Some((bytes, version))`, or `None` when there is none.
    pub(crate) async fn read(
        &self,
        key: &str,
        version: Option<&str>,
    ) -> Result<Option<(Vec<u8>, Option<String>)>> {
        let got = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.map(str::to_owned))
            .send()
            .await;
        let out = match got {
            Ok(out) => out,
            Err(e) if matches!(e.code(), Some("NoSuchKey") | Some("NoSuchVersion")) => {
                return Ok(None)
            }
            Err(e) => return Err(self.failed("GetObject")(e)),
        };
        let version = out.version_id().map(str::to_owned);
        let bytes = out
            .body
            .collect()
            .await
            .map_err(self.failed("reading an object"))?
            .into_bytes()
            .to_vec();
        Ok(Some((bytes, version)))
    }

    /// Writes `bytes` under `key` once, locked in COMPLIANCE mode until `until`, and checks
    /// that the store applied the lock. Returns the location and whether anything was
    /// written: the same bytes already there are `(location, false)`, other bytes
    /// [`AnchorError::Conflict`]. The caller checks [`S3Bucket::ensure_locked`] first.
    pub(crate) async fn write_once_locked(
        &self,
        key: &str,
        bytes: &[u8],
        content_type: &str,
        until: time::OffsetDateTime,
    ) -> Result<(String, bool)> {
        let same_or_conflict = |existing: Vec<u8>, version: Option<String>| {
            let location = self.location(key, version.as_deref());
            if existing == bytes {
                Ok((location, false))
            } else {
                Err(AnchorError::Conflict {
                    location,
                    detail: "the object's content differs".into(),
                })
            }
        };
        if let Some((existing, version)) = self.read(key, None).await? {
            return same_or_conflict(existing, version);
        }
        let put = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(ByteStream::from(bytes.to_vec()))
            .content_type(content_type)
            .object_lock_mode(ObjectLockMode::Compliance)
            .object_lock_retain_until_date(DateTime::from_secs(until.unix_timestamp()))
            .if_none_match("*")
            .send()
            .await;
        let version = match put {
            Ok(out) => out.version_id().map(str::to_owned),
            // Written by someone else in between: theirs stays, compare it.
            Err(e) if e.code() == Some("PreconditionFailed") => {
                return match self.read(key, None).await? {
                    Some((existing, version)) => same_or_conflict(existing, version),
                    None => Err(self.failed("PutObject")(e)),
                };
            }
            Err(e) => return Err(self.failed("PutObject")(e)),
        };
        let location = self.location(key, version.as_deref());
        // Trust, but check: some S3-compatible stores accept and ignore lock headers.
        let retention = self
            .client
            .get_object_retention()
            .bucket(&self.bucket)
            .key(key)
            .set_version_id(version.clone())
            .send()
            .await
            .map_err(|e| AnchorError::LockNotApplied {
                location: location.clone(),
                detail: DisplayErrorContext(&e).to_string(),
            })?;
        let r = retention.retention();
        let mode = r.and_then(|r| r.mode());
        let kept_until = r
            .and_then(|r| r.retain_until_date())
            .map(|d| d.secs())
            .unwrap_or(0);
        if mode != Some(&aws_sdk_s3::types::ObjectLockRetentionMode::Compliance)
            || kept_until < until.unix_timestamp() - 1
        {
            return Err(AnchorError::LockNotApplied {
                location,
                detail: format!(
                    "mode {mode:?}, retained until {kept_until} (Unix time); asked for COMPLIANCE until {}",
                    until.unix_timestamp()
                ),
            });
        }
        Ok((location, true))
    }

    /// Every version and delete marker of every key under `prefix` (a full key, or the
    /// start of keys), in the order S3 lists them: by key, newest first within a key.
    pub(crate) async fn versions(&self, prefix: &str) -> Result<Vec<ObjectVersion>> {
        let mut out = Vec::new();
        let (mut key_marker, mut version_marker) = (None, None);
        loop {
            let page = self
                .client
                .list_object_versions()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.take())
                .set_version_id_marker(version_marker.take())
                .send()
                .await
                .map_err(self.failed("ListObjectVersions"))?;
            let versions = page
                .versions()
                .iter()
                .map(|v| (v.key(), v.version_id(), false));
            let markers = page
                .delete_markers()
                .iter()
                .map(|m| (m.key(), m.version_id(), true));
            for (key, version, delete_marker) in versions.chain(markers) {
                if let Some(key) = key {
                    out.push(ObjectVersion {
                        key: key.to_owned(),
                        version: version.map(str::to_owned),
                        delete_marker,
                    });
                }
            }
            if page.is_truncated() != Some(true) {
                break;
            }
            key_marker = page.next_key_marker().map(str::to_owned);
            version_marker = page.next_version_id_marker().map(str::to_owned);
            if key_marker.is_none() {
                break;
            }
        }
        Ok(out)
    }
}

/// An S3 Object Lock anchor.
#[derive(Debug)]
pub struct S3Anchor {
    bucket: S3Bucket,
    retention: Retention,
}

impl S3Anchor {
    /// An anchor on `bucket`, keeping notes under `prefix` (may be empty).
    pub fn new(
        bucket: &str,
        prefix: &str,
        retention: Retention,
        settings: S3Settings,
    ) -> Result<S3Anchor> {
        Ok(S3Anchor {
            bucket: S3Bucket::new(bucket, prefix, settings)?,
            retention,
        })
    }

    async fn put_async(&self, log: &str, note: &str) -> Result<Receipt> {
        self.bucket.ensure_locked().await?;
        let key = self.bucket.key(&object_name(log, note)?);
        let until = self
            .retention
            .after(time::OffsetDateTime::now_utc())
            .ok_or_else(|| {
                AnchorError::Config(format!("S3 retention {} is out of range", self.retention))
            })?;
        let (location, created) = self
            .bucket
            .write_once_locked(&key, note.as_bytes(), "text/plain; charset=utf-8", until)
            .await?;
        Ok(Receipt {
            location,
            created,
            timestamp: None,
        })
    }

    async fn list_async(&self, log: &str) -> Result<Vec<Anchored>> {
        crate::check_log_name(log)?;
        let prefix = self.bucket.key(&format!("{log}/"));
        let mut versions: Vec<(String, Option<String>)> = self
            .bucket
            .versions(&prefix)
            .await?
            .into_iter()
            .filter(|v| !v.delete_marker && v.key.ends_with(".note"))
            .map(|v| (v.key, v.version))
            .collect();
        versions.sort();
        let mut out = Vec::with_capacity(versions.len());
        for (key, version) in versions {
            let location = self.bucket.location(&key, version.as_deref());
            let Some((bytes, _)) = self.bucket.read(&key, version.as_deref()).await? else {
                return Err(AnchorError::S3 {
                    bucket: self.bucket.bucket().to_owned(),
                    operation: "GetObject",
                    detail: format!("{location} was listed but cannot be read"),
                });
            };
            let (note, fault) = match String::from_utf8(bytes) {
                Ok(s) => (s, None),
                Err(e) => (String::new(), Some(format!("not UTF-8 text: {e}"))),
            };
            out.push(Anchored {
                note,
                location,
                timestamp: None,
                fault,
            });
        }
        Ok(out)
    }
}

impl Anchor for S3Anchor {
    fn name(&self) -> &str {
        &self.bucket.name
    }

    fn put(&self, log: &str, note: &str) -> Result<Receipt> {
        self.bucket.block_on(self.put_async(log, note))
    }

    fn list(&self, log: &str) -> Result<Vec<Anchored>> {
        self.bucket.block_on(self.list_async(log))
    }
}
