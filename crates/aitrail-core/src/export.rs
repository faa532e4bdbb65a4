//! Flat rows for CSV export: one row per event, the columns a spreadsheet user filters on.

use serde_json::{Map, Value};
use std::borrow::Cow;

/// The CSV header, in column order.
pub const CSV_COLUMNS: &[&str] = &[
    "seq",
    "event_id",
    "occurred_at",
    "recorded_at",
    "type",
    "task_id",
    "actor_kind",
    "actor_id",
    "actor_role",
    "subject_ref",
    "model_provider",
    "model_name",
    "model_version",
    "prompt_id",
    "prompt_version",
    "decision",
    "duration_ms",
    "rationale_code",
    "rationale_category",
    "escalation_to",
    "resolution_outcome",
    "request_id",
    "trace_id",
    "leaf_hash",
];

fn field(event: &Map<String, Value>, path: &str) -> String {
    let mut v: Option<&Value> = None;
    for (i, part) in path.split('.').enumerate() {
        v = if i == 0 {
            event.get(part)
        } else {
            v.and_then(|x| x.get(part))
        };
    }
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    }
}

/// The row of one stored record, in `CSV_COLUMNS` order.
pub fn csv_row(
    seq: u64,
    recorded_at: &str,
    leaf_hash_hex: &str,
    event: &Map<String, Value>,
) -> Vec<String> {
    let f = |p: &str| field(event, p);
    vec![
        seq.to_string(),
        f("id"),
        f("occurred_at"),
        recorded_at.to_owned(),
        f("type"),
        f("task_id"),
        f("actor.kind"),
        f("actor.id"),
        f("actor.role"),
        f("subject.ref"),
        f("model.provider"),
        f("model.name"),
        f("model.version"),
        f("prompt.id"),
        f("prompt.version"),
        f("review.decision"),
        f("review.duration_ms"),
        f("rationale.code"),
        f("rationale.category"),
        f("escalation.to"),
        f("resolution.outcome"),
        f("request_id"),
        f("trace_id"),
        leaf_hash_hex.to_owned(),
    ]
}

/// The part of a stored record the CSV columns need, borrowed from the entry bytes; every
/// other field (content above all) is skipped by the parser without being built.
#[derive(serde::Deserialize)]
struct Flat<'a> {
    seq: u64,
    #[serde(borrow)]
    recorded_at: Cow<'a, str>,
    #[serde(borrow)]
    event: FlatEvent<'a>,
}

type Text<'a> = Option<Cow<'a, str>>;

#[derive(serde::Deserialize)]
struct FlatEvent<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    occurred_at: Text<'a>,
    #[serde(borrow, rename = "type")]
    event_type: Text<'a>,
    #[serde(borrow)]
    task_id: Text<'a>,
    #[serde(borrow)]
    actor: Option<FlatActor<'a>>,
    #[serde(borrow)]
    subject: Option<FlatSubject<'a>>,
    #[serde(borrow)]
    model: Option<FlatModel<'a>>,
    #[serde(borrow)]
    prompt: Option<FlatPrompt<'a>>,
    #[serde(borrow)]
    review: Option<FlatReview<'a>>,
    #[serde(borrow)]
    rationale: Option<FlatRationale<'a>>,
    #[serde(borrow)]
    escalation: Option<FlatEscalation<'a>>,
    #[serde(borrow)]
    resolution: Option<FlatResolution<'a>>,
    #[serde(borrow)]
    request_id: Text<'a>,
    #[serde(borrow)]
    trace_id: Text<'a>,
}

#[derive(serde::Deserialize)]
struct FlatActor<'a> {
    #[serde(borrow)]
    kind: Text<'a>,
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    role: Text<'a>,
}

#[derive(serde::Deserialize)]
struct FlatSubject<'a> {
    #[serde(borrow, rename = "ref")]
    reference: Text<'a>,
}

#[derive(serde::Deserialize)]
struct FlatModel<'a> {
    #[serde(borrow)]
    provider: Text<'a>,
    #[serde(borrow)]
    name: Text<'a>,
    #[serde(borrow)]
    version: Text<'a>,
}

#[derive(serde::Deserialize)]
struct FlatPrompt<'a> {
    #[serde(borrow)]
    id: Text<'a>,
    #[serde(borrow)]
    version: Text<'a>,
}

#[derive(serde::Deserialize)]
struct FlatReview<'a> {
    #[serde(borrow)]
    decision: Text<'a>,
    duration_ms: Option<serde_json::Number>,
}

#[derive(serde::Deserialize)]
struct FlatRationale<'a> {
    #[serde(borrow)]
    code: Text<'a>,
    #[serde(borrow)]
    category: Text<'a>,
}

#[derive(serde::Deserialize)]
struct FlatEscalation<'a> {
    #[serde(borrow)]
    to: Text<'a>,
}

