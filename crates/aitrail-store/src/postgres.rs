//! The PostgreSQL backend: entries in `aitrail.entries`, partitioned by day of `recorded_at`
//! with partitions created ahead; write-once (triggers refuse UPDATE, DELETE and TRUNCATE to
//! everyone, the application role holds only SELECT and INSERT); appends by binary COPY in
//! one transaction per group commit (a large one's entries in a second transaction that
//! commits just before it: `EntriesTx`), serialised per log across processes by an advisory
//! lock. Schema and migrations: `schema`; URLs and scratch databases: `scratch`.
//!
//! Like every backend it only stores: sequencing, hashing and verification stay above the
//! `Store` trait, shared with SQLite, and the conformance suite holds both to one contract.
//!
//! Multi-process safety: `append` opens a READ COMMITTED transaction, takes
//! `pg_advisory_xact_lock` on the log's name, and only then lets the sequencer read the head.
//! A writer in another process that held the lock committed before releasing it, and every
//! statement after the lock takes a fresh snapshot, so the head read is the latest: no fork,
//! no gap, no repeated seq. The database enforces the same itself over all partitions:
//! `aitrail.entry_spans` (one row per group commit; a log's spans are one run from 0) refuses
//! a repeated or skipped seq, `aitrail.entry_keys` a repeated event id. Entries a stop left
//! without keys are given keys and a span under the lock before the head is read
//! (`repair_keys`).

mod conn;
mod copy;
mod keys;
mod retention;
pub mod schema;
pub mod scratch;
mod search;
mod tokens;

use crate::error::{Result, StoreError};
use crate::query::{Query, QueryRow};
use crate::store::{
    to_hash, AppendTx, Chunk, Head, NewEntry, Node, NodeRows, Store, StoredCheckpoint, StoredEntry,
};
use ::postgres::error::SqlState;
use ::postgres::types::{ToSql, Type};
use ::postgres::{CopyInWriter, GenericClient, IsolationLevel, Row, Transaction};
use aitrail_core::merkle::Hash;
use conn::{connect, lock, prepared, Conn, Pool, Pooled};
use copy::CopyBuffer;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use uuid::Uuid;

pub use conn::{describe, Micros};

/// The PostgreSQL client crate (sync `postgres` 0.19), for callers that talk to the same
/// database directly: benchmarks, and tests that play the attacker.
pub use ::postgres as client;
pub use schema::{AppRole, Migrated, SCHEMA_VERSION};
pub use scratch::{display_url, ScratchDatabase};

/// Days of partitions created ahead of today (UTC).
pub const AHEAD_DAYS: i64 = 7;
/// Partitions are extended when fewer than this many days ahead remain.
const REFRESH_DAYS: i64 = 2;

const DAY_MICROS: i64 = 86_400_000_000;
/// Rows fetched per round trip by scans and queries.
const FETCH_ROWS: i32 = 1024;
/// The role `init` creates for the application unless told otherwise.
pub const DEFAULT_APP_ROLE: &str = "aitrail_app";

/// The UTC day (days since 1970-01-01) of Unix microseconds.
pub fn day_of(micros: i64) -> i64 {
    micros.div_euclid(DAY_MICROS)
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

// ---------------------------------------------------------------------------------------------
// SQL
// ---------------------------------------------------------------------------------------------

/// Read by `stored_entry`.
pub(crate) const ENTRY_COLUMNS: &str = "seq, event_id, recorded_at, entry, leaf_hash, chain_hash";

/// The log's lock ($1: `aitrail log:NAME`), held to the end of the transaction; then a
/// barrier on its second key ($2: `aitrail log entries:NAME`): it waits until every
/// `EntriesTx` of an earlier append has ended (committed or rolled back) before the head
/// is read.
/// The transaction may sit idle while a second connection streams (`EntriesTx`): no idle
/// timeout of the server's may end it then. Also returns the schema version: a process
/// started before `init` migrated the database stops writing at its next group commit.
/// Waits at most $3 (`LOCK_WAIT_MS`) for the two (then `append` settles any group a stopped writer
/// left prepared, which holds the log's lock until then, and tries again; see `TwoPhase`);
/// the session's own `lock_timeout` applies again afterwards.
const LOCK_LOG: &str = "WITH t AS MATERIALIZED (SELECT current_setting('lock_timeout') AS was, \
        set_config('lock_timeout', $3, true)), \
    l AS MATERIALIZED (SELECT was, pg_advisory_xact_lock(hashtextextended($1, 0)) FROM t), \
    b AS MATERIALIZED (SELECT was, pg_advisory_lock(hashtextextended($2, 0)) FROM l) \
    SELECT pg_advisory_unlock(hashtextextended($2, 0)), \
        set_config('idle_in_transaction_session_timeout', '0', true), \
        (SELECT max(version) FROM aitrail.schema_migrations), \
        set_config('lock_timeout', was, true) FROM b";
/// How long an append first waits for the log's lock before it looks for a group left
/// prepared; each later wait is twice as long, up to `LOCK_WAIT_MAX_MS` (a writer that gave
/// up queues again behind the others).
const LOCK_WAIT_MS: u64 = 1000;
const LOCK_WAIT_MAX_MS: u64 = 16_000;
/// Groups left prepared (`TwoPhase`) in this database, of the log named $1 or of every log
/// (NULL): name, owner, whether this role may finish it, the log's id and name.
const PREPARED_GROUPS: &str = "SELECT p.gid, p.owner::text, \
        p.owner = current_user OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user), \
        l.id, l.name \
    FROM pg_prepared_xacts p JOIN aitrail.logs l ON starts_with(p.gid, 'aitrail:' || l.id || ':') \
    WHERE p.database = current_database() AND ($1::text IS NULL OR l.name = $1) ORDER BY p.gid";
/// A barrier on the log's second key ($1, see `LOCK_LOG`): every `EntriesTx` of the log has
/// ended (committed or rolled back) once it returns. Run outside a transaction: the lock goes
/// with the statement's own, even should the statement be cancelled.
const SIDE_BARRIER: &str = "SELECT pg_advisory_xact_lock(hashtextextended($1, 0))";
/// Whether the group from seq $2 has its span (its log transaction committed), and whether
/// its prepared transaction ($3) is still there.
const SETTLED: &str =
    "SELECT EXISTS (SELECT 1 FROM aitrail.entry_spans WHERE log_id = $1 AND first_seq = $2), \
        EXISTS (SELECT 1 FROM pg_prepared_xacts WHERE gid = $3)";
/// How many of a prepared group's first entries the side committed (`TwoPhase`).
const SIDE_ROWS: &str = "SELECT count(*) FROM aitrail.entries \
    WHERE log_id = $1 AND seq >= $2 AND seq < $3 AND recorded_at = $4";

/// An `EntriesTx` takes the second key shared ($1), then checks that the log's lock ($2) is
/// still held by the append's own backend ($3): should that backend have gone (and with it
/// the lock, to another writer), the side refuses to go on.
/// (pg_locks is read in the projection over `s`, so only once the shared lock is held.)
const SIDE_LOCK: &str = "WITH s AS MATERIALIZED (SELECT pg_advisory_xact_lock_shared(hashtextextended($1, 0)), \
        hashtextextended($2, 0) AS key) \
    SELECT EXISTS (SELECT 1 FROM pg_locks l WHERE l.locktype = 'advisory' AND l.pid = $3 AND l.granted \
        AND l.objsubid = 1 AND l.classid = ((s.key >> 32) & 4294967295)::oid \
        AND l.objid = (s.key & 4294967295)::oid) FROM s";
const LOG_ID: &str = "SELECT id FROM aitrail.logs WHERE name = $1";
const LOG_CREATE: &str =
    "INSERT INTO aitrail.logs (name) VALUES ($1) ON CONFLICT (name) DO NOTHING RETURNING id";
/// The log's last span: the head's seq and recorded_at.
const SPAN_LAST: &str = "SELECT next_seq - 1, last_at FROM aitrail.entry_spans WHERE log_id = $1 ORDER BY first_seq DESC LIMIT 1";
/// The recorded_at bounds of the span holding seq $2.
const SPAN_OF: &str =
    "SELECT first_at, last_at FROM (SELECT first_at, last_at, next_seq FROM aitrail.entry_spans \
    WHERE log_id = $1 AND first_seq <= $2 ORDER BY first_seq DESC LIMIT 1) s WHERE next_seq > $2";
/// A lower bound of seq $2's recorded_at and an upper bound of seq $3's (recorded_at never
/// decreases along a log), from the spans holding them.
const SPAN_BOUNDS: &str = "SELECT \
    (SELECT first_at FROM aitrail.entry_spans WHERE log_id = $1 AND first_seq <= $2 ORDER BY first_seq DESC LIMIT 1), \
    (SELECT last_at FROM (SELECT last_at, next_seq FROM aitrail.entry_spans \
        WHERE log_id = $1 AND first_seq <= $3 ORDER BY first_seq DESC LIMIT 1) s WHERE next_seq > $3)";
const SPAN_INSERT: &str = "INSERT INTO aitrail.entry_spans (log_id, first_seq, next_seq, first_at, last_at) VALUES ($1, $2, $3, $4, $5)";
/// A small group's span and keys in one statement (one round trip, as its keys alone).
const SPAN_AND_KEYS_INSERT: &str = "WITH span AS (INSERT INTO aitrail.entry_spans \
    (log_id, first_seq, next_seq, first_at, last_at) VALUES ($1, $2, $3, $4, $5)) \
    INSERT INTO aitrail.entry_keys (log_id, seq, event_id, recorded_at) \
    SELECT $1, * FROM unnest($6::int8[], $7::uuid[], $8::timestamptz[])";
/// Keys of a group this large go by COPY (and its span in a statement of its own).
const KEYS_COPY_MIN: usize = 1024;
const KEY_BY_IDS: &str =
    "SELECT seq, recorded_at FROM aitrail.entry_keys WHERE log_id = $1 AND event_id = ANY($2)";
/// The partitions of days $3 to $4 (a key's or a span's).
const ENTRY_IN: &str = "SELECT seq, event_id, recorded_at, entry, leaf_hash, chain_hash FROM aitrail.entries WHERE log_id = $1 AND seq = $2 AND recorded_at >= $3 AND recorded_at <= $4";
/// Every partition: only when the key's or span's days did not hold the row (tampering).
const ENTRY_ANY_DAY: &str = "SELECT seq, event_id, recorded_at, entry, leaf_hash, chain_hash FROM aitrail.entries WHERE log_id = $1 AND seq = $2 ORDER BY recorded_at LIMIT 1";
const HEAD_AT: &str = "SELECT chain_hash, recorded_at FROM aitrail.entries WHERE log_id = $1 AND seq = $2 AND recorded_at = $3";
/// The first entry after the head, on the head's day or later: one whose key never
/// committed (see `EntriesTx`).
const KEYLESS_NEXT: &str =
    "SELECT 1 FROM aitrail.entries WHERE log_id = $1 AND seq = $2 AND recorded_at >= $3 LIMIT 1";
/// The entries from the head on: how many, their seq range, the first one's hashes.
const KEYLESS_RUN: &str = "SELECT count(*), count(DISTINCT seq), min(seq), max(seq), \
    (SELECT leaf_hash FROM aitrail.entries WHERE log_id = $1 AND seq = $2 AND recorded_at >= $3 LIMIT 1), \
    (SELECT chain_hash FROM aitrail.entries WHERE log_id = $1 AND seq = $2 AND recorded_at >= $3 LIMIT 1) \
    FROM aitrail.entries WHERE log_id = $1 AND seq >= $2 AND recorded_at >= $3";
/// The keys of every entry from the head on that has none (`repair_keys`; a writer of schema
/// version 5 still running after the migration writes keys without a span).
const KEYS_REPAIR: &str = "INSERT INTO aitrail.entry_keys (log_id, seq, event_id, recorded_at) \
    SELECT log_id, seq, event_id, recorded_at FROM aitrail.entries e WHERE log_id = $1 AND seq >= $2 AND recorded_at >= $3 \
    AND NOT EXISTS (SELECT 1 FROM aitrail.entry_keys k WHERE k.log_id = e.log_id AND k.event_id = e.event_id AND k.seq = e.seq)";
/// Their span (`repair_keys` checked that they are one run).
const SPAN_REPAIR: &str = "INSERT INTO aitrail.entry_spans (log_id, first_seq, next_seq, first_at, last_at) SELECT $1, min(seq), max(seq) + 1, min(recorded_at), max(recorded_at) FROM aitrail.entries WHERE log_id = $1 AND seq >= $2 AND recorded_at >= $3";
const HEAD_ANY_DAY: &str = "SELECT seq, chain_hash, recorded_at FROM aitrail.entries WHERE log_id = $1 ORDER BY seq DESC LIMIT 1";
const SCAN: &str = "SELECT seq, event_id, recorded_at, entry, leaf_hash, chain_hash FROM aitrail.entries WHERE log_id = $1 AND seq >= $2 ORDER BY seq";
const LEAVES_IN_DAYS: &str = "SELECT leaf_hash FROM aitrail.entries WHERE log_id = $1 AND seq >= $2 AND seq < $3 AND recorded_at >= $4 AND recorded_at <= $5 ORDER BY seq";
const LEAVES_ANY_DAY: &str = "SELECT leaf_hash FROM aitrail.entries WHERE log_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq";
const NODE_HASHES: &str = "SELECT hash FROM aitrail.nodes WHERE log_id = $1 AND level = $2 AND idx >= $3 AND idx < $4 ORDER BY idx";
const NODES_ALL: &str = "SELECT level, idx, hash FROM aitrail.nodes WHERE log_id = $1";
const NODES_INSERT: &str = "INSERT INTO aitrail.nodes (log_id, level, idx, hash) SELECT $1, * FROM unnest($2::int4[], $3::int8[], $4::bytea[])";
const CHECKPOINT_INSERT: &str = "INSERT INTO aitrail.checkpoints (log_id, size, root, note, created_at) VALUES ($1, $2, $3, $4, $5)";
const CHECKPOINT_COUNT: &str = "SELECT count(*) FROM aitrail.checkpoints WHERE log_id = $1";
const CHECKPOINTS: &str =
    "SELECT size, root, note, created_at FROM aitrail.checkpoints WHERE log_id = $1 ORDER BY size";
const CHECKPOINT_LATEST: &str = "SELECT size, root, note, created_at, (SELECT count(*) FROM aitrail.checkpoints WHERE log_id = $1) FROM aitrail.checkpoints WHERE log_id = $1 ORDER BY size DESC LIMIT 1";

/// The binary COPY of entry keys (see `schema`: uniqueness across partitions).
const COPY_KEYS: &str =
    "COPY aitrail.entry_keys (log_id, seq, event_id, recorded_at) FROM STDIN (FORMAT binary)";
const KEY_TYPES: &[Type] = &[Type::INT4, Type::INT8, Type::UUID, Type::TIMESTAMPTZ];

/// The columns of a binary COPY of entry rows (see `copy_entries`).
macro_rules! entry_copy_columns {
    () => {
        "log_id, seq, event_id, recorded_at, occurred_at, type, task_id, actor_id, model_name, \
         model_version, prompt_version, decision, subject_ref, entry, leaf_hash, chain_hash"
    };
}
const ENTRY_COPY_COLUMNS: &str = entry_copy_columns!();
/// The store's COPY of entry rows (prepared once per connection, as `COPY_KEYS`).
const COPY_ENTRIES: &str = concat!(
    "COPY aitrail.entries (",
    entry_copy_columns!(),
    ") FROM STDIN (FORMAT binary)"
);
const ENTRY_TYPES: &[Type] = &[
    Type::INT4,
    Type::INT8,
    Type::UUID,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::BYTEA,
    Type::BYTEA,
    Type::BYTEA,
];

// ---------------------------------------------------------------------------------------------
// Rows
// ---------------------------------------------------------------------------------------------

/// A row of `ENTRY_COLUMNS`.
fn stored_entry(row: &Row) -> Result<StoredEntry> {
    Ok(StoredEntry {
        seq: row.try_get::<_, i64>(0)? as u64,
        event_id: row.try_get::<_, Uuid>(1)?.to_string(),
        recorded_at: row.try_get::<_, Micros>(2)?.0,
        entry: row.try_get(3)?,
        leaf_hash: row.try_get(4)?,
        chain_hash: row.try_get(5)?,
    })
}

pub(crate) fn seq_param(seq: u64) -> Result<i64> {
    i64::try_from(seq).map_err(|_| {
        StoreError::Schema(format!(
            "seq {seq} does not fit the bigint seqs have in this store"
        ))
    })
}

fn event_uuid(id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|e| StoreError::Corrupt(format!("event id {id:?}: {e}")))
}

