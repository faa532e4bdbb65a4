//! Errors of aitrail-store.

use thiserror::Error;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A PostgreSQL error, with what the server said (see `postgres::describe`).
    #[error("postgres: {}", crate::postgres::describe(.0))]
    Postgres(::postgres::Error),
    #[error(transparent)]
    Core(#[from] aitrail_core::Error),
    /// An event id already stored (or earlier in the same request) with other content.
    #[error("event {id} (index {index}) was already recorded with different content")]
    Conflict { index: usize, id: uuid::Uuid },
    /// An insert met an event id the log already holds (the backend's unique index on
    /// (log, event id) refused it). The sequencer rolls back and redoes the group commit with
    /// lookups, so callers only see this from `AppendTx::insert`.
    #[error("event {0} is already stored in this log")]
    DuplicateEventId(String),
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
    /// A retention step that could not be done; what was already written is named.
    #[error("retention: {0}")]
    Retention(String),
    /// An archived segment a read needs is not in the archive (deleted behind aitrail's
    /// back, or the archive is unreachable as configured).
    #[error("{0}")]
    MissingArchive(String),
    /// A request the store refuses as it stands (a hold released twice, for example).
    #[error("{0}")]
    Refused(String),
    /// The sequencer thread is gone (the process is shutting down).
    #[error("the sequencer for log {0:?} has stopped")]
    SequencerStopped(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;
