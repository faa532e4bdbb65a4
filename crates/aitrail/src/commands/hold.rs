//! `aitrail hold add|list|release`: legal holds. A hold covers a task, a subject (by its
//! keyed reference; a raw id is turned into one and never stored) or a range of
//! `occurred_at`; while it stands, no archive segment holding anything it covers expires.
//! Adding and releasing are recorded in the trail as `audit.retention` events.

use super::{now_micros, Ctx};
use crate::args::HoldCommand;
use crate::commands::filters::parse_bound;
use aitrail_core::event::format_time;
use aitrail_store::retention::{self, Hold, HoldScope};
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx, cmd: &HoldCommand) -> Result<()> {
    match cmd {
        HoldCommand::Add {
            task,
            subject,
            subject_ref,
            from,
            to,
            reason,
            json,
        } => {
            let scope = match (task, subject, subject_ref, from, to) {
                (Some(t), None, None, None, None) if !t.is_empty() => HoldScope::Task {
                    task_id: t.clone(),
                },
                (None, Some(s), None, None, None) if !s.trim().is_empty() => {
                    HoldScope::Subject {
                        subject_ref: aitrail_core::pii::subject_ref(
                            &ctx.data.tenant_key(&ctx.log)?,
                            s,
                        ),
                    }
                }
                (None, None, Some(r), None, None) => {
                    if r.len() != 64 || !r.bytes().all(|b| b.is_ascii_hexdigit()) {
                        bail!("--subject-ref {r:?}: expected 64 lowercase hex digits");
                    }
                    HoldScope::Subject {
                        subject_ref: r.to_ascii_lowercase(),
                    }
                }
                (None, None, None, Some(f), Some(t)) => {
                    HoldScope::Time {
                        from: parse_bound("--from", f, false)?,
                        to: parse_bound("--to", t, true)?,
                    }
                }
                (None, None, None, Some(_), None) | (None, None, None, None, Some(_)) => {
                    bail!("a time-range hold needs both --from and --to")
                }
                _ => bail!(
                    "give exactly one of --task TASK, --subject ID, --subject-ref REF, or --from and --to"
                ),
            };
            let seq = ctx.sequencer();
            let hold = retention::place_hold(
                &seq,
                &ctx.log,
                &ctx.reader(),
                scope,
                &redact(ctx, reason)?,
                now_micros(),
            );
            seq.shutdown();
            let hold = hold?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&hold)?);
            } else {
                println!(
                    "hold {} placed on {} in log {:?}: nothing it covers expires until it is released",
                    hold.id, hold.scope, ctx.log
                );
            }
        }
        HoldCommand::List { all, json } => {
            let holds: Vec<Hold> = ctx
                .store
                .holds(&ctx.log)?
                .into_iter()
                .filter(|h| *all || h.released.is_none())
                .collect();
            if *json {
                println!("{}", serde_json::to_string_pretty(&holds)?);
            } else if holds.is_empty() {
                println!(
                    "no {}holds in log {:?}",
                    if *all { "" } else { "active " },
                    ctx.log
                );
            } else {
                for h in &holds {
                    let state = match &h.released {
                        Some(r) => format!(
                            "released {} by {}: {}",
                            &format_time(r.released_at)[..10],
                            r.released_by,
                            r.reason
                        ),
                        None => "active".into(),
                    };
                    println!(
                        "{}  {}  placed {} by {}: {}  [{state}]",
                        h.id,
                        h.scope,
                        &format_time(h.created_at)[..10],
                        h.created_by,
                        h.reason
                    );
                }
            }
        }
        HoldCommand::Release { id, reason } => {
            let seq = ctx.sequencer();
            let hold = retention::release_hold(
                &seq,
                &ctx.log,
                &ctx.reader(),
                id,
                &redact(ctx, reason)?,
                now_micros(),
            );
            seq.shutdown();
            let hold = hold?;
            println!("hold {id} on {} released", hold.scope);
        }
    }
    Ok(())
}

/// Free text goes through the tenant's PII policy, as every other text in the trail.
fn redact(ctx: &Ctx, text: &str) -> Result<String> {
    let key = ctx.data.tenant_key(&ctx.log)?;
    Ok(aitrail_core::pii::rewrite_text(text, &ctx.data.pii.policy(&ctx.log), &key).into_owned())
}
