//! The PostgreSQL schema: versioned migrations, daily partitions of `aitrail.entries`, the
//! write-once triggers, and the application role (SELECT and INSERT only).
//!
//! Everything lives in the schema `aitrail`. Migrations are applied in order inside one
//! transaction that holds an advisory lock, so two `aitrail init` at once apply each exactly
//! once; a database already at the latest version is left untouched (idempotent).
//!
//! Uniqueness across partitions: PostgreSQL only enforces a unique index on a partitioned
//! table when it includes the partition key (`recorded_at`), which (log, seq) and
//! (log, event id) do not. So two unpartitioned tables are written with the entries (in the
//! same transaction, or for a large group in the log's transaction committed right after the
//! entries', see `postgres::EntriesTx`): `aitrail.entry_keys`, 36-byte rows unique by
//! (log, event id), and `aitrail.entry_spans`, one row per group commit whose keys make a
//! log's spans one run from 0 (V6). The database itself refuses a repeated seq (a fork), a
//! skipped one or a repeated event id, whatever the day.

use crate::error::{Result, StoreError};
use ::postgres::Client;

/// One step of the schema, applied once and recorded in `aitrail.schema_migrations`.
pub struct Migration {
    pub version: i32,
    pub name: &'static str,
    pub sql: &'static str,
}

/// Every migration, oldest first. Append new ones; never edit an applied one.
pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "entries partitioned by day, entry_keys, nodes, checkpoints, tokens, write-once",
        sql: V1,
    },
    Migration {
        version: 2,
        name: "views task_timeline, reviewer_decisions, model_overrides",
        sql: crate::views::POSTGRES,
    },
    Migration {
        version: 3,
        name: "subject_keys: data keys of subjects, deletable (erasure)",
        sql: super::keys::V3,
    },
    Migration {
        version: 4,
        name: "retention: segments, retired hashes, expiries, legal holds, drop_retired_day",
        sql: super::retention::V4,
    },
    Migration {
        version: 5,
        name: "entries may commit before their keys (large group commits on two connections)",
        sql: V5,
    },
    Migration {
        version: 6,
        name: "entry_spans: one row per group commit holds the seqs; entry_keys keep event ids",
        sql: V6,
    },
];

/// The schema version this build reads and writes.
pub const SCHEMA_VERSION: i32 = 6;

/// No table changes: the version says that a large group commit's entries may now commit
/// just before its keys, on another connection, and that every append first gives keys to
/// entries left without them (`repair_keys`). A build that does not know this must not
/// write here: it would write the seqs of such entries a second time.
const V5: &str = "COMMENT ON TABLE aitrail.entry_keys IS \
'The keys of every entry. A large group commit''s entries commit just before its keys; \
entries left without keys by a stop in between are given them by the next append on the log.'";

/// The seqs move from one key row per entry to one span row per group commit: the same
/// guarantee (no seq twice, none skipped, whatever the day) for one index entry per group
/// instead of one per entry. Spans are backfilled from the keys (one per run of consecutive
/// seqs and day; keys with a gap, which only tampering leaves, fail the migration on
/// `entry_spans_follows`), and every role that may insert keys may insert spans. Should a
/// writer of version 5 still add keys afterwards (it does not check the version again), the
/// next append of this version gives its entries their span (`repair_keys`).
const V6: &str = r#"
-- No writer of an older version adds keys while they are read (it waits, then fails on the
-- new version).
LOCK TABLE aitrail.entry_keys IN SHARE MODE;
CREATE TABLE aitrail.entry_spans (
    log_id    integer NOT NULL,
    first_seq bigint NOT NULL,
    next_seq  bigint NOT NULL,
    first_at  timestamptz NOT NULL,
    last_at   timestamptz NOT NULL,
    -- The span this one continues: none for the log's first.
    after_seq bigint GENERATED ALWAYS AS (NULLIF(first_seq, 0)) STORED,
    CONSTRAINT entry_spans_first PRIMARY KEY (log_id, first_seq),
    CONSTRAINT entry_spans_next UNIQUE (log_id, next_seq),
    CONSTRAINT entry_spans_follows FOREIGN KEY (log_id, after_seq)
        REFERENCES aitrail.entry_spans (log_id, next_seq),
    CONSTRAINT entry_spans_order CHECK (first_seq >= 0 AND next_seq > first_seq AND last_at >= first_at)
);
COMMENT ON TABLE aitrail.entry_spans IS
'The seqs of every log, one row per group commit: each span starts where another ends (or at 0) and no two start or end at one seq, so the spans of a log are one run from 0 to its size: no seq twice, none skipped.';
INSERT INTO aitrail.entry_spans (log_id, first_seq, next_seq, first_at, last_at)
SELECT log_id, min(seq), max(seq) + 1, min(recorded_at), max(recorded_at)
FROM (SELECT log_id, seq, recorded_at,
             seq - row_number() OVER (PARTITION BY log_id ORDER BY seq) AS run,
             date_trunc('day', recorded_at, 'UTC') AS day
      FROM aitrail.entry_keys) k
