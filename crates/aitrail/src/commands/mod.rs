//! One module per command, each with `run`.

pub mod bench;
pub mod bench_http;
pub mod checkpoint;
pub mod demo;
pub mod ingest;
pub mod init;
pub mod key;
pub mod prove;
pub mod serve;
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

/// Unix microseconds now.
pub fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}
