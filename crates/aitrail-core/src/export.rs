//! Flat rows for CSV export: one row per event, the columns a spreadsheet user filters on.

use serde_json::{Map, Value};

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
}
