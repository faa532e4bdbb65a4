//! `aitrail verify [--json] [--anchor SPEC]...`: exit 0 intact, 1 tampering found, 2 could
//! not run. With anchors (flags or aitrail.toml), the log must also extend every checkpoint
//! they hold (`crate::anchors::verify_against_anchors`).

use super::Ctx;
use crate::args::VerifyArgs;
use crate::progress::{bar, thousands};
use aitrail_store::verify::{verify_archived, Problem, Report};
use anyhow::Result;
use serde::Serialize;
use std::process::ExitCode;

#[derive(Serialize)]
struct Summary<'a> {
    ok: bool,
    entries: u64,
    problems: Vec<LocatedProblem<'a>>,
    logs: &'a [Report],
    /// What each anchor holds for each log, and how much of it the log is consistent with.
    anchors: &'a [crate::anchors::AnchorSummary],
}

#[derive(Serialize)]
struct LocatedProblem<'a> {
    log: &'a str,
    #[serde(flatten)]
    problem: &'a Problem,
}

pub fn run(ctx: &Ctx, args: &VerifyArgs) -> Result<ExitCode> {
    let logs = if args.all {
        ctx.store.logs()?
    } else {
        vec![ctx.log.clone()]
    };
    let anchors = crate::anchors::open(&ctx.data, &args.anchors)?;
    // Archived entries are read back from the archive when one is configured.
    let archive = ctx.configured_archive()?;
    let mut anchor_summaries = Vec::new();
    let mut reports = Vec::new();
    for log in &logs {
        let verifier = ctx.data.verifier(log)?;
        let head = ctx.store.head(log)?;
        let pb = bar(head.size, "verify", false);
        let started = std::time::Instant::now();
        let mut report = verify_archived(
            ctx.store.as_ref(),
            log,
            verifier.as_ref(),
            archive.as_deref(),
            &mut |n| pb.set_position(n),
        )?;
        pb.finish_and_clear();
        let summaries = crate::anchors::verify_against_anchors(
            ctx.store.as_ref(),
            log,
            verifier.as_ref(),
            &mut report,
            &anchors,
        )?;
        if !args.json {
            print_report(&report, verifier.is_some(), started.elapsed());
            crate::anchors::print_summaries(&summaries);
        }
        anchor_summaries.extend(summaries);
        reports.push(report);
    }
    let ok = reports.iter().all(|r| r.ok);
    if args.json {
        let problems = reports
            .iter()
            .flat_map(|r| {
                r.problems.iter().map(|p| LocatedProblem {
                    log: &r.log,
                    problem: p,
                })
            })
            .collect();
        let summary = Summary {
            ok,
            entries: reports.iter().map(|r| r.entries).sum(),
            problems,
            logs: &reports,
            anchors: &anchor_summaries,
        };
        println!("{}", serde_json::to_string_pretty(&summary)?);
    }
    Ok(if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_report(r: &Report, keyed: bool, took: std::time::Duration) {
    let secs = took.as_secs_f64().max(1e-9);
    if r.archived + r.expired + r.unchecked > 0 {
        println!(
            "retention: {} entries read back from the archive and checked, {} expired by policy (their recorded hashes verify){}",
            thousands(r.archived),
            thousands(r.expired),
            if r.unchecked > 0 {
                format!(
                    ", {} archived but not read (no archive configured: their recorded hashes verify)",
                    thousands(r.unchecked)
                )
            } else {
                String::new()
            }
        );
    }
    if r.ok {
        println!(
            "intact: log {:?}, {} entries, {} checkpoints{}, root {}  ({:.2} s, {} entries/s)",
            r.log,
            thousands(r.entries),
            r.checkpoints,
            if keyed {
                " signed and matching"
            } else {
                " matching (no key here: signatures not checked)"
            },
            r.root,
            secs,
            thousands((r.entries as f64 / secs) as u64)
        );
        return;
    }
    println!(
        "TAMPERED: log {:?}, {} problem(s) in {} entries",
        r.log,
        r.problems.len(),
        thousands(r.entries)
    );
    for p in &r.problems {
        let seq = p.seq.map(|s| s.to_string()).unwrap_or_else(|| "-".into());
        let id = p.event_id.as_deref().unwrap_or("unknown");
        println!(
            "  {:<24} seq {:<8} event {id}\n      {}",
            format!("{:?}", p.kind),
            seq,
            p.detail
        );
    }
    if let Some(first) = r.problems.first() {
        println!(
            "first entry affected: seq {} (event {})",
            first
                .seq
                .map(|s| s.to_string())
                .unwrap_or_else(|| "-".into()),
            first.event_id.as_deref().unwrap_or("unknown")
        );
    }
}
