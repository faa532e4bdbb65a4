//! The `Store` trait: what a backend must do, and nothing more. Sequencing, hashing and
//! verification live above it (`sequencer`, `log`, `verify`) so every backend shares them.

use crate::error::Result;
use aitrail_core::event::IndexFields;
use aitrail_core::merkle::Hash;

/// The last entry of a log (all zero for an empty log).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// Number of entries: the next seq.
    pub size: u64,
    /// chain_hash of the last entry, or 32 zero bytes.
    pub chain_hash: Hash,
    /// recorded_at of the last entry in Unix microseconds, or 0.
    pub recorded_at: i64,
}

/// A row to append, fully computed by the sequencer.
#[derive(Clone, Debug, Default)]
pub struct NewEntry {
    pub seq: u64,
    pub event_id: String,
    pub recorded_at: i64,
    pub occurred_at: i64,
    pub event_type: String,
    pub task_id: String,
    pub index: IndexFields,
    pub entry: Vec<u8>,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
}

/// A stored row as read back. Hash columns are raw so verify can see tampering with them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredEntry {
    pub seq: u64,
    pub event_id: String,
    pub recorded_at: i64,
    pub entry: Vec<u8>,
    pub leaf_hash: Vec<u8>,
    pub chain_hash: Vec<u8>,
}

impl StoredEntry {
    pub fn leaf(&self) -> Hash {
        to_hash(&self.leaf_hash)
    }
}

/// A perfect Merkle node kept for proofs (see `nodes::STRIDE`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Node {
    pub level: u32,
    pub index: u64,
    pub hash: Hash,
}

/// A signed checkpoint as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredCheckpoint {
    /// Position in the store's checkpoint sequence (1-based), "checkpoint N" to people.
    pub number: u64,
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub created_at: i64,
}

/// Hash columns read back; a value of the wrong length (tampering) maps to all 0xff so it
/// can never match a real hash.
pub fn to_hash(raw: &[u8]) -> Hash {
    raw.try_into().unwrap_or([0xff; 32])
}

/// Reads of hash rows, the same inside a write transaction and outside it.
pub trait NodeRows {
    /// Hashes at `level` for indices `from..to`, in order: leaf hashes of entries at level 0,
    /// stored nodes above. Missing rows are an error.
    fn hashes(&mut self, level: u32, from: u64, to: u64) -> Result<Vec<Hash>>;
}

/// An open write transaction on one log (see `Store::append`).
pub trait AppendTx: NodeRows {
    fn head(&mut self) -> Result<Head>;
    /// Stored entries with these event ids.
    fn find_events(&mut self, ids: &[String]) -> Result<Vec<StoredEntry>>;
    /// Entries with these event ids that left the hot store for the archive (`retention`):
    /// their ids stay taken, and their recorded hashes stand for them.
    fn find_retired(&mut self, ids: &[String]) -> Result<Vec<crate::retention::Retired>>;
    /// Writes entries and nodes. May be called several times in one transaction, entries in
    /// seq order. An event id the log already holds must fail with
    /// `StoreError::DuplicateEventId` (the sequencer then redoes the group with lookups).
    fn insert(&mut self, entries: &[NewEntry], nodes: &[Node]) -> Result<()>;
    /// Writes every chunk `next` yields (until None), in order, as `insert` would each of
    /// them, and hands each one to `done` once it no longer needs it (its buffers are used
    /// again for later chunks). `next` may block while a chunk is being built, so a backend may send
    /// the first chunks while later ones are still being hashed (PostgreSQL streams them into
    /// one COPY, on a second connection). `_rows`: how many entries the chunks hold at most
    /// (a backend may plan with it). Nothing reads in the transaction after it.
    fn insert_all(
        &mut self,
        _rows: usize,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Chunk),
    ) -> Result<()> {
        while let Some(chunk) = next() {
            self.insert(&chunk.0, &chunk.1)?;
            done(chunk);
        }
        Ok(())
    }
}

/// Entries built for one insert, in seq order, and the Merkle nodes they complete.
pub type Chunk = (Vec<NewEntry>, Vec<Node>);

/// A storage backend. Implementations must make `append` atomic and serialised per log
/// across processes, and must refuse to change or delete what they stored.
pub trait Store: Send + Sync {
    /// Runs `f` inside one write transaction on `log` (created when new) and commits when it
    /// returns Ok; nothing is written when it returns Err. Returns only after a durable commit.
    fn append(&self, log: &str, f: &mut dyn FnMut(&mut dyn AppendTx) -> Result<()>) -> Result<()>;

