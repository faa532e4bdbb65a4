//! Retention: hot entries move to cold archive segments, segments expire by policy, legal
//! holds stop expiry, and the trail stays verifiable throughout.
//!
//! - **Segments.** One per log and UTC day of `recorded_at`, taken oldest first once the
//!   day has left the hot window: the day's entry bytes, one per line, gzip-compressed, beside
//!   a JSON [`Manifest`] (seq range, RFC 6962 root of the range, the chain hash before it,
//!   the signed checkpoint that covers it, the expiry). Both are written to the archive
//!   locked until the expiry, read back and checked, and only then does the store retire
//!   the range: it records the segment and every entry's leaf and chain hash (what proofs
//!   and verification need), then drops the hot rows.
//! - **Expiry.** A segment whose expiry has passed, and that no active legal hold covers, is
//!   read back and checked once more, recorded as an `audit.retention` event (seq range and
//!   Merkle root) and an [`Expiry`] row, then deleted from the archive. `verify` then tells a
//!   range expired by policy (its recorded hashes still give the checkpointed roots) from one
//!   that is missing.
//! - **Holds.** By task, subject reference, or a range of `occurred_at`. A segment holding
//!   anything a hold covers does not expire while the hold stands (a whole day is kept:
//!   segments are written once and never rewritten).
//!
//! Retired seqs are always a prefix of the log (`0..retired_end`): segments are cut oldest
//! first and `recorded_at` never decreases along a log.

use crate::audit::AUDIT_TASK;
use crate::error::{Result, StoreError};
use crate::sequencer::Sequencer;
use crate::store::{Store, StoredEntry};
use aitrail_core::chain::{chain_hash, CHAIN_START};
use aitrail_core::checkpoint::Signer;
use aitrail_core::entry::{claimed_seq, Record};
use aitrail_core::event::{format_time, parse_time};
use aitrail_core::merkle::{leaf_hash, Frontier, Hash};
use aitrail_core::period::Period;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};

const DAY_MICROS: i64 = 86_400_000_000;
/// Days after an expiry during which a refused delete of its object is retried.
const PENDING_DELETE_DAYS: i64 = 30;

/// An archive segment as the store records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Segment {
    pub first_seq: u64,
    /// One past the last seq.
    pub end_seq: u64,
    /// UTC day of the entries' `recorded_at`, `YYYY-MM-DD`.
    pub day: String,
    /// The segment's object key in the archive (the manifest is `key` + `.manifest.json`
    /// minus `.seg.gz`, see [`manifest_key`]).
    pub key: String,
    /// RFC 6962 root of the range's leaves.
    pub root: Hash,
    /// SHA-256 of the segment object's bytes.
    pub sha256: Hash,
    /// Size of the signed checkpoint that covers the range.
    pub checkpoint_size: u64,
    /// When the segment may expire, Unix microseconds.
    pub expires_at: i64,
    pub archived_at: i64,
}

/// What stays of an entry once it left the hot store: enough for proofs and verification.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retired {
    pub seq: u64,
    pub event_id: String,
    pub recorded_at: i64,
    pub leaf_hash: Hash,
    pub chain_hash: Hash,
}

/// A segment expired by policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub first_seq: u64,
    pub end_seq: u64,
    /// Seq of the `audit.retention` event that records it.
    pub retention_seq: u64,
    /// That event's entry bytes: verify checks they hash to the leaf at `retention_seq`.
    pub record: Vec<u8>,
    pub expired_at: i64,
}

/// What a legal hold covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HoldScope {
    Task {
        task_id: String,
    },
    /// A subject's keyed reference (never the raw id).
    Subject {
        subject_ref: String,
    },
    /// Entries that occurred in `[from, to)`, Unix microseconds.
    Time {
        from: i64,
        to: i64,
    },
}

/// A legal hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hold {
    pub id: String,
    pub scope: HoldScope,
    pub reason: String,
    pub created_by: String,
    pub created_at: i64,
    pub released: Option<Release>,
}

/// The release of a hold.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Release {
    pub hold_id: String,
    pub released_by: String,
    pub reason: String,
    pub released_at: i64,
}

impl HoldScope {
    /// The stored form: kind, value, from, to.
    pub fn to_row(&self) -> (&'static str, Option<&str>, Option<i64>, Option<i64>) {
        match self {
            HoldScope::Task { task_id } => ("task", Some(task_id), None, None),
            HoldScope::Subject { subject_ref } => ("subject", Some(subject_ref), None, None),
            HoldScope::Time { from, to } => ("time", None, Some(*from), Some(*to)),
        }
    }

    pub fn from_row(
        kind: &str,
        value: Option<String>,
        from: Option<i64>,
        to: Option<i64>,
    ) -> Result<HoldScope> {
        Ok(match (kind, value, from, to) {
            ("task", Some(task_id), _, _) => HoldScope::Task { task_id },
            ("subject", Some(subject_ref), _, _) => HoldScope::Subject { subject_ref },
            ("time", _, Some(from), Some(to)) => HoldScope::Time { from, to },
            (kind, ..) => return Err(StoreError::Corrupt(format!("hold of kind {kind:?}"))),
        })
    }

    /// Whether the hold covers the entry `record`.
    pub fn covers(&self, record: &Record) -> bool {
        let str_at = |path: &[&str]| {
            let mut v = record.event.get(path[0]);
            for p in &path[1..] {
                v = v.and_then(|v| v.get(p));
            }
            v.and_then(|v| v.as_str())
        };
        match self {
            HoldScope::Task { task_id } => str_at(&["task_id"]) == Some(task_id),
            HoldScope::Subject { subject_ref } => str_at(&["subject", "ref"]) == Some(subject_ref),
            HoldScope::Time { from, to } => str_at(&["occurred_at"])
                .and_then(parse_time)
                .is_some_and(|t| *from <= t && t < *to),
        }
    }
}

impl std::fmt::Display for HoldScope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HoldScope::Task { task_id } => write!(f, "task {task_id}"),
            HoldScope::Subject { subject_ref } => write!(f, "subject {subject_ref}"),
            HoldScope::Time { from, to } => {
                write!(f, "occurred {} to {}", format_time(*from), format_time(*to))
            }
        }
    }
}

/// Retention policy of one log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// Days entries stay in the hot store (default 90).
    pub hot_days: u32,
    /// How long entries are kept (default six years).
    pub keep: Period,
    /// Per event type, instead of `keep`.
    pub types: BTreeMap<String, Period>,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            hot_days: 90,
            keep: Period::default(),
            types: BTreeMap::new(),
        }
    }
}

