//! The PostgreSQL store's own guarantees, beyond the conformance suite: versioned migrations,
//! daily partitions created ahead, write-once triggers that refuse UPDATE, DELETE and
//! TRUNCATE even to the owner (and under session_replication_role = replica), the application
//! role's SELECT and INSERT only, and what `verify` says once a superuser goes around all of
//! it (triggers disabled, a partition detached).
//!
//! Each test runs in a database of its own (`postgres_support`), skipped without a server
//! outside CI. Where a new test belongs: behaviour every backend shares goes to
//! `conformance.rs`; PostgreSQL-only schema, role and partition behaviour goes here.

mod common;
#[path = "postgres_support/mod.rs"]
mod pg;

use aitrail_core::chain::chain_hash;
use aitrail_core::entry::{entry_bytes, PreparedEvent, Receipt};
use aitrail_core::event::format_time;
use aitrail_core::merkle::{leaf_hash, Frontier};
use aitrail_store::log;
use aitrail_store::nodes::{is_stored, StridedNodes};
use aitrail_store::postgres::{day_of, AppRole, Migrated, PgStore, AHEAD_DAYS, SCHEMA_VERSION};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::{NewEntry, Node, Store};
use aitrail_store::tokens::{token_hash, Role, TokenRecord, TokenStore};
use aitrail_store::verify::{verify_log, ProblemKind, Report};
use common::{all_entries, append_new, events, signer, LOG};
use std::sync::Arc;

const DAY: i64 = 86_400_000_000;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64
}

/// Appends `events` with `recorded_at` of our choosing (the sequencer always uses the clock),
/// computing seqs, hashes and kept nodes the way the sequencer does: a reference writer, so a
/// log can span several days. `verify` passing on its output checks it agrees.
fn append_recorded_at(store: &dyn Store, events: &[PreparedEvent], recorded_at: i64) -> Vec<u64> {
    append_with(store, events, &|_| recorded_at, None).expect("append with a chosen recorded_at")
}

/// `append_recorded_at` with each event's `recorded_at(index)`, the rows handed over through
/// `insert_all` in chunks of `chunk` (streamed into one COPY) when given, else in one `insert`.
fn append_with(
    store: &dyn Store,
    events: &[PreparedEvent],
    recorded_at: &dyn Fn(usize) -> i64,
    chunk: Option<usize>,
) -> aitrail_store::error::Result<Vec<u64>> {
    append_watched(store, events, recorded_at, chunk, &mut |_| ())
}

/// `append_with`, calling `asked(rows handed over so far)` each time the store asks for a
/// chunk after the first.
fn append_watched(
    store: &dyn Store,
    events: &[PreparedEvent],
    recorded_at: &dyn Fn(usize) -> i64,
    chunk: Option<usize>,
    asked: &mut dyn FnMut(usize),
) -> aitrail_store::error::Result<Vec<u64>> {
    let mut seqs = Vec::new();
    store
        .append(LOG, &mut |tx| {
            let head = tx.head()?;
            let mut frontier = Frontier::from_source(&mut StridedNodes { rows: tx }, head.size)?;
            let mut chain = head.chain_hash;
            let (mut rows, mut nodes) = (Vec::new(), Vec::new());
            seqs.clear();
            for (i, ev) in events.iter().enumerate() {
                let seq = head.size + i as u64;
                let recorded_at = recorded_at(i);
                let entry = entry_bytes(seq, LOG, &format_time(recorded_at), &ev.canonical);
                let leaf = leaf_hash(&entry);
                chain = chain_hash(&chain, &leaf);
                frontier.push(leaf, |level, index, hash| {
                    if is_stored(level) {
                        nodes.push(Node {
                            level,
                            index,
                            hash: *hash,
                        });
                    }
                });
                rows.push(NewEntry {
                    seq,
                    event_id: ev.id.to_string(),
                    recorded_at,
                    occurred_at: ev.occurred_at,
                    event_type: ev.event_type.clone(),
                    task_id: ev.task_id.clone(),
                    index: ev.index.clone(),
                    entry,
                    leaf_hash: leaf,
                    chain_hash: chain,
                });
                seqs.push(seq);
            }
            match chunk {
                None => tx.insert(&rows, &nodes),
                Some(n) => {
                    let mut chunks = rows.chunks(n);
                    let mut nodes = Some(nodes.clone());
                    let mut handed = 0;
                    tx.insert_all(
                        rows.len(),
                        &mut || {
                            if handed > 0 {
                                asked(handed);
                            }
                            // The nodes ride with the first chunk; the store writes them last.
                            let chunk = chunks.next()?;
                            handed += chunk.len();
                            Some((chunk.to_vec(), nodes.take().unwrap_or_default()))
                        },
                        &mut drop,
                    )
                }
            }
        })
        .map(|()| seqs)
}

