//! `aitrail retention run [--dry-run] [--json]`: moves days past the hot window to archive
//! segments and expires segments past their retention, for every log in the store (see
//! `aitrail_store::retention`). A dry run lists what a run would do and changes nothing.
//!
//! Exit 0 when everything due was done (held segments are kept, as they should be); 1 when a
//! segment was missing from the archive or altered, so it could not be expired.

use super::{now_micros, Ctx};
use crate::args::RetentionRunArgs;
use crate::progress::bar;
use crate::retention_config::RetentionConfig;
use aitrail_store::retention::{self, Plan, RunReport};
use anyhow::Result;
use serde::Serialize;
use std::process::ExitCode;

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
    let outcomes = run_all(ctx, &config, args.dry_run, !args.json)?;
    let failed = outcomes.iter().any(|o| {
        o.report.as_ref().is_some_and(|r| {
            r.skipped
                .iter()
                .any(|s| s.action == "missing" || s.action == "changed")
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
/// schedule. `show_progress` draws a bar on a terminal.
fn run_all(
    ctx: &Ctx,
    config: &RetentionConfig,
    dry_run: bool,
    show_progress: bool,
) -> Result<Vec<LogOutcome>> {
    let now = now_micros();
    let mut outcomes = Vec::new();
    let mut archive = None;
    for log in ctx.store.logs()? {
        let policy = config.policy(&log);
        let plan = retention::plan(ctx.store.as_ref(), &log, policy, now)?;
        let work = plan.moves.len() + plan.expiries.len();
        let mut report = None;
        if !dry_run && (work > 0 || plan.has_pending_deletes()) {
            if archive.is_none() {
                archive = Some(config.require_archive()?);
            }
            let sequencer = ctx.sequencer();
            let signer = ctx.data.signer(&log)?;
            let pb = bar(work as u64, &format!("retention {log}"), false);
            if !show_progress {
                pb.set_draw_target(indicatif::ProgressDrawTarget::hidden());
            }
            let context = retention::Context {
                store: ctx.store.as_ref(),
                sequencer: &sequencer,
                archive: archive.as_deref().unwrap_or_else(|| unreachable!()),
                signer: &signer,
                policy,
                now,
            };
            let done = retention::run(&context, &plan, &mut |n| pb.set_position(n));
            pb.finish_and_clear();
            sequencer.shutdown();
            report = Some(done?);
        }
        outcomes.push(LogOutcome { log, plan, report });
    }
    Ok(outcomes)
}

/// `serve`'s scheduled run: the outcome as one line per log for its log.
pub fn scheduled(ctx: &Ctx, config: &RetentionConfig) -> Result<Vec<String>> {
    let outcomes = run_all(ctx, config, false, false)?;
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
                if dry_run { " (dry run: nothing changed)" } else { "" }
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
