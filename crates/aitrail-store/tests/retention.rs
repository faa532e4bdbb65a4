//! Retention, run against every backend over a trail recorded years back: days past the hot
//! window move to archive segments and leave the hot store; search, timeline and proofs still
//! reach them through the archive; a legal hold keeps its task's segment past expiry while the
//! other segment expires (recorded as `audit.retention`); verify passes throughout, tells
//! expired from archived, and names a deleted segment's range as missing.
//!
//! Where a new test belongs: a behaviour every backend must have goes in the scenarios
//! section with one `#[test]` per backend module.

#[path = "postgres_support/mod.rs"]
mod postgres_support;

use aitrail_core::checkpoint::Signer;
use aitrail_core::entry::PreparedEvent;
use aitrail_core::event::{parse_time, Event, Origin};
use aitrail_store::audit::{search, task_timeline};
use aitrail_store::query::{Filter, Order, Query};
use aitrail_store::retention::{
    self, ArchiveStore, Context, Deleted, Hold, HoldScope, Policy, WithArchive,
};
use aitrail_store::sequencer::{Outcome, Sequencer};
use aitrail_store::store::Store;
use aitrail_store::verify::{verify_archived, ProblemKind};
use aitrail_store::StoreError;
use serde_json::json;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};

const LOG: &str = "default";

/// An archive in memory, with a way to lose an object behind aitrail's back.
#[derive(Default)]
struct MemoryArchive {
    objects: Mutex<BTreeMap<String, (Vec<u8>, i64)>>,
}

impl ArchiveStore for MemoryArchive {
    fn name(&self) -> &str {
        "memory"
    }
    fn put(&self, key: &str, bytes: &[u8], retain_until: i64) -> Result<String, String> {
        let mut o = self.objects.lock().unwrap();
        match o.get(key) {
            Some((b, _)) if b == bytes => {}
            Some(_) => return Err(format!("{key} exists with other bytes")),
            None => {
                o.insert(key.to_owned(), (bytes.to_vec(), retain_until));
            }
        }
        Ok(format!("memory:{key}"))
    }
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String> {
        Ok(self
            .objects
            .lock()
            .unwrap()
            .get(key)
            .map(|(b, _)| b.clone()))
    }
    fn delete(&self, key: &str) -> Result<Deleted, String> {
        Ok(match self.objects.lock().unwrap().remove(key) {
            Some(_) => Deleted::Yes,
            None => Deleted::Absent,
        })
    }
}

fn at(s: &str) -> i64 {
    parse_time(s).unwrap()
}

fn event(task: &str, kind: &str, occurred: &str) -> PreparedEvent {
    let v = match kind {
        "task.created" => json!({"type": kind, "task_id": task, "occurred_at": occurred}),
        _ => json!({"type": "review.decision", "task_id": task, "occurred_at": occurred,
                    "actor": {"kind": "human", "id": "rev-1"}, "review": {"decision": "approve"}}),
    };
    PreparedEvent::new(Event::from_value(v, Origin::Client).unwrap(), b"k").unwrap()
}

/// Appends `events` as if recorded at `when`.
fn append_at(
    seq: &Sequencer,
    clock: &AtomicI64,
    when: &str,
    events: Vec<PreparedEvent>,
) -> Vec<u64> {
    clock.store(at(when), Ordering::SeqCst);
    seq.append(LOG, events)
        .unwrap()
        .iter()
        .map(|o| o.receipt().seq)
        .collect()
}

fn task_query(task: &str) -> Query {
    Query {
        filter: Filter {
            task_id: Some(task.into()),
            ..Filter::default()
        },
        ..Query::default()
    }
}

/// A sequencer on `store` whose clock the test sets, and the log's signer.
fn setup(store: &Arc<dyn Store>) -> (Arc<AtomicI64>, Sequencer, Signer) {
    let clock = Arc::new(AtomicI64::new(0));
    let c = clock.clone();
    let seq = Sequencer::with_clock(store.clone(), Arc::new(move || c.load(Ordering::SeqCst)));
    (
        clock,
        seq,
        Signer::from_seed("example.com/log", [3; 32]).unwrap(),
    )
}

