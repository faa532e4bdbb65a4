//! Tampering with a SQLite trail behind aitrail's back, and what `verify::verify_log` says.
//!
//! Each test builds a signed log (`log_with`), opens the database file with a connection of its
//! own, drops the append-only triggers (`raw`) as someone with write access to the file would,
//! changes rows, and checks that verification fails with the right `ProblemKind` naming the
//! first entry affected (seq, and event id where the row still exists).
//!
//! Where a new test belongs: another way to change the file goes here, one test per kind of
//! change, built from the row helpers below. Behaviour every backend must have (including the
//! refusal of UPDATE and DELETE through the `Store`) belongs in `conformance.rs`.

mod common;

use aitrail_core::chain::chain_hash;
use aitrail_core::checkpoint::Signer;
use aitrail_core::entry::{entry_bytes, Receipt, Record};
use aitrail_core::merkle::{leaf_hash, Hash};
use aitrail_store::log;
use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::SqliteStore;
use aitrail_store::verify::{verify_log, ProblemKind, Report};
use common::{append_new, events, now_micros, pipeline_event, prepare, signer, LOG};
use rusqlite::{params, Connection};
use std::sync::Arc;
use tempfile::TempDir;

/// Entries per scheduled checkpoint in `log_with`.
const CHECKPOINT_EVERY: u64 = 10;

/// A log of `n` entries appended ten at a time, with a signed checkpoint after each ten
/// (and one at `n`): checkpoints at 10, 20, ..., as a scheduled checkpointer would leave them.
fn log_with(n: u64) -> (TempDir, Arc<SqliteStore>, Vec<Receipt>, Signer) {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(SqliteStore::open(&db(&dir)).unwrap());
    let signer = signer();
    let sequencer = Sequencer::new(store.clone());
    let mut receipts = Vec::new();
    while (receipts.len() as u64) < n {
        let batch = CHECKPOINT_EVERY.min(n - receipts.len() as u64);
        receipts.extend(append_new(
            &sequencer,
            LOG,
            events(receipts.len() as u64, batch),
        ));
        log::checkpoint(
            store.as_ref(),
            LOG,
            &signer,
            now_micros() + receipts.len() as i64,
        )
        .unwrap();
    }
    (dir, store, receipts, signer)
}

fn db(dir: &TempDir) -> std::path::PathBuf {
    dir.path().join("trail.db")
}

/// A connection of the attacker's own, with the append-only triggers dropped.
fn raw(dir: &TempDir) -> Connection {
    let conn = Connection::open(db(dir)).unwrap();
    for table in ["logs", "entries", "nodes", "checkpoints"] {
        for op in ["update", "delete"] {
            conn.execute_batch(&format!("DROP TRIGGER {table}_no_{op}"))
                .unwrap();
        }
    }
    conn
}

fn verify(store: &SqliteStore, signer: &Signer) -> Report {
    verify_log(store, LOG, Some(&signer.verifier()), &mut |_| {}).unwrap()
}

/// Verification failed and its first problem is `kind` at `seq`, naming `event_id`.
fn assert_first(report: &Report, kind: ProblemKind, seq: u64, event_id: Option<&Receipt>) {
    assert!(!report.ok, "tampering went unnoticed");
    let first = &report.problems[0];
    let expected_id = event_id.map(|r| r.id.to_string());
    assert_eq!(
        (first.kind, first.seq, first.event_id.as_ref()),
        (kind, Some(seq), expected_id.as_ref()),
        "first problem: {first:?}\nall: {:#?}",
        report.problems
    );
}

// ----- row helpers: what someone with the file can do --------------------------------------

fn entry_at(conn: &Connection, seq: u64) -> Vec<u8> {
    conn.query_row(
        "SELECT entry FROM entries WHERE seq = ?1",
        [seq as i64],
        |r| r.get(0),
    )
    .unwrap()
}

fn chain_at(conn: &Connection, seq: u64) -> Hash {
    let raw: Vec<u8> = conn
        .query_row(
            "SELECT chain_hash FROM entries WHERE seq = ?1",
            [seq as i64],
            |r| r.get(0),
        )
        .unwrap();
    raw.try_into().unwrap()
}

