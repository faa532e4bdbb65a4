//! Checkpoints: C2SP `tlog-checkpoint` bodies signed as C2SP `signed-note`s with Ed25519.
//!
//! - Body (tlog-checkpoint): `origin\n`, decimal tree size `\n`, base64 root hash `\n`.
//! - Note (signed-note): body, an empty line, then one line per signature:
//!   `— <key name> <base64(key id || signature)>\n` (U+2014 EM DASH).
//! - Key id: the first 4 bytes of SHA-256(name || 0x0A || 0x01 || public key), big-endian.
//! - Verifier key (vkey): `name+hex(key id)+base64(0x01 || public key)`; signer key:
//!   `PRIVATE+KEY+name+hex(key id)+base64(0x01 || seed)`.

use crate::error::{Error, Result};
use crate::merkle::Hash;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

const ALG_ED25519: u8 = 0x01;
const SIG_PREFIX: &str = "\u{2014} ";

fn malformed(what: &'static str, detail: impl Into<String>) -> Error {
    Error::Malformed {
        what,
        detail: detail.into(),
    }
}

/// Key names are non-empty, with no spaces and no `+` (C2SP signed-note).
fn check_name(name: &str) -> Result<()> {
    if name.is_empty() || name.chars().any(|c| c == '+' || c.is_whitespace()) {
        return Err(malformed(
            "key name",
            format!("{name:?}: must be non-empty, without spaces or '+'"),
        ));
    }
    Ok(())
}

/// The 4-byte key id of an Ed25519 key.
pub fn key_id(name: &str, public: &VerifyingKey) -> u32 {
    let mut h = Sha256::new();
    h.update(name.as_bytes());
    h.update([b'\n', ALG_ED25519]);
    h.update(public.as_bytes());
    let d = h.finalize();
    u32::from_be_bytes([d[0], d[1], d[2], d[3]])
}

/// A note verifier: name, key id and public key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verifier {
    pub name: String,
    pub id: u32,
    pub key: VerifyingKey,
}

impl Verifier {
    /// Parses a vkey: `name+hex8(key id)+base64(0x01 || key)`.
    pub fn parse(vkey: &str) -> Result<Verifier> {
        let mut parts = vkey.trim().splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed("verifier key", "expected name+keyid+key"));
        };
        check_name(name)?;
        let id = u32::from_str_radix(id, 16)
            .map_err(|_| malformed("verifier key", "key id is not 8 hex digits"))?;
        let raw = B64
            .decode(key)
            .map_err(|e| malformed("verifier key", e.to_string()))?;
        let [ALG_ED25519, rest @ ..] = raw.as_slice() else {
            return Err(malformed(
                "verifier key",
                "only Ed25519 keys (type 0x01) are supported",
            ));
        };
        let bytes: [u8; 32] = rest
            .try_into()
            .map_err(|_| malformed("verifier key", "Ed25519 key must be 32 bytes"))?;
        let key = VerifyingKey::from_bytes(&bytes)
            .map_err(|e| malformed("verifier key", e.to_string()))?;
        if key_id(name, &key) != id {
            return Err(malformed(
                "verifier key",
                "key id does not match the name and key",
            ));
        }
        Ok(Verifier {
            name: name.to_owned(),
            id,
            key,
        })
    }

    /// The vkey text.
    pub fn to_vkey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!("{}+{:08x}+{}", self.name, self.id, B64.encode(raw))
    }
}

/// A note signer: name and Ed25519 signing key.
pub struct Signer {
    pub name: String,
    key: SigningKey,
}

