//! The data directory: config, keys (mode 0600) and the embedded store.
//!
//! ```text
//! aitrail-data/
//!   aitrail.toml        config: origin prefix; anchors, tsa_ca, tsa_tokens, s3_retention;
//!                       [tenants.<log>] PII policy (see `pii_config`)
//!   hmac.key            tenant key (hex): subject references, PII tokens, and the
//!                       key-encryption key of subjects' data keys (env AITRAIL_HMAC_KEY
//!                       overrides it)
//!   keys/<log>.key      Ed25519 signer key of each log (C2SP PRIVATE+KEY form)
//!   keys/<log>.hmac     optional: the tenant key of that log instead of hmac.key
//!   trail.db            SQLite store (WAL files beside it)
//!   anchors/tsa/        RFC 3161 notes and tokens, one directory per TSA (by default)
//! ```

use aitrail_core::checkpoint::{Signer, Verifier};
use aitrail_store::postgres as pg;
use aitrail_store::sqlite::SqliteStore;
use aitrail_store::store::Store;
use aitrail_store::tokens::{SqliteTokens, TokenStore};
use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::Mutex;

#[derive(Debug, Serialize, Deserialize)]
pub struct Config {
    /// Checkpoint origins and key names are `<origin>/<log>`.
    pub origin: String,
    /// Anchors used when no `--anchor` is given: `dir:PATH` (relative to this directory),
    /// `s3://BUCKET/PREFIX`, `tsa:URL`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub anchors: Vec<String>,
    /// PEM file of the CA a TSA's certificate must chain to (relative to this directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsa_ca: Option<PathBuf>,
    /// Where TSA notes and tokens are kept (default `anchors/tsa` in this directory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tsa_tokens: Option<PathBuf>,
    /// How long S3 keeps anchored objects locked, e.g. `6y` or `2190d` (default 6y).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3_retention: Option<String>,
}

pub struct DataDir {
    pub path: PathBuf,
    pub config: Config,
    /// The tenants' PII policies (`[tenants.<log>]` in aitrail.toml).
    pub pii: crate::pii_config::PiiConfig,
}

/// 32 bytes from the operating system's CSPRNG.
pub fn random_bytes() -> Result<[u8; 32]> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b)
        .map_err(|e| anyhow::anyhow!("reading random bytes from the operating system: {e}"))?;
    Ok(b)
}

/// Writes a secret file readable only by its owner, refusing to overwrite one.
fn write_secret(path: &Path, contents: &str) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    Ok(())
}

impl DataDir {
    /// Creates the directory, config and keys (keeping what exists). Returns it and whether
    /// anything was created.
    pub fn init(path: &Path, origin: Option<String>) -> Result<(DataDir, bool)> {
        std::fs::create_dir_all(path.join("keys"))
            .with_context(|| format!("creating {}", path.display()))?;
        let mut created = false;
        let config_path = path.join("aitrail.toml");
        if !config_path.exists() {
            let origin = match origin {
                Some(o) => o,
                None => format!("aitrail.local/{}", hex::encode(&random_bytes()?[..4])),
            };
            let text = format!(
                "# aitrail configuration.\n# Checkpoints of log L are signed as `<origin>/L`.\norigin = {}\n",
                toml::Value::String(origin)
            );
            std::fs::write(&config_path, text)
                .with_context(|| format!("writing {}", config_path.display()))?;
            created = true;
        }
        let hmac = path.join("hmac.key");
        if !hmac.exists() {
            write_secret(&hmac, &(hex::encode(random_bytes()?) + "\n"))?;
            created = true;
        }
        let dir = DataDir::open(path)?;
        Ok((dir, created))
    }

    /// Opens an initialised data directory.
    pub fn open(path: &Path) -> Result<DataDir> {
        let config_path = path.join("aitrail.toml");
        let text = std::fs::read_to_string(&config_path).with_context(|| {
            format!(
                "no aitrail data directory at {} (run `aitrail init` first)",
                path.display()
            )
        })?;
        let config: Config =
            toml::from_str(&text).with_context(|| format!("reading {}", config_path.display()))?;
        let pii = crate::pii_config::PiiConfig::parse(&config_path.display().to_string(), &text)?;
        Ok(DataDir {
            path: path.to_owned(),
            config,
            pii,
        })
    }

