//! Content encryption for events about a subject: AES-256-GCM (NIST SP 800-38D) under that
//! subject's data key, so destroying the key erases the content while the ciphertext, and
//! so every hash, stays as it was.
//!
//! A sealed field is stored as
//! `{"encrypted": {"alg": "A256GCM", "key": "<subject ref>", "kid": "<key id>",
//! "nonce": "<base64>", "ciphertext": "<base64, tag included>"}}`; the plaintext is the
//! RFC 8785 canonical JSON of the field's value. The associated data binds it to its place:
//! `aitrail/seal/v1 \0 event id \0 field path \0 subject ref \0 key id`, so a ciphertext
//! moved to another event or field does not open.
//!
//! The nonce is derived, not drawn: the first 12 bytes of HMAC-SHA256(data key, "nonce" \0
//! associated data \0 plaintext). The same event sealed twice gives the same bytes (a repeated
//! ingest is recognised as a duplicate), and two different plaintexts under one key get the
//! same nonce only on an HMAC collision (the SIV construction, RFC 5297 §1.3.2).
//!
//! Data keys are kept wrapped: AES-256-GCM under a key-encryption key derived from the
//! tenant key, which lives in the data directory, not in the database.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;

/// The algorithm name in envelopes (JOSE's name for AES-256-GCM, RFC 7518 §5.1).
pub const ALG: &str = "A256GCM";

/// A subject's data key, unwrapped.
#[derive(Clone, PartialEq, Eq)]
pub struct DataKey {
    pub subject_ref: String,
    /// Random id of this key (hex); a new key after an erasure has a new id.
    pub key_id: String,
    pub key: [u8; 32],
}

impl std::fmt::Debug for DataKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "DataKey({}, {})", self.subject_ref, self.key_id)
    }
}

/// Why a sealed field could not be opened.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SealError {
    #[error("malformed envelope at {field}: {detail}")]
    Malformed { field: String, detail: String },
    #[error("the envelope at {field} does not open with key {key_id} (altered, or moved)")]
    Open { field: String, key_id: String },
}

fn hmac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC accepts any key length");
    for (n, p) in parts.iter().enumerate() {
        if n > 0 {
            mac.update(&[0]);
        }
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

fn aad(event_id: &str, field: &str, key: &DataKey) -> Vec<u8> {
    [
        "aitrail/seal/v1",
        event_id,
        field,
        &key.subject_ref,
        &key.key_id,
    ]
    .join("\0")
    .into_bytes()
}

/// Seals one field's value.
pub fn seal(event_id: &str, field: &str, value: &Value, key: &DataKey) -> crate::Result<Value> {
    let plaintext = crate::canonical::to_canonical(value)?;
    let aad = aad(event_id, field, key);
    let nonce = hmac(&key.key, &[b"nonce", &aad, &plaintext]);
    let nonce = Nonce::from_slice(&nonce[..12]);
    let cipher = Aes256Gcm::new_from_slice(&key.key).expect("a 32-byte key");
    let ciphertext = cipher
        .encrypt(
            nonce,
            Payload {
                msg: &plaintext,
                aad: &aad,
            },
        )
        .map_err(|_| crate::Error::Canonical("encryption failed".into()))?;
    Ok(json!({"encrypted": {
        "alg": ALG,
        "key": key.subject_ref,
        "kid": key.key_id,
        "nonce": B64.encode(nonce),
        "ciphertext": B64.encode(ciphertext),
    }}))
}

/// The subject ref and key id of a sealed value, or None when the value is not sealed.
pub fn sealed_with(value: &Value) -> Option<(&str, &str)> {
    let env = value.as_object()?.get("encrypted")?.as_object()?;
    Some((env.get("key")?.as_str()?, env.get("kid")?.as_str()?))
}

/// Opens a sealed value with its data key.
pub fn open(
    event_id: &str,
    field: &str,
    sealed: &Value,
    key: &DataKey,
) -> Result<Value, SealError> {
    let bad = |detail: &str| SealError::Malformed {
        field: field.to_owned(),
        detail: detail.to_owned(),
    };
    let env = sealed
        .get("encrypted")
        .and_then(Value::as_object)
        .ok_or_else(|| bad("no `encrypted` object"))?;
    let text = |k: &str| env.get(k).and_then(Value::as_str).ok_or_else(|| bad(k));
    if text("alg")? != ALG {
        return Err(bad("unknown alg"));
    }
    let nonce = B64.decode(text("nonce")?).map_err(|_| bad("nonce"))?;
    let ciphertext = B64
        .decode(text("ciphertext")?)
        .map_err(|_| bad("ciphertext"))?;
    if nonce.len() != 12 {
        return Err(bad("nonce length"));
    }
    let cipher = Aes256Gcm::new_from_slice(&key.key).expect("a 32-byte key");
    let refused = || SealError::Open {
        field: field.to_owned(),
        key_id: key.key_id.clone(),
    };
    let plaintext = cipher
        .decrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: &ciphertext,
                aad: &aad(event_id, field, key),
            },
        )
        .map_err(|_| refused())?;
    serde_json::from_slice(&plaintext).map_err(|_| refused())
}

