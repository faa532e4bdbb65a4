//! Erasure by crypto-shredding, run against every backend: events about two subjects are
//! sealed with their data keys; erasing one destroys its key, so its content reads as
//! `{"erased": true}` in search, timeline and export while the other's stays readable, the
//! key's bytes are gone from the key table, and `verify` still passes.
//!
//! Where a new test belongs: a behaviour every backend must have goes in the scenarios
//! section with one `#[test]` per backend module; raw-file checks go in that backend's module.

#[path = "postgres_support/mod.rs"]
mod postgres_support;

use aitrail_core::entry::Record;
use aitrail_core::event::{Event, Origin};
use aitrail_core::pii::{subject_ref, Policy};
use aitrail_store::audit::{search, task_timeline, Reader};
use aitrail_store::export::{export, Format};
use aitrail_store::keys::{erase_subject, prepare_events, Keyring};
use aitrail_store::query::{Filter, Query};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::Store;
use aitrail_store::verify::verify_log;
use serde_json::{json, Value};
use std::sync::Arc;

const LOG: &str = "default";
const TENANT_KEY: &[u8] = b"tenant key of the erasure test";
const ADA: &str = "ada@example.com";
const BOB: &str = "bob@example.com";

fn events_about(subject: &str, task: &str, secret: &str) -> Vec<Event> {
    [
        json!({"type": "ai.inference", "task_id": task, "occurred_at": "2026-03-01T12:00:00Z",
               "subject": {"kind": "applicant", "id": subject},
               "model": {"name": "m"}, "input": {"prompt": format!("assess {secret}")},
               "output": {"text": format!("{secret}: approve")}}),
        json!({"type": "review.decision", "task_id": task, "occurred_at": "2026-03-01T12:05:00Z",
               "subject": {"kind": "applicant", "id": subject},
               "actor": {"kind": "human", "id": "rev-1"},
               "review": {"decision": "modify", "changes": {"note": secret}}}),
    ]
    .into_iter()
    .map(|v| Event::from_value(v, Origin::Client).unwrap())
    .collect()
}

fn reader() -> Reader {
    Reader {
        kind: "human",
        id: "test".into(),
        role: "admin".into(),
    }
}

fn subject_query(id: &str) -> Query {
    Query {
        filter: Filter {
            subject_ref: Some(subject_ref(TENANT_KEY, id)),
            ..Filter::default()
        },
        ..Query::default()
    }
}

/// Every event of a subject as an admin reads it (content opened).
fn read_subject(store: &dyn Store, id: &str) -> Vec<Value> {
    let (rows, _) = search(store, LOG, &subject_query(id)).unwrap();
    let mut keyring = Keyring::new(store, LOG, TENANT_KEY);
    rows.iter()
        .map(|r| {
            let mut rec = Record::parse(&r.entry.entry).unwrap();
            keyring.reveal(&mut rec.event).unwrap();
            Value::Object(rec.event)
        })
        .collect()
}

fn export_all(store: &dyn Store, sealed: bool) -> String {
    let mut out = Vec::new();
    let mut keyring = Keyring::new(store, LOG, TENANT_KEY);
    let k = (!sealed).then_some(&mut keyring);
    export(
        store,
        LOG,
        &Query::default(),
        Format::Ndjson,
        &mut out,
        &mut |_| {},
        k,
    )
    .unwrap();
    String::from_utf8(out).unwrap()
}

