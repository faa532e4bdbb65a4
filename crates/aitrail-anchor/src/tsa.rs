//! `tsa:URL`: an RFC 3161 timestamp authority stamps each note, and the token is kept.
//!
//! `put` sends a TimeStampReq over HTTP (RFC 3161 §3.4: POST `application/timestamp-query`),
//! checks the reply fully ([`crate::rfc3161::verify_token`] plus the nonce) and keeps the note
//! and its token side by side, written once: `<tokens>/<log>/<size>-<root>.note` and `.tst`.
//! `list` re-verifies every token against its note and the configured CA.
//!
//! A token proves that the note existed at its genTime; nobody, not even with aitrail's
//! signing key, can make one for an earlier time. It does not keep the note from being
//! deleted: keep the token directory on other media too, or anchor to S3 as well.

use crate::dir::{files_with, write_once};
use crate::error::{io, AnchorError, Result, TokenError};
use crate::net::{self, Io};
use crate::rfc3161::{self, strip_zeros, Trust};
use crate::{object_name, Anchor, Anchored, Receipt};
use std::path::{Path, PathBuf};

/// Largest TimeStampResp accepted.
const MAX_RESPONSE: usize = 1 << 20;

/// A TSA anchor: the TSA's URL, the CA its certificate must chain to, and where tokens go.
#[derive(Debug)]
pub struct TsaAnchor {
    name: String,
    url: String,
    trust: Trust,
    tokens: PathBuf,
    io: Io,
}

impl TsaAnchor {
    /// `ca` is the PEM file of the CA (or CAs) the TSA's certificate must chain to;
    /// `tokens` the directory where notes and tokens are kept.
    pub fn new(url: &str, ca: &Path, tokens: &Path) -> Result<TsaAnchor> {
        let pem = std::fs::read(ca).map_err(io("reading the TSA CA file", ca))?;
        let trust = Trust::from_pem(&pem)
            .map_err(|e| AnchorError::Config(format!("the TSA CA file {}: {e}", ca.display())))?;
        Ok(TsaAnchor {
            name: format!("tsa:{url}"),
            url: url.to_owned(),
            trust,
            tokens: tokens.to_owned(),
            io: Io::new().map_err(|e| AnchorError::Config(format!("starting I/O: {e}")))?,
        })
    }

    /// Where the notes and tokens of this TSA are kept.
    pub fn tokens(&self) -> &Path {
        &self.tokens
    }

    /// Asks the TSA for a token over `data` and returns it, verified.
    fn stamp(&self, data: &[u8]) -> Result<(Vec<u8>, rfc3161::Verified)> {
        let http = |detail: String| AnchorError::Http {
            url: self.url.clone(),
            detail,
        };
        let req = rfc3161::request(data)?;
        let answer = self
            .io
            .block_on(net::post(
                &self.url,
                "application/timestamp-query",
                req.der,
                MAX_RESPONSE,
            ))
            .map_err(http)?;
        if answer.status != 200 {
            let text = String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)])
                .trim()
                .to_owned();
            return Err(http(format!("HTTP status {}: {text}", answer.status)));
        }
        let token = match rfc3161::token_from_response(&answer.body).map_err(|e| {
            http(format!(
                "the answer (content type {:?}) is not a timestamp response: {e}",
                answer.content_type
            ))
        })? {
            Ok(token) => token,
            Err(refusal) => {
                return Err(AnchorError::TsaRefused {
                    url: self.url.clone(),
                    status: refusal.status,
                    detail: if refusal.text.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", refusal.text)
                    },
                })
            }
        };
        let verified = rfc3161::verify_token(&token, data, &self.trust)?;
        if verified.nonce.as_deref() != Some(strip_zeros(&req.nonce)) {
            return Err(TokenError::Nonce.into());
        }
        Ok((token, verified))
    }
}

impl Anchor for TsaAnchor {
    fn name(&self) -> &str {
        &self.name
    }

    fn put(&self, log: &str, note: &str) -> Result<Receipt> {
        let note_path = self.tokens.join(object_name(log, note)?);
        let token_path = note_path.with_extension("tst");
        let note_created = write_once(&note_path, note.as_bytes(), crate::dir::PUBLIC)?;
        if !note_created {
            // Stamped before? Then the kept token must still verify.
            if let Ok(token) = std::fs::read(&token_path) {
                let verified = rfc3161::verify_token(&token, note.as_bytes(), &self.trust)?;
                return Ok(Receipt {
                    location: token_path.display().to_string(),
                    created: false,
                    timestamp: Some(verified.timestamp),
                });
            }
        }
        let (token, verified) = self.stamp(note.as_bytes())?;
        write_once(&token_path, &token, crate::dir::PUBLIC)?;
        Ok(Receipt {
            location: token_path.display().to_string(),
            created: true,
            timestamp: Some(verified.timestamp),
        })
    }

    fn list(&self, log: &str) -> Result<Vec<Anchored>> {
        crate::check_log_name(log)?;
        let mut out = Vec::new();
        for token_path in files_with(&self.tokens.join(log), "tst")? {
            let token = std::fs::read(&token_path).map_err(io("reading", &token_path))?;
            let note_path = token_path.with_extension("note");
            let location = token_path.display().to_string();
            let note = match std::fs::read(&note_path) {
                Ok(b) => String::from_utf8_lossy(&b).into_owned(),
                Err(e) => {
                    out.push(Anchored {
                        note: String::new(),
                        location,
                        timestamp: None,
                        fault: Some(format!(
                            "the note this token stamps ({}) cannot be read: {e}",
                            note_path.display()
                        )),
                    });
                    continue;
                }
            };
            let (timestamp, fault) =
                match rfc3161::verify_token(&token, note.as_bytes(), &self.trust) {
                    Ok(v) => (Some(v.timestamp), None),
                    Err(e) => (
                        None,
                        Some(format!("the timestamp token does not verify: {e}")),
                    ),
                };
            out.push(Anchored {
                note,
                location,
                timestamp,
                fault,
            });
        }
        Ok(out)
    }
}
