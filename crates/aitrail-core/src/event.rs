//! The event format (DESIGN.md "Event format"): validation that reports every problem by
//! field path, and the index fields the store keeps beside the entry bytes.

use serde_json::{Map, Value};
use std::fmt;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;
use uuid::Uuid;

/// Types aitrail knows; others are allowed when they match `type_name_is_valid`.
pub const KNOWN_TYPES: &[&str] = &[
    "task.created",
    "ai.inference",
    "review.assigned",
    "review.decision",
    "task.escalated",
    "task.resolved",
    "data.accessed",
];

/// The prefix of types only aitrail itself writes (`audit.accessed`, `audit.erased`, ...).
pub const RESERVED_PREFIX: &str = "audit.";

/// The types aitrail writes itself today.
pub const AUDIT_TYPES: &[&str] = &[
    "audit.accessed",
    "audit.reviewed",
    "audit.anchored",
    "audit.erased",
];

/// Review decisions (DESIGN.md `review.decision`).
pub const DECISIONS: &[&str] = &["approve", "reject", "modify", "escalate"];

const ACTOR_KINDS: &[&str] = &["human", "model", "system"];

/// One problem with one field of one event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FieldError {
    /// Dotted path of the field, for example `review.decision` or `input.messages[2]`.
    pub field: String,
    pub message: String,
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A validated event: the JSON object (with its `id` assigned) and the fields the store
/// indexes. `subject.id` is still raw here; `pii` turns it into a reference before storage.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    pub value: Map<String, Value>,
    pub id: Uuid,
    pub event_type: String,
    pub task_id: String,
    /// Unix microseconds of `occurred_at`.
    pub occurred_at: i64,
}

/// Fields the store indexes, read from an event object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct IndexFields {
    pub actor_id: Option<String>,
    pub model_name: Option<String>,
    pub model_version: Option<String>,
    pub prompt_version: Option<String>,
    pub decision: Option<String>,
    pub subject_ref: Option<String>,
}

impl IndexFields {
    pub fn of(event: &Map<String, Value>) -> Self {
        let get = |obj: &str, key: &str| {
            event
                .get(obj)
                .and_then(|o| o.get(key))
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        IndexFields {
            actor_id: get("actor", "id"),
            model_name: get("model", "name"),
            model_version: get("model", "version"),
            prompt_version: get("prompt", "version"),
            decision: get("review", "decision"),
            subject_ref: get("subject", "ref"),
        }
    }
}

/// Content fields a viewer does not see: what the model was given, what it answered, and
/// what a reviewer changed.
pub const CONTENT_FIELDS: &[&str] = &["input", "output", "review.changes"];

/// Removes the content fields from an event object; returns the ones that were there.
pub fn withhold_content(event: &mut Map<String, Value>) -> Vec<&'static str> {
    let mut removed = Vec::new();
    for path in CONTENT_FIELDS {
        let gone = match path.split_once('.') {
            None => event.remove(*path).is_some(),
            Some((outer, inner)) => event
                .get_mut(outer)
                .and_then(Value::as_object_mut)
                .is_some_and(|o| o.remove(inner).is_some()),
        };
        if gone {
            removed.push(*path);
        }
    }
    removed
}

/// Whether `t` matches `^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+$`.
pub fn type_name_is_valid(t: &str) -> bool {
    let mut parts = t.split('.');
    let first = parts.next().unwrap_or("");
    let word = |s: &str| {
        !s.is_empty()
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    };
    let mut rest = 0;
    for p in parts {
        if !word(p) {
            return false;
        }
        rest += 1;
    }
    rest > 0 && word(first) && first.as_bytes()[0].is_ascii_lowercase()
}

/// Parses an RFC 3339 timestamp into Unix microseconds.
pub fn parse_time(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &Rfc3339).ok()?;
    i64::try_from(t.unix_timestamp_nanos() / 1000).ok()
}

/// Formats Unix microseconds as RFC 3339 UTC with microseconds, the form of `recorded_at`.
pub fn format_time(micros: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let d = t.date();
    let tm = t.time();
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:06}Z",
        d.year(),
        u8::from(d.month()),
        d.day(),
        tm.hour(),
        tm.minute(),
        tm.second(),
        tm.microsecond()
    )
}

/// Who may write an event: clients may not write `audit.*` types.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    Client,
    Aitrail,
}