/// Encodes `entries` of the log `log_id` as rows of `aitrail.entries`' columns.
fn push_entries(copy: &mut CopyBuffer, log_id: i32, entries: &[NewEntry]) -> Result<()> {
    for e in entries {
        let (leaf, chain): (&[u8], &[u8]) = (&e.leaf_hash, &e.chain_hash);
        copy.push(&[
            &log_id,
            &seq_param(e.seq)?,
            &event_uuid(&e.event_id)?,
            &Micros(e.recorded_at),
            &Micros(e.occurred_at),
            &e.event_type,
            &e.task_id,
            &e.index.actor_id,
            &e.index.model_name,
            &e.index.model_version,
            &e.index.prompt_version,
            &e.index.decision,
            &e.index.subject_ref,
            &e.entry,
            &leaf,
            &chain,
        ])?;
    }
    Ok(())
}

/// One row of `entry_keys`: event id, seq, recorded_at.
type Key = (Uuid, i64, Micros);

/// A run of consecutive seqs written together: one row of `entry_spans`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    first: i64,
    next: i64,
    first_at: Micros,
    last_at: Micros,
}

/// What goes with a group's entries in the log's own transaction: their keys (unique
/// (log, event id) over all partitions) and their span (no seq twice or skipped).
#[derive(Default)]
struct Keys {
    rows: Vec<Key>,
    span: Option<Span>,
}

impl Keys {
    /// Adds the keys of `entries`, which must continue the span: the next seq, recorded no
    /// earlier.
    fn add(&mut self, entries: &[NewEntry]) -> Result<()> {
        self.rows.reserve(entries.len());
        for e in entries {
            let (seq, at) = (seq_param(e.seq)?, Micros(e.recorded_at));
            match &mut self.span {
                None => {
                    self.span = Some(Span {
                        first: seq,
                        next: seq + 1,
                        first_at: at,
                        last_at: at,
                    })
                }
                Some(span) if span.next == seq && span.last_at <= at => {
                    span.next = seq + 1;
                    span.last_at = at;
                }
                Some(span) => {
                    return Err(StoreError::Corrupt(format!(
                        "entry seq {seq} does not follow seq {} in its group commit (or is recorded earlier)",
                        span.next - 1
                    )))
                }
            }
            self.rows.push((event_uuid(&e.event_id)?, seq, at));
        }
        Ok(())
    }

    /// Writes the keys in event-id order (the server then inserts them into the event-id
    /// index in one sweep instead of at random places; kept on the bench's evidence, within
    /// its run-to-run noise: BENCHMARKS.md) and the span: a large group's keys in one binary
    /// COPY, a small group's with its span in one statement. A stored event id is refused
    /// as `DuplicateEventId`; a seq the log holds, or one that does not follow its last span,
    /// is refused by `entry_spans`.
    fn send(mut self, tx: &mut Transaction<'_>, cache: &mut Cache, log_id: i32) -> Result<()> {
        let Some(span) = self.span else {
            return Ok(());
        };
        self.rows.sort_unstable_by_key(|k| k.0);
        let span_params: [&(dyn ToSql + Sync); 5] = [
            &log_id,
            &span.first,
            &span.next,
            &span.first_at,
            &span.last_at,
        ];
        if self.rows.len() < KEYS_COPY_MIN {
            let seqs: Vec<i64> = self.rows.iter().map(|k| k.1).collect();
            let ids: Vec<Uuid> = self.rows.iter().map(|k| k.0).collect();
            let ats: Vec<Micros> = self.rows.iter().map(|k| k.2).collect();
            let stmt = prepared(tx, cache, SPAN_AND_KEYS_INSERT)?;
            let mut params = span_params.to_vec();
            params.extend([&seqs as &(dyn ToSql + Sync), &ids, &ats]);
            tx.execute(&stmt, &params)
                .map_err(|e| keys_error(e, &span))?;
            return Ok(());
        }
        let mut copy = CopyBuffer::new(KEY_TYPES);
        for (id, seq, at) in &self.rows {
            copy.push(&[&log_id, seq, id, at])?;
        }
        let stmt = prepared(tx, cache, COPY_KEYS)?;
        copy.send(tx, &stmt).map_err(insert_error)?;
        let stmt = prepared(tx, cache, SPAN_INSERT)?;
        tx.execute(&stmt, &span_params)
            .map_err(|e| keys_error(e, &span))?;
        Ok(())
    }
}

