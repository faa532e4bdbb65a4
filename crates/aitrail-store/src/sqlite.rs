//! The embedded SQLite backend: WAL with synchronous=FULL (every commit is fsync'd before it
//! is acknowledged), triggers that abort any UPDATE or DELETE, and indexes for the queries by
//! task, actor, type, model and time.
//!
//! Entries are keyed by `id = (log_id << 40) | seq` (`log_id` and `seq` are columns generated
//! from it), so a log's entries lie in seq order in the table itself: head, scans and leaf
//! hashes for proofs read a rowid range, with no index between.

use crate::error::{Result, StoreError};
use crate::query::{Order, Query, QueryRow, TimeField};
use crate::store::{
    to_hash, AppendTx, Head, NewEntry, Node, NodeRows, Store, StoredCheckpoint, StoredEntry,
};
use aitrail_core::merkle::Hash;
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use std::borrow::Cow;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

mod keys;
mod retention;

/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 4;

/// Bits of an entry's row id that hold its seq; the log's id sits above them (`entry_id`).
pub const SEQ_BITS: u32 = 40;
const SEQ_MASK: i64 = (1 << SEQ_BITS) - 1;
/// The largest log id whose row ids still fit in 63 bits.
const MAX_LOG_ID: i64 = (1 << (63 - SEQ_BITS)) - 1;

/// The row id of entry `seq` of the log `log_id`: `(log_id << 40) | seq`, so the entries
/// table is ordered by log, then seq. `seq` must be below 2^40 (see `SqliteTx::insert`).
pub fn entry_id(log_id: i64, seq: u64) -> i64 {
    (log_id << SEQ_BITS) + seq.min(1 << SEQ_BITS) as i64
}

/// Row ids `[start, end)` of the entries `from..to` of a log (`to` None: to the log's end).
fn id_range(log_id: i64, from: u64, to: Option<u64>) -> (i64, i64) {
    let end = to.map_or((log_id + 1) << SEQ_BITS, |to| entry_id(log_id, to));
    (entry_id(log_id, from), end)
}

/// The schema. Exposed so benchmarks can build the same table and indexes without aitrail.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS logs (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS entries (
    -- (log_id << 40) | seq: the table itself is ordered by (log, seq), so reading a log in
    -- order is a sequential scan of the table b-tree and needs no index.
    id             INTEGER PRIMARY KEY,
    log_id         INTEGER NOT NULL GENERATED ALWAYS AS (id >> 40) VIRTUAL REFERENCES logs(id),
    seq            INTEGER NOT NULL GENERATED ALWAYS AS (id & 0xFFFFFFFFFF) VIRTUAL,
    event_id       TEXT NOT NULL,
    recorded_at    INTEGER NOT NULL,  -- Unix microseconds
    occurred_at    INTEGER NOT NULL,  -- Unix microseconds
    type           TEXT NOT NULL,
    task_id        TEXT NOT NULL,
    actor_id       TEXT,
    model_name     TEXT,
    model_version  TEXT,
    prompt_version TEXT,
    decision       TEXT,
    subject_ref    TEXT,
    entry          BLOB NOT NULL,     -- RFC 8785 bytes of the record
    leaf_hash      BLOB NOT NULL,
    chain_hash     BLOB NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS entries_event ON entries(log_id, event_id);