GROUP BY log_id, run, day;
ALTER TABLE aitrail.entry_keys DROP CONSTRAINT entry_keys_seq;
COMMENT ON TABLE aitrail.entry_keys IS
'The event id of every entry, unique per log whatever the day (its seqs: entry_spans). A large group commit''s entries commit just before its keys and span; entries left without them by a stop in between are given them by the next append on the log.';
CREATE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON aitrail.entry_spans
    FOR EACH ROW EXECUTE FUNCTION aitrail.refuse_change();
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON aitrail.entry_spans
    FOR EACH STATEMENT EXECUTE FUNCTION aitrail.refuse_change();
ALTER TABLE aitrail.entry_spans ENABLE ALWAYS TRIGGER refuse_update_delete;
ALTER TABLE aitrail.entry_spans ENABLE ALWAYS TRIGGER refuse_truncate;
DO $do$
DECLARE r text;
BEGIN
    FOR r IN SELECT DISTINCT grantee FROM information_schema.role_table_grants
             WHERE table_schema = 'aitrail' AND table_name = 'entry_keys'
               AND privilege_type = 'INSERT' AND grantee NOT IN (current_user, 'PUBLIC') LOOP
        EXECUTE format('GRANT SELECT, INSERT ON aitrail.entry_spans TO %I', r);
    END LOOP;
END
$do$;
"#;

/// Tables that are never partitioned; each refuses UPDATE, DELETE and TRUNCATE.
pub const PLAIN_TABLES: &[&str] = &[
    "schema_migrations",
    "logs",
    "entry_keys",
    "entry_spans",
    "nodes",
    "checkpoints",
    "tokens",
    "token_revocations",
];

/// Tables the application role may SELECT and INSERT (it may only SELECT the rest).
const APP_WRITES: &[&str] = &[
    "logs",
    "entries",
    "entry_keys",
    "entry_spans",
    "nodes",
    "checkpoints",
    "tokens",
    "token_revocations",
];

/// Created before any migration (idempotent), under the migration lock.
const BOOTSTRAP: &str = r#"
CREATE SCHEMA IF NOT EXISTS aitrail;
CREATE TABLE IF NOT EXISTS aitrail.schema_migrations (
    version    integer PRIMARY KEY,
    name       text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
);
"#;

const V1: &str = r#"
-- Raised by every write-once trigger: UPDATE, DELETE or TRUNCATE, by anyone (owner included).
CREATE FUNCTION aitrail.refuse_change() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    RAISE EXCEPTION 'aitrail is append-only: % on %.% is refused', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING HINT = 'entries are written once; `aitrail verify` checks every one of them';
END
$fn$;

CREATE TABLE aitrail.logs (
    id   integer GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name text NOT NULL UNIQUE
);

-- One row per entry, partitioned by day of recorded_at (partitions: ensure_partitions).
CREATE TABLE aitrail.entries (
    log_id         integer NOT NULL,
    seq            bigint NOT NULL,
    event_id       uuid NOT NULL,
    recorded_at    timestamptz NOT NULL,
    occurred_at    timestamptz NOT NULL,
    type           text NOT NULL,
    task_id        text NOT NULL,
    actor_id       text,
    model_name     text,
    model_version  text,
    prompt_version text,
    decision       text,
    subject_ref    text,
    entry          bytea NOT NULL,  -- RFC 8785 bytes of the record
    leaf_hash      bytea NOT NULL,
    chain_hash     bytea NOT NULL
) PARTITION BY RANGE (recorded_at);
CREATE INDEX entries_seq   ON aitrail.entries (log_id, seq);
CREATE INDEX entries_task  ON aitrail.entries (log_id, task_id, occurred_at);
CREATE INDEX entries_actor ON aitrail.entries (log_id, actor_id, occurred_at) WHERE actor_id IS NOT NULL;
CREATE INDEX entries_type  ON aitrail.entries (log_id, type, occurred_at);
CREATE INDEX entries_model ON aitrail.entries (log_id, model_name, model_version, occurred_at) WHERE model_name IS NOT NULL;
CREATE INDEX entries_time  ON aitrail.entries (log_id, occurred_at);

