//! The conformance suite of the `Store` trait (STYLE.md habit 5): one function per scenario,
//! each taking a fresh, empty store as `Arc<dyn Store>` and driving it the way aitrail does
//! (through `Sequencer`, `log` and `verify`), so every backend is held to the same contract.
//!
//! Where a new test belongs:
//! - a behaviour every backend must have: a `pub fn scenario(store: Arc<dyn Store>)` in the
//!   scenarios section, plus a `#[test]` of the same name in every backend module;
//! - something only one backend has (SQLite's two processes on one file): that backend's module;
//! - tampering with stored rows and what `verify` says about it: `tamper.rs`.
//!
//! A new backend (PostgreSQL) is done when a `mod postgres` with a `fresh()` store and one test
//! per scenario passes, mapping `Forbidden` to its own raw SQL.

mod common;
#[path = "postgres_support/mod.rs"]
mod postgres_support;

use aitrail_core::entry::{PreparedEvent, Receipt, Record};
use aitrail_core::merkle::{
    inclusion_proof, leaf_hash, verify_consistency, verify_inclusion, Hash, MemoryTree, NodeSource,
};
use aitrail_store::log;
use aitrail_store::nodes::STRIDE;
use aitrail_store::retention;
use aitrail_store::sequencer::{Outcome, Sequencer};
use aitrail_store::store::{AppendTx, Head, Node, NodeRows, Store, StoredCheckpoint, StoredEntry};
use aitrail_store::verify::verify_log;
use aitrail_store::{Result, StoreError};
use common::{
    all_entries, append_new, events, now_micros, pipeline_event, prepare, signer, with_id, LOG,
};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

/// Seqs start at 0 and follow request order with no gap; one request shares one timestamp.
pub fn append_assigns_gapless_seqs(store: Arc<dyn Store>) {
    let seq = Sequencer::new(store.clone());
    let mut receipts = Vec::new();
    for (i, n) in [1u64, 3, 5, 2, 8].into_iter().enumerate() {
        let batch = append_new(&seq, LOG, events(receipts.len() as u64, n));
        assert_eq!(batch.len() as u64, n, "request {i}: one receipt per event");
        let stamps: HashSet<_> = batch.iter().map(|r| &r.recorded_at).collect();
        assert_eq!(
            stamps.len(),
            1,
            "request {i}: one group commit, one recorded_at"
        );
        receipts.extend(batch);
    }
    let seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
    assert_eq!(seqs, (0..19).collect::<Vec<_>>());
    assert!(
        receipts
            .windows(2)
            .all(|w| w[0].recorded_at <= w[1].recorded_at),
        "recorded_at never goes back"
    );
    assert_eq!(store.head(LOG).unwrap().size, 19);
    assert!(seq.append(LOG, Vec::new()).unwrap().is_empty());
    assert_eq!(
        store.head(LOG).unwrap().size,
        19,
        "an empty request writes nothing"
    );
    // Events the caller shares: the sequencer has let go of them by the time it replies, so
    // they are freed by the caller, never on the sequencer's thread.
    let shared = Arc::new(events(19, 3));
    let outcomes = seq.append_shared(LOG, Arc::clone(&shared)).unwrap();
    assert_eq!(outcomes.len(), 3);
    assert_eq!(outcomes[0].receipt().seq, 19);
    assert_eq!(
        Arc::strong_count(&shared),
        1,
        "the sequencer keeps no reference to a request it answered"
    );
}

/// A repeated id with the same content is answered with the original receipt, writing nothing,
/// alone, beside new events, and repeated inside one request.
pub fn duplicate_id_same_content_returns_original_receipt(store: Arc<dyn Store>) {
    let seq = Sequencer::new(store.clone());
    let id = uuid::Uuid::now_v7();
    let decision = with_id(pipeline_event(12, 3), id);
    let original = append_new(&seq, LOG, vec![prepare(decision.clone())]).remove(0);
    append_new(&seq, LOG, events(100, 2));
    let head = store.head(LOG).unwrap();

    let again = seq.append(LOG, vec![prepare(decision.clone())]).unwrap();
    assert_eq!(again, vec![Outcome::Duplicate(original.clone())]);
    assert_eq!(store.head(LOG).unwrap(), head, "a duplicate writes nothing");

    let fresh = prepare(pipeline_event(13, 0));
    let mixed = seq
        .append(LOG, vec![fresh, prepare(decision.clone())])
        .unwrap();
    assert!(matches!(&mixed[0], Outcome::Appended(r) if r.seq == head.size));
    assert_eq!(mixed[1], Outcome::Duplicate(original.clone()));
    assert_eq!(store.head(LOG).unwrap().size, head.size + 1);

    let twice_id = uuid::Uuid::now_v7();
    let twice = prepare(with_id(pipeline_event(14, 1), twice_id));
    let out = seq.append(LOG, vec![twice.clone(), twice]).unwrap();
    let Outcome::Appended(first) = &out[0] else {
        panic!("the first copy is new: {out:?}")
    };
    assert_eq!(out[1], Outcome::Duplicate(first.clone()));
    assert_eq!(store.head(LOG).unwrap().size, head.size + 2);

    // A new sequencer (another process, or a restart) finds the original in the store.
    drop(seq);
    let restarted = Sequencer::new(store.clone());
    let out = restarted.append(LOG, vec![prepare(decision)]).unwrap();
    assert_eq!(out, vec![Outcome::Duplicate(original)]);
    assert_eq!(store.head(LOG).unwrap().size, head.size + 2);
    assert!(
        verify_log(store.as_ref(), LOG, None, &mut |_| {})
            .unwrap()
            .ok
    );
}

