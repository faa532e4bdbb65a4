//! The SQL views for direct database users (`task_timeline`, `reviewer_decisions`,
//! `model_overrides`): the same rows, columns and values on SQLite and PostgreSQL, read with
//! each database's own client as an analyst would.
//!
//! Where a new test belongs: a new view gets a scenario in `check_views`, which both backends
//! run; SQL that only one backend has goes beside its own test below.

mod common;
#[path = "postgres_support/mod.rs"]
mod pg;

use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::SqliteStore;
use aitrail_store::store::Store;
use common::{append_new, events, prepare, LOG};
use serde_json::{json, Value};
use std::sync::Arc;

/// A task that goes through everything the views flatten: a model answer, a human modify
/// with changes, an escalation and its resolution.
fn case_events() -> Vec<Value> {
    vec![
        json!({"type": "ai.inference", "task_id": "case-1", "occurred_at": "2026-03-03T10:00:00Z",
               "actor": {"kind": "model", "id": "credit-scorer"},
               "model": {"name": "credit-scorer", "version": "3.0.0"},
               "prompt": {"id": "score", "version": "9"},
               "output": {"text": "approve 12000"}}),
        json!({"type": "review.decision", "task_id": "case-1", "occurred_at": "2026-03-03T10:05:00Z",
               "actor": {"kind": "human", "id": "alice", "role": "credit-officer"},
               "review": {"decision": "modify", "changes": {"amount_eur": 8000}, "duration_ms": 95000},
               "rationale": {"code": "R-22", "category": "affordability"}}),
        json!({"type": "task.escalated", "task_id": "case-1", "occurred_at": "2026-03-03T10:06:00Z",
               "actor": {"kind": "human", "id": "alice"},
               "escalation": {"from": "alice", "to": "risk-committee", "reason": "above limit"}}),
        json!({"type": "task.resolved", "task_id": "case-1", "occurred_at": "2026-03-03T11:00:00Z",
               "actor": {"kind": "human", "id": "bob"},
               "resolution": {"outcome": "approved-reduced"}}),
    ]
}

/// Fills `store` with 50 pipeline events (10 tasks, two of them rejected) and the case.
fn fill(store: Arc<dyn Store>) {
    let seq = Sequencer::new(store);
    append_new(&seq, LOG, events(0, 50));
    append_new(&seq, LOG, case_events().into_iter().map(prepare).collect());
    append_new(
        &seq,
        LOG,
        model_change_events().into_iter().map(prepare).collect(),
    );
}

/// Rows of `sql` with every column as text (None for NULL).
type Rows = Vec<Vec<Option<String>>>;

/// The checks both backends pass. `query(view, columns, where)` selects from the view.
fn check_views(query: &mut dyn FnMut(&str, &[&str], &str) -> Rows) {
    let s = |v: &str| Some(v.to_owned());
    let timeline = query(
        "task_timeline",
        &[
            "type",
            "actor_kind",
            "decision",
            "rationale_code",
            "duration_ms",
            "escalated_to",
            "resolution",
            "model_version",
        ],
        "task_id = 'case-1' ORDER BY occurred_at, seq",
    );
    assert_eq!(
        timeline,
        vec![
            vec![
                s("ai.inference"),
                s("model"),
                None,
                None,
                None,
                None,
                None,
                s("3.0.0")
            ],
            vec![
                s("review.decision"),
                s("human"),
                s("modify"),
                s("R-22"),
                s("95000"),
                None,
                None,
                None
            ],
            vec![
                s("task.escalated"),
                s("human"),
                None,
                None,
                None,
                s("risk-committee"),
                None,
                None
            ],
            vec![
                s("task.resolved"),
                s("human"),
                None,
                None,
                None,
                None,
                s("approved-reduced"),
                None
            ],
        ]
    );
    let times = query(
        "task_timeline",
        &["occurred_at"],
        "task_id = 'case-1' ORDER BY seq",
    );
    assert!(
        times[0][0].as_deref().unwrap().starts_with("2026-03-03"),
        "{times:?}"
    );

    // Every review.decision, with the model it reviewed taken from the task's inference.
    let decisions = query("reviewer_decisions", &["count(*)"], "task_id <> 'case-2'");
    assert_eq!(
        decisions,
        vec![vec![s("11")]],
        "10 pipeline reviews and the case"
    );
    let rejected = query(
        "reviewer_decisions",
        &[
            "task_id",
            "reviewer_id",
            "model_name",
            "model_version",
            "prompt_version",
        ],
        "decision = 'reject' AND task_id <> 'case-2' ORDER BY task_id",
    );
    assert_eq!(
        rejected,
        vec![
            vec![
                s("loan-00000"),
                s("reviewer-0"),
                s("credit-scorer"),
                s("2.3.1"),
                s("7")
            ],
            vec![
                s("loan-00004"),
                s("reviewer-4"),
                s("credit-scorer"),
                s("2.3.1"),
                s("7")
            ],
            vec![
                s("loan-00008"),
                s("reviewer-1"),
                s("credit-scorer"),
                s("2.3.1"),
                s("7")
            ],
        ]
    );

    // Overrides: reject and modify only, with the reviewer's changes.
    let overrides = query(
        "model_overrides",
        &[
            "task_id",
            "decision",
            "model_version",
            "prompt_version",
            "changes",
        ],
        "task_id <> 'case-2' ORDER BY task_id",
    );
    assert_eq!(overrides.len(), 4, "{overrides:?}");
    let case = &overrides[0];
    assert_eq!(&case[..4], &[s("case-1"), s("modify"), s("3.0.0"), s("9")]);
    let changes: Value = serde_json::from_str(case[4].as_deref().unwrap()).unwrap();
    assert_eq!(changes, json!({"amount_eur": 8000}));
    assert!(overrides[1..]
        .iter()
        .all(|r| r[1] == s("reject") && r[4].is_none()));
}

