//! PostgreSQL side of retention (migration 4): segments, retired hashes, expiries and holds,
//! all write-once, and `aitrail.drop_retired_day`, which detaches and drops a day's
//! partition once every row in it is retired with the same leaf hash.

use super::conn::Micros;
use super::seq_param;
use crate::error::{Result, StoreError};
use crate::retention::{Expiry, Hold, HoldScope, Release, Retired, Segment};
use crate::store::to_hash;
use ::postgres::{GenericClient, Row};
use uuid::Uuid;

/// Migration 4.
pub const V4: &str = r#"
CREATE TABLE aitrail.retired (
    log_id      integer NOT NULL,
    seq         bigint NOT NULL,
    event_id    uuid NOT NULL,
    recorded_at timestamptz NOT NULL,
    leaf_hash   bytea NOT NULL,
    chain_hash  bytea NOT NULL,
    PRIMARY KEY (log_id, seq)
);
CREATE INDEX retired_event ON aitrail.retired (log_id, event_id);
CREATE TABLE aitrail.segments (
    log_id          integer NOT NULL,
    first_seq       bigint NOT NULL,
    end_seq         bigint NOT NULL,
    day             date NOT NULL,
    key             text NOT NULL,
    root            bytea NOT NULL,
    sha256          bytea NOT NULL,
    checkpoint_size bigint NOT NULL,
    expires_at      timestamptz NOT NULL,
    archived_at     timestamptz NOT NULL,
    PRIMARY KEY (log_id, first_seq)
);
CREATE TABLE aitrail.expiries (
    log_id        integer NOT NULL,
    first_seq     bigint NOT NULL,
    end_seq       bigint NOT NULL,
    retention_seq bigint NOT NULL,
    record        bytea NOT NULL,  -- entry bytes of the audit.retention event
    expired_at    timestamptz NOT NULL,
    PRIMARY KEY (log_id, first_seq)
);
CREATE TABLE aitrail.holds (
    log        text NOT NULL,
    id         text NOT NULL,
    kind       text NOT NULL,
    value      text,
    from_at    bigint,
    to_at      bigint,
    reason     text NOT NULL,
    created_by text NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (log, id)
);
CREATE TABLE aitrail.hold_releases (
    log         text NOT NULL,
    hold_id     text NOT NULL,
    released_by text NOT NULL,
    reason      text NOT NULL,
    released_at timestamptz NOT NULL,
    PRIMARY KEY (log, hold_id),
    FOREIGN KEY (log, hold_id) REFERENCES aitrail.holds (log, id)
);
DO $do$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['retired', 'segments', 'expiries', 'holds', 'hold_releases'] LOOP
        EXECUTE format('CREATE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON aitrail.%I
                        FOR EACH ROW EXECUTE FUNCTION aitrail.refuse_change()', t);
        EXECUTE format('CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON aitrail.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION aitrail.refuse_change()', t);
        EXECUTE format('ALTER TABLE aitrail.%I ENABLE ALWAYS TRIGGER refuse_update_delete', t);
        EXECUTE format('ALTER TABLE aitrail.%I ENABLE ALWAYS TRIGGER refuse_truncate', t);
    END LOOP;
END
$do$;

-- Detaches and drops the partition of `day` when every row in it is retired (same log,
-- seq and leaf hash in aitrail.retired) and inside a recorded segment; returns whether it
-- did. SECURITY DEFINER: the application role may call it without any right to drop tables.
-- A day still holding a row that is not retired (another log not archived yet) is left
-- alone, and a day less than two days old is refused: whatever the role writes into the
-- bookkeeping tables, it cannot drop today's or yesterday's entries.
CREATE FUNCTION aitrail.drop_retired_day(day date) RETURNS boolean
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    part text := 'entries_' || to_char(day, 'YYYYMMDD');
    hot  boolean;
BEGIN
    IF day IS NULL OR day > (now() AT TIME ZONE 'UTC')::date - 2 THEN
        RAISE EXCEPTION 'aitrail.drop_retired_day(%): only days at least two days old are dropped', day;
    END IF;
    IF to_regclass(format('aitrail.%I', part)) IS NULL THEN
        RETURN false;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('aitrail partitions', 0));
    -- DETACH takes an exclusive lock on aitrail.entries, queued behind long reads (a verify)
    -- with appends queued behind it: give up after a few seconds instead; the retirement
    -- rolls back and the next run does it again.
    PERFORM set_config('lock_timeout', '5s', true);
    EXECUTE format('SELECT EXISTS (SELECT 1 FROM aitrail.%I p WHERE NOT EXISTS (
                        SELECT 1 FROM aitrail.retired r
                        WHERE r.log_id = p.log_id AND r.seq = p.seq AND r.leaf_hash = p.leaf_hash)
                    OR NOT EXISTS (
                        SELECT 1 FROM aitrail.segments s
                        WHERE s.log_id = p.log_id AND p.seq >= s.first_seq AND p.seq < s.end_seq))',
                   part) INTO hot;
    IF hot THEN
        RETURN false;
    END IF;
    EXECUTE format('ALTER TABLE aitrail.entries DETACH PARTITION aitrail.%I', part);
    EXECUTE format('DROP TABLE aitrail.%I', part);
    RETURN true;