-- The keys of every entry, unpartitioned: the database refuses a second row for a (log, seq)
-- or a (log, event id) whatever day it would land on, and maps both to the entry's partition.
CREATE TABLE aitrail.entry_keys (
    log_id      integer NOT NULL,
    seq         bigint NOT NULL,
    event_id    uuid NOT NULL,
    recorded_at timestamptz NOT NULL,
    CONSTRAINT entry_keys_seq PRIMARY KEY (log_id, seq),
    CONSTRAINT entry_keys_event UNIQUE (log_id, event_id)
);

CREATE TABLE aitrail.nodes (
    log_id integer NOT NULL,
    level  integer NOT NULL,
    idx    bigint NOT NULL,
    hash   bytea NOT NULL,
    PRIMARY KEY (log_id, level, idx)
);

CREATE TABLE aitrail.checkpoints (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    log_id     integer NOT NULL REFERENCES aitrail.logs (id),
    size       bigint NOT NULL,
    root       bytea NOT NULL,
    note       text NOT NULL,
    created_at timestamptz NOT NULL,
    UNIQUE (log_id, size)
);

CREATE TABLE aitrail.tokens (
    id         text PRIMARY KEY,
    hash       text NOT NULL UNIQUE,
    name       text NOT NULL,
    role       text NOT NULL,
    tenant     text NOT NULL,
    created_at timestamptz NOT NULL
);
CREATE TABLE aitrail.token_revocations (
    token_id   text PRIMARY KEY REFERENCES aitrail.tokens (id),
    revoked_at timestamptz NOT NULL
);

-- Write-once. ENABLE ALWAYS: the triggers fire even under session_replication_role = replica.
-- A BEFORE ROW trigger on the partitioned parent is cloned onto every partition; a TRUNCATE
-- trigger is not, so ensure_partitions gives each partition its own.
CREATE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON aitrail.entries
    FOR EACH ROW EXECUTE FUNCTION aitrail.refuse_change();
CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON aitrail.entries
    FOR EACH STATEMENT EXECUTE FUNCTION aitrail.refuse_change();