/// Every span of the database (one log), by first seq: (first_seq, next_seq).
fn spans(client: &mut postgres::Client) -> Vec<(i64, i64)> {
    client
        .query(
            "SELECT first_seq, next_seq FROM aitrail.entry_spans ORDER BY first_seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

/// A log over three days: 120 entries two days ago, 150 yesterday, 90 today through the
/// sequencer, with a signed checkpoint after each day. Returns the first seq of each day.
fn three_day_log(store: &Arc<PgStore>) -> [u64; 3] {
    let signer = signer();
    let today = now();
    let first = append_recorded_at(store.as_ref(), &events(0, 120), today - 2 * DAY)[0];
    log::checkpoint(store.as_ref(), LOG, &signer, today).unwrap();
    let second = append_recorded_at(store.as_ref(), &events(120, 150), today - DAY)[0];
    log::checkpoint(store.as_ref(), LOG, &signer, today + 1).unwrap();
    let seq = Sequencer::new(store.clone());
    let third = append_new(&seq, LOG, events(270, 90))[0].seq;
    log::checkpoint(store.as_ref(), LOG, &signer, today + 2).unwrap();
    [first, second, third]
}

fn verify(store: &dyn Store) -> Report {
    verify_log(store, LOG, Some(&signer().verifier()), &mut |_| {}).unwrap()
}

/// The error of running `sql` on `client`, which must fail.
fn refused(client: &mut postgres::Client, sql: &str) -> String {
    match client.batch_execute(sql) {
        Ok(()) => panic!("{sql}: was allowed"),
        Err(e) => e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_owned()),
    }
}

/// Partitions of aitrail.entries: (name, lower bound as text).
fn partitions(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'aitrail.entries'::regclass ORDER BY 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

fn partition_of(day: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .unwrap()
        .date();
    format!(
        "entries_{:04}{:02}{:02}",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

/// The start of `day` (UTC) as a timestamptz literal.
fn midnight(day: i64) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(day * 86_400)
        .unwrap()
        .date();
    format!(
        "{:04}-{:02}-{:02} 00:00:00+00",
        date.year(),
        date.month() as u8,
        date.day()
    )
}

#[test]
fn init_is_versioned_and_idempotent() {
    let Some(db) = pg::database() else { return };
    let err = PgStore::open(&db.url())
        .err()
        .expect("an empty database is no store");
    assert!(err.to_string().contains("run `aitrail init"), "{err}");

    let first = PgStore::init(&db.url(), None).unwrap();
    assert_eq!(
        first.migrated,
        Migrated {
            from: 0,
            to: SCHEMA_VERSION
        }
    );
    assert_eq!(
        first.partitions_created as i64,
        AHEAD_DAYS + 2,
        "yesterday, today and the days ahead"
    );
    let again = PgStore::init(&db.url(), None).unwrap();
    assert_eq!(
        again.migrated,
        Migrated {
            from: SCHEMA_VERSION,
            to: SCHEMA_VERSION
        }
    );
    assert_eq!(again.partitions_created, 0);

    let mut raw = pg::raw(&db);
    let versions: Vec<i32> = raw
        .query(
            "SELECT version FROM aitrail.schema_migrations ORDER BY version",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, (1..=SCHEMA_VERSION).collect::<Vec<_>>());
    let running = Arc::new(PgStore::open(&db.url()).expect("an initialised database opens"));
    let seq = Sequencer::new(running.clone());
    append_new(&seq, LOG, events(0, 3));

    // A schema newer than this build is refused, naming the way out.
    raw.batch_execute(
        "ALTER TABLE aitrail.schema_migrations DISABLE TRIGGER refuse_update_delete; \
         INSERT INTO aitrail.schema_migrations (version, name) VALUES (99, 'from the future')",
    )
    .unwrap();
    let err = PgStore::open(&db.url()).err().expect("a newer schema");
    assert!(err.to_string().contains("upgrade aitrail"), "{err}");
    // A process that opened the store before the migration stops writing at its next commit.
    let err = seq.append(LOG, events(3, 2)).unwrap_err();
    assert!(err.to_string().contains("upgrade aitrail"), "{err}");
    assert_eq!(running.head(LOG).unwrap().size, 3, "nothing was written");
    let err = PgStore::init(&db.url(), None).expect_err("init does not downgrade");
    assert!(err.to_string().contains("version 99"), "{err}");
}

#[test]
fn entries_are_partitioned_by_day_with_partitions_ahead_and_indexes() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let mut raw = pg::raw(&db);
    let today = day_of(now());
    let expected: Vec<String> = (today - 1..=today + AHEAD_DAYS).map(partition_of).collect();
    assert_eq!(partitions(&mut raw), expected);
    let kind: String = raw
        .query_one("SELECT pg_get_partkeydef('aitrail.entries'::regclass)", &[])
        .unwrap()
        .get(0);
    assert_eq!(kind, "RANGE (recorded_at)");

    // A day outside the partitions (a clock far behind or ahead) gets its partition on demand.
    let seqs = append_recorded_at(store.as_ref(), &events(0, 5), now() - 40 * DAY);
    assert_eq!(seqs, vec![0, 1, 2, 3, 4]);
    assert!(partitions(&mut raw).contains(&partition_of(today - 40)));
    let rows: i64 = raw
        .query_one(
            &format!("SELECT count(*) FROM aitrail.{}", partition_of(today - 40)),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 5, "the rows sit in their day's partition");

    // Every partition has the parent's indexes: seq, task, actor, type, model and time.
    for part in partitions(&mut raw) {
        let defs: Vec<String> = raw
            .query(
                "SELECT indexdef FROM pg_indexes WHERE schemaname = 'aitrail' AND tablename = $1",
                &[&part],
            )
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        for cols in [
            "(log_id, seq)",
            "(log_id, task_id, occurred_at)",
            "(log_id, actor_id, occurred_at)",
            "(log_id, type, occurred_at)",
            "(log_id, model_name, model_version, occurred_at)",
            "(log_id, occurred_at)",
        ] {
            assert!(
                defs.iter().any(|d| d.contains(cols)),
                "{part}: no index on {cols}: {defs:?}"
            );
        }
        // Each partition refuses TRUNCATE itself (a parent's truncate trigger is not
        // inherited), and every trigger fires always, replica sessions included.
        let triggers: Vec<(String, i8)> = raw
            .query(
                "SELECT tgname::text, tgenabled::\"char\" FROM pg_trigger WHERE tgrelid = $1::text::regclass ORDER BY 1",
                &[&format!("aitrail.{part}")],
            )
            .unwrap()
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        assert_eq!(
            triggers,
            vec![
                ("refuse_truncate".into(), b'A' as i8),
                ("refuse_update_delete".into(), b'A' as i8)
            ],
            "{part}"
        );
    }
    assert!(verify(store.as_ref()).ok);
}

#[test]
fn a_streamed_group_gets_its_partition_and_is_refused_a_stored_id() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let mut raw = pg::raw(&db);
    let today = day_of(now());
    // Rows streamed into one COPY for a day without a partition: rolled back, the day is
    // created, the group redone.
    let first = events(0, 50);
    let seqs = append_with(store.as_ref(), &first, &|_| now() - 50 * DAY, Some(7)).unwrap();
    assert_eq!(seqs, (0..50).collect::<Vec<_>>());
    let rows: i64 = raw
        .query_one(
            &format!("SELECT count(*) FROM aitrail.{}", partition_of(today - 50)),
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(rows, 50);
    let keys: i64 = raw
        .query_one("SELECT count(*) FROM aitrail.entry_keys", &[])
        .unwrap()
        .get(0);
    assert_eq!(keys, 50);
    // A stored event id among streamed rows: the keys COPY refuses it and nothing is written.
    let mut again = events(50, 20);
    again[13] = first[31].clone();
    let at = now();
    let err = append_with(store.as_ref(), &again, &|_| at, Some(7)).unwrap_err();
    assert!(
        matches!(err, aitrail_store::error::StoreError::DuplicateEventId(_)),
        "{err}"
    );
    assert_eq!(store.head(LOG).unwrap().size, 50);
    let entries: i64 = raw
        .query_one("SELECT count(*) FROM aitrail.entries", &[])
        .unwrap()
        .get(0);
    assert_eq!(entries, 50, "the streamed entries were rolled back");
    // A later chunk for a day without a partition aborts the COPY already open; the group is
    // redone on the same connection once the day exists.
    let seqs = append_with(
        store.as_ref(),
        &events(70, 20),
        &|i| if i < 14 { at } else { at + 60 * DAY },
        Some(7),
    )
    .unwrap();
    assert_eq!(seqs, (50..70).collect::<Vec<_>>());
    assert!(partitions(&mut raw).contains(&partition_of(today + 60)));
    assert!(verify(store.as_ref()).ok);
    assert_eq!(store.head(LOG).unwrap().size, 70);
}

/// A streamed group's rows reach the server as each chunk is handed over, not only once the
/// next one is: a connection writes what was queued for it only when it is used again, so
/// every part of the COPY but a short tail (a piece of its last row) must be on its way
/// before the store asks for the next chunk. Each chunk (about 290 kB) takes more than one
/// piece. The test waits (up to 30 s, a liveness bound, not a speed target) until the
/// server has read those rows, without handing over more. Needs `pg_stat_progress_copy`
/// (PostgreSQL 14 or later). The group goes into one COPY on the second connection (no
/// two phases: then its later chunks would go into a second COPY, on the log's connection,
/// which streams the same way).
#[test]
fn each_streamed_chunk_reaches_the_server_before_the_next_is_asked_for() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    store.set_two_phase(false);
    let mut watcher = pg::raw(&db);
    let version: i32 = watcher
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .unwrap()
        .get(0);
    if version < 140000 {
        eprintln!("skipped: pg_stat_progress_copy needs PostgreSQL 14 or later ({version})");
        return;
    }
    // The log exists first, so the group may go on a second connection (either way it
    // streams into one COPY).
    append_recorded_at(store.as_ref(), &events(0, 1), now());
    const CHUNK: usize = 450;
    let at = now();
    append_watched(
        store.as_ref(),
        &events(1, 3 * CHUNK as u64),
        &|_| at,
        Some(CHUNK),
        &mut |handed| {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            loop {
                let rows: i64 = watcher
                    .query_one(
                        "SELECT coalesce(max(tuples_processed), 0) FROM pg_stat_progress_copy \
                         WHERE datname = current_database() AND relid = 'aitrail.entries'::regclass",
                        &[],
                    )
                    .unwrap()
                    .get(0);
                // All but the last row (its tail waits for the next write).
                if rows >= handed as i64 - 1 {
                    break;
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "{handed} rows handed over, the server has read {rows} and no more"
                );
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        },
    )
    .unwrap();
    assert_eq!(store.head(LOG).unwrap().size, 1 + 3 * CHUNK as u64);
    assert!(verify(store.as_ref()).ok);
}

/// A large group commit goes to two connections (its entries on a second one, the keys on
/// the log's own), and its entries commit before its keys. Should the process die between
/// those commits, the entries stand without keys: the next append on the log gives them
/// their keys, so nothing is lost, repeated or forked, and a resend gets its receipts.
#[test]
fn entries_left_without_keys_are_completed_by_the_next_append() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let seq = Sequencer::new(store.clone());
    // A large group that creates its log stays on one connection.
    let first = append_new(&seq, LOG, events(0, 2000));
    assert_eq!(store.two_connection_groups(), 0);
    let group = events(2000, 3000);
    let receipts = append_new(&seq, LOG, group.clone());
    assert_eq!(receipts.last().unwrap().seq, 4999);
    assert_eq!(
        store.two_connection_groups(),
        1,
        "the entries on a second connection"
    );
    log::checkpoint(store.as_ref(), LOG, &signer(), now()).unwrap();
    assert!(verify(store.as_ref()).ok, "the entries and their nodes");

    // The process died after the group's entries committed, before its keys did.
    let mut su = pg::raw(&db);
    su.batch_execute(
        "ALTER TABLE aitrail.entry_keys DISABLE TRIGGER refuse_update_delete; \
         DELETE FROM aitrail.entry_keys WHERE seq >= 2000; \
         ALTER TABLE aitrail.entry_keys ENABLE TRIGGER refuse_update_delete; \
         ALTER TABLE aitrail.entry_spans DISABLE TRIGGER refuse_update_delete; \
         DELETE FROM aitrail.entry_spans WHERE first_seq >= 2000; \
         ALTER TABLE aitrail.entry_spans ENABLE TRIGGER refuse_update_delete",
    )
    .unwrap();
    assert_eq!(
        store.head(LOG).unwrap().size,
        2000,
        "readers see the log up to its last key"
    );
    let report = verify(store.as_ref());
    assert!(report.ok && report.entries == 5000, "{report:?}");

    // The client never had its receipts and sends the group again, with more events.
    let seq = Sequencer::new(store.clone());
    let mut resent = group[1200..1300].to_vec();
    resent.extend(events(5000, 50));
    let out = seq.append(LOG, resent).unwrap();
    for (i, o) in out[..100].iter().enumerate() {
        assert_eq!(
            *o,
            aitrail_store::sequencer::Outcome::Duplicate(receipts[1200 + i].clone())
        );
    }
    let appended: Vec<u64> = out[100..].iter().map(|o| o.receipt().seq).collect();
    assert_eq!(appended, (5000..5050).collect::<Vec<_>>());
    assert_eq!(store.head(LOG).unwrap().size, 5050);
    let keys: i64 = su
        .query_one("SELECT count(DISTINCT seq) FROM aitrail.entry_keys", &[])
        .unwrap()
        .get(0);
    assert_eq!(keys, 5050);
    let spans = spans(&mut su);
    assert_eq!(
        spans,
        [(0, 2000), (2000, 5000), (5000, 5050)],
        "the repaired group has one span"
    );
    let entries = all_entries(store.as_ref(), LOG);
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..5050).collect::<Vec<_>>(), "no gap, no repeat");
    log::checkpoint(store.as_ref(), LOG, &signer(), now() + 1).unwrap();
    assert!(verify(store.as_ref()).ok);
    assert_eq!(
        store
            .entry_by_id(LOG, &first[10].id.to_string())
            .unwrap()
            .map(|e| e.seq),
        Some(10)
    );

    // The second connection finds the log's lock in pg_locks by the two halves of its key;
    // this log's key has the high bit set (hashtextextended('aitrail log:d', 0) < 0).
    append_new(&seq, "d", events(6000, 1100));
    append_new(&seq, "d", events(7100, 1100));
    assert_eq!(store.two_connection_groups(), 2);
    assert!(
        verify_log(store.as_ref(), "d", None, &mut |_| {})
            .unwrap()
            .ok
    );
}

