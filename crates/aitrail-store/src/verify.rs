//! Verification of a whole log: recompute every leaf, the chain and the tree, check every
//! checkpoint's signature and root, and name the first entry affected by any tampering.
//!
//! After a problem the walk resynchronises on the stored values, so each independent change
//! is reported once instead of cascading down the rest of the log.

use crate::error::Result;
use crate::nodes::is_stored;
use crate::retention::{ArchiveStore, Expiry, Retired};
use crate::store::{to_hash, Store, StoredEntry};
use aitrail_core::chain::{chain_hash, CHAIN_START};
use aitrail_core::checkpoint::{Checkpoint, Verifier};
use aitrail_core::entry::claimed_seq;
use aitrail_core::merkle::{leaf_hash, Frontier, Hash};
use serde::Serialize;
use std::collections::HashMap;

/// What kind of problem was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    /// Entry bytes or their hashes were altered.
    ChangedEntry,
    /// Entries are missing (deleted, or deleted and the rest renumbered).
    MissingSeq,
    /// An entry was inserted that the log never appended.
    ExtraEntry,
    /// Entries are present but in another order.
    ReorderedEntries,
    /// A checkpoint covers entries that are no longer there.
    Truncated,
    /// A checkpoint's signature does not verify with the log's key, or its row was altered.
    BadCheckpointSignature,
    /// The recomputed tree disagrees with a signed checkpoint (entries rewritten and rehashed).
    CheckpointMismatch,
    /// A stored Merkle node (used for proofs) disagrees with the recomputed tree.
    ChangedNode,
    /// The log does not extend a checkpoint kept by an anchor (anchored history rewritten
    /// or truncated, even with the signing key); the detail names the anchor and checkpoint.
    /// Found by the anchor check above this module (the `aitrail` binary).
    AnchorMismatch,
    /// What an anchor holds is no valid evidence: a note the log's key did not sign, or a
    /// timestamp token that does not verify; the detail names the anchor and object.
    BadAnchor,
    /// An archive segment the store recorded is not in the archive (deleted before any
    /// recorded expiry); the detail names the segment and its seq range.
    MissingArchive,
    /// An archive segment's bytes are not what was archived.
    ChangedArchive,
}

/// One problem, located.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub kind: ProblemKind,
    pub seq: Option<u64>,
    pub event_id: Option<String>,
    pub detail: String,
}

/// The result of verifying one log.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub ok: bool,
    pub log: String,
    pub entries: u64,
    pub bytes: u64,
    pub checkpoints: u64,
    pub root: String,
    /// Entries read back from archive segments and checked.
    pub archived: u64,
    /// Entries expired by policy: only their recorded hashes remain, and still verify.
    pub expired: u64,
    /// Archived entries not read back (no archive was given): their recorded hashes verify.
    pub unchecked: u64,
    pub problems: Vec<Problem>,
}

/// Rows handed from the reading thread to the hashing thread at a time.
const CHUNK: usize = 1024;

/// What the reading thread hands the hashing thread.
enum Batch {
    /// Stored entries (hot rows, or a segment read back from the archive).
    Rows(Vec<StoredEntry>),
    /// Only the hashes of entries that left the hot store.
    Leaves(Vec<Retired>),
}

/// Verifies `log` (archived entries by their recorded hashes only, see `verify_archived`);
/// `progress(entries_read)` is called every `CHUNK` entries.
pub fn verify_log(
    store: &dyn Store,
    log: &str,
    verifier: Option<&Verifier>,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    verify_archived(store, log, verifier, None, progress)
}