CREATE INDEX IF NOT EXISTS entries_task  ON entries(log_id, task_id, occurred_at);
CREATE INDEX IF NOT EXISTS entries_actor ON entries(log_id, actor_id, occurred_at) WHERE actor_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_type  ON entries(log_id, type, occurred_at);
CREATE INDEX IF NOT EXISTS entries_model ON entries(log_id, model_name, model_version, occurred_at) WHERE model_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_time  ON entries(log_id, occurred_at);
CREATE INDEX IF NOT EXISTS entries_decision ON entries(log_id, decision, occurred_at) WHERE decision IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_prompt   ON entries(log_id, prompt_version, occurred_at) WHERE prompt_version IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_subject  ON entries(log_id, subject_ref, occurred_at) WHERE subject_ref IS NOT NULL;
CREATE TABLE IF NOT EXISTS nodes (
    log_id INTEGER NOT NULL,
    level  INTEGER NOT NULL,
    idx    INTEGER NOT NULL,
    hash   BLOB NOT NULL,
    PRIMARY KEY (log_id, level, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS checkpoints (
    id         INTEGER PRIMARY KEY,
    log_id     INTEGER NOT NULL,
    size       INTEGER NOT NULL,
    root       BLOB NOT NULL,
    note       TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (log_id, size)
);
"#;

/// Append-only: every table refuses UPDATE and DELETE, except the DELETE of entries whose
/// hashes were retired into the archive's bookkeeping (`retention`).
fn triggers() -> String {
    let mut sql = retention::ENTRIES_DELETE_TRIGGER.to_owned();
    let tables = ["logs", "entries", "nodes", "checkpoints"];
    for table in tables.into_iter().chain(retention::TABLES) {
        for op in ["UPDATE", "DELETE"] {
            if table == "entries" && op == "DELETE" {
                continue;
            }
            sql += &format!(
                "CREATE TRIGGER IF NOT EXISTS {table}_no_{name} BEFORE {op} ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'aitrail is append-only: {op} on {table} is refused'); END;\n",
                name = op.to_lowercase()
            );
        }
    }
    sql
}

/// Page size of a new file (SQLite's default is 4 KiB). An entry row is about 1.4 KB: a
/// 16 KiB page holds eleven with little slack where a 4 KiB page held two or three, so
/// appends split fewer pages and write fewer WAL frames, and scans read fewer pages.
const PAGE_SIZE: i64 = 16 * 1024;

/// Pages the WAL may grow to before a commit copies it back into the file: 64 MiB. Several
/// group commits then share one checkpoint, and index pages they all touch are written back
/// once instead of once each. Durability is the same: every commit is fsync'd in the WAL.
const WAL_AUTOCHECKPOINT: i64 = (64 << 20) / PAGE_SIZE;

/// Bytes of the file read through a memory map (reads only; writes go through the WAL).
const MMAP_SIZE: i64 = 1 << 30;

/// Pragmas for every connection: WAL, full fsync on commit, wait for other writers.
pub fn configure(conn: &Connection) -> Result<()> {
    // Only takes effect on a file without tables yet, hence before anything else.
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.pragma_update(None, "wal_autocheckpoint", WAL_AUTOCHECKPOINT)?;
    // Read the file through a memory map: no read() call and copy per page (reads only;
    // writes still go through the WAL and its fsync).
    conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
    Ok(())
}

/// SQLite store. One connection writes, another reads, so reads do not wait for commits; a
/// third serves the key table, so sealed content can be opened while a read streams.
pub struct SqliteStore {
    path: std::path::PathBuf,
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    keys: Mutex<Connection>,
    log_ids: Mutex<HashMap<String, i64>>,
}

impl SqliteStore {
    /// Opens (creating when needed) the store at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<SqliteStore> {
        let writer = Connection::open(path)?;
        configure(&writer)?;
        let version: i64 = writer.pragma_query_value(None, "user_version", |r| r.get(0))?;
        if version > SCHEMA_VERSION {
            return Err(StoreError::Schema(format!(
                "{} has schema version {version}; this aitrail knows up to {SCHEMA_VERSION}: upgrade aitrail",
                path.display()
            )));
        }
        if version < SCHEMA_VERSION {
            let tx = writer.unchecked_transaction()?;
            tx.execute_batch(SCHEMA)?;
            tx.execute_batch(retention::SCHEMA)?; // version 4
                                                  // Version 4 lets `retire` delete rows kept in `retired`: the old trigger goes.
            tx.execute_batch("DROP TRIGGER IF EXISTS entries_no_delete")?;
            tx.execute_batch(&triggers())?;
            tx.execute_batch(crate::views::SQLITE)?; // version 2
            tx.execute_batch(keys::KEY_SCHEMA)?; // version 3
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        let reader = Connection::open(path)?;
        configure(&reader)?;
        let keys = Connection::open(path)?;
        configure(&keys)?;
        Ok(SqliteStore {
            path: path.to_owned(),
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            keys: Mutex::new(keys),
            log_ids: Mutex::new(HashMap::new()),
        })
    }

    /// `Store::query` on the reader connection `conn`.
    fn query_on(
        conn: &mut Connection,
        log_id: i64,
        q: &Query,
        f: &mut dyn FnMut(QueryRow) -> Result<bool>,
    ) -> Result<()> {
        let tx = conn.transaction()?;
        let mut ids = match q.filter.time {
            TimeField::Recorded => recorded_ids(&tx, log_id, q.filter.from, q.filter.to)?,
            TimeField::Occurred => id_range(log_id, 0, None),
        };
        if let Some(from) = q.from_seq {
            ids.0 = ids.0.max(entry_id(log_id, from));
            ids.1 = ids.1.max(ids.0);
        }
        let (sql, params) = query_sql(log_id, ids, q);
        let mut stmt = tx.prepare_cached(&sql)?;
        let mut rows = stmt.query(rusqlite::params_from_iter(params.iter()))?;
        while let Some(row) = rows.next()? {
            let entry = stored_entry(row)?;
            if !f(QueryRow {
                entry,
                occurred_at: row.get(6)?,
            })? {
                break;
            }
        }
        Ok(())
    }

    fn lock<'a>(m: &'a Mutex<Connection>) -> std::sync::MutexGuard<'a, Connection> {
        m.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The id of `log`, or None when no such log exists yet.
    fn log_id(&self, conn: &Connection, log: &str) -> Result<Option<i64>> {
        if let Some(id) = self
            .log_ids
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(log)
        {
            return Ok(Some(*id));
        }
        let id: Option<i64> = conn
            .query_row("SELECT id FROM logs WHERE name = ?1", [log], |r| r.get(0))
            .optional()?;
        if let Some(id) = id {
            self.log_ids
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(log.to_owned(), id);
        }
        Ok(id)
    }
}

/// A row of `ENTRY_COLUMNS`.
fn stored_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        seq: (row.get::<_, i64>(0)? & SEQ_MASK) as u64,
        event_id: String::from_utf8_lossy(&any_bytes(row, 1)?).into_owned(),
        recorded_at: row.get(2)?,
        entry: any_bytes(row, 3)?.into_owned(),
        leaf_hash: any_bytes(row, 4)?.into_owned(),
        chain_hash: any_bytes(row, 5)?.into_owned(),
    })
}