impl Event {
    /// Validates a JSON value as an event, collecting every problem. Assigns a UUIDv7 `id`
    /// when there is none.
    pub fn from_value(value: Value, origin: Origin) -> Result<Event, Vec<FieldError>> {
        let mut v = Validator::default();
        let Value::Object(mut obj) = value else {
            v.err("", "expected a JSON object");
            return Err(v.errors);
        };
        for key in obj.keys() {
            if !TOP_FIELDS.contains(&key.as_str()) {
                v.err(
                    key,
                    "unknown field (free-form data belongs in `attributes`)",
                );
            }
        }
        let event_type = v.string(&obj, "", "type", true).unwrap_or_default();
        if !event_type.is_empty() {
            if !type_name_is_valid(&event_type) {
                v.err(
                    "type",
                    "expected a dotted lowercase name like `review.decision`",
                );
            } else if origin == Origin::Client && event_type.starts_with(RESERVED_PREFIX) {
                v.err("type", "`audit.*` types are written by aitrail itself");
            }
        }
        let task_id = v.string(&obj, "", "task_id", true).unwrap_or_default();
        if v.ok_at("task_id") && task_id.is_empty() {
            v.err("task_id", "must not be empty");
        }
        let occurred_at = match v.string(&obj, "", "occurred_at", true) {
            Some(s) => parse_time(&s).unwrap_or_else(|| {
                v.err(
                    "occurred_at",
                    "expected an RFC 3339 timestamp like 2026-03-01T12:00:00Z",
                );
                0
            }),
            None => 0,
        };
        let id = match obj.get("id") {
            None => Some(Uuid::now_v7()),
            Some(Value::String(s)) => Uuid::parse_str(s).ok().or_else(|| {
                v.err("id", "expected a UUID");
                None
            }),
            Some(_) => {
                v.err("id", "expected a UUID string");
                None
            }
        };
        v.object(
            &obj,
            "actor",
            &[
                ("kind", Kind::OneOf(ACTOR_KINDS), true),
                ("id", Kind::Str, false),
                ("role", Kind::Str, false),
            ],
        );
        v.object(
            &obj,
            "subject",
            &[("kind", Kind::Str, false), ("id", Kind::Str, true)],
        );
        v.object(
            &obj,
            "model",
            &[
                ("provider", Kind::Str, false),
                ("name", Kind::Str, false),
                ("version", Kind::Str, false),
            ],
        );
        v.object(
            &obj,
            "prompt",
            &[("id", Kind::Str, false), ("version", Kind::Str, false)],
        );
        v.object(
            &obj,
            "input",
            &[
                ("prompt", Kind::Str, false),
                ("messages", Kind::Array, false),
                ("context", Kind::Any, false),
                ("parameters", Kind::Object, false),
            ],
        );
        v.object(
            &obj,
            "output",
            &[
                ("text", Kind::Str, false),
                ("content", Kind::Any, false),
                ("confidence", Kind::Probability, false),
                ("token_logprobs", Kind::Array, false),
                ("finish_reason", Kind::Str, false),
            ],
        );
        v.object(
            &obj,
            "review",
            &[
                ("decision", Kind::OneOf(DECISIONS), false),
                ("changes", Kind::Any, false),
                ("duration_ms", Kind::Count, false),
            ],
        );
        v.object(
            &obj,
            "rationale",
            &[
                ("code", Kind::Str, false),
                ("category", Kind::Str, false),
                ("note", Kind::Str, false),
            ],
        );
        v.object(
            &obj,
            "escalation",
            &[
                ("from", Kind::Str, false),
                ("to", Kind::Str, false),
                ("reason", Kind::Str, false),
            ],
        );
        v.object(
            &obj,
            "resolution",
            &[("outcome", Kind::Str, false), ("note", Kind::Str, false)],
        );
        match obj.get("environment") {
            None | Some(Value::String(_)) | Some(Value::Object(_)) => {}
            Some(_) => v.err("environment", "expected a string or an object"),
        }
        v.string(&obj, "", "request_id", false);
        if let Some(t) = v.string(&obj, "", "trace_id", false) {
            let hex_ok = t.len() == 32
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
            if !hex_ok || t.bytes().all(|b| b == b'0') {
                v.err(
                    "trace_id",
                    "expected a W3C trace id: 32 lowercase hex digits, not all zero",
                );
            }
        }
        if let Some(a) = obj.get("attributes") {
            if !a.is_object() {
                v.err("attributes", "expected an object");
            }
        }
        if let Some(p) = obj
            .get("output")
            .and_then(|o| o.get("token_logprobs"))
            .and_then(Value::as_array)
        {
            for (i, item) in p.iter().enumerate() {
                let ok = item.is_number() || item.get("logprob").is_some_and(Value::is_number);
                if !ok {
                    v.err(
                        &format!("output.token_logprobs[{i}]"),
                        "expected a number or an object with a numeric `logprob`",
                    );
                }
            }
        }
        type_rules(&obj, &event_type, &mut v);

        match (v.errors.is_empty(), id) {
            (true, Some(id)) => {
                obj.insert("id".into(), Value::String(id.to_string()));
                Ok(Event {
                    value: obj,
                    id,
                    event_type,
                    task_id,
                    occurred_at,
                })
            }
            _ => Err(v.errors),
        }
    }