/// Replaces the entry bytes of `seq`, leaving its hashes as they were.
fn set_entry(conn: &Connection, seq: u64, entry: &[u8]) {
    let n = conn
        .execute(
            "UPDATE entries SET entry = ?1 WHERE seq = ?2",
            params![entry, seq as i64],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Edits the text of the entry at `seq` (the edit must change it).
fn edit_entry(conn: &Connection, seq: u64, from: &str, to: &str) {
    let text = String::from_utf8(entry_at(conn, seq)).unwrap();
    assert!(text.contains(from), "seq {seq} has no {from:?}: {text}");
    set_entry(conn, seq, text.replacen(from, to, 1).as_bytes());
}

/// Recomputes the leaf hash of `seq` from its bytes, leaving the chain hash.
fn rehash_leaf(conn: &Connection, seq: u64) {
    let leaf = leaf_hash(&entry_at(conn, seq));
    conn.execute(
        "UPDATE entries SET leaf_hash = ?1 WHERE seq = ?2",
        params![&leaf[..], seq as i64],
    )
    .unwrap();
}

/// Recomputes leaf and chain hashes of every row from `seq` on, consistently: what an
/// attacker without the signing key can do at most.
fn rehash_from(conn: &Connection, seq: u64) {
    let mut prev = if seq == 0 {
        [0; 32]
    } else {
        chain_at(conn, seq - 1)
    };
    let last: i64 = conn
        .query_row("SELECT max(seq) FROM entries", [], |r| r.get(0))
        .unwrap();
    for s in seq..=last as u64 {
        let leaf = leaf_hash(&entry_at(conn, s));
        prev = chain_hash(&prev, &leaf);
        conn.execute(
            "UPDATE entries SET leaf_hash = ?1, chain_hash = ?2 WHERE seq = ?3",
            params![&leaf[..], &prev[..], s as i64],
        )
        .unwrap();
    }
}

// A row's seq is the low bits of its row id, `id = (log_id << 40) | seq` (`seq` and `log_id`
// are columns generated from it), so renumbering a row means changing its id.

/// Moves the row at seq `from` to seq `to`.
fn set_seq(conn: &Connection, from: u64, to: u64) {
    let n = conn
        .execute(
            "UPDATE entries SET id = id - seq + ?2 WHERE seq = ?1",
            params![from as i64, to as i64],
        )
        .unwrap();
    assert_eq!(n, 1);
}

/// Adds `by` to the seq of every row from `from` on (two steps, past the primary key: the
/// rows are parked 2^39 seqs up, in the same log, then moved down).
fn shift_seqs(conn: &Connection, from: u64, by: i64) {
    const PARK: i64 = 1 << 39;
    conn.execute(
        "UPDATE entries SET id = id + ?1 + ?3 WHERE seq >= ?2",
        params![by, from as i64, PARK],
    )
    .unwrap();
    conn.execute(
        "UPDATE entries SET id = id - ?1 WHERE seq >= ?1",
        params![PARK],
    )
    .unwrap();
}

// ----- the baseline -------------------------------------------------------------------------

#[test]
fn untouched_log_verifies() {
    let (_dir, store, receipts, signer) = log_with(300);
    let report = verify(&store, &signer);
    assert!(report.ok, "{:#?}", report.problems);
    assert_eq!(
        (report.entries, report.checkpoints),
        (receipts.len() as u64, 30)
    );
}

#[test]
fn triggers_refuse_update_and_delete() {
    let (dir, store, _receipts, signer) = log_with(300);
    let conn = Connection::open(db(&dir)).unwrap();
    for sql in [
        "UPDATE entries SET entry = x'00' WHERE seq = 7",
        "UPDATE entries SET id = id + 1000 WHERE seq = 7",
        "DELETE FROM entries WHERE seq = 299",
        "UPDATE nodes SET hash = zeroblob(32)",
        "DELETE FROM nodes",
        "UPDATE checkpoints SET note = 'forged'",
        "DELETE FROM checkpoints WHERE size = 300",
        "UPDATE logs SET name = 'other'",
        "DELETE FROM logs",
    ] {
        let err = conn.execute(sql, []).expect_err(sql).to_string();
        assert!(err.contains("aitrail is append-only"), "{sql}: {err}");
    }
    assert!(verify(&store, &signer).ok);
}

// ----- entries changed ----------------------------------------------------------------------

#[test]
fn edited_entry_bytes_are_a_changed_entry() {
    let (dir, store, receipts, signer) = log_with(20);
    // seq 13 is the reviewer's decision on loan-00002: flip it.
    edit_entry(
        &raw(&dir),
        13,
        r#""decision":"approve""#,
        r#""decision":"reject""#,
    );
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::ChangedEntry, 13, Some(&receipts[13]));
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn edited_entry_with_recomputed_leaf_breaks_the_chain() {
    let (dir, store, receipts, signer) = log_with(20);
    let conn = raw(&dir);
    edit_entry(
        &conn,
        13,
        r#""decision":"approve""#,
        r#""decision":"reject""#,
    );
    rehash_leaf(&conn, 13);
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::ChangedEntry, 13, Some(&receipts[13]));
    assert!(
        report.problems[0].detail.contains("chain"),
        "{:?}",
        report.problems[0]
    );
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn entry_edited_with_sql_text_functions_is_a_changed_entry() {
    // The sqlite3 shell one-liner: replace() turns the BLOB into TEXT; verify must still read
    // the row and report it rather than fail to run.
    let (dir, store, receipts, signer) = log_with(20);
    raw(&dir)
        .execute(
            "UPDATE entries SET entry = replace(entry, 'reviewer-2', 'reviewer-5') WHERE seq = 13",
            [],
        )
        .unwrap();
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::ChangedEntry, 13, Some(&receipts[13]));
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn entry_bytes_that_are_no_record_are_a_changed_entry() {
    let (dir, store, receipts, signer) = log_with(20);
    set_entry(&raw(&dir), 4, b"{\"event\":{}}");
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::ChangedEntry, 4, Some(&receipts[4]));
    // The checkpoints of size 10 and 20 no longer match either, for the reason already given.
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn edited_entry_in_a_log_with_stored_nodes_is_located_at_the_entry() {
    // 300 entries: the recomputed node of seqs 0..256 and the 29 later checkpoints differ
    // too, but only because of the edit, which must be the one problem named.
    let (dir, store, receipts, signer) = log_with(300);
    edit_entry(
        &raw(&dir),
        13,
        r#""decision":"approve""#,
        r#""decision":"reject""#,
    );
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::ChangedEntry, 13, Some(&receipts[13]));
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

// ----- entries removed, added, moved --------------------------------------------------------

#[test]
fn deleted_entry_is_a_missing_seq() {
    let (dir, store, _receipts, signer) = log_with(20);
    raw(&dir)
        .execute("DELETE FROM entries WHERE seq = 13", [])
        .unwrap();
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::MissingSeq, 13, None);
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn deleted_entry_with_the_rest_renumbered_is_a_missing_seq() {
    let (dir, store, _receipts, signer) = log_with(20);
    let conn = raw(&dir);
    conn.execute("DELETE FROM entries WHERE seq = 13", [])
        .unwrap();
    shift_seqs(&conn, 14, -1);
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::MissingSeq, 13, None);
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn inserted_entry_is_an_extra_entry() {
    let (dir, store, receipts, signer) = log_with(20);
    let conn = raw(&dir);
    // A forged approval by someone who was never assigned, slipped in at seq 13 with its
    // leaf and chain computed as aitrail would, the rows after it moved up by one.
    let mut forged = pipeline_event(2, 3);
    forged["actor"]["id"] = "reviewer-mallory".into();
    let forged = prepare(forged);
    let recorded_at = Record::parse(&entry_at(&conn, 12)).unwrap().recorded_at;
    let entry = entry_bytes(13, LOG, &recorded_at, &forged.canonical);
    let leaf = leaf_hash(&entry);
    let chain = chain_hash(&chain_at(&conn, 12), &leaf);
    shift_seqs(&conn, 13, 1);
    conn.execute(
        "INSERT INTO entries (id, event_id, recorded_at, occurred_at, type, task_id, \
         actor_id, entry, leaf_hash, chain_hash) \
         SELECT id + 1, ?1, recorded_at, occurred_at, type, task_id, 'reviewer-mallory', ?2, ?3, ?4 \
         FROM entries WHERE seq = 12",
        params![forged.id.to_string(), entry, &leaf[..], &chain[..]],
    )
    .unwrap();
    let report = verify(&store, &signer);
    assert!(!report.ok);
    let first = &report.problems[0];
    assert_eq!(
        (first.kind, first.seq),
        (ProblemKind::ExtraEntry, Some(13)),
        "{:#?}",
        report.problems
    );
    assert_eq!(
        first.event_id,
        Some(forged.id.to_string()),
        "names the inserted event"
    );
    assert_ne!(first.event_id, Some(receipts[13].id.to_string()));
    assert_eq!(
        report.problems.len(),
        1,
        "the shifted rows are one change: {:#?}",
        report.problems
    );
}

#[test]
fn swapped_entries_are_reordered() {
    let (dir, store, receipts, signer) = log_with(20);
    let conn = raw(&dir);
    set_seq(&conn, 5, 1_000_000);
    set_seq(&conn, 6, 5);
    set_seq(&conn, 1_000_000, 6);
    let report = verify(&store, &signer);
    assert_first(
        &report,
        ProblemKind::ReorderedEntries,
        5,
        Some(&receipts[6]),
    );
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn truncated_tail_under_a_checkpoint_is_truncated() {
    let (dir, store, _receipts, signer) = log_with(20);
    raw(&dir)
        .execute("DELETE FROM entries WHERE seq >= 15", [])
        .unwrap();
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::Truncated, 15, None);
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

// ----- checkpoints and nodes ----------------------------------------------------------------

#[test]
fn altered_checkpoint_note_has_a_bad_signature() {
    let (dir, store, _receipts, signer) = log_with(20);
    let conn = raw(&dir);
    // Claim a smaller tree in the signed text: the signature no longer covers it.
    conn.execute("UPDATE checkpoints SET note = replace(note, char(10) || '20' || char(10), char(10) || '19' || char(10)) WHERE size = 20", [])
        .unwrap();
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::BadCheckpointSignature, 19, None);
}

#[test]
fn altered_checkpoint_signature_is_a_bad_signature() {
    let (dir, store, _receipts, signer) = log_with(20);
    let conn = raw(&dir);
    let note: String = conn
        .query_row("SELECT note FROM checkpoints WHERE size = 10", [], |r| {
            r.get(0)
        })
        .unwrap();
    // The signature's last base64 characters before the final newline.
    let cut = note.len() - 6;
    let flipped = if &note[cut..cut + 1] == "A" { "B" } else { "A" };
    let forged = format!("{}{flipped}{}", &note[..cut], &note[cut + 1..]);
    conn.execute("UPDATE checkpoints SET note = ?1 WHERE size = 10", [forged])
        .unwrap();
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::BadCheckpointSignature, 9, None);
}

#[test]
fn checkpoint_row_that_differs_from_its_note_is_a_bad_signature() {
    let (dir, store, _receipts, signer) = log_with(20);
    raw(&dir)
        .execute(
            "UPDATE checkpoints SET root = zeroblob(32) WHERE size = 20",
            [],
        )
        .unwrap();
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::BadCheckpointSignature, 19, None);
}

