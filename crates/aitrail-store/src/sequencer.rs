//! One sequencer per log with group commit. Appends from any number of threads queue up;
//! the log's sequencer thread takes everything waiting, assigns seqs, hashes, writes it all
//! in one transaction and acknowledges each caller only after that transaction committed.
//!
//! A repeated event id with the same content is answered with the original receipt and
//! writes nothing; with different content the whole request is refused (and only it).

use crate::error::{Result, StoreError};
use crate::nodes::{is_stored, StridedNodes};
use crate::store::{AppendTx, NewEntry, Node, Store, StoredEntry};
use aitrail_core::chain::chain_hash;
use aitrail_core::entry::{entry_bytes, PreparedEvent, Receipt, Record};
use aitrail_core::event::format_time;
use aitrail_core::merkle::{leaf_hash, Frontier, Hash};
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::mpsc::{self, Receiver, Sender, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// The most events one group commit takes from the queue (one request is never split).
pub const MAX_GROUP: usize = 20_000;

/// What happened to one event of an append.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Newly written.
    Appended(Receipt),
    /// Already stored with the same content: nothing written, the original receipt.
    Duplicate(Receipt),
}

impl Outcome {
    pub fn receipt(&self) -> &Receipt {
        match self {
            Outcome::Appended(r) | Outcome::Duplicate(r) => r,
        }
    }
}

struct Job {
    events: Vec<PreparedEvent>,
    reply: SyncSender<Result<Vec<Outcome>>>,
}

/// Appends to any log of a store; starts one sequencer thread per log on first use.
pub struct Sequencer {
    store: Arc<dyn Store>,
    logs: Mutex<HashMap<String, Worker>>,
}

/// A log's sequencer thread and its queue.
type Worker = (Sender<Job>, JoinHandle<()>);

impl Sequencer {
    pub fn new(store: Arc<dyn Store>) -> Sequencer {
        Sequencer {
            store,
            logs: Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Appends `events` to `log` atomically: all of them are durable when this returns Ok,
    /// none of them when it returns Err. Blocks until the group commit that holds them.
    pub fn append(&self, log: &str, events: Vec<PreparedEvent>) -> Result<Vec<Outcome>> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, answer) = mpsc::sync_channel(1);
        let sender = {
            let mut logs = self.logs.lock().unwrap_or_else(|p| p.into_inner());
            match logs.get(log) {
                Some((tx, _)) => tx.clone(),
                None => {
                    let (tx, rx) = mpsc::channel();
                    let store = self.store.clone();
                    let name = log.to_owned();
                    let handle = std::thread::Builder::new()
                        .name(format!("sequencer-{log}"))
                        .spawn(move || run(store, name, rx))
                        .map_err(|e| {
                            StoreError::Commit(format!("cannot start the sequencer thread: {e}"))
                        })?;
                    logs.insert(log.to_owned(), (tx.clone(), handle));
                    tx
                }
            }
        };
        let stopped = || StoreError::SequencerStopped(log.to_owned());
        sender.send(Job { events, reply }).map_err(|_| stopped())?;
        answer.recv().map_err(|_| stopped())?
    }

    /// Stops every sequencer after the work already queued, and waits for them.
    pub fn shutdown(&self) {
        let logs: Vec<_> = self
            .logs
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .collect();
        for (_, (tx, handle)) in logs {
            drop(tx);
            let _ = handle.join();
        }
    }
}

impl Drop for Sequencer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// The frontier as of a head, so most commits need no tree reads.
struct Cached {
    size: u64,
    chain: Hash,
    frontier: Frontier,
}

