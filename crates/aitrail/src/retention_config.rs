//! The `[retention]` section of `aitrail.toml`, and the archive it names.
//!
//! ```toml
//! [retention]
//! # Where cold segments go: dir:PATH (relative to the data directory) or s3://BUCKET/PREFIX
//! # (S3 Object Lock, COMPLIANCE mode until each segment's expiry). Needed to archive.
//! archive = "s3://audit-archive/aitrail"
//! # Days entries stay in the store before they are archived (default 90).
//! hot_days = 90
//! # How long entries are kept (default 6y: HIPAA); per event type below.
//! keep = "6y"
//! # How often `serve` runs retention (default 1d).
//! every = "1d"
//!
//! [retention.types]
//! "audit.accessed" = "1y"
//!
//! # A tenant (log) of its own: any of hot_days, keep, types.
//! [retention.tenants.acme]
//! keep = "10y"
//! ```
//!
//! A mistake is an error naming the key (toml's own message, with its line, for syntax,
//! unknown keys and types).

use crate::data::DataDir;
use aitrail_core::period::Period;
use aitrail_store::retention::{ArchiveStore, Deleted, Policy};
use anyhow::{bail, Context, Result};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Default, Deserialize)]
struct Root {
    #[serde(default)]
    retention: Section,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Section {
    archive: Option<String>,
    every: Option<String>,
    hot_days: Option<u32>,
    keep: Option<String>,
    #[serde(default)]
    types: BTreeMap<String, String>,
    #[serde(default)]
    tenants: BTreeMap<String, PolicySection>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicySection {
    hot_days: Option<u32>,
    keep: Option<String>,
    #[serde(default)]
    types: BTreeMap<String, String>,
}

/// The retention settings, as configured.
#[derive(Clone, Debug)]
pub struct RetentionConfig {
    /// The archive spec, relative paths resolved against the data directory.
    pub archive: Option<String>,
    /// How often `serve` runs retention.
    pub every: std::time::Duration,
    default: Policy,
    tenants: BTreeMap<String, Policy>,
}

fn period(at: &str, s: &str) -> Result<Period> {
    s.parse()
        .map_err(|e: String| anyhow::anyhow!("aitrail.toml {at}: {e}"))
}

fn policy(at: &str, section: &PolicySection, base: &Policy) -> Result<Policy> {
    let mut p = base.clone();
    if let Some(d) = section.hot_days {
        p.hot_days = d;
    }
    if let Some(k) = &section.keep {
        p.keep = period(&format!("{at} keep"), k)?;
    }
    for (t, k) in &section.types {
        if !aitrail_core::event::type_name_is_valid(t) {
            bail!("aitrail.toml {at}.types: {t:?} is not an event type (like review.decision)");
        }
        p.types
            .insert(t.clone(), period(&format!("{at}.types {t:?}"), k)?);
    }
    Ok(p)
}

impl RetentionConfig {
    pub fn parse(data_dir: &std::path::Path, text: &str) -> Result<RetentionConfig> {
        let root: Root = toml::from_str(text).context("reading aitrail.toml [retention]")?;
        let s = root.retention;
        let top = PolicySection {
            hot_days: s.hot_days,
            keep: s.keep.clone(),
            types: s.types.clone(),
        };
        let default = policy("[retention]", &top, &Policy::default())?;
        let mut tenants = BTreeMap::new();
        for (name, t) in &s.tenants {
            tenants.insert(
                name.clone(),
                policy(&format!("[retention.tenants.{name}]"), t, &default)?,
            );
        }
        let every = match &s.every {
            Some(e) => crate::args::parse_duration(e)
                .map_err(|e| anyhow::anyhow!("aitrail.toml [retention] every: {e}"))?,
            None => std::time::Duration::from_secs(86_400),
        };
        let archive = s.archive.map(|a| match a.strip_prefix("dir:") {
            Some(p) if !std::path::Path::new(p).is_absolute() => {
                format!("dir:{}", data_dir.join(p).display())
            }
            _ => a,
        });
        Ok(RetentionConfig {
            archive,
            every,
            default,
            tenants,
        })
    }

    pub fn load(data: &DataDir) -> Result<RetentionConfig> {
        let path = data.path.join("aitrail.toml");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        RetentionConfig::parse(&data.path, &text)
    }

    /// The policy of `log`.
    pub fn policy(&self, log: &str) -> &Policy {
        self.tenants.get(log).unwrap_or(&self.default)
    }

    /// The configured archive, opened; None when there is none.
    pub fn open_archive(&self) -> Result<Option<Box<dyn ArchiveStore>>> {
        let Some(spec) = &self.archive else {
            return Ok(None);
        };
        let inner = aitrail_anchor::archive::open_archive(spec)
            .with_context(|| format!("opening the archive {spec}"))?;
        Ok(Some(Box::new(Archive(inner))))
    }

    /// The configured archive, or an error saying how to configure one.
    pub fn require_archive(&self) -> Result<Box<dyn ArchiveStore>> {
        self.open_archive()?.ok_or_else(|| {
            anyhow::anyhow!(
                "no archive is configured: set `archive = \"dir:PATH\"` or `archive = \"s3://BUCKET/PREFIX\"` under [retention] in aitrail.toml"
            )
        })
    }
}

/// `aitrail_anchor::archive` as the store's `ArchiveStore`.
struct Archive(Box<dyn aitrail_anchor::archive::Archive>);

impl ArchiveStore for Archive {
    fn name(&self) -> &str {
        self.0.name()
    }

    fn put(&self, key: &str, bytes: &[u8], retain_until: i64) -> Result<String, String> {
        let until =
            time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(retain_until) * 1000)
                .map_err(|e| format!("retain-until {retain_until}: {e}"))?;
        self.0.put(key, bytes, until).map_err(|e| e.to_string())
    }

    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        self.0.get(key).map_err(|e| e.to_string())
    }

