//! Errors of aitrail-store.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error(transparent)]
    Core(#[from] aitrail_core::Error),
    /// An event id already stored (or earlier in the same request) with other content.
    #[error("event {id} (index {index}) was already recorded with different content")]
    Conflict { index: usize, id: uuid::Uuid },
    /// The database is not an aitrail store, or of a schema this build does not know.
    #[error("store schema: {0}")]
    Schema(String),
    /// A row that cannot be what aitrail wrote (only verify should meet these).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// The log or entry asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// The group commit holding the request failed; nothing of it was written.
    #[error("commit failed, nothing was written: {0}")]
    Commit(String),
    /// The sequencer thread is gone (the process is shutting down).
    #[error("the sequencer for log {0:?} has stopped")]
    SequencerStopped(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
