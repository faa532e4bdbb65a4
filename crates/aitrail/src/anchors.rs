//! Anchors as the command line uses them: which anchors are configured (`--anchor`, else
//! `anchors` in aitrail.toml), anchoring a log's latest checkpoint (recorded in the log as
//! `audit.anchored`), and checking a log against every checkpoint its anchors hold.
//!
//! The check: each anchored note must be signed by the log's key, and the tree recomputed
//! from the log's entries must extend it (an RFC 6962 consistency proof, RFC 9162 §2.1.4).
//! Someone holding the signing key can rewrite the database and re-sign its checkpoints,
//! but cannot change what the anchors kept, so any rewrite of anchored history fails here.

use crate::args::AnchorOpts;
use crate::data::DataDir;
use aitrail_anchor::check::{check, Verdict};
use aitrail_anchor::{Anchor, AnchorError, AnchorSpec, Options, Receipt, Retention};
use aitrail_core::checkpoint::{Signer, Verifier};
use aitrail_core::entry::PreparedEvent;
use aitrail_core::event::{format_time, Event, Origin};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::{Store, StoredCheckpoint};
use aitrail_store::verify::{Problem, ProblemKind, Report};
use anyhow::{anyhow, Context, Result};
use serde::Serialize;
use serde_json::json;
use std::path::PathBuf;

/// The task id aitrail's own bookkeeping events are filed under.
const AUDIT_TASK: &str = "aitrail.audit";

/// Opens the configured anchors: `--anchor` flags when given (they replace the config file's
/// list), else `anchors` in aitrail.toml, whose relative paths are taken from the data dir.
pub fn open(data: &DataDir, opts: &AnchorOpts) -> Result<Vec<Box<dyn Anchor>>> {
    let config = &data.config;
    let specs: Vec<AnchorSpec> = if opts.anchor.is_empty() {
        config
            .anchors
            .iter()
            .map(|s| {
                s.parse::<AnchorSpec>()
                    .map(|spec| spec.relative_to(&data.path))
                    .with_context(|| format!("in {}", data.path.join("aitrail.toml").display()))
            })
            .collect::<Result<_>>()?
    } else {
        opts.anchor
            .iter()
            .map(|s| s.parse::<AnchorSpec>().map_err(anyhow::Error::from))
            .collect::<Result<_>>()?
    };
    let in_data = |p: &PathBuf| data.path.join(p);
    let retention = match (&opts.s3_retention, &config.s3_retention) {
        (Some(r), _) | (None, Some(r)) => r
            .parse::<Retention>()
            .map_err(|e| anyhow::anyhow!("S3 retention {e}"))?,
        (None, None) => Retention::default(),
    };
    let options = Options {
        tsa_ca: opts
            .tsa_ca
            .clone()
            .or_else(|| config.tsa_ca.as_ref().map(in_data)),
        tsa_tokens: config
            .tsa_tokens
            .as_ref()
            .map(in_data)
            .unwrap_or_else(|| data.path.join("anchors").join("tsa")),
        s3_retention: retention,
    };
    specs
        .iter()
        .map(|spec| aitrail_anchor::open(spec, &options).with_context(|| format!("anchor {spec}")))
        .collect()
}

/// What anchoring one log did at one anchor.
pub struct Anchoring {
    pub anchor: String,
    pub outcome: Result<Receipt, AnchorError>,
}

/// Writes the latest checkpoint of `log` (signed now when the tree has grown past it) to
/// every anchor, and records each new copy as an `audit.anchored` event. An anchor that
/// fails does not stop the others; the caller decides what failures mean.
pub fn anchor_log(
    store: &dyn Store,
    sequencer: &Sequencer,
    log: &str,
    signer: &Signer,
    subject_key: &[u8],
    anchors: &[Box<dyn Anchor>],
) -> Result<(StoredCheckpoint, Vec<Anchoring>)> {
    let now = crate::commands::now_micros();
    let (cp, _) = aitrail_store::log::checkpoint(store, log, signer, now)
        // Another process or task (serve's checkpointer) may sign the same tree size at the
        // same moment; the store's unique (log, size) refuses the second. Then theirs is the
        // latest, and a second call returns it.
        .or_else(|_| aitrail_store::log::checkpoint(store, log, signer, now))
        .with_context(|| format!("signing a checkpoint of log {log:?}"))?;
    let mut done = Vec::with_capacity(anchors.len());
    let mut events = Vec::new();
    for anchor in anchors {
        let outcome = anchor.put(log, &cp.note);
        if let Ok(receipt) = &outcome {
            if receipt.created {
                events.push(anchored_event(
                    anchor.name(),
                    &cp,
                    receipt,
                    now,
                    subject_key,
                )?);
            }
        }
        done.push(Anchoring {
            anchor: anchor.name().to_owned(),
            outcome,
        });
    }
    if !events.is_empty() {
        sequencer
            .append(log, events)
            .with_context(|| format!("recording audit.anchored in log {log:?}"))?;
    }
    Ok((cp, done))
}