/// A log of 10 events, then `group` appended as one large group commit (from seq 10), on a
/// store that commits large groups in two phases.
struct TwoPhaseLog {
    store: Arc<PgStore>,
    seq: Sequencer,
    /// A superuser's connection to the database.
    su: postgres::Client,
    receipts: Vec<Receipt>,
    /// Last: dropped after the connections.
    db: aitrail_store::postgres::ScratchDatabase,
}

/// None (skipped) without a server, or when the server allows no prepared transactions; in
/// CI it must (`.ci/run` sets `max_prepared_transactions`).
fn two_phase_log(group: Vec<PreparedEvent>) -> Option<TwoPhaseLog> {
    let (db, store) = pg::store()?;
    if !store.two_phase() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "CI needs max_prepared_transactions above 0 (.ci/run sets it)"
        );
        eprintln!("skipped: the server has max_prepared_transactions = 0");
        return None;
    }
    let seq = Sequencer::new(store.clone());
    append_new(&seq, LOG, events(0, 10));
    let receipts = append_new(&seq, LOG, group);
    Some(TwoPhaseLog {
        su: pg::raw(&db),
        store,
        seq,
        receipts,
        db,
    })
}

/// The (first seq, last seq) of each transaction's entries from seq `from` on, in seq order:
/// which rows were written together.
fn entries_by_transaction(client: &mut postgres::Client, from: i64) -> Vec<(i64, i64)> {
    client
        .query(
            "SELECT min(seq), max(seq) FROM aitrail.entries WHERE seq >= $1 \
             GROUP BY xmin::text ORDER BY 1",
            &[&from],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect()
}

fn prepared_transactions(client: &mut postgres::Client) -> Vec<String> {
    client
        .query(
            "SELECT gid FROM pg_prepared_xacts WHERE database = current_database()",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

/// With prepared transactions, a large group's rows go on two connections: its first rows
/// (about three fifths) in the second connection's transaction, the rest in the log's with
/// the keys, which is prepared before the second commits and committed after.
#[test]
fn a_large_group_shares_its_rows_between_two_connections() {
    let Some(TwoPhaseLog {
        store,
        seq,
        mut su,
        receipts,
        db: _db,
    }) = two_phase_log(events(10, 3000))
    else {
        return;
    };
    assert_eq!(receipts.last().unwrap().seq, 3009);
    assert_eq!(
        (store.two_connection_groups(), store.two_phase_groups()),
        (1, 1)
    );
    let parts = entries_by_transaction(&mut su, 10);
    assert_eq!(
        parts.len(),
        2,
        "two transactions wrote the group: {parts:?}"
    );
    let (side, rest) = (parts[0], parts[1]);
    assert_eq!((side.0, rest.1), (10, 3009));
    assert_eq!(side.1 + 1, rest.0);
    assert!(
        (1600..=2400).contains(&(side.1 - side.0 + 1)),
        "about three fifths on the side: {parts:?}"
    );
    let keys_with_the_rest: bool = su
        .query_one(
            "SELECT (SELECT xmin::text FROM aitrail.entry_keys WHERE seq = 10) = \
                    (SELECT xmin::text FROM aitrail.entries WHERE seq = 3009)",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(
        keys_with_the_rest,
        "the keys commit with the group's last rows"
    );
    assert!(prepared_transactions(&mut su).is_empty());
    log::checkpoint(store.as_ref(), LOG, &signer(), now()).unwrap();
    assert!(verify(store.as_ref()).ok);

    // Without two phases the side takes all the entries, the log's connection the keys.
    store.set_two_phase(false);
    append_new(&seq, LOG, events(3010, 3000));
    assert_eq!(
        (store.two_connection_groups(), store.two_phase_groups()),
        (2, 1)
    );
    assert_eq!(entries_by_transaction(&mut su, 3010), [(3010, 6009)]);
    assert!(verify(store.as_ref()).ok);
}

/// A writer that stops between the prepare and the commits leaves its group prepared, and
/// with it the log's lock. The next append waits for the lock a moment, then settles the
/// group: committed when the second connection's rows were committed (a resend gets the
/// original receipts), rolled back when they were not (the log goes on from before it). So
/// does a process that opens the store.
/// The stopped writer is played by moving a committed group's last rows, keys, span and
/// nodes into a prepared transaction named as the store names it.
#[test]
fn a_group_left_prepared_is_settled_by_the_next_append() {
    let group = events(10, 3000);
    let Some(TwoPhaseLog {
        store,
        seq,
        mut su,
        receipts,
        db,
    }) = two_phase_log(group.clone())
    else {
        return;
    };
    let parts = entries_by_transaction(&mut su, 10);
    let side_rows = parts[0].1 - parts[0].0 + 1;

    // Stopped after the side committed: the rest stays prepared.
    leave_prepared(&mut su, &db, 10, side_rows, false);
    assert_eq!(
        store.head(LOG).unwrap().size,
        10,
        "the keys are not committed"
    );
    let out = seq.append(LOG, group[2990..].to_vec()).unwrap();
    for (i, o) in out.iter().enumerate() {
        assert_eq!(
            *o,
            aitrail_store::sequencer::Outcome::Duplicate(receipts[2990 + i].clone()),
            "the resend gets the original receipts"
        );
    }
    assert!(prepared_transactions(&mut su).is_empty());
    assert_eq!(store.head(LOG).unwrap().size, 3010);
    log::checkpoint(store.as_ref(), LOG, &signer(), now()).unwrap();
    assert!(verify(store.as_ref()).ok);

    // Stopped before the side committed: the side's rows are gone, the group rolls back.
    let lost = events(3010, 3000);
    append_new(&seq, LOG, lost.clone());
    let parts = entries_by_transaction(&mut su, 3010);
    let side_rows = parts[0].1 - parts[0].0 + 1;
    leave_prepared(&mut su, &db, 3010, side_rows, true);
    // A process that opens the store settles what an earlier one left prepared.
    drop(PgStore::open(&db.url()).unwrap());
    assert!(prepared_transactions(&mut su).is_empty());
    let appended = append_new(&seq, LOG, lost[..5].to_vec());
    assert_eq!(
        appended.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (3010..3015).collect::<Vec<_>>(),
        "the log goes on from before the rolled-back group"
    );
    assert!(prepared_transactions(&mut su).is_empty());
    let stored: i64 = su
        .query_one("SELECT count(*) FROM aitrail.entries", &[])
        .unwrap()
        .get(0);
    assert_eq!(stored, 3015, "nothing of the rolled-back group is stored");
    log::checkpoint(store.as_ref(), LOG, &signer(), now() + 1).unwrap();
    assert!(verify(store.as_ref()).ok);
}

/// Turns the last committed group (from seq `first`, its first `side_rows` entries on the
/// side) into one a writer left prepared: its other rows, keys, span and nodes move into a
/// prepared transaction holding the log's lock; with `side_lost`, its side's rows go too.
fn leave_prepared(
    su: &mut postgres::Client,
    db: &aitrail_store::postgres::ScratchDatabase,
    first: i64,
    side_rows: i64,
    side_lost: bool,
) {
    let row = su
        .query_one(
            "SELECT log_id, (extract(epoch FROM recorded_at) * 1000000)::int8 \
             FROM aitrail.entries WHERE seq = $1",
            &[&first],
        )
        .unwrap();
    let (log_id, recorded_at): (i32, i64) = (row.get(0), row.get(1));
    let rest = first + side_rows;
    let tables = ["entries", "entry_keys", "entry_spans", "nodes"];
    let triggers = |how: &str| {
        tables
            .map(|t| format!("ALTER TABLE aitrail.{t} {how} TRIGGER refuse_update_delete;"))
            .join(" ")
    };
    // (The tables of an earlier call go once its prepared transaction, which read them, is
    // settled.)
    su.batch_execute(&format!(
        "DROP TABLE IF EXISTS moved_entries, moved_keys, moved_spans, moved_nodes; {} \
         CREATE TABLE moved_entries AS SELECT * FROM aitrail.entries WHERE seq >= {rest}; \
         CREATE TABLE moved_keys AS SELECT * FROM aitrail.entry_keys WHERE seq >= {first}; \
         CREATE TABLE moved_spans AS SELECT * FROM aitrail.entry_spans WHERE first_seq >= {first}; \
         CREATE TABLE moved_nodes AS SELECT * FROM aitrail.nodes \
             WHERE idx >= ({first}::int8 >> level) AND level > 0; \
         DELETE FROM aitrail.entries WHERE seq >= {}; \
         DELETE FROM aitrail.entry_keys WHERE seq >= {first}; \
         DELETE FROM aitrail.entry_spans WHERE first_seq >= {first}; \
         DELETE FROM aitrail.nodes WHERE (log_id, level, idx) IN (SELECT log_id, level, idx FROM moved_nodes); \
         {}",
        triggers("DISABLE"),
        if side_lost { first } else { rest },
        triggers("ENABLE ALWAYS"),
    ))
    .unwrap();
    let mut writer = pg::raw(db);
    writer
        .batch_execute(&format!(
            "BEGIN; \
             SELECT pg_advisory_xact_lock(hashtextextended('aitrail log:{LOG}', 0)); \
             INSERT INTO aitrail.entries SELECT * FROM moved_entries; \
             INSERT INTO aitrail.entry_keys SELECT * FROM moved_keys; \
             INSERT INTO aitrail.entry_spans (log_id, first_seq, next_seq, first_at, last_at) \
                 SELECT log_id, first_seq, next_seq, first_at, last_at FROM moved_spans; \
             INSERT INTO aitrail.nodes SELECT * FROM moved_nodes; \
             PREPARE TRANSACTION 'aitrail:{log_id}:{first}:{side_rows}:{recorded_at}:1'"
        ))
        .unwrap();
}

/// Keyless entries that do not continue the log (altered, or written around aitrail) are
/// not given keys: the append refuses, names the seq and points at verify.
#[test]
fn keyless_entries_that_do_not_continue_the_log_are_refused() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let seq = Sequencer::new(store.clone());
    append_new(&seq, LOG, events(0, 100));
    append_new(&seq, LOG, events(100, 1500));
    let mut su = pg::raw(&db);
    su.batch_execute(
        "ALTER TABLE aitrail.entry_keys DISABLE TRIGGER refuse_update_delete; \
         DELETE FROM aitrail.entry_keys WHERE seq >= 100; \
         ALTER TABLE aitrail.entry_keys ENABLE TRIGGER refuse_update_delete; \
         ALTER TABLE aitrail.entry_spans DISABLE TRIGGER refuse_update_delete; \
         DELETE FROM aitrail.entry_spans WHERE first_seq >= 100; \
         ALTER TABLE aitrail.entry_spans ENABLE TRIGGER refuse_update_delete; \
         ALTER TABLE aitrail.entries DISABLE TRIGGER refuse_update_delete; \
         UPDATE aitrail.entries SET chain_hash = sha256(chain_hash) WHERE seq = 100; \
         ALTER TABLE aitrail.entries ENABLE TRIGGER refuse_update_delete",
    )
    .unwrap();
    let err = Sequencer::new(store.clone())
        .append(LOG, events(2000, 5))
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("from seq 100 have no keys and do not continue the log"),
        "{err}"
    );
    assert_eq!(store.head(LOG).unwrap().size, 100, "nothing was keyed");
}

/// The database itself refuses a seq twice or a skipped one, whatever the day: a log's spans
/// are one run from 0.
#[test]
fn the_spans_refuse_a_repeated_or_skipped_seq() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let seq = Sequencer::new(store.clone());
    append_new(&seq, LOG, events(0, 10));
    append_new(&seq, LOG, events(10, 5));
    let mut raw = pg::raw(&db);
    let insert = |raw: &mut postgres::Client, first: i64, next: i64| {
        raw.execute(
            "INSERT INTO aitrail.entry_spans (log_id, first_seq, next_seq, first_at, last_at) \
             SELECT id, $1, $2, now(), now() FROM aitrail.logs WHERE name = $3",
            &[&first, &next, &LOG],
        )
        .map(|_| ())
        .map_err(|e| {
            e.as_db_error()
                .and_then(|d| d.constraint())
                .unwrap_or("")
                .to_owned()
        })
    };
    assert_eq!(insert(&mut raw, 10, 12).unwrap_err(), "entry_spans_first");
    assert_eq!(insert(&mut raw, 12, 14).unwrap_err(), "entry_spans_follows");
    assert_eq!(insert(&mut raw, 16, 20).unwrap_err(), "entry_spans_follows");
    assert_eq!(insert(&mut raw, 0, 3).unwrap_err(), "entry_spans_first");
    assert_eq!(insert(&mut raw, 15, 14).unwrap_err(), "entry_spans_order");
    insert(&mut raw, 15, 20).expect("the next run is taken");
    assert_eq!(insert(&mut raw, 15, 21).unwrap_err(), "entry_spans_first");
    assert_eq!(insert(&mut raw, 12, 15).unwrap_err(), "entry_spans_next");
    assert_eq!(insert(&mut raw, 19, 21).unwrap_err(), "entry_spans_follows");
}

/// Entries with keys but no span (what a writer of version 5 still running after the
/// migration leaves) are given their span by the next append, not written again.
#[test]
fn entries_with_keys_but_no_span_get_their_span() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let seq = Sequencer::new(store.clone());
    append_new(&seq, LOG, events(0, 10));
    append_new(&seq, LOG, events(10, 5));
    let mut su = pg::raw(&db);
    su.batch_execute(
        "ALTER TABLE aitrail.entry_spans DISABLE TRIGGER refuse_update_delete; \
         DELETE FROM aitrail.entry_spans WHERE first_seq = 10; \
         ALTER TABLE aitrail.entry_spans ENABLE TRIGGER refuse_update_delete",
    )
    .unwrap();
    assert_eq!(store.head(LOG).unwrap().size, 10);
    let out = Sequencer::new(store.clone())
        .append(LOG, events(15, 3))
        .unwrap();
    let seqs: Vec<u64> = out.iter().map(|o| o.receipt().seq).collect();
    assert_eq!(seqs, [15, 16, 17]);
    let spans = spans(&mut su);
    assert_eq!(spans, [(0, 10), (10, 15), (15, 18)]);
    let keys: i64 = su
        .query_one("SELECT count(*) FROM aitrail.entry_keys", &[])
        .unwrap()
        .get(0);
    assert_eq!(keys, 18, "no key written twice");
    assert!(verify(store.as_ref()).ok);
}