/// A group's keys or span refused: a stored event id (`insert_error`), or seqs the log holds
/// or that do not follow its last span (`entry_spans`).
fn keys_error(err: ::postgres::Error, span: &Span) -> StoreError {
    match err.as_db_error().and_then(|db| db.constraint()) {
        Some("entry_spans_first" | "entry_spans_next" | "entry_spans_follows") => {
            StoreError::Commit(format!(
                "seqs {} to {} are already recorded in this log or do not follow its last entry ({})",
                span.first,
                span.next - 1,
                crate::postgres::describe(&err)
            ))
        }
        _ => insert_error(err.into()),
    }
}

/// The binary COPY statement of entry rows into `table`.
fn copy_entries_sql(table: &str) -> String {
    format!("COPY {table} ({ENTRY_COPY_COLUMNS}) FROM STDIN (FORMAT binary)")
}

/// Writes `entries` of the log `log_id` into `table` (`aitrail.entries`, or a table of the
/// same columns) in one binary COPY inside `tx`; returns the rows written. Public so
/// benchmarks write exactly what the store writes, the same way.
pub fn copy_entries(
    tx: &mut Transaction<'_>,
    table: &str,
    log_id: i32,
    entries: &[NewEntry],
) -> Result<u64> {
    let mut copy = CopyBuffer::new(ENTRY_TYPES);
    push_entries(&mut copy, log_id, entries)?;
    copy.send(tx, &copy_entries_sql(table))
}

/// Writes the keys of `entries` (consecutive seqs) into `aitrail.entry_keys` in one binary
/// COPY inside `tx`, and their span into `aitrail.entry_spans`, as the store does.
pub fn copy_keys(tx: &mut Transaction<'_>, log_id: i32, entries: &[NewEntry]) -> Result<()> {
    let mut keys = Keys::default();
    keys.add(entries)?;
    keys.send(tx, &mut Cache::new(), log_id)
}

/// A stored event id refused by `entry_keys_event`: `DuplicateEventId`, which the sequencer
/// answers by redoing the group commit with lookups. Anything else stays an error.
fn insert_error(err: StoreError) -> StoreError {
    let StoreError::Postgres(pg) = &err else {
        return err;
    };
    match pg.as_db_error() {
        Some(db)
            if *db.code() == SqlState::UNIQUE_VIOLATION
                && db.constraint() == Some("entry_keys_event") =>
        {
            // DETAIL: Key (log_id, event_id)=(1, 0190f1f0-...) already exists.
            let id = db
                .detail()
                .and_then(|d| d.split_once("=("))
                .and_then(|(_, rest)| rest.split_once(", "))
                .and_then(|(_, rest)| rest.split_once(')'))
                .map_or_else(|| "(unknown)".to_owned(), |(id, _)| id.to_owned());
            StoreError::DuplicateEventId(id)
        }
        _ => err,
    }
}

// ---------------------------------------------------------------------------------------------
// Reads shared by transactions and plain connections
// ---------------------------------------------------------------------------------------------

type Cache = HashMap<&'static str, ::postgres::Statement>;

fn head_of<C: GenericClient>(c: &mut C, cache: &mut Cache, log_id: i32) -> Result<Head> {
    let last = prepared(c, cache, SPAN_LAST)?;
    if let Some(key) = c.query_opt(&last, &[&log_id])? {
        let seq: i64 = key.try_get(0)?;
        let at: Micros = key.try_get(1)?;
        let stmt = prepared(c, cache, HEAD_AT)?;
        if let Some(row) = c.query_opt(&stmt, &[&log_id, &seq, &at])? {
            return Ok(Head {
                size: seq as u64 + 1,
                chain_hash: to_hash(row.try_get(0)?),
                recorded_at: row.try_get::<_, Micros>(1)?.0,
            });
        }
        // The last entry left the hot store: its retired row is the head (even when an older
        // day of this log is still in a partition another log keeps from being dropped).
        if let Some(r) = retention::retired(c, log_id, seq as u64, seq as u64 + 1)?.pop() {
            return Ok(Head {
                size: r.seq + 1,
                chain_hash: r.chain_hash,
                recorded_at: r.recorded_at,
            });
        }
        // The span's day does not hold the row: read what the partitions hold.
        let stmt = prepared(c, cache, HEAD_ANY_DAY)?;
        return Ok(match c.query_opt(&stmt, &[&log_id])? {
            Some(row) => Head {
                size: row.try_get::<_, i64>(0)? as u64 + 1,
                chain_hash: to_hash(row.try_get(1)?),
                recorded_at: row.try_get::<_, Micros>(2)?.0,
            },
            None => Head::default(),
        });
    }
    Ok(Head::default())
}

/// The entry at `seq`, recorded from `from` to `to` as its key or span says (any day when
/// those lack it).
fn entry_in<C: GenericClient>(
    c: &mut C,
    cache: &mut Cache,
    log_id: i32,
    seq: i64,
    (from, to): (Micros, Micros),
) -> Result<Option<StoredEntry>> {
    let stmt = prepared(c, cache, ENTRY_IN)?;
    if let Some(row) = c.query_opt(&stmt, &[&log_id, &seq, &from, &to])? {
        return Ok(Some(stored_entry(&row)?));
    }
    let stmt = prepared(c, cache, ENTRY_ANY_DAY)?;
    c.query_opt(&stmt, &[&log_id, &seq])?
        .map(|row| stored_entry(&row))
        .transpose()
}

fn entry_by_seq<C: GenericClient>(
    c: &mut C,
    cache: &mut Cache,
    log_id: i32,
    seq: u64,
) -> Result<Option<StoredEntry>> {
    let Ok(seq) = i64::try_from(seq) else {
        return Ok(None);
    };
    let stmt = prepared(c, cache, SPAN_OF)?;
    let Some(span) = c.query_opt(&stmt, &[&log_id, &seq])? else {
        return Ok(None);
    };
    entry_in(c, cache, log_id, seq, (span.try_get(0)?, span.try_get(1)?))
}

/// The ids that are UUIDs (no stored event has any other).
pub(crate) fn uuids(ids: &[String]) -> Vec<Uuid> {
    ids.iter()
        .filter_map(|id| Uuid::parse_str(id).ok())
        .collect()
}

fn entries_by_ids<C: GenericClient>(
    c: &mut C,
    cache: &mut Cache,
    log_id: i32,
    ids: &[String],
) -> Result<Vec<StoredEntry>> {
    let uuids = uuids(ids);
    if uuids.is_empty() {
        return Ok(Vec::new());
    }
    let stmt = prepared(c, cache, KEY_BY_IDS)?;
    let keys = c.query(&stmt, &[&log_id, &uuids])?;
    let mut out = Vec::with_capacity(keys.len());
    for key in keys {
        let at: Micros = key.try_get(1)?;
        if let Some(e) = entry_in(c, cache, log_id, key.try_get(0)?, (at, at))? {
            out.push(e);
        }
    }
    Ok(out)
}

fn hash_rows<C: GenericClient>(
    c: &mut C,
    cache: &mut Cache,
    log_id: i32,
    level: u32,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>> {
    let want = to.saturating_sub(from) as usize;
    let (from_i, to_i) = (seq_param(from)?, seq_param(to)?);
    let mut retired = Vec::new();
    let rows = if level == 0 {
        // Retired seqs are a prefix of the log; their leaf hashes come first.
        retired = retention::retired_leaves(c, log_id, from_i, to_i)?;
        let from_i = from_i + retired.len() as i64;
        let want = want - retired.len();
        if want == 0 {
            return Ok(retired);
        }
        // recorded_at never decreases along a log, so the spans of the first and the last
        // seq bound the days to read. Should they not (tampering), every day is read.
        let stmt = prepared(c, cache, SPAN_BOUNDS)?;
        let bounds = c.query_one(&stmt, &[&log_id, &from_i, &(to_i - 1)])?;
        let (lo, hi): (Option<Micros>, Option<Micros>) = (bounds.try_get(0)?, bounds.try_get(1)?);
        let mut rows = Vec::new();
        if let (Some(lo), Some(hi)) = (lo, hi) {
            let stmt = prepared(c, cache, LEAVES_IN_DAYS)?;
            rows = c.query(&stmt, &[&log_id, &from_i, &to_i, &lo, &hi])?;
        }
        if rows.len() != want {
            let stmt = prepared(c, cache, LEAVES_ANY_DAY)?;
            rows = c.query(&stmt, &[&log_id, &from_i, &to_i])?;
        }
        rows
    } else {
        let stmt = prepared(c, cache, NODE_HASHES)?;
        c.query(&stmt, &[&log_id, &(level as i32), &from_i, &to_i])?
    };
    if retired.len() + rows.len() != want {
        return Err(StoreError::Corrupt(format!(
            "level {level} rows {from}..{to}: found {} of {want}",
            retired.len() + rows.len()
        )));
    }
    for r in &rows {
        retired.push(to_hash(r.try_get(0)?));
    }
    Ok(retired)
}

// ---------------------------------------------------------------------------------------------
// The store
// ---------------------------------------------------------------------------------------------

/// The PostgreSQL store. Open it with `PgStore::open` on a database `PgStore::init` prepared.
pub struct PgStore {
    pool: Pool,
    log_ids: Mutex<HashMap<String, i32>>,
    /// Days (since 1970-01-01) known to have a partition.
    covered: Mutex<BTreeSet<i64>>,
    /// Group commits whose entries went on a second connection (`EntriesTx`).
    two_connection_groups: AtomicU64,
    /// Of those, the ones whose rows the two connections shared, in two phases (`TwoPhase`).
    two_phase_groups: AtomicU64,
    /// The server allows prepared transactions (`max_prepared_transactions` above 0).
    server_prepares: bool,
    /// Large groups share their rows between two connections (`TwoPhase`).
    two_phase: AtomicBool,
}

/// What `PgStore::init` did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InitReport {
    pub migrated: Migrated,
    pub role: Option<AppRole>,
    /// Partitions created now (today and the days ahead).
    pub partitions_created: i32,
    /// The server's `max_prepared_transactions`: at 0, large group commits keep all their
    /// entries on one connection (`TwoPhase`).
    pub max_prepared_transactions: i32,
}