impl Policy {
    fn keep_of(&self, event_type: &str) -> Period {
        self.types.get(event_type).copied().unwrap_or(self.keep)
    }
}

/// Where segments are kept (the binary adapts `aitrail_anchor::archive`). Errors are text:
/// they are reported, not matched on.
pub trait ArchiveStore: Send + Sync {
    fn name(&self) -> &str;
    /// Writes once, locked until `retain_until` (Unix microseconds) where the store can
    /// lock. The same bytes again is a no-op. Returns the location.
    fn put(&self, key: &str, bytes: &[u8], retain_until: i64) -> Result<String, String>;
    fn get(&self, key: &str) -> Result<Option<Vec<u8>>, String>;
    fn delete(&self, key: &str) -> Result<Deleted, String>;
}

/// What a delete did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Deleted {
    Yes,
    /// There was nothing to delete.
    Absent,
    /// The store's lock still holds; the detail says until when.
    Locked(String),
}

/// The manifest written beside a segment, for anyone checking the archive on their own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub log: String,
    pub day: String,
    pub first_seq: u64,
    pub end_seq: u64,
    /// RFC 6962 root of the leaves `first_seq..end_seq`, hex.
    pub root: String,
    /// chain_hash of `first_seq - 1` (zeros for seq 0), hex.
    pub prev_chain_hash: String,
    /// chain_hash of `end_seq - 1`, hex.
    pub last_chain_hash: String,
    pub segment: String,
    /// SHA-256 of the segment object, hex.
    pub segment_sha256: String,
    /// The signed checkpoint (C2SP signed note) whose tree covers the range.
    pub checkpoint: String,
    pub expires_at: String,
}

pub const MANIFEST_FORMAT: &str = "aitrail-segment/1";

/// Object key of the segment of `log` for `day` starting at `first_seq`.
pub fn segment_key(log: &str, day: &str, first_seq: u64) -> String {
    format!("{log}/segments/{day}-{first_seq}.seg.gz")
}

/// Object key of a segment's manifest.
pub fn manifest_key(segment_key: &str) -> String {
    let stem = segment_key.strip_suffix(".seg.gz").unwrap_or(segment_key);
    format!("{stem}.manifest.json")
}

/// Gzip of the entries' bytes, one per line (RFC 8785 JSON never holds a raw newline).
pub fn encode_segment<'a>(entries: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    // Deterministic output (no timestamp in the gzip header): a retried archive writes the
    // same bytes, which the archive takes as a no-op.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(6));
    for e in entries {
        // Writing into a Vec cannot fail.
        let _ = gz.write_all(e);
        let _ = gz.write_all(b"\n");
    }
    gz.finish().unwrap_or_default()
}

/// The entries' bytes of a segment object.
pub fn decode_segment(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut text = Vec::new();
    flate2::read::GzDecoder::new(bytes)
        .read_to_end(&mut text)
        .map_err(|e| format!("not a gzip segment: {e}"))?;
    if !text.is_empty() && !text.ends_with(b"\n") {
        return Err("the segment's last line is cut short".into());
    }
    Ok(text
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect())
}

/// A segment read back and checked against what the store recorded: the bytes hash to the
/// recorded SHA-256, and every line is the entry of its seq with the recorded leaf hash.
pub struct Opened {
    pub entries: Vec<StoredEntry>,
}

/// Reads segment `seg` of `log` and checks it; `Ok(None)` when the archive does not have it,
/// `Err(detail)` when what it has is not what was archived.
pub fn open_segment(
    store: &dyn Store,
    archive: &dyn ArchiveStore,
    log: &str,
    seg: &Segment,
) -> Result<std::result::Result<Option<Opened>, String>> {
    let bytes = match archive.get(&seg.key) {
        Ok(Some(b)) => b,
        Ok(None) => return Ok(Ok(None)),
        Err(e) => return Ok(Err(format!("reading {}: {e}", seg.key))),
    };
    let retired = store.retired(log, seg.first_seq, seg.end_seq)?;
    Ok(check_segment(&bytes, seg, &retired).map(|entries| Some(Opened { entries })))
}

fn check_segment(
    bytes: &[u8],
    seg: &Segment,
    retired: &[Retired],
) -> std::result::Result<Vec<StoredEntry>, String> {
    let sha: Hash = Sha256::digest(bytes).into();
    if sha != seg.sha256 {
        return Err(format!(
            "{}: the object's SHA-256 is {}, archived as {}",
            seg.key,
            hex::encode(sha),
            hex::encode(seg.sha256)
        ));
    }
    let lines = decode_segment(bytes).map_err(|e| format!("{}: {e}", seg.key))?;
    let want = (seg.end_seq - seg.first_seq) as usize;
    if lines.len() != want || retired.len() != want {
        return Err(format!(
            "{}: {} entries in the object, {} retired rows, {want} archived",
            seg.key,
            lines.len(),
            retired.len()
        ));
    }
    let mut out = Vec::with_capacity(want);
    for (entry, r) in lines.into_iter().zip(retired) {
        if leaf_hash(&entry) != r.leaf_hash || claimed_seq(&entry) != Some(r.seq) {
            return Err(format!(
                "{}: the entry of seq {} differs from the one archived",
                seg.key, r.seq
            ));
        }
        out.push(StoredEntry {
            seq: r.seq,
            event_id: r.event_id.clone(),
            recorded_at: r.recorded_at,
            entry,
            leaf_hash: r.leaf_hash.to_vec(),
            chain_hash: r.chain_hash.to_vec(),
        });
    }
    Ok(out)
}

/// Whether `entry` is the `audit.retention` event that expired `seg` (same range and root).
pub fn records_expiry(entry: &[u8], seg: &Segment) -> bool {
    let Ok(record) = Record::parse(entry) else {
        return false;
    };
    let ev = &record.event;
    let attrs = ev.get("attributes");
    let attr = |k: &str| attrs.and_then(|a| a.get(k));
    ev.get("type").and_then(|t| t.as_str()) == Some("audit.retention")
        && attr("action").and_then(|v| v.as_str()) == Some("expired")
        && attr("first_seq").and_then(|v| v.as_u64()) == Some(seg.first_seq)
        && attr("last_seq").and_then(|v| v.as_u64()) == Some(seg.end_seq - 1)
        && attr("root").and_then(|v| v.as_str()) == Some(hex::encode(seg.root).as_str())
}

/// One past the last retired seq of the log (0 when nothing left the hot store).
pub fn retired_end(segments: &[Segment]) -> u64 {
    segments.iter().map(|s| s.end_seq).max().unwrap_or(0)
}

