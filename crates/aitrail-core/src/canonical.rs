//! RFC 8785 JSON Canonicalization Scheme (JCS): the one byte form every hash is taken over.

use crate::error::{Error, Result};
use serde_json::Value;

/// The RFC 8785 canonical bytes of a JSON value: keys sorted by UTF-16 code units
/// (§3.2.3), numbers in ECMAScript form (§3.2.2.3), minimal string escaping (§3.2.2.2).
pub fn to_canonical(value: &Value) -> Result<Vec<u8>> {
    serde_json_canonicalizer::to_vec(value).map_err(|e| Error::Canonical(e.to_string()))
}

/// Canonicalizes JSON text, as the RFC 8785 test vectors do.
pub fn canonicalize_str(json: &str) -> Result<Vec<u8>> {
    let value: Value = serde_json::from_str(json).map_err(|e| Error::Canonical(e.to_string()))?;
    to_canonical(&value)
}