/// Ingests both subjects, erases Ada, checks everything the erasure promises.
/// Returns the wrapped key bytes of Ada's erased key, for raw-file checks.
pub fn erasure_destroys_one_subjects_content(store: Arc<dyn Store>) -> Vec<u8> {
    let seq = Sequencer::new(store.clone());
    let policy = Policy::default();
    let mut events = events_about(ADA, "loan-a", "ADA-SECRET-7731");
    events.extend(events_about(BOB, "loan-b", "BOB-SECRET-4410"));
    let prepared = prepare_events(store.as_ref(), LOG, events, &policy, TENANT_KEY).unwrap();
    seq.append(LOG, prepared).unwrap();

    let raw = export_all(store.as_ref(), true);
    assert!(
        !raw.contains(ADA) && !raw.contains("ADA-SECRET"),
        "sealed: {raw}"
    );
    assert!(raw.contains("\"encrypted\":{\"alg\":\"A256GCM\""), "{raw}");
    let ada = read_subject(store.as_ref(), ADA);
    assert_eq!(ada.len(), 2);
    assert_eq!(ada[0]["output"]["text"], "ADA-SECRET-7731: approve");
    let ada_ref = subject_ref(TENANT_KEY, ADA);
    let wrapped = store
        .subject_keys(LOG, std::slice::from_ref(&ada_ref))
        .unwrap()[0]
        .wrapped
        .clone();

    let erasure = erase_subject(&seq, LOG, &reader(), &ada_ref, Some("Art. 17 request")).unwrap();
    assert_eq!(erasure.entries, 2);
    assert!(store
        .subject_keys(LOG, std::slice::from_ref(&ada_ref))
        .unwrap()
        .is_empty());

    // Search: Ada's content is erased (and the erasure itself is found by her reference).
    let ada = read_subject(store.as_ref(), ADA);
    assert_eq!(ada.len(), 3, "two events and the audit.erased record");
    assert_eq!(ada[0]["input"], json!({"erased": true}));
    assert_eq!(ada[0]["output"], json!({"erased": true}));
    assert_eq!(ada[1]["review"]["changes"], json!({"erased": true}));
    assert_eq!(ada[1]["review"]["decision"], "modify", "metadata stays");
    assert_eq!(ada[2]["type"], "audit.erased");
    assert_eq!(ada[2]["subject"]["ref"], json!(ada_ref));
    let bob = read_subject(store.as_ref(), BOB);
    assert_eq!(bob[0]["output"]["text"], "BOB-SECRET-4410: approve");
    assert_eq!(
        bob[1]["review"]["changes"],
        json!({"note": "BOB-SECRET-4410"})
    );

    // Timeline and export.
    let mut keyring = Keyring::new(store.as_ref(), LOG, TENANT_KEY);
    let tl = task_timeline(store.as_ref(), LOG, "loan-a", Some(&mut keyring)).unwrap();
    assert_eq!(tl.steps[0].event["output"], json!({"erased": true}));
    let opened = export_all(store.as_ref(), false);
    assert!(!opened.contains("ADA-SECRET"), "{opened}");
    assert!(opened.contains("BOB-SECRET-4410: approve"), "{opened}");
    assert!(opened.contains("{\"erased\":true}"));
    let text = serde_json::to_string(&erasure.receipt).unwrap();
    assert!(!text.contains(ADA));

    let report = verify_log(store.as_ref(), LOG, None, &mut |_| {}).unwrap();
    assert!(report.ok, "verify after erasure: {:?}", report.problems);

    // Erasing again says there is nothing to erase.
    assert!(erase_subject(&seq, LOG, &reader(), &ada_ref, None).is_err());
    // Ada seen again gets a fresh key; the erased content stays erased.
    let prepared = prepare_events(
        store.as_ref(),
        LOG,
        events_about(ADA, "loan-c", "NEW"),
        &policy,
        TENANT_KEY,
    )
    .unwrap();
    seq.append(LOG, prepared).unwrap();
    let ada = read_subject(store.as_ref(), ADA);
    let task = |t: &str| {
        ada.iter()
            .find(|e| e["task_id"] == t && e["type"] == "ai.inference")
    };
    assert_eq!(task("loan-a").unwrap()["output"], json!({"erased": true}));
    assert_eq!(task("loan-c").unwrap()["output"]["text"], "NEW: approve");
    wrapped
}

