//! The embedded SQLite backend: WAL with synchronous=FULL (every commit is fsync'd before it
//! is acknowledged), triggers that abort any UPDATE or DELETE, and indexes for the queries by
//! task, actor, type, model and time.

use crate::error::{Result, StoreError};
use crate::store::{
    to_hash, AppendTx, Head, NewEntry, Node, NodeRows, Store, StoredCheckpoint, StoredEntry,
};
use aitrail_core::merkle::Hash;
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

/// Schema version written to `PRAGMA user_version`.
const SCHEMA_VERSION: i64 = 1;

/// The schema. Exposed so benchmarks can build the same table and indexes without aitrail.
pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS logs (
    id   INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS entries (
    log_id         INTEGER NOT NULL REFERENCES logs(id),
    seq            INTEGER NOT NULL,
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
CREATE UNIQUE INDEX IF NOT EXISTS entries_seq   ON entries(log_id, seq);
CREATE UNIQUE INDEX IF NOT EXISTS entries_event ON entries(log_id, event_id);
CREATE INDEX IF NOT EXISTS entries_task  ON entries(log_id, task_id, occurred_at);
CREATE INDEX IF NOT EXISTS entries_actor ON entries(log_id, actor_id, occurred_at) WHERE actor_id IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_type  ON entries(log_id, type, occurred_at);
CREATE INDEX IF NOT EXISTS entries_model ON entries(log_id, model_name, model_version, occurred_at) WHERE model_name IS NOT NULL;
CREATE INDEX IF NOT EXISTS entries_time  ON entries(log_id, occurred_at);
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

/// Append-only: every table refuses UPDATE and DELETE.
fn triggers() -> String {
    let mut sql = String::new();
    for table in ["logs", "entries", "nodes", "checkpoints"] {
        for op in ["UPDATE", "DELETE"] {
            sql += &format!(
                "CREATE TRIGGER IF NOT EXISTS {table}_no_{name} BEFORE {op} ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'aitrail is append-only: {op} on {table} is refused'); END;\n",
                name = op.to_lowercase()
            );
        }
    }
    sql
}

/// Pragmas for every connection: WAL, full fsync on commit, wait for other writers.
pub fn configure(conn: &Connection) -> Result<()> {
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.pragma_update(None, "cache_size", -65536)?;
    Ok(())
}

/// SQLite store. One connection writes, another reads, so reads do not wait for commits.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
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
            tx.execute_batch(&triggers())?;
            tx.pragma_update(None, "user_version", SCHEMA_VERSION)?;
            tx.commit()?;
        }
        let reader = Connection::open(path)?;
        configure(&reader)?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            log_ids: Mutex::new(HashMap::new()),
        })
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

fn stored_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoredEntry> {
    Ok(StoredEntry {
        seq: row.get::<_, i64>(0)? as u64,
        event_id: String::from_utf8_lossy(&any_bytes(row, 1)?).into_owned(),
        recorded_at: row.get(2)?,
        entry: any_bytes(row, 3)?,
        leaf_hash: any_bytes(row, 4)?,
        chain_hash: any_bytes(row, 5)?,
    })
}

/// A column's bytes whatever its storage class: aitrail writes BLOBs, but someone editing
/// the file may leave TEXT or numbers behind, and verify must still read the row to report it.
fn any_bytes(row: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Vec<u8>> {
    use rusqlite::types::ValueRef;
    Ok(match row.get_ref(idx)? {
        ValueRef::Blob(b) | ValueRef::Text(b) => b.to_vec(),
        ValueRef::Integer(i) => i.to_string().into_bytes(),
        ValueRef::Real(f) => f.to_string().into_bytes(),
        ValueRef::Null => Vec::new(),
    })
}

const ENTRY_COLUMNS: &str = "seq, event_id, recorded_at, entry, leaf_hash, chain_hash";

fn head_of(conn: &Connection, log_id: Option<i64>) -> Result<Head> {
    let Some(log_id) = log_id else {
        return Ok(Head::default());
    };
    let head = conn
        .prepare_cached("SELECT seq, chain_hash, recorded_at FROM entries WHERE log_id = ?1 ORDER BY seq DESC LIMIT 1")?
        .query_row([log_id], |r| {
            Ok(Head { size: r.get::<_, i64>(0)? as u64 + 1, chain_hash: to_hash(&r.get::<_, Vec<u8>>(1)?), recorded_at: r.get(2)? })
        })
        .optional()?;
    Ok(head.unwrap_or_default())
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
    if level == 0 {
        let mut stmt = conn.prepare_cached("SELECT leaf_hash FROM entries WHERE log_id = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq")?;
        let rows = stmt.query_map(params![log_id, from as i64, to as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        for r in rows {
            out.push(to_hash(&r?));
        }
    } else {
        let mut stmt =
            conn.prepare_cached("SELECT hash FROM nodes WHERE log_id = ?1 AND level = ?2 AND idx >= ?3 AND idx < ?4 ORDER BY idx")?;
        let rows = stmt.query_map(params![log_id, level, from as i64, to as i64], |r| {
            r.get::<_, Vec<u8>>(0)
        })?;
        for r in rows {
            out.push(to_hash(&r?));
        }
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

    fn insert(&mut self, entries: &[NewEntry], nodes: &[Node]) -> Result<()> {
        let mut stmt = self.conn.prepare_cached(
            "INSERT INTO entries (log_id, seq, event_id, recorded_at, occurred_at, type, task_id, actor_id, model_name, \
             model_version, prompt_version, decision, subject_ref, entry, leaf_hash, chain_hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
        )?;
        for e in entries {
            stmt.execute(params![
                self.log_id,
                e.seq as i64,
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
            ])?;
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
                tx.last_insert_rowid()
            }
        };
        f(&mut SqliteTx { conn: &tx, log_id })?;
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
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE log_id = ?1 AND seq = ?2"
        ))?;
        Ok(stmt
            .query_row(params![log_id, seq as i64], stored_entry)
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
        let mut stmt = tx.prepare_cached(&format!(
            "SELECT {ENTRY_COLUMNS} FROM entries WHERE log_id = ?1 AND seq >= ?2 ORDER BY seq"
        ))?;
        let mut rows = stmt.query(params![log_id, from as i64])?;
        while let Some(row) = rows.next()? {
            if !f(stored_entry(row)?)? {
                break;
            }
        }
        Ok(())
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
        f(&mut SqliteTx { conn: &tx, log_id })
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
                    hash: to_hash(&r.get::<_, Vec<u8>>(2)?),
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
                root: to_hash(&r.get::<_, Vec<u8>>(1)?),
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
        Ok(self.checkpoints(log)?.pop())
    }
}