impl PgStore {
    /// How many group commits this store sent on two connections (see `EntriesTx`); the
    /// others went on one.
    pub fn two_connection_groups(&self) -> u64 {
        self.two_connection_groups.load(Ordering::Relaxed)
    }

    /// How many of those group commits shared their rows between the two connections and
    /// committed in two phases (see `TwoPhase`).
    pub fn two_phase_groups(&self) -> u64 {
        self.two_phase_groups.load(Ordering::Relaxed)
    }

    /// Whether large groups share their rows between two connections (`TwoPhase`): on
    /// when the server allows prepared transactions (`max_prepared_transactions` above 0).
    pub fn two_phase(&self) -> bool {
        self.two_phase.load(Ordering::Relaxed)
    }

    /// Turns `two_phase` off (a large group's entries then go on the second connection
    /// alone, its keys on the log's), or back on where the server allows it.
    pub fn set_two_phase(&self, on: bool) {
        self.two_phase
            .store(on && self.server_prepares, Ordering::Relaxed);
    }

    /// Brings the schema of the database at `url` up to date (versioned, idempotent
    /// migrations), creates today's partitions and those ahead, and, when `app_role` is given,
    /// creates that role (when the connected user may) and grants it SELECT and INSERT only.
    /// Run by the database owner (`aitrail init --store postgres://OWNER@...`).
    pub fn init(url: &str, app_role: Option<&str>) -> Result<InitReport> {
        let config = scratch::parse_url(url)?;
        let mut conn = connect(&config)?;
        // A group left prepared would hold locks a migration waits for: settled first, or
        // named (one this role may not settle).
        if schema::version(&mut conn.client)? > 0 {
            settle(&mut conn, None, true)?;
        }
        let migrated = schema::migrate(&mut conn.client)?;
        let role = app_role
            .map(|name| schema::setup_app_role(&mut conn.client, name))
            .transpose()?;
        let today = day_of(now_micros());
        let stmt = conn.client.prepare(schema::ENSURE_PARTITIONS)?;
        let created: i32 = conn
            .client
            .query_one(
                &stmt,
                &[&((today - 1) as i32), &((today + AHEAD_DAYS) as i32)],
            )?
            .try_get(0)?;
        Ok(InitReport {
            migrated,
            role,
            partitions_created: created,
            max_prepared_transactions: max_prepared_transactions(&mut conn.client)?,
        })
    }

    /// Opens the store at `url` (any role with the grants of the application role will do).
    /// Fails, saying what to run, when the database has no aitrail schema or another version.
    pub fn open(url: &str) -> Result<PgStore> {
        let mut config = scratch::parse_url(url)?;
        if config.get_application_name().is_none() {
            config.application_name("aitrail");
        }
        let mut store = PgStore {
            pool: Pool {
                config,
                state: Mutex::new((Vec::new(), 0)),
                freed: Condvar::new(),
            },
            log_ids: Mutex::new(HashMap::new()),
            covered: Mutex::new(BTreeSet::new()),
            two_connection_groups: Default::default(),
            two_phase_groups: Default::default(),
            server_prepares: false,
            two_phase: AtomicBool::new(false),
        };
        let prepares = {
            let mut conn = store.pool.get()?;
            let version = schema::version(&mut conn.client)?;
            if version == 0 {
                return Err(StoreError::Schema(format!(
                    "{} holds no aitrail schema: run `aitrail init --store URL` as the database owner first",
                    display_url(url)
                )));
            }
            if version > SCHEMA_VERSION {
                return Err(schema::newer_schema(version));
            }
            if version < SCHEMA_VERSION {
                return Err(StoreError::Schema(format!(
                    "{} has aitrail schema version {version}, this aitrail needs {SCHEMA_VERSION}: run `aitrail init --store URL` as the database owner to migrate",
                    display_url(url)
                )));
            }
            // Groups a writer of an earlier run left prepared would hold their logs' locks,
            // and their rows hold back vacuum.
            settle(&mut conn, None, false)?;
            max_prepared_transactions(&mut conn.client)?
        };
        store.server_prepares = prepares > 0;
        store.set_two_phase(true);
        store.ensure_ahead(now_micros())?;
        Ok(store)
    }

    /// Makes sure partitions exist from yesterday to `AHEAD_DAYS` ahead of `now` (UTC),
    /// calling the database only when fewer than `REFRESH_DAYS` remain.
    fn ensure_ahead(&self, now: i64) -> Result<()> {
        let today = day_of(now);
        if (today - 1..=today + REFRESH_DAYS).all(|d| self.covers(d)) {
            return Ok(());
        }
        self.ensure_days(&mut *self.pool.get()?, today - 1, today + AHEAD_DAYS)
    }

    /// Creates the partitions of days `first..=last` that are missing (on `conn`, outside
    /// any transaction of the caller's).
    fn ensure_days(&self, conn: &mut Conn, first: i64, last: i64) -> Result<()> {
        let Conn { client, cache, .. } = conn;
        let stmt = prepared(client, cache, schema::ENSURE_PARTITIONS)?;
        let days = |d: i64| {
            i32::try_from(d)
                .map_err(|_| StoreError::Schema(format!("day {d} is out of range for a partition")))
        };
        client.query_one(&stmt, &[&days(first)?, &days(last)?])?;
        lock(&self.covered).extend(first..=last);
        Ok(())
    }

    fn covers(&self, day: i64) -> bool {
        lock(&self.covered).contains(&day)
    }

    /// The id of `log`, None when no such log exists yet.
    fn log_id(&self, conn: &mut Conn, log: &str) -> Result<Option<i32>> {
        if let Some(id) = lock(&self.log_ids).get(log) {
            return Ok(Some(*id));
        }
        let stmt = prepared(&mut conn.client, &mut conn.cache, LOG_ID)?;
        let id: Option<i32> = conn
            .client
            .query_opt(&stmt, &[&log])?
            .map(|r| r.try_get(0))
            .transpose()?;
        if let Some(id) = id {
            lock(&self.log_ids).insert(log.to_owned(), id);
        }
        Ok(id)
    }

    /// One try of `append`: the transaction, the lock, the log, `f`, the commit.
    fn append_once(
        &self,
        conn: &mut Conn,
        log: &str,
        f: &mut dyn FnMut(&mut dyn AppendTx) -> Result<()>,
        (missing_day, two_phase, lock_waited): (&mut Option<i64>, &mut bool, &mut bool),
        lock_wait: &str,
    ) -> Result<()> {
        let known = lock(&self.log_ids).get(log).copied();
        let Conn { client, cache, pid } = conn;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::ReadCommitted)
            .start()?;
        let stmt = prepared(&mut tx, cache, LOCK_LOG)?;
        let lock_key = format!("aitrail log:{log}");
        let side_key = side_key(log);
        let locked = tx
            .query_one(&stmt, &[&lock_key, &side_key, &lock_wait])
            .inspect_err(|e| *lock_waited = e.code() == Some(&SqlState::LOCK_NOT_AVAILABLE))?;
        let version: Option<i32> = locked.try_get(2)?;
        if let Some(v) = version.filter(|v| *v > SCHEMA_VERSION) {
            return Err(schema::newer_schema(v));
        }
        // A log created in this transaction keeps its group on this connection: entries of
        // a second one would outlive a rollback of the log's row.
        let (log_id, new_log) = match known {
            Some(id) => (id, false),
            None => {
                let stmt = prepared(&mut tx, cache, LOG_CREATE)?;
                match tx.query_opt(&stmt, &[&log])? {
                    Some(row) => (row.try_get(0)?, true),
                    None => {
                        let stmt = prepared(&mut tx, cache, LOG_ID)?;
                        (tx.query_one(&stmt, &[&log])?.try_get(0)?, false)
                    }
                }
            }
        };
        let mut ptx = PgTx {
            tx: &mut tx,
            cache,
            log_id,
            store: self,
            missing_day,
            pending: None,
            entries_tx: None,
            split_rows: *two_phase && self.two_phase(),
            two_phase: None,
            side: (!new_log).then_some(SideLock {
                pid: *pid,
                lock_key: &lock_key,
                side_key: &side_key,
            }),
            failed: false,
        };
        f(&mut ptx)?;
        if ptx.failed {
            return Err(StoreError::Commit(
                "a group's entries failed on their connection; nothing was written".into(),
            ));
        }
        ptx.flush()?;
        // A group streamed on a second connection: its entries commit first, then the keys
        // with the lock (see `EntriesTx`).
        let (entries, group) = (ptx.entries_tx.take(), ptx.two_phase.take());
        drop(ptx);
        let split = entries.is_some();
        match (entries, group) {
            (Some(side), Some(group)) => {
                let gid = group.gid(log_id);
                if let Err(err) = tx.batch_execute(&format!("PREPARE TRANSACTION '{gid}'")) {
                    // Refused (a server restarted without prepared transactions, or holding
                    // as many as it allows): nothing was written, the next try goes without,
                    // and so does every later group once the server allows none.
                    *two_phase = false;
                    if err.code() == Some(&SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE) {
                        self.set_two_phase(false);
                    }
                    return Err(err.into());
                }
                TwoPhase::commit(tx, side, &gid, log_id)?;
                self.two_phase_groups.fetch_add(1, Ordering::Relaxed);
            }
            (Some(side), None) => {
                side.commit()?;
                tx.commit()?;
            }
            (None, _) => tx.commit()?,
        }
        if split {
            self.two_connection_groups.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.log_ids).insert(log.to_owned(), log_id);
        Ok(())
    }

    /// Runs `f` in a REPEATABLE READ, READ ONLY transaction: one snapshot for all its reads.
    fn read<T>(&self, f: impl FnOnce(&mut Transaction<'_>, &mut Cache) -> Result<T>) -> Result<T> {
        let mut conn = self.pool.get()?;
        let Conn { client, cache, .. } = &mut *conn;
        let mut tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()?;
        let out = f(&mut tx, cache)?;
        tx.commit()?;
        Ok(out)
    }
}