/// The same id with other content is a conflict naming the index; the whole request is
/// refused and nothing of it written; requests committed in the same group are unaffected.
pub fn duplicate_id_other_content_is_conflict_and_writes_nothing(store: Arc<dyn Store>) {
    let gated = Arc::new(Instrumented::new(store.clone()));
    let seq = Arc::new(Sequencer::new(gated.clone()));
    let id = uuid::Uuid::now_v7();
    let decision = with_id(pipeline_event(5, 3), id);
    let mut edited = decision.clone();
    edited["rationale"]["note"] = "income not verified".into();
    append_new(&seq, LOG, vec![prepare(decision.clone())]);
    let head = store.head(LOG).unwrap();

    // Against a stored event: the request is refused, its other events are not written.
    let bystander = prepare(pipeline_event(5, 0));
    let err = seq
        .append(LOG, vec![bystander.clone(), prepare(edited.clone())])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { index: 1, id: got } if got == id),
        "{err}"
    );
    assert_eq!(
        store.head(LOG).unwrap(),
        head,
        "nothing of the request is written"
    );
    assert!(store
        .entry_by_id(LOG, &bystander.id.to_string())
        .unwrap()
        .is_none());

    // Inside one request: two events with one id and different content.
    let inner_id = uuid::Uuid::now_v7();
    let a = prepare(with_id(pipeline_event(6, 1), inner_id));
    let b = prepare(with_id(pipeline_event(6, 2), inner_id));
    let err = seq
        .append(LOG, vec![prepare(pipeline_event(6, 0)), a, b])
        .unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { index: 2, id: got } if got == inner_id),
        "{err}"
    );
    assert_eq!(store.head(LOG).unwrap(), head);

    // Concurrent requests, held back so that they meet in one group commit: the conflicting
    // ones fail alone. (Should the timing split them over groups, every assertion still holds.)
    let shared_id = uuid::Uuid::now_v7();
    let shared = with_id(pipeline_event(7, 1), shared_id);
    let mut shared_other = shared.clone();
    shared_other["output"]["confidence"] = 0.12.into();
    let requests: Vec<(&str, Vec<PreparedEvent>)> = vec![
        ("valid", events(200, 3)),
        (
            "conflicts with stored",
            vec![prepare(pipeline_event(8, 0)), prepare(edited)],
        ),
        ("claims the shared id", vec![prepare(shared.clone())]),
        ("valid", events(210, 2)),
        (
            "conflicts with the shared id",
            vec![prepare(pipeline_event(8, 1)), prepare(shared_other)],
        ),
        ("repeats the shared id", vec![prepare(shared)]),
        ("repeats the stored event", vec![prepare(decision)]),
    ];
    let closed = gated.close();
    let mut handles = Vec::new();
    for (what, events) in requests {
        let seq = seq.clone();
        let ids: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
        handles.push((
            what,
            ids,
            std::thread::spawn(move || seq.append(LOG, events)),
        ));
        // Keep request order, so "claims" commits before "conflicts with" and "repeats".
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(200));
    drop(closed);
    let mut shared_receipt: Option<Receipt> = None;
    for (what, ids, handle) in handles {
        let result = handle.join().unwrap();
        match what {
            "valid" => assert!(
                result
                    .unwrap()
                    .iter()
                    .all(|o| matches!(o, Outcome::Appended(_))),
                "{what}"
            ),
            "claims the shared id" => {
                let out = result.unwrap();
                assert!(matches!(out[0], Outcome::Appended(_)), "{what}: {out:?}");
                shared_receipt = Some(out[0].receipt().clone());
            }
            "repeats the shared id" => {
                let claimed = shared_receipt.clone().expect("claimed before");
                assert_eq!(result.unwrap(), vec![Outcome::Duplicate(claimed)]);
            }
            "repeats the stored event" => {
                assert!(matches!(result.unwrap()[0], Outcome::Duplicate(ref r) if r.seq == 0));
            }
            _ => {
                assert!(
                    matches!(result, Err(StoreError::Conflict { index: 1, .. })),
                    "{what}: {result:?}"
                );
                // Its first event is new; the request was refused, so it is not stored.
                let bystander = store.entry_by_id(LOG, &ids[0]).unwrap();
                assert!(bystander.is_none(), "{what}: {} was written", ids[0]);
            }
        }
    }
    assert_eq!(store.head(LOG).unwrap().size, head.size + 6);
    assert_gapless(store.as_ref(), LOG);
}

/// Requests large enough for the sequencer to build entries on a helper thread while it
/// inserts the first ones behave like small ones: a stored id met late in the request (after
/// parts of it were inserted) gets its original receipt, an id repeated inside the request is
/// written once, and an id stored with other content refuses the whole request.
pub fn large_requests_dedupe_like_small_ones(store: Arc<dyn Store>) {
    let seq = Sequencer::new(store.clone());
    let early = events(0, 5);
    let originals = append_new(&seq, LOG, early.clone());

    let mut big = events(5, 3000);
    big.insert(2900, early[2].clone());
    big.insert(2000, big[100].clone());
    let out = seq.append(LOG, big).unwrap();
    assert_eq!(out.len(), 3002);
    assert_eq!(out[2000], Outcome::Duplicate(out[100].receipt().clone()));
    assert_eq!(out[2901], Outcome::Duplicate(originals[2].clone()));
    let appended: Vec<u64> = out
        .iter()
        .filter_map(|o| match o {
            Outcome::Appended(r) => Some(r.seq),
            Outcome::Duplicate(_) => None,
        })
        .collect();
    assert_eq!(appended, (5..3005).collect::<Vec<_>>());
    let head = store.head(LOG).unwrap();
    assert_eq!(head.size, 3005);

    let mut conflicting = events(4000, 2000);
    let mut edited = with_id(pipeline_event(0, 3), originals[3].id);
    edited["rationale"]["note"] = "income not verified".into();
    conflicting.insert(1500, prepare(edited));
    let err = seq.append(LOG, conflicting).unwrap_err();
    assert!(
        matches!(err, StoreError::Conflict { index: 1500, id } if id == originals[3].id),
        "{err}"
    );
    assert_eq!(
        store.head(LOG).unwrap(),
        head,
        "nothing of the request is written"
    );
    assert_gapless(store.as_ref(), LOG);
    assert!(
        verify_log(store.as_ref(), LOG, None, &mut |_| {})
            .unwrap()
            .ok
    );
}

