//! `--anchor SPEC` (DESIGN.md "CLI contract"): `dir:PATH`, `s3://BUCKET/PREFIX`, `tsa:URL`,
//! the options anchors share, and [`open`], which turns a spec into an [`Anchor`].

use crate::dir::DirAnchor;
use crate::error::{AnchorError, Result};
use crate::s3::{S3Anchor, S3Settings};
use crate::tsa::TsaAnchor;
use crate::Anchor;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// A parsed anchor spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnchorSpec {
    /// `dir:PATH`
    Dir(PathBuf),
    /// `s3://BUCKET/PREFIX` (the prefix may be empty)
    S3 { bucket: String, prefix: String },
    /// `tsa:URL` (http or https)
    Tsa { url: String },
}

impl FromStr for AnchorSpec {
    type Err = AnchorError;

    fn from_str(s: &str) -> Result<AnchorSpec> {
        let bad = |reason: &str| AnchorError::Spec {
            spec: s.to_owned(),
            reason: reason.to_owned(),
        };
        if let Some(path) = s.strip_prefix("dir:") {
            if path.is_empty() {
                return Err(bad("expected dir:PATH"));
            }
            return Ok(AnchorSpec::Dir(PathBuf::from(path)));
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            // S3 bucket naming rules: 3-63 of a-z, 0-9, '.', '-', starting and ending alphanumeric.
            let valid = (3..=63).contains(&bucket.len())
                && bucket.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                })
                && bucket.starts_with(|c: char| c.is_ascii_alphanumeric())
                && bucket.ends_with(|c: char| c.is_ascii_alphanumeric());
            if !valid {
                return Err(bad(
                    "expected s3://BUCKET/PREFIX with a bucket name of 3-63 lowercase letters, digits, '.' and '-'",
                ));
            }
            if prefix.split('/').any(|seg| seg == "." || seg == "..") {
                return Err(bad("the prefix must not contain . or .. segments"));
            }
            return Ok(AnchorSpec::S3 {
                bucket: bucket.to_owned(),
                prefix: prefix.trim_matches('/').to_owned(),
            });
        }
        if let Some(url) = s.strip_prefix("tsa:") {
            let host = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"));
            if host.is_none_or(|h| h.is_empty() || h.starts_with('/')) {
                return Err(bad(
                    "expected tsa:http://HOST/PATH or tsa:https://HOST/PATH",
                ));
            }
            return Ok(AnchorSpec::Tsa {
                url: url.to_owned(),
            });
        }
        Err(bad("expected dir:PATH, s3://BUCKET/PREFIX or tsa:URL"))
    }
}

impl fmt::Display for AnchorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnchorSpec::Dir(p) => write!(f, "dir:{}", p.display()),
            AnchorSpec::S3 { bucket, prefix } if prefix.is_empty() => write!(f, "s3://{bucket}"),
            AnchorSpec::S3 { bucket, prefix } => write!(f, "s3://{bucket}/{prefix}"),
            AnchorSpec::Tsa { url } => write!(f, "tsa:{url}"),
        }
    }
}

impl AnchorSpec {
    /// A relative `dir:` path taken relative to `base` (the config file's directory).
    pub fn relative_to(self, base: &Path) -> AnchorSpec {
        match self {
            AnchorSpec::Dir(p) if p.is_relative() => AnchorSpec::Dir(base.join(p)),
            other => other,
        }
    }
}

/// How long S3 keeps an anchored object locked: `Ny` years or `Nd` days (default six
/// years), the same periods retention policies use.
pub type Retention = aitrail_core::period::Period;

/// What anchors need besides their spec.
#[derive(Clone, Debug)]
pub struct Options {
    /// PEM file of the CA a TSA's certificate must chain to (`--tsa-ca`).
    pub tsa_ca: Option<PathBuf>,
    /// Where TSA notes and tokens are kept (one subdirectory per TSA).
    pub tsa_tokens: PathBuf,
    /// How long S3 keeps objects locked.
    pub s3_retention: Retention,
}

/// Opens the anchor a spec names. S3 settings come from the environment (see [`crate::s3`]).
pub fn open(spec: &AnchorSpec, opts: &Options) -> Result<Box<dyn Anchor>> {
    Ok(match spec {
        AnchorSpec::Dir(path) => Box::new(DirAnchor::new(path)),
        AnchorSpec::S3 { bucket, prefix } => Box::new(S3Anchor::new(
            bucket,
            prefix,
            opts.s3_retention,
            S3Settings::from_env()?,
        )?),
        AnchorSpec::Tsa { url } => {
            let ca = opts.tsa_ca.as_ref().ok_or_else(|| {
                AnchorError::Config(format!(
                    "anchor {spec}: a TSA needs the CA its certificate chains to (--tsa-ca FILE, or tsa_ca in aitrail.toml)"
                ))
            })?;
            Box::new(TsaAnchor::new(
                url,
                ca,
                &opts.tsa_tokens.join(token_dir_name(url)),
            )?)
        }
    })
}

/// A directory name for a TSA URL: its host, port and path with every other character `_`.
pub fn token_dir_name(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.trim_end_matches('/')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_and_print_back() {
        for s in [
            "dir:/mnt/worm",
            "s3://audit-anchors/aitrail/prod",
            "s3://audit-anchors",
            "tsa:http://127.0.0.1:8318/tsr",
            "tsa:https://freetsa.org/tsr",
        ] {
            assert_eq!(s.parse::<AnchorSpec>().unwrap().to_string(), s);
        }
        assert_eq!(
            "s3://b-1/p/q/".parse::<AnchorSpec>().unwrap(),
            AnchorSpec::S3 {
                bucket: "b-1".into(),
                prefix: "p/q".into()
            }
        );
        for bad in [
            "dir:",
            "s3://",
            "s3://Upper",
            "s3://ab",
            "s3://bucket/../x",
            "tsa:ftp://x",
            "tsa:http://",
            "file:/x",
            "/x",
        ] {
            let err = bad.parse::<AnchorSpec>().unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
        assert_eq!(
            AnchorSpec::Dir("rel".into()).relative_to(Path::new("/data")),
            AnchorSpec::Dir("/data/rel".into())
        );
    }

    #[test]
    fn retention_is_calendar_years_or_days() {
        use time::macros::datetime;
        assert_eq!(Retention::default(), Retention::Years(6));
        assert_eq!("6y".parse::<Retention>().unwrap(), Retention::Years(6));
        assert_eq!("30d".parse::<Retention>().unwrap(), Retention::Days(30));
        for bad in ["", "6", "0d", "-1y", "6w", "y"] {
            assert!(bad.parse::<Retention>().is_err(), "{bad}");
        }
        let now = datetime!(2026-03-01 12:00 UTC);
        assert_eq!(
            Retention::Years(6).after(now).unwrap(),
            datetime!(2032-03-01 12:00 UTC)
        );
        assert_eq!(
            Retention::Days(1).after(now).unwrap(),
            datetime!(2026-03-02 12:00 UTC)
        );
        assert_eq!(
            Retention::Years(1)
                .after(datetime!(2028-02-29 08:00 UTC))
                .unwrap(),
            datetime!(2029-03-01 08:00 UTC)
        );
    }

    #[test]
    fn token_dirs_are_plain_names() {
        assert_eq!(
            token_dir_name("http://127.0.0.1:8318/tsr"),
            "127.0.0.1_8318_tsr"
        );
        assert_eq!(
            token_dir_name("https://timestamp.example/api/v1/"),
            "timestamp.example_api_v1"
        );
    }
}
