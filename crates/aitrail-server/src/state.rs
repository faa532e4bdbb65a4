//! What every handler shares.

use crate::metrics::Metrics;
use aitrail_core::checkpoint::Signer;
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::Store;
use aitrail_store::tokens::TokenStore;
use std::sync::Arc;

/// Where the server gets its keys: one signer per log, and the subject-reference key.
pub trait Keys: Send + Sync {
    /// The signer of `log` (created on first use when the keyring can).
    fn signer(&self, log: &str) -> Result<Arc<Signer>, String>;
    /// The HMAC key for subject references.
    fn subject_key(&self) -> Arc<Vec<u8>>;
    /// The tenant key of `log`: subject references, PII tokens, and the key-encryption key
    /// of its subjects' data keys. Default: `subject_key()` for every log.
    fn tenant_key(&self, log: &str) -> Arc<Vec<u8>> {
        let _ = log;
        self.subject_key()
    }
    /// The PII policy of `log` (from the tenant's configuration). Default: everything
    /// pseudonymized, content of events about a subject encrypted.
    fn pii_policy(&self, log: &str) -> Arc<aitrail_core::pii::Policy> {
        let _ = log;
        Arc::new(aitrail_core::pii::Policy::default())
    }
}

/// Server settings.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Largest request body accepted, in bytes.
    pub body_limit: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            body_limit: 16 * 1024 * 1024,
        }
    }
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sequencer: Arc<Sequencer>,
    pub tokens: Arc<dyn TokenStore>,
    pub keys: Arc<dyn Keys>,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Where retention keeps archived segments, when configured: reads asked to include
    /// the archive (`include_archive=true`) merge them in.
    pub archive: Option<Arc<dyn aitrail_store::retention::ArchiveStore>>,
}