/// Verifies `log`, reading archived segments back from `archive` when given;
/// `progress(entries_read)` is called every `CHUNK` entries.
///
/// Two threads share the work: this one reads rows from the store, a second one hashes and
/// walks them, so reading and hashing overlap.
pub fn verify_archived(
    store: &dyn Store,
    log: &str,
    verifier: Option<&Verifier>,
    archive: Option<&dyn ArchiveStore>,
    progress: &mut dyn FnMut(u64),
) -> Result<Report> {
    let mut walk = Walk::new(store, log, verifier)?;
    let (tx, rx) = std::sync::mpsc::sync_channel::<Batch>(8);
    std::thread::scope(|scope| {
        let worker = scope.spawn(move || {
            let mut pending: Option<StoredEntry> = None;
            for batch in rx {
                match batch {
                    Batch::Rows(rows) => {
                        for row in rows {
                            if let Some(prev) = pending.take() {
                                walk.row(prev, Some(&row));
                            }
                            pending = Some(row);
                        }
                    }
                    Batch::Leaves(leaves) => {
                        if let Some(prev) = pending.take() {
                            walk.row(prev, None);
                        }
                        for r in &leaves {
                            walk.leaf(r);
                        }
                    }
                }
            }
            if let Some(last) = pending.take() {
                walk.row(last, None);
            }
            walk
        });
        // The worker only stops early by panicking, which join reports below.
        let mut read = 0u64;
        let archived = read_archived(store, log, archive, &mut |batch| {
            read += match &batch {
                Batch::Rows(r) => r.len(),
                Batch::Leaves(l) => l.len(),
            } as u64;
            progress(read);
            let _ = tx.send(batch);
        });
        let mut chunk = Vec::with_capacity(CHUNK);
        let from = archived.as_ref().map_or(0, |a| a.end);
        let scanned = match &archived {
            Ok(_) => store.scan(log, from, &mut |row| {
                chunk.push(row);
                if chunk.len() == CHUNK {
                    read += CHUNK as u64;
                    progress(read);
                    let _ = tx.send(Batch::Rows(std::mem::replace(
                        &mut chunk,
                        Vec::with_capacity(CHUNK),
                    )));
                }
                Ok(true)
            }),
            Err(_) => Ok(()),
        };
        read += chunk.len() as u64;
        let _ = tx.send(Batch::Rows(chunk));
        drop(tx);
        let walk = worker
            .join()
            .map_err(|_| crate::StoreError::Corrupt("the verify worker panicked".into()))?;
        let archived = archived?;
        scanned?;
        progress(read);
        let mut report = walk.finish();
        report.archived = archived.archived;
        report.expired = archived.expired;
        report.unchecked = archived.unchecked;
        report.problems.extend(archived.problems);
        report.problems.sort_by_key(|p| p.seq.unwrap_or(u64::MAX));
        report.ok = report.problems.is_empty();
        Ok(report)
    })
}

/// What the walk over the retired prefix found before the hot rows.
struct ArchivedPart {
    /// One past the last retired seq: the hot scan starts here.
    end: u64,
    archived: u64,
    expired: u64,
    unchecked: u64,
    problems: Vec<Problem>,
}

/// Sends the retired prefix of the log to the walk, segment by segment: a segment read back
/// from the archive as rows; an expired one, or one that cannot be read, as its recorded
/// hashes (so the rest of the walk goes on), with a problem when it should have been there.
fn read_archived(
    store: &dyn Store,
    log: &str,
    archive: Option<&dyn ArchiveStore>,
    send: &mut dyn FnMut(Batch),
) -> Result<ArchivedPart> {
    let segments = store.segments(log)?;
    let expiries: HashMap<u64, Expiry> = store
        .expiries(log)?
        .into_iter()
        .map(|e| (e.first_seq, e))
        .collect();
    let mut part = ArchivedPart {
        end: crate::retention::retired_end(&segments),
        archived: 0,
        expired: 0,
        unchecked: 0,
        problems: Vec::new(),
    };
    for seg in &segments {
        let n = seg.end_seq - seg.first_seq;
        let range = format!("seqs {} to {}", seg.first_seq, seg.end_seq - 1);
        let problem = |kind, detail: String| Problem {
            kind,
            seq: Some(seg.first_seq),
            event_id: None,
            detail,
        };
        if let Some(e) = expiries.get(&seg.first_seq) {
            let leaves = store.retired(log, seg.first_seq, seg.end_seq)?;
            let mut tree = Frontier::new();
            for r in &leaves {
                tree.push(r.leaf_hash, |_, _, _| {});
            }
            if tree.root() != seg.root {
                part.problems.push(problem(ProblemKind::ChangedArchive, format!(
                    "{range} (expired by policy, audit.retention at seq {}): their recorded hashes do not give the segment's Merkle root",
                    e.retention_seq
                )));
            }
            if !expiry_recorded(store, log, e, seg)? {
                part.problems.push(problem(ProblemKind::ChangedArchive, format!(
                    "{range}: recorded as expired, but seq {} is not the audit.retention event of that expiry (rows deleted and passed off as expired?)",
                    e.retention_seq
                )));
            }
            part.expired += n;
            send(Batch::Leaves(leaves));
            continue;
        }
        let Some(archive) = archive else {
            part.unchecked += n;
            send(Batch::Leaves(store.retired(
                log,
                seg.first_seq,
                seg.end_seq,
            )?));
            continue;
        };
        match crate::retention::open_segment(store, archive, log, seg)? {
            Ok(Some(opened)) => {
                part.archived += n;
                send(Batch::Rows(opened.entries));
                continue;
            }
            Ok(None) => part.problems.push(problem(
                ProblemKind::MissingArchive,
                format!(
                    "{range}: archive segment {} is missing from {} (no expiry was recorded)",
                    seg.key,
                    archive.name()
                ),
            )),
            Err(detail) => part.problems.push(problem(
                ProblemKind::ChangedArchive,
                format!("{range}: {detail}"),
            )),
        }
        send(Batch::Leaves(store.retired(
            log,
            seg.first_seq,
            seg.end_seq,
        )?));
    }
    Ok(part)
}

