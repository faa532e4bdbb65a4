//! The trail records its own use: every read (search, timeline, export, proof) appends an
//! `audit.accessed` event, and a person attesting that they reviewed a range appends an
//! `audit.reviewed` event. Shared by the CLI and the server.

use crate::error::{Result, StoreError};
use crate::query::{Filter, Query, QueryRow};
use crate::sequencer::Sequencer;
use crate::store::Store;
use aitrail_core::entry::{PreparedEvent, Receipt, Record};
use aitrail_core::event::{format_time, Event, Origin};
use aitrail_core::timeline::{self, Timeline};
use serde_json::{json, Value};

/// Who read or attested.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reader {
    /// `human` for a person at the CLI or panel, `system` for a token used by a program.
    pub kind: &'static str,
    pub id: String,
    pub role: String,
}

/// The task id audit events are filed under when they concern no one task.
pub const AUDIT_TASK: &str = "aitrail.audit";

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// Appends one aitrail-written event and returns its receipt.
pub(crate) fn append(seq: &Sequencer, log: &str, value: Value) -> Result<Receipt> {
    let event = Event::from_value(value, Origin::Aitrail).map_err(|e| {
        StoreError::Corrupt(format!(
            "audit event invalid: {}",
            e.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; ")
        ))
    })?;
    let prepared = PreparedEvent::new(event, &[])?;
    let outcome = seq.append(log, vec![prepared])?;
    Ok(outcome[0].receipt().clone())
}

/// Records that `reader` read the trail: `action` (search, timeline, export, proof), what
/// they asked for, and how many entries they got. Filed under `AUDIT_TASK` (with the task
/// read, if any, in its attributes) so reading a task does not add to that task's timeline.
pub fn record_access(
    seq: &Sequencer,
    log: &str,
    reader: &Reader,
    action: &str,
    asked: Value,
    results: u64,
    task: Option<&str>,
) -> Result<Receipt> {
    accessed(
        seq,
        log,
        reader,
        json!({"action": action, "query": asked, "results": results, "task": task}),
    )
}

/// `record_access` for an export that stopped part way (its output failed, or its client went
/// away): `sent` entries had been read and handed on, and the record says the export was not
/// complete (`"complete": false` in its attributes).
pub fn record_partial_export(
    seq: &Sequencer,
    log: &str,
    reader: &Reader,
    asked: Value,
    sent: u64,
    task: Option<&str>,
) -> Result<Receipt> {
    accessed(
        seq,
        log,
        reader,
        json!({"action": "export", "query": asked, "results": sent, "task": task, "complete": false}),
    )
}

fn accessed(seq: &Sequencer, log: &str, reader: &Reader, attributes: Value) -> Result<Receipt> {
    append(
        seq,
        log,
        json!({
            "type": "audit.accessed",
            "task_id": AUDIT_TASK,
            "occurred_at": format_time(now_micros()),
            "actor": {"kind": reader.kind, "id": reader.id, "role": reader.role},
            "attributes": attributes
        }),
    )
}

/// Records a retention action `reader` took (a legal hold placed or released): an
/// `audit.retention` event with `attributes`.
pub fn record_retention(
    seq: &Sequencer,
    log: &str,
    reader: &Reader,
    attributes: Value,
) -> Result<Receipt> {
    append(
        seq,
        log,
        json!({
            "type": "audit.retention",
            "task_id": AUDIT_TASK,
            "occurred_at": format_time(now_micros()),
            "actor": {"kind": reader.kind, "id": reader.id, "role": reader.role},
            "attributes": attributes
        }),
    )
}

/// Records that `reader` reviewed the log between `from` and `to` (RFC 3339), with a note:
/// the SOC 2 evidence that logs are reviewed. Counts the entries in the range.
pub fn record_review(
    store: &dyn Store,
    seq: &Sequencer,
    log: &str,
    reader: &Reader,
    range: std::ops::Range<i64>,
    note: &str,
    verified_ok: Option<bool>,
) -> Result<Receipt> {
    let (from, to) = (range.start, range.end);
    let filter = Filter {
        from: Some(from),
        to: Some(to),
        ..Filter::default()
    };
    let mut entries = 0u64;
    store.query(
        log,
        &Query {
            filter,
            ..Query::default()
        },
        &mut |_| {
            entries += 1;
            Ok(true)
        },
    )?;
    let checkpoint = store
        .latest_checkpoint(log)?
        .map(|c| json!({"size": c.size, "root": hex::encode(c.root)}));
    append(
        seq,
        log,
        json!({
            "type": "audit.reviewed",
            "task_id": AUDIT_TASK,
            "occurred_at": format_time(now_micros()),
            "actor": {"kind": reader.kind, "id": reader.id, "role": reader.role},
            "rationale": {"note": note},
            "attributes": {"from": format_time(from), "to": format_time(to), "entries": entries,
                           "checkpoint": checkpoint, "verified": verified_ok}
        }),
    )
}

/// One page of results and the cursor of the next page, if there is one.
pub fn search(
    store: &dyn Store,
    log: &str,
    query: &Query,
) -> Result<(Vec<QueryRow>, Option<String>)> {
    let limit = query.limit.unwrap_or(100);
    let mut rows = Vec::with_capacity(limit.min(1000) + 1);
    let q = Query {
        limit: Some(limit + 1),
        ..query.clone()
    };
    store.query(log, &q, &mut |row| {
        rows.push(row);
        Ok(true)
    })?;
    let next = if rows.len() > limit {
        rows.truncate(limit);
        rows.last().map(|r| r.cursor(query.filter.time).encode())
    } else {
        None
    };
    Ok((rows, next))
}

/// A task's timeline; with a keyring, sealed content is opened (see `keys::Keyring`).
pub fn task_timeline(
    store: &dyn Store,
    log: &str,
    task_id: &str,
    mut keyring: Option<&mut crate::keys::Keyring<'_>>,
) -> Result<Timeline> {
    let filter = Filter {
        task_id: Some(task_id.to_owned()),
        ..Filter::default()
    };
    let mut events = Vec::new();
    store.query(
        log,
        &Query {
            filter,
            ..Query::default()
        },
        &mut |row| {
            let mut record = Record::parse(&row.entry.entry)?;
            if let Some(k) = keyring.as_deref_mut() {
                k.reveal(&mut record.event)?;
            }
            events.push((row.entry.seq, row.occurred_at, record.event));
            Ok(true)
        },
    )?;
    Ok(timeline::build(task_id, events))
}