    fn key_path(&self, log: &str) -> Result<PathBuf> {
        if log.is_empty()
            || !log
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
            || log.starts_with('.')
        {
            bail!("log name {log:?}: use letters, digits, '-', '_' and '.'");
        }
        Ok(self.path.join("keys").join(format!("{log}.key")))
    }

    /// The signer of `log`, created on first use.
    pub fn signer(&self, log: &str) -> Result<Signer> {
        let path = self.key_path(log)?;
        if !path.exists() {
            let signer =
                Signer::from_seed(&format!("{}/{log}", self.config.origin), random_bytes()?)?;
            write_secret(&path, &(signer.to_skey() + "\n"))?;
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        Signer::parse(&text)
            .with_context(|| format!("reading the signer key in {}", path.display()))
    }

    /// The verifier of `log` when its key exists.
    pub fn verifier(&self, log: &str) -> Result<Option<Verifier>> {
        let path = self.key_path(log)?;
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(self.signer(log)?.verifier()))
    }

    /// The tenant key of `log`: `keys/<log>.hmac` when that file exists, else the data
    /// directory's key (`hmac_key`).
    pub fn tenant_key(&self, log: &str) -> Result<Vec<u8>> {
        let path = self.key_path(log)?.with_extension("hmac");
        if !path.exists() {
            return self.hmac_key();
        }
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))
    }

    /// The data directory's HMAC key: `AITRAIL_HMAC_KEY` (hex) when set, else `hmac.key`.
    pub fn hmac_key(&self) -> Result<Vec<u8>> {
        if let Ok(hexed) = std::env::var("AITRAIL_HMAC_KEY") {
            return hex::decode(hexed.trim()).context("AITRAIL_HMAC_KEY is not hex");
        }
        let path = self.path.join("hmac.key");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))
    }

    /// Where `--store` points (default: SQLite in the data directory).
    fn store_url<'u>(&self, url: Option<&'u str>) -> Result<StoreUrl<'u>> {
        Ok(match url {
            None => StoreUrl::Sqlite(self.path.join("trail.db")),
            Some(u) if u.starts_with("sqlite:") => StoreUrl::Sqlite(PathBuf::from(
                u.trim_start_matches("sqlite:").trim_start_matches("//"),
            )),
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                StoreUrl::Postgres(u)
            }
            Some(u) => bail!("--store {u:?}: expected sqlite:PATH or postgres://..."),
        })
    }

    /// Opens the store: `--store` when given, else SQLite in the data directory.
    pub fn store(&self, url: Option<&str>) -> Result<Arc<dyn Store>> {
        Ok(match self.store_url(url)? {
            StoreUrl::Sqlite(path) => Arc::new(
                SqliteStore::open(&path)
                    .with_context(|| format!("opening the store at {}", path.display()))?,
            ),
            StoreUrl::Postgres(u) => Arc::new(open_postgres(u)?),
        })
    }

    /// Opens the token table (beside the entries).
    pub fn tokens(&self, url: Option<&str>) -> Result<Arc<dyn TokenStore>> {
        Ok(match self.store_url(url)? {
            StoreUrl::Sqlite(path) => Arc::new(
                SqliteTokens::open(&path)
                    .with_context(|| format!("opening the tokens at {}", path.display()))?,
            ),
            StoreUrl::Postgres(u) => Arc::new(open_postgres(u)?),
        })
    }

    /// What `init` does to the store. SQLite: create the file. PostgreSQL: run the schema
    /// migrations and set up the application role (`AITRAIL_PG_APP_ROLE`, default
    /// `aitrail_app`; empty: none), then open the store as a check.
    pub fn init_store(&self, url: Option<&str>) -> Result<()> {
        let StoreUrl::Postgres(u) = self.store_url(url)? else {
            self.store(url)?;
            return Ok(());
        };
        let role = std::env::var("AITRAIL_PG_APP_ROLE")
            .unwrap_or_else(|_| pg::DEFAULT_APP_ROLE.to_owned());
        let role = Some(role.as_str()).filter(|r| !r.is_empty());
        let shown = pg::display_url(u);
        let report = pg::PgStore::init(u, role)
            .with_context(|| format!("preparing the PostgreSQL store at {shown}"))?;
        let m = report.migrated;
        if m.from == m.to {
            eprintln!(
                "PostgreSQL schema of {shown} is up to date (version {})",
                m.to
            );
        } else {
            eprintln!(
                "PostgreSQL schema of {shown} migrated from version {} to {}",
                m.from, m.to
            );
        }
        match report.role {
            Some(pg::AppRole::Created { name, password }) => {
                let config = pg::scratch::parse_url(u)?;
                let dbname = config
                    .get_dbname()
                    .or(config.get_user())
                    .unwrap_or("postgres");
                eprintln!(
                    "created the role {name}: SELECT and INSERT on aitrail's tables (and DELETE on the key table, for erasure), nothing else. \
                     Its password is shown only this once; run aitrail as it with:\n  --store '{}'",
                    pg::scratch::url_for(&config, &name, Some(&password), dbname)
                );
            }
            Some(pg::AppRole::Granted { name }) => {
                eprintln!(
                    "the role {name} exists; its grants (SELECT and INSERT only; DELETE on the key table) are in place"
                )
            }
            Some(pg::AppRole::Skipped { name, reason, sql }) => eprintln!(
                "the application role {name} was not set up: {reason}. \
                 A database administrator can run:\n{sql}"
            ),
            None => {}
        }
        if report.max_prepared_transactions == 0 {
            eprintln!(
                "note: the server has max_prepared_transactions = 0, so a large group commit keeps \
                 all its entries on one connection. To let two connections share them, committed in \
                 two phases (faster ingest), a superuser can run ALTER SYSTEM SET \
                 max_prepared_transactions = 64 and restart the server."
            );
        }
        open_postgres(u)?;
        Ok(())
    }
}