END
$fn$;
REVOKE ALL ON FUNCTION aitrail.drop_retired_day(date) FROM PUBLIC;
"#;

/// Tables of migration 4 the application role may SELECT and INSERT.
pub const TABLES: &[&str] = &["retired", "segments", "expiries", "holds", "hold_releases"];

pub fn retire<C: GenericClient>(
    c: &mut C,
    log_id: i32,
    seg: &Segment,
    rows: &[Retired],
) -> Result<()> {
    let day_start = crate::postgres::day_of(rows.first().map_or(0, |r| r.recorded_at));
    c.execute(
        "INSERT INTO aitrail.segments (log_id, first_seq, end_seq, day, key, root, sha256, checkpoint_size, expires_at, archived_at) \
         VALUES ($1, $2, $3, date '1970-01-01' + $4::int4, $5, $6, $7, $8, $9, $10)",
        &[
            &log_id,
            &seq_param(seg.first_seq)?,
            &seq_param(seg.end_seq)?,
            &(day_start as i32),
            &seg.key,
            &&seg.root[..],
            &&seg.sha256[..],
            &seq_param(seg.checkpoint_size)?,
            &Micros(seg.expires_at),
            &Micros(seg.archived_at),
        ],
    )?;
    // In slices, so a day of many entries does not become one huge parameter array.
    for chunk in rows.chunks(10_000) {
        let seqs: Vec<i64> = chunk.iter().map(|r| r.seq as i64).collect();
        let ids = chunk
            .iter()
            .map(|r| Uuid::parse_str(&r.event_id))
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| StoreError::Corrupt(format!("event id: {e}")))?;
        let at: Vec<Micros> = chunk.iter().map(|r| Micros(r.recorded_at)).collect();
        let leaves: Vec<&[u8]> = chunk.iter().map(|r| &r.leaf_hash[..]).collect();
        let chains: Vec<&[u8]> = chunk.iter().map(|r| &r.chain_hash[..]).collect();
        c.execute(
            "INSERT INTO aitrail.retired (log_id, seq, event_id, recorded_at, leaf_hash, chain_hash) \
             SELECT $1, * FROM unnest($2::int8[], $3::uuid[], $4::timestamptz[], $5::bytea[], $6::bytea[])",
            &[&log_id, &seqs, &ids, &at, &leaves, &chains],
        )?;
    }
    // The function refuses days less than two days old (a hot window shorter than that
    // leaves the rows in their partition; reads skip them by seq).
    let today = crate::postgres::day_of(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_micros() as i64),
    );
    if day_start <= today - 2 {
        c.execute(
            "SELECT aitrail.drop_retired_day(date '1970-01-01' + $1::int4)",
            &[&(day_start as i32)],
        )?;
    }
    Ok(())
}