/// Plans retention of the log at `now` under `policy` and carries it out.
fn plan_and_run(
    store: &Arc<dyn Store>,
    seq: &Sequencer,
    signer: &Signer,
    archive: &dyn ArchiveStore,
    policy: &Policy,
    now: i64,
) -> retention::Plan {
    let ctx = Context {
        store: store.as_ref(),
        sequencer: seq,
        archive,
        signer,
        policy,
        now,
    };
    let plan = retention::plan(store.as_ref(), LOG, policy, now).unwrap();
    retention::run(&ctx, &plan, &mut |_| {}).unwrap();
    plan
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

fn hot_cold_hold_expiry_and_verify(store: Arc<dyn Store>) {
    let (clock, seq, signer) = setup(&store);
    let verifier = signer.verifier();
    // Two days in March 2019, and one now: the first two are years past the hot window.
    let day1 = append_at(
        &seq,
        &clock,
        "2019-03-01T10:00:00Z",
        vec![
            event("held-task", "task.created", "2019-03-01T09:00:00Z"),
            event("held-task", "review.decision", "2019-03-01T09:30:00Z"),
            event("t-1", "task.created", "2019-03-01T09:40:00Z"),
        ],
    );
    let day2 = append_at(
        &seq,
        &clock,
        "2019-03-02T10:00:00Z",
        vec![
            event("t-2", "task.created", "2019-03-02T09:00:00Z"),
            event("t-2", "review.decision", "2019-03-02T09:10:00Z"),
        ],
    );
    let now = at("2026-11-29T12:00:00Z");
    let hot = append_at(
        &seq,
        &clock,
        "2026-11-29T11:00:00Z",
        vec![event("t-now", "task.created", "2026-11-29T10:00:00Z")],
    );
    assert_eq!((day1[0], day2[0], hot[0]), (0, 3, 5));
    let archive = MemoryArchive::default();
    let policy = Policy::default();
    let ctx = Context {
        store: store.as_ref(),
        sequencer: &seq,
        archive: &archive,
        signer: &signer,
        policy: &policy,
        now,
    };

    // Plan: the two 2019 days move; nothing is archived yet, so nothing expires.
    let plan = retention::plan(store.as_ref(), LOG, &policy, now).unwrap();
    let moves: Vec<_> = plan
        .moves
        .iter()
        .map(|m| (m.day.as_str(), m.first_seq, m.end_seq))
        .collect();
    assert_eq!(moves, [("2019-03-01", 0, 3), ("2019-03-02", 3, 5)]);
    assert!(plan.expiries.is_empty());

    let report = retention::run(&ctx, &plan, &mut |_| {}).unwrap();
    assert_eq!(report.done.len(), 2, "{report:?}");
    assert!(report.skipped.is_empty());
    for s in 0..5 {
        assert_eq!(
            store.entry(LOG, s).unwrap(),
            None,
            "seq {s} left the hot store"
        );
    }
    assert!(store.entry(LOG, 5).unwrap().is_some());
    assert!(archive
        .get("default/segments/2019-03-01-0.seg.gz")
        .unwrap()
        .is_some());
    let manifest: retention::Manifest = serde_json::from_slice(
        &archive
            .get("default/segments/2019-03-01-0.manifest.json")
            .unwrap()
            .unwrap(),
    )
    .unwrap();
    assert_eq!((manifest.first_seq, manifest.end_seq), (0, 3));
    assert_eq!(
        manifest.expires_at, "2025-03-02T00:00:00.000000Z",
        "six years after the day"
    );

    // Verify reads the archive back; without it, the recorded hashes still verify.
    let r = verify_archived(
        store.as_ref(),
        LOG,
        Some(&verifier),
        Some(&archive),
        &mut |_| {},
    )
    .unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!((r.archived, r.expired), (5, 0));
    let r = verify_archived(store.as_ref(), LOG, Some(&verifier), None, &mut |_| {}).unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.unchecked, 5);

    // The archive is reached only when asked: search, timeline, proof.
    let (rows, _) = search(store.as_ref(), LOG, &task_query("t-2")).unwrap();
    assert!(rows.is_empty());
    let with = WithArchive {
        store: store.as_ref(),
        archive: &archive,
    };
    let (rows, _) = search(&with, LOG, &task_query("t-2")).unwrap();
    assert_eq!(rows.iter().map(|r| r.entry.seq).collect::<Vec<_>>(), [3, 4]);
    let all = Query {
        limit: Some(4),
        ..Query::default()
    };
    let (rows, _) = search(&with, LOG, &all).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.entry.seq).collect::<Vec<_>>(),
        [0, 1, 2, 3],
        "occurred order, archive first"
    );
    let tl = task_timeline(&with, LOG, "held-task", None).unwrap();
    assert_eq!(tl.steps.len(), 2);
    let id = rows[1].entry.event_id.clone();
    let proof = aitrail_store::log::prove(&with, LOG, &id).unwrap().unwrap();
    assert_eq!(proof.seq, 1);
    proof.verify(&verifier).unwrap();
    assert!(matches!(
        aitrail_store::log::prove(store.as_ref(), LOG, &id),
        Err(StoreError::NotFound(_))
    ));

    // An archived event id sent again is not recorded twice: the same event gets its
    // original receipt (its bytes are compared through the recorded leaf hash), other
    // content under the id is a conflict.
    let resend = |v: serde_json::Value| {
        PreparedEvent::new(Event::from_value(v, Origin::Client).unwrap(), b"k").unwrap()
    };
    let same = resend(
        json!({"id": id, "type": "review.decision", "task_id": "held-task",
        "occurred_at": "2019-03-01T09:30:00Z", "actor": {"kind": "human", "id": "rev-1"},
        "review": {"decision": "approve"}}),
    );
    let out = seq.append(LOG, vec![same]).unwrap();
    let [Outcome::Duplicate(receipt)] = &out[..] else {
        panic!("not the original receipt: {out:?}");
    };
    assert_eq!((receipt.seq, receipt.leaf_hash), (1, rows[1].entry.leaf()));
    let other = resend(
        json!({"id": id, "type": "task.created", "task_id": "held-task",
        "occurred_at": "2019-03-01T09:30:00Z"}),
    );
    let err = seq.append(LOG, vec![other]).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { index: 0, .. }),
        "{err}"
    );
    assert_eq!(
        store.head(LOG).unwrap().size,
        6 + 2,
        "two audit.retention events, nothing else"
    );

    // A hold on one task; then both segments are past expiry.
    store
        .add_hold(
            LOG,
            &Hold {
                id: "hold-1".into(),
                scope: HoldScope::Task {
                    task_id: "held-task".into(),
                },
                reason: "matter 42".into(),
                created_by: "test".into(),
                created_at: now,
                released: None,
            },
        )
        .unwrap();
    let plan = retention::plan(store.as_ref(), LOG, &policy, now).unwrap();
    assert!(plan.moves.is_empty());
    assert_eq!(plan.expiries.len(), 2);
    let report = retention::run(&ctx, &plan, &mut |_| {}).unwrap();
    assert_eq!(report.skipped.len(), 1, "{report:?}");
    assert_eq!(
        (report.skipped[0].action, report.skipped[0].first_seq),
        ("held", 0)
    );
    assert!(report.skipped[0].detail.contains("hold-1"));
    assert_eq!(
        (report.done[0].action, report.done[0].first_seq),
        ("expired", 3)
    );
    assert!(archive
        .get("default/segments/2019-03-02-3.seg.gz")
        .unwrap()
        .is_none());
    assert!(
        archive
            .get("default/segments/2019-03-01-0.seg.gz")
            .unwrap()
            .is_some(),
        "held"
    );
    let expiry = &store.expiries(LOG).unwrap()[0];
    let recorded = store.entry(LOG, expiry.retention_seq).unwrap().unwrap();
    let text = String::from_utf8(recorded.entry).unwrap();
    assert!(
        text.contains("\"type\":\"audit.retention\"") && text.contains("\"action\":\"expired\""),
        "{text}"
    );

    // Verify: the held segment read back, the expired one known by policy.
    let r = verify_archived(
        store.as_ref(),
        LOG,
        Some(&verifier),
        Some(&archive),
        &mut |_| {},
    )
    .unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!((r.archived, r.expired), (3, 2));
    let (rows, _) = search(&with, LOG, &task_query("t-2")).unwrap();
    assert!(rows.is_empty(), "expired entries are gone");

    // A segment deleted behind aitrail's back is missing, with its range.
    archive
        .delete("default/segments/2019-03-01-0.seg.gz")
        .unwrap();
    let r = verify_archived(
        store.as_ref(),
        LOG,
        Some(&verifier),
        Some(&archive),
        &mut |_| {},
    )
    .unwrap();
    assert!(!r.ok);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    let p = &r.problems[0];
    assert_eq!((p.kind, p.seq), (ProblemKind::MissingArchive, Some(0)));
    assert!(p.detail.contains("seqs 0 to 2"), "{}", p.detail);
    // ...and is not laundered into an expiry once its hold is released.
    store
        .release_hold(
            LOG,
            &retention::Release {
                hold_id: "hold-1".into(),
                released_by: "test".into(),
                reason: "matter closed".into(),
                released_at: now,
            },
        )
        .unwrap();
    let plan = retention::plan(store.as_ref(), LOG, &policy, now).unwrap();
    let report = retention::run(&ctx, &plan, &mut |_| {}).unwrap();
    assert_eq!(report.skipped[0].action, "missing");
    assert_eq!(store.expiries(LOG).unwrap().len(), 1);

    // Appends go on from the head as before.
    let next = append_at(
        &seq,
        &clock,
        "2026-11-29T12:00:00Z",
        vec![event("t-later", "task.created", "2026-11-29T11:59:00Z")],
    );
    assert_eq!(next[0], store.head(LOG).unwrap().size - 1);
    seq.shutdown();
}

