//! API tokens: only a SHA-256 of each token is kept, and like everything else the tables are
//! append-only: revoking a token appends a revocation, it never edits or deletes a row.
//!
//! Tokens are 32 random bytes, so a plain SHA-256 is enough to make the stored value useless
//! to someone who reads the database (there is nothing to guess).

use crate::error::{Result, StoreError};
use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::path::Path;
use std::sync::Mutex;

/// What a token may do. Each role includes the ones before it, except `Ingest`, which may
/// only append.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Append events, nothing else.
    Ingest,
    /// Read, with sensitive content withheld.
    Viewer,
    /// Read everything, export, proofs.
    Auditor,
    /// Also tokens, erasure, retention.
    Admin,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "ingest" => Some(Role::Ingest),
            "viewer" => Some(Role::Viewer),
            "auditor" => Some(Role::Auditor),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
            Role::Admin => "admin",
        }
    }

    /// Whether this role may append events.
    pub fn can_write(self) -> bool {
        matches!(self, Role::Ingest | Role::Admin)
    }

    /// Whether this role may read at least at `level` (Viewer, Auditor or Admin).
    pub fn can_read(self, level: Role) -> bool {
        self != Role::Ingest && self >= level
    }
}

/// A token as stored (never the token itself).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TokenRecord {
    pub id: String,
    pub name: String,
    pub role: Role,
    pub tenant: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Hex SHA-256 of a token: the only form stored.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Where tokens are kept.
pub trait TokenStore: Send + Sync {
    fn add(&self, record: &TokenRecord, hash: &str) -> Result<()>;
    fn revoke(&self, id: &str, at: i64) -> Result<()>;
    fn list(&self) -> Result<Vec<TokenRecord>>;
    /// The token with this hash, when it exists and is not revoked.
    fn find_active(&self, hash: &str) -> Result<Option<TokenRecord>>;
}

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS tokens (
    id         TEXT PRIMARY KEY,
    hash       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    role       TEXT NOT NULL,
    tenant     TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS token_revocations (
    token_id   TEXT PRIMARY KEY REFERENCES tokens(id),
    revoked_at INTEGER NOT NULL
);
CREATE TRIGGER IF NOT EXISTS tokens_no_update BEFORE UPDATE ON tokens
    BEGIN SELECT RAISE(ABORT, 'aitrail is append-only: UPDATE on tokens is refused'); END;
CREATE TRIGGER IF NOT EXISTS tokens_no_delete BEFORE DELETE ON tokens
    BEGIN SELECT RAISE(ABORT, 'aitrail is append-only: DELETE on tokens is refused'); END;
CREATE TRIGGER IF NOT EXISTS token_revocations_no_update BEFORE UPDATE ON token_revocations
    BEGIN SELECT RAISE(ABORT, 'aitrail is append-only: UPDATE on token_revocations is refused'); END;
CREATE TRIGGER IF NOT EXISTS token_revocations_no_delete BEFORE DELETE ON token_revocations
    BEGIN SELECT RAISE(ABORT, 'aitrail is append-only: DELETE on token_revocations is refused'); END;
"#;

/// Tokens in a SQLite file (the store's own file by default).
pub struct SqliteTokens {
    conn: Mutex<Connection>,
}

impl SqliteTokens {
    pub fn open(path: &Path) -> Result<SqliteTokens> {
        let conn = Connection::open(path)?;
        crate::sqlite::configure(&conn)?;
        conn.execute_batch(SCHEMA)?;
        Ok(SqliteTokens {
            conn: Mutex::new(conn),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn record(row: &rusqlite::Row<'_>) -> rusqlite::Result<TokenRecord> {
    let role: String = row.get(2)?;
    Ok(TokenRecord {
        id: row.get(0)?,
        name: row.get(1)?,
        role: Role::parse(&role).unwrap_or(Role::Ingest),
        tenant: row.get(3)?,
        created_at: row.get(4)?,
        revoked_at: row.get(5)?,
    })
}

const SELECT: &str = "SELECT t.id, t.name, t.role, t.tenant, t.created_at, r.revoked_at \
                      FROM tokens t LEFT JOIN token_revocations r ON r.token_id = t.id";

impl TokenStore for SqliteTokens {
    fn add(&self, r: &TokenRecord, hash: &str) -> Result<()> {
        self.conn().execute(
            "INSERT INTO tokens (id, hash, name, role, tenant, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![r.id, hash, r.name, r.role.as_str(), r.tenant, r.created_at],
        )?;
        Ok(())
    }

    fn revoke(&self, id: &str, at: i64) -> Result<()> {
        let conn = self.conn();
        let exists: Option<String> = conn
            .query_row("SELECT id FROM tokens WHERE id = ?1", [id], |r| r.get(0))
            .optional()?;
        if exists.is_none() {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        conn.execute(
            "INSERT OR IGNORE INTO token_revocations (token_id, revoked_at) VALUES (?1, ?2)",
            params![id, at],
        )?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<TokenRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!("{SELECT} ORDER BY t.created_at, t.id"))?;
        let rows = stmt
            .query_map([], record)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    fn find_active(&self, hash: &str) -> Result<Option<TokenRecord>> {
        let conn = self.conn();
        let mut stmt = conn.prepare_cached(&format!(
            "{SELECT} WHERE t.hash = ?1 AND r.revoked_at IS NULL"
        ))?;
        Ok(stmt.query_row([hash], record).optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_find_revoke() {
        let dir = tempfile::tempdir().unwrap();
        let tokens = SqliteTokens::open(&dir.path().join("t.db")).unwrap();
        let rec = TokenRecord {
            id: "tk_1".into(),
            name: "ci".into(),
            role: Role::Viewer,
            tenant: "default".into(),
            created_at: 5,
            revoked_at: None,
        };
        tokens.add(&rec, &token_hash("secret")).unwrap();
        assert_eq!(
            tokens.find_active(&token_hash("secret")).unwrap(),
            Some(rec.clone())
        );
        assert_eq!(tokens.find_active(&token_hash("other")).unwrap(), None);
        tokens.revoke("tk_1", 9).unwrap();
        assert_eq!(tokens.find_active(&token_hash("secret")).unwrap(), None);
        assert_eq!(tokens.list().unwrap()[0].revoked_at, Some(9));
        assert!(matches!(
            tokens.revoke("tk_2", 9),
            Err(StoreError::NotFound(_))
        ));
        let conn = Connection::open(dir.path().join("t.db")).unwrap();
        assert!(conn.execute("DELETE FROM token_revocations", []).is_err());
        assert!(conn
            .execute("UPDATE tokens SET role = 'admin'", [])
            .is_err());
    }

    #[test]
    fn roles() {
        assert!(Role::Admin.can_write() && Role::Ingest.can_write() && !Role::Auditor.can_write());
        assert!(!Role::Ingest.can_read(Role::Viewer));
        assert!(Role::Viewer.can_read(Role::Viewer) && !Role::Viewer.can_read(Role::Auditor));
        assert!(Role::Admin.can_read(Role::Auditor));
    }
}