pub fn segments<C: GenericClient>(c: &mut C, log_id: i32) -> Result<Vec<Segment>> {
    let rows = c.query(
        "SELECT first_seq, end_seq, to_char(day, 'YYYY-MM-DD'), key, root, sha256, checkpoint_size, expires_at, archived_at \
         FROM aitrail.segments WHERE log_id = $1 ORDER BY first_seq",
        &[&log_id],
    )?;
    rows.iter()
        .map(|r| {
            Ok(Segment {
                first_seq: r.try_get::<_, i64>(0)? as u64,
                end_seq: r.try_get::<_, i64>(1)? as u64,
                day: r.try_get(2)?,
                key: r.try_get(3)?,
                root: to_hash(r.try_get(4)?),
                sha256: to_hash(r.try_get(5)?),
                checkpoint_size: r.try_get::<_, i64>(6)? as u64,
                expires_at: r.try_get::<_, Micros>(7)?.0,
                archived_at: r.try_get::<_, Micros>(8)?.0,
            })
        })
        .collect()
}

const RETIRED_COLUMNS: &str = "seq, event_id, recorded_at, leaf_hash, chain_hash";

fn retired_row(r: &Row) -> Result<Retired> {
    Ok(Retired {
        seq: r.try_get::<_, i64>(0)? as u64,
        event_id: r.try_get::<_, Uuid>(1)?.to_string(),
        recorded_at: r.try_get::<_, Micros>(2)?.0,
        leaf_hash: to_hash(r.try_get(3)?),
        chain_hash: to_hash(r.try_get(4)?),
    })
}

pub fn retired<C: GenericClient>(
    c: &mut C,
    log_id: i32,
    from: u64,
    to: u64,
) -> Result<Vec<Retired>> {
    c.query(
        &format!("SELECT {RETIRED_COLUMNS} FROM aitrail.retired WHERE log_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq"),
        &[&log_id, &seq_param(from)?, &seq_param(to)?],
    )?
    .iter()
    .map(retired_row)
    .collect()
}

pub fn retired_event<C: GenericClient>(
    c: &mut C,
    log_id: i32,
    event_id: &str,
) -> Result<Option<Retired>> {
    let Ok(id) = Uuid::parse_str(event_id) else {
        return Ok(None);
    };
    c.query_opt(
        &format!(
            "SELECT {RETIRED_COLUMNS} FROM aitrail.retired WHERE log_id = $1 AND event_id = $2"
        ),
        &[&log_id, &id],
    )?
    .map(|r| retired_row(&r))
    .transpose()
}

/// The retired entries with these event ids (one query; ids that are not UUIDs match none).
pub fn retired_events<C: GenericClient>(
    c: &mut C,
    log_id: i32,
    event_ids: &[String],
) -> Result<Vec<Retired>> {
    let ids = super::uuids(event_ids);
    c.query(
        &format!(
            "SELECT {RETIRED_COLUMNS} FROM aitrail.retired WHERE log_id = $1 AND event_id = ANY($2)"
        ),
        &[&log_id, &ids],
    )?
    .iter()
    .map(retired_row)
    .collect()
}

/// Leaf hashes of retired seqs in `from..to` (those there are).
pub fn retired_leaves<C: GenericClient>(
    c: &mut C,
    log_id: i32,
    from: i64,
    to: i64,
) -> Result<Vec<[u8; 32]>> {
    c.query(
        "SELECT leaf_hash FROM aitrail.retired WHERE log_id = $1 AND seq >= $2 AND seq < $3 ORDER BY seq",
        &[&log_id, &from, &to],
    )?
    .iter()
    .map(|r| Ok(to_hash(r.try_get(0)?)))
    .collect()
}