/// Every hot row archived: the head comes from the retired hashes, so the run's own
/// `audit.retention` event (appended right after the move, when no hot row is left) takes the
/// next seq and the chain goes on.
fn the_head_survives_archiving_everything(store: Arc<dyn Store>) {
    let (clock, seq, signer) = setup(&store);
    append_at(
        &seq,
        &clock,
        "2020-01-01T00:00:00Z",
        vec![
            event("a", "task.created", "2020-01-01T00:00:00Z"),
            event("a", "review.decision", "2020-01-01T00:01:00Z"),
        ],
    );
    let archive = MemoryArchive::default();
    let policy = Policy::default();
    let now = at("2026-11-29T12:00:00Z");
    clock.store(at("2026-11-29T11:00:00Z"), Ordering::SeqCst);
    let plan = plan_and_run(&store, &seq, &signer, &archive, &policy, now);
    assert_eq!(plan.moves.len(), 1);
    let head = store.head(LOG).unwrap();
    assert_eq!(
        head.size, 3,
        "the audit.retention event follows the archived entries"
    );
    let event = store.entry(LOG, 2).unwrap().unwrap();
    assert!(String::from_utf8_lossy(&event.entry).contains("audit.retention"));
    let r = verify_archived(
        store.as_ref(),
        LOG,
        Some(&signer.verifier()),
        Some(&archive),
        &mut |_| {},
    )
    .unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!((r.archived, r.entries), (2, 3));
    seq.shutdown();
}