/// Version 6 moved the seqs from one key row per entry to one span per group commit: a
/// store written before is backfilled (one span per run and day) and reads as before.
#[test]
fn the_spans_are_backfilled_from_the_keys_of_a_version_5_store() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let start = now() - 3 * DAY;
    for (i, day) in [0, 0, 1, 3].into_iter().enumerate() {
        let at = start + day * DAY;
        append_with(store.as_ref(), &events(i as u64 * 10, 10), &|_| at, Some(7)).unwrap();
    }
    append_new(&Sequencer::new(store.clone()), "other", events(100, 3));
    let before = all_entries(store.as_ref(), LOG);
    // Back to version 5: no spans, the (log, seq) key on entry_keys.
    let mut raw = pg::raw(&db);
    raw.batch_execute(
        "DROP TABLE aitrail.entry_spans; \
         ALTER TABLE aitrail.entry_keys ADD CONSTRAINT entry_keys_seq PRIMARY KEY (log_id, seq); \
         ALTER TABLE aitrail.schema_migrations DISABLE TRIGGER refuse_update_delete; \
         DELETE FROM aitrail.schema_migrations WHERE version = 6; \
         ALTER TABLE aitrail.schema_migrations ENABLE TRIGGER refuse_update_delete",
    )
    .unwrap();
    let report = PgStore::init(&db.url(), None).unwrap();
    assert_eq!(report.migrated, Migrated { from: 5, to: 6 });
    let spans: Vec<(String, i64, i64)> = raw
        .query(
            "SELECT l.name, first_seq, next_seq FROM aitrail.entry_spans s \
             JOIN aitrail.logs l ON l.id = s.log_id ORDER BY l.name, first_seq",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let spans: Vec<(&str, i64, i64)> = spans.iter().map(|(l, a, b)| (&l[..], *a, *b)).collect();
    assert_eq!(
        spans,
        [(LOG, 0, 20), (LOG, 20, 30), (LOG, 30, 40), ("other", 0, 3)],
        "one span per log, run and day"
    );
    let store = Arc::new(PgStore::open(&db.url()).unwrap());
    assert_eq!(all_entries(store.as_ref(), LOG), before);
    assert_eq!(store.entry(LOG, 25).unwrap(), Some(before[25].clone()));
    assert_eq!(store.head("other").unwrap().size, 3);
    // Leaf hashes across the backfilled days: a proof from the first day to the last.
    log::checkpoint(store.as_ref(), LOG, &signer(), now()).unwrap();
    let proof = log::prove(store.as_ref(), LOG, &before[3].event_id)
        .unwrap()
        .unwrap();
    proof.verify(&signer().verifier()).unwrap();
    let seqs = append_with(store.as_ref(), &events(40, 5), &|_| now(), Some(7)).unwrap();
    assert_eq!(seqs, (40..45).collect::<Vec<_>>());
    assert!(verify(store.as_ref()).ok);
}