/// A column's bytes whatever its storage class: aitrail writes BLOBs, but someone editing
/// the file may leave TEXT or numbers behind, and verify must still read the row to report it.
fn any_bytes<'r>(row: &'r rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Cow<'r, [u8]>> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => Cow::Borrowed(b),
        ValueRef::Integer(i) => Cow::Owned(i.to_string().into_bytes()),
        ValueRef::Real(f) => Cow::Owned(f.to_string().into_bytes()),
        ValueRef::Null => Cow::Borrowed(&[]),
    })
}

/// The SQL and parameters of a search. Filters use the indexes on (log_id, column,
/// occurred_at); the order is (occurred_at, seq), or seq alone for recorded time (recorded_at
/// grows with seq), and the cursor continues strictly after the last row given.
/// `ids` bounds the row ids searched (the log's, or fewer: `recorded_ids`).
fn query_sql(log_id: i64, ids: (i64, i64), q: &Query) -> (String, Vec<rusqlite::types::Value>) {
    use rusqlite::types::Value as V;
    let f = &q.filter;
    // In recorded order the rows come in row-id order from the range `ids`; unless a selective
    // filter (task, actor, subject) has an index of its own, `+log_id` keeps SQLite from
    // walking an index on log_id over the whole log and sorting it, and reads the row-id
    // range instead, stopping at the page's end.
    let selective = f.task_id.is_some() || f.actor_id.is_some() || f.subject_ref.is_some();
    let log_col = if f.time == TimeField::Recorded && !selective {
        "+log_id"
    } else {
        "log_id"
    };
    let mut sql = format!("SELECT {ENTRY_COLUMNS}, occurred_at FROM entries WHERE {log_col} = ?1 AND id >= ?2 AND id < ?3");
    let mut params = vec![V::Integer(log_id), V::Integer(ids.0), V::Integer(ids.1)];
    let mut eq = |sql: &mut String, col: &str, v: &Option<String>| {
        if let Some(v) = v {
            params.push(V::Text(v.clone()));
            sql.push_str(&format!(" AND {col} = ?{}", params.len()));
        }
    };
    eq(&mut sql, "task_id", &f.task_id);
    eq(&mut sql, "actor_id", &f.actor_id);
    eq(&mut sql, "model_name", &f.model_name);
    eq(&mut sql, "model_version", &f.model_version);
    eq(&mut sql, "prompt_version", &f.prompt_version);
    eq(&mut sql, "decision", &f.decision);
    eq(&mut sql, "subject_ref", &f.subject_ref);
    if !f.types.is_empty() {
        let start = params.len() + 1;
        params.extend(f.types.iter().map(|t| V::Text(t.clone())));
        let marks: Vec<String> = (start..=params.len()).map(|i| format!("?{i}")).collect();
        sql.push_str(&format!(" AND type IN ({})", marks.join(", ")));
    }
    let time_col = match f.time {
        TimeField::Occurred => "occurred_at",
        TimeField::Recorded => "recorded_at",
    };
    if let Some(from) = f.from {
        params.push(V::Integer(from));
        sql.push_str(&format!(" AND {time_col} >= ?{}", params.len()));
    }
    if let Some(to) = f.to {
        params.push(V::Integer(to));
        sql.push_str(&format!(" AND {time_col} < ?{}", params.len()));
    }
    let (cmp, dir) = match q.order {
        Order::Asc => (">", "ASC"),
        Order::Desc => ("<", "DESC"),
    };
    if let Some(c) = q.after {
        let id = (log_id << SEQ_BITS) | c.seq as i64;
        match f.time {
            TimeField::Occurred => {
                params.push(V::Integer(c.at));
                params.push(V::Integer(id));
                sql.push_str(&format!(
                    " AND (occurred_at, id) {cmp} (?{}, ?{})",
                    params.len() - 1,
                    params.len()
                ));
            }
            TimeField::Recorded => {
                params.push(V::Integer(id));
                sql.push_str(&format!(" AND id {cmp} ?{}", params.len()));
            }
        }
    }
    match f.time {
        TimeField::Occurred => sql.push_str(&format!(" ORDER BY occurred_at {dir}, id {dir}")),
        TimeField::Recorded => sql.push_str(&format!(" ORDER BY id {dir}")),
    }
    if let Some(limit) = q.limit {
        sql.push_str(&format!(" LIMIT {limit}"));
    }
    (sql, params)
}