/// Hot rows deleted and passed off as expired (bookkeeping rows written by hand, as someone
/// with write access to the database could, here naming the run's "archived" event): verify
/// finds the expiry is not recorded in the chain and says so; deleting the segment too does
/// not help.
fn a_forged_expiry_is_reported(store: Arc<dyn Store>) {
    let (clock, seq, signer) = setup(&store);
    append_at(
        &seq,
        &clock,
        "2019-03-01T10:00:00Z",
        vec![event("a", "task.created", "2019-03-01T09:00:00Z")],
    );
    clock.store(at("2026-11-29T11:00:00Z"), Ordering::SeqCst);
    let archive = MemoryArchive::default();
    let policy = Policy::default();
    let now = at("2026-11-29T12:00:00Z");
    plan_and_run(&store, &seq, &signer, &archive, &policy, now);
    // The run's own audit.retention event (archived) is at seq 1: name it as the expiry's.
    store
        .add_expiry(
            LOG,
            &retention::Expiry {
                first_seq: 0,
                end_seq: 1,
                retention_seq: 1,
                record: store.entry(LOG, 1).unwrap().unwrap().entry,
                expired_at: now,
            },
        )
        .unwrap();
    archive
        .delete("default/segments/2019-03-01-0.seg.gz")
        .unwrap();
    let r = verify_archived(
        store.as_ref(),
        LOG,
        Some(&signer.verifier()),
        Some(&archive),
        &mut |_| {},
    )
    .unwrap();
    assert!(!r.ok);
    assert_eq!(r.problems.len(), 1, "{:?}", r.problems);
    assert_eq!(
        (r.problems[0].kind, r.problems[0].seq),
        (ProblemKind::ChangedArchive, Some(0))
    );
    assert!(
        r.problems[0].detail.contains("passed off as expired"),
        "{}",
        r.problems[0].detail
    );
    seq.shutdown();
}