/// The key-encryption key of a tenant, derived from its tenant key.
pub fn kek(tenant_key: &[u8]) -> [u8; 32] {
    hmac(tenant_key, &[b"aitrail/kek/v1"])
}

/// Wraps a data key for the key table: nonce derived from the (unique, random) key id.
pub fn wrap(kek: &[u8; 32], key: &DataKey) -> Vec<u8> {
    let aad = ["aitrail/wrap/v1", &key.subject_ref, &key.key_id].join("\0");
    let nonce = hmac(kek, &[b"wrap-nonce", aad.as_bytes()]);
    let cipher = Aes256Gcm::new_from_slice(kek).expect("a 32-byte key");
    cipher
        .encrypt(
            Nonce::from_slice(&nonce[..12]),
            Payload {
                msg: &key.key,
                aad: aad.as_bytes(),
            },
        )
        .expect("AES-GCM encrypts 32 bytes")
}

/// Unwraps a data key read from the key table; None when it does not open (another tenant
/// key, or the row was altered).
pub fn unwrap(kek: &[u8; 32], subject_ref: &str, key_id: &str, wrapped: &[u8]) -> Option<DataKey> {
    let aad = ["aitrail/wrap/v1", subject_ref, key_id].join("\0");
    let nonce = hmac(kek, &[b"wrap-nonce", aad.as_bytes()]);
    let cipher = Aes256Gcm::new_from_slice(kek).expect("a 32-byte key");
    let key = cipher
        .decrypt(
            Nonce::from_slice(&nonce[..12]),
            Payload {
                msg: wrapped,
                aad: aad.as_bytes(),
            },
        )
        .ok()?;
    Some(DataKey {
        subject_ref: subject_ref.to_owned(),
        key_id: key_id.to_owned(),
        key: key.try_into().ok()?,
    })
}

/// Replaces every sealed content field of a stored event: opened with `key_for(ref, kid)`
/// when it returns a key, `{"erased": true}` when it returns None (the key was destroyed).
pub fn reveal(
    event: &mut Map<String, Value>,
    key_for: &mut dyn FnMut(&str, &str) -> Option<DataKey>,
) -> Result<(), SealError> {
    let id = event
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    for path in crate::event::CONTENT_FIELDS {
        let Some(slot) = super::field_mut(event, path) else {
            continue;
        };
        let Some((subject_ref, kid)) = sealed_with(slot) else {
            continue;
        };
        *slot = match key_for(subject_ref, kid) {
            Some(key) => open(&id, path, slot, &key)?,
            None => json!({"erased": true}),
        };
    }
    Ok(())
}