/// `audit.anchored`: which anchor, which checkpoint (number, size, root), where it is kept,
/// and for a TSA the timestamp.
fn anchored_event(
    anchor: &str,
    cp: &StoredCheckpoint,
    receipt: &Receipt,
    now: i64,
    subject_key: &[u8],
) -> Result<PreparedEvent> {
    let mut attributes = json!({
        "anchor": anchor,
        "checkpoint": {"number": cp.number, "size": cp.size, "root": hex::encode(cp.root)},
        "location": receipt.location,
    });
    if let Some(ts) = &receipt.timestamp {
        attributes["timestamp"] = serde_json::to_value(ts)?;
    }
    let event = Event::from_value(
        json!({
            "type": "audit.anchored",
            "task_id": AUDIT_TASK,
            "occurred_at": format_time(now),
            "actor": {"kind": "system", "id": "aitrail"},
            "attributes": attributes,
        }),
        Origin::Aitrail,
    )
    .map_err(|errs| {
        let text: Vec<String> = errs.iter().map(ToString::to_string).collect();
        anyhow!("building the audit.anchored event: {}", text.join("; "))
    })?;
    Ok(PreparedEvent::new(event, subject_key)?)
}

/// What one anchor holds for a log, as `verify` reports it.
#[derive(Debug, Serialize)]
pub struct AnchorSummary {
    pub anchor: String,
    pub log: String,
    /// Checkpoints read back.
    pub checkpoints: usize,
    /// Of those, the ones the log is consistent with.
    pub consistent: usize,
    /// The largest tree size the anchor vouches for, when any.
    pub largest: Option<u64>,
}

/// A checkpoint that disagrees with the log, before it becomes a `Problem`.
struct Finding {
    /// The anchor, the checkpoint (size, root) and where it is kept.
    what: String,
    size: u64,
    /// Rewritten (with why the proof failed), or truncated.
    rewritten: Option<String>,
}

/// Checks the log `report` describes against every anchor and adds what it finds to the
/// report (in seq order; any finding makes it not ok). Returns a summary per anchor. An
/// anchor that cannot be read is an error: verification could not run, which is not the same
/// as finding tampering. Used by `verify` and by `serve`'s scheduled verification.
pub fn verify_against_anchors(
    store: &dyn Store,
    log: &str,
    verifier: Option<&Verifier>,
    report: &mut Report,
    anchors: &[Box<dyn Anchor>],
) -> Result<Vec<AnchorSummary>> {
    if anchors.is_empty() {
        return Ok(Vec::new());
    }
    let (problems, summaries) = verify_log(store, log, verifier, report, anchors)?;
    if !problems.is_empty() {
        report.problems.extend(problems);
        report.problems.sort_by_key(|p| p.seq.unwrap_or(u64::MAX));
        report.ok = false;
    }
    Ok(summaries)
}

