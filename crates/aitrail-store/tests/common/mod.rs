//! Helpers shared by the integration suites of aitrail-store: realistic events of a
//! loan-review pipeline, a checkpoint signer, and small readers of what a store holds.
//!
//! Each suite (`conformance.rs`, `tamper.rs`) includes this with `mod common;` and uses only
//! part of it, hence the `dead_code` allowance.
#![allow(dead_code)]

use aitrail_core::checkpoint::Signer;
use aitrail_core::entry::{PreparedEvent, Receipt};
use aitrail_core::event::{format_time, Event, Origin};
use aitrail_store::sequencer::{Outcome, Sequencer};
use aitrail_store::store::{Store, StoredEntry};
use serde_json::{json, Value};

/// The log every suite writes to unless a test is about several logs.
pub const LOG: &str = "default";

/// The key subject ids are pseudonymised with.
pub const SUBJECT_KEY: &[u8] = b"conformance subject key";

/// Unix microseconds of 2026-03-02T09:00:00Z: when the sample pipeline starts.
const START_MICROS: i64 = 1_772_442_000_000_000;

/// Validates `value` as a client event and prepares it for the sequencer.
pub fn prepare(value: Value) -> PreparedEvent {
    let event = Event::parse(&value.to_string(), Origin::Client)
        .unwrap_or_else(|errors| panic!("test event is invalid: {errors:?}\n{value}"));
    PreparedEvent::new(event, SUBJECT_KEY).expect("test event canonicalizes")
}

/// Step `step` of the review of loan application `task`: created, model inference,
/// review assigned, human decision, resolved, then the cycle repeats. Without `id`, so
/// every call gets a fresh UUIDv7.
pub fn pipeline_event(task: u64, step: u64) -> Value {
    let task_id = format!("loan-{task:05}");
    let at = format_time(START_MICROS + (task as i64) * 600_000_000 + (step as i64) * 7_000_000);
    let reviewer = format!("reviewer-{}", task % 7);
    match step % 5 {
        0 => json!({
            "type": "task.created",
            "task_id": task_id,
            "occurred_at": at,
            "actor": {"kind": "system", "id": "intake-service"},
            "subject": {"kind": "applicant", "id": format!("applicant-{}", 10_000 + task)},
            "attributes": {"product": "personal-loan", "amount_eur": 5_000 + task * 250},
        }),
        1 => json!({
            "type": "ai.inference",
            "task_id": task_id,
            "occurred_at": at,
            "actor": {"kind": "model", "id": "credit-scorer"},
            "model": {"provider": "in-house", "name": "credit-scorer", "version": "2.3.1"},
            "prompt": {"id": "score-application", "version": "7"},
            "input": {"prompt": "Score the application and explain the main factors.",
                      "parameters": {"temperature": 0}},
            "output": {"text": if task.is_multiple_of(3) { "decline: debt ratio 0.61" } else { "approve: stable income" },
                       "confidence": 0.87, "finish_reason": "stop"},
            "trace_id": format!("{:032x}", 0xa17a_0000_0000u64 + task),
        }),
        2 => json!({
            "type": "review.assigned",
            "task_id": task_id,
            "occurred_at": at,
            "actor": {"kind": "system", "id": "review-router"},
            "attributes": {"assignee": reviewer, "queue": "consumer-credit"},
        }),
        3 => json!({
            "type": "review.decision",
            "task_id": task_id,
            "occurred_at": at,
            "actor": {"kind": "human", "id": reviewer, "role": "credit-officer"},
            "review": {"decision": if task.is_multiple_of(4) { "reject" } else { "approve" },
                       "duration_ms": 42_000 + task * 13},
            "rationale": {"code": "R-17", "category": "affordability",
                          "note": "income verified against payslips"},
        }),
        _ => json!({
            "type": "task.resolved",
            "task_id": task_id,
            "occurred_at": at,
            "actor": {"kind": "system", "id": "loan-workflow"},
            "resolution": {"outcome": "closed", "note": "applicant notified"},
        }),
    }
}

/// `pipeline_event` with a fixed id, for idempotency tests.
pub fn with_id(mut value: Value, id: uuid::Uuid) -> Value {
    value["id"] = Value::String(id.to_string());
    value
}

/// `n` prepared events: consecutive steps of consecutive tasks, starting at event `from`.
pub fn events(from: u64, n: u64) -> Vec<PreparedEvent> {
    (from..from + n)
        .map(|i| prepare(pipeline_event(i / 5, i % 5)))
        .collect()
}

/// The checkpoint signer of the test log.
pub fn signer() -> Signer {
    Signer::from_seed("aitrail.test/default", [7; 32]).expect("valid signer name")
}

/// Appends `events` and returns their receipts, all of which must be new.
pub fn append_new(seq: &Sequencer, log: &str, events: Vec<PreparedEvent>) -> Vec<Receipt> {
    seq.append(log, events)
        .expect("append")
        .into_iter()
        .map(|o| match o {
            Outcome::Appended(r) => r,
            Outcome::Duplicate(r) => panic!("event {} was unexpectedly a duplicate", r.id),
        })
        .collect()
}

/// Every stored entry of `log`, in seq order.
pub fn all_entries(store: &dyn Store, log: &str) -> Vec<StoredEntry> {
    let mut out = Vec::new();
    store
        .scan(log, 0, &mut |e| {
            out.push(e);
            Ok(true)
        })
        .expect("scan");
    out
}

/// A fixed clock for checkpoints: the tests do not depend on wall time.
pub fn now_micros() -> i64 {
    START_MICROS + 86_400_000_000
}
