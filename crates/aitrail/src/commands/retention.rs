//! `aitrail retention run [--dry-run] [--json]`: moves days past the hot window to archive
//! segments and expires segments past their retention, for every log in the store (see
//! `aitrail_store::retention`). A dry run lists what a run would do and changes nothing.
//!
//! Exit 0 when everything due was done (held segments are kept, as they should be); 1 when a
//! day could not be archived (its hot rows are kept; the other logs go on) or a segment was
//! missing from the archive or altered, so it could not be expired.

use super::{now_micros, Ctx};
use crate::args::RetentionRunArgs;
use crate::progress::bar;
use crate::retention_config::RetentionConfig;
use aitrail_core::checkpoint::Signer;
use aitrail_store::retention::{self, ArchiveStore, Plan, RunReport};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::Store;
use anyhow::Result;
use serde::Serialize;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Serialize)]
struct LogOutcome {
    log: String,
    #[serde(flatten)]
    plan: Plan,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<RunReport>,
}

pub fn run(ctx: &Ctx, args: &RetentionRunArgs) -> Result<ExitCode> {
    let config = RetentionConfig::load(&ctx.data)?;
    let sequencer = ctx.sequencer();
    let outcomes = run_all(
        ctx.store.as_ref(),
        &sequencer,
        &|log| ctx.data.signer(log).map(Arc::new),
        &config,
        None,
        args.dry_run,
        !args.json,
    );
    sequencer.shutdown();
    let outcomes = outcomes?;
    let failed = outcomes.iter().any(|o| {
        o.report.as_ref().is_some_and(|r| {
            r.skipped
                .iter()
                .any(|s| matches!(s.action, "missing" | "changed" | "failed"))
        })
    });
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
                "dry_run": args.dry_run,
                "ok": !failed,
                "logs": outcomes,
            }))?
        );
    } else {
        for o in &outcomes {
            print_outcome(o, args.dry_run);
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

/// Plans (and unless `dry_run`, carries out) retention for every log; shared with `serve`'s
/// schedule. The archive is opened when there is work for it (unless given); `show_progress`
/// draws a bar on a terminal.
fn run_all(
    store: &dyn Store,
    sequencer: &Sequencer,
    signer: &dyn Fn(&str) -> Result<Arc<Signer>>,
    config: &RetentionConfig,
    archive: Option<&dyn ArchiveStore>,
    dry_run: bool,
    show_progress: bool,
) -> Result<Vec<LogOutcome>> {
    // Runs take turns, in any process; the plan is made once the lock is held. A dry run
    // changes nothing and takes no lock.
    let _turn = if dry_run {
        None
    } else {
        Some(store.retention_lock(&mut || {
            eprintln!("retention: waiting for another retention run (serve's, or another aitrail) to finish");
        })?)
    };
    let now = now_micros();
    let mut outcomes = Vec::new();
    let mut opened = None;
    for log in store.logs()? {
        let policy = config.policy(&log);
        let plan = retention::plan(store, &log, policy, now)?;
        let work = plan.moves.len() + plan.expiries.len();
        let mut report = None;
        if !dry_run && (work > 0 || plan.has_pending_deletes()) {
            if archive.is_none() && opened.is_none() {
                opened = Some(config.require_archive()?);
            }
            let Some(archive) = archive.or(opened.as_deref()) else {
                unreachable!("opened above")
            };
            let signer = signer(&log)?;
            let pb = bar(work as u64, &format!("retention {log}"), false);
            if !show_progress {
                pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let context = retention::Context {
                store,
                sequencer,
                archive,
                signer: &signer,
                policy,
                now,
            };
            let done = retention::run(&context, &plan, &mut |n| pb.set_position(n));
            pb.finish_and_clear();
            report = Some(done?);
        }
        outcomes.push(LogOutcome { log, plan, report });
    }
    Ok(outcomes)
}

/// `serve`'s scheduled run: one line per log that had work.
pub fn scheduled(
    store: &dyn Store,
    sequencer: &Sequencer,
    signer: &dyn Fn(&str) -> Result<Arc<Signer>>,
    config: &RetentionConfig,
    archive: &dyn ArchiveStore,
) -> Result<Vec<String>> {
    let outcomes = run_all(
        store,
        sequencer,
        signer,
        config,
        Some(archive),
        false,
        false,
    )?;
    Ok(outcomes
        .iter()
        .filter_map(|o| {
            let r = o.report.as_ref()?;
            Some(format!(
                "retention {}: {} done, {} kept or skipped{}",
                o.log,
                r.done.len(),
                r.skipped.len(),
                r.skipped
                    .iter()
                    .map(|s| format!("; {} {}: {}", s.action, s.day, s.detail))
                    .collect::<String>()
            ))
        })
        .collect())
}

fn print_outcome(o: &LogOutcome, dry_run: bool) {
    let p = &o.plan;
    match &o.report {
        None if p.moves.is_empty() && p.expiries.is_empty() => {
            println!("log {}: nothing due", o.log);
        }
        None => {
            let verb = if dry_run { "would" } else { "will" };
            println!(
                "log {}: {} day(s) {verb} be archived, {} segment(s) past expiry{}",
                o.log,
                p.moves.len(),
                p.expiries.len(),
                if dry_run {
                    " (dry run: nothing changed)"
                } else {
                    ""
                }
            );
            for m in &p.moves {
                println!(
                    "  archive  {}  seqs {} to {} ({} entries)",
                    m.day,
                    m.first_seq,
                    m.end_seq - 1,
                    m.end_seq - m.first_seq
                );
            }
            for d in &p.expiries {
                println!(
                    "  expire   {}  seqs {} to {}  {} (expiry {}; unless a legal hold covers it)",
                    d.day,
                    d.first_seq,
                    d.end_seq - 1,
                    d.key,
                    &d.expires_at[..10]
                );
            }
        }
        Some(r) => {
            println!(
                "log {}: {} done, {} kept or skipped",
                o.log,
                r.done.len(),
                r.skipped.len()
            );
            for d in r.done.iter().chain(&r.skipped) {
                println!(
                    "  {:<9}{}  seqs {} to {}: {}",
                    d.action,
                    d.day,
                    d.first_seq,
                    d.end_seq - 1,
                    d.detail
                );
            }
        }
    }
}
