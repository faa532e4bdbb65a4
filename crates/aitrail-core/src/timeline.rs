//! A task's timeline: its events in the order they occurred, and what a case reviewer wants
//! derived from them: time from model output to first review, who decided what, overrides
//! of the model with their changes, the escalation path, the resolution, human time spent.

use serde::Serialize;
use serde_json::{Map, Value};

/// One event of the timeline.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Step {
    pub seq: u64,
    pub occurred_at: String,
    pub event: Map<String, Value>,
}

/// A reviewer's decision.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Decision {
    pub seq: u64,
    pub at: String,
    pub actor: Option<String>,
    pub role: Option<String>,
    pub decision: String,
    pub duration_ms: Option<u64>,
    pub rationale_code: Option<String>,
    pub rationale_note: Option<String>,
    /// What the reviewer changed (for reject and modify).
    pub changes: Option<Value>,
    /// Reject or modify: the reviewer overrode the model.
    pub overrides_model: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Escalation {
    pub seq: u64,
    pub at: String,
    pub from: Option<String>,
    pub to: Option<String>,
    pub reason: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Resolution {
    pub seq: u64,
    pub at: String,
    pub outcome: Option<String>,
    pub note: Option<String>,
}

/// What the timeline shows at a glance.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Summary {
    pub events: usize,
    pub models: Vec<String>,
    pub prompt_versions: Vec<String>,
    pub model_output_at: Option<String>,
    pub first_review_at: Option<String>,
    /// Milliseconds from the first model output to the first review decision.
    pub time_to_first_review_ms: Option<i64>,
    pub decisions: Vec<Decision>,
    pub overrides: usize,
    pub escalations: Vec<Escalation>,
    pub resolution: Option<Resolution>,
    /// Sum of `review.duration_ms` over all decisions.
    pub human_time_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Timeline {
    pub task_id: String,
    pub summary: Summary,
    pub steps: Vec<Step>,
}

fn text(v: &Map<String, Value>, obj: &str, key: &str) -> Option<String> {
    v.get(obj)?.get(key)?.as_str().map(str::to_owned)
}

/// Builds the timeline from `(seq, occurred_at micros, event)`, in any order.
pub fn build(task_id: &str, mut events: Vec<(u64, i64, Map<String, Value>)>) -> Timeline {
    events.sort_by_key(|(seq, at, _)| (*at, *seq));
    let mut s = Summary {
        events: events.len(),
        ..Summary::default()
    };
    let mut model_at: Option<i64> = None;
    let mut first_review: Option<i64> = None;
    let mut steps = Vec::with_capacity(events.len());
    for (seq, at_micros, ev) in events {
        let at = ev
            .get("occurred_at")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let kind = ev.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Some(name) = text(&ev, "model", "name") {
            let label = match text(&ev, "model", "version") {
                Some(v) => format!("{name} {v}"),
                None => name,
            };
            if !s.models.contains(&label) {
                s.models.push(label);
            }
        }
        if let Some(p) = text(&ev, "prompt", "version") {
            if !s.prompt_versions.contains(&p) {
                s.prompt_versions.push(p);
            }
        }
        match kind {
            "ai.inference" if model_at.is_none() => {
                model_at = Some(at_micros);
                s.model_output_at = Some(at.clone());
            }
            "review.decision" => {
                let decision = text(&ev, "review", "decision").unwrap_or_default();
                let duration = ev
                    .get("review")
                    .and_then(|r| r.get("duration_ms"))
                    .and_then(Value::as_u64);
                s.human_time_ms += duration.unwrap_or(0);
                if first_review.is_none() {
                    first_review = Some(at_micros);
                    s.first_review_at = Some(at.clone());
                }
                let overrides_model = decision == "reject" || decision == "modify";
                s.overrides += usize::from(overrides_model);
                s.decisions.push(Decision {
                    seq,
                    at: at.clone(),
                    actor: text(&ev, "actor", "id"),
                    role: text(&ev, "actor", "role"),
                    decision,
                    duration_ms: duration,
                    rationale_code: text(&ev, "rationale", "code"),
                    rationale_note: text(&ev, "rationale", "note"),
                    changes: ev.get("review").and_then(|r| r.get("changes")).cloned(),
                    overrides_model,
                });
            }
            "task.escalated" => s.escalations.push(Escalation {
                seq,
                at: at.clone(),
                from: text(&ev, "escalation", "from"),
                to: text(&ev, "escalation", "to"),
                reason: text(&ev, "escalation", "reason"),
            }),
            "task.resolved" => {
                s.resolution = Some(Resolution {
                    seq,
                    at: at.clone(),
                    outcome: text(&ev, "resolution", "outcome"),
                    note: text(&ev, "resolution", "note"),
                })
            }
            _ => {}
        }
        steps.push(Step {
            seq,
            occurred_at: at,
            event: ev,
        });
    }
    if let (Some(m), Some(r)) = (model_at, first_review) {
        s.time_to_first_review_ms = Some((r - m) / 1000);
    }
    Timeline {
        task_id: task_id.to_owned(),
        summary: s,
        steps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn derives_what_a_case_reviewer_wants() {
        let t = crate::event::parse_time;
        let events = vec![
            (
                4,
                t("2026-03-01T12:30:00Z").unwrap(),
                ev(
                    json!({"type": "task.resolved", "occurred_at": "2026-03-01T12:30:00Z", "resolution": {"outcome": "approved"}}),
                ),
            ),
            (
                0,
                t("2026-03-01T12:00:00Z").unwrap(),
                ev(
                    json!({"type": "ai.inference", "occurred_at": "2026-03-01T12:00:00Z", "model": {"name": "m", "version": "2"}, "prompt": {"version": "v5"}}),
                ),
            ),
            (
                1,
                t("2026-03-01T12:05:00Z").unwrap(),
                ev(
                    json!({"type": "review.decision", "occurred_at": "2026-03-01T12:05:00Z", "actor": {"id": "ana"},
                "review": {"decision": "escalate", "duration_ms": 60000}}),
                ),
            ),
            (
                2,
                t("2026-03-01T12:06:00Z").unwrap(),
                ev(
                    json!({"type": "task.escalated", "occurred_at": "2026-03-01T12:06:00Z", "escalation": {"from": "ana", "to": "seniors", "reason": "limit"}}),
                ),
            ),
            (
                3,
                t("2026-03-01T12:20:00Z").unwrap(),
                ev(
                    json!({"type": "review.decision", "occurred_at": "2026-03-01T12:20:00Z", "actor": {"id": "kim"},
                "review": {"decision": "modify", "duration_ms": 300000, "changes": {"amount": 1}}, "rationale": {"code": "M-1"}}),
                ),
            ),
        ];
        let tl = build("t1", events);
        assert_eq!(
            tl.steps.iter().map(|s| s.seq).collect::<Vec<_>>(),
            [0, 1, 2, 3, 4]
        );
        let s = &tl.summary;
        assert_eq!(s.time_to_first_review_ms, Some(300_000));
        assert_eq!(s.human_time_ms, 360_000);
        assert_eq!(s.overrides, 1);
        assert_eq!(s.decisions[1].changes, Some(json!({"amount": 1})));
        assert_eq!(s.escalations[0].to.as_deref(), Some("seniors"));
        assert_eq!(
            s.resolution.as_ref().unwrap().outcome.as_deref(),
            Some("approved")
        );
        assert_eq!(s.models, ["m 2"]);
    }
}