    fn delete(&self, key: &str) -> Result<Deleted, String> {
        match self.0.delete(key) {
            Ok(true) => Ok(Deleted::Yes),
            Ok(false) => Ok(Deleted::Absent),
            Err(aitrail_anchor::AnchorError::Locked { detail, .. }) => Ok(Deleted::Locked(detail)),
            Err(e) => Err(e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_tenants_and_types() {
        let dir = std::path::Path::new("/data");
        let c = RetentionConfig::parse(dir, "origin = \"x\"\n").unwrap();
        assert_eq!(c.policy("default"), &Policy::default());
        assert!(c.archive.is_none());
        let c = RetentionConfig::parse(
            dir,
            r#"
[retention]
archive = "dir:cold"
hot_days = 30
[retention.types]
"audit.accessed" = "1y"
[retention.tenants.acme]
keep = "10y"
"#,
        )
        .unwrap();
        assert_eq!(c.archive.as_deref(), Some("dir:/data/cold"));
        let d = c.policy("default");
        assert_eq!((d.hot_days, d.keep), (30, Period::Years(6)));
        assert_eq!(d.types["audit.accessed"], Period::Years(1));
        let acme = c.policy("acme");
        assert_eq!((acme.hot_days, acme.keep), (30, Period::Years(10)));
        assert_eq!(acme.types["audit.accessed"], Period::Years(1));
    }

    #[test]
    fn mistakes_name_the_key() {
        let dir = std::path::Path::new("/data");
        let err = |t: &str| format!("{:#}", RetentionConfig::parse(dir, t).unwrap_err());
        assert!(err("[retention]\nkeep = \"6 years\"\n").contains("[retention] keep"));
        assert!(err("[retention.types]\n\"Bad Type\" = \"1y\"\n").contains("\"Bad Type\""));
        assert!(err("[retention]\nhot_dayz = 3\n").contains("hot_dayz"));
        assert!(
            err("[retention.tenants.a]\nkeep = \"0y\"\n").contains("[retention.tenants.a] keep")
        );
    }
}