/// Whether an expiry is recorded in the chain: the expiry row keeps the bytes of its
/// `audit.retention` event, which must name the segment's range and root, come after it, and
/// hash to the leaf stored at its seq (hot, or retired once its own day was archived).
/// Bookkeeping rows written by hand cannot pass a deletion off as an expiry: they would need
/// bytes with an existing leaf hash.
fn expiry_recorded(
    store: &dyn Store,
    log: &str,
    e: &Expiry,
    seg: &crate::retention::Segment,
) -> Result<bool> {
    if e.retention_seq < seg.end_seq
        || claimed_seq(&e.record) != Some(e.retention_seq)
        || !crate::retention::records_expiry(&e.record, seg)
    {
        return Ok(false);
    }
    let leaf = match store.entry(log, e.retention_seq)? {
        Some(entry) => to_hash(&entry.leaf_hash),
        None => match store
            .retired(log, e.retention_seq, e.retention_seq + 1)?
            .pop()
        {
            Some(r) => r.leaf_hash,
            None => return Ok(false),
        },
    };
    Ok(leaf_hash(&e.record) == leaf)
}

struct CheckpointView {
    number: u64,
    size: u64,
    root: Hash,
}

struct Walk {
    log: String,
    expected: u64,
    size: u64,
    bytes: u64,
    prev_chain: Hash,
    frontier: Frontier,
    nodes: HashMap<(u32, u64), Hash>,
    checkpoints: Vec<CheckpointView>,
    next_cp: usize,
    /// Problems found at or before the last checked checkpoint.
    problems: Vec<Problem>,
    last_good_cp: u64,
    /// Problems known when the recomputed tree last matched a checkpoint (or before the
    /// walk): a mismatch after more problems than these is already explained by them.
    problems_at_last_good_cp: usize,
    /// An entry problem was found: from here the recomputed tree differs from what was
    /// stored for reasons already reported, so stored nodes are no longer compared with it.
    tree_diverged: bool,
    /// Seq of the last row, and its event id, for naming an inserted entry.
    last: Option<(u64, String)>,
    /// The next row's misplacement is already explained (the second half of a swap).
    explained: Option<u64>,
    /// The previous row had a problem: do not also report its successor's chain link.
    resync: bool,
    /// Skip the next row's chain link (it follows the second half of a swap).
    skip_chain: bool,
    /// claimed seq minus row seq since rows were renumbered: rows that keep this offset are
    /// part of a change already reported.
    shift: i64,
    /// Event id of the first entry after the last checkpoint that matched.
    first_after_good: Option<String>,
    /// One past the highest seq any record claims: renumbered rows still hold their entries.
    claimed_end: u64,
}