#[test]
fn update_delete_and_truncate_are_refused_even_to_the_owner() {
    let Some(server) = pg::server() else { return };
    // An owner that is no superuser: the database and every aitrail table are its own.
    let db =
        aitrail_store::postgres::ScratchDatabase::create(&server, "aitrail_test", true).unwrap();
    let owner = db.owner().unwrap().to_owned();
    let owner_url = db.url_as(&owner, None);
    let report = PgStore::init(&owner_url, Some("aitrail_never_created")).unwrap();
    assert!(
        matches!(&report.role, Some(AppRole::Skipped { reason, .. }) if reason.contains("CREATEROLE")),
        "an owner without CREATEROLE creates no role: {:?}",
        report.role
    );
    let store = Arc::new(PgStore::open(&owner_url).unwrap());
    let seq = Sequencer::new(store.clone());
    append_new(&seq, LOG, events(0, 300));
    log::checkpoint(store.as_ref(), LOG, &signer(), now()).unwrap();
    store
        .add(
            &TokenRecord {
                id: "tk_1".into(),
                name: "ci".into(),
                role: Role::Viewer,
                tenant: LOG.into(),
                created_at: 1,
                revoked_at: None,
            },
            &token_hash("secret"),
        )
        .unwrap();
    store.revoke("tk_1", 2).unwrap();
    let before = all_entries(store.as_ref(), LOG);
    let today = partition_of(day_of(now()));

    let mut as_owner = postgres::Client::connect(&owner_url, postgres::NoTls).unwrap();
    let is_owner: bool = as_owner
        .query_one(
            "SELECT pg_get_userbyid(relowner) = current_user AND NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) \
             FROM pg_class WHERE oid = 'aitrail.entries'::regclass",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(is_owner, "the test runs as the tables' owner, no superuser");
    let mut as_superuser = pg::raw(&db);
    let statements = [
        "UPDATE aitrail.entries SET decision = 'approve' WHERE seq = 3".to_owned(),
        format!("UPDATE aitrail.{today} SET entry = '\\x00' WHERE seq = 3"),
        "DELETE FROM aitrail.entries WHERE seq = 299".to_owned(),
        format!("DELETE FROM aitrail.{today}"),
        "TRUNCATE aitrail.entries".to_owned(),
        format!("TRUNCATE aitrail.{today}"),
        "UPDATE aitrail.entry_keys SET seq = seq + 1".to_owned(),
        "TRUNCATE aitrail.entry_keys".to_owned(),
        "UPDATE aitrail.entry_spans SET next_seq = next_seq + 1".to_owned(),
        "DELETE FROM aitrail.entry_spans".to_owned(),
        "TRUNCATE aitrail.entry_spans".to_owned(),
        "UPDATE aitrail.nodes SET hash = '\\x00'".to_owned(),
        "DELETE FROM aitrail.nodes".to_owned(),
        "TRUNCATE aitrail.nodes".to_owned(),
        "UPDATE aitrail.checkpoints SET size = size + 1".to_owned(),
        "DELETE FROM aitrail.checkpoints".to_owned(),
        "TRUNCATE aitrail.checkpoints CASCADE".to_owned(),
        "UPDATE aitrail.logs SET name = 'renamed'".to_owned(),
        "UPDATE aitrail.tokens SET role = 'admin'".to_owned(),
        "DELETE FROM aitrail.token_revocations".to_owned(),
        "TRUNCATE aitrail.tokens CASCADE".to_owned(),
        "DELETE FROM aitrail.schema_migrations".to_owned(),
    ];
    for sql in &statements {
        for (who, client) in [("owner", &mut as_owner), ("superuser", &mut as_superuser)] {
            let msg = refused(client, sql);
            assert!(
                msg.contains("aitrail is append-only"),
                "{who}: {sql}: {msg}"
            );
        }
        // session_replication_role = replica skips ordinary triggers, not ENABLE ALWAYS ones.
        let msg = refused(
            &mut as_superuser,
            &format!("BEGIN; SET LOCAL session_replication_role = replica; {sql}; COMMIT"),
        );
        as_superuser.batch_execute("ROLLBACK").unwrap();
        assert!(
            msg.contains("aitrail is append-only"),
            "replica: {sql}: {msg}"
        );
    }
    assert_eq!(all_entries(store.as_ref(), LOG), before);
    assert_eq!(store.list().unwrap()[0].revoked_at, Some(2));
    assert!(verify(store.as_ref()).ok);
}

#[test]
fn the_application_role_may_select_and_insert_only() {
    let Some(mut db) = pg::database() else { return };
    let app = db.role_name("app");
    let report = PgStore::init(&db.url(), Some(&app)).unwrap();
    let Some(AppRole::Created { name, password }) = report.role else {
        panic!("the superuser creates the role: {:?}", report.role)
    };
    assert_eq!(name, app);
    assert!(password.len() >= 32, "a long random password");
    // Again: the role exists, its grants are applied again, nothing else changes.
    let again = PgStore::init(&db.url(), Some(&app)).unwrap();
    assert_eq!(again.role, Some(AppRole::Granted { name: app.clone() }));

    // As the role, aitrail works: append, read, verify, checkpoint, prove, tokens.
    let url = db.url_as(&app, Some(&password));
    let store = Arc::new(PgStore::open(&url).unwrap());
    let seq = Sequencer::new(store.clone());
    let mut receipts: Vec<Receipt> = append_new(&seq, LOG, events(0, 300));
    // A second group commit: its span's foreign key is checked with the role's rights.
    receipts.extend(append_new(&seq, LOG, events(300, 2)));
    append_new(&seq, "tenant-b", events(1000, 3));
    let (cp, _) = log::checkpoint(store.as_ref(), LOG, &signer(), now()).unwrap();
    assert_eq!(cp.size, 302);
    let proof = log::prove(store.as_ref(), LOG, &receipts[7].id.to_string())
        .unwrap()
        .unwrap();
    proof.verify(&signer().verifier()).unwrap();
    let rec = TokenRecord {
        id: "tk_1".into(),
        name: "ci".into(),
        role: Role::Auditor,
        tenant: LOG.into(),
        created_at: 5,
        revoked_at: None,
    };
    store.add(&rec, &token_hash("secret")).unwrap();
    assert_eq!(store.find_active(&token_hash("secret")).unwrap(), Some(rec));
    store.revoke("tk_1", 9).unwrap();
    store.revoke("tk_1", 10).unwrap(); // revoking twice keeps the first revocation
    assert_eq!(store.find_active(&token_hash("secret")).unwrap(), None);
    assert_eq!(store.list().unwrap()[0].revoked_at, Some(9));
    assert!(verify(store.as_ref()).ok);

    // Anything but SELECT and INSERT is refused by privilege, before any trigger.
    let mut as_app = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let today = partition_of(day_of(now()));
    for sql in [
        "UPDATE aitrail.entries SET decision = 'approve'".to_owned(),
        "DELETE FROM aitrail.entries".to_owned(),
        "TRUNCATE aitrail.entries".to_owned(),
        format!("TRUNCATE aitrail.{today}"),
        format!("DELETE FROM aitrail.{today}"),
        "DELETE FROM aitrail.entry_keys".to_owned(),
        "DELETE FROM aitrail.entry_spans".to_owned(),
        "UPDATE aitrail.entry_spans SET last_at = now()".to_owned(),
        "UPDATE aitrail.checkpoints SET size = 1".to_owned(),
        "INSERT INTO aitrail.schema_migrations (version, name) VALUES (50, 'x')".to_owned(),
        "CREATE TABLE aitrail.mine (x int)".to_owned(),
        "DROP TABLE aitrail.nodes".to_owned(),
        format!("ALTER TABLE aitrail.entries DETACH PARTITION aitrail.{today}"),
        "ALTER TABLE aitrail.entries DISABLE TRIGGER refuse_update_delete".to_owned(),
        "SET session_replication_role = replica".to_owned(),
    ] {
        let msg = refused(&mut as_app, &sql);
        assert!(
            msg.contains("permission denied") || msg.contains("must be owner"),
            "{sql}: {msg}"
        );
    }
    // What it may do beyond the tables: extend the partitions, through aitrail's function.
    as_app
        .batch_execute("SELECT aitrail.ensure_partitions(current_date + 30, current_date + 31)")
        .unwrap();
    assert!(partitions(&mut pg::raw(&db)).contains(&partition_of(day_of(now()) + 31)));
}

#[test]
fn a_superuser_who_disables_the_triggers_is_located_by_verify() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let [_, second, third] = three_day_log(&store);
    assert!(
        verify(store.as_ref()).ok,
        "{:?}",
        verify(store.as_ref()).problems
    );
    let entries = all_entries(store.as_ref(), LOG);
    let mut su = pg::raw(&db);
    // A superuser can switch the triggers off (ALTER TABLE recurses to every partition).
    su.batch_execute("ALTER TABLE aitrail.entries DISABLE TRIGGER refuse_update_delete")
        .unwrap();

    // Edit one entry of yesterday's partition.
    let target = second + 17;
    su.execute(
        "UPDATE aitrail.entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'loan-', 'LOAN-'), 'UTF8') WHERE seq = $1",
        &[&(target as i64)],
    )
    .unwrap();
    let report = verify(store.as_ref());
    assert!(!report.ok);
    let first = &report.problems[0];
    assert_eq!(
        (first.kind, first.seq, first.event_id.as_deref()),
        (
            ProblemKind::ChangedEntry,
            Some(target),
            Some(entries[target as usize].event_id.as_str())
        ),
        "{:#?}",
        report.problems
    );

    // Delete one of today's rows: a missing seq.
    su.execute(
        "DELETE FROM aitrail.entries WHERE seq = $1",
        &[&((third + 5) as i64)],
    )
    .unwrap();
    let report = verify(store.as_ref());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::MissingSeq && p.seq == Some(third + 5)),
        "{:#?}",
        report.problems
    );
}

