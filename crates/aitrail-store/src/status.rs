//! Where the trail stands, for people: how many entries, the last signed checkpoint, the last
//! anchoring (from the `audit.anchored` events the binary records), and which checkpoint and
//! anchors vouch for one entry ("included in checkpoint N, signed at T, anchored at ...").

use crate::error::Result;
use crate::query::{Filter, Query};
use crate::store::{Store, StoredCheckpoint};
use aitrail_core::entry::Record;
use aitrail_core::event::format_time;
use serde_json::Value;

/// One copy of a checkpoint kept at an anchor, as recorded by `audit.anchored`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Anchoring {
    /// The anchor's name (`dir:...`, `s3://...`, `tsa:...`).
    pub anchor: String,
    pub checkpoint: u64,
    /// Tree size of the anchored checkpoint: it covers seqs `0..size`.
    pub size: u64,
    /// When it was anchored (RFC 3339).
    pub at: String,
    pub location: String,
    pub seq: u64,
}

/// A checkpoint as people see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointInfo {
    pub number: u64,
    pub size: u64,
    pub root_hex: String,
    /// When it was signed (RFC 3339).
    pub signed_at: String,
}

impl From<&StoredCheckpoint> for CheckpointInfo {
    fn from(c: &StoredCheckpoint) -> CheckpointInfo {
        CheckpointInfo {
            number: c.number,
            size: c.size,
            root_hex: hex::encode(c.root),
            signed_at: format_time(c.created_at),
        }
    }
}

/// The trail status card.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrailStatus {
    pub entries: u64,
    pub last_checkpoint: Option<CheckpointInfo>,
    pub last_anchoring: Option<Anchoring>,
}

/// What vouches for one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The first signed checkpoint whose tree holds the entry, if one does yet.
    pub checkpoint: Option<CheckpointInfo>,
    /// For each anchor, the first anchored checkpoint that holds the entry.
    pub anchorings: Vec<Anchoring>,
}

/// Every `audit.anchored` record of `log`, in the order they were written.
pub fn anchorings(store: &dyn Store, log: &str) -> Result<Vec<Anchoring>> {
    let query = Query {
        filter: Filter {
            task_id: Some(crate::audit::AUDIT_TASK.to_owned()),
            types: vec!["audit.anchored".to_owned()],
            ..Filter::default()
        },
        ..Query::default()
    };
    let mut out = Vec::new();
    store.query(log, &query, &mut |row| {
        let ev = Record::parse(&row.entry.entry)?.event;
        let attrs = ev.get("attributes").cloned().unwrap_or(Value::Null);
        let cp = &attrs["checkpoint"];
        out.push(Anchoring {
            anchor: attrs["anchor"].as_str().unwrap_or("?").to_owned(),
            checkpoint: cp["number"].as_u64().unwrap_or(0),
            size: cp["size"].as_u64().unwrap_or(0),
            at: ev
                .get("occurred_at")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            location: attrs["location"].as_str().unwrap_or_default().to_owned(),
            seq: row.entry.seq,
        });
        Ok(true)
    })?;
    Ok(out)
}

/// Entries, last checkpoint, last anchoring.
pub fn trail_status(store: &dyn Store, log: &str) -> Result<TrailStatus> {
    Ok(TrailStatus {
        entries: store.head(log)?.size,
        last_checkpoint: store
            .latest_checkpoint(log)?
            .as_ref()
            .map(CheckpointInfo::from),
        last_anchoring: anchorings(store, log)?.pop(),
    })
}

/// Which checkpoint and anchored checkpoints hold the entry at `seq`.
pub fn inclusion(store: &dyn Store, log: &str, seq: u64) -> Result<Inclusion> {
    let checkpoint = store
        .checkpoints(log)?
        .iter()
        .find(|c| c.size > seq)
        .map(CheckpointInfo::from);
    let mut first: Vec<Anchoring> = Vec::new();
    for a in anchorings(store, log)? {
        if a.size > seq && !first.iter().any(|f| f.anchor == a.anchor) {
            first.push(a);
        }
    }
    Ok(Inclusion {
        checkpoint,
        anchorings: first,
    })
}