impl Walk {
    fn new(store: &dyn Store, log: &str, verifier: Option<&Verifier>) -> Result<Walk> {
        let mut problems = Vec::new();
        let mut checkpoints = Vec::new();
        for cp in store.checkpoints(log)? {
            let bad = |detail: String| Problem {
                kind: ProblemKind::BadCheckpointSignature,
                seq: cp.size.checked_sub(1),
                event_id: None,
                detail: format!("checkpoint {} (size {}): {detail}", cp.number, cp.size),
            };
            let opened = match verifier {
                Some(v) => Checkpoint::open(&cp.note, v).map_err(|e| e.to_string()),
                None => aitrail_core::checkpoint::Checkpoint::parse_body(
                    cp.note.split("\n\n").next().unwrap_or(""),
                )
                .map_err(|e| e.to_string()),
            };
            match opened {
                Err(e) => problems.push(bad(e)),
                Ok(body) if body.size != cp.size || body.root != cp.root => problems.push(bad(
                    "the row's size or root differs from the signed note".into(),
                )),
                Ok(body) => checkpoints.push(CheckpointView {
                    number: cp.number,
                    size: body.size,
                    root: body.root,
                }),
            }
        }
        let nodes = store
            .nodes(log)?
            .into_iter()
            .map(|n| ((n.level, n.index), n.hash))
            .collect();
        let problems_at_last_good_cp = problems.len();
        Ok(Walk {
            log: log.to_owned(),
            expected: 0,
            size: 0,
            bytes: 0,
            prev_chain: CHAIN_START,
            frontier: Frontier::new(),
            nodes,
            checkpoints,
            next_cp: 0,
            problems,
            last_good_cp: 0,
            problems_at_last_good_cp,
            tree_diverged: false,
            skip_chain: false,
            shift: 0,
            first_after_good: None,
            claimed_end: 0,
            last: None,
            explained: None,
            resync: false,
        })
    }

    fn report(&mut self, kind: ProblemKind, seq: u64, event_id: Option<&str>, detail: String) {
        self.problems.push(Problem {
            kind,
            seq: Some(seq),
            event_id: event_id.map(str::to_owned),
            detail,
        });
        self.resync = true;
        self.tree_diverged |= kind != ProblemKind::ChangedNode;
    }

    fn row(&mut self, row: StoredEntry, next: Option<&StoredEntry>) {
        let s = row.seq;
        let id = row.event_id.as_str();
        if s > self.expected {
            let e = self.expected;
            let detail = if s - e == 1 {
                format!("seq {e} is missing")
            } else {
                format!("seqs {e} to {} are missing", s - 1)
            };
            self.report(ProblemKind::MissingSeq, e, None, detail);
            self.expected = s;
        }
        if s == self.last_good_cp {
            self.first_after_good = Some(id.to_owned());
        }
        let leaf = leaf_hash(&row.entry);
        let was_resync = std::mem::take(&mut self.resync) | std::mem::take(&mut self.skip_chain);
        let claimed = claimed_seq(&row.entry);
        let offset = claimed.map(|r| r as i64 - s as i64);
        if let Some(r) = claimed {
            self.claimed_end = self.claimed_end.max(r + 1);
        }
        match claimed {
            _ if self.explained == Some(s) => self.skip_chain = true,
            Some(_) if offset == Some(0) => self.shift = 0,
            Some(_) if self.shift != 0 && offset == Some(self.shift) => {}
            Some(r) if r == s + 1 && next.and_then(|n| claimed_seq(&n.entry)) == Some(s) => {
                let other = next.map(|n| n.event_id.clone()).unwrap_or_default();
                self.report(ProblemKind::ReorderedEntries, s, Some(id), format!("seq {s} holds the entry of seq {r} (event {id}) and seq {r} the entry of seq {s} (event {other})"));
                self.explained = Some(s + 1);
            }
            Some(r) if r > s => {
                self.shift = r as i64 - s as i64;
                self.report(ProblemKind::MissingSeq, s, None, format!("seq {s} holds the entry of seq {r}: entries were deleted and the rest renumbered"));
            }
            Some(r) => {
                let inserted = match &self.last {
                    Some((ls, lid)) if *ls == s - 1 => Some(lid.clone()),
                    _ => None,
                };
                self.shift = r as i64 - s as i64;
                let at = s.saturating_sub(1).max(r);
                self.report(ProblemKind::ExtraEntry, at, inserted.as_deref(), format!("seq {s} holds the entry of seq {r}: an entry was inserted before it, at seq {at}"));
            }
            None => {
                self.report(
                    ProblemKind::ChangedEntry,
                    s,
                    Some(id),
                    format!("seq {s}: the entry bytes are not a record aitrail wrote"),
                );
            }
        }
        if !self.resync {
            if leaf[..] != row.leaf_hash[..] {
                self.report(
                    ProblemKind::ChangedEntry,
                    s,
                    Some(id),
                    format!("seq {s}: the entry bytes do not hash to the stored leaf hash"),
                );
            } else if chain_hash(&self.prev_chain, &leaf)[..] != row.chain_hash[..] && !was_resync {
                self.report(
                    ProblemKind::ChangedEntry,
                    s,
                    Some(id),
                    format!(
                        "seq {s}: the chain hash does not follow from the entry and the one before"
                    ),
                );
            }
        }
        self.prev_chain = to_hash(&row.chain_hash);
        self.bytes += row.entry.len() as u64;
        self.push(leaf, s, row.event_id);
    }