/// Every entry of a large request is stored with its own event's columns. The sequencer
/// fills the entries of chunks already written again for later ones, and this request's
/// events take turns having an actor, a model or a decision, so a column left over from an
/// earlier event would show up in a search by it.
pub fn large_requests_store_each_events_own_columns(store: Arc<dyn Store>) {
    use aitrail_store::query::{Filter, Query};
    let seq = Sequencer::new(store.clone());
    let batch = events(0, 6000);
    let receipts = append_new(&seq, LOG, batch.clone());
    let stored = all_entries(store.as_ref(), LOG);
    assert_eq!(stored.len(), batch.len());
    let search = |filter: Filter| -> Vec<(u64, i64)> {
        let mut rows = Vec::new();
        let q = Query {
            filter,
            ..Query::default()
        };
        store
            .query(LOG, &q, &mut |row| {
                rows.push((row.entry.seq, row.occurred_at));
                Ok(true)
            })
            .unwrap();
        rows.sort_unstable();
        rows
    };
    for ((entry, receipt), event) in stored.iter().zip(&receipts).zip(&batch) {
        assert_eq!(entry.event_id, event.id.to_string());
        let record = Record::parse(&entry.entry).unwrap();
        assert_eq!(record.seq, receipt.seq);
        let bytes = aitrail_core::canonical::to_canonical(&record.event.into()).unwrap();
        assert_eq!(bytes, event.canonical, "seq {}", receipt.seq);
    }
    let expect = |keep: &dyn Fn(&PreparedEvent) -> bool| -> Vec<(u64, i64)> {
        batch
            .iter()
            .zip(&receipts)
            .filter(|(e, _)| keep(e))
            .map(|(e, r)| (r.seq, e.occurred_at))
            .collect()
    };
    assert_eq!(search(Filter::default()), expect(&|_| true), "occurred_at");
    // The filters that search the index columns, and those columns of an event.
    fn filtered(f: &mut Filter) -> [&mut Option<String>; 6] {
        [
            &mut f.actor_id,
            &mut f.model_name,
            &mut f.model_version,
            &mut f.prompt_version,
            &mut f.decision,
            &mut f.subject_ref,
        ]
    }
    fn columns(e: &PreparedEvent) -> [&Option<String>; 6] {
        let i = &e.index;
        [
            &i.actor_id,
            &i.model_name,
            &i.model_version,
            &i.prompt_version,
            &i.decision,
            &i.subject_ref,
        ]
    }
    let mut searches = Vec::new();
    for e in batch.iter().step_by(97) {
        searches.push(Filter {
            task_id: Some(e.task_id.clone()),
            ..Filter::default()
        });
        searches.push(Filter {
            types: vec![e.event_type.clone()],
            ..Filter::default()
        });
        for (column, value) in columns(e).into_iter().enumerate() {
            if value.is_some() {
                let mut f = Filter::default();
                *filtered(&mut f)[column] = value.clone();
                searches.push(f);
            }
        }
    }
    let mut unique: Vec<Filter> = Vec::new();
    for f in searches {
        if !unique.contains(&f) {
            unique.push(f);
        }
    }
    for f in unique {
        let want: Vec<Option<String>> = filtered(&mut f.clone()).map(|v| v.clone()).into();
        let wanted = expect(&|e| {
            f.task_id.as_ref().is_none_or(|t| *t == e.task_id)
                && (f.types.is_empty() || f.types.contains(&e.event_type))
                && want
                    .iter()
                    .zip(columns(e))
                    .all(|(want, have)| want.is_none() || want == have)
        });
        assert!(!wanted.is_empty());
        assert_eq!(search(f.clone()), wanted, "{f:?}");
    }
}

/// A search by recorded time returns exactly the entries recorded in the range, in seq order,
/// whatever the bounds (before, inside, between and after the requests), a page at a time.
pub fn search_by_recorded_time_is_exact(store: Arc<dyn Store>) {
    use aitrail_store::query::{Filter, Query, TimeField};
    let seq = Sequencer::new(store.clone());
    for r in 0..4 {
        append_new(&seq, LOG, events(r * 7, 7));
        std::thread::sleep(Duration::from_millis(3));
    }
    let all = all_entries(store.as_ref(), LOG);
    let mut times: Vec<i64> = all.iter().map(|e| e.recorded_at).collect();
    times.dedup();
    assert_eq!(times.len(), 4, "one recorded_at per request");
    let mut bounds = vec![None, Some(times[0] - 1), Some(times[3] + 1)];
    for t in &times {
        bounds.extend([Some(*t), Some(t + 1)]);
    }
    for from in &bounds {
        for to in &bounds {
            let expected: Vec<u64> = all
                .iter()
                .filter(|e| from.is_none_or(|f| e.recorded_at >= f))
                .filter(|e| to.is_none_or(|t| e.recorded_at < t))
                .map(|e| e.seq)
                .collect();
            let mut got = Vec::new();
            let mut cursor = None;
            loop {
                let q = Query {
                    filter: Filter {
                        from: *from,
                        to: *to,
                        time: TimeField::Recorded,
                        ..Filter::default()
                    },
                    limit: Some(5),
                    after: cursor,
                    ..Query::default()
                };
                let mut page = Vec::new();
                store
                    .query(LOG, &q, &mut |row| {
                        page.push(row);
                        Ok(true)
                    })
                    .unwrap();
                got.extend(page.iter().map(|r| r.entry.seq));
                match page.last() {
                    Some(last) if page.len() == 5 => {
                        cursor = Some(last.cursor(TimeField::Recorded))
                    }
                    _ => break,
                }
            }
            assert_eq!(got, expected, "recorded in [{from:?}, {to:?})");
        }
    }
}