/// A task whose model changes mid-way, and a decision that names its own model: the view
/// and the product statistics attribute every decision to the same model and prompt.
fn model_change_events() -> Vec<Value> {
    let at = |m: u32| format!("2026-03-04T10:{m:02}:00Z");
    let inference = |m, version: &str, prompt: &str| {
        json!({"type": "ai.inference", "task_id": "case-2", "occurred_at": at(m),
               "model": {"name": "scorer", "version": version},
               "prompt": {"id": "p", "version": prompt}, "output": {"text": "ok"}})
    };
    let decision = |m, decision: &str| {
        json!({"type": "review.decision", "task_id": "case-2", "occurred_at": at(m),
               "actor": {"kind": "human", "id": "carol"}, "review": {"decision": decision}})
    };
    let mut own = decision(20, "modify");
    own["model"] = json!({"name": "scorer", "version": "3.0"});
    vec![
        inference(0, "1.0", "p1"),
        decision(5, "approve"),
        inference(10, "2.0", "p2"),
        decision(15, "reject"),
        own,
    ]
}

/// The (model, prompt) of each case-2 decision, by the view and by `review_stats`.
fn check_attribution(store: &dyn Store, view: &mut dyn FnMut(&str, &[&str], &str) -> Rows) {
    use aitrail_store::stats::{review_stats, By};
    let s = |v: &str| Some(v.to_owned());
    let rows = view(
        "reviewer_decisions",
        &["decision", "model_name", "model_version", "prompt_version"],
        "task_id = 'case-2' ORDER BY occurred_at",
    );
    assert_eq!(
        rows,
        vec![
            vec![s("approve"), s("scorer"), s("1.0"), s("p1")],
            vec![s("reject"), s("scorer"), s("2.0"), s("p2")],
            vec![s("modify"), s("scorer"), s("3.0"), s("p2")],
        ]
    );
    // 2026-03-04T10:00Z .. 11:00Z holds only case-2's decisions.
    let from = 1_772_618_400_000_000;
    let (stats, _) = review_stats(store, LOG, from, from + 3_600_000_000, By::Both).unwrap();
    let groups: Vec<(String, String, u64)> = stats
        .groups
        .iter()
        .map(|(v, g)| (v.model.clone(), v.prompt.clone(), g.decisions))
        .collect();
    let expected: Vec<(String, String, u64)> = rows
        .iter()
        .map(|r| {
            let name = r[1].clone().unwrap();
            let version = r[2].clone().unwrap();
            (format!("{name} {version}"), r[3].clone().unwrap(), 1)
        })
        .collect();
    assert_eq!(groups, expected);
}

#[test]
fn views_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("trail.db");
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    fill(store.clone());
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mut query = |view: &str, cols: &[&str], filter: &str| -> Rows {
        let cols: Vec<String> = cols.iter().map(|c| format!("CAST({c} AS TEXT)")).collect();
        let sql = format!("SELECT {} FROM {view} WHERE {filter}", cols.join(", "));
        let mut stmt = conn.prepare(&sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        let n = stmt.column_count();
        stmt.query_map([], |r| {
            (0..n)
                .map(|i| r.get::<_, Option<String>>(i))
                .collect::<rusqlite::Result<Vec<_>>>()
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    };
    check_views(&mut query);
    check_attribution(store.as_ref(), &mut query);
}

#[test]
fn views_on_postgres() {
    let Some((db, store)) = pg::store() else {
        return;
    };
    fill(store.clone());
    let mut client = pg::raw(&db);
    let mut query = |view: &str, cols: &[&str], filter: &str| -> Rows {
        let cols: Vec<String> = cols.iter().map(|c| format!("({c})::text")).collect();
        let sql = format!(
            "SELECT {} FROM aitrail.{view} WHERE {filter}",
            cols.join(", ")
        );
        client
            .query(&sql, &[])
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|r| {
                (0..r.len())
                    .map(|i| r.get::<_, Option<String>>(i))
                    .collect()
            })
            .collect()
    };
    check_views(&mut query);
    check_attribution(store.as_ref(), &mut query);
}