/// A day to move to the archive.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Move {
    pub log: String,
    pub day: String,
    pub first_seq: u64,
    pub end_seq: u64,
}

/// A segment past its expiry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Due {
    pub log: String,
    pub day: String,
    pub first_seq: u64,
    pub end_seq: u64,
    pub key: String,
    pub expires_at: String,
    /// The segment as recorded (the run needs it; the plan lists the fields above).
    #[serde(skip)]
    segment: Segment,
}

/// What a run would do (a dry run stops here).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    pub moves: Vec<Move>,
    pub expiries: Vec<Due>,
    /// Expired segments whose object is still to be deleted (an earlier delete was refused).
    #[serde(skip)]
    pending_deletes: Vec<(String, Segment)>,
}

impl Plan {
    /// Whether expired segments are still in the archive (an earlier delete was refused).
    pub fn has_pending_deletes(&self) -> bool {
        !self.pending_deletes.is_empty()
    }
}

/// Start of the UTC day holding `micros`.
fn day_start(micros: i64) -> i64 {
    micros.div_euclid(DAY_MICROS) * DAY_MICROS
}

fn day_name(micros: i64) -> String {
    format_time(micros)[..10].to_owned()
}

/// What is due in `log` at `now`: days recorded before the hot window that are not archived
/// yet (oldest first), and archived segments past their expiry.
pub fn plan(store: &dyn Store, log: &str, policy: &Policy, now: i64) -> Result<Plan> {
    let segments = store.segments(log)?;
    let expired: HashMap<u64, i64> = store
        .expiries(log)?
        .iter()
        .map(|e| (e.first_seq, e.expired_at))
        .collect();
    let mut plan = Plan::default();
    for seg in &segments {
        if let Some(at) = expired.get(&seg.first_seq) {
            // A delete the lock refused is retried for a while (a lock outlives its expiry
            // by a day at most), not for ever.
            if *at > now - PENDING_DELETE_DAYS * DAY_MICROS {
                plan.pending_deletes.push((log.to_owned(), seg.clone()));
            }
        } else if seg.expires_at <= now {
            plan.expiries.push(Due {
                log: log.to_owned(),
                day: seg.day.clone(),
                first_seq: seg.first_seq,
                end_seq: seg.end_seq,
                key: seg.key.clone(),
                expires_at: format_time(seg.expires_at),
                segment: seg.clone(),
            });
        }
    }
    let cutoff = day_start(now) - i64::from(policy.hot_days) * DAY_MICROS;
    let size = store.head(log)?.size;
    let mut first = retired_end(&segments);
    while first < size {
        let Some(entry) = store.entry(log, first)? else {
            return Err(StoreError::Corrupt(format!(
                "log {log:?}: seq {first} is neither archived nor in the hot store (run verify)"
            )));
        };
        let start = day_start(entry.recorded_at);
        let end_time = start + DAY_MICROS;
        if end_time > cutoff {
            break;
        }
        let end = first_recorded_at_or_after(store, log, end_time)?.unwrap_or(size);
        plan.moves.push(Move {
            log: log.to_owned(),
            day: day_name(start),
            first_seq: first,
            end_seq: end,
        });
        first = end;
    }
    Ok(plan)
}

/// Seq of the first entry recorded at or after `t`.
fn first_recorded_at_or_after(store: &dyn Store, log: &str, t: i64) -> Result<Option<u64>> {
    let q = crate::query::Query {
        filter: crate::query::Filter {
            from: Some(t),
            time: crate::query::TimeField::Recorded,
            ..Default::default()
        },
        limit: Some(1),
        ..Default::default()
    };
    let mut found = None;
    store.query(log, &q, &mut |row| {
        found = Some(row.entry.seq);
        Ok(false)
    })?;
    Ok(found)
}

/// What a run needs besides the store.
pub struct Context<'a> {
    pub store: &'a dyn Store,
    pub sequencer: &'a Sequencer,
    pub archive: &'a dyn ArchiveStore,
    pub signer: &'a Signer,
    pub policy: &'a Policy,
    pub now: i64,
}

/// What happened to one segment.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Done {
    pub action: &'static str,
    pub log: String,
    pub day: String,
    pub first_seq: u64,
    pub end_seq: u64,
    pub detail: String,
}

/// The outcome of a run: what was done, and what could not be (the run goes on past a
/// segment it cannot handle, and names it here).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RunReport {
    pub done: Vec<Done>,
    pub skipped: Vec<Done>,
}

/// Carries out `plan` for one log; `progress(segments_done)` after each segment.
pub fn run(ctx: &Context<'_>, plan: &Plan, progress: &mut dyn FnMut(u64)) -> Result<RunReport> {
    let mut report = RunReport::default();
    let mut n = 0;
    for m in &plan.moves {
        // A day that cannot be archived stops this log's moves (retired seqs stay a prefix)
        // but not its expiries, nor other logs.
        let segment = match archive_day(ctx, m) {
            Ok(s) => s,
            Err(e) => {
                report.skipped.push(Done {
                    action: "failed",
                    log: m.log.clone(),
                    day: m.day.clone(),
                    first_seq: m.first_seq,
                    end_seq: m.end_seq,
                    detail: e.to_string(),
                });
                break;
            }
        };
        report.done.push(Done {
            action: "archived",
            log: m.log.clone(),
            day: m.day.clone(),
            first_seq: m.first_seq,
            end_seq: m.end_seq,
            detail: format!(
                "{} entries to {} (expires {})",
                m.end_seq - m.first_seq,
                segment.key,
                &format_time(segment.expires_at)[..10]
            ),
        });
        n += 1;
        progress(n);
    }
    for due in &plan.expiries {
        let outcome = expire(ctx, due)?;
        let done = Done {
            action: outcome.0,
            log: due.log.clone(),
            day: due.day.clone(),
            first_seq: due.first_seq,
            end_seq: due.end_seq,
            detail: outcome.1,
        };
        if done.action == "expired" {
            report.done.push(done);
        } else {
            report.skipped.push(done);
        }
        n += 1;
        progress(n);
    }
    for (log, seg) in &plan.pending_deletes {
        // A hold placed since the expiry was recorded still keeps the object.
        let held = match open_segment(ctx.store, ctx.archive, log, seg)? {
            Ok(Some(opened)) => !covering_holds(ctx.store, log, &opened.entries)?.is_empty(),
            _ => false,
        };
        if held {
            continue;
        }
        if let Ok(Deleted::Yes) = ctx.archive.delete(&seg.key) {
            report.done.push(Done {
                action: "deleted",
                log: log.clone(),
                day: seg.day.clone(),
                first_seq: seg.first_seq,
                end_seq: seg.end_seq,
                detail: format!("{} (expired earlier; its lock held then)", seg.key),
            });
        }
    }
    Ok(report)
}