pub fn expiries<C: GenericClient>(c: &mut C, log_id: i32) -> Result<Vec<Expiry>> {
    c.query(
        "SELECT first_seq, end_seq, retention_seq, record, expired_at FROM aitrail.expiries WHERE log_id = $1 ORDER BY first_seq",
        &[&log_id],
    )?
    .iter()
    .map(|r| {
        Ok(Expiry {
            first_seq: r.try_get::<_, i64>(0)? as u64,
            end_seq: r.try_get::<_, i64>(1)? as u64,
            retention_seq: r.try_get::<_, i64>(2)? as u64,
            record: r.try_get(3)?,
            expired_at: r.try_get::<_, Micros>(4)?.0,
        })
    })
    .collect()
}

pub fn add_expiry<C: GenericClient>(c: &mut C, log_id: i32, e: &Expiry) -> Result<()> {
    c.execute(
        "INSERT INTO aitrail.expiries (log_id, first_seq, end_seq, retention_seq, record, expired_at) VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &log_id,
            &seq_param(e.first_seq)?,
            &seq_param(e.end_seq)?,
            &seq_param(e.retention_seq)?,
            &e.record,
            &Micros(e.expired_at),
        ],
    )?;
    Ok(())
}

pub fn holds<C: GenericClient>(c: &mut C, log: &str) -> Result<Vec<Hold>> {
    let rows = c.query(
        "SELECT h.id, h.kind, h.value, h.from_at, h.to_at, h.reason, h.created_by, h.created_at, \
                r.released_by, r.reason, r.released_at \
         FROM aitrail.holds h LEFT JOIN aitrail.hold_releases r ON r.log = h.log AND r.hold_id = h.id \
         WHERE h.log = $1 ORDER BY h.created_at, h.id",
        &[&log],
    )?;
    rows.iter()
        .map(|r| {
            let id: String = r.try_get(0)?;
            let released = match r.try_get::<_, Option<String>>(8)? {
                Some(released_by) => Some(Release {
                    hold_id: id.clone(),
                    released_by,
                    reason: r.try_get(9)?,
                    released_at: r.try_get::<_, Micros>(10)?.0,
                }),
                None => None,
            };
            Ok(Hold {
                scope: HoldScope::from_row(
                    r.try_get::<_, &str>(1)?,
                    r.try_get(2)?,
                    r.try_get(3)?,
                    r.try_get(4)?,
                )?,
                id,
                reason: r.try_get(5)?,
                created_by: r.try_get(6)?,
                created_at: r.try_get::<_, Micros>(7)?.0,
                released,
            })
        })
        .collect()
}

pub fn add_hold<C: GenericClient>(c: &mut C, log: &str, h: &Hold) -> Result<()> {
    let (kind, value, from, to) = h.scope.to_row();
    c.execute(
        "INSERT INTO aitrail.holds (log, id, kind, value, from_at, to_at, reason, created_by, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        &[&log, &h.id, &kind, &value, &from, &to, &h.reason, &h.created_by, &Micros(h.created_at)],
    )?;
    Ok(())
}

pub fn release_hold<C: GenericClient>(c: &mut C, log: &str, r: &Release) -> Result<()> {
    let exists = c
        .query_opt(
            "SELECT 1 FROM aitrail.holds WHERE log = $1 AND id = $2",
            &[&log, &r.hold_id],
        )?
        .is_some();
    if !exists {
        return Err(StoreError::NotFound(format!(
            "hold {} in log {log:?}",
            r.hold_id
        )));
    }
    let inserted = c.execute(
        "INSERT INTO aitrail.hold_releases (log, hold_id, released_by, reason, released_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
        &[
            &log,
            &r.hold_id,
            &r.released_by,
            &r.reason,
            &Micros(r.released_at),
        ],
    )?;
    if inserted == 0 {
        return Err(StoreError::Refused(format!(
            "hold {} was already released",
            r.hold_id
        )));
    }
    Ok(())
}
