//! Entries: the stored record `{"seq", "log", "recorded_at", "event"}` and its entry bytes,
//! the RFC 8785 canonical JSON every hash is taken over (DESIGN.md "Entries and hashes").

use crate::canonical::to_canonical;
use crate::error::{Error, Result};
use crate::merkle::Hash;
use serde_json::Value;

/// An event ready for the sequencer: canonical event bytes and the fields the store indexes.
/// Canonicalizing the event before sequencing keeps the single-threaded sequencer cheap.
#[derive(Clone, Debug, PartialEq)]
pub struct PreparedEvent {
    pub id: uuid::Uuid,
    pub event_type: String,
    pub task_id: String,
    pub occurred_at: i64,
    pub index: crate::event::IndexFields,
    /// RFC 8785 bytes of the event (after PII processing).
    pub canonical: Vec<u8>,
}

impl PreparedEvent {
    /// Prepares a validated event: `subject.id` becomes a keyed reference (see `pii`), then
    /// the event is canonicalized.
    pub fn new(mut event: crate::event::Event, subject_key: &[u8]) -> Result<Self> {
        crate::pii::pseudonymise_subject(&mut event.value, subject_key);
        Self::finish(event)
    }

    /// Prepares a validated event under a tenant's PII policy (`pii::protect`): PII fields
    /// referenced, free text scanned, `subject.id` referenced and, with `data_key` (the
    /// subject's key, when the policy encrypts), the content fields sealed.
    pub fn protected(
        mut event: crate::event::Event,
        policy: &crate::pii::Policy,
        tenant_key: &[u8],
        data_key: Option<&crate::pii::seal::DataKey>,
    ) -> Result<Self> {
        crate::pii::protect(&mut event.value, policy, tenant_key, data_key)?;
        Self::finish(event)
    }

    fn finish(event: crate::event::Event) -> Result<Self> {
        let index = crate::event::IndexFields::of(&event.value);
        let value = Value::Object(event.value);
        Ok(PreparedEvent {
            id: event.id,
            event_type: event.event_type,
            task_id: event.task_id,
            occurred_at: event.occurred_at,
            index,
            canonical: to_canonical(&value)?,
        })
    }
}

/// The entry bytes of a record, built from the already canonical event.
///
/// RFC 8785 §3.2.3 orders keys by UTF-16 code units: `event` < `log` < `recorded_at` < `seq`,
/// and the canonical form of a string or an integer does not depend on its context, so
/// concatenation gives exactly the canonical bytes of the whole record (tested below).
pub fn entry_bytes(seq: u64, log: &str, recorded_at: &str, canonical_event: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(canonical_event.len() + log.len() + recorded_at.len() + 64);
    write_entry_bytes(&mut out, seq, log, recorded_at, canonical_event);
    out
}

/// `entry_bytes` appended to `out` (a buffer used again allocates nothing once large enough).
pub fn write_entry_bytes(
    out: &mut Vec<u8>,
    seq: u64,
    log: &str,
    recorded_at: &str,
    canonical_event: &[u8],
) {
    out.extend_from_slice(b"{\"event\":");
    out.extend_from_slice(canonical_event);
    out.extend_from_slice(b",\"log\":");
    crate::canonical::write_string(out, log);
    out.extend_from_slice(b",\"recorded_at\":");
    crate::canonical::write_string(out, recorded_at);
    out.extend_from_slice(b",\"seq\":");
    out.extend_from_slice(itoa::Buffer::new().format(seq).as_bytes());
    out.push(b'}');
}

/// The `seq` a record claims, read from the tail of its entry bytes without parsing the rest
/// (canonical order puts `seq` last). `None` when the bytes do not end that way.
pub fn claimed_seq(entry: &[u8]) -> Option<u64> {
    let body = entry.strip_suffix(b"}")?;
    let at = body.iter().rposition(|&b| b == b':')?;
    if !body[..at].ends_with(b",\"seq\"") {
        return None;
    }
    std::str::from_utf8(&body[at + 1..]).ok()?.parse().ok()
}

/// A record parsed back from entry bytes.
#[derive(Clone, Debug, PartialEq, serde::Deserialize, serde::Serialize)]
pub struct Record {
    pub seq: u64,
    pub log: String,
    pub recorded_at: String,
    pub event: serde_json::Map<String, Value>,
}

impl Record {
    pub fn parse(entry: &[u8]) -> Result<Record> {
        serde_json::from_slice(entry).map_err(|e| Error::Malformed {
            what: "entry",
            detail: e.to_string(),
        })
    }
}

/// What the sequencer hands back for every appended event.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Receipt {
    pub id: uuid::Uuid,
    pub seq: u64,
    #[serde(with = "crate::hexser")]
    pub leaf_hash: Hash,
    pub recorded_at: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn concatenated_entry_bytes_are_canonical() {
        let event =
            json!({"type": "t.x", "z": [1.5, "é", {"b": 1, "a": 2}], "a\u{7f}": "\u{2028}"});
        let canon = to_canonical(&event).unwrap();
        let fast = entry_bytes(42, "tenant \"q\"", "2026-01-01T00:00:00.000001Z", &canon);
        let full = to_canonical(&json!({"seq": 42, "log": "tenant \"q\"", "recorded_at": "2026-01-01T00:00:00.000001Z", "event": event}))
            .unwrap();
        assert_eq!(
            String::from_utf8(fast.clone()).unwrap(),
            String::from_utf8(full).unwrap()
        );
        assert_eq!(claimed_seq(&fast), Some(42));
        let rec = Record::parse(&fast).unwrap();
        assert_eq!((rec.seq, rec.log.as_str()), (42, "tenant \"q\""));
    }

    #[test]
    fn claimed_seq_rejects_other_tails() {
        assert_eq!(claimed_seq(b"{\"a\":1}"), None);
        assert_eq!(claimed_seq(b"{\"event\":{},\"seq\":x}"), None);
    }
}