/// Events that name no subject are about their task's subject: their content is sealed under
/// that subject's key (found in the same request, or among the task's stored events) and is
/// erased with it; a task without a subject stays unsealed.
pub fn events_without_a_subject_are_sealed_with_their_tasks_subject(store: Arc<dyn Store>) {
    let seq = Sequencer::new(store.clone());
    let policy = Policy::default();
    let event = |v: Value| Event::from_value(v, Origin::Client).unwrap();
    let decision = |task: &str, note: &str| {
        event(
            json!({"type": "review.decision", "task_id": task, "occurred_at": "2026-03-01T12:05:00Z",
                     "actor": {"kind": "human", "id": "rev-1"},
                     "review": {"decision": "modify", "changes": {"note": note}}}),
        )
    };
    let append = |events: Vec<Event>| {
        let prepared = prepare_events(store.as_ref(), LOG, events, &policy, TENANT_KEY).unwrap();
        seq.append(LOG, prepared).unwrap();
    };
    // One request: the task names Ada, the model's answer (no subject) comes with it.
    append(vec![
        event(
            json!({"type": "task.created", "task_id": "loan-a", "occurred_at": "2026-03-01T12:00:00Z",
                     "subject": {"kind": "applicant", "id": ADA}}),
        ),
        event(
            json!({"type": "ai.inference", "task_id": "loan-a", "occurred_at": "2026-03-01T12:01:00Z",
                     "model": {"name": "m"}, "output": {"text": "ADA-ANSWER-1"}}),
        ),
    ]);
    // Later requests: a decision alone (the subject is found among stored events), Bob's
    // task in one request, and a task that never names a subject.
    append(vec![decision("loan-a", "ADA-CHANGE-2")]);
    append(vec![
        event(
            json!({"type": "task.created", "task_id": "loan-b", "occurred_at": "2026-03-01T12:00:00Z",
                     "subject": {"kind": "applicant", "id": BOB}}),
        ),
        decision("loan-b", "BOB-CHANGE-3"),
    ]);
    append(vec![decision("loan-z", "NOBODY-CHANGE-4")]);

    let raw = export_all(store.as_ref(), true);
    for secret in ["ADA-ANSWER-1", "ADA-CHANGE-2", "BOB-CHANGE-3"] {
        assert!(!raw.contains(secret), "{secret} is sealed: {raw}");
    }
    assert!(
        raw.contains("NOBODY-CHANGE-4"),
        "no subject, nothing to seal"
    );
    let opened = export_all(store.as_ref(), false);
    for secret in ["ADA-ANSWER-1", "ADA-CHANGE-2", "BOB-CHANGE-3"] {
        assert!(opened.contains(secret), "{secret} opens for an admin");
    }

    let seq = Sequencer::new(store.clone());
    let erasure = erase_subject(&seq, LOG, &reader(), &subject_ref(TENANT_KEY, ADA), None).unwrap();
    assert_eq!(erasure.entries, 3, "the task, its answer and the decision");
    let opened = export_all(store.as_ref(), false);
    assert!(
        !opened.contains("ADA-ANSWER-1") && !opened.contains("ADA-CHANGE-2"),
        "{opened}"
    );
    assert!(opened.contains("BOB-CHANGE-3") && opened.contains("NOBODY-CHANGE-4"));
    let mut keyring = Keyring::new(store.as_ref(), LOG, TENANT_KEY);
    let tl = task_timeline(store.as_ref(), LOG, "loan-a", Some(&mut keyring)).unwrap();
    assert_eq!(tl.steps[1].event["output"], json!({"erased": true}));
    assert_eq!(
        tl.steps[2].event["review"]["changes"],
        json!({"erased": true})
    );
    let report = verify_log(store.as_ref(), LOG, None, &mut |_| {}).unwrap();
    assert!(report.ok, "{:?}", report.problems);
}

mod sqlite {
    use super::*;
    use aitrail_store::sqlite::SqliteStore;

    fn contains(hay: &[u8], needle: &[u8]) -> bool {
        hay.windows(needle.len()).any(|w| w == needle)
    }

    #[test]
    fn erasure_destroys_one_subjects_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("trail.db")).unwrap());
        let wrapped = super::erasure_destroys_one_subjects_content(store.clone());
        // The raw files: neither the erased key's bytes nor any raw id anywhere, WAL included.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let path = entry.unwrap().path();
            let bytes = std::fs::read(&path).unwrap();
            let name = path.display();
            assert!(!contains(&bytes, &wrapped), "erased key bytes in {name}");
            assert!(
                !contains(&bytes, ADA.as_bytes()),
                "raw subject id in {name}"
            );
            assert!(!contains(&bytes, b"ADA-SECRET"), "plaintext in {name}");
            assert!(!contains(&bytes, b"BOB-SECRET"), "plaintext in {name}");
        }
        drop(store);
    }

    #[test]
    fn events_without_a_subject_are_sealed_with_their_tasks_subject() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(SqliteStore::open(&dir.path().join("trail.db")).unwrap());
        super::events_without_a_subject_are_sealed_with_their_tasks_subject(store);
    }
}

mod postgres {
    use super::postgres_support as pg;

    #[test]
    fn erasure_destroys_one_subjects_content() {
        let Some((db, store)) = pg::store() else {
            return;
        };
        let wrapped = super::erasure_destroys_one_subjects_content(store);
        let mut client = pg::raw(&db);
        let left: i64 = client
            .query_one(
                "SELECT count(*) FROM aitrail.subject_keys WHERE wrapped = $1",
                &[&wrapped],
            )
            .unwrap()
            .get(0);
        assert_eq!(left, 0);
    }

    #[test]
    fn events_without_a_subject_are_sealed_with_their_tasks_subject() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::events_without_a_subject_are_sealed_with_their_tasks_subject(store);
    }
}