/// Head, single entries, entries by id, scans and the list of logs read back what was
/// appended; logs are independent.
pub fn head_and_entries_read_back(store: Arc<dyn Store>) {
    assert_eq!(store.head(LOG).unwrap(), Head::default());
    assert!(store.logs().unwrap().is_empty());
    assert!(store.entry(LOG, 0).unwrap().is_none());
    assert!(store
        .entry_by_id(LOG, "0190f1f0-0000-7000-8000-000000000000")
        .unwrap()
        .is_none());

    let seq = Sequencer::new(store.clone());
    let batch = events(0, 12);
    let canonical: Vec<Vec<u8>> = batch.iter().map(|e| e.canonical.clone()).collect();
    let receipts = append_new(&seq, LOG, batch);
    let other = append_new(&seq, "tenant-b", events(500, 3));
    assert_eq!(other[0].seq, 0, "every log has its own seqs");
    assert_eq!(
        store.logs().unwrap(),
        vec!["default".to_owned(), "tenant-b".to_owned()]
    );

    let entries = all_entries(store.as_ref(), LOG);
    assert_eq!(entries.len(), 12);
    for ((entry, receipt), canonical) in entries.iter().zip(&receipts).zip(&canonical) {
        assert_eq!(entry.seq, receipt.seq);
        assert_eq!(entry.event_id, receipt.id.to_string());
        assert_eq!(entry.leaf(), receipt.leaf_hash);
        assert_eq!(leaf_hash(&entry.entry), receipt.leaf_hash);
        let record = Record::parse(&entry.entry).unwrap();
        assert_eq!((record.seq, record.log.as_str()), (receipt.seq, LOG));
        assert_eq!(record.recorded_at, receipt.recorded_at);
        let event = aitrail_core::canonical::to_canonical(&record.event.into()).unwrap();
        assert_eq!(&event, canonical, "the stored event is the canonical event");
        assert_eq!(store.entry(LOG, entry.seq).unwrap().as_ref(), Some(entry));
        assert_eq!(
            store.entry_by_id(LOG, &entry.event_id).unwrap().as_ref(),
            Some(entry)
        );
        assert!(store
            .entry_by_id("tenant-b", &entry.event_id)
            .unwrap()
            .is_none());
    }
    let head = store.head(LOG).unwrap();
    let last = entries.last().unwrap();
    assert_eq!(head.size, 12);
    assert_eq!(&head.chain_hash[..], &last.chain_hash[..]);
    assert_eq!(head.recorded_at, last.recorded_at);
    assert!(store.entry(LOG, 12).unwrap().is_none());
    assert!(store.entry("no-such-log", 0).unwrap().is_none());
    assert_eq!(store.head("no-such-log").unwrap(), Head::default());

    let mut from_five = Vec::new();
    store
        .scan(LOG, 5, &mut |e| {
            from_five.push(e.seq);
            Ok(from_five.len() < 4)
        })
        .unwrap();
    assert_eq!(
        from_five,
        vec![5, 6, 7, 8],
        "scan starts at `from` and stops on false"
    );
    assert_eq!(all_entries(store.as_ref(), "tenant-b").len(), 3);
    assert!(all_entries(store.as_ref(), "no-such-log").is_empty());
}

/// What a backend must refuse under the `Store` trait, each mapped to raw SQL by the backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forbidden {
    UpdateEntry,
    DeleteEntry,
    UpdateNode,
    DeleteNode,
    UpdateCheckpoint,
    DeleteCheckpoint,
    UpdateLog,
    DeleteLog,
}

impl Forbidden {
    pub const ALL: [Forbidden; 8] = [
        Forbidden::UpdateEntry,
        Forbidden::DeleteEntry,
        Forbidden::UpdateNode,
        Forbidden::DeleteNode,
        Forbidden::UpdateCheckpoint,
        Forbidden::DeleteCheckpoint,
        Forbidden::UpdateLog,
        Forbidden::DeleteLog,
    ];
}

/// Changing or deleting stored rows directly (`attempt` runs the backend's raw SQL) fails,
/// and the log still reads and verifies as before.
pub fn update_and_delete_are_refused(
    store: Arc<dyn Store>,
    attempt: &dyn Fn(Forbidden) -> std::result::Result<(), String>,
) {
    let seq = Sequencer::new(store.clone());
    // Past 2^STRIDE entries, so there are stored nodes to attack.
    append_new(&seq, LOG, events(0, (1 << STRIDE) + 20));
    log::checkpoint(store.as_ref(), LOG, &signer(), now_micros()).unwrap();
    let before = all_entries(store.as_ref(), LOG);
    let nodes = store.nodes(LOG).unwrap();
    assert!(!nodes.is_empty());
    for what in Forbidden::ALL {
        assert!(attempt(what).is_err(), "{what:?} was allowed");
    }
    assert_eq!(all_entries(store.as_ref(), LOG), before);
    assert_eq!(store.nodes(LOG).unwrap(), nodes);
    assert_eq!(store.checkpoints(LOG).unwrap().len(), 1);
    let report = verify_log(store.as_ref(), LOG, Some(&signer().verifier()), &mut |_| {}).unwrap();
    assert!(report.ok, "{:?}", report.problems);
}