/// An open append transaction on one log.
struct PgTx<'a, 't, 's> {
    tx: &'a mut Transaction<'t>,
    cache: &'a mut Cache,
    log_id: i32,
    store: &'s PgStore,
    /// Set when a row's day has no partition yet: `append` creates it and tries again.
    missing_day: &'a mut Option<i64>,
    /// Rows inserted but not sent yet: the whole group commit goes in one COPY per table.
    pending: Option<Pending>,
    /// A streamed group's entries and nodes, sent on a second connection, not committed yet.
    entries_tx: Option<EntriesTx<'s>>,
    /// A large group may share its rows between the two connections (`TwoPhase`).
    split_rows: bool,
    /// Set when the group's rows went on both connections: it commits in two phases.
    two_phase: Option<TwoPhase>,
    /// What a second connection needs to join this append; None: the group stays here.
    side: Option<SideLock<'a>>,
    /// A streamed group failed on its second connection: this transaction must not commit.
    failed: bool,
}

/// The append's backend and the log's lock keys (see `LOCK_LOG`, `SIDE_LOCK`).
struct SideLock<'a> {
    pid: i32,
    lock_key: &'a str,
    side_key: &'a str,
}

/// A transaction on a second connection holding a streamed group commit's entries and their
/// Merkle nodes, while the log's own transaction (which holds its lock) takes the keys. One
/// COPY keeps one server backend, one core, busy; with the entries on one backend and the
/// keys on another, the keys' index work (the random event-id index, the price of
/// idempotency across partitions) runs beside the entries' instead of after it. Without a
/// free connection in the pool, or for a log created by this append, the group goes on the
/// log's connection alone, as before.
///
/// Commit order keeps the keys the authority on what is recorded: the entries commit first,
/// then the keys with the lock, so a key never names a missing entry. Should the process die
/// (or the keys' commit fail) in between, the whole group stands without keys, chained and
/// with its nodes, never acknowledged, as if the acknowledgement alone had been lost. The
/// next append on the log finds it under the lock (`repair_keys`) and writes its keys, and
/// a client resending the group gets the original receipts. Until then the head and reads
/// by seq or id stop at the last span (search and verify read the entries themselves).
///
/// Should the append's own backend go (and its lock with it) while this transaction is
/// open, the next writer must not read the head before this one has ended: each side holds
/// the log's second advisory key shared, which the next writer waits for (`LOCK_LOG`), and
/// refuses to start unless the append's backend still holds the log's lock (`SIDE_LOCK`).
struct EntriesTx<'a> {
    conn: Pooled<'a>,
    open: bool,
}

impl<'a> EntriesTx<'a> {
    /// Its commit does not wait for the disk: the keys' commit, sent only once this one
    /// returned, comes later in the write-ahead log, and waiting for it makes both durable
    /// (one flush per group commit, as on one connection). Should the server stop before
    /// that flush, the entries are lost or stand without keys, never acknowledged either way.
    fn begin(conn: Pooled<'a>, lock: &SideLock<'_>) -> Result<EntriesTx<'a>> {
        let mut side = EntriesTx { conn, open: true };
        let Conn { client, cache, .. } = &mut *side.conn;
        client.batch_execute(
            "BEGIN ISOLATION LEVEL READ COMMITTED; SET LOCAL synchronous_commit = off",
        )?;
        let stmt = prepared(client, cache, SIDE_LOCK)?;
        let held: bool = client
            .query_one(&stmt, &[&lock.side_key, &lock.lock_key, &lock.pid])?
            .try_get(0)?;
        if !held {
            return Err(StoreError::Commit(
                "the append's connection lost the log's lock; its group was not written".into(),
            ));
        }
        Ok(side)
    }

    fn commit(mut self) -> Result<()> {
        self.open = false;
        self.conn.client.batch_execute("COMMIT")?;
        Ok(())
    }
}

impl Drop for EntriesTx<'_> {
    fn drop(&mut self) {
        if self.open && self.conn.client.batch_execute("ROLLBACK").is_err() {
            // Its state is unknown: it must not go back to the pool inside a transaction.
            self.conn.close();
        }
    }
}

/// After a failed append: a cancel or timeout just as `LOCK_LOG`'s barrier was granted can
/// leave that session lock held, which would stall every writer of the log; pooled
/// connections hold no other session lock (retention's has a connection of its own).
fn drop_session_locks(conn: &mut Pooled<'_>) {
    if conn
        .client
        .batch_execute("SELECT pg_advisory_unlock_all()")
        .is_err()
    {
        conn.close();
    }
}

/// Writes the keys and the span of entries a split group commit stored but whose keys never
/// committed (see `EntriesTx`), under the log's lock; returns how many entries it gave a
/// span.
fn repair_keys(
    tx: &mut Transaction<'_>,
    cache: &mut Cache,
    log_id: i32,
    head: &Head,
) -> Result<u64> {
    let next = seq_param(head.size)?;
    let since = Micros(head.recorded_at);
    let stmt = prepared(tx, cache, KEYLESS_NEXT)?;
    if tx.query_opt(&stmt, &[&log_id, &next, &since])?.is_none() {
        return Ok(0);
    }
    // Only a run that continues the log: seqs from the head on, each once, no gap, the
    // first chained to the head (verify checks the rest, as for every entry).
    let stmt = prepared(tx, cache, KEYLESS_RUN)?;
    let run = tx.query_one(&stmt, &[&log_id, &next, &since])?;
    let (rows, distinct): (i64, i64) = (run.try_get(0)?, run.try_get(1)?);
    let (first, last): (Option<i64>, Option<i64>) = (run.try_get(2)?, run.try_get(3)?);
    let (leaf, chain): (Option<Vec<u8>>, Option<Vec<u8>>) = (run.try_get(4)?, run.try_get(5)?);
    let continues = match (leaf, chain) {
        (Some(leaf), Some(chain)) => {
            aitrail_core::chain::chain_hash(&head.chain_hash, &to_hash(&leaf)) == to_hash(&chain)
        }
        _ => false,
    };
    if rows != distinct || first != Some(next) || last != Some(next + rows - 1) || !continues {
        return Err(StoreError::Corrupt(format!(
            "{rows} entries from seq {next} have no keys and do not continue the log \
             (seqs {first:?} to {last:?}, {distinct} distinct, chained to the head: {continues}); \
             run aitrail verify"
        )));
    }
    let stmt = prepared(tx, cache, KEYS_REPAIR)?;
    tx.execute(&stmt, &[&log_id, &next, &since])?;
    let stmt = prepared(tx, cache, SPAN_REPAIR)?;
    tx.execute(&stmt, &[&log_id, &next, &since])?;
    Ok(rows as u64)
}

/// A large group whose rows the two connections share: its first chunks (about three
/// fifths of its rows) on the second connection (`EntriesTx`), the rest with its keys, span
/// and nodes on the log's. Both backends store entries at once, which one connection with
/// all the entries cannot match; for the group to stay all or nothing, the log's transaction
/// is prepared (`PREPARE TRANSACTION`, durable but undecided) before the side commits, and
/// committed (`COMMIT PREPARED`) after: the side's commit decides the group.
///
/// Should the writer stop in between, the prepared transaction keeps the log's lock, so no
/// other writer reads the head before the group is settled. A writer that waits `LOCK_WAIT_MS`
/// for the lock looks for prepared groups of the log (`settle`), waits until every side of
/// the log has ended, then commits the group when the side's rows are there and rolls it back
/// when they are not. The transaction's name says what to look for:
/// `aitrail:LOG_ID:FIRST_SEQ:SIDE_ROWS:RECORDED_AT:NONCE` (the rows of a group share one
/// recorded_at; a random nonce keeps the name unique in the cluster, and apart from a group
/// redone at the same seq).
/// Needs `max_prepared_transactions` above 0 on the server; otherwise (or with
/// `PgStore::set_two_phase(false)`) the side takes all of a group's entries (`EntriesTx`).
struct TwoPhase {
    first_seq: i64,
    side_rows: i64,
    recorded_at: i64,
    nonce: u64,
}

impl TwoPhase {
    fn prefix(log_id: i32) -> String {
        format!("aitrail:{log_id}:")
    }

    fn gid(&self, log_id: i32) -> String {
        let TwoPhase {
            first_seq,
            side_rows,
            recorded_at,
            nonce,
        } = self;
        format!(
            "{}{first_seq}:{side_rows}:{recorded_at}:{nonce}",
            TwoPhase::prefix(log_id)
        )
    }

    /// The group a gid of `log_id` names; None for any other name.
    fn parse(gid: &str, log_id: i32) -> Option<TwoPhase> {
        let rest = gid.strip_prefix(&TwoPhase::prefix(log_id))?;
        let mut fields = rest.split(':');
        let mut next = || fields.next()?.parse::<i64>().ok();
        let (first_seq, side_rows, recorded_at) = (next()?, next()?, next()?);
        let nonce = fields.next()?.parse().ok()?;
        let group = TwoPhase {
            first_seq,
            side_rows,
            recorded_at,
            nonce,
        };
        fields.next().is_none().then_some(group)
    }