/// The problems the anchors find with the log `report` describes, and a summary per anchor.
fn verify_log(
    store: &dyn Store,
    log: &str,
    verifier: Option<&Verifier>,
    report: &Report,
    anchors: &[Box<dyn Anchor>],
) -> Result<(Vec<Problem>, Vec<AnchorSummary>)> {
    let log_size = report.entries;
    let log_root: [u8; 32] = hex::decode(&report.root)
        .ok()
        .and_then(|r| r.try_into().ok())
        .ok_or_else(|| anyhow!("verify reported no root for log {log:?}"))?;
    let mut summaries = Vec::new();
    let mut findings: Vec<Finding> = Vec::new();
    let mut bad: Vec<Problem> = Vec::new();
    // The largest anchored size the log is consistent with: entries before it are vouched for.
    let mut vouched = 0u64;
    for anchor in anchors {
        let name = anchor.name().to_owned();
        let held = anchor
            .list(log)
            .with_context(|| format!("reading back anchor {name} for log {log:?}"))?;
        let mut summary = AnchorSummary {
            anchor: name.clone(),
            log: log.to_owned(),
            checkpoints: held.len(),
            consistent: 0,
            largest: None,
        };
        let mut first_finding: Option<Finding> = None;
        let mut more = 0usize;
        for item in held {
            if let Some(fault) = &item.fault {
                bad.push(bad_anchor(&name, &item.location, fault));
                continue;
            }
            let verdict = check(&item.note, verifier, log_size, &log_root, &mut |a, b| {
                aitrail_store::log::consistency_path(store, log, a, b).map_err(|e| e.to_string())
            });
            let at = match &item.timestamp {
                Some(ts) => format!(
                    "{}, timestamped {} by {}",
                    item.location, ts.gen_time, ts.tsa
                ),
                None => item.location.clone(),
            };
            let finding = match verdict {
                Verdict::Consistent(cp) => {
                    summary.consistent += 1;
                    summary.largest = summary.largest.max(Some(cp.size));
                    vouched = vouched.max(cp.size);
                    continue;
                }
                Verdict::BadNote(why) => {
                    bad.push(bad_anchor(&name, &item.location, &why));
                    continue;
                }
                Verdict::Truncated { checkpoint, .. } => Finding {
                    what: described(&name, &checkpoint, &at),
                    size: checkpoint.size,
                    rewritten: None,
                },
                Verdict::Rewritten { checkpoint, detail } => Finding {
                    what: described(&name, &checkpoint, &at),
                    size: checkpoint.size,
                    rewritten: Some(detail),
                },
            };
            // One problem per anchor: its smallest disagreeing checkpoint locates the change.
            match &first_finding {
                Some(f) if f.size <= finding.size => more += 1,
                Some(_) => {
                    more += 1;
                    first_finding = Some(finding);
                }
                None => first_finding = Some(finding),
            }
        }
        if let Some(mut f) = first_finding {
            if more > 0 {
                f.what += &format!(" (and {more} later checkpoint(s) there, which fail too)");
            }
            findings.push(f);
        }
        summaries.push(summary);
    }
    let mut problems = bad;
    for f in findings {
        let (seq, detail) = match f.rewritten {
            // The change lies after the largest anchored size the log is still consistent
            // with, and before this checkpoint's size.
            Some(why) => {
                let from = vouched.min(f.size.saturating_sub(1));
                (
                    from,
                    format!(
                        "{}: the log does not extend it: entries between seq {from} and {} were changed after it was anchored ({why})",
                        f.what,
                        f.size - 1
                    ),
                )
            }
            None => (
                log_size,
                format!(
                    "{}: the log has only {log_size} entries: seqs {log_size} to {} are gone",
                    f.what,
                    f.size - 1
                ),
            ),
        };
        problems.push(Problem {
            kind: ProblemKind::AnchorMismatch,
            seq: Some(seq),
            event_id: store.entry(log, seq)?.map(|e| e.event_id),
            detail,
        });
    }
    Ok((problems, summaries))
}

/// `anchor X, checkpoint of size N (root R) at LOCATION`.
fn described(anchor: &str, cp: &aitrail_core::checkpoint::Checkpoint, at: &str) -> String {
    format!(
        "anchor {anchor}, checkpoint of size {} (root {}) at {at}",
        cp.size,
        hex::encode(cp.root)
    )
}

fn bad_anchor(anchor: &str, location: &str, why: &str) -> Problem {
    Problem {
        kind: ProblemKind::BadAnchor,
        seq: None,
        event_id: None,
        detail: format!("anchor {anchor}: {location}: {why}"),
    }
}

/// Prints what the anchors vouch for, after a log's verify line.
pub fn print_summaries(summaries: &[AnchorSummary]) {
    for s in summaries {
        match s.largest {
            Some(size) if s.consistent == s.checkpoints => println!(
                "  anchor {}: {} checkpoint(s), the log extends every one (largest: {size} entries)",
                s.anchor, s.checkpoints
            ),
            _ if s.checkpoints == 0 => {
                println!("  anchor {}: holds no checkpoint of log {:?} yet", s.anchor, s.log)
            }
            _ => println!(
                "  anchor {}: {} of {} checkpoint(s) consistent with the log",
                s.anchor, s.consistent, s.checkpoints
            ),
        }
    }
}