/// A day archived under two days old: PostgreSQL keeps its partition (only older days are
/// dropped), so its rows are both hot and archived; reads through the archive give each once,
/// pages stay full, and verify counts each once.
fn a_recent_day_is_read_once(store: Arc<dyn Store>) {
    let (clock, seq, signer) = setup(&store);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let day = 86_400_000_000i64;
    let yesterday = (now.div_euclid(day) - 1) * day + 3_600_000_000;
    clock.store(yesterday, Ordering::SeqCst);
    let events = (0..4)
        .map(|i| event(&format!("t-{i}"), "task.created", "2026-01-01T00:00:00Z"))
        .collect();
    seq.append(LOG, events).unwrap();
    clock.store(now, Ordering::SeqCst);
    seq.append(
        LOG,
        vec![event("t-today", "task.created", "2026-01-02T00:00:00Z")],
    )
    .unwrap();
    let archive = MemoryArchive::default();
    let policy = Policy {
        hot_days: 0,
        ..Policy::default()
    };
    let plan = plan_and_run(&store, &seq, &signer, &archive, &policy, now);
    assert_eq!(plan.moves.len(), 1);
    let with = WithArchive {
        store: store.as_ref(),
        archive: &archive,
    };
    let page = Query {
        limit: Some(3),
        ..Query::default()
    };
    let (rows, next) = search(&with, LOG, &page).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.entry.seq).collect::<Vec<_>>(),
        [0, 1, 2]
    );
    let after = Query {
        after: aitrail_store::query::Cursor::decode(&next.unwrap()),
        limit: Some(3),
        ..Query::default()
    };
    let (rows, _) = search(&with, LOG, &after).unwrap();
    assert_eq!(
        rows.iter().map(|r| r.entry.seq).collect::<Vec<_>>(),
        [3, 4, 5]
    );
    // Pages smaller than the archived matches, in either order, walk the whole result: only
    // the first `limit` archived rows are kept for each page, the right ones.
    let mut walked = Vec::new();
    for order in [Order::Asc, Order::Desc] {
        let whole = Query {
            order,
            limit: Some(1000),
            ..Query::default()
        };
        let (all, _) = search(&with, LOG, &whole).unwrap();
        let all: Vec<u64> = all.iter().map(|r| r.entry.seq).collect();
        assert!(all.len() > 4, "{all:?}");
        let mut paged = Vec::new();
        let mut cursor = None;
        loop {
            let page = Query {
                order,
                after: cursor,
                limit: Some(2),
                ..Query::default()
            };
            let (rows, next) = search(&with, LOG, &page).unwrap();
            paged.extend(rows.iter().map(|r| r.entry.seq));
            let Some(next) = next else { break };
            cursor = aitrail_store::query::Cursor::decode(&next);
        }
        assert_eq!(paged, all, "{order:?}");
        walked.push(all);
    }
    walked[1].reverse();
    assert_eq!(walked[0], walked[1], "one order is the other reversed");
    let r = verify_archived(
        store.as_ref(),
        LOG,
        Some(&signer.verifier()),
        Some(&archive),
        &mut |_| {},
    )
    .unwrap();
    assert!(r.ok, "{:?}", r.problems);
    assert_eq!(r.entries, store.head(LOG).unwrap().size);
    seq.shutdown();
}

