//! aitrail-store: where entries are kept, and the logic every backend shares.
//!
//! - [`store::Store`]: the backend trait (append in one transaction, reads). [`sqlite`] is the
//!   embedded default; [`postgres`] the production one (partitioned by day, write-once).
//! - [`sequencer::Sequencer`]: one per log, group commit, seq assignment, hashing.
//! - [`log`]: roots, proofs and checkpoints over any store.
//! - [`keys`]: subjects' data keys (the key table outside the chain) and erasure.
//! - [`verify`]: recompute everything and name the first entry affected by tampering.
//!
//! ```
//! use aitrail_core::entry::PreparedEvent;
//! use aitrail_core::event::{Event, Origin};
//! use aitrail_store::{sequencer::Sequencer, sqlite::SqliteStore};
//! use std::sync::Arc;
//! let dir = tempfile::tempdir().unwrap();
//! let store = Arc::new(SqliteStore::open(&dir.path().join("trail.db")).unwrap());
//! let seq = Sequencer::new(store.clone());
//! let event = Event::parse(r#"{"type":"task.created","task_id":"t1","occurred_at":"2026-03-01T12:00:00Z"}"#, Origin::Client).unwrap();
//! let out = seq.append("default", vec![PreparedEvent::new(event, b"subject key").unwrap()]).unwrap();
//! assert_eq!(out[0].receipt().seq, 0);
//! let report = aitrail_store::verify::verify_log(store.as_ref(), "default", None, &mut |_| {}).unwrap();
//! assert!(report.ok);
//! ```

pub mod audit;
pub mod error;
pub mod export;
pub mod keys;
pub mod log;
pub mod nodes;
pub mod postgres;
pub mod query;
pub mod retention;
pub mod sequencer;
pub mod sqlite;
pub mod stats;
pub mod status;
pub mod store;
pub mod tokens;
pub mod verify;
pub mod views;

pub use error::{Result, StoreError};
