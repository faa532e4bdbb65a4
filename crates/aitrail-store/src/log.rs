//! Reading a log's tree back: roots, inclusion proofs, and signing checkpoints. Shared by
//! every backend: it only needs the `Store` trait.

use crate::error::{Result, StoreError};
use crate::nodes::StridedNodes;
use crate::store::{Store, StoredCheckpoint, StoredEntry};
use aitrail_core::checkpoint::{Checkpoint, Signer};
use aitrail_core::merkle::{self, Hash};
use aitrail_core::proof::Proof;
use base64::Engine as _;

/// The root of the first `size` entries of `log`.
pub fn root_at(store: &dyn Store, log: &str, size: u64) -> Result<Hash> {
    if size == 0 {
        return Ok(merkle::empty_root());
    }
    let mut root = None;
    store.read_nodes(log, &mut |rows| {
        root = Some(merkle::root_at(&mut StridedNodes { rows }, size)?);
        Ok(())
    })?;
    root.ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))
}

/// The inclusion path of `seq` in the tree of `size`.
pub fn inclusion_path(store: &dyn Store, log: &str, seq: u64, size: u64) -> Result<Vec<Hash>> {
    let mut path = Vec::new();
    store.read_nodes(log, &mut |rows| {
        path = merkle::inclusion_proof(&mut StridedNodes { rows }, seq, size)?;
        Ok(())
    })?;
    Ok(path)
}

/// The consistency proof between two sizes of `log`.
pub fn consistency_path(store: &dyn Store, log: &str, from: u64, to: u64) -> Result<Vec<Hash>> {
    let mut path = Vec::new();
    store.read_nodes(log, &mut |rows| {
        path = merkle::consistency_proof(&mut StridedNodes { rows }, from, to)?;
        Ok(())
    })?;
    Ok(path)
}

/// Signs and stores a checkpoint of the current tree when the latest is behind it (or there
/// is none); returns the latest checkpoint and whether it is new.
pub fn checkpoint(
    store: &dyn Store,
    log: &str,
    signer: &Signer,
    now_micros: i64,
) -> Result<(StoredCheckpoint, bool)> {
    let head = store.head(log)?;
    let latest = store.latest_checkpoint(log)?;
    if let Some(cp) = latest {
        if cp.size >= head.size {
            return Ok((cp, false));
        }
    }
    if head.size == 0 {
        return Err(StoreError::NotFound(format!(
            "log {log:?} has no entries to checkpoint"
        )));
    }
    let root = root_at(store, log, head.size)?;
    let note = Checkpoint {
        origin: signer.name.clone(),
        size: head.size,
        root,
    }
    .sign(signer)?;
    match store.add_checkpoint(log, head.size, &root, &note, now_micros) {
        Ok(cp) => Ok((cp, true)),
        // Another signer (a second server, the scheduled checkpointer) stored this size or a
        // later one first: the tree is the same, so its checkpoint is as good as ours.
        Err(e) => match store.latest_checkpoint(log)? {
            Some(cp) if cp.size >= head.size => Ok((cp, false)),
            _ => Err(e),
        },
    }
}

/// An inclusion proof of the event `event_id` against the latest checkpoint that covers it.
/// `Ok(None)` when no checkpoint covers the entry yet.
pub fn prove(store: &dyn Store, log: &str, event_id: &str) -> Result<Option<Proof>> {
    let entry = store
        .entry_by_id(log, event_id)?
        .ok_or_else(|| StoreError::NotFound(format!("event {event_id} in log {log:?}")))?;
    prove_entry(store, log, &entry)
}

/// An inclusion proof of `entry` (from the hot store, or read back from an archive segment:
/// the path's hashes are the same either way).
pub fn prove_entry(store: &dyn Store, log: &str, entry: &StoredEntry) -> Result<Option<Proof>> {
    let Some(cp) = store
        .latest_checkpoint(log)?
        .filter(|cp| cp.size > entry.seq)
    else {
        return Ok(None);
    };
    let audit_path = inclusion_path(store, log, entry.seq, cp.size)?;
    Ok(Some(Proof {
        log: log.to_owned(),
        seq: entry.seq,
        tree_size: cp.size,
        entry: base64::engine::general_purpose::STANDARD.encode(&entry.entry),
        leaf_hash: entry.leaf(),
        audit_path,
        root_hash: cp.root,
        checkpoint: cp.note,
    }))
}