/// A signed checkpoint covers the tree; every covered entry has a proof that verifies offline
/// with the verifier key, and no proof is given for entries no checkpoint covers yet.
pub fn checkpoint_sign_and_prove(store: Arc<dyn Store>) {
    let signer = signer();
    let verifier = signer.verifier();
    assert!(matches!(
        log::checkpoint(store.as_ref(), LOG, &signer, now_micros()),
        Err(StoreError::NotFound(_))
    ));
    let seq = Sequencer::new(store.clone());
    let receipts = append_new(&seq, LOG, events(0, 37));
    let (first, new) = log::checkpoint(store.as_ref(), LOG, &signer, now_micros()).unwrap();
    assert!(new);
    assert_eq!((first.number, first.size), (1, 37));
    assert_eq!(first.root, log::root_at(store.as_ref(), LOG, 37).unwrap());
    let (same, new) = log::checkpoint(store.as_ref(), LOG, &signer, now_micros() + 1).unwrap();
    assert!(!new, "no new checkpoint while the latest covers the tree");
    assert_eq!(same, first);

    let later = append_new(&seq, LOG, events(37, 5));
    assert_eq!(
        log::prove(store.as_ref(), LOG, &later[0].id.to_string()).unwrap(),
        None
    );
    for receipt in &receipts {
        let proof = log::prove(store.as_ref(), LOG, &receipt.id.to_string())
            .unwrap()
            .expect("covered by checkpoint 1");
        assert_eq!((proof.seq, proof.tree_size), (receipt.seq, 37));
        assert_eq!(proof.leaf_hash, receipt.leaf_hash);
        assert_eq!(proof.checkpoint, first.note);
        let verified = proof.verify(&verifier).unwrap();
        assert_eq!(verified.record.event["id"], receipt.id.to_string());
        assert_eq!(verified.checkpoint.size, 37);
    }

    let (second, new) = log::checkpoint(store.as_ref(), LOG, &signer, now_micros() + 2).unwrap();
    assert!(new);
    assert_eq!((second.number, second.size), (2, 42));
    assert_eq!(
        store.checkpoints(LOG).unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(store.latest_checkpoint(LOG).unwrap(), Some(second.clone()));
    let proof = log::prove(store.as_ref(), LOG, &later[4].id.to_string())
        .unwrap()
        .expect("covered by checkpoint 2");
    assert_eq!(proof.tree_size, 42);
    proof.verify(&verifier).unwrap();
    let consistency = log::consistency_path(store.as_ref(), LOG, 37, 42).unwrap();
    verify_consistency(37, 42, &first.root, &second.root, &consistency).unwrap();

    // A proof is bound to its entry, its path and the key.
    let mut forged = proof.clone();
    forged.entry = log::prove(store.as_ref(), LOG, &later[3].id.to_string())
        .unwrap()
        .unwrap()
        .entry;
    assert!(forged.verify(&verifier).is_err());
    let mut forged = proof.clone();
    forged.audit_path[0][0] ^= 1;
    assert!(forged.verify(&verifier).is_err());
    let stranger = aitrail_core::checkpoint::Signer::from_seed("aitrail.test/default", [8; 32])
        .unwrap()
        .verifier();
    assert!(proof.verify(&stranger).is_err());
    assert!(matches!(
        log::prove(store.as_ref(), LOG, "0190f1f0-0000-7000-8000-000000000000"),
        Err(StoreError::NotFound(_))
    ));
}

/// Roots, inclusion and consistency proofs read through the stored nodes equal those of an
/// in-memory tree of every node, for every size up to 600 (crossing 2^STRIDE twice), with the
/// log written in uneven batches by restarted sequencers (so the frontier is rebuilt from
/// stored nodes at odd sizes).
pub fn proofs_match_naive_tree_for_many_sizes(store: Arc<dyn Store>) {
    let batches = [1u64, 1, 2, 3, 7, 8, 17, 31, 64, 120, 256, 90];
    let total: u64 = batches.iter().sum();
    assert_eq!(total, 600);
    let mut receipts: Vec<Receipt> = Vec::new();
    for (i, n) in batches.into_iter().enumerate() {
        let seq = Sequencer::new(store.clone());
        receipts.extend(append_new(&seq, LOG, events(receipts.len() as u64, n)));
        if i % 3 == 0 {
            seq.shutdown();
        }
    }
    let mut tree = MemoryTree::new();
    let mut roots = vec![tree.root()];
    for r in &receipts {
        tree.push(r.leaf_hash);
        roots.push(tree.root());
    }

    // The stored nodes are exactly the tree's nodes at levels STRIDE, 2 * STRIDE, ...
    let mut expected_nodes = Vec::new();
    for level in (STRIDE..64).step_by(STRIDE as usize) {
        for index in 0..(total >> level) {
            let hash = tree.node(level, index).unwrap();
            expected_nodes.push(Node { level, index, hash });
        }
    }
    let mut stored_nodes = store.nodes(LOG).unwrap();
    stored_nodes.sort_by_key(|n| (n.level, n.index));
    assert_eq!(stored_nodes, expected_nodes);

    for size in 0..=total {
        let root = log::root_at(store.as_ref(), LOG, size).unwrap();
        assert_eq!(root, roots[size as usize], "root at size {size}");
    }
    let sizes = [
        1u64, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 100, 127, 128, 129, 255, 256, 257, 300,
        383, 384, 385, 511, 512, 513, 599, 600,
    ];
    for &size in &sizes {
        let step = if size <= 40 { 1 } else { (size / 23).max(1) };
        let seqs = (0..size).step_by(step as usize).chain([size - 1, size / 2]);
        for s in seqs {
            let path = log::inclusion_path(store.as_ref(), LOG, s, size).unwrap();
            let leaf = receipts[s as usize].leaf_hash;
            verify_inclusion(s, size, &leaf, &path, &roots[size as usize])
                .unwrap_or_else(|e| panic!("inclusion of {s} in {size}: {e}"));
            assert_eq!(
                path,
                inclusion_proof(&mut tree, s, size).unwrap(),
                "path {s} in {size}"
            );
        }
        for &from in sizes.iter().filter(|&&from| from <= size) {
            let path = log::consistency_path(store.as_ref(), LOG, from, size).unwrap();
            verify_consistency(
                from,
                size,
                &roots[from as usize],
                &roots[size as usize],
                &path,
            )
            .unwrap_or_else(|e| panic!("consistency {from} -> {size}: {e}"));
        }
    }
    assert!(log::inclusion_path(store.as_ref(), LOG, 600, 600).is_err());
    assert!(
        log::root_at(store.as_ref(), LOG, 601).is_err(),
        "no root past the head"
    );
}

/// A log written only through the sequencer, with checkpoints, verifies: signed or not, one
/// log or several, and an empty log.
pub fn verify_passes_on_untouched_log(store: Arc<dyn Store>) {
    let signer = signer();
    let verifier = signer.verifier();
    let empty = verify_log(store.as_ref(), LOG, Some(&verifier), &mut |_| {}).unwrap();
    assert!(empty.ok && empty.entries == 0, "{empty:?}");

    let seq = Sequencer::new(store.clone());
    for (i, n) in [40u64, 216, 1, 43].into_iter().enumerate() {
        append_new(&seq, LOG, events(i as u64 * 1000, n));
        log::checkpoint(store.as_ref(), LOG, &signer, now_micros() + i as i64).unwrap();
    }
    append_new(&seq, LOG, events(9000, 7)); // past the last checkpoint
    append_new(&seq, "tenant-b", events(500, 9));
    let mut progress = Vec::new();
    let report = verify_log(store.as_ref(), LOG, Some(&verifier), &mut |n| {
        progress.push(n)
    })
    .unwrap();
    assert!(report.ok, "{:?}", report.problems);
    assert_eq!((report.entries, report.checkpoints), (307, 4));
    assert_eq!(
        report.root,
        hex::encode(log::root_at(store.as_ref(), LOG, 307).unwrap())
    );
    assert_eq!(progress.last(), Some(&307));
    let bytes: usize = all_entries(store.as_ref(), LOG)
        .iter()
        .map(|e| e.entry.len())
        .sum();
    assert_eq!(report.bytes, bytes as u64);

    let unsigned = verify_log(store.as_ref(), LOG, None, &mut |_| {}).unwrap();
    assert!(unsigned.ok, "{:?}", unsigned.problems);
    let other = verify_log(store.as_ref(), "tenant-b", Some(&verifier), &mut |_| {}).unwrap();
    assert!(
        other.ok && other.entries == 9 && other.checkpoints == 0,
        "{other:?}"
    );
}

/// Many threads appending through one sequencer: seqs exactly 0..n, each receipt unique,
/// every request contiguous, the chain verifies, and group commit took fewer transactions
/// than there were requests.
pub fn concurrent_writers_no_gaps_no_duplicates(store: Arc<dyn Store>) {
    const THREADS: u64 = 16;
    const REQUESTS: u64 = 50;
    let counted = Arc::new(Instrumented::new(store.clone()));
    let seq = Arc::new(Sequencer::new(counted.clone()));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let seq = seq.clone();
            std::thread::spawn(move || {
                (0..REQUESTS)
                    .map(|r| {
                        let n = (t * 7 + r) % 5 + 1;
                        let first = (t * REQUESTS + r) * 10;
                        let receipts = append_new(&seq, LOG, events(first, n));
                        assert_eq!(receipts.len() as u64, n);
                        receipts
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let requests: Vec<Vec<Receipt>> = handles
        .into_iter()
        .flat_map(|h| h.join().expect("writer thread"))
        .collect();
    for receipts in &requests {
        let seqs: Vec<u64> = receipts.iter().map(|r| r.seq).collect();
        let start = seqs[0];
        assert_eq!(
            seqs,
            (start..start + seqs.len() as u64).collect::<Vec<_>>(),
            "a request is never split"
        );
    }
    let mut all: Vec<&Receipt> = requests.iter().flatten().collect();
    let n = all.len() as u64;
    all.sort_by_key(|r| r.seq);
    assert_eq!(
        all.iter().map(|r| r.seq).collect::<Vec<_>>(),
        (0..n).collect::<Vec<_>>()
    );
    assert_eq!(
        all.iter().map(|r| r.id).collect::<HashSet<_>>().len() as u64,
        n
    );

    let entries = all_entries(store.as_ref(), LOG);
    assert_eq!(entries.len() as u64, n);
    for (entry, receipt) in entries.iter().zip(&all) {
        assert_eq!(
            (entry.seq, entry.event_id.as_str()),
            (receipt.seq, receipt.id.to_string().as_str())
        );
        assert_eq!(entry.leaf(), receipt.leaf_hash);
    }
    let report = verify_log(store.as_ref(), LOG, None, &mut |_| {}).unwrap();
    assert!(report.ok && report.entries == n, "{report:?}");

    let transactions = counted.appends();
    let total_requests = (THREADS * REQUESTS) as usize;
    assert!(
        transactions < total_requests,
        "group commit should batch: {transactions} transactions for {total_requests} requests"
    );
}

// ---------------------------------------------------------------------------------------------
// Shared checks and test doubles
// ---------------------------------------------------------------------------------------------

/// Seqs of `log` are exactly 0..size and the chain and tree verify.
pub fn assert_gapless(store: &dyn Store, log: &str) {
    let entries = all_entries(store, log);
    let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
    assert_eq!(seqs, (0..entries.len() as u64).collect::<Vec<_>>());
    assert_eq!(store.head(log).unwrap().size, entries.len() as u64);
    let ids: HashSet<&str> = entries.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids.len(), entries.len(), "every event id once");
    let report = verify_log(store, log, None, &mut |_| {}).unwrap();
    assert!(report.ok, "{:?}", report.problems);
}

/// A store that counts write transactions (to see group commit at work) and can hold them
/// back (to make requests meet in one group commit).
pub struct Instrumented {
    inner: Arc<dyn Store>,
    appends: AtomicUsize,
    gate: RwLock<()>,
}

impl Instrumented {
    pub fn new(inner: Arc<dyn Store>) -> Instrumented {
        Instrumented {
            inner,
            appends: AtomicUsize::new(0),
            gate: RwLock::new(()),
        }
    }

    /// Write transactions begun so far.
    pub fn appends(&self) -> usize {
        self.appends.load(Ordering::SeqCst)
    }

    /// Holds every `append` until the guard is dropped.
    pub fn close(&self) -> std::sync::RwLockWriteGuard<'_, ()> {
        self.gate.write().unwrap()
    }
}

impl Store for Instrumented {
    fn append(&self, log: &str, f: &mut dyn FnMut(&mut dyn AppendTx) -> Result<()>) -> Result<()> {
        let _open = self.gate.read().unwrap();
        self.appends.fetch_add(1, Ordering::SeqCst);
        self.inner.append(log, f)
    }
    fn head(&self, log: &str) -> Result<Head> {
        self.inner.head(log)
    }
    fn logs(&self) -> Result<Vec<String>> {
        self.inner.logs()
    }
    fn entry(&self, log: &str, seq: u64) -> Result<Option<StoredEntry>> {
        self.inner.entry(log, seq)
    }
    fn entry_by_id(&self, log: &str, event_id: &str) -> Result<Option<StoredEntry>> {
        self.inner.entry_by_id(log, event_id)
    }
    fn scan(
        &self,
        log: &str,
        from: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<bool>,
    ) -> Result<()> {
        self.inner.scan(log, from, f)
    }
    fn read_nodes(
        &self,
        log: &str,
        f: &mut dyn FnMut(&mut dyn NodeRows) -> Result<()>,
    ) -> Result<()> {
        self.inner.read_nodes(log, f)
    }
    fn nodes(&self, log: &str) -> Result<Vec<Node>> {
        self.inner.nodes(log)
    }
    fn query(
        &self,
        log: &str,
        query: &aitrail_store::query::Query,
        f: &mut dyn FnMut(aitrail_store::query::QueryRow) -> Result<bool>,
    ) -> Result<()> {
        self.inner.query(log, query, f)
    }
    fn add_checkpoint(
        &self,
        log: &str,
        size: u64,
        root: &Hash,
        note: &str,
        created_at: i64,
    ) -> Result<StoredCheckpoint> {
        self.inner.add_checkpoint(log, size, root, note, created_at)
    }
    fn checkpoints(&self, log: &str) -> Result<Vec<StoredCheckpoint>> {
        self.inner.checkpoints(log)
    }
    fn latest_checkpoint(&self, log: &str) -> Result<Option<StoredCheckpoint>> {
        self.inner.latest_checkpoint(log)
    }
    fn segments(&self, log: &str) -> Result<Vec<retention::Segment>> {
        self.inner.segments(log)
    }
    fn retire(&self, log: &str, s: &retention::Segment, rows: &[retention::Retired]) -> Result<()> {
        self.inner.retire(log, s, rows)
    }
    fn retired(&self, log: &str, from: u64, to: u64) -> Result<Vec<retention::Retired>> {
        self.inner.retired(log, from, to)
    }
    fn retired_event(&self, log: &str, id: &str) -> Result<Option<retention::Retired>> {
        self.inner.retired_event(log, id)
    }
    fn expiries(&self, log: &str) -> Result<Vec<retention::Expiry>> {
        self.inner.expiries(log)
    }
    fn add_expiry(&self, log: &str, e: &retention::Expiry) -> Result<()> {
        self.inner.add_expiry(log, e)
    }
    fn holds(&self, log: &str) -> Result<Vec<retention::Hold>> {
        self.inner.holds(log)
    }
    fn add_hold(&self, log: &str, h: &retention::Hold) -> Result<()> {
        self.inner.add_hold(log, h)
    }
    fn release_hold(&self, log: &str, r: &retention::Release) -> Result<()> {
        self.inner.release_hold(log, r)
    }
    fn retention_lock(&self, waiting: &mut dyn FnMut()) -> Result<Box<dyn Send>> {
        self.inner.retention_lock(waiting)
    }
    fn subject_keys(
        &self,
        log: &str,
        refs: &[String],
    ) -> Result<Vec<aitrail_store::keys::StoredKey>> {
        self.inner.subject_keys(log, refs)
    }
    fn add_subject_keys(&self, log: &str, keys: &[aitrail_store::keys::StoredKey]) -> Result<()> {
        self.inner.add_subject_keys(log, keys)
    }
    fn erase_subject_key(
        &self,
        log: &str,
        subject_ref: &str,
    ) -> Result<aitrail_store::keys::Shredded> {
        self.inner.erase_subject_key(log, subject_ref)
    }
}

// ---------------------------------------------------------------------------------------------
// Backends
// ---------------------------------------------------------------------------------------------

/// The embedded SQLite backend: a fresh file in a temporary directory per test.
mod sqlite {
    use super::*;
    use aitrail_store::sqlite::SqliteStore;
    use tempfile::TempDir;

    fn fresh() -> (TempDir, Arc<SqliteStore>) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(&dir.path().join("trail.db")).unwrap();
        (dir, Arc::new(store))
    }

    /// SQLite's raw statement for each forbidden change, run on a connection of its own.
    fn forbidden_sql(what: Forbidden) -> &'static str {
        match what {
            Forbidden::UpdateEntry => "UPDATE entries SET decision = 'approve' WHERE seq = 3",
            Forbidden::DeleteEntry => "DELETE FROM entries WHERE seq = 3",
            Forbidden::UpdateNode => "UPDATE nodes SET hash = zeroblob(32)",
            Forbidden::DeleteNode => "DELETE FROM nodes",
            Forbidden::UpdateCheckpoint => "UPDATE checkpoints SET size = size + 1",
            Forbidden::DeleteCheckpoint => "DELETE FROM checkpoints",
            Forbidden::UpdateLog => "UPDATE logs SET name = 'renamed'",
            Forbidden::DeleteLog => "DELETE FROM logs",
        }
    }

    #[test]
    fn append_assigns_gapless_seqs() {
        let (_dir, store) = fresh();
        super::append_assigns_gapless_seqs(store);
    }

    #[test]
    fn duplicate_id_same_content_returns_original_receipt() {
        let (_dir, store) = fresh();
        super::duplicate_id_same_content_returns_original_receipt(store);
    }

    #[test]
    fn duplicate_id_other_content_is_conflict_and_writes_nothing() {
        let (_dir, store) = fresh();
        super::duplicate_id_other_content_is_conflict_and_writes_nothing(store);
    }

    #[test]
    fn large_requests_dedupe_like_small_ones() {
        let (_dir, store) = fresh();
        super::large_requests_dedupe_like_small_ones(store);
    }

    #[test]
    fn large_requests_store_each_events_own_columns() {
        let (_dir, store) = fresh();
        super::large_requests_store_each_events_own_columns(store);
    }

    #[test]
    fn head_and_entries_read_back() {
        let (_dir, store) = fresh();
        super::head_and_entries_read_back(store);
    }

    #[test]
    fn search_by_recorded_time_is_exact() {
        let (_dir, store) = fresh();
        super::search_by_recorded_time_is_exact(store);
    }

    #[test]
    fn update_and_delete_are_refused() {
        let (dir, store) = fresh();
        let raw = rusqlite::Connection::open(dir.path().join("trail.db")).unwrap();
        super::update_and_delete_are_refused(store, &|what| {
            let err = raw
                .execute(forbidden_sql(what), [])
                .map(drop)
                .map_err(|e| e.to_string());
            if let Err(msg) = &err {
                assert!(msg.contains("aitrail is append-only"), "{what:?}: {msg}");
            }
            err
        });
    }

    #[test]
    fn checkpoint_sign_and_prove() {
        let (_dir, store) = fresh();
        super::checkpoint_sign_and_prove(store);
    }

    #[test]
    fn proofs_match_naive_tree_for_many_sizes() {
        let (_dir, store) = fresh();
        super::proofs_match_naive_tree_for_many_sizes(store);
    }

    #[test]
    fn verify_passes_on_untouched_log() {
        let (_dir, store) = fresh();
        super::verify_passes_on_untouched_log(store);
    }

    #[test]
    fn concurrent_writers_no_gaps_no_duplicates() {
        let (_dir, store) = fresh();
        super::concurrent_writers_no_gaps_no_duplicates(store);
    }

    /// Two stores on one file stand for two processes, each with its own sequencer (and its
    /// own cached frontier). Their IMMEDIATE transactions serialise, and each re-reads the
    /// head inside its transaction: no fork, no gap, no repeated seq.
    #[test]
    fn two_processes_on_one_file_do_not_fork() {
        let (dir, first) = fresh();
        let second = Arc::new(SqliteStore::open(&dir.path().join("trail.db")).unwrap());
        let processes = [
            Arc::new(Sequencer::new(first.clone())),
            Arc::new(Sequencer::new(second.clone())),
        ];
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let seq = processes[(t % 2) as usize].clone();
                std::thread::spawn(move || {
                    (0..30u64)
                        .flat_map(|r| {
                            let n = (t + r) % 3 + 1;
                            append_new(&seq, LOG, events((t * 100 + r) * 10, n))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut receipts: Vec<Receipt> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        receipts.sort_by_key(|r| r.seq);
        let n = receipts.len() as u64;
        assert_eq!(
            receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>()
        );
        for store in [&first, &second] {
            assert_eq!(store.head(LOG).unwrap().size, n);
            assert_gapless(store.as_ref(), LOG);
        }
        let entries = all_entries(first.as_ref(), LOG);
        for (entry, receipt) in entries.iter().zip(&receipts) {
            assert_eq!(entry.event_id, receipt.id.to_string());
            assert_eq!(entry.leaf(), receipt.leaf_hash);
        }
        // The stored nodes agree with the tree of the merged log.
        let mut tree = MemoryTree::new();
        receipts.iter().for_each(|r| tree.push(r.leaf_hash));
        assert_eq!(log::root_at(first.as_ref(), LOG, n).unwrap(), tree.root());
        for node in first.nodes(LOG).unwrap() {
            assert_eq!(
                Some(node.hash),
                tree.node(node.level, node.index).ok(),
                "{node:?}"
            );
        }
        drop(processes);
        // A third process opening the file later sees the same log.
        let reopened = SqliteStore::open(&dir.path().join("trail.db")).unwrap();
        assert_eq!(reopened.head(LOG).unwrap(), first.head(LOG).unwrap());
    }
}

/// The PostgreSQL backend: a fresh database per test on the server of `AITRAIL_TEST_POSTGRES`,
/// dropped afterwards; without a server each test says so and passes, except under CI=true.
mod postgres {
    use super::postgres_support as pg;
    use super::*;
    use aitrail_store::postgres::PgStore;

    /// PostgreSQL's raw statement for each forbidden change, run as the tables' owner (a
    /// superuser in tests).
    fn forbidden_sql(what: Forbidden) -> &'static str {
        match what {
            Forbidden::UpdateEntry => {
                "UPDATE aitrail.entries SET decision = 'approve' WHERE seq = 3"
            }
            Forbidden::DeleteEntry => "DELETE FROM aitrail.entries WHERE seq = 3",
            Forbidden::UpdateNode => {
                "UPDATE aitrail.nodes SET hash = decode(repeat('00', 32), 'hex')"
            }
            Forbidden::DeleteNode => "DELETE FROM aitrail.nodes",
            Forbidden::UpdateCheckpoint => "UPDATE aitrail.checkpoints SET size = size + 1",
            Forbidden::DeleteCheckpoint => "DELETE FROM aitrail.checkpoints",
            Forbidden::UpdateLog => "UPDATE aitrail.logs SET name = 'renamed'",
            Forbidden::DeleteLog => "DELETE FROM aitrail.logs",
        }
    }

    #[test]
    fn append_assigns_gapless_seqs() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::append_assigns_gapless_seqs(store);
    }

    #[test]
    fn duplicate_id_same_content_returns_original_receipt() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::duplicate_id_same_content_returns_original_receipt(store);
    }

    #[test]
    fn duplicate_id_other_content_is_conflict_and_writes_nothing() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::duplicate_id_other_content_is_conflict_and_writes_nothing(store);
    }

    #[test]
    fn large_requests_dedupe_like_small_ones() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::large_requests_dedupe_like_small_ones(store);
    }

    #[test]
    fn large_requests_store_each_events_own_columns() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::large_requests_store_each_events_own_columns(store);
    }

    #[test]
    fn head_and_entries_read_back() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::head_and_entries_read_back(store);
    }

    #[test]
    fn search_by_recorded_time_is_exact() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::search_by_recorded_time_is_exact(store);
    }

    #[test]
    fn update_and_delete_are_refused() {
        let Some((db, store)) = pg::store() else {
            return;
        };
        let raw = std::sync::Mutex::new(pg::raw(&db));
        super::update_and_delete_are_refused(store, &|what| {
            let err = raw
                .lock()
                .unwrap()
                .batch_execute(forbidden_sql(what))
                .map_err(|e| aitrail_store::postgres::describe(&e));
            if let Err(msg) = &err {
                assert!(msg.contains("aitrail is append-only"), "{what:?}: {msg}");
            }
            err
        });
    }

    #[test]
    fn checkpoint_sign_and_prove() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::checkpoint_sign_and_prove(store);
    }

    #[test]
    fn proofs_match_naive_tree_for_many_sizes() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::proofs_match_naive_tree_for_many_sizes(store);
    }

    #[test]
    fn verify_passes_on_untouched_log() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::verify_passes_on_untouched_log(store);
    }

    #[test]
    fn concurrent_writers_no_gaps_no_duplicates() {
        let Some((_db, store)) = pg::store() else {
            return;
        };
        super::concurrent_writers_no_gaps_no_duplicates(store);
    }

    /// Two stores on one database stand for two processes, each with its own connections,
    /// sequencer and cached frontier. The advisory lock serialises their transactions and
    /// each re-reads the head inside its own: no fork, no gap, no repeated seq. (Two real
    /// processes: `aitrail/tests/postgres_cli.rs`.)
    #[test]
    fn two_processes_on_one_database_do_not_fork() {
        let Some((db, first)) = pg::store() else {
            return;
        };
        let second = Arc::new(PgStore::open(&db.url()).unwrap());
        let processes = [
            Arc::new(Sequencer::new(first.clone())),
            Arc::new(Sequencer::new(second.clone())),
        ];
        let handles: Vec<_> = (0..8u64)
            .map(|t| {
                let seq = processes[(t % 2) as usize].clone();
                std::thread::spawn(move || {
                    (0..30u64)
                        .flat_map(|r| {
                            let n = (t + r) % 3 + 1;
                            append_new(&seq, LOG, events((t * 100 + r) * 10, n))
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut receipts: Vec<Receipt> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        receipts.sort_by_key(|r| r.seq);
        let n = receipts.len() as u64;
        assert_eq!(
            receipts.iter().map(|r| r.seq).collect::<Vec<_>>(),
            (0..n).collect::<Vec<_>>()
        );
        for store in [&first, &second] {
            assert_eq!(store.head(LOG).unwrap().size, n);
            assert_gapless(store.as_ref(), LOG);
        }
        let entries = all_entries(first.as_ref(), LOG);
        for (entry, receipt) in entries.iter().zip(&receipts) {
            assert_eq!(entry.event_id, receipt.id.to_string());
            assert_eq!(entry.leaf(), receipt.leaf_hash);
        }
        let mut tree = MemoryTree::new();
        receipts.iter().for_each(|r| tree.push(r.leaf_hash));
        assert_eq!(log::root_at(first.as_ref(), LOG, n).unwrap(), tree.root());
        for node in first.nodes(LOG).unwrap() {
            assert_eq!(
                Some(node.hash),
                tree.node(node.level, node.index).ok(),
                "{node:?}"
            );
        }
        drop(processes);
        let reopened = PgStore::open(&db.url()).unwrap();
        assert_eq!(reopened.head(LOG).unwrap(), first.head(LOG).unwrap());
    }
}