    /// An entry that left the hot store: only its recorded hashes are left to check (the
    /// chain link here; the tree against every checkpoint, as for any entry).
    fn leaf(&mut self, r: &Retired) {
        let s = r.seq;
        if s > self.expected {
            let e = self.expected;
            self.report(
                ProblemKind::MissingSeq,
                e,
                None,
                format!("seqs {e} to {} are missing", s - 1),
            );
            self.expected = s;
        }
        if s == self.last_good_cp {
            self.first_after_good = Some(r.event_id.clone());
        }
        let was_resync = std::mem::take(&mut self.resync) | std::mem::take(&mut self.skip_chain);
        if chain_hash(&self.prev_chain, &r.leaf_hash) != r.chain_hash && !was_resync {
            self.report(
                ProblemKind::ChangedEntry,
                s,
                Some(&r.event_id),
                format!("seq {s} (archived): the recorded chain hash does not follow from its leaf hash and the one before"),
            );
        }
        self.prev_chain = r.chain_hash;
        self.push(r.leaf_hash, s, r.event_id.clone());
    }

    /// Adds the leaf of `seq` to the recomputed tree, compares the nodes it completes with the
    /// stored ones, and the root with any checkpoint of the new size.
    fn push(&mut self, leaf: Hash, seq: u64, event_id: String) {
        let mut changed_nodes = Vec::new();
        let nodes = &self.nodes;
        let compare = !self.tree_diverged;
        self.frontier.push(leaf, |level, index, hash| {
            if compare && is_stored(level) && nodes.get(&(level, index)) != Some(hash) {
                changed_nodes.push((level, index));
            }
        });
        for (level, index) in changed_nodes {
            let first = index << level;
            self.report(ProblemKind::ChangedNode, first, None, format!("stored node level {level} index {index} (seqs {first}..{}) differs from the recomputed tree", (index + 1) << level));
        }
        self.size += 1;
        self.expected = seq + 1;
        self.last = Some((seq, event_id));
        self.check_checkpoints();
    }

    /// Compares the recomputed root with every checkpoint of the current size.
    fn check_checkpoints(&mut self) {
        while let Some(cp) = self
            .checkpoints
            .get(self.next_cp)
            .filter(|cp| cp.size == self.size)
        {
            let root = self.frontier.root();
            if root != cp.root && self.problems.len() == self.problems_at_last_good_cp {
                let from = self.last_good_cp;
                self.problems.push(Problem {
                    kind: ProblemKind::CheckpointMismatch,
                    seq: Some(from),
                    event_id: self.first_after_good.clone(),
                    detail: format!(
                        "checkpoint {} (size {}) signed another tree: entries from seq {from} to {} were rewritten and rehashed",
                        cp.number,
                        cp.size,
                        cp.size - 1
                    ),
                });
            }
            if root == cp.root {
                self.last_good_cp = cp.size;
                self.problems_at_last_good_cp = self.problems.len();
            }
            self.next_cp += 1;
        }
    }

    fn finish(mut self) -> Report {
        // Rows end at seq `expected - 1`; a checkpoint beyond that covered entries now gone.
        let end = self.expected.max(self.claimed_end);
        if let Some(cp) = self.checkpoints[self.next_cp..]
            .iter()
            .find(|cp| cp.size > end)
        {
            self.problems.push(Problem {
                kind: ProblemKind::Truncated,
                seq: Some(end),
                event_id: None,
                detail: format!(
                    "checkpoint {} covers {} entries but the log ends at seq {}: seqs {end} to {} are gone",
                    cp.number,
                    cp.size,
                    end as i64 - 1,
                    cp.size - 1
                ),
            });
        }
        self.problems.sort_by_key(|p| p.seq.unwrap_or(u64::MAX));
        Report {
            ok: self.problems.is_empty(),
            log: self.log,
            entries: self.size,
            bytes: self.bytes,
            checkpoints: self.checkpoints.len() as u64,
            root: hex::encode(self.frontier.root()),
            archived: 0,
            expired: 0,
            unchecked: 0,
            problems: self.problems,
        }
    }
}