#[test]
fn consistently_rehashed_rewrite_is_a_checkpoint_mismatch() {
    let (dir, store, receipts, signer) = log_with(20);
    let conn = raw(&dir);
    edit_entry(
        &conn,
        13,
        r#""decision":"approve""#,
        r#""decision":"reject""#,
    );
    rehash_from(&conn, 13);
    let report = verify(&store, &signer);
    // Chain and leaves agree; only the checkpoint of size 20 shows it. The last checkpoint
    // that still matches is the one of size 10, so the rewrite lies in seqs 10..20; the
    // event named is the first one of that range.
    assert_first(
        &report,
        ProblemKind::CheckpointMismatch,
        10,
        Some(&receipts[10]),
    );
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn altered_node_is_a_changed_node() {
    let (dir, store, _receipts, signer) = log_with(300);
    raw(&dir)
        .execute(
            "UPDATE nodes SET hash = zeroblob(32) WHERE level = 8 AND idx = 0",
            [],
        )
        .unwrap();
    let report = verify(&store, &signer);
    assert_first(&report, ProblemKind::ChangedNode, 0, None);
    assert_eq!(report.problems.len(), 1, "{:#?}", report.problems);
}

#[test]
fn rewrite_is_found_even_when_another_checkpoint_is_bad() {
    let (dir, store, _receipts, signer) = log_with(30);
    let conn = raw(&dir);
    // Checkpoint 1 (size 10) is garbled; entries under checkpoint 2 are rewritten and
    // rehashed. The bad signature must not hide the rewrite.
    conn.execute(
        "UPDATE checkpoints SET note = 'garbled' WHERE size = 10",
        [],
    )
    .unwrap();
    edit_entry(
        &conn,
        13,
        r#""decision":"approve""#,
        r#""decision":"reject""#,
    );
    rehash_from(&conn, 13);
    let report = verify(&store, &signer);
    let kinds: Vec<_> = report.problems.iter().map(|p| (p.kind, p.seq)).collect();
    assert_eq!(
        kinds,
        vec![
            (ProblemKind::CheckpointMismatch, Some(0)),
            (ProblemKind::BadCheckpointSignature, Some(9)),
        ]
    );
}