/// Writes the segment of one day, reads it back, checks it, and retires the range.
fn archive_day(ctx: &Context<'_>, m: &Move) -> Result<Segment> {
    let (store, log) = (ctx.store, m.log.as_str());
    let failed = |detail: String| {
        StoreError::Retention(format!(
            "archiving {log} {} (seqs {} to {}): {detail}; the hot rows were kept",
            m.day,
            m.first_seq,
            m.end_seq - 1
        ))
    };
    let mut prev = match m.first_seq {
        0 => CHAIN_START,
        s => match store.retired(log, s - 1, s)?.pop() {
            Some(r) => r.chain_hash,
            None => store
                .entry(log, s - 1)?
                .map(|e| crate::store::to_hash(&e.chain_hash))
                .ok_or_else(|| failed(format!("seq {} is missing", s - 1)))?,
        },
    };
    let prev_chain = prev;
    let mut rows = Vec::with_capacity((m.end_seq - m.first_seq) as usize);
    let mut entries: Vec<Vec<u8>> = Vec::with_capacity(rows.capacity());
    let mut tree = Frontier::new();
    let mut keeps: Vec<Period> = Vec::new();
    let mut bad = None;
    store.scan(log, m.first_seq, &mut |e| {
        if e.seq >= m.end_seq {
            return Ok(false);
        }
        // Archive only what verifies: a tampered entry is not laundered into the archive.
        let leaf = leaf_hash(&e.entry);
        let chain = chain_hash(&prev, &leaf);
        let expected = m.first_seq + rows.len() as u64;
        if e.seq != expected || e.leaf_hash[..] != leaf[..] || e.chain_hash[..] != chain[..] {
            bad = Some(format!(
                "seq {} does not verify (run `aitrail verify`); nothing was archived",
                e.seq
            ));
            return Ok(false);
        }
        let t = entry_type(&e.entry);
        let k = ctx.policy.keep_of(&t);
        if !keeps.contains(&k) {
            keeps.push(k);
        }
        prev = chain;
        tree.push(leaf, |_, _, _| {});
        rows.push(Retired {
            seq: e.seq,
            event_id: e.event_id,
            recorded_at: e.recorded_at,
            leaf_hash: leaf,
            chain_hash: chain,
        });
        entries.push(e.entry);
        Ok(true)
    })?;
    if let Some(b) = bad {
        return Err(failed(b));
    }
    if rows.is_empty() || rows.len() as u64 != m.end_seq - m.first_seq {
        return Err(failed(format!("found {} entries", rows.len())));
    }
    // Kept for the longest period any entry of the day needs, counted from the day's end.
    let day_end = time::OffsetDateTime::from_unix_timestamp_nanos(
        i128::from(day_start(rows[0].recorded_at) + DAY_MICROS) * 1000,
    )
    .map_err(|e| failed(e.to_string()))?;
    let mut expires_at = 0;
    for keep in keeps {
        let until = keep
            .after(day_end)
            .ok_or_else(|| failed(format!("retention {keep} is out of range")))?;
        expires_at = expires_at.max((until.unix_timestamp_nanos() / 1000) as i64);
    }
    let checkpoint = match store
        .checkpoints(log)?
        .into_iter()
        .find(|cp| cp.size >= m.end_seq)
    {
        Some(cp) => cp,
        None => crate::log::checkpoint(store, log, ctx.signer, ctx.now)?.0,
    };
    let bytes = encode_segment(entries.iter().map(Vec::as_slice));
    drop(entries);
    let key = segment_key(log, &m.day, m.first_seq);
    let segment = Segment {
        first_seq: m.first_seq,
        end_seq: m.end_seq,
        day: m.day.clone(),
        key: key.clone(),
        root: tree.root(),
        sha256: Sha256::digest(&bytes).into(),
        checkpoint_size: checkpoint.size,
        expires_at,
        archived_at: ctx.now,
    };
    let manifest = Manifest {
        format: MANIFEST_FORMAT.into(),
        log: log.to_owned(),
        day: m.day.clone(),
        first_seq: m.first_seq,
        end_seq: m.end_seq,
        root: hex::encode(segment.root),
        prev_chain_hash: hex::encode(prev_chain),
        last_chain_hash: hex::encode(prev),
        segment: key.clone(),
        segment_sha256: hex::encode(segment.sha256),
        checkpoint: checkpoint.note,
        expires_at: format_time(expires_at),
    };
    let manifest_bytes = serde_json::to_vec_pretty(&manifest)
        .map_err(|e| failed(format!("writing the manifest: {e}")))?;
    // A lock cannot end in the past: a day already past its retention when archived (a
    // policy shorter than the hot window) is locked for a day, then expires on a later run.
    let lock_until = expires_at.max(ctx.now + DAY_MICROS);
    ctx.archive
        .put(&key, &bytes, lock_until)
        .map_err(|e| failed(format!("writing to {}: {e}", ctx.archive.name())))?;
    ctx.archive
        .put(&manifest_key(&key), &manifest_bytes, lock_until)
        .map_err(|e| failed(format!("writing to {}: {e}", ctx.archive.name())))?;
    // Read back before anything is dropped: what the archive returns must be what was sent.
    let back = ctx
        .archive
        .get(&key)
        .map_err(|e| failed(format!("reading back from {}: {e}", ctx.archive.name())))?
        .ok_or_else(|| {
            failed(format!(
                "{} does not have {key} after writing it",
                ctx.archive.name()
            ))
        })?;
    check_segment(&back, &segment, &rows).map_err(failed)?;
    // The step first: a run stopped between the two finds it next time and reuses it.
    record(ctx, log, "archived", &segment)?;
    store.retire(log, &segment, &rows)?;
    Ok(segment)
}

/// The event type in entry bytes, read without parsing the whole record.
fn entry_type(entry: &[u8]) -> String {
    #[derive(Deserialize)]
    struct R<'a> {
        #[serde(borrow)]
        event: E<'a>,
    }
    #[derive(Deserialize)]
    struct E<'a> {
        #[serde(rename = "type", borrow)]
        kind: std::borrow::Cow<'a, str>,
    }
    serde_json::from_slice::<R<'_>>(entry)
        .map(|r| r.event.kind.into_owned())
        .unwrap_or_default()
}