/// The row ids of the log `log_id` that can hold entries recorded in `[from, to)`.
///
/// **Invariant:** recorded_at never decreases along a log (the sequencer records
/// max(clock, previous entry's recorded_at)), so each bound is a binary search over row ids,
/// about 2 log2(n) point reads, instead of a scan of the log. The time conditions stay in the
/// query, so a row outside the range is never returned.
fn recorded_ids(
    conn: &Connection,
    log_id: i64,
    from: Option<i64>,
    to: Option<i64>,
) -> Result<(i64, i64)> {
    let (start, end) = id_range(log_id, 0, None);
    if from.is_none() && to.is_none() {
        return Ok((start, end));
    }
    let last: Option<i64> = conn.query_row(
        "SELECT max(id) FROM entries WHERE id >= ?1 AND id < ?2",
        [start, end],
        |r| r.get(0),
    )?;
    let Some(last) = last else {
        return Ok((start, start));
    };
    let mut next = conn.prepare_cached(
        "SELECT recorded_at FROM entries WHERE id >= ?1 AND id <= ?2 ORDER BY id LIMIT 1",
    )?;
    // The first row id in [start, last + 1) whose next stored row is recorded at or after `t`.
    let mut first_at = |t: i64| -> Result<i64> {
        let (mut lo, mut hi) = (start, last + 1);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            let at: i64 = next.query_row([mid, last], |r| r.get(0))?;
            if at < t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        Ok(lo)
    };
    let lo = from.map_or(Ok(start), &mut first_at)?;
    let hi = to.map_or(Ok(end), &mut first_at)?;
    Ok((lo, hi.max(lo)))
}

/// Read with `stored_entry`; the seq is the low bits of the row id.
const ENTRY_COLUMNS: &str = "id, event_id, recorded_at, entry, leaf_hash, chain_hash";

/// The INSERT of one entry row (`?1` its row id, `entry_id`). Exposed so benchmarks insert
/// exactly as the store does.
pub const INSERT_ENTRY: &str = "INSERT INTO entries (id, event_id, recorded_at, occurred_at, type, task_id, \
     actor_id, model_name, model_version, prompt_version, decision, subject_ref, entry, leaf_hash, chain_hash) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";

/// The unique index on (log, event id) refusing a row: `DuplicateEventId`, which the
/// sequencer answers by redoing the group commit with lookups. Anything else stays an error.
fn insert_error(err: rusqlite::Error, event_id: &str) -> StoreError {
    match &err {
        // SQLite names the index's columns: "UNIQUE constraint failed: entries.log_id, entries.event_id".
        rusqlite::Error::SqliteFailure(e, Some(msg))
            if e.code == ErrorCode::ConstraintViolation
                && e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                && msg.contains("entries.event_id") =>
        {
            StoreError::DuplicateEventId(event_id.to_owned())
        }
        _ => err.into(),
    }
}

fn head_of(conn: &Connection, log_id: Option<i64>) -> Result<Head> {
    let Some(log_id) = log_id else {
        return Ok(Head::default());
    };
    let (start, end) = id_range(log_id, 0, None);
    let head = conn
        .prepare_cached("SELECT id, chain_hash, recorded_at FROM entries WHERE id >= ?1 AND id < ?2 ORDER BY id DESC LIMIT 1")?
        .query_row([start, end], |r| {
            Ok(Head {
                size: (r.get::<_, i64>(0)? & SEQ_MASK) as u64 + 1,
                chain_hash: to_hash(&any_bytes(r, 1)?),
                recorded_at: r.get(2)?,
            })
        })
        .optional()?;
    match head {
        Some(h) => Ok(h),
        // Every hot row was archived: the head is the last retired entry.
        None => Ok(retention::last_retired(conn, log_id)?
            .map(|r| Head {
                size: r.seq + 1,
                chain_hash: r.chain_hash,
                recorded_at: r.recorded_at,
            })
            .unwrap_or_default()),
    }
}