    /// Once `tx` is prepared as `gid`: commits the side, then the prepared transaction.
    /// Whatever fails in between leaves the group to `settle`, unacknowledged: it is recorded
    /// if the side committed, and a resend then gets the original receipts.
    fn commit(tx: Transaction<'_>, mut side: EntriesTx<'_>, gid: &str, log_id: i32) -> Result<()> {
        // The log's connection is outside any transaction now: this COMMIT only draws a
        // warning from the server, and lets go of the connection.
        tx.commit()?;
        side.open = false;
        let Conn { client, cache, .. } = &mut *side.conn;
        let decided = match client.batch_execute("COMMIT") {
            Ok(()) => match client.batch_execute(&format!("COMMIT PREPARED '{gid}'")) {
                // Committed meanwhile, or being committed, by a writer that waited for the
                // log's lock (`settle` commits a group whose side committed, as this one did):
                // recorded once its span is. Asked again until then, for up to 30 s.
                Err(e) if finishing_elsewhere(&e) => {
                    let first_seq = TwoPhase::parse(gid, log_id).map(|g| g.first_seq);
                    let stmt = prepared(client, cache, SETTLED)?;
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
                    let (mut last, mut gone) = (e, false);
                    loop {
                        let row = client.query_one(&stmt, &[&log_id, &first_seq, &gid])?;
                        let (recorded, pending): (bool, bool) = (row.try_get(0)?, row.try_get(1)?);
                        // Gone: its span is read once more, in a snapshot taken after.
                        if recorded || gone || std::time::Instant::now() > deadline {
                            break if recorded { Ok(()) } else { Err(last) };
                        }
                        gone = !pending;
                        if pending {
                            std::thread::sleep(std::time::Duration::from_millis(5));
                            match client.batch_execute(&format!("COMMIT PREPARED '{gid}'")) {
                                Ok(()) => break Ok(()),
                                Err(e) if finishing_elsewhere(&e) => last = e,
                                Err(e) => break Err(e),
                            }
                        }
                    }
                }
                other => other,
            },
            Err(e) => Err(e),
        };
        if let Err(err) = decided {
            side.conn.close();
            return Err(StoreError::Commit(format!(
                "a group's commit was interrupted ({err}); the next append on the log settles \
                 it (recorded if its first part committed)"
            )));
        }
        Ok(())
    }
}

/// Settles the groups a writer left prepared (`TwoPhase`), of `log` or, with None, of every
/// log of the database: committed when the side's rows were committed, rolled back when none
/// were. A prepared transaction it may not settle (prepared by another role: only that role
/// or a superuser may finish it; or not named as aitrail names a group) is an error when
/// `strict`, else left alone (`PgStore::open`).
fn settle(conn: &mut Conn, log: Option<&str>, strict: bool) -> Result<()> {
    let Conn { client, cache, .. } = conn;
    let stmt = prepared(client, cache, PREPARED_GROUPS)?;
    let groups = client.query(&stmt, &[&log])?;
    for row in groups {
        let (gid, owner, may): (String, String, bool) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let (log_id, name): (i32, String) = (row.try_get(3)?, row.try_get(4)?);
        let group = TwoPhase::parse(&gid, log_id);
        if !strict && (group.is_none() || !may) {
            continue;
        }
        let Some(group) = group else {
            return Err(StoreError::Corrupt(format!(
                "the prepared transaction {gid} (role {owner}) is named like a group of log \
                 {name} but not as aitrail names them; see what it holds, then finish it by hand \
                 (COMMIT PREPARED or ROLLBACK PREPARED)"
            )));
        };
        if !may {
            return Err(StoreError::Commit(format!(
                "log {name} is held by the prepared transaction {gid} (role {owner}), which \
                 aitrail cannot settle as this role: aitrail run as {owner} or a superuser \
                 settles it (by hand: COMMIT PREPARED if the log holds its first {} entries \
                 from seq {}, else ROLLBACK PREPARED)",
                group.side_rows, group.first_seq
            )));
        }
        // Once every side of the log has ended, what a side committed is final.
        let stmt = prepared(client, cache, SIDE_BARRIER)?;
        client.query_one(&stmt, &[&side_key(&name)])?;
        let stmt = prepared(client, cache, SIDE_ROWS)?;
        let end = group.first_seq + group.side_rows;
        let rows: i64 = client
            .query_one(
                &stmt,
                &[&log_id, &group.first_seq, &end, &Micros(group.recorded_at)],
            )?
            .try_get(0)?;
        let verb = match rows {
            _ if rows == group.side_rows => "COMMIT",
            0 => "ROLLBACK",
            _ => {
                return Err(StoreError::Corrupt(format!(
                    "the prepared group {gid} expects {} entries from seq {}, the log holds \
                     {rows} of them; run aitrail verify",
                    group.side_rows, group.first_seq
                )))
            }
        };
        match client.batch_execute(&format!("{verb} PREPARED '{gid}'")) {
            // Settled meanwhile, or being settled, by its own writer or another process.
            Err(e) if finishing_elsewhere(&e) => {}
            other => other?,
        }
    }
    Ok(())
}

/// The server's `max_prepared_transactions`: above 0, large groups may commit in two phases.
pub fn max_prepared_transactions(client: &mut ::postgres::Client) -> Result<i32> {
    let value: String = client
        .query_one("SHOW max_prepared_transactions", &[])?
        .try_get(0)?;
    value.parse().map_err(|_| {
        StoreError::Schema(format!(
            "max_prepared_transactions is not a number: {value}"
        ))
    })
}

/// The log's second advisory key, held shared by its sides (`EntriesTx`, `LOCK_LOG`).
fn side_key(log: &str) -> String {
    format!("aitrail log entries:{log}")
}

/// COMMIT or ROLLBACK PREPARED found the transaction gone, or being finished by another
/// backend.
fn finishing_elsewhere(e: &::postgres::Error) -> bool {
    [
        SqlState::UNDEFINED_OBJECT,
        SqlState::OBJECT_NOT_IN_PREREQUISITE_STATE,
    ]
    .iter()
    .any(|c| e.code() == Some(c))
}

/// What a group commit inserted so far, encoded for COPY.
struct Pending {
    keys: Keys,
    entries: CopyBuffer,
    nodes: Vec<Node>,
}

impl PgTx<'_, '_, '_> {
    /// Sends what was inserted: keys first, so a stored event id or seq is refused before
    /// the entries go out; then the entries; then the nodes. Runs before any read inside the
    /// transaction and before the commit, so reads always see every insert.
    fn flush(&mut self) -> Result<()> {
        let Some(p) = self.pending.take() else {
            return Ok(());
        };
        p.keys.send(self.tx, self.cache, self.log_id)?;
        if p.entries.rows() > 0 {
            let stmt = prepared(self.tx, self.cache, COPY_ENTRIES)?;
            p.entries.send(self.tx, &stmt)?;
        }
        insert_nodes(self.tx, self.cache, self.log_id, &p.nodes)
    }
}

fn insert_nodes<C: GenericClient>(
    c: &mut C,
    cache: &mut Cache,
    log_id: i32,
    nodes: &[Node],
) -> Result<()> {
    if nodes.is_empty() {
        return Ok(());
    }
    let levels: Vec<i32> = nodes.iter().map(|n| n.level as i32).collect();
    let idx = nodes
        .iter()
        .map(|n| seq_param(n.index))
        .collect::<Result<Vec<i64>>>()?;
    let hashes: Vec<&[u8]> = nodes.iter().map(|n| &n.hash[..]).collect();
    let stmt = prepared(c, cache, NODES_INSERT)?;
    c.execute(&stmt, &[&log_id, &levels, &idx, &hashes])?;
    Ok(())
}

/// Refuses rows for a day without a known partition (`append` creates it and redoes the
/// group commit).
fn check_days(store: &PgStore, missing_day: &mut Option<i64>, entries: &[NewEntry]) -> Result<()> {
    if let Some(day) = entries
        .iter()
        .map(|e| day_of(e.recorded_at))
        .find(|d| !store.covers(*d))
    {
        *missing_day = Some(day);
        return Err(StoreError::Schema(format!(
            "no partition of aitrail.entries is known to hold day {day} (days since 1970-01-01)"
        )));
    }
    Ok(())
}

impl<'s> PgTx<'_, '_, 's> {
    /// The entries of every chunk streamed into one COPY as they come (`EntriesTx`), so the
    /// server stores the first rows while the client still hashes the later ones; then the
    /// keys (one COPY: a stored event id or seq is refused there and rolls everything back)
    /// and the nodes.
    fn stream(&mut self, rows: usize, mut feed: Feed<'_>) -> Result<()> {
        self.flush()?;
        // The second connection begins (and opens its COPY) while the first chunk is built.
        let store: &'s PgStore = self.store;
        let side = match (&self.side, self.entries_tx.is_none()) {
            (Some(lock), true) => store
                .pool
                .try_get()
                .map(|conn| EntriesTx::begin(conn, lock)),
            _ => None,
        };
        match side {
            Some(Ok(side)) => {
                let streamed = self.stream_split(side, rows, &mut feed);
                // Its keys may be in this transaction without their entries: never commit it.
                self.failed |= streamed.is_err();
                streamed
            }
            // A connection that cannot begin (a lost lock, a server that closed it) leaves
            // the group to this one; `EntriesTx` rolls back or closes it on drop.
            Some(Err(_)) | None => {
                let Some(chunk) = (feed.next)() else {
                    return Ok(());
                };
                // Refused before the COPY opens (a group's rows share one recorded_at).
                check_days(self.store, self.missing_day, &chunk.0)?;
                self.stream_one(chunk, &mut feed)
            }
        }
    }