fn run(store: Arc<dyn Store>, log: String, rx: Receiver<Job>) {
    let mut cache: Option<Cached> = None;
    while let Ok(first) = rx.recv() {
        let mut jobs = vec![first];
        let mut count = jobs[0].events.len();
        while count < MAX_GROUP {
            match rx.try_recv() {
                Ok(job) => {
                    count += job.events.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let mut results: Vec<Option<Result<Vec<Outcome>>>> = Vec::new();
        let committed = store.append(&log, &mut |tx| {
            let (outcomes, next) = group_commit(tx, &log, &jobs, cache.as_ref())?;
            results = outcomes;
            cache = Some(next);
            Ok(())
        });
        if let Err(e) = committed {
            cache = None;
            let msg = e.to_string();
            for job in jobs {
                let _ = job.reply.send(Err(StoreError::Corrupt(format!(
                    "append failed, nothing written: {msg}"
                ))));
            }
            continue;
        }
        for (job, result) in jobs.into_iter().zip(results) {
            let _ = job.reply.send(result.unwrap_or_else(|| Ok(Vec::new())));
        }
    }
}

fn now_micros() -> i64 {
    let d = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    d.as_micros() as i64
}

fn receipt_of(stored: &StoredEntry) -> Result<(Receipt, Vec<u8>)> {
    let record = Record::parse(&stored.entry)?;
    let canonical =
        aitrail_core::canonical::to_canonical(&serde_json::Value::Object(record.event))?;
    let id = uuid::Uuid::parse_str(&stored.event_id)
        .map_err(|e| StoreError::Corrupt(format!("event id {}: {e}", stored.event_id)))?;
    Ok((
        Receipt {
            id,
            seq: stored.seq,
            leaf_hash: stored.leaf(),
            recorded_at: record.recorded_at,
        },
        canonical,
    ))
}

/// Builds and inserts one group commit inside `tx`. Returns each job's outcome (None never
/// happens for a job that was looked at) and the frontier after the commit.
#[allow(clippy::type_complexity)]
fn group_commit(
    tx: &mut dyn AppendTx,
    log: &str,
    jobs: &[Job],
    cache: Option<&Cached>,
) -> Result<(Vec<Option<Result<Vec<Outcome>>>>, Cached)> {
    let head = tx.head()?;
    let mut frontier = match cache {
        Some(c) if c.size == head.size && c.chain == head.chain_hash => c.frontier.clone(),
        _ => Frontier::from_source(&mut StridedNodes { rows: tx }, head.size)?,
    };
    let ids: Vec<String> = jobs
        .iter()
        .flat_map(|j| j.events.iter().map(|e| e.id.to_string()))
        .collect();
    // Ids already stored, with their receipts and canonical event bytes.
    let mut known: HashMap<uuid::Uuid, (Receipt, Cow<'_, [u8]>)> = HashMap::new();
    for stored in tx.find_events(&ids)? {
        let (receipt, canonical) = receipt_of(&stored)?;
        known.insert(receipt.id, (receipt, Cow::Owned(canonical)));
    }
    // One timestamp per group commit, never earlier than the last one recorded.
    let recorded_at = now_micros().max(head.recorded_at);
    let recorded_text = format_time(recorded_at);
    let (mut seq, mut chain) = (head.size, head.chain_hash);
    let mut entries = Vec::with_capacity(ids.len());
    let mut nodes = Vec::new();
    let mut results = Vec::with_capacity(jobs.len());
    'jobs: for job in jobs {
        // First pass: refuse the whole job on a conflicting id, before anything of it is built.
        let mut in_job: HashMap<uuid::Uuid, &[u8]> = HashMap::new();
        for (index, ev) in job.events.iter().enumerate() {
            let same = match (known.get(&ev.id), in_job.get(&ev.id)) {
                (Some((_, c)), _) => c.as_ref() == ev.canonical.as_slice(),
                (None, Some(c)) => *c == ev.canonical.as_slice(),
                (None, None) => true,
            };
            if !same {
                results.push(Some(Err(StoreError::Conflict { index, id: ev.id })));
                continue 'jobs;
            }
            in_job.insert(ev.id, &ev.canonical);
        }
        let mut outcomes = Vec::with_capacity(job.events.len());
        for ev in &job.events {
            if let Some((receipt, _)) = known.get(&ev.id) {
                outcomes.push(Outcome::Duplicate(receipt.clone()));
                continue;
            }
            let entry = entry_bytes(seq, log, &recorded_text, &ev.canonical);
            let leaf = leaf_hash(&entry);
            chain = chain_hash(&chain, &leaf);
            frontier.push(leaf, |level, index, hash| {
                if is_stored(level) {
                    nodes.push(Node {
                        level,
                        index,
                        hash: *hash,
                    });
                }
            });
            let receipt = Receipt {
                id: ev.id,
                seq,
                leaf_hash: leaf,
                recorded_at: recorded_text.clone(),
            };
            known.insert(ev.id, (receipt.clone(), Cow::Borrowed(&ev.canonical)));
            outcomes.push(Outcome::Appended(receipt));
            entries.push(NewEntry {
                seq,
                event_id: ev.id.to_string(),
                recorded_at,
                occurred_at: ev.occurred_at,
                event_type: ev.event_type.clone(),
                task_id: ev.task_id.clone(),
                index: ev.index.clone(),
                entry,
                leaf_hash: leaf,
                chain_hash: chain,
            });
            seq += 1;
        }
        results.push(Some(Ok(outcomes)));
    }
    tx.insert(&entries, &nodes)?;
    Ok((
        results,
        Cached {
            size: seq,
            chain,
            frontier,
        },
    ))
}