    fn head(&self, log: &str) -> Result<Head>;
    fn logs(&self) -> Result<Vec<String>>;
    fn entry(&self, log: &str, seq: u64) -> Result<Option<StoredEntry>>;
    fn entry_by_id(&self, log: &str, event_id: &str) -> Result<Option<StoredEntry>>;
    /// Calls `f` on every entry from `from` in seq order, until it returns false.
    fn scan(
        &self,
        log: &str,
        from: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<bool>,
    ) -> Result<()>;
    /// Runs `f` with hash-row reads on a consistent snapshot.
    fn read_nodes(
        &self,
        log: &str,
        f: &mut dyn FnMut(&mut dyn NodeRows) -> Result<()>,
    ) -> Result<()>;
    /// Every stored node of the log.
    fn nodes(&self, log: &str) -> Result<Vec<Node>>;

    /// Calls `f` on every entry matching `query`, in its order, until it returns false or
    /// `query.limit` rows were given. Streams: memory does not grow with the result.
    fn query(
        &self,
        log: &str,
        query: &crate::query::Query,
        f: &mut dyn FnMut(crate::query::QueryRow) -> Result<bool>,
    ) -> Result<()>;

    fn add_checkpoint(
        &self,
        log: &str,
        size: u64,
        root: &Hash,
        note: &str,
        created_at: i64,
    ) -> Result<StoredCheckpoint>;
    /// Rows of the key table (outside the chain, see `keys`) for these subject refs.
    fn subject_keys(&self, log: &str, refs: &[String]) -> Result<Vec<crate::keys::StoredKey>>;
    /// Adds key rows, committed before it returns; a subject that has a key already keeps it.
    fn add_subject_keys(&self, log: &str, keys: &[crate::keys::StoredKey]) -> Result<()>;
    /// Deletes a subject's key row (the one deletion aitrail makes) and scrubs its bytes
    /// from free pages and journals where the backend can.
    fn erase_subject_key(&self, log: &str, subject_ref: &str) -> Result<crate::keys::Shredded>;

    /// All checkpoints of the log, oldest first.
    fn checkpoints(&self, log: &str) -> Result<Vec<StoredCheckpoint>>;
    fn latest_checkpoint(&self, log: &str) -> Result<Option<StoredCheckpoint>>;

    // Retention (see `retention`). Entries leave the hot store only as whole archived
    // segments, oldest first, so the retired seqs are always a prefix `0..retired_end`.

    /// Archive segments recorded for the log, by first seq.
    fn segments(&self, log: &str) -> Result<Vec<crate::retention::Segment>>;
    /// In one transaction: records `segment` and the hashes of its entries (`rows`, in seq
    /// order, exactly its range), then drops the range's hot rows (those the backend can:
    /// PostgreSQL drops a day's partition once every log's rows in it are retired).
    fn retire(
        &self,
        log: &str,
        segment: &crate::retention::Segment,
        rows: &[crate::retention::Retired],
    ) -> Result<()>;
    /// Retired rows with seqs in `from..to`, in seq order.
    fn retired(&self, log: &str, from: u64, to: u64) -> Result<Vec<crate::retention::Retired>>;
    /// The retired row of an event id, if it left the hot store.
    fn retired_event(&self, log: &str, event_id: &str)
        -> Result<Option<crate::retention::Retired>>;
    /// Expiries recorded for the log, by first seq.
    fn expiries(&self, log: &str) -> Result<Vec<crate::retention::Expiry>>;
    fn add_expiry(&self, log: &str, expiry: &crate::retention::Expiry) -> Result<()>;
    /// Every legal hold of the log (released ones too), oldest first.
    fn holds(&self, log: &str) -> Result<Vec<crate::retention::Hold>>;
    /// Adds a hold; an id the log already has is an error.
    fn add_hold(&self, log: &str, hold: &crate::retention::Hold) -> Result<()>;
    /// Records the release of a hold (an insert: holds are never changed).
    fn release_hold(&self, log: &str, release: &crate::retention::Release) -> Result<()>;
    /// Waits for the store's retention lock and holds it until the guard is dropped, so
    /// retention runs (`aitrail retention run`, `serve`'s schedule, in any process) take
    /// turns: two at once would plan the same work and both record an expiry. Calls
    /// `waiting` once, before it waits, when another run holds the lock.
    fn retention_lock(&self, waiting: &mut dyn FnMut()) -> Result<Box<dyn Send>>;
}