#[derive(serde::Deserialize)]
struct FlatResolution<'a> {
    #[serde(borrow)]
    outcome: Text<'a>,
}

/// The CSV row of stored entry bytes, in `CSV_COLUMNS` order, borrowing from `entry` where it
/// can: the export's fast path. `None` when a column holds a type validation never lets in
/// (a number for an id, say: an entry edited in the database); `csv_row` over the whole
/// parsed record then gives the row, so the file still says what is stored.
pub fn csv_row_of_entry<'a>(entry: &'a [u8], leaf_hash_hex: &str) -> Option<Vec<Cow<'a, str>>> {
    let r: Flat<'a> = serde_json::from_slice(entry).ok()?;
    let e = r.event;
    let t = |v: Text<'a>| v.unwrap_or(Cow::Borrowed(""));
    let (actor_kind, actor_id, actor_role) = e
        .actor
        .map_or((None, None, None), |a| (a.kind, a.id, a.role));
    let (provider, model_name, model_version) = e
        .model
        .map_or((None, None, None), |m| (m.provider, m.name, m.version));
    let (prompt_id, prompt_version) = e.prompt.map_or((None, None), |p| (p.id, p.version));
    let (decision, duration) = e
        .review
        .map_or((None, None), |r| (r.decision, r.duration_ms));
    let (code, category) = e.rationale.map_or((None, None), |r| (r.code, r.category));
    Some(vec![
        Cow::Owned(r.seq.to_string()),
        t(e.id),
        t(e.occurred_at),
        r.recorded_at,
        t(e.event_type),
        t(e.task_id),
        t(actor_kind),
        t(actor_id),
        t(actor_role),
        t(e.subject.and_then(|s| s.reference)),
        t(provider),
        t(model_name),
        t(model_version),
        t(prompt_id),
        t(prompt_version),
        t(decision),
        duration.map_or(Cow::Borrowed(""), |d| Cow::Owned(d.to_string())),
        t(code),
        t(category),
        t(e.escalation.and_then(|x| x.to)),
        t(e.resolution.and_then(|x| x.outcome)),
        t(e.request_id),
        t(e.trace_id),
        Cow::Owned(leaf_hash_hex.to_owned()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn row_follows_the_header() {
        let ev = json!({"id": "e1", "type": "review.decision", "actor": {"id": "ana"}, "review": {"decision": "reject", "duration_ms": 5}});
        let row = csv_row(
            3,
            "2026-01-01T00:00:00.000000Z",
            "ab",
            ev.as_object().unwrap(),
        );
        assert_eq!(row.len(), CSV_COLUMNS.len());
        let at = |c: &str| row[CSV_COLUMNS.iter().position(|x| *x == c).unwrap()].as_str();
        assert_eq!(
            (
                at("seq"),
                at("actor_id"),
                at("decision"),
                at("duration_ms"),
                at("model_name")
            ),
            ("3", "ana", "reject", "5", "")
        );
    }

    #[test]
    fn the_fast_row_is_the_row_of_the_parsed_record() {
        let records = [
            json!({"seq": 7, "log": "default", "recorded_at": "2026-01-01T00:00:00.000001Z",
                   "event": {"id": "e1", "type": "review.decision", "task_id": "t\"1",
                             "occurred_at": "2026-01-01T00:00:00Z",
                             "actor": {"kind": "human", "id": "ana", "role": "officer"},
                             "subject": {"kind": "applicant", "ref": "ab12"},
                             "model": {"provider": "p", "name": "m", "version": "1.2"},
                             "prompt": {"id": "pr", "version": "v3"},
                             "review": {"decision": "modify", "duration_ms": 5000, "changes": {"x": [1, 2]}},
                             "rationale": {"code": "R-1", "category": "c", "note": "n\u{e9}"},
                             "escalation": {"to": "risk"}, "resolution": {"outcome": "ok"},
                             "input": {"prompt": "long text"}, "request_id": "r", "trace_id": "tr"}}),
            json!({"seq": 0, "log": "default", "recorded_at": "2026-01-01T00:00:00.000001Z",
                   "event": {"id": "e2", "type": "task.created", "task_id": "t2",
                             "occurred_at": "2026-01-01T00:00:00Z", "attributes": {"a": null}}}),
        ];
        for record in records {
            let bytes = serde_json::to_vec(&record).unwrap();
            let fast = csv_row_of_entry(&bytes, "ff").expect("a well-typed record");
            let event = record["event"].as_object().unwrap();
            let slow = csv_row(
                record["seq"].as_u64().unwrap(),
                record["recorded_at"].as_str().unwrap(),
                "ff",
                event,
            );
            assert_eq!(fast, slow);
        }
        // A number where an id belongs: no fast row; the caller falls back to `csv_row`.
        let odd = br#"{"seq":1,"log":"l","recorded_at":"x","event":{"id":5}}"#;
        assert!(csv_row_of_entry(odd, "ff").is_none());
    }
}