    /// The entries and nodes into `side`, the keys into this transaction, both at once (see
    /// `EntriesTx`); with `two_phase`, the side takes the first chunks only, about three fifths
    /// of `rows`, and this transaction the rest (`TwoPhase`). Nothing commits here.
    fn stream_split(
        &mut self,
        mut side: EntriesTx<'s>,
        rows: usize,
        feed: &mut Feed<'_>,
    ) -> Result<()> {
        let log_id = self.log_id;
        let cut = match self.split_rows {
            true => rows * 3 / 5,
            false => usize::MAX,
        };
        let mut entries = CopyBuffer::new(ENTRY_TYPES);
        let Conn { client, cache, .. } = &mut *side.conn;
        let stmt = prepared(client, cache, COPY_ENTRIES)?;
        let mut writer = client.copy_in(&stmt)?;
        // No chunk at all (every event of the group a repeat): a COPY of no rows, and the
        // side rolls back when dropped; nothing is written.
        let Some(chunk) = (feed.next)() else {
            entries.finish_parts(writer)?;
            return Ok(());
        };
        let (first_seq, recorded_at) = (seq_param(chunk.0[0].seq)?, chunk.0[0].recorded_at);
        let (mut keys, mut nodes) = (Keys::default(), Vec::new());
        let rest = stream_chunks(
            self.store,
            self.missing_day,
            log_id,
            &mut writer,
            &mut entries,
            (&mut keys, &mut nodes),
            chunk,
            feed,
            cut,
        )?;
        let (tx, tx_cache) = (&mut *self.tx, &mut *self.cache);
        let Some(rest) = rest else {
            // The keys and the span while the entries' backend still works through its
            // backlog; a stored event id or seq is refused there, before anything commits.
            // They go on a thread of their own: rows queued for the entries' connection only
            // reach its socket while a thread waits on that connection, so this one keeps
            // feeding it meanwhile (the entries' backend would otherwise run dry while the
            // keys are sent).
            let (keys_sent, entries_sent) = std::thread::scope(|s| {
                let keys_thread = s.spawn(move || keys.send(tx, tx_cache, log_id));
                let entries_sent = entries.finish_parts(writer);
                (joined(keys_thread), entries_sent)
            });
            // A refused key first: a stored event id makes the sequencer look ids up and redo.
            keys_sent?;
            entries_sent?;
            insert_nodes(client, cache, log_id, &nodes)?;
            self.entries_tx = Some(side);
            return Ok(());
        };
        // The side's COPY ends on a thread of its own (for the same reason) while the rest of
        // the group streams into a COPY here, followed by the keys and the nodes.
        let side_rows = entries.rows() as i64;
        let (store, missing_day) = (self.store, &mut *self.missing_day);
        let (here, side_sent) = std::thread::scope(|s| {
            let side_thread = s.spawn(move || entries.finish_parts(writer));
            let here = (|| {
                let mut entries = CopyBuffer::new(ENTRY_TYPES);
                let stmt = prepared(tx, tx_cache, COPY_ENTRIES)?;
                let mut writer = tx.copy_in(&stmt)?;
                let parts = (&mut keys, &mut nodes);
                let rest = stream_chunks(
                    store,
                    missing_day,
                    log_id,
                    &mut writer,
                    &mut entries,
                    parts,
                    rest,
                    feed,
                    usize::MAX,
                )?;
                debug_assert!(rest.is_none());
                entries.finish_parts(writer)?;
                std::mem::take(&mut keys).send(tx, tx_cache, log_id)?;
                insert_nodes(tx, tx_cache, log_id, &nodes)
            })();
            (here, joined(side_thread))
        });
        here?;
        side_sent?;
        self.two_phase = Some(TwoPhase {
            first_seq,
            side_rows,
            recorded_at,
            nonce: u64::from_le_bytes(crate::keys::random()?),
        });
        self.entries_tx = Some(side);
        Ok(())
    }

    /// The group on this connection alone: the entries streamed into one COPY, then the keys
    /// and the nodes.
    fn stream_one(&mut self, chunk: Chunk, feed: &mut Feed<'_>) -> Result<()> {
        let log_id = self.log_id;
        let mut entries = CopyBuffer::new(ENTRY_TYPES);
        let stmt = prepared(self.tx, self.cache, COPY_ENTRIES)?;
        let mut writer = self.tx.copy_in(&stmt)?;
        let (mut keys, mut nodes) = (Keys::default(), Vec::new());
        stream_chunks(
            self.store,
            self.missing_day,
            log_id,
            &mut writer,
            &mut entries,
            (&mut keys, &mut nodes),
            chunk,
            feed,
            usize::MAX,
        )?;
        entries.finish_parts(writer)?;
        self.pending = Some(Pending {
            keys,
            entries: CopyBuffer::new(ENTRY_TYPES),
            nodes,
        });
        self.flush()
    }
}

/// Where a streamed group's chunks come from (`next`, None after the last) and go once
/// encoded (`done`: their buffers are used again), as `AppendTx::insert_all` gives them.
struct Feed<'f> {
    next: &'f mut dyn FnMut() -> Option<Chunk>,
    done: &'f mut dyn FnMut(Chunk),
}

/// Sends the entries of `chunk` and of every later one of `feed` into `writer` as they come,
/// adding their keys and the nodes they complete to `parts`, until `entries` holds `cut`
/// rows or more: returns the first chunk not sent, None when `feed` ran out.
#[allow(clippy::too_many_arguments)]
fn stream_chunks(
    store: &PgStore,
    missing_day: &mut Option<i64>,
    log_id: i32,
    writer: &mut CopyInWriter<'_>,
    entries: &mut CopyBuffer,
    (keys, nodes): (&mut Keys, &mut Vec<Node>),
    mut chunk: Chunk,
    feed: &mut Feed<'_>,
    cut: usize,
) -> Result<Option<Chunk>> {
    loop {
        check_days(store, missing_day, &chunk.0)?;
        push_entries(entries, log_id, &chunk.0)?;
        keys.add(&chunk.0)?;
        nodes.append(&mut chunk.1);
        (feed.done)(chunk);
        entries.send_part(writer)?;
        match (feed.next)() {
            Some(c) if entries.rows() >= cut as u64 => return Ok(Some(c)),
            Some(c) => chunk = c,
            None => return Ok(None),
        }
    }
}

/// A scoped thread's result; a panic becomes an error.
fn joined<T>(thread: std::thread::ScopedJoinHandle<'_, Result<T>>) -> Result<T> {
    thread
        .join()
        .unwrap_or_else(|_| Err(StoreError::Commit("a thread of the append panicked".into())))
}

impl NodeRows for PgTx<'_, '_, '_> {
    fn hashes(&mut self, level: u32, from: u64, to: u64) -> Result<Vec<Hash>> {
        self.flush()?;
        hash_rows(self.tx, self.cache, self.log_id, level, from, to)
    }
}

impl AppendTx for PgTx<'_, '_, '_> {
    fn head(&mut self) -> Result<Head> {
        self.flush()?;
        let head = head_of(self.tx, self.cache, self.log_id)?;
        if repair_keys(self.tx, self.cache, self.log_id, &head)? == 0 {
            return Ok(head);
        }
        head_of(self.tx, self.cache, self.log_id)
    }

    fn find_events(&mut self, ids: &[String]) -> Result<Vec<StoredEntry>> {
        self.flush()?;
        entries_by_ids(self.tx, self.cache, self.log_id, ids)
    }

    fn find_retired(&mut self, ids: &[String]) -> Result<Vec<crate::retention::Retired>> {
        self.flush()?;
        retention::retired_events(self.tx, self.log_id, ids)
    }

    fn insert(&mut self, entries: &[NewEntry], nodes: &[Node]) -> Result<()> {
        check_days(self.store, self.missing_day, entries)?;
        let log_id = self.log_id;
        let p = self.pending.get_or_insert_with(|| Pending {
            keys: Keys::default(),
            entries: CopyBuffer::new(ENTRY_TYPES),
            nodes: Vec::new(),
        });
        p.keys.add(entries)?;
        push_entries(&mut p.entries, log_id, entries)?;
        p.nodes.extend_from_slice(nodes);
        Ok(())
    }

    fn insert_all(
        &mut self,
        rows: usize,
        next: &mut dyn FnMut() -> Option<Chunk>,
        done: &mut dyn FnMut(Chunk),
    ) -> Result<()> {
        self.stream(rows, Feed { next, done })
    }
}

/// Hash-row reads inside a read transaction.
struct PgReader<'a, 't> {
    tx: &'a mut Transaction<'t>,
    cache: &'a mut Cache,
    log_id: i32,
}

impl NodeRows for PgReader<'_, '_> {
    fn hashes(&mut self, level: u32, from: u64, to: u64) -> Result<Vec<Hash>> {
        hash_rows(self.tx, self.cache, self.log_id, level, from, to)
    }
}

fn checkpoint_row(row: &Row, number: u64) -> Result<StoredCheckpoint> {
    Ok(StoredCheckpoint {
        number,
        size: row.try_get::<_, i64>(0)? as u64,
        root: to_hash(row.try_get(1)?),
        note: row.try_get(2)?,
        created_at: row.try_get::<_, Micros>(3)?.0,
    })
}

impl Store for PgStore {
    fn append(&self, log: &str, f: &mut dyn FnMut(&mut dyn AppendTx) -> Result<()>) -> Result<()> {
        self.ensure_ahead(now_micros())?;
        let mut conn = self.pool.get()?;
        let (mut missing_day, mut day_created) = (None, false);
        let (mut two_phase, mut lock_wait) = (true, LOCK_WAIT_MS);
        loop {
            let (ready, mut timed_out) = (two_phase, false);
            let out = self.append_once(
                &mut conn,
                log,
                f,
                (&mut missing_day, &mut two_phase, &mut timed_out),
                &format!("{lock_wait}ms"),
            );
            let Err(err) = out else {
                return Ok(());
            };
            drop_session_locks(&mut conn);
            // Rolled back. What comes next: a day without a partition (a clock far ahead) is
            // created, then the group commit is redone from the head; the log's lock not
            // granted within `lock_wait` (another writer holds it, or a group a stopped writer
            // left prepared does, `TwoPhase`): prepared groups are settled, and the append
            // waits its turn again, twice as long (up to `LOCK_WAIT_MAX_MS`); a refused
            // prepare: the group is redone without.
            let day = missing_day.take().filter(|_| !day_created);
            let prepare_refused = ready && !two_phase;
            if day.is_none() && !timed_out && !prepare_refused {
                return Err(err);
            }
            if !conn.is_open() {
                drop(conn);
                conn = self.pool.get()?;
            }
            if let Some(day) = day {
                self.ensure_days(&mut conn, day, day)?;
                day_created = true;
            } else if timed_out {
                settle(&mut conn, Some(log), true)?;
                lock_wait = (lock_wait * 2).min(LOCK_WAIT_MAX_MS);
            }
        }
    }

    fn head(&self, log: &str) -> Result<Head> {
        let mut conn = self.pool.get()?;
        let Some(log_id) = self.log_id(&mut conn, log)? else {
            return Ok(Head::default());
        };
        let Conn { client, cache, .. } = &mut *conn;
        head_of(client, cache, log_id)
    }

