//! Keeping raw PII out of entries, before anything is hashed or stored:
//!
//! - `subject.id`, and any field a tenant's policy names, becomes a keyed reference
//!   (HMAC-SHA256 over the normalised value). A plain hash of an id is reversible by trying
//!   candidates; a keyed one is not without the key.
//! - Free text (content, notes, reasons) is scanned once ([`scan`]) for emails, phone
//!   numbers, card numbers, SSNs, IBANs and IP addresses; each kind is redacted, replaced by
//!   a typed keyed token (`⟦EMAIL:3f9a2c41d07e⟧`, the same value giving the same token) or
//!   kept, as the policy says.
//! - The content fields of an event about a subject are sealed with that subject's data key
//!   ([`seal`]), so destroying the key erases them.

pub mod scan;
pub mod seal;

use hmac::{Hmac, Mac};
use scan::Kind;
use serde_json::{Map, Value};
use sha2::Sha256;
use std::borrow::Cow;

/// The normalised form of an identifier: trimmed, and lowercased when it looks like an email
/// (email addresses compare case-insensitively in practice).
pub fn normalise(id: &str) -> String {
    let t = id.trim();
    if t.contains('@') {
        t.to_lowercase()
    } else {
        t.to_owned()
    }
}

/// The keyed reference of a raw subject id: hex HMAC-SHA256(key, normalised id).
pub fn subject_ref(key: &[u8], id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(normalise(id).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Replaces `subject.id` with `subject.ref` in a validated event object.
pub fn pseudonymise_subject(event: &mut Map<String, Value>, key: &[u8]) {
    if let Some(Value::Object(subject)) = event.get_mut("subject") {
        if let Some(Value::String(id)) = subject.remove("id") {
            subject.insert("ref".into(), Value::String(subject_ref(key, &id)));
        }
    }
}

/// The reference `subject.id` will get, read before the event is processed.
pub fn subject_of(event: &Map<String, Value>, key: &[u8]) -> Option<String> {
    let id = event.get("subject")?.get("id")?.as_str()?;
    Some(subject_ref(key, id))
}

/// What happens to one kind of PII found in free text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Replaced by `⟦KIND⟧`.
    Redact,
    /// Replaced by a keyed token `⟦KIND:12 hex⟧`: the same value gives the same token.
    Pseudonymize,
    /// Left as it is.
    Keep,
}

/// A tenant's PII policy. `Policy::default()`: every kind pseudonymized, content of events
/// about a subject encrypted, no extra PII fields.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Dotted paths of further fields holding identifiers (`attributes.customer_email`),
    /// replaced by `ref:<keyed reference>`.
    pub fields: Vec<String>,
    /// The action per kind, indexed like `Kind::ALL`.
    pub actions: [Action; 6],
    /// Whether the content fields of events with a subject are encrypted.
    pub encrypt: bool,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            fields: Vec::new(),
            actions: [Action::Pseudonymize; 6],
            encrypt: true,
        }
    }
}

impl Policy {
    pub fn action(&self, kind: Kind) -> Action {
        self.actions[kind as usize]
    }

    /// Whether the policy changes nothing in free text (the scan can be skipped).
    fn keeps_text(&self) -> bool {
        self.actions.iter().all(|a| *a == Action::Keep)
    }
}

/// Fields whose strings are scanned for PII: the content fields and the free-text notes.
pub const TEXT_FIELDS: &[&str] = &[
    "input",
    "output",
    "review.changes",
    "rationale.note",
    "resolution.note",
    "escalation.reason",
];

/// Fields a policy may not name as PII: the ones validation, indexing and hashing rely on.
pub const NOT_PII: &[&str] = &["id", "type", "task_id", "occurred_at", "subject.ref"];

