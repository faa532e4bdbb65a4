//! API tokens in PostgreSQL (`aitrail.tokens`, `aitrail.token_revocations`): only hashes,
//! and like every aitrail table, write-once: a revocation is a row of its own.

use super::conn::{prepared, Conn, Micros};
use super::PgStore;
use crate::error::{Result, StoreError};
use crate::tokens::{Role, TokenRecord, TokenStore};
use ::postgres::Row;

const TOKEN_SELECT: &str = "SELECT t.id, t.name, t.role, t.tenant, t.created_at, r.revoked_at \
     FROM aitrail.tokens t LEFT JOIN aitrail.token_revocations r ON r.token_id = t.id";

fn token_record(row: &Row) -> Result<TokenRecord> {
    let role: String = row.try_get(2)?;
    Ok(TokenRecord {
        id: row.try_get(0)?,
        name: row.try_get(1)?,
        // An unknown role (not written by aitrail) grants the least: append only.
        role: Role::parse(&role).unwrap_or(Role::Ingest),
        tenant: row.try_get(3)?,
        created_at: row.try_get::<_, Micros>(4)?.0,
        revoked_at: row.try_get::<_, Option<Micros>>(5)?.map(|m| m.0),
    })
}

impl TokenStore for PgStore {
    fn add(&self, r: &TokenRecord, hash: &str) -> Result<()> {
        self.pool.get()?.client.execute(
            "INSERT INTO aitrail.tokens (id, hash, name, role, tenant, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            &[&r.id, &hash, &r.name, &r.role.as_str(), &r.tenant, &Micros(r.created_at)],
        )?;
        Ok(())
    }

    fn revoke(&self, id: &str, at: i64) -> Result<()> {
        let mut conn = self.pool.get()?;
        let exists = conn
            .client
            .query_opt("SELECT 1 FROM aitrail.tokens WHERE id = $1", &[&id])?
            .is_some();
        if !exists {
            return Err(StoreError::NotFound(format!("token {id}")));
        }
        conn.client.execute(
            "INSERT INTO aitrail.token_revocations (token_id, revoked_at) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &Micros(at)],
        )?;
        Ok(())
    }

    fn list(&self) -> Result<Vec<TokenRecord>> {
        let rows = self
            .pool
            .get()?
            .client
            .query(&format!("{TOKEN_SELECT} ORDER BY t.created_at, t.id"), &[])?;
        rows.iter().map(token_record).collect()
    }

    fn find_active(&self, hash: &str) -> Result<Option<TokenRecord>> {
        const FIND: &str = "SELECT t.id, t.name, t.role, t.tenant, t.created_at, r.revoked_at \
             FROM aitrail.tokens t LEFT JOIN aitrail.token_revocations r ON r.token_id = t.id \
             WHERE t.hash = $1 AND r.revoked_at IS NULL";
        let mut conn = self.pool.get()?;
        let Conn { client, cache, .. } = &mut *conn;
        let stmt = prepared(client, cache, FIND)?;
        client
            .query_opt(&stmt, &[&hash])?
            .map(|row| token_record(&row))
            .transpose()
    }
}