    fn logs(&self) -> Result<Vec<String>> {
        let mut conn = self.pool.get()?;
        let rows = conn.client.query(
            "SELECT name FROM aitrail.logs ORDER BY name COLLATE \"C\"",
            &[],
        )?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }

    fn entry(&self, log: &str, seq: u64) -> Result<Option<StoredEntry>> {
        let mut conn = self.pool.get()?;
        let Some(log_id) = self.log_id(&mut conn, log)? else {
            return Ok(None);
        };
        let Conn { client, cache, .. } = &mut *conn;
        entry_by_seq(client, cache, log_id, seq)
    }

    fn entry_by_id(&self, log: &str, event_id: &str) -> Result<Option<StoredEntry>> {
        let mut conn = self.pool.get()?;
        let Some(log_id) = self.log_id(&mut conn, log)? else {
            return Ok(None);
        };
        let Conn { client, cache, .. } = &mut *conn;
        Ok(
            entries_by_ids(client, cache, log_id, &[event_id.to_owned()])?
                .into_iter()
                .next(),
        )
    }

    fn scan(
        &self,
        log: &str,
        from: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<bool>,
    ) -> Result<()> {
        let Some(log_id) = self.log_id(&mut *self.pool.get()?, log)? else {
            return Ok(());
        };
        let Ok(from) = i64::try_from(from) else {
            return Ok(());
        };
        self.read(|tx, cache| {
            // Merge the partitions' (log_id, seq) indexes instead of sorting the whole log,
            // which the planner prefers once it has statistics: rows stream in seq order.
            tx.batch_execute("SET LOCAL enable_sort = off")?;
            let stmt = prepared(tx, cache, SCAN)?;
            let portal = tx.bind(&stmt, &[&log_id, &from])?;
            loop {
                let rows = tx.query_portal(&portal, FETCH_ROWS)?;
                if rows.is_empty() {
                    return Ok(());
                }
                for row in &rows {
                    if !f(stored_entry(row)?)? {
                        return Ok(());
                    }
                }
            }
        })
    }

    fn query(
        &self,
        log: &str,
        q: &Query,
        f: &mut dyn FnMut(QueryRow) -> Result<bool>,
    ) -> Result<()> {
        let Some(log_id) = self.log_id(&mut *self.pool.get()?, log)? else {
            return Ok(());
        };
        let (sql, params) = search::query_sql(log_id, q)?;
        self.read(|tx, _| {
            let stmt = tx.prepare(&sql)?;
            let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref()).collect();
            let portal = tx.bind(&stmt, &refs)?;
            loop {
                let rows = tx.query_portal(&portal, FETCH_ROWS)?;
                if rows.is_empty() {
                    return Ok(());
                }
                for row in &rows {
                    let entry = stored_entry(row)?;
                    let occurred_at = row.try_get::<_, Micros>(6)?.0;
                    if !f(QueryRow { entry, occurred_at })? {
                        return Ok(());
                    }
                }
            }
        })
    }

    fn read_nodes(
        &self,
        log: &str,
        f: &mut dyn FnMut(&mut dyn NodeRows) -> Result<()>,
    ) -> Result<()> {
        let log_id = self
            .log_id(&mut *self.pool.get()?, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        self.read(|tx, cache| f(&mut PgReader { tx, cache, log_id }))
    }

    fn nodes(&self, log: &str) -> Result<Vec<Node>> {
        let mut conn = self.pool.get()?;
        let Some(log_id) = self.log_id(&mut conn, log)? else {
            return Ok(Vec::new());
        };
        let Conn { client, cache, .. } = &mut *conn;
        let stmt = prepared(client, cache, NODES_ALL)?;
        client
            .query(&stmt, &[&log_id])?
            .iter()
            .map(|r| {
                Ok(Node {
                    level: r.try_get::<_, i32>(0)? as u32,
                    index: r.try_get::<_, i64>(1)? as u64,
                    hash: to_hash(r.try_get(2)?),
                })
            })
            .collect()
    }

    fn add_checkpoint(
        &self,
        log: &str,
        size: u64,
        root: &Hash,
        note: &str,
        created_at: i64,
    ) -> Result<StoredCheckpoint> {
        let mut conn = self.pool.get()?;
        let log_id = self
            .log_id(&mut conn, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        let Conn { client, cache, .. } = &mut *conn;
        let mut tx = client.transaction()?;
        let stmt = prepared(&mut tx, cache, CHECKPOINT_INSERT)?;
        tx.execute(
            &stmt,
            &[
                &log_id,
                &seq_param(size)?,
                &&root[..],
                &note,
                &Micros(created_at),
            ],
        )?;
        let stmt = prepared(&mut tx, cache, CHECKPOINT_COUNT)?;
        let number: i64 = tx.query_one(&stmt, &[&log_id])?.try_get(0)?;
        tx.commit()?;
        Ok(StoredCheckpoint {
            number: number as u64,
            size,
            root: *root,
            note: note.to_owned(),
            created_at,
        })
    }

    fn subject_keys(&self, log: &str, refs: &[String]) -> Result<Vec<crate::keys::StoredKey>> {
        keys::select(&mut self.pool.get()?.client, log, refs)
    }

    fn add_subject_keys(&self, log: &str, rows: &[crate::keys::StoredKey]) -> Result<()> {
        keys::insert(&mut self.pool.get()?.client, log, rows)
    }

    fn erase_subject_key(&self, log: &str, subject_ref: &str) -> Result<crate::keys::Shredded> {
        keys::erase(&mut self.pool.get()?.client, log, subject_ref)
    }

    fn segments(&self, log: &str) -> Result<Vec<crate::retention::Segment>> {
        let mut conn = self.pool.get()?;
        match self.log_id(&mut conn, log)? {
            Some(id) => retention::segments(&mut conn.client, id),
            None => Ok(Vec::new()),
        }
    }

    fn retire(
        &self,
        log: &str,
        segment: &crate::retention::Segment,
        rows: &[crate::retention::Retired],
    ) -> Result<()> {
        let mut conn = self.pool.get()?;
        let log_id = self
            .log_id(&mut conn, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        let mut tx = conn.client.transaction()?;
        retention::retire(&mut tx, log_id, segment, rows)?;
        tx.commit()?;
        Ok(())
    }

    fn retired(&self, log: &str, from: u64, to: u64) -> Result<Vec<crate::retention::Retired>> {
        let mut conn = self.pool.get()?;
        match self.log_id(&mut conn, log)? {
            Some(id) => retention::retired(&mut conn.client, id, from, to),
            None => Ok(Vec::new()),
        }
    }

    fn retired_event(
        &self,
        log: &str,
        event_id: &str,
    ) -> Result<Option<crate::retention::Retired>> {
        let mut conn = self.pool.get()?;
        match self.log_id(&mut conn, log)? {
            Some(id) => retention::retired_event(&mut conn.client, id, event_id),
            None => Ok(None),
        }
    }

    fn expiries(&self, log: &str) -> Result<Vec<crate::retention::Expiry>> {
        let mut conn = self.pool.get()?;
        match self.log_id(&mut conn, log)? {
            Some(id) => retention::expiries(&mut conn.client, id),
            None => Ok(Vec::new()),
        }
    }

    fn add_expiry(&self, log: &str, expiry: &crate::retention::Expiry) -> Result<()> {
        let mut conn = self.pool.get()?;
        let log_id = self
            .log_id(&mut conn, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        retention::add_expiry(&mut conn.client, log_id, expiry)
    }

    fn holds(&self, log: &str) -> Result<Vec<crate::retention::Hold>> {
        retention::holds(&mut self.pool.get()?.client, log)
    }

    fn add_hold(&self, log: &str, hold: &crate::retention::Hold) -> Result<()> {
        retention::add_hold(&mut self.pool.get()?.client, log, hold)
    }

    fn release_hold(&self, log: &str, release: &crate::retention::Release) -> Result<()> {
        retention::release_hold(&mut self.pool.get()?.client, log, release)
    }

    /// A session advisory lock on a connection of its own (not the pool's): it is released
    /// when the guard drops the connection, or when the process dies.
    fn retention_lock(&self, waiting: &mut dyn FnMut()) -> Result<Box<dyn Send>> {
        let mut conn = conn::connect(&self.pool.config)?;
        let key = "hashtextextended('aitrail retention', 0)";
        let taken: bool = conn
            .client
            .query_one(&format!("SELECT pg_try_advisory_lock({key})"), &[])?
            .try_get(0)?;
        if !taken {
            waiting();
            conn.client
                .execute(&format!("SELECT pg_advisory_lock({key})"), &[])?;
        }
        Ok(Box::new(conn.client))
    }

    fn checkpoints(&self, log: &str) -> Result<Vec<StoredCheckpoint>> {
        let mut conn = self.pool.get()?;
        let Some(log_id) = self.log_id(&mut conn, log)? else {
            return Ok(Vec::new());
        };
        let Conn { client, cache, .. } = &mut *conn;
        let stmt = prepared(client, cache, CHECKPOINTS)?;
        client
            .query(&stmt, &[&log_id])?
            .iter()
            .enumerate()
            .map(|(i, row)| checkpoint_row(row, i as u64 + 1))
            .collect()
    }

    fn latest_checkpoint(&self, log: &str) -> Result<Option<StoredCheckpoint>> {
        let mut conn = self.pool.get()?;
        let Some(log_id) = self.log_id(&mut conn, log)? else {
            return Ok(None);
        };
        let Conn { client, cache, .. } = &mut *conn;
        let stmt = prepared(client, cache, CHECKPOINT_LATEST)?;
        client
            .query_opt(&stmt, &[&log_id])?
            .map(|row| checkpoint_row(&row, row.try_get::<_, i64>(4)? as u64))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_days_since_1970() {
        assert_eq!(day_of(0), 0);
        assert_eq!(day_of(DAY_MICROS - 1), 0);
        assert_eq!(day_of(DAY_MICROS), 1);
        assert_eq!(day_of(-1), -1);
        // 2026-03-02T09:00:00Z
        assert_eq!(day_of(1_772_442_000_000_000), 20_514);
    }
}