/// The keyed token of one finding: `⟦KIND:` 12 hex of HMAC(key, "pii" \0 kind \0 value) `⟧`.
pub fn token(key: &[u8], kind: Kind, value: &str) -> String {
    let normal: Cow<str> = match kind {
        Kind::Email => Cow::Owned(value.to_lowercase()),
        Kind::Iban => Cow::Owned(value.chars().filter(|c| *c != ' ').collect()),
        Kind::Card | Kind::Ssn => Cow::Owned(value.chars().filter(char::is_ascii_digit).collect()),
        Kind::Phone => Cow::Owned(
            value
                .chars()
                .filter(|c| c.is_ascii_digit() || *c == '+')
                .collect(),
        ),
        Kind::Ip => Cow::Owned(value.to_lowercase()),
    };
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC accepts any key length");
    mac.update(b"pii\0");
    mac.update(kind.tag().as_bytes());
    mac.update(b"\0");
    mac.update(normal.as_bytes());
    let digest = mac.finalize().into_bytes();
    format!("⟦{}:{}⟧", kind.tag(), hex::encode(&digest[..6]))
}

/// Applies the policy to one string: every finding redacted, tokenised or kept.
pub fn rewrite_text<'t>(text: &'t str, policy: &Policy, key: &[u8]) -> Cow<'t, str> {
    let found = scan::scan(text);
    if found.iter().all(|f| policy.action(f.kind) == Action::Keep) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16 * found.len());
    let mut at = 0;
    for f in found {
        let replacement = match policy.action(f.kind) {
            Action::Keep => continue,
            Action::Redact => format!("⟦{}⟧", f.kind.tag()),
            Action::Pseudonymize => token(key, f.kind, &text[f.range.clone()]),
        };
        out.push_str(&text[at..f.range.start]);
        out.push_str(&replacement);
        at = f.range.end;
    }
    out.push_str(&text[at..]);
    Cow::Owned(out)
}

/// Rewrites every string inside a JSON value (object keys are left alone).
fn rewrite_value(v: &mut Value, policy: &Policy, key: &[u8]) {
    match v {
        Value::String(s) => {
            if let Cow::Owned(new) = rewrite_text(s, policy, key) {
                *s = new;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|x| rewrite_value(x, policy, key)),
        Value::Object(map) => map.values_mut().for_each(|x| rewrite_value(x, policy, key)),
        _ => {}
    }
}

/// The value at a dotted path (`review.changes`), if there is one.
pub fn field_mut<'a>(event: &'a mut Map<String, Value>, path: &str) -> Option<&'a mut Value> {
    let mut parts = path.split('.');
    let mut at = event.get_mut(parts.next()?)?;
    for p in parts {
        at = at.as_object_mut()?.get_mut(p)?;
    }
    Some(at)
}

/// Replaces an identifier field's value by `ref:<keyed reference>` (strings; each string of
/// an array; other values by their JSON text).
fn reference_value(v: &mut Value, key: &[u8]) {
    match v {
        Value::Null => {}
        Value::String(s) => *s = format!("ref:{}", subject_ref(key, s)),
        Value::Array(items) => items.iter_mut().for_each(|x| reference_value(x, key)),
        other => *other = Value::String(format!("ref:{}", subject_ref(key, &other.to_string()))),
    }
}

/// Everything this module does to a validated event, in order: the policy's PII fields
/// become references, free text is scanned and rewritten, `subject.id` becomes
/// `subject.ref`, and (when `data_key` is given) the content fields are sealed.
pub fn protect(
    event: &mut Map<String, Value>,
    policy: &Policy,
    tenant_key: &[u8],
    data_key: Option<&seal::DataKey>,
) -> crate::Result<()> {
    for path in &policy.fields {
        if let Some(v) = field_mut(event, path) {
            reference_value(v, tenant_key);
        }
    }
    if !policy.keeps_text() {
        for path in TEXT_FIELDS {
            if let Some(v) = field_mut(event, path) {
                rewrite_value(v, policy, tenant_key);
            }
        }
    }
    pseudonymise_subject(event, tenant_key);
    if let Some(key) = data_key {
        let id = event
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        for path in crate::event::CONTENT_FIELDS {
            if let Some(v) = field_mut(event, path) {
                *v = seal::seal(&id, path, v, key)?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