fn hash_rows(
    conn: &Connection,
    log_id: Option<i64>,
    level: u32,
    from: u64,
    to: u64,
) -> Result<Vec<Hash>> {
    let Some(log_id) = log_id else {
        return Err(StoreError::NotFound("log has no entries".into()));
    };
    let mut out = Vec::with_capacity((to - from) as usize);
    // Retired seqs are a prefix of the log; their leaf hashes come first.
    let retired = if level == 0 {
        retention::retired_leaves(conn, log_id, from, to)?
    } else {
        Vec::new()
    };
    let hot_from = from + retired.len() as u64;
    out.extend(retired);
    let mut rows_into = |mut rows: rusqlite::Rows<'_>| -> Result<()> {
        while let Some(row) = rows.next()? {
            out.push(to_hash(&any_bytes(row, 0)?));
        }
        Ok(())
    };
    if level == 0 {
        let (start, end) = id_range(log_id, hot_from, Some(to));
        let mut stmt = conn.prepare_cached(
            "SELECT leaf_hash FROM entries WHERE id >= ?1 AND id < ?2 ORDER BY id",
        )?;
        rows_into(stmt.query([start, end])?)?;
    } else {
        let mut stmt =
            conn.prepare_cached("SELECT hash FROM nodes WHERE log_id = ?1 AND level = ?2 AND idx >= ?3 AND idx < ?4 ORDER BY idx")?;
        rows_into(stmt.query(params![log_id, level, from as i64, to as i64])?)?;
    }
    if out.len() as u64 != to - from {
        return Err(StoreError::Corrupt(format!(
            "level {level} rows {from}..{to}: found {} of {}",
            out.len(),
            to - from
        )));
    }
    Ok(out)
}

struct SqliteTx<'a> {
    conn: &'a Connection,
    log_id: i64,
    /// Whether the log has retired entries (looked up once per transaction): then each
    /// inserted id is also looked up in `retired`, whose ids the unique index on entries no
    /// longer sees. A per-row trigger did the same at half the ingest rate (BENCHMARKS.md).
    any_retired: Option<bool>,
}

impl NodeRows for SqliteTx<'_> {
    fn hashes(&mut self, level: u32, from: u64, to: u64) -> Result<Vec<Hash>> {
        hash_rows(self.conn, Some(self.log_id), level, from, to)
    }
}

impl AppendTx for SqliteTx<'_> {
    fn head(&mut self) -> Result<Head> {
        head_of(self.conn, Some(self.log_id))
    }

    fn find_events(&mut self, ids: &[String]) -> Result<Vec<StoredEntry>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE log_id = ?1 AND event_id = ?2"
        ))?;
        let mut out = Vec::new();
        for id in ids {
            if let Some(e) = stmt
                .query_row(params![self.log_id, id], stored_entry)
                .optional()?
            {
                out.push(e);
            }
        }
        Ok(out)
    }

    fn find_retired(&mut self, ids: &[String]) -> Result<Vec<crate::retention::Retired>> {
        let mut out = Vec::new();
        for id in ids {
            out.extend(retention::retired_event(self.conn, self.log_id, id)?);
        }
        Ok(out)
    }

    fn insert(&mut self, entries: &[NewEntry], nodes: &[Node]) -> Result<()> {
        let any_retired = match self.any_retired {
            Some(any) => any,
            None => *self
                .any_retired
                .insert(retention::any_retired(self.conn, self.log_id)?),
        };
        if any_retired {
            for e in entries {
                if retention::retired_event(self.conn, self.log_id, &e.event_id)?.is_some() {
                    return Err(StoreError::DuplicateEventId(e.event_id.clone()));
                }
            }
        }
        let mut stmt = self.conn.prepare_cached(INSERT_ENTRY)?;
        for e in entries {
            if e.seq > SEQ_MASK as u64 {
                return Err(StoreError::Schema(format!(
                    "seq {} does not fit the {SEQ_BITS} bits a log's seqs have in this store",
                    e.seq
                )));
            }
            stmt.execute(params![
                entry_id(self.log_id, e.seq),
                e.event_id,
                e.recorded_at,
                e.occurred_at,
                e.event_type,
                e.task_id,
                e.index.actor_id,
                e.index.model_name,
                e.index.model_version,
                e.index.prompt_version,
                e.index.decision,
                e.index.subject_ref,
                e.entry,
                &e.leaf_hash[..],
                &e.chain_hash[..],
            ])
            .map_err(|err| insert_error(err, &e.event_id))?;
        }
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO nodes (log_id, level, idx, hash) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for n in nodes {
            stmt.execute(params![self.log_id, n.level, n.index as i64, &n.hash[..]])?;
        }
        Ok(())
    }
}