impl Signer {
    /// A signer from a 32-byte Ed25519 seed.
    pub fn from_seed(name: &str, seed: [u8; 32]) -> Result<Signer> {
        check_name(name)?;
        Ok(Signer {
            name: name.to_owned(),
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// Parses `PRIVATE+KEY+name+hex8(key id)+base64(0x01 || seed)`.
    pub fn parse(skey: &str) -> Result<Signer> {
        let rest = skey
            .trim()
            .strip_prefix("PRIVATE+KEY+")
            .ok_or_else(|| malformed("signer key", "expected PRIVATE+KEY+ prefix"))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(malformed(
                "signer key",
                "expected PRIVATE+KEY+name+keyid+key",
            ));
        };
        let raw = B64
            .decode(key)
            .map_err(|e| malformed("signer key", e.to_string()))?;
        let [ALG_ED25519, seed @ ..] = raw.as_slice() else {
            return Err(malformed(
                "signer key",
                "only Ed25519 keys (type 0x01) are supported",
            ));
        };
        let seed: [u8; 32] = seed
            .try_into()
            .map_err(|_| malformed("signer key", "Ed25519 seed must be 32 bytes"))?;
        let signer = Signer::from_seed(name, seed)?;
        if u32::from_str_radix(id, 16).ok() != Some(signer.verifier().id) {
            return Err(malformed(
                "signer key",
                "key id does not match the name and key",
            ));
        }
        Ok(signer)
    }

    /// The signer key text. Secret: write it only to a 0600 file.
    pub fn to_skey(&self) -> String {
        let mut raw = vec![ALG_ED25519];
        raw.extend_from_slice(self.key.as_bytes());
        format!(
            "PRIVATE+KEY+{}+{:08x}+{}",
            self.name,
            self.verifier().id,
            B64.encode(raw)
        )
    }

    pub fn verifier(&self) -> Verifier {
        let key = self.key.verifying_key();
        Verifier {
            name: self.name.clone(),
            id: key_id(&self.name, &key),
            key,
        }
    }

    /// Signs a note body (which must end in a newline) and returns the whole note.
    pub fn sign_note(&self, body: &str) -> Result<String> {
        if !body.ends_with('\n') {
            return Err(malformed("note", "the text must end with a newline"));
        }
        let sig = self.key.sign(body.as_bytes());
        let mut raw = self.verifier().id.to_be_bytes().to_vec();
        raw.extend_from_slice(&sig.to_bytes());
        Ok(format!(
            "{body}\n{SIG_PREFIX}{} {}\n",
            self.name,
            B64.encode(raw)
        ))
    }
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Splits a signed note into its text and signature lines, and checks that one signature is
/// by `verifier` and valid. Returns the text (body). Signatures by other keys are ignored,
/// as C2SP signed-note allows.
pub fn open_note<'a>(note: &'a str, verifier: &Verifier) -> Result<&'a str> {
    let split = note
        .rfind("\n\n")
        .ok_or_else(|| malformed("note", "no empty line before the signatures"))?;
    let (body, sigs) = (&note[..split + 1], &note[split + 2..]);
    if !sigs.ends_with('\n') {
        return Err(malformed("note", "signature block must end with a newline"));
    }
    for line in sigs.lines() {
        let rest = line.strip_prefix(SIG_PREFIX).ok_or_else(|| {
            malformed(
                "note",
                format!("signature line {line:?} must start with an em dash"),
            )
        })?;
        let (name, sig) = rest
            .split_once(' ')
            .ok_or_else(|| malformed("note", "signature line needs a name and a signature"))?;
        let raw = B64
            .decode(sig)
            .map_err(|e| malformed("note", format!("signature is not base64: {e}")))?;
        if name != verifier.name || raw.len() < 4 || raw[..4] != verifier.id.to_be_bytes() {
            continue;
        }
        let sig = ed25519_dalek::Signature::from_slice(&raw[4..])
            .map_err(|e| malformed("note", e.to_string()))?;
        if verifier.key.verify_strict(body.as_bytes(), &sig).is_ok() {
            return Ok(body);
        }
    }
    Err(Error::BadSignature {
        key: format!("{}+{:08x}", verifier.name, verifier.id),
    })
}

/// A tlog-checkpoint body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    pub origin: String,
    pub size: u64,
    pub root: Hash,
}

impl Checkpoint {
    /// The body text: origin, size and base64 root, each on its own line.
    pub fn body(&self) -> String {
        format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            B64.encode(self.root)
        )
    }

    /// Parses a body (extension lines after the root are allowed and ignored).
    pub fn parse_body(body: &str) -> Result<Checkpoint> {
        let mut lines = body.split('\n');
        let origin = lines
            .next()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| malformed("checkpoint", "missing origin line"))?;
        let size = lines
            .next()
            .and_then(|s| {
                s.parse::<u64>()
                    .ok()
                    .filter(|_| !s.starts_with('+') && (s == "0" || !s.starts_with('0')))
            })
            .ok_or_else(|| {
                malformed("checkpoint", "second line must be the tree size in decimal")
            })?;
        let root = lines
            .next()
            .and_then(|r| B64.decode(r).ok())
            .and_then(|r| <Hash>::try_from(r.as_slice()).ok())
            .ok_or_else(|| {
                malformed(
                    "checkpoint",
                    "third line must be the base64 of a 32-byte root hash",
                )
            })?;
        Ok(Checkpoint {
            origin: origin.to_owned(),
            size,
            root,
        })
    }

    /// Signs the checkpoint, returning the signed note text.
    pub fn sign(&self, signer: &Signer) -> Result<String> {
        signer.sign_note(&self.body())
    }

    /// Verifies a signed checkpoint note and parses it; its origin must be the key's name.
    pub fn open(note: &str, verifier: &Verifier) -> Result<Checkpoint> {
        let cp = Checkpoint::parse_body(open_note(note, verifier)?)?;
        if cp.origin != verifier.name {
            return Err(malformed(
                "checkpoint",
                format!(
                    "origin {:?} is not the key's name {:?}",
                    cp.origin, verifier.name
                ),
            ));
        }
        Ok(cp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_open_round_trip() {
        let s = Signer::from_seed("example.com/log", [7; 32]).unwrap();
        let cp = Checkpoint {
            origin: "example.com/log".into(),
            size: 12,
            root: [3; 32],
        };
        let note = cp.sign(&s).unwrap();
        assert!(note.starts_with("example.com/log\n12\nAwMD"));
        let v = Verifier::parse(&s.verifier().to_vkey()).unwrap();
        assert_eq!(Checkpoint::open(&note, &v).unwrap(), cp);
        let forged = note.replace("\n12\n", "\n13\n");
        assert!(matches!(
            Checkpoint::open(&forged, &v),
            Err(Error::BadSignature { .. })
        ));
        assert_eq!(
            Signer::parse(&s.to_skey()).unwrap().verifier(),
            s.verifier()
        );
    }
}
