//! One sequencer per log with group commit. Appends from any number of threads queue up;
//! the log's sequencer thread takes everything waiting, assigns seqs, hashes, writes it all
//! in one transaction and acknowledges each caller only after that transaction committed.
//!
//! A repeated event id with the same content is answered with the original receipt and
//! writes nothing; with different content the whole request is refused (and only it). An
//! id whose entry has left the hot store for the archive is no exception: the same event at
//! the original seq and time must hash to the leaf recorded for it.
//!
//! Ids are not looked up on the common path: a group commit is first tried optimistically,
//! with only the ids inside the group compared. The store's unique index on (log, event id)
//! refuses an id it already holds (`StoreError::DuplicateEventId`); the transaction then
//! rolls back and the group commit is redone with every id looked up, so duplicates get
//! their original receipts and a conflict refuses only its own request.
//!
//! A large group is built (entry bytes, leaf and chain hashes, Merkle nodes) on a helper
//! thread in chunks while the sequencer's thread inserts the chunks already built, so hashing
//! overlaps the backend's work.

use crate::error::{Result, StoreError};
use crate::nodes::{is_stored, StridedNodes};
use crate::store::{AppendTx, Chunk, NewEntry, Node, Store, StoredEntry};
use aitrail_core::chain::chain_hash;
use aitrail_core::entry::{entry_bytes, write_entry_bytes, PreparedEvent, Receipt, Record};
use aitrail_core::event::format_time;
use aitrail_core::event::IndexFields;
use aitrail_core::merkle::{leaf_hash, Frontier, Hash};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
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

/// One caller's events. The caller keeps a second reference and the sequencer lets go of
/// its own before replying (`answer`), so the events are freed on the caller's thread, not
/// between this log's group commits.
struct Job {
    /// Declared first: a job dropped unanswered also lets go of it before its reply.
    events: Arc<Vec<PreparedEvent>>,
    reply: SyncSender<Result<Vec<Outcome>>>,
}

impl Job {
    fn answer(self, result: Result<Vec<Outcome>>) {
        let Job { events, reply } = self;
        drop(events);
        let _ = reply.send(result);
    }
}

/// Appends to any log of a store; starts one sequencer thread per log on first use.
pub struct Sequencer {
    store: Arc<dyn Store>,
    logs: Mutex<HashMap<String, Worker>>,
    clock: Clock,
}

/// Where `recorded_at` comes from: Unix microseconds.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// A log's sequencer thread and its queue.
type Worker = (Sender<Job>, JoinHandle<()>);

impl Sequencer {
    pub fn new(store: Arc<dyn Store>) -> Sequencer {
        Sequencer::with_clock(store, Arc::new(now_micros))
    }

