//! One module per command, each with `run`.

pub mod anchor;
pub mod bench;
pub mod bench_http;
pub mod bench_pg;
pub mod bench_pii;
pub mod bench_query;
pub mod checkpoint;
pub mod demo;
pub mod erase;
pub mod export;
pub mod filters;
pub mod hold;
pub mod ingest;
pub mod init;
pub mod key;
pub mod prove;
pub mod retention;
pub mod review;
pub mod search;
pub mod serve;
pub mod timeline;
pub mod token;
pub mod verify;
pub mod verify_proof;

use crate::data::DataDir;
use aitrail_store::store::Store;
use std::sync::Arc;

/// What most commands need: the data directory, the store and the log.
pub struct Ctx {
    pub data: DataDir,
    pub store: Arc<dyn Store>,
    pub log: String,
}

impl Ctx {
    pub fn open(cli: &crate::args::Cli) -> anyhow::Result<Ctx> {
        let data = DataDir::open(&cli.data)?;
        let store = data.store(cli.store.as_deref())?;
        Ok(Ctx {
            data,
            store,
            log: cli.log.clone(),
        })
    }
}

impl Ctx {
    /// The person at the CLI, for audit records.
    pub fn reader(&self) -> aitrail_store::audit::Reader {
        let user = std::env::var("USER")
            .or_else(|_| std::env::var("LOGNAME"))
            .unwrap_or_else(|_| "unknown".into());
        aitrail_store::audit::Reader {
            kind: "human",
            id: format!("cli:{user}"),
            role: "admin".into(),
        }
    }

    /// The configured archive when `wanted` (`--include-archive`): an error saying how to
    /// configure one when there is none. None when not wanted.
    pub fn archive(
        &self,
        wanted: bool,
    ) -> anyhow::Result<Option<Box<dyn aitrail_store::retention::ArchiveStore>>> {
        if !wanted {
            return Ok(None);
        }
        crate::retention_config::RetentionConfig::load(&self.data)?
            .require_archive()
            .map(Some)
    }

    /// The configured archive, if there is one (verify and prove read it when it is there).
    pub fn configured_archive(
        &self,
    ) -> anyhow::Result<Option<Box<dyn aitrail_store::retention::ArchiveStore>>> {
        crate::retention_config::RetentionConfig::load(&self.data)?.open_archive()
    }

    /// A sequencer for this command's writes (audit records).
    pub fn sequencer(&self) -> aitrail_store::sequencer::Sequencer {
        aitrail_store::sequencer::Sequencer::new(self.store.clone())
    }
}

/// A bench's input as requests of `size` events, shared with the sequencer
/// (`Sequencer::append_shared`): built before a clock starts and freed after it stops.
pub fn shared_requests(
    prepared: &[aitrail_core::entry::PreparedEvent],
    size: usize,
) -> Vec<Arc<Vec<aitrail_core::entry::PreparedEvent>>> {
    prepared
        .chunks(size)
        .map(|c| Arc::new(c.to_vec()))
        .collect()
}

/// Unix microseconds now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
