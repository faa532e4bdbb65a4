//! The SQLite key table: subjects' wrapped data keys, the one table rows are deleted from.
//! An erasure deletes with `secure_delete` on (SQLite overwrites the freed bytes with
//! zeros) and then runs `wal_checkpoint(TRUNCATE)`, so the key's bytes stay neither in a
//! free page of the file nor in an old frame of the WAL.

use crate::error::Result;
use crate::keys::{Shredded, StoredKey};
use rusqlite::{params, Connection, OptionalExtension};

/// Created by the schema migration to version 2. No triggers: deletion is allowed here.
pub const KEY_SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS subject_keys (
    log         TEXT NOT NULL,
    subject_ref TEXT NOT NULL,
    key_id      TEXT NOT NULL,
    wrapped     BLOB NOT NULL,  -- AES-256-GCM under the tenant's key-encryption key
    created_at  INTEGER NOT NULL,
    PRIMARY KEY (log, subject_ref)
) WITHOUT ROWID;
"#;

pub fn select(conn: &Connection, log: &str, refs: &[String]) -> Result<Vec<StoredKey>> {
    let mut stmt = conn.prepare_cached(
        "SELECT key_id, wrapped, created_at FROM subject_keys WHERE log = ?1 AND subject_ref = ?2",
    )?;
    let mut out = Vec::with_capacity(refs.len());
    for r in refs {
        let row = stmt
            .query_row(params![log, r], |row| {
                Ok(StoredKey {
                    subject_ref: r.clone(),
                    key_id: row.get(0)?,
                    wrapped: row.get(1)?,
                    created_at: row.get(2)?,
                })
            })
            .optional()?;
        out.extend(row);
    }
    Ok(out)
}

pub fn insert(conn: &mut Connection, log: &str, rows: &[StoredKey]) -> Result<()> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut stmt = tx.prepare_cached(
            "INSERT OR IGNORE INTO subject_keys (log, subject_ref, key_id, wrapped, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
        )?;
        for k in rows {
            stmt.execute(params![
                log,
                k.subject_ref,
                k.key_id,
                k.wrapped,
                k.created_at
            ])?;
        }
    }
    tx.commit()?;
    Ok(())
}

pub fn erase(conn: &mut Connection, log: &str, subject_ref: &str) -> Result<Shredded> {
    conn.pragma_update(None, "secure_delete", "ON")?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let key_id: Option<String> = tx
        .query_row(
            "DELETE FROM subject_keys WHERE log = ?1 AND subject_ref = ?2 RETURNING key_id",
            params![log, subject_ref],
            |r| r.get(0),
        )
        .optional()?;
    tx.commit()?;
    let mut warnings = Vec::new();
    if key_id.is_some() {
        // (busy, frames in the WAL, frames checkpointed): busy means another connection kept
        // the WAL from being emptied, and old frames may still hold the key's bytes.
        let (busy, frames, done): (i64, i64, i64) =
            conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
        if busy != 0 {
            warnings.push(format!(
                "the WAL could not be truncated ({done} of {frames} frames checkpointed; another process is reading the store): run `aitrail erase` again when it is idle, or stop the server first, to scrub old WAL frames"
            ));
        }
    }
    Ok(Shredded { key_id, warnings })
}