/// Expires one segment unless a hold covers it: (`expired`|`held`|`missing`|`changed`|`locked`, detail).
/// Ids of the active holds covering any of `entries`, read fresh (a hold placed a moment ago
/// counts).
fn covering_holds(store: &dyn Store, log: &str, entries: &[StoredEntry]) -> Result<Vec<String>> {
    let holds: Vec<Hold> = store
        .holds(log)?
        .into_iter()
        .filter(|h| h.released.is_none())
        .collect();
    let mut covering: Vec<String> = Vec::new();
    if holds.is_empty() {
        return Ok(covering);
    }
    for e in entries {
        let record = Record::parse(&e.entry)?;
        for h in &holds {
            if h.scope.covers(&record) && !covering.contains(&h.id) {
                covering.push(h.id.clone());
            }
        }
    }
    Ok(covering)
}

fn expire(ctx: &Context<'_>, due: &Due) -> Result<(&'static str, String)> {
    let store = ctx.store;
    let seg = &due.segment;
    let opened = match open_segment(store, ctx.archive, &due.log, seg)? {
        Ok(Some(o)) => o,
        Ok(None) => {
            return Ok((
                "missing",
                format!(
                    "{} is not in {}; not expired (verify reports it missing)",
                    seg.key,
                    ctx.archive.name()
                ),
            ))
        }
        Err(e) => return Ok(("changed", format!("{e}; not expired"))),
    };
    let covering = covering_holds(store, &due.log, &opened.entries)?;
    if !covering.is_empty() {
        return Ok((
            "held",
            format!(
                "kept: legal hold {} covers entries in it",
                covering.join(", ")
            ),
        ));
    }
    let (receipt, recorded) = record(ctx, &due.log, "expired", seg)?;
    store.add_expiry(
        &due.log,
        &Expiry {
            first_seq: seg.first_seq,
            end_seq: seg.end_seq,
            retention_seq: receipt.seq,
            record: recorded,
            expired_at: ctx.now,
        },
    )?;
    Ok(match ctx.archive.delete(&seg.key) {
        Ok(Deleted::Locked(until)) => (
            "expired",
            format!(
                "recorded (seq {}); the archive still locks {}: {until}; deleted on a later run",
                receipt.seq, seg.key
            ),
        ),
        Ok(_) => (
            "expired",
            format!("{} deleted; recorded at seq {}", seg.key, receipt.seq),
        ),
        Err(e) => (
            "expired",
            format!(
                "recorded (seq {}); deleting {} failed: {e}; retried on a later run",
                receipt.seq, seg.key
            ),
        ),
    })
}

/// Appends the `audit.retention` event of `action` (archived, expired) on `seg`: its seq
/// range and Merkle root, where it is kept, and its expiry. Returns its receipt and stored
/// bytes.
///
/// Its id follows from the action and the segment under the log's signing key, so a run that
/// stopped after recording it (before the segment was retired, or before the expiry row was
/// written) finds it on the next run, even once it was archived itself, and reuses it
/// instead of recording the same step twice. Clients cannot compute the id in advance (they
/// do not hold the key); an entry under it that is not this step is refused anyway.
fn record(
    ctx: &Context<'_>,
    log: &str,
    action: &str,
    seg: &Segment,
) -> Result<(aitrail_core::entry::Receipt, Vec<u8>)> {
    let id = step_id(ctx.signer, log, action, seg)?;
    let reader = WithArchive {
        store: ctx.store,
        archive: ctx.archive,
    };
    if let Some(e) = reader.entry_by_id(log, &id.to_string())? {
        if !is_step(&e.entry, action, seg) {
            return Err(StoreError::Retention(format!(
                "seq {} holds event {id}, the id of the {action} step of seqs {} to {}, but is \
                 not that step; nothing was done",
                e.seq,
                seg.first_seq,
                seg.end_seq - 1
            )));
        }
        let receipt = aitrail_core::entry::Receipt {
            id,
            seq: e.seq,
            leaf_hash: e.leaf(),
            recorded_at: format_time(e.recorded_at),
        };
        return Ok((receipt, e.entry));
    }
    let receipt = crate::audit::append(
        ctx.sequencer,
        log,
        serde_json::json!({
            "id": id,
            "type": "audit.retention",
            "task_id": AUDIT_TASK,
            "occurred_at": format_time(ctx.now),
            "actor": {"kind": "system", "id": "aitrail-retention"},
            "attributes": {
                "action": action,
                "first_seq": seg.first_seq,
                "last_seq": seg.end_seq - 1,
                "entries": seg.end_seq - seg.first_seq,
                "root": hex::encode(seg.root),
                "day": seg.day,
                "segment": seg.key,
                "archive": ctx.archive.name(),
                "expires_at": format_time(seg.expires_at),
            },
        }),
    )?;
    let recorded = ctx.store.entry(log, receipt.seq)?.ok_or_else(|| {
        StoreError::NotFound(format!("the audit.retention event at seq {}", receipt.seq))
    })?;
    Ok((receipt, recorded.entry))
}

/// Whether entry bytes are the `audit.retention` event of `action` on `seg`.
fn is_step(entry: &[u8], action: &str, seg: &Segment) -> bool {
    let Ok(r) = Record::parse(entry) else {
        return false;
    };
    let a = r.event.get("attributes");
    let field = |k: &str| a.and_then(|a| a.get(k));
    r.event.get("type").and_then(|t| t.as_str()) == Some("audit.retention")
        && field("action").and_then(|v| v.as_str()) == Some(action)
        && field("first_seq").and_then(|v| v.as_u64()) == Some(seg.first_seq)
        && field("last_seq").and_then(|v| v.as_u64()) == Some(seg.end_seq - 1)
        && field("root").and_then(|v| v.as_str()) == Some(hex::encode(seg.root).as_str())
}