/// What `--store` names.
enum StoreUrl<'u> {
    Sqlite(PathBuf),
    Postgres(&'u str),
}

fn open_postgres(url: &str) -> Result<pg::PgStore> {
    pg::PgStore::open(url)
        .with_context(|| format!("opening the PostgreSQL store at {}", pg::display_url(url)))
}

/// The data directory as the server's keyring: signers cached once read.
pub struct DataKeys {
    data: DataDir,
    subject: Arc<Vec<u8>>,
    signers: Mutex<HashMap<String, Arc<Signer>>>,
    tenants: Mutex<HashMap<String, Arc<Vec<u8>>>>,
}

impl DataKeys {
    pub fn new(data: DataDir) -> Result<DataKeys> {
        let subject = Arc::new(data.hmac_key()?);
        Ok(DataKeys {
            data,
            subject,
            signers: Mutex::new(HashMap::new()),
            tenants: Mutex::new(HashMap::new()),
        })
    }
}

impl aitrail_server::state::Keys for DataKeys {
    fn signer(&self, log: &str) -> Result<Arc<Signer>, String> {
        let mut signers = self.signers.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = signers.get(log) {
            return Ok(s.clone());
        }
        let s = Arc::new(self.data.signer(log).map_err(|e| format!("{e:#}"))?);
        signers.insert(log.to_owned(), s.clone());
        Ok(s)
    }

    fn subject_key(&self) -> Arc<Vec<u8>> {
        self.subject.clone()
    }

    fn tenant_key(&self, log: &str) -> Arc<Vec<u8>> {
        let mut tenants = self.tenants.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(k) = tenants.get(log) {
            return k.clone();
        }
        // A log name the data directory refuses falls back to the directory's key.
        let key = self
            .data
            .tenant_key(log)
            .map(Arc::new)
            .unwrap_or_else(|_| self.subject.clone());
        tenants.insert(log.to_owned(), key.clone());
        key
    }

    fn pii_policy(&self, log: &str) -> Arc<aitrail_core::pii::Policy> {
        Arc::new(self.data.pii.policy(log))
    }
}