    /// Parses and validates one event from JSON text.
    pub fn parse(text: &str, origin: Origin) -> Result<Event, Vec<FieldError>> {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => Event::from_value(v, origin),
            Err(e) => Err(vec![FieldError {
                field: String::new(),
                message: {
                    let msg = e.to_string();
                    let msg = msg.split(" at line ").next().unwrap_or_default().to_owned();
                    format!("malformed JSON at column {}: {msg}", e.column())
                },
            }]),
        }
    }
}

/// Type-specific rules (DESIGN.md "Event format").
fn type_rules(obj: &Map<String, Value>, event_type: &str, v: &mut Validator) {
    let has = |o: &str, k: &str| {
        obj.get(o)
            .and_then(|x| x.get(k))
            .is_some_and(|x| !x.is_null())
    };
    match event_type {
        "review.decision" => {
            if obj
                .get("actor")
                .and_then(|a| a.get("kind"))
                .and_then(Value::as_str)
                != Some("human")
            {
                v.err("actor.kind", "a review.decision needs a human actor");
            }
            if !has("actor", "id") {
                v.err("actor.id", "a review.decision needs the reviewer's id");
            }
            if !has("review", "decision") {
                v.err(
                    "review.decision",
                    "a review.decision needs a decision: approve, reject, modify or escalate",
                );
            }
        }
        "ai.inference" => {
            if !has("model", "name") {
                v.err("model.name", "an ai.inference needs the model's name");
            }
            if !obj.contains_key("output") {
                v.err("output", "an ai.inference needs the model's output");
            }
        }
        "task.escalated" => {
            if !has("escalation", "to") {
                v.err(
                    "escalation.to",
                    "a task.escalated needs who it was escalated to",
                );
            }
            if !has("escalation", "reason") {
                v.err("escalation.reason", "a task.escalated needs a reason");
            }
        }
        _ => {}
    }
}

const TOP_FIELDS: &[&str] = &[
    "id",
    "type",
    "task_id",
    "occurred_at",
    "actor",
    "subject",
    "model",
    "prompt",
    "input",
    "output",
    "review",
    "rationale",
    "escalation",
    "resolution",
    "environment",
    "request_id",
    "trace_id",
    "attributes",
];

#[derive(Clone, Copy)]
enum Kind {
    Str,
    OneOf(&'static [&'static str]),
    Array,
    Object,
    Any,
    /// A number in 0..=1.
    Probability,
    /// A non-negative integer.
    Count,
}

#[derive(Default)]
struct Validator {
    errors: Vec<FieldError>,
}

impl Validator {
    fn err(&mut self, field: &str, message: &str) {
        self.errors.push(FieldError {
            field: field.to_owned(),
            message: message.to_owned(),
        });
    }

    fn ok_at(&self, field: &str) -> bool {
        !self.errors.iter().any(|e| e.field == field)
    }

    fn path(parent: &str, key: &str) -> String {
        if parent.is_empty() {
            key.to_owned()
        } else {
            format!("{parent}.{key}")
        }
    }

    fn string(
        &mut self,
        obj: &Map<String, Value>,
        parent: &str,
        key: &str,
        required: bool,
    ) -> Option<String> {
        match obj.get(key) {
            Some(Value::String(s)) => Some(s.clone()),
            None if required => {
                self.err(&Self::path(parent, key), "required field is missing");
                None
            }
            None => None,
            Some(_) => {
                self.err(&Self::path(parent, key), "expected a string");
                None
            }
        }
    }