    /// A sequencer that records the time `clock` gives (never earlier than the log's last
    /// entry, as always). For tests and tools that build trails dated in the past; the
    /// binary and the server always use the system clock.
    pub fn with_clock(store: Arc<dyn Store>, clock: Clock) -> Sequencer {
        Sequencer {
            store,
            logs: Mutex::new(HashMap::new()),
            clock,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// Appends `events` to `log` atomically: all of them are durable when this returns Ok,
    /// none of them when it returns Err. Blocks until the group commit that holds them.
    pub fn append(&self, log: &str, events: Vec<PreparedEvent>) -> Result<Vec<Outcome>> {
        self.append_shared(log, Arc::new(events))
    }

    /// `append` for events the caller keeps: they are freed wherever the caller drops its
    /// reference, never on the log's sequencer thread, which lets go of its own before it
    /// replies. (Freeing a large request takes thousands of deallocations; on the sequencer
    /// they would hold up the log's next group commit.)
    pub fn append_shared(
        &self,
        log: &str,
        events: Arc<Vec<PreparedEvent>>,
    ) -> Result<Vec<Outcome>> {
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
                    let clock = self.clock.clone();
                    let handle = std::thread::Builder::new()
                        .name(format!("sequencer-{log}"))
                        .spawn(move || run(store, name, rx, clock))
                        .map_err(|e| {
                            StoreError::Commit(format!("cannot start the sequencer thread: {e}"))
                        })?;
                    logs.insert(log.to_owned(), (tx.clone(), handle));
                    tx
                }
            }
        };
        let stopped = || StoreError::SequencerStopped(log.to_owned());
        let job = Job {
            events: Arc::clone(&events),
            reply,
        };
        sender.send(job).map_err(|_| stopped())?;
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

fn run(store: Arc<dyn Store>, log: String, rx: Receiver<Job>, clock: Clock) {
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
        let mut committed = Ok(());
        for lookup in [false, true] {
            committed = store.append(&log, &mut |tx| {
                let (outcomes, next) =
                    group_commit(tx, &log, &jobs, cache.as_ref(), lookup, clock())?;
                results = outcomes;
                cache = Some(next);
                Ok(())
            });
            // Only a stored id met without lookups is worth a second try (rolled back already).
            if !matches!(committed, Err(StoreError::DuplicateEventId(_))) {
                break;
            }
        }
        if let Err(e) = committed {
            cache = None;
            let msg = e.to_string();
            for job in jobs {
                job.answer(Err(StoreError::Commit(msg.clone())));
            }
            continue;
        }
        for (job, result) in jobs.into_iter().zip(results) {
            job.answer(result.unwrap_or_else(|| Ok(Vec::new())));
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

/// Ids that occur more than once in the group: only these need remembering while the group
/// is built. Sorting finds them for much less than a map entry per event would cost.
fn repeated_ids(jobs: &[Job]) -> HashSet<uuid::Uuid> {
    let mut ids: Vec<u128> = jobs
        .iter()
        .flat_map(|j| j.events.iter().map(|e| e.id.as_u128()))
        .collect();
    ids.sort_unstable();
    ids.windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| uuid::Uuid::from_u128(w[0]))
        .collect()
}

/// Whether `id` may be a duplicate or a conflict: it occurs again in the group, or is
/// already known (stored, or appended earlier in the group). Every other id is new.
fn watched<V>(
    repeated: &HashSet<uuid::Uuid>,
    known: &HashMap<uuid::Uuid, V>,
    id: &uuid::Uuid,
) -> bool {
    (!repeated.is_empty() && repeated.contains(id)) || (!known.is_empty() && known.contains_key(id))
}

/// Events per chunk handed from the building thread to the inserting one.
const CHUNK: usize = 512;

/// The first chunk of a group is smaller, so the backend starts storing rows sooner: while
/// it is built, nothing else is being sent (PostgreSQL: the server idles).
const FIRST_CHUNK: usize = 64;

/// Groups of at least this many events are built on a helper thread while the sequencer's
/// thread inserts what is ready; smaller ones are not worth a thread.
pub const PIPELINE_MIN: usize = 2 * CHUNK;

/// Everything fixed before a group's entries are built.
struct Plan<'a> {
    log: &'a str,
    jobs: &'a [Job],
    /// Ids already stored (when looked up) or appended earlier in this group (only those
    /// that occur again in it), with their receipts and canonical event bytes.
    known: HashMap<uuid::Uuid, (Receipt, Recorded<'a>)>,
    repeated: HashSet<uuid::Uuid>,
    recorded_at: i64,
    recorded_text: String,
    seq: u64,
    chain: Hash,
    frontier: Frontier,
}

/// What a known id was recorded with, to tell a repeat (the original receipt) from a
/// conflict (other content under the same id).
enum Recorded<'a> {
    /// The canonical event bytes: an entry in the hot store, or earlier in the group.
    Event(Cow<'a, [u8]>),
    /// An entry that left the hot store for the archive: its receipt's leaf hash. The same
    /// event at the receipt's seq and time hashes to it (its bytes may even have expired).
    Leaf,
}

impl Recorded<'_> {
    /// Whether `canonical` is the event recorded under `receipt`.
    fn is(&self, log: &str, receipt: &Receipt, canonical: &[u8]) -> bool {
        match self {
            Recorded::Event(c) => c.as_ref() == canonical,
            Recorded::Leaf => {
                let entry = entry_bytes(receipt.seq, log, &receipt.recorded_at, canonical);
                leaf_hash(&entry) == receipt.leaf_hash
            }
        }
    }
}

/// Each job's outcome (None never happens for a job that was looked at) and the frontier
/// after the group.
type Built = (Vec<Option<Result<Vec<Outcome>>>>, Cached);

/// Builds and inserts one group commit inside `tx`.
///
/// With `lookup` false, ids are only compared inside the group: an id already stored makes
/// the insert fail with `DuplicateEventId`, and the caller redoes the group with `lookup`.
fn group_commit(
    tx: &mut dyn AppendTx,
    log: &str,
    jobs: &[Job],
    cache: Option<&Cached>,
    lookup: bool,
    now: i64,
) -> Result<Built> {
    let head = tx.head()?;
    let frontier = match cache {
        Some(c) if c.size == head.size && c.chain == head.chain_hash => c.frontier.clone(),
        _ => Frontier::from_source(&mut StridedNodes { rows: tx }, head.size)?,
    };
    let mut known = HashMap::new();
    if lookup {
        let ids: Vec<String> = jobs
            .iter()
            .flat_map(|j| j.events.iter().map(|e| e.id.to_string()))
            .collect();
        for stored in tx.find_events(&ids)? {
            let (receipt, canonical) = receipt_of(&stored)?;
            known.insert(
                receipt.id,
                (receipt, Recorded::Event(Cow::Owned(canonical))),
            );
        }
        let archived: Vec<String> = ids
            .into_iter()
            .filter(|id| uuid::Uuid::parse_str(id).is_ok_and(|id| !known.contains_key(&id)))
            .collect();
        if !archived.is_empty() {
            for r in tx.find_retired(&archived)? {
                let receipt = Receipt {
                    id: uuid::Uuid::parse_str(&r.event_id).map_err(|e| {
                        StoreError::Corrupt(format!("event id {}: {e}", r.event_id))
                    })?,
                    seq: r.seq,
                    leaf_hash: r.leaf_hash,
                    recorded_at: format_time(r.recorded_at),
                };
                known.insert(receipt.id, (receipt, Recorded::Leaf));
            }
        }
    }
    // One timestamp per group commit, never earlier than the last one recorded.
    let recorded_at = now.max(head.recorded_at);
    let plan = Plan {
        log,
        jobs,
        known,
        repeated: repeated_ids(jobs),
        recorded_at,
        recorded_text: format_time(recorded_at),
        seq: head.size,
        chain: head.chain_hash,
        frontier,
    };
    let count: usize = jobs.iter().map(|j| j.events.len()).sum();
    if count < PIPELINE_MIN {
        return build(
            plan,
            &mut |entries, nodes| tx.insert(&entries, &nodes),
            &mut || None,
        );
    }
    // Hashing and the backend's work overlap: a helper thread builds entries chunk by chunk
    // while this one (which holds the transaction) inserts them as they come (PostgreSQL
    // streams them into one open COPY). Should the builder fail, it hangs up, the chunks
    // end early and its error (joined below) rolls the transaction back. Chunks written
    // come back to the builder, which fills their entries again: a group allocates (and
    // frees, on another thread than the one that allocated) only its first few chunks.
    std::thread::scope(|scope| {
        let (send, chunks) = mpsc::sync_channel::<Chunk>(4);
        let (give_back, written) = mpsc::channel::<Chunk>();
        let builder = scope.spawn(move || {
            build(
                plan,
                &mut |entries, nodes| {
                    // The receiver only hangs up after an insert failed, which it reports.
                    send.send((entries, nodes))
                        .map_err(|_| StoreError::Commit("insert stopped".into()))
                },
                &mut || written.try_recv().ok().map(|(entries, _)| entries),
            )
        });
        let inserted = tx.insert_all(count, &mut || chunks.recv().ok(), &mut |chunk| {
            // The builder may have finished: the chunk is then dropped here.
            let _ = give_back.send(chunk);
        });
        drop(chunks);
        let built = builder
            .join()
            .map_err(|_| StoreError::Commit("the entry builder panicked".into()))?;
        inserted?;
        built
    })
}

/// Builds the group's entries in order, handing them to `sink` after the first
/// `FIRST_CHUNK` events, then every `CHUNK` events, and at the end. A job with a conflicting
/// id is refused whole, before anything of it is built. Entries already written, from
/// `spares`, are filled again rather than allocated anew.
fn build(
    plan: Plan<'_>,
    sink: &mut dyn FnMut(Vec<NewEntry>, Vec<Node>) -> Result<()>,
    spares: &mut dyn FnMut() -> Option<Vec<NewEntry>>,
) -> Result<Built> {
    let Plan {
        log,
        jobs,
        mut known,
        repeated,
        recorded_at,
        recorded_text,
        mut seq,
        mut chain,
        mut frontier,
    } = plan;
    let mut entries = Vec::with_capacity(FIRST_CHUNK);
    let mut spare = Vec::new();
    let mut limit = FIRST_CHUNK;
    let mut nodes = Vec::new();
    let mut results = Vec::with_capacity(jobs.len());
    'jobs: for job in jobs {
        // First pass: refuse the whole job on a conflicting id, before anything of it is built.
        let mut in_job: HashMap<uuid::Uuid, &[u8]> = HashMap::new();
        for (index, ev) in job.events.iter().enumerate() {
            if !watched(&repeated, &known, &ev.id) {
                continue;
            }
            let same = match (known.get(&ev.id), in_job.get(&ev.id)) {
                (Some((receipt, recorded)), _) => recorded.is(log, receipt, &ev.canonical),
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
        for ev in job.events.iter() {
            if let Some((receipt, _)) = watched(&repeated, &known, &ev.id)
                .then(|| known.get(&ev.id))
                .flatten()
            {
                outcomes.push(Outcome::Duplicate(receipt.clone()));
                continue;
            }
            if spare.is_empty() {
                spare = spares().unwrap_or_default();
            }
            let mut e = spare.pop().unwrap_or_default();
            fill(&mut e, ev, log, seq, (recorded_at, &recorded_text));
            let leaf = leaf_hash(&e.entry);
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
            if repeated.contains(&ev.id) {
                known.insert(
                    ev.id,
                    (
                        receipt.clone(),
                        Recorded::Event(Cow::Borrowed(&ev.canonical)),
                    ),
                );
            }
            outcomes.push(Outcome::Appended(receipt));
            e.leaf_hash = leaf;
            e.chain_hash = chain;
            entries.push(e);
            seq += 1;
            if entries.len() == limit {
                limit = CHUNK;
                sink(
                    std::mem::replace(&mut entries, Vec::with_capacity(CHUNK)),
                    std::mem::take(&mut nodes),
                )?;
            }
        }
        results.push(Some(Ok(outcomes)));
    }
    if !entries.is_empty() || !nodes.is_empty() {
        sink(entries, nodes)?;
    }
    Ok((
        results,
        Cached {
            size: seq,
            chain,
            frontier,
        },
    ))
}

/// Makes `e`, an entry possibly filled before for another event, the entry of `ev` at `seq`,
/// in the buffers it already has; the caller sets the hashes of its entry bytes. Every other
/// field is set here: the patterns name them all, so a field added later cannot keep another
/// event's value unnoticed.
fn fill(e: &mut NewEntry, ev: &PreparedEvent, log: &str, seq: u64, at: (i64, &str)) {
    let NewEntry {
        seq: e_seq,
        event_id,
        recorded_at,
        occurred_at,
        event_type,
        task_id,
        index,
        entry,
        leaf_hash: _,
        chain_hash: _,
    } = e;
    *e_seq = seq;
    *recorded_at = at.0;
    *occurred_at = ev.occurred_at;
    event_id.clear();
    event_id.push_str(
        ev.id
            .hyphenated()
            .encode_lower(&mut uuid::Uuid::encode_buffer()),
    );
    event_type.clone_from(&ev.event_type);
    task_id.clone_from(&ev.task_id);
    let IndexFields {
        actor_id,
        model_name,
        model_version,
        prompt_version,
        decision,
        subject_ref,
    } = index;
    actor_id.clone_from(&ev.index.actor_id);
    model_name.clone_from(&ev.index.model_name);
    model_version.clone_from(&ev.index.model_version);
    prompt_version.clone_from(&ev.index.prompt_version);
    decision.clone_from(&ev.index.decision);
    subject_ref.clone_from(&ev.index.subject_ref);
    entry.clear();
    write_entry_bytes(entry, seq, log, at.1, &ev.canonical);
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn a_job_lets_go_of_its_events_before_it_replies() {
        let events = Arc::new(Vec::new());
        let (reply, answer) = mpsc::sync_channel(1);
        // A full channel: the job's reply waits until the caller reads.
        reply.send(Ok(Vec::new())).unwrap();
        let job = Job {
            events: Arc::clone(&events),
            reply,
        };
        let replying = std::thread::spawn(move || job.answer(Ok(Vec::new())));
        let since = Instant::now();
        while Arc::strong_count(&events) > 1 {
            assert!(
                since.elapsed() < Duration::from_secs(30),
                "the job still holds its events while its reply waits"
            );
            std::thread::yield_now();
        }
        for _ in 0..2 {
            assert!(answer.recv().unwrap().unwrap().is_empty());
        }
        replying.join().unwrap();
    }
}