/// The event id of a retention step: UUIDv8 (RFC 9562, custom) of the first 16 bytes of the
/// SHA-256 of the log's signature over the step (log, action, seq range, root). Ed25519
/// signatures are deterministic, so the id is the same on every run, and no one without
/// the signing key can compute it.
fn step_id(signer: &Signer, log: &str, action: &str, seg: &Segment) -> Result<uuid::Uuid> {
    let body = format!(
        "aitrail retention step\n{log}\n{action}\n{}\n{}\n{}\n",
        seg.first_seq,
        seg.end_seq,
        hex::encode(seg.root)
    );
    let note = signer.sign_note(&body)?;
    let digest = Sha256::digest(note.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    Ok(uuid::Builder::from_custom_bytes(bytes).into_uuid())
}

/// Archived entries (segments not expired) that match `filter`, in seq order; `f` returns
/// false to stop. Segments the archive does not have, or that fail their check, are errors
/// naming them.
pub fn archived_rows(
    store: &dyn Store,
    archive: &dyn ArchiveStore,
    log: &str,
    filter: &crate::query::Filter,
    f: &mut dyn FnMut(crate::query::QueryRow) -> Result<bool>,
) -> Result<()> {
    let expired: std::collections::HashSet<u64> =
        store.expiries(log)?.iter().map(|e| e.first_seq).collect();
    for seg in store.segments(log)? {
        if expired.contains(&seg.first_seq) || !may_match(&seg, filter) {
            continue;
        }
        let opened = match open_segment(store, archive, log, &seg)? {
            Ok(Some(o)) => o,
            Ok(None) => {
                return Err(StoreError::MissingArchive(format!(
                    "archive segment {} (seqs {} to {}) is not in {}; `aitrail verify` reports it",
                    seg.key,
                    seg.first_seq,
                    seg.end_seq - 1,
                    archive.name()
                )))
            }
            Err(e) => return Err(StoreError::Corrupt(e)),
        };
        for entry in opened.entries {
            let record = Record::parse(&entry.entry)?;
            let Some(occurred_at) = filter_match(filter, &record, entry.recorded_at) else {
                continue;
            };
            if !f(crate::query::QueryRow { entry, occurred_at })? {
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Whether a segment can hold entries recorded in the filter's range (occurred time can be
/// anything, so only a recorded-time filter skips segments).
fn may_match(seg: &Segment, filter: &crate::query::Filter) -> bool {
    if filter.time != crate::query::TimeField::Recorded {
        return true;
    }
    let Some(start) = parse_time(&format!("{}T00:00:00Z", seg.day)) else {
        return true;
    };
    filter.from.is_none_or(|f| f < start + DAY_MICROS) && filter.to.is_none_or(|t| t > start)
}

/// The entry's occurred_at when `record` matches `filter`.
fn filter_match(filter: &crate::query::Filter, record: &Record, recorded_at: i64) -> Option<i64> {
    let ev = &record.event;
    let s = |k: &str| ev.get(k).and_then(|v| v.as_str());
    let index = aitrail_core::event::IndexFields::of(ev);
    let eq =
        |want: &Option<String>, have: Option<&str>| want.as_deref().is_none_or(|w| have == Some(w));
    let occurred_at = s("occurred_at").and_then(parse_time)?;
    let ok = eq(&filter.task_id, s("task_id"))
        && eq(&filter.actor_id, index.actor_id.as_deref())
        && (filter.types.is_empty() || filter.types.iter().any(|t| Some(t.as_str()) == s("type")))
        && eq(&filter.model_name, index.model_name.as_deref())
        && eq(&filter.model_version, index.model_version.as_deref())
        && eq(&filter.prompt_version, index.prompt_version.as_deref())
        && eq(&filter.decision, index.decision.as_deref())
        && eq(&filter.subject_ref, index.subject_ref.as_deref());
    let t = match filter.time {
        crate::query::TimeField::Occurred => occurred_at,
        crate::query::TimeField::Recorded => recorded_at,
    };
    let in_range = filter.from.is_none_or(|f| t >= f) && filter.to.is_none_or(|to| t < to);
    (ok && in_range).then_some(occurred_at)
}

/// The entry of `event_id` read back from its archive segment, when it left the hot store
/// and its segment has not expired. Errors name a segment that is missing or altered.
pub fn archived_entry(
    store: &dyn Store,
    archive: &dyn ArchiveStore,
    log: &str,
    event_id: &str,
) -> Result<Option<StoredEntry>> {
    let Some(retired) = store.retired_event(log, event_id)? else {
        return Ok(None);
    };
    let segments = store.segments(log)?;
    let Some(seg) = segments
        .iter()
        .find(|s| s.first_seq <= retired.seq && retired.seq < s.end_seq)
    else {
        return Ok(None);
    };
    if store
        .expiries(log)?
        .iter()
        .any(|e| e.first_seq == seg.first_seq)
    {
        return Err(StoreError::NotFound(format!(
            "event {event_id} (seq {}): its segment {} expired by policy; only its hashes remain",
            retired.seq, seg.key
        )));
    }
    match open_segment(store, archive, log, seg)? {
        Ok(Some(opened)) => Ok(opened.entries.into_iter().find(|e| e.seq == retired.seq)),
        Ok(None) => Err(StoreError::MissingArchive(format!(
            "archive segment {} (seqs {} to {}) is not in {}; `aitrail verify` reports it",
            seg.key,
            seg.first_seq,
            seg.end_seq - 1,
            archive.name()
        ))),
        Err(e) => Err(StoreError::Corrupt(e)),
    }
}

/// A store seen together with its archive: searches, timelines and exports through it reach
/// archived entries too (`--include-archive`), and an archived event can be read and proven.
/// Everything else is the store's own.
///
/// The archived matches of a query are read from their segments (each read whole and checked
/// against the recorded hashes first); at most `limit` of them, the first in the query's
/// order, are kept in memory, sorted, and merged with the hot rows in that order.
pub struct WithArchive<'a> {
    pub store: &'a dyn Store,
    pub archive: &'a dyn ArchiveStore,
}

/// The sort key of a row in a query's order.
fn sort_key(q: &crate::query::Query, row: &crate::query::QueryRow) -> (i64, u64) {
    match q.filter.time {
        crate::query::TimeField::Occurred => (row.occurred_at, row.entry.seq),
        crate::query::TimeField::Recorded => (0, row.entry.seq),
    }
}

/// An archived match ranked in the query's order: the greatest is the one given last.
struct Ranked {
    key: (i64, u64),
    desc: bool,
    row: crate::query::QueryRow,
}

impl Ord for Ranked {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let by_key = self.key.cmp(&other.key);
        if self.desc {
            by_key.reverse()
        } else {
            by_key
        }
    }
}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Ranked {}

impl Store for WithArchive<'_> {
    fn query(
        &self,
        log: &str,
        q: &crate::query::Query,
        f: &mut dyn FnMut(crate::query::QueryRow) -> Result<bool>,
    ) -> Result<()> {
        use crate::query::Order;
        let desc = q.order == Order::Desc;
        let after = |key: (i64, u64)| match q.after {
            None => true,
            Some(c) if desc => key < (c.at, c.seq),
            Some(c) => key > (c.at, c.seq),
        };
        let limit = q.limit.unwrap_or(usize::MAX);
        // No more than `limit` archived rows can be given: only the first ones are kept (the
        // heap's greatest, the one given last, goes whenever there are more).
        let mut kept = std::collections::BinaryHeap::new();
        archived_rows(self.store, self.archive, log, &q.filter, &mut |row| {
            let key = sort_key(q, &row);
            if after(key) {
                kept.push(Ranked { key, desc, row });
                if kept.len() > limit.max(1) {
                    kept.pop();
                }
            }
            Ok(true)
        })?;
        // Popped from the end: the first to give last.
        let mut archived: Vec<crate::query::QueryRow> = kept
            .into_sorted_vec()
            .into_iter()
            .rev()
            .map(|r| r.row)
            .collect();
        let end = retired_end(&self.store.segments(log)?);
        let mut given = 0usize;
        let mut stopped = false;
        let mut give = |row: crate::query::QueryRow, stopped: &mut bool| -> Result<bool> {
            given += 1;
            let more = f(row)? && given < limit;
            *stopped = !more;
            Ok(more)
        };
        let before = |a: (i64, u64), b: (i64, u64)| if desc { a > b } else { a < b };
        // On PostgreSQL a retired day's partition can outlive its retirement (another log of
        // that day not archived yet, or a day under two days old): the archive's copy is the
        // one given, so the hot query starts at `end`.
        let hot = crate::query::Query {
            from_seq: Some(end),
            ..q.clone()
        };
        self.store.query(log, &hot, &mut |row| {
            let key = sort_key(q, &row);
            while archived.last().is_some_and(|a| before(sort_key(q, a), key)) {
                let a = archived.pop().unwrap_or_else(|| unreachable!());
                if !give(a, &mut stopped)? {
                    return Ok(false);
                }
            }
            give(row, &mut stopped)
        })?;
        while !stopped {
            let Some(a) = archived.pop() else { break };
            give(a, &mut stopped)?;
        }
        Ok(())
    }

    fn entry_by_id(&self, log: &str, event_id: &str) -> Result<Option<StoredEntry>> {
        match self.store.entry_by_id(log, event_id)? {
            Some(e) => Ok(Some(e)),
            None => archived_entry(self.store, self.archive, log, event_id),
        }
    }

    fn append(
        &self,
        log: &str,
        f: &mut dyn FnMut(&mut dyn crate::store::AppendTx) -> Result<()>,
    ) -> Result<()> {
        self.store.append(log, f)
    }
    fn head(&self, log: &str) -> Result<crate::store::Head> {
        self.store.head(log)
    }
    fn logs(&self) -> Result<Vec<String>> {
        self.store.logs()
    }
    fn entry(&self, log: &str, seq: u64) -> Result<Option<StoredEntry>> {
        self.store.entry(log, seq)
    }
    fn scan(
        &self,
        log: &str,
        from: u64,
        f: &mut dyn FnMut(StoredEntry) -> Result<bool>,
    ) -> Result<()> {
        self.store.scan(log, from, f)
    }
    fn read_nodes(
        &self,
        log: &str,
        f: &mut dyn FnMut(&mut dyn crate::store::NodeRows) -> Result<()>,
    ) -> Result<()> {
        self.store.read_nodes(log, f)
    }
    fn nodes(&self, log: &str) -> Result<Vec<crate::store::Node>> {
        self.store.nodes(log)
    }
    fn add_checkpoint(
        &self,
        log: &str,
        size: u64,
        root: &Hash,
        note: &str,
        created_at: i64,
    ) -> Result<crate::store::StoredCheckpoint> {
        self.store.add_checkpoint(log, size, root, note, created_at)
    }
    fn subject_keys(&self, log: &str, refs: &[String]) -> Result<Vec<crate::keys::StoredKey>> {
        self.store.subject_keys(log, refs)
    }
    fn add_subject_keys(&self, log: &str, keys: &[crate::keys::StoredKey]) -> Result<()> {
        self.store.add_subject_keys(log, keys)
    }
    fn erase_subject_key(&self, log: &str, subject_ref: &str) -> Result<crate::keys::Shredded> {
        self.store.erase_subject_key(log, subject_ref)
    }
    fn checkpoints(&self, log: &str) -> Result<Vec<crate::store::StoredCheckpoint>> {
        self.store.checkpoints(log)
    }
    fn latest_checkpoint(&self, log: &str) -> Result<Option<crate::store::StoredCheckpoint>> {
        self.store.latest_checkpoint(log)
    }
    fn segments(&self, log: &str) -> Result<Vec<Segment>> {
        self.store.segments(log)
    }
    fn retire(&self, log: &str, segment: &Segment, rows: &[Retired]) -> Result<()> {
        self.store.retire(log, segment, rows)
    }
    fn retired(&self, log: &str, from: u64, to: u64) -> Result<Vec<Retired>> {
        self.store.retired(log, from, to)
    }
    fn retired_event(&self, log: &str, event_id: &str) -> Result<Option<Retired>> {
        self.store.retired_event(log, event_id)
    }
    fn expiries(&self, log: &str) -> Result<Vec<Expiry>> {
        self.store.expiries(log)
    }
    fn add_expiry(&self, log: &str, expiry: &Expiry) -> Result<()> {
        self.store.add_expiry(log, expiry)
    }
    fn holds(&self, log: &str) -> Result<Vec<Hold>> {
        self.store.holds(log)
    }
    fn add_hold(&self, log: &str, hold: &Hold) -> Result<()> {
        self.store.add_hold(log, hold)
    }
    fn release_hold(&self, log: &str, release: &Release) -> Result<()> {
        self.store.release_hold(log, release)
    }
    fn retention_lock(&self, waiting: &mut dyn FnMut()) -> Result<Box<dyn Send>> {
        self.store.retention_lock(waiting)
    }
}

/// Places a legal hold and records it in the trail (`audit.retention`, action `hold_added`).
/// `reason` is stored as given: callers pass free text through the tenant's PII policy first.
pub fn place_hold(
    sequencer: &Sequencer,
    log: &str,
    reader: &crate::audit::Reader,
    scope: HoldScope,
    reason: &str,
    now: i64,
) -> Result<Hold> {
    if reason.trim().is_empty() {
        return Err(StoreError::Refused(
            "a hold needs a reason (the matter or request it serves)".into(),
        ));
    }
    if let HoldScope::Time { from, to } = scope {
        if from >= to {
            return Err(StoreError::Refused(format!(
                "a hold's range must start before it ends ({} is not before {})",
                format_time(from),
                format_time(to)
            )));
        }
    }
    let hold = Hold {
        id: format!("hold-{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        scope,
        reason: reason.to_owned(),
        created_by: reader.id.clone(),
        created_at: now,
        released: None,
    };
    sequencer.store().add_hold(log, &hold)?;
    crate::audit::record_retention(
        sequencer,
        log,
        reader,
        serde_json::json!({"action": "hold_added", "hold": hold.id, "scope": hold.scope, "reason": hold.reason}),
    )?;
    Ok(hold)
}

/// Releases a hold and records it (`audit.retention`, action `hold_released`); the hold as
/// it now stands.
pub fn release_hold(
    sequencer: &Sequencer,
    log: &str,
    reader: &crate::audit::Reader,
    id: &str,
    reason: &str,
    now: i64,
) -> Result<Hold> {
    let store = sequencer.store();
    let Some(mut hold) = store.holds(log)?.into_iter().find(|h| h.id == id) else {
        return Err(StoreError::NotFound(format!("hold {id:?} in log {log:?}")));
    };
    if reason.trim().is_empty() {
        return Err(StoreError::Refused("a release needs a reason".into()));
    }
    let release = Release {
        hold_id: id.to_owned(),
        released_by: reader.id.clone(),
        reason: reason.to_owned(),
        released_at: now,
    };
    store.release_hold(log, &release)?;
    crate::audit::record_retention(
        sequencer,
        log,
        reader,
        serde_json::json!({"action": "hold_released", "hold": id, "scope": hold.scope, "reason": reason}),
    )?;
    hold.released = Some(release);
    Ok(hold)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive that is never reached: recording a step does not read it.
    struct Unreached;

    impl ArchiveStore for Unreached {
        fn name(&self) -> &str {
            "unreached"
        }
        fn put(&self, _: &str, _: &[u8], _: i64) -> Result<String, String> {
            Err("not here".into())
        }
        fn get(&self, _: &str) -> Result<Option<Vec<u8>>, String> {
            Err("not here".into())
        }
        fn delete(&self, _: &str) -> Result<Deleted, String> {
            Err("not here".into())
        }
    }

    #[test]
    fn a_step_recorded_again_is_the_same_event() {
        let dir = tempfile::tempdir().unwrap();
        let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(
            crate::sqlite::SqliteStore::open(&dir.path().join("trail.db")).unwrap(),
        );
        let sequencer = Sequencer::new(store.clone());
        let signer = Signer::from_seed("test", [7; 32]).unwrap();
        let ctx = Context {
            store: store.as_ref(),
            sequencer: &sequencer,
            archive: &Unreached,
            signer: &signer,
            policy: &Policy::default(),
            now: parse_time("2026-01-01T00:00:00Z").unwrap(),
        };
        let seg = Segment {
            first_seq: 0,
            end_seq: 3,
            day: "2019-03-01".into(),
            key: "default/segments/2019-03-01-0.seg.gz".into(),
            root: [1; 32],
            sha256: [2; 32],
            checkpoint_size: 3,
            expires_at: 0,
            archived_at: 0,
        };
        // As after a crash between the event and the expiry row: the next run records the
        // step again and gets the first event back.
        let first = super::record(&ctx, "default", "expired", &seg).unwrap();
        let again = super::record(&ctx, "default", "expired", &seg).unwrap();
        assert_eq!(again, first);
        assert_eq!(store.head("default").unwrap().size, 1);
        let other = Segment {
            end_seq: 4,
            ..seg.clone()
        };
        let next = super::record(&ctx, "default", "expired", &other).unwrap();
        assert_eq!(next.0.seq, 1, "another range is another step");
        let archived = super::record(&ctx, "default", "archived", &seg).unwrap();
        assert_eq!(archived.0.seq, 2, "another action is another step");

        // Another key gives other ids; an event squatting on a step's id is not the step.
        let other_key = Signer::from_seed("test", [8; 32]).unwrap();
        let squat = step_id(&other_key, "default", "expired", &seg).unwrap();
        assert_ne!(squat, first.0.id);
        let id = step_id(&signer, "default", "archived", &other).unwrap();
        let event = crate::audit::append(
            &sequencer,
            "default",
            serde_json::json!({"id": id, "type": "task.created", "task_id": "t",
                "occurred_at": "2026-01-01T00:00:00Z"}),
        )
        .unwrap();
        let err = super::record(&ctx, "default", "archived", &other).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("seq {} holds event {id}", event.seq)),
            "{err}"
        );
        sequencer.shutdown();
    }

    fn record(event: serde_json::Value) -> Record {
        Record {
            seq: 0,
            log: "default".into(),
            recorded_at: "2020-01-01T00:00:00Z".into(),
            event: event.as_object().unwrap().clone(),
        }
    }

    #[test]
    fn holds_cover_their_task_subject_or_time() {
        let r = record(serde_json::json!({"type": "t.x", "task_id": "t1",
            "occurred_at": "2020-06-01T12:00:00Z", "subject": {"kind": "p", "ref": "abc"}}));
        let task = |t: &str| HoldScope::Task { task_id: t.into() };
        let subject = |s: &str| HoldScope::Subject {
            subject_ref: s.into(),
        };
        let time = |f: &str, t: &str| HoldScope::Time {
            from: parse_time(f).unwrap(),
            to: parse_time(t).unwrap(),
        };
        assert!(task("t1").covers(&r) && !task("t2").covers(&r));
        assert!(subject("abc").covers(&r) && !subject("abd").covers(&r));
        assert!(time("2020-06-01T00:00:00Z", "2020-06-02T00:00:00Z").covers(&r));
        assert!(!time("2020-06-01T12:00:01Z", "2020-06-02T00:00:00Z").covers(&r));
        assert!(
            !time("2020-05-01T00:00:00Z", "2020-06-01T12:00:00Z").covers(&r),
            "end exclusive"
        );
        for s in [
            task("t1"),
            subject("abc"),
            time("2020-01-01T00:00:00Z", "2021-01-01T00:00:00Z"),
        ] {
            let (kind, value, from, to) = s.to_row();
            let back = HoldScope::from_row(kind, value.map(str::to_owned), from, to).unwrap();
            assert_eq!(back, s);
        }
    }

    #[test]
    fn segments_round_trip_and_refuse_a_cut_tail() {
        let entries: Vec<&[u8]> = vec![br#"{"seq":0}"#, br#"{"seq":1}"#];
        let bytes = encode_segment(entries.iter().copied());
        assert_eq!(
            encode_segment(entries.iter().copied()),
            bytes,
            "deterministic"
        );
        assert_eq!(
            decode_segment(&bytes).unwrap(),
            vec![b"{\"seq\":0}".to_vec(), b"{\"seq\":1}".to_vec()]
        );
        assert!(decode_segment(&bytes[..bytes.len() - 4]).is_err());
        assert_eq!(
            manifest_key("a/segments/2020-01-01-0.seg.gz"),
            "a/segments/2020-01-01-0.manifest.json"
        );
    }
}