/// Two stores on one database, as two processes: the second's retention run waits for the
/// first's to end (`Store::retention_lock`), so they never plan the same work.
fn retention_runs_take_turns(first: &dyn Store, second: Arc<dyn Store>) {
    let mut free = || panic!("nobody holds the lock yet");
    let held = first.retention_lock(&mut free).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let waiter = std::thread::spawn(move || {
        let told = tx.clone();
        let turn = second
            .retention_lock(&mut || told.send("waiting").unwrap())
            .unwrap();
        tx.send("turn").unwrap();
        drop(turn);
    });
    let wait = std::time::Duration::from_secs(60);
    assert_eq!(rx.recv_timeout(wait), Ok("waiting"), "told it waits");
    assert!(
        rx.recv_timeout(std::time::Duration::from_millis(500))
            .is_err(),
        "the second run did not wait for the first"
    );
    drop(held);
    assert_eq!(
        rx.recv_timeout(wait),
        Ok("turn"),
        "the second run gets its turn once the first ends"
    );
    waiter.join().unwrap();
    // And the lock can be taken again afterwards, without waiting.
    drop(first.retention_lock(&mut free).unwrap());
}

mod sqlite {
    use aitrail_store::sqlite::SqliteStore;
    use std::sync::Arc;

    fn open() -> (tempfile::TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("trail.db")).unwrap());
        (dir, store)
    }

    #[test]
    fn hot_cold_hold_expiry_and_verify() {
        let (_dir, store) = open();
        super::hot_cold_hold_expiry_and_verify(store);
    }

    #[test]
    fn the_head_survives_archiving_everything() {
        let (_dir, store) = open();
        super::the_head_survives_archiving_everything(store);
    }

    #[test]
    fn a_recent_day_is_read_once() {
        let (_dir, store) = open();
        super::a_recent_day_is_read_once(store);
    }

    #[test]
    fn a_forged_expiry_is_reported() {
        let (_dir, store) = open();
        super::a_forged_expiry_is_reported(store);
    }

    /// The second process names the store through a symbolic link: SQLite follows it to the
    /// same file, and so does the retention lock.
    #[cfg(unix)]
    #[test]
    fn retention_runs_take_turns() {
        let (dir, store) = open();
        let link = dir.path().join("link.db");
        std::os::unix::fs::symlink(dir.path().join("trail.db"), &link).unwrap();
        let second = Arc::new(SqliteStore::open(&link).unwrap());
        super::retention_runs_take_turns(store.as_ref(), second);
    }

    #[test]
    fn only_retired_rows_may_be_deleted() {
        let (dir, store) = open();
        let seq = aitrail_store::sequencer::Sequencer::new(store.clone());
        seq.append(
            super::LOG,
            vec![super::event("a", "task.created", "2026-01-01T00:00:00Z")],
        )
        .unwrap();
        seq.shutdown();
        let conn = rusqlite::Connection::open(dir.path().join("trail.db")).unwrap();
        let err = conn.execute("DELETE FROM entries", []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{err}");
        // Row triggers fire only on rows: check the retention tables have theirs.
        for t in ["retired", "segments", "expiries", "holds", "hold_releases"] {
            for op in ["update", "delete"] {
                let sql: String = conn
                    .query_row(
                        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1",
                        [format!("{t}_no_{op}")],
                        |r| r.get(0),
                    )
                    .unwrap();
                assert!(sql.contains("append-only"), "{t}: {sql}");
            }
        }
    }
}

mod postgres {
    use super::postgres_support as pg;

    #[test]
    fn hot_cold_hold_expiry_and_verify() {
        let Some((db, store)) = pg::store() else {
            return;
        };
        super::hot_cold_hold_expiry_and_verify(store);
        // The 2019 days' partitions were detached and dropped; today's stays.
        let mut client = pg::raw(&db);
        for (part, gone) in [
            ("entries_20190301", true),
            ("entries_20190302", true),
            ("entries_20261129", false),
        ] {
            let exists: bool = client
                .query_one("SELECT to_regclass('aitrail.' || $1) IS NOT NULL", &[&part])
                .unwrap()
                .get(0);
            assert_eq!(exists, !gone, "{part}");
        }
    }

    #[test]
    fn a_recent_day_is_read_once() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::a_recent_day_is_read_once(store);
    }

    #[test]
    fn a_forged_expiry_is_reported() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::a_forged_expiry_is_reported(store);
    }

    #[test]
    fn retention_runs_take_turns() {
        let Some((db, store)) = pg::store() else {
            return;
        };
        let second =
            std::sync::Arc::new(aitrail_store::postgres::PgStore::open(&db.url()).unwrap());
        super::retention_runs_take_turns(store.as_ref(), second);
    }

    #[test]
    fn the_head_survives_archiving_everything() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::the_head_survives_archiving_everything(store);
    }
}