    fn object(&mut self, obj: &Map<String, Value>, key: &str, fields: &[(&str, Kind, bool)]) {
        let Some(value) = obj.get(key) else { return };
        let Value::Object(inner) = value else {
            self.err(key, "expected an object");
            return;
        };
        for k in inner.keys() {
            if !fields.iter().any(|(name, _, _)| name == k) {
                let known: Vec<&str> = fields.iter().map(|f| f.0).collect();
                self.err(
                    &format!("{key}.{k}"),
                    &format!("unknown field (known: {})", known.join(", ")),
                );
            }
        }
        for (name, kind, required) in fields {
            let path = format!("{key}.{name}");
            let Some(x) = inner.get(*name) else {
                if *required {
                    self.err(&path, "required field is missing");
                }
                continue;
            };
            let problem = match kind {
                Kind::Str if !x.is_string() => Some("expected a string".to_owned()),
                Kind::OneOf(allowed) if !x.as_str().is_some_and(|s| allowed.contains(&s)) => {
                    Some(format!("expected one of {}", allowed.join(", ")))
                }
                Kind::Array if !x.is_array() => Some("expected an array".to_owned()),
                Kind::Object if !x.is_object() => Some("expected an object".to_owned()),
                Kind::Probability if !x.as_f64().is_some_and(|f| (0.0..=1.0).contains(&f)) => {
                    Some("expected a number from 0 to 1".to_owned())
                }
                Kind::Count if x.as_u64().is_none() => {
                    Some("expected a non-negative integer".to_owned())
                }
                _ => None,
            };
            if let Some(p) = problem {
                self.err(&path, &p);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(errs: &[FieldError]) -> Vec<&str> {
        errs.iter().map(|e| e.field.as_str()).collect()
    }

    #[test]
    fn minimal_event_gets_an_id() {
        let e = Event::from_value(
            json!({"type": "task.created", "task_id": "t1", "occurred_at": "2026-03-01T12:00:00Z"}),
            Origin::Client,
        )
        .unwrap();
        assert_eq!(e.id.get_version_num(), 7);
        assert_eq!(e.value["id"], json!(e.id.to_string()));
        assert_eq!(e.occurred_at, 1_772_366_400_000_000);
    }

    #[test]
    fn every_problem_is_reported_by_path() {
        let errs = Event::from_value(
            json!({"type": "review.decision", "occurred_at": "yesterday", "actor": {"kind": "robot"},
                   "review": {"decision": "maybe", "duration_ms": -4}, "colour": 1}),
            Origin::Client,
        )
        .unwrap_err();
        let f = fields(&errs);
        for want in [
            "colour",
            "task_id",
            "occurred_at",
            "actor.kind",
            "actor.id",
            "review.decision",
            "review.duration_ms",
        ] {
            assert!(f.contains(&want), "{want} missing from {errs:?}");
        }
        let d = errs.iter().find(|e| e.field == "review.decision").unwrap();
        assert_eq!(
            d.to_string(),
            "review.decision: expected one of approve, reject, modify, escalate"
        );
    }

    #[test]
    fn type_specific_rules() {
        let base =
            |t: &str| json!({"type": t, "task_id": "t", "occurred_at": "2026-03-01T12:00:00Z"});
        assert_eq!(
            fields(&Event::from_value(base("ai.inference"), Origin::Client).unwrap_err()),
            ["model.name", "output"]
        );
        assert_eq!(
            fields(&Event::from_value(base("task.escalated"), Origin::Client).unwrap_err()),
            ["escalation.to", "escalation.reason"]
        );
        assert!(Event::from_value(base("acme.custom_step"), Origin::Client).is_ok());
        assert_eq!(
            fields(&Event::from_value(base("Bad"), Origin::Client).unwrap_err()),
            ["type"]
        );
        assert_eq!(
            fields(&Event::from_value(base("audit.erased"), Origin::Client).unwrap_err()),
            ["type"]
        );
        assert!(Event::from_value(base("audit.erased"), Origin::Aitrail).is_ok());
    }

    #[test]
    fn type_names() {
        for ok in ["a.b", "review.decision", "x1_y.z_2.w"] {
            assert!(type_name_is_valid(ok), "{ok}");
        }
        for bad in ["a", "A.b", "1a.b", "a..b", "a.b.", ".a", "a.B", "a-b.c"] {
            assert!(!type_name_is_valid(bad), "{bad}");
        }
    }

    #[test]
    fn time_round_trip() {
        let t = parse_time("2026-03-01T12:00:00.123456+01:00").unwrap();
        assert_eq!(format_time(t), "2026-03-01T11:00:00.123456Z");
    }
}