#[test]
fn a_detached_partition_is_located_by_verify() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    let [_, second, third] = three_day_log(&store);
    let entries = all_entries(store.as_ref(), LOG);
    let yesterday = partition_of(day_of(now()) - 1);
    let mut su = pg::raw(&db);
    su.batch_execute(&format!(
        "ALTER TABLE aitrail.entries DETACH PARTITION aitrail.{yesterday}"
    ))
    .unwrap();
    let report = verify(store.as_ref());
    assert!(!report.ok);
    let first = &report.problems[0];
    assert_eq!(
        (first.kind, first.seq),
        (ProblemKind::MissingSeq, Some(second)),
        "yesterday's entries ({second}..{third}) are gone: {:#?}",
        report.problems
    );
    assert!(
        first
            .detail
            .contains(&format!("seqs {second} to {}", third - 1)),
        "{}",
        first.detail
    );
    assert_eq!(report.entries, entries.len() as u64 - (third - second));

    // Today's partition too: the tail under the last checkpoint is gone.
    let today = partition_of(day_of(now()));
    su.batch_execute(&format!(
        "ALTER TABLE aitrail.entries DETACH PARTITION aitrail.{today}"
    ))
    .unwrap();
    let report = verify(store.as_ref());
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.kind == ProblemKind::Truncated && p.seq == Some(second)),
        "{:#?}",
        report.problems
    );
    // Appending now fails (the spans still hold every seq) instead of forking the log.
    let seq = Sequencer::new(store.clone());
    let err = seq.append(LOG, events(9000, 1)).unwrap_err();
    assert!(err.to_string().contains("commit failed"), "{err}");
    drop(seq);
    // Re-attached, everything verifies again: nothing was lost, only hidden.
    for day in [day_of(now()) - 1, day_of(now())] {
        su.batch_execute(&format!(
            "ALTER TABLE aitrail.entries ATTACH PARTITION aitrail.{} FOR VALUES FROM ('{}') TO ('{}')",
            partition_of(day),
            midnight(day),
            midnight(day + 1)
        ))
        .unwrap();
    }
    assert!(verify(store.as_ref()).ok);
}