impl Store for SqliteStore {
    fn append(&self, log: &str, f: &mut dyn FnMut(&mut dyn AppendTx) -> Result<()>) -> Result<()> {
        let mut conn = Self::lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let log_id = match self.log_id(&tx, log)? {
            Some(id) => id,
            None => {
                tx.execute("INSERT INTO logs (name) VALUES (?1)", [log])?;
                let id = tx.last_insert_rowid();
                if !(1..=MAX_LOG_ID).contains(&id) {
                    return Err(StoreError::Schema(format!(
                        "log id {id} is outside 1..={MAX_LOG_ID}, the logs this store can hold"
                    )));
                }
                id
            }
        };
        f(&mut SqliteTx {
            conn: &tx,
            log_id,
            any_retired: None,
        })?;
        tx.commit()?;
        Ok(())
    }

    fn head(&self, log: &str) -> Result<Head> {
        let conn = Self::lock(&self.reader);
        head_of(&conn, self.log_id(&conn, log)?)
    }

    fn logs(&self) -> Result<Vec<String>> {
        let conn = Self::lock(&self.reader);
        let mut stmt = conn.prepare("SELECT name FROM logs ORDER BY name")?;
        let names = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<Vec<String>>>()?;
        Ok(names)
    }

    fn entry(&self, log: &str, seq: u64) -> Result<Option<StoredEntry>> {
        let conn = Self::lock(&self.reader);
        let Some(log_id) = self.log_id(&conn, log)? else {
            return Ok(None);
        };
        if seq > SEQ_MASK as u64 {
            return Ok(None);
        }
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE id = ?1"
        ))?;
        Ok(stmt
            .query_row([entry_id(log_id, seq)], stored_entry)
            .optional()?)
    }

    fn entry_by_id(&self, log: &str, event_id: &str) -> Result<Option<StoredEntry>> {
        let conn = Self::lock(&self.reader);
        let Some(log_id) = self.log_id(&conn, log)? else {
            return Ok(None);
        };
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE log_id = ?1 AND event_id = ?2"
        ))?;
        Ok(stmt
            .query_row(params![log_id, event_id], stored_entry)
            .optional()?)
    }

    fn scan(
        &self,
        log: &str,
        from: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<bool>,
    ) -> Result<()> {
        let mut conn = Self::lock(&self.reader);
        let Some(log_id) = self.log_id(&conn, log)? else {
            return Ok(());
        };
        let tx = conn.transaction()?;
        let (start, end) = id_range(log_id, from, None);
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE id >= ?1 AND id < ?2 ORDER BY id"
        ))?;
        let mut rows = stmt.query([start, end])?;
        while let Some(row) = rows.next()? {
            if !f(stored_entry(row)?)? {
                break;
            }
        }
        Ok(())
    }

    fn query(
        &self,
        log: &str,
        q: &Query,
        f: &mut dyn FnMut(QueryRow) -> Result<bool>,
    ) -> Result<()> {
        let mut conn = Self::lock(&self.reader);
        let Some(log_id) = self.log_id(&conn, log)? else {
            return Ok(());
        };
        // A stream (no limit: an export) may read the whole file: through read() and the
        // bounded page cache rather than the memory map, whose pages would all count towards
        // the process's resident memory. Pages of results keep the map.
        let stream = q.limit.is_none();
        if stream {
            conn.pragma_update(None, "mmap_size", 0)?;
        }
        let result = Self::query_on(&mut conn, log_id, q, f);
        if stream {
            conn.pragma_update(None, "mmap_size", MMAP_SIZE)?;
        }
        result
    }

    fn read_nodes(
        &self,
        log: &str,
        f: &mut dyn FnMut(&mut dyn NodeRows) -> Result<()>,
    ) -> Result<()> {
        let mut conn = Self::lock(&self.reader);
        let log_id = self
            .log_id(&conn, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        let tx = conn.transaction()?;
        f(&mut SqliteTx {
            conn: &tx,
            log_id,
            any_retired: None,
        })
    }

    fn nodes(&self, log: &str) -> Result<Vec<Node>> {
        let conn = Self::lock(&self.reader);
        let Some(log_id) = self.log_id(&conn, log)? else {
            return Ok(Vec::new());
        };
        let mut stmt = conn.prepare("SELECT level, idx, hash FROM nodes WHERE log_id = ?1")?;
        let nodes = stmt
            .query_map([log_id], |r| {
                Ok(Node {
                    level: r.get(0)?,
                    index: r.get::<_, i64>(1)? as u64,
                    hash: to_hash(&any_bytes(r, 2)?),
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(nodes)
    }

    fn add_checkpoint(
        &self,
        log: &str,
        size: u64,
        root: &Hash,
        note: &str,
        created_at: i64,
    ) -> Result<StoredCheckpoint> {
        let conn = Self::lock(&self.writer);
        let log_id = self
            .log_id(&conn, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        conn.execute(
            "INSERT INTO checkpoints (log_id, size, root, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![log_id, size as i64, &root[..], note, created_at],
        )?;
        let number: i64 = conn.query_row(
            "SELECT count(*) FROM checkpoints WHERE log_id = ?1",
            [log_id],
            |r| r.get(0),
        )?;
        Ok(StoredCheckpoint {
            number: number as u64,
            size,
            root: *root,
            note: note.to_owned(),
            created_at,
        })
    }

    fn subject_keys(&self, log: &str, refs: &[String]) -> Result<Vec<crate::keys::StoredKey>> {
        keys::select(&Self::lock(&self.keys), log, refs)
    }

    fn add_subject_keys(&self, log: &str, rows: &[crate::keys::StoredKey]) -> Result<()> {
        keys::insert(&mut Self::lock(&self.keys), log, rows)
    }

    fn erase_subject_key(&self, log: &str, subject_ref: &str) -> Result<crate::keys::Shredded> {
        keys::erase(&mut Self::lock(&self.keys), log, subject_ref)
    }

    fn segments(&self, log: &str) -> Result<Vec<crate::retention::Segment>> {
        let conn = Self::lock(&self.reader);
        match self.log_id(&conn, log)? {
            Some(id) => retention::segments(&conn, id),
            None => Ok(Vec::new()),
        }
    }

    fn retire(
        &self,
        log: &str,
        segment: &crate::retention::Segment,
        rows: &[crate::retention::Retired],
    ) -> Result<()> {
        let mut conn = Self::lock(&self.writer);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let log_id = self
            .log_id(&tx, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        retention::retire(&tx, log_id, segment, rows)?;
        tx.commit()?;
        Ok(())
    }

    fn retired(&self, log: &str, from: u64, to: u64) -> Result<Vec<crate::retention::Retired>> {
        let conn = Self::lock(&self.reader);
        match self.log_id(&conn, log)? {
            Some(id) => retention::retired(&conn, id, from, to),
            None => Ok(Vec::new()),
        }
    }

    fn retired_event(
        &self,
        log: &str,
        event_id: &str,
    ) -> Result<Option<crate::retention::Retired>> {
        let conn = Self::lock(&self.reader);
        match self.log_id(&conn, log)? {
            Some(id) => retention::retired_event(&conn, id, event_id),
            None => Ok(None),
        }
    }

    fn expiries(&self, log: &str) -> Result<Vec<crate::retention::Expiry>> {
        let conn = Self::lock(&self.reader);
        match self.log_id(&conn, log)? {
            Some(id) => retention::expiries(&conn, id),
            None => Ok(Vec::new()),
        }
    }

    fn add_expiry(&self, log: &str, expiry: &crate::retention::Expiry) -> Result<()> {
        let conn = Self::lock(&self.writer);
        let log_id = self
            .log_id(&conn, log)?
            .ok_or_else(|| StoreError::NotFound(format!("log {log:?}")))?;
        retention::add_expiry(&conn, log_id, expiry)
    }

    fn holds(&self, log: &str) -> Result<Vec<crate::retention::Hold>> {
        retention::holds(&Self::lock(&self.reader), log)
    }

    fn add_hold(&self, log: &str, hold: &crate::retention::Hold) -> Result<()> {
        retention::add_hold(&Self::lock(&self.writer), log, hold)
    }

    fn release_hold(&self, log: &str, release: &crate::retention::Release) -> Result<()> {
        retention::release_hold(&Self::lock(&self.writer), log, release)
    }

    /// An exclusive lock (flock) on `<store file>.retention-lock` beside the store: released
    /// when the guard closes the file, or when the process dies. The store file is the one
    /// SQLite opened (its symbolic links resolved), so processes that name it through
    /// different links share one lock.
    fn retention_lock(&self, waiting: &mut dyn FnMut()) -> Result<Box<dyn Send>> {
        let opened = Self::lock(&self.writer).path().map(str::to_owned);
        let Some(mut path) = opened.filter(|p| !p.is_empty()) else {
            return Err(StoreError::Retention(format!(
                "{} is not a database file: retention needs a store on disk",
                self.path.display()
            )));
        };
        path.push_str(".retention-lock");
        let failed = |e: std::io::Error| {
            StoreError::Retention(format!(
                "taking the retention lock {}: {e}",
                std::path::Path::new(&path).display()
            ))
        };
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(failed)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                waiting();
                file.lock().map_err(failed)?;
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(failed(e)),
        }
        Ok(Box::new(file))
    }

    fn checkpoints(&self, log: &str) -> Result<Vec<StoredCheckpoint>> {
        let conn = Self::lock(&self.reader);
        let Some(log_id) = self.log_id(&conn, log)? else {
            return Ok(Vec::new());
        };
        let mut stmt = conn.prepare_cached(
            "SELECT size, root, note, created_at FROM checkpoints WHERE log_id = ?1 ORDER BY size",
        )?;
        let rows = stmt.query_map([log_id], |r| {
            Ok(StoredCheckpoint {
                number: 0,
                size: r.get::<_, i64>(0)? as u64,
                root: to_hash(&any_bytes(r, 1)?),
                note: r.get(2)?,
                created_at: r.get(3)?,
            })
        })?;
        let mut out = rows.collect::<rusqlite::Result<Vec<_>>>()?;
        for (i, cp) in out.iter_mut().enumerate() {
            cp.number = i as u64 + 1;
        }
        Ok(out)
    }

    fn latest_checkpoint(&self, log: &str) -> Result<Option<StoredCheckpoint>> {
        let conn = Self::lock(&self.reader);
        let Some(log_id) = self.log_id(&conn, log)? else {
            return Ok(None);
        };
        // One row through the (log_id, size) index instead of every checkpoint's note.
        let mut stmt = conn.prepare_cached(
            "SELECT size, root, note, created_at, (SELECT count(*) FROM checkpoints WHERE log_id = ?1) \
             FROM checkpoints WHERE log_id = ?1 ORDER BY size DESC LIMIT 1",
        )?;
        Ok(stmt
            .query_row([log_id], |r| {
                Ok(StoredCheckpoint {
                    size: r.get::<_, i64>(0)? as u64,
                    root: to_hash(&any_bytes(r, 1)?),
                    note: r.get(2)?,
                    created_at: r.get(3)?,
                    number: r.get::<_, i64>(4)? as u64,
                })
            })
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(seq: u64, event_id: &str) -> NewEntry {
        NewEntry {
            seq,
            event_id: event_id.to_owned(),
            recorded_at: 0,
            occurred_at: 0,
            event_type: "task.created".into(),
            task_id: "t1".into(),
            index: Default::default(),
            entry: format!("entry {seq}").into_bytes(),
            leaf_hash: [0; 32],
            chain_hash: [0; 32],
        }
    }

    fn open() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("trail.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn row_ids_put_logs_apart_and_seqs_in_order() {
        assert_eq!(entry_id(1, 0), 1 << 40);
        assert_eq!(entry_id(1, 5), (1 << 40) | 5);
        assert!(entry_id(1, SEQ_MASK as u64) < entry_id(2, 0));
        assert_eq!(id_range(3, 2, Some(7)), (entry_id(3, 2), entry_id(3, 7)));
        assert_eq!(id_range(3, 0, None), (3 << 40, 4 << 40));
        // Out-of-range seqs clamp to the end of the log, never into the next one.
        assert_eq!(entry_id(3, u64::MAX), 4 << 40);
    }

    #[test]
    fn generated_columns_read_back_log_and_seq() {
        let (_dir, store) = open();
        for log in ["a", "b"] {
            store
                .append(log, &mut |tx| tx.insert(&[row(0, "x"), row(1, "y")], &[]))
                .unwrap();
        }
        let conn = SqliteStore::lock(&store.reader);
        let rows: Vec<(i64, i64, i64)> = conn
            .prepare("SELECT id, log_id, seq FROM entries ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let expected: Vec<(i64, i64, i64)> = [(1, 0), (1, 1), (2, 0), (2, 1)]
            .into_iter()
            .map(|(log, seq)| (entry_id(log, seq as u64), log, seq))
            .collect();
        assert_eq!(rows, expected);
        drop(conn);
        assert_eq!(store.head("b").unwrap().size, 2);
        assert_eq!(store.entry("a", 1).unwrap().unwrap().event_id, "y");
        assert!(store.entry("a", 2).unwrap().is_none());
    }

    #[test]
    fn a_stored_event_id_is_refused_as_duplicate_event_id() {
        let (_dir, store) = open();
        store
            .append("a", &mut |tx| tx.insert(&[row(0, "x")], &[]))
            .unwrap();
        let err = store
            .append("a", &mut |tx| tx.insert(&[row(1, "y"), row(2, "x")], &[]))
            .unwrap_err();
        assert!(
            matches!(&err, StoreError::DuplicateEventId(id) if id == "x"),
            "{err:?}"
        );
        assert_eq!(store.head("a").unwrap().size, 1, "rolled back");
        // Another log may hold the same id.
        store
            .append("b", &mut |tx| tx.insert(&[row(0, "x")], &[]))
            .unwrap();
        // A seq taken twice is some other failure, not a duplicate event id.
        let err = store
            .append("a", &mut |tx| tx.insert(&[row(0, "z")], &[]))
            .unwrap_err();
        assert!(matches!(err, StoreError::Sqlite(_)), "{err:?}");
    }
}