ALTER TABLE aitrail.entries ENABLE ALWAYS TRIGGER refuse_update_delete;
ALTER TABLE aitrail.entries ENABLE ALWAYS TRIGGER refuse_truncate;
DO $do$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['schema_migrations', 'logs', 'entry_keys', 'nodes', 'checkpoints',
                             'tokens', 'token_revocations'] LOOP
        EXECUTE format('CREATE TRIGGER refuse_update_delete BEFORE UPDATE OR DELETE ON aitrail.%I
                        FOR EACH ROW EXECUTE FUNCTION aitrail.refuse_change()', t);
        EXECUTE format('CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON aitrail.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION aitrail.refuse_change()', t);
        EXECUTE format('ALTER TABLE aitrail.%I ENABLE ALWAYS TRIGGER refuse_update_delete', t);
        EXECUTE format('ALTER TABLE aitrail.%I ENABLE ALWAYS TRIGGER refuse_truncate', t);
    END LOOP;
END
$do$;

-- Creates the missing daily partitions from first_day to last_day (UTC days), each with its
-- TRUNCATE trigger, and returns how many it created. SECURITY DEFINER: the application role
-- may call it (EXECUTE) without any right to create or alter tables itself. A partition is
-- created apart and then attached, which locks the parent only in SHARE UPDATE EXCLUSIVE
-- mode: appends and reads (a long verify included) go on meanwhile.
CREATE FUNCTION aitrail.ensure_partitions(first_day date, last_day date) RETURNS integer
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $fn$
DECLARE
    d       date;
    part    text;
    lo      text;
    hi      text;
    created integer := 0;
BEGIN
    IF first_day IS NULL OR last_day IS NULL OR last_day < first_day OR last_day - first_day > 400 THEN
        RAISE EXCEPTION 'aitrail.ensure_partitions(%, %): expected first_day <= last_day, at most 400 days apart',
            first_day, last_day;
    END IF;
    PERFORM pg_advisory_xact_lock(hashtextextended('aitrail partitions', 0));
    FOR d IN SELECT g::date FROM generate_series(first_day, last_day, interval '1 day') AS g LOOP
        part := 'entries_' || to_char(d, 'YYYYMMDD');
        CONTINUE WHEN to_regclass(format('aitrail.%I', part)) IS NOT NULL;
        lo := to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00';
        hi := to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00';
        EXECUTE format('CREATE TABLE aitrail.%I (LIKE aitrail.entries)', part);
        EXECUTE format('ALTER TABLE aitrail.entries ATTACH PARTITION aitrail.%I FOR VALUES FROM (%L) TO (%L)',
                       part, lo, hi);
        EXECUTE format('CREATE TRIGGER refuse_truncate BEFORE TRUNCATE ON aitrail.%I
                        FOR EACH STATEMENT EXECUTE FUNCTION aitrail.refuse_change()', part);
        EXECUTE format('ALTER TABLE aitrail.%I ENABLE ALWAYS TRIGGER refuse_truncate', part);
        EXECUTE format('ALTER TABLE aitrail.%I ENABLE ALWAYS TRIGGER refuse_update_delete', part);
        created := created + 1;
    END LOOP;
    RETURN created;
END
$fn$;
REVOKE ALL ON FUNCTION aitrail.ensure_partitions(date, date) FROM PUBLIC;
"#;

/// The statement the store runs to create partitions ahead (days since 1970-01-01, UTC).
pub const ENSURE_PARTITIONS: &str =
    "SELECT aitrail.ensure_partitions(date '1970-01-01' + $1::int4, date '1970-01-01' + $2::int4)";

/// What `migrate` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Migrated {
    /// The version found (0: no aitrail schema yet).
    pub from: i32,
    pub to: i32,
}

/// The schema version of the database behind `client`: 0 when it holds no aitrail schema.
pub fn version(client: &mut Client) -> Result<i32> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass('aitrail.schema_migrations') IS NOT NULL",
            &[],
        )?
        .get(0);
    if !exists {
        return Ok(0);
    }
    let v: Option<i32> = client
        .query_one("SELECT max(version) FROM aitrail.schema_migrations", &[])?
        .get(0);
    Ok(v.unwrap_or(0))
}

/// Applies every migration the database lacks, in one transaction under an advisory lock.
/// Needs the rights of the schema's owner (or CREATE on the database for the first one).
pub fn migrate(client: &mut Client) -> Result<Migrated> {
    // Up to date: no DDL at all, so any role with the application's grants may run this.
    let current = version(client)?;
    if current == SCHEMA_VERSION {
        return Ok(Migrated {
            from: current,
            to: current,
        });
    }
    if current > SCHEMA_VERSION {
        return Err(newer_schema(current));
    }
    let mut tx = client.transaction()?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtextextended('aitrail migrations', 0))",
        &[],
    )?;
    tx.batch_execute(BOOTSTRAP)?;
    let from: i32 = tx
        .query_one(
            "SELECT coalesce(max(version), 0) FROM aitrail.schema_migrations",
            &[],
        )?
        .get(0);
    if from > SCHEMA_VERSION {
        return Err(newer_schema(from));
    }
    for m in MIGRATIONS.iter().filter(|m| m.version > from) {
        tx.batch_execute(m.sql).map_err(|e| {
            StoreError::Schema(format!("migration {} ({}) failed: {e}", m.version, m.name))
        })?;
        tx.execute(
            "INSERT INTO aitrail.schema_migrations (version, name) VALUES ($1, $2)",
            &[&m.version, &m.name],
        )?;
    }
    tx.commit()?;
    Ok(Migrated {
        from,
        to: SCHEMA_VERSION.max(from),
    })
}

pub fn newer_schema(found: i32) -> StoreError {
    StoreError::Schema(format!(
        "the database has aitrail schema version {found}; this aitrail knows up to {SCHEMA_VERSION}: upgrade aitrail"
    ))
}

/// What `setup_app_role` did about the application role.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AppRole {
    /// Created now with LOGIN and this password (shown once; only its hash is kept).
    Created { name: String, password: String },
    /// It existed; its grants were (re)applied.
    Granted { name: String },
    /// The connected user may not create roles: nothing was done; `sql` does it.
    Skipped {
        name: String,
        reason: String,
        sql: String,
    },
}

