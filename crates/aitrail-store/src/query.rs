//! Searching a log: filters, a stable order and keyset pagination. Backends translate a
//! `Query` into their own SQL; everything else (timelines, export, audit records) sits above.

use crate::store::StoredEntry;
use serde::{Deserialize, Serialize};

/// Which time a range applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeField {
    /// When it happened (`occurred_at`, from the event).
    #[default]
    Occurred,
    /// When aitrail recorded it (`recorded_at`).
    Recorded,
}

/// Results in ascending or descending order of (time, seq).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Order {
    #[default]
    Asc,
    Desc,
}

/// What to search for; every field set must match.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub actor_id: Option<String>,
    /// Any of these types.
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub types: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// The subject's keyed reference (never the raw id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub subject_ref: Option<String>,
    /// Unix microseconds, inclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<i64>,
    /// Unix microseconds, exclusive.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to: Option<i64>,
    #[serde(default)]
    pub time: TimeField,
}

impl Filter {
    /// The filter in the terms the store indexes under a tenant's PII policy: a field the
    /// policy lists in `pii_fields` (`actor.id`, say) is stored as `ref:<keyed reference>`,
    /// so the raw value asked for becomes that reference too (a value given as `ref:...`
    /// already is kept). The access record of the search then holds no raw value either.
    pub fn under_policy(mut self, policy: &aitrail_core::pii::Policy, key: &[u8]) -> Filter {
        let fields = [
            ("actor.id", &mut self.actor_id),
            ("model.name", &mut self.model_name),
            ("model.version", &mut self.model_version),
            ("prompt.version", &mut self.prompt_version),
            ("review.decision", &mut self.decision),
        ];
        for (path, value) in fields {
            if let Some(v) = value.as_mut() {
                if policy.fields.iter().any(|f| f == path) && !is_reference(v) {
                    *v = format!("ref:{}", aitrail_core::pii::subject_ref(key, v));
                }
            }
        }
        self
    }
}

/// Whether `v` is a keyed reference as ingest writes it: `ref:` and 64 lowercase hex digits.
fn is_reference(v: &str) -> bool {
    v.strip_prefix("ref:").is_some_and(|h| {
        h.len() == 64
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Where a page ends: the sort key of its last row. Opaque to clients as `at.seq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// occurred_at (Occurred order) or 0 (Recorded order: seq alone is the key).
    pub at: i64,
    pub seq: u64,
}

impl Cursor {
    pub fn encode(&self) -> String {
        format!("{}.{}", self.at, self.seq)
    }

    pub fn decode(s: &str) -> Option<Cursor> {
        let (at, seq) = s.split_once('.')?;
        Some(Cursor {
            at: at.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }
}

/// A search: filter, order, where to start, how many.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Query {
    pub filter: Filter,
    pub order: Order,
    pub after: Option<Cursor>,
    /// None: all matches (streamed).
    pub limit: Option<usize>,
    /// Only entries with a seq at least this (set by `retention::WithArchive` so that hot rows
    /// of an archived range, kept until their day's partition is dropped, are not read twice).
    pub from_seq: Option<u64>,
}

/// A matching entry with its sort key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryRow {
    pub entry: StoredEntry,
    pub occurred_at: i64,
}

impl QueryRow {
    /// The cursor that continues after this row.
    pub fn cursor(&self, time: TimeField) -> Cursor {
        match time {
            TimeField::Occurred => Cursor {
                at: self.occurred_at,
                seq: self.entry.seq,
            },
            TimeField::Recorded => Cursor {
                at: 0,
                seq: self.entry.seq,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn referenced_fields_are_searched_by_their_reference() {
        let policy = aitrail_core::pii::Policy {
            fields: vec!["actor.id".into()],
            ..aitrail_core::pii::Policy::default()
        };
        let reference = format!("ref:{}", aitrail_core::pii::subject_ref(b"k", "rev-1"));
        let f = Filter {
            actor_id: Some("rev-1".into()),
            model_name: Some("m".into()),
            ..Filter::default()
        }
        .under_policy(&policy, b"k");
        assert_eq!(f.actor_id.as_deref(), Some(reference.as_str()));
        assert_eq!(f.model_name.as_deref(), Some("m"), "not a PII field");
        let again = f.clone().under_policy(&policy, b"k");
        assert_eq!(again, f, "a reference is kept as it is");
        let plain = Filter {
            actor_id: Some("rev-1".into()),
            ..Filter::default()
        };
        let unchanged = plain
            .clone()
            .under_policy(&aitrail_core::pii::Policy::default(), b"k");
        assert_eq!(unchanged, plain);
        // A raw value that merely starts with "ref:" is referenced like any other.
        let odd = Filter {
            actor_id: Some("ref:rev-1".into()),
            ..Filter::default()
        }
        .under_policy(&policy, b"k");
        let expected = format!("ref:{}", aitrail_core::pii::subject_ref(b"k", "ref:rev-1"));
        assert_eq!(odd.actor_id.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn cursor_round_trip() {
        let c = Cursor { at: -5, seq: 12 };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        assert_eq!(Cursor::decode("x.1"), None);
        assert_eq!(Cursor::decode("12"), None);
    }
}
