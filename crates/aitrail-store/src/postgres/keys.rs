//! The PostgreSQL key table `aitrail.subject_keys`: subjects' wrapped data keys. It is the
//! one table the application role may DELETE from (erasure); UPDATE and TRUNCATE are still
//! refused by triggers. After a deletion the table is vacuumed, when the connected role may
//! (its owner or a superuser), so the dead row's bytes are reclaimed from the heap.

use crate::error::Result;
use crate::keys::{Shredded, StoredKey};
use ::postgres::Client;

/// Migration 2.
pub const V3: &str = r#"
CREATE TABLE aitrail.subject_keys (
    log         text NOT NULL,
    subject_ref text NOT NULL,
    key_id      text NOT NULL,
    wrapped     bytea NOT NULL,   -- AES-256-GCM under the tenant's key-encryption key
    created_at  bigint NOT NULL,  -- Unix microseconds
    PRIMARY KEY (log, subject_ref)
);
-- Deletion (erasure) is allowed here and nowhere else; a key is never changed in place.
CREATE TRIGGER refuse_update BEFORE UPDATE ON aitrail.subject_keys
    FOR EACH ROW EXECUTE FUNCTION aitrail.refuse_change();
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON aitrail.subject_keys
    FOR EACH STATEMENT EXECUTE FUNCTION aitrail.refuse_change();
ALTER TABLE aitrail.subject_keys ENABLE ALWAYS TRIGGER refuse_update;
ALTER TABLE aitrail.subject_keys ENABLE ALWAYS TRIGGER refuse_truncate;
"#;

pub fn select(client: &mut Client, log: &str, refs: &[String]) -> Result<Vec<StoredKey>> {
    let rows = client.query(
        "SELECT subject_ref, key_id, wrapped, created_at FROM aitrail.subject_keys \
         WHERE log = $1 AND subject_ref = ANY($2)",
        &[&log, &refs],
    )?;
    rows.iter()
        .map(|r| {
            Ok(StoredKey {
                subject_ref: r.try_get(0)?,
                key_id: r.try_get(1)?,
                wrapped: r.try_get(2)?,
                created_at: r.try_get(3)?,
            })
        })
        .collect()
}

pub fn insert(client: &mut Client, log: &str, rows: &[StoredKey]) -> Result<()> {
    let mut tx = client.transaction()?;
    let stmt = tx.prepare(
        "INSERT INTO aitrail.subject_keys (log, subject_ref, key_id, wrapped, created_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (log, subject_ref) DO NOTHING",
    )?;
    for k in rows {
        tx.execute(
            &stmt,
            &[&log, &k.subject_ref, &k.key_id, &k.wrapped, &k.created_at],
        )?;
    }
    tx.commit()?;
    Ok(())
}

pub fn erase(client: &mut Client, log: &str, subject_ref: &str) -> Result<Shredded> {
    let key_id: Option<String> = client
        .query_opt(
            "DELETE FROM aitrail.subject_keys WHERE log = $1 AND subject_ref = $2 RETURNING key_id",
            &[&log, &subject_ref],
        )?
        .map(|r| r.try_get(0))
        .transpose()?;
    let mut warnings = Vec::new();
    if key_id.is_some() {
        let may_vacuum: bool = client
            .query_one(
                "SELECT pg_has_role(current_user, c.relowner, 'USAGE') OR r.rolsuper \
                 FROM pg_class c, pg_roles r \
                 WHERE c.oid = 'aitrail.subject_keys'::regclass AND r.rolname = current_user",
                &[],
            )?
            .try_get(0)?;
        if may_vacuum {
            client.batch_execute("VACUUM aitrail.subject_keys")?;
        } else {
            warnings.push(
                "the key row is deleted but not yet vacuumed: this role does not own aitrail.subject_keys; run `VACUUM aitrail.subject_keys` as its owner (autovacuum will also reclaim it)".into(),
            );
        }
    }
    Ok(Shredded { key_id, warnings })
}
