//! SQLite side of retention (schema version 4): segments, retired hashes, expiries and holds,
//! all append-only. The one DELETE aitrail makes on `entries` is `retire`'s, and the
//! trigger allows it only for rows whose hashes are already kept in `retired`.

use super::{any_bytes, entry_id, SEQ_MASK};
use crate::error::{Result, StoreError};
use crate::retention::{Expiry, Hold, HoldScope, Release, Retired, Segment};
use crate::store::to_hash;
use rusqlite::{params, Connection, OptionalExtension};

pub const TABLES: [&str; 5] = ["retired", "segments", "expiries", "holds", "hold_releases"];

pub const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS retired (
    log_id      INTEGER NOT NULL,
    seq         INTEGER NOT NULL,
    event_id    TEXT NOT NULL,
    recorded_at INTEGER NOT NULL,
    leaf_hash   BLOB NOT NULL,
    chain_hash  BLOB NOT NULL,
    PRIMARY KEY (log_id, seq)
) WITHOUT ROWID;
CREATE UNIQUE INDEX IF NOT EXISTS retired_event ON retired(log_id, event_id);
CREATE TABLE IF NOT EXISTS segments (
    log_id          INTEGER NOT NULL,
    first_seq       INTEGER NOT NULL,
    end_seq         INTEGER NOT NULL,
    day             TEXT NOT NULL,
    key             TEXT NOT NULL,
    root            BLOB NOT NULL,
    sha256          BLOB NOT NULL,
    checkpoint_size INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    archived_at     INTEGER NOT NULL,
    PRIMARY KEY (log_id, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS expiries (
    log_id        INTEGER NOT NULL,
    first_seq     INTEGER NOT NULL,
    end_seq       INTEGER NOT NULL,
    retention_seq INTEGER NOT NULL,
    record        BLOB NOT NULL,     -- entry bytes of the audit.retention event
    expired_at    INTEGER NOT NULL,
    PRIMARY KEY (log_id, first_seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS holds (
    log        TEXT NOT NULL,
    id         TEXT NOT NULL,
    kind       TEXT NOT NULL,
    value      TEXT,
    from_at    INTEGER,
    to_at      INTEGER,
    reason     TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    PRIMARY KEY (log, id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS hold_releases (
    log         TEXT NOT NULL,
    hold_id     TEXT NOT NULL,
    released_by TEXT NOT NULL,
    reason      TEXT NOT NULL,
    released_at INTEGER NOT NULL,
    PRIMARY KEY (log, hold_id)
) WITHOUT ROWID;
"#;

/// The entries' DELETE trigger: refused unless the row's hashes are kept in `retired`.
pub const ENTRIES_DELETE_TRIGGER: &str = "CREATE TRIGGER IF NOT EXISTS entries_no_delete BEFORE DELETE ON entries \
     WHEN NOT EXISTS (SELECT 1 FROM retired WHERE log_id = OLD.id >> 40 AND seq = (OLD.id & 0xFFFFFFFFFF)) \
     BEGIN SELECT RAISE(ABORT, 'aitrail is append-only: DELETE on entries is refused'); END;\n";

pub fn retire(conn: &Connection, log_id: i64, seg: &Segment, rows: &[Retired]) -> Result<()> {
    conn.execute(
        "INSERT INTO segments (log_id, first_seq, end_seq, day, key, root, sha256, checkpoint_size, expires_at, archived_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        params![
            log_id,
            seg.first_seq as i64,
            seg.end_seq as i64,
            seg.day,
            seg.key,
            &seg.root[..],
            &seg.sha256[..],
            seg.checkpoint_size as i64,
            seg.expires_at,
            seg.archived_at
        ],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO retired (log_id, seq, event_id, recorded_at, leaf_hash, chain_hash) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?;
    for r in rows {
        stmt.execute(params![
            log_id,
            r.seq as i64,
            r.event_id,
            r.recorded_at,
            &r.leaf_hash[..],
            &r.chain_hash[..]
        ])?;
    }
    let dropped = conn.execute(
        "DELETE FROM entries WHERE id >= ?1 AND id < ?2",
        [
            entry_id(log_id, seg.first_seq),
            entry_id(log_id, seg.end_seq),
        ],
    )?;
    if dropped != rows.len() {
        return Err(StoreError::Corrupt(format!(
            "retiring seqs {} to {}: {dropped} hot rows, {} expected",
            seg.first_seq,
            seg.end_seq - 1,
            rows.len()
        )));
    }
    Ok(())
}

pub fn segments(conn: &Connection, log_id: i64) -> Result<Vec<Segment>> {
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, end_seq, day, key, root, sha256, checkpoint_size, expires_at, archived_at \
         FROM segments WHERE log_id = ?1 ORDER BY first_seq",
    )?;
    let rows = stmt.query_map([log_id], |r| {
        Ok(Segment {
            first_seq: r.get::<_, i64>(0)? as u64,
            end_seq: r.get::<_, i64>(1)? as u64,
            day: r.get(2)?,
            key: r.get(3)?,
            root: to_hash(&any_bytes(r, 4)?),
            sha256: to_hash(&any_bytes(r, 5)?),
            checkpoint_size: r.get::<_, i64>(6)? as u64,
            expires_at: r.get(7)?,
            archived_at: r.get(8)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn retired_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Retired> {
    Ok(Retired {
        seq: (r.get::<_, i64>(0)? & SEQ_MASK) as u64,
        event_id: r.get(1)?,
        recorded_at: r.get(2)?,
        leaf_hash: to_hash(&any_bytes(r, 3)?),
        chain_hash: to_hash(&any_bytes(r, 4)?),
    })
}

pub fn retired(conn: &Connection, log_id: i64, from: u64, to: u64) -> Result<Vec<Retired>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, event_id, recorded_at, leaf_hash, chain_hash FROM retired \
         WHERE log_id = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![log_id, from as i64, to as i64], retired_row)?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn retired_event(conn: &Connection, log_id: i64, event_id: &str) -> Result<Option<Retired>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, event_id, recorded_at, leaf_hash, chain_hash FROM retired \
         WHERE log_id = ?1 AND event_id = ?2",
    )?;
    Ok(stmt
        .query_row(params![log_id, event_id], retired_row)
        .optional()?)
}

/// Whether any entry of the log left the hot store (then inserts check `retired` for ids).
pub fn any_retired(conn: &Connection, log_id: i64) -> Result<bool> {
    let mut stmt = conn.prepare_cached("SELECT 1 FROM retired WHERE log_id = ?1 LIMIT 1")?;
    Ok(stmt.exists([log_id])?)
}

/// Leaf hashes of retired seqs `from..to` (those there are), for proofs and the head.
pub fn retired_leaves(conn: &Connection, log_id: i64, from: u64, to: u64) -> Result<Vec<[u8; 32]>> {
    let mut stmt = conn.prepare_cached(
        "SELECT leaf_hash FROM retired WHERE log_id = ?1 AND seq >= ?2 AND seq < ?3 ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![log_id, from as i64, to as i64], |r| {
        Ok(to_hash(&any_bytes(r, 0)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// The last retired row: the head of a log whose hot rows are all gone.
pub fn last_retired(conn: &Connection, log_id: i64) -> Result<Option<Retired>> {
    let mut stmt = conn.prepare_cached(
        "SELECT seq, event_id, recorded_at, leaf_hash, chain_hash FROM retired \
         WHERE log_id = ?1 ORDER BY seq DESC LIMIT 1",
    )?;
    Ok(stmt.query_row([log_id], retired_row).optional()?)
}

pub fn expiries(conn: &Connection, log_id: i64) -> Result<Vec<Expiry>> {
    let mut stmt = conn.prepare_cached(
        "SELECT first_seq, end_seq, retention_seq, record, expired_at FROM expiries WHERE log_id = ?1 ORDER BY first_seq",
    )?;
    let rows = stmt.query_map([log_id], |r| {
        Ok(Expiry {
            first_seq: r.get::<_, i64>(0)? as u64,
            end_seq: r.get::<_, i64>(1)? as u64,
            retention_seq: r.get::<_, i64>(2)? as u64,
            record: any_bytes(r, 3)?.into_owned(),
            expired_at: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

pub fn add_expiry(conn: &Connection, log_id: i64, e: &Expiry) -> Result<()> {
    conn.execute(
        "INSERT INTO expiries (log_id, first_seq, end_seq, retention_seq, record, expired_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            log_id,
            e.first_seq as i64,
            e.end_seq as i64,
            e.retention_seq as i64,
            e.record,
            e.expired_at
        ],
    )?;
    Ok(())
}

pub fn holds(conn: &Connection, log: &str) -> Result<Vec<Hold>> {
    let mut stmt = conn.prepare_cached(
        "SELECT h.id, h.kind, h.value, h.from_at, h.to_at, h.reason, h.created_by, h.created_at, \
                r.released_by, r.reason, r.released_at \
         FROM holds h LEFT JOIN hold_releases r ON r.log = h.log AND r.hold_id = h.id \
         WHERE h.log = ?1 ORDER BY h.created_at, h.id",
    )?;
    let mut rows = stmt.query([log])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        let id: String = r.get(0)?;
        let released = match r.get::<_, Option<String>>(8)? {
            Some(released_by) => Some(Release {
                hold_id: id.clone(),
                released_by,
                reason: r.get(9)?,
                released_at: r.get(10)?,
            }),
            None => None,
        };
        out.push(Hold {
            scope: HoldScope::from_row(&r.get::<_, String>(1)?, r.get(2)?, r.get(3)?, r.get(4)?)?,
            id,
            reason: r.get(5)?,
            created_by: r.get(6)?,
            created_at: r.get(7)?,
            released,
        });
    }
    Ok(out)
}

pub fn add_hold(conn: &Connection, log: &str, h: &Hold) -> Result<()> {
    let (kind, value, from, to) = h.scope.to_row();
    conn.execute(
        "INSERT INTO holds (log, id, kind, value, from_at, to_at, reason, created_by, created_at) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            log,
            h.id,
            kind,
            value,
            from,
            to,
            h.reason,
            h.created_by,
            h.created_at
        ],
    )?;
    Ok(())
}

pub fn release_hold(conn: &Connection, log: &str, r: &Release) -> Result<()> {
    let exists: Option<i64> = conn
        .query_row(
            "SELECT 1 FROM holds WHERE log = ?1 AND id = ?2",
            params![log, r.hold_id],
            |row| row.get(0),
        )
        .optional()?;
    if exists.is_none() {
        return Err(StoreError::NotFound(format!(
            "hold {} in log {log:?}",
            r.hold_id
        )));
    }
    let inserted = conn.execute(
        "INSERT OR IGNORE INTO hold_releases (log, hold_id, released_by, reason, released_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        params![log, r.hold_id, r.released_by, r.reason, r.released_at],
    )?;
    if inserted == 0 {
        return Err(StoreError::Refused(format!(
            "hold {} was already released",
            r.hold_id
        )));
    }
    Ok(())
}
