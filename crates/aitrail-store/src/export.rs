//! Streaming export with constant memory: CSV (RFC 4180, header row, CRLF, a UTF-8 byte
//! order mark so Excel reads it as UTF-8) or NDJSON (the stored entry bytes, one per line,
//! each verifiable on its own: its leaf hash is SHA-256(0x00 || line)).
//!
//! With a `Keyring` (readers allowed to see content), sealed content is opened: a CSV row is
//! built from the opened event, and an NDJSON line whose entry holds sealed fields becomes
//! the canonical record with those fields opened (or `{"erased": true}`), which no longer
//! hashes to the leaf; every other line stays the entry bytes. Without one (`--sealed`), the
//! stored bytes go out as they are.

use crate::error::{Result, StoreError};
use crate::query::Query;
use crate::store::Store;
use aitrail_core::entry::Record;
use aitrail_core::export::{csv_row, csv_row_of_entry, CSV_COLUMNS};
use serde::{Deserialize, Serialize};
use std::io::Write;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Csv,
    Ndjson,
}

impl Format {
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Ndjson => "ndjson",
        }
    }
}

/// A CSV writer with aitrail's settings (RFC 4180: CRLF line ends, quotes where needed).
pub fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(w)
}

fn io(e: impl std::fmt::Display) -> StoreError {
    StoreError::Corrupt(format!("writing the export: {e}"))
}

/// Whether entry bytes may hold a sealed field (a cheap test before parsing).
fn is_sealed(entry: &[u8]) -> bool {
    entry.windows(13).any(|w| w == b"{\"encrypted\":")
}

/// Streams every entry matching `query` to `out`, calling `progress(rows)` as each row is
/// about to go to `out` (a display throttles it itself). Returns the number of rows written;
/// when it fails part way, the last count given to `progress` is how many entries were read
/// and handed on, at most one too many (recorded even then: `audit::record_partial_export`).
pub fn export(
    store: &dyn Store,
    log: &str,
    query: &Query,
    format: Format,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(u64),
    mut keyring: Option<&mut crate::keys::Keyring<'_>>,
) -> Result<u64> {
    let mut rows = 0u64;
    match format {
        Format::Csv => {
            out.write_all("\u{feff}".as_bytes()).map_err(io)?;
            let mut w = csv_writer(&mut *out);
            w.write_record(CSV_COLUMNS).map_err(io)?;
            // No CSV column holds content, so nothing sealed needs opening here.
            store.query(log, query, &mut |row| {
                // Counted before it goes out: a failure part way never undercounts.
                rows += 1;
                progress(rows);
                let leaf = hex::encode(row.entry.leaf());
                match csv_row_of_entry(&row.entry.entry, &leaf) {
                    Some(fields) => w.write_record(fields.iter().map(|f| f.as_bytes())),
                    None => {
                        let r = Record::parse(&row.entry.entry)?;
                        w.write_record(csv_row(r.seq, &r.recorded_at, &leaf, &r.event))
                    }
                }
                .map_err(io)?;
                Ok(true)
            })?;
            w.flush().map_err(io)?;
        }
        Format::Ndjson => {
            store.query(log, query, &mut |row| {
                let opened;
                let line = match keyring.as_deref_mut() {
                    Some(k) if is_sealed(&row.entry.entry) => {
                        let mut r = Record::parse(&row.entry.entry)?;
                        k.reveal(&mut r.event)?;
                        let value = serde_json::to_value(&r)
                            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
                        opened = aitrail_core::canonical::to_canonical(&value)?;
                        &opened
                    }
                    _ => &row.entry.entry,
                };
                rows += 1;
                progress(rows);
                out.write_all(line)
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(io)?;
                Ok(true)
            })?;
        }
    }
    out.flush().map_err(io)?;
    progress(rows);
    Ok(rows)
}