/// The grants of the application role, as SQL (what `setup_app_role` runs).
pub fn grants_sql(role: &str) -> String {
    let role = quote_ident(role);
    let mut sql = format!(
        "GRANT USAGE ON SCHEMA aitrail TO {role};\n\
         GRANT SELECT ON aitrail.schema_migrations TO {role};\n\
         GRANT EXECUTE ON FUNCTION aitrail.ensure_partitions(date, date) TO {role};\n\
         GRANT EXECUTE ON FUNCTION aitrail.drop_retired_day(date) TO {role};\n"
    );
    for t in APP_WRITES.iter().chain(super::retention::TABLES) {
        sql += &format!("GRANT SELECT, INSERT ON aitrail.{t} TO {role};\n");
    }
    for v in crate::views::NAMES {
        sql += &format!("GRANT SELECT ON aitrail.{v} TO {role};\n");
    }
    // The one exception to append-only: erasure deletes a subject's data key.
    sql += &format!("GRANT SELECT, INSERT, DELETE ON aitrail.subject_keys TO {role};\n");
    sql
}

/// Creates the application role `name` (LOGIN, random password) when it does not exist and
/// the connected user may create roles, then grants it SELECT and INSERT on aitrail's tables
/// and nothing else (no UPDATE, DELETE, TRUNCATE, DDL). Run by the schema's owner.
pub fn setup_app_role(client: &mut Client, name: &str) -> Result<AppRole> {
    if name.is_empty() || name.len() > 63 {
        return Err(StoreError::Schema(format!(
            "application role name {name:?}: expected 1 to 63 characters"
        )));
    }
    let owner: bool = client
        .query_one(
            "SELECT n.nspowner = r.oid OR r.rolsuper FROM pg_namespace n, pg_roles r \
             WHERE n.nspname = 'aitrail' AND r.rolname = current_user",
            &[],
        )?
        .get(0);
    if !owner {
        return Ok(AppRole::Skipped {
            name: name.to_owned(),
            reason: "the connected user does not own the aitrail schema (run init as its owner)"
                .into(),
            sql: grants_sql(name),
        });
    }
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)",
            &[&name],
        )?
        .get(0);
    let mut created = None;
    if !exists {
        let may_create: bool = client
            .query_one(
                "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
                &[],
            )?
            .get(0);
        if !may_create {
            let sql = format!(
                "CREATE ROLE {} LOGIN PASSWORD '...';\n{}",
                quote_ident(name),
                grants_sql(name)
            );
            return Ok(AppRole::Skipped {
                name: name.to_owned(),
                reason: "the connected user may not create roles (needs CREATEROLE)".into(),
                sql,
            });
        }
        let password = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let create: String = client
            .query_one(
                "SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', $1::text, $2::text)",
                &[&name, &password],
            )?
            .get(0);
        client.batch_execute(&create)?;
        created = Some(password);
    }
    client.batch_execute(&grants_sql(name))?;
    Ok(match created {
        Some(password) => AppRole::Created {
            name: name.to_owned(),
            password,
        },
        None => AppRole::Granted {
            name: name.to_owned(),
        },
    })
}

/// A PostgreSQL identifier, double-quoted.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_in_order_and_end_at_the_schema_version() {
        let versions: Vec<i32> = MIGRATIONS.iter().map(|m| m.version).collect();
        assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    }

    #[test]
    fn every_plain_table_gets_the_write_once_triggers() {
        for t in PLAIN_TABLES {
            assert!(
                V1.contains(&format!("'{t}'"))
                    || V6.contains(&format!("BEFORE TRUNCATE ON aitrail.{t}\n")),
                "{t} is not in the trigger loop"
            );
        }
        for t in super::super::retention::TABLES {
            assert!(
                super::super::retention::V4.contains(&format!("'{t}'")),
                "{t} is not in the trigger loop"
            );
        }
    }

    #[test]
    fn the_app_role_gets_select_and_insert_only() {
        let sql = grants_sql("app\"x");
        assert!(sql.contains("TO \"app\"\"x\""));
        // The key table is the one exception (erasure), and only DELETE is added there.
        for line in sql.lines().filter(|l| !l.contains("aitrail.subject_keys")) {
            assert!(
                !line.contains("UPDATE") && !line.contains("DELETE") && !line.contains("TRUNCATE"),
                "{line}"
            );
        }
        assert!(sql.contains("GRANT SELECT, INSERT ON aitrail.entries TO"));
        assert!(!sql.contains("INSERT ON aitrail.schema_migrations"));
    }
}
