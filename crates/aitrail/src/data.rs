//! The data directory: config, keys (mode 0600) and the embedded store.
//!
//! ```text
//! aitrail-data/
//!   aitrail.toml        config: origin prefix
//!   hmac.key            HMAC key for subject references (hex)
//!   keys/<log>.key      Ed25519 signer key of each log (C2SP PRIVATE+KEY form)
//!   trail.db            SQLite store (WAL files beside it)
//! ```

use aitrail_core::checkpoint::{Signer, Verifier};
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
}

pub struct DataDir {
    pub path: PathBuf,
    pub config: Config,
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
        Ok(DataDir {
            path: path.to_owned(),
            config,
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

    /// The HMAC key for subject references.
    pub fn hmac_key(&self) -> Result<Vec<u8>> {
        let path = self.path.join("hmac.key");
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("reading {}", path.display()))?;
        hex::decode(text.trim()).with_context(|| format!("{} is not hex", path.display()))
    }

    /// The SQLite file behind `--store` (or the default one).
    fn sqlite_path(&self, url: Option<&str>) -> Result<PathBuf> {
        Ok(match url {
            None => self.path.join("trail.db"),
            Some(u) if u.starts_with("sqlite:") => {
                PathBuf::from(u.trim_start_matches("sqlite:").trim_start_matches("//"))
            }
            Some(u) if u.starts_with("postgres://") || u.starts_with("postgresql://") => {
                bail!("the PostgreSQL store is not built yet (issue 6); use the embedded SQLite store")
            }
            Some(u) => bail!("--store {u:?}: expected sqlite:PATH or postgres://..."),
        })
    }

    /// Opens the store: `--store` when given, else SQLite in the data directory.
    pub fn store(&self, url: Option<&str>) -> Result<Arc<dyn Store>> {
        let path = self.sqlite_path(url)?;
        let store = SqliteStore::open(&path)
            .with_context(|| format!("opening the store at {}", path.display()))?;
        Ok(Arc::new(store))
    }

    /// Opens the token table (beside the entries).
    pub fn tokens(&self, url: Option<&str>) -> Result<Arc<dyn TokenStore>> {
        let path = self.sqlite_path(url)?;
        Ok(Arc::new(SqliteTokens::open(&path).with_context(|| {
            format!("opening the tokens at {}", path.display())
        })?))
    }
}

/// The data directory as the server's keyring: signers cached once read.
pub struct DataKeys {
    data: DataDir,
    subject: Arc<Vec<u8>>,
    signers: Mutex<HashMap<String, Arc<Signer>>>,
}

impl DataKeys {
    pub fn new(data: DataDir) -> Result<DataKeys> {
        let subject = Arc::new(data.hmac_key()?);
        Ok(DataKeys {
            data,
            subject,
            signers: Mutex::new(HashMap::new()),
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
}
