//! `aitrail timeline TASK`: every event of a task in the order it occurred, and a summary.

use super::Ctx;
use crate::args::TimelineArgs;
use aitrail_store::audit::{record_access, task_timeline};
use aitrail_store::retention::WithArchive;
use aitrail_store::store::Store;
use anyhow::{bail, Result};
use serde_json::{json, Value};

fn minutes(ms: u64) -> String {
    if ms < 60_000 {
        format!("{:.0} s", ms as f64 / 1000.0)
    } else {
        format!("{:.1} min", ms as f64 / 60_000.0)
    }
}

pub fn run(ctx: &Ctx, args: &TimelineArgs) -> Result<()> {
    let tenant_key = ctx.data.tenant_key(&ctx.log)?;
    let mut keyring = aitrail_store::keys::Keyring::new(ctx.store.as_ref(), &ctx.log, &tenant_key);
    let archive = ctx.archive(args.include_archive)?;
    let with = archive.as_deref().map(|archive| WithArchive {
        store: ctx.store.as_ref(),
        archive,
    });
    let store: &dyn Store = match &with {
        Some(w) => w,
        None => ctx.store.as_ref(),
    };
    let tl = task_timeline(store, &ctx.log, &args.task, Some(&mut keyring))?;
    record_access(
        &ctx.sequencer(),
        &ctx.log,
        &ctx.reader(),
        "timeline",
        json!({"task_id": args.task}),
        tl.steps.len() as u64,
        Some(&args.task),
    )?;
    if tl.steps.is_empty() {
        bail!("no events for task {:?} in log {:?}", args.task, ctx.log);
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&tl)?);
        return Ok(());
    }
    let s = &tl.summary;
    println!(
        "task {}: {} events; model {}; prompt {}",
        tl.task_id,
        s.events,
        s.models.join(", "),
        s.prompt_versions.join(", ")
    );
    for step in &tl.steps {
        let e = &step.event;
        let get = |a: &str, b: &str| {
            e.get(a)
                .and_then(|x| x.get(b))
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned()
        };
        let kind = e.get("type").and_then(Value::as_str).unwrap_or("");
        let what = match kind {
            "ai.inference" => format!(
                "{} {} answered: {}",
                get("model", "name"),
                get("model", "version"),
                get("output", "text")
            ),
            "review.decision" => format!(
                "{} ({}) decided {} in {}{}{}",
                get("actor", "id"),
                get("actor", "role"),
                get("review", "decision"),
                e.get("review")
                    .and_then(|r| r.get("duration_ms"))
                    .and_then(Value::as_u64)
                    .map(minutes)
                    .unwrap_or_default(),
                match get("rationale", "code") {
                    c if c.is_empty() => String::new(),
                    c => format!(" [{c}] {}", get("rationale", "note")),
                },
                e.get("review")
                    .and_then(|r| r.get("changes"))
                    .map(|c| format!("; changes {c}"))
                    .unwrap_or_default()
            ),
            "task.escalated" => format!(
                "escalated by {} to {}: {}",
                get("escalation", "from"),
                get("escalation", "to"),
                get("escalation", "reason")
            ),
            "task.resolved" => format!(
                "resolved: {} {}",
                get("resolution", "outcome"),
                get("resolution", "note")
            ),
            _ => get("actor", "id"),
        };
        println!(
            "  {:>7}  {}  {:<16}  {what}",
            step.seq, step.occurred_at, kind
        );
    }
    if let Some(ms) = s.time_to_first_review_ms {
        println!(
            "time from model output to first review: {}",
            minutes(ms.max(0) as u64)
        );
    }
    println!(
        "overrides of the model: {} of {} decisions",
        s.overrides,
        s.decisions.len()
    );
    if !s.escalations.is_empty() {
        let path: Vec<String> = s
            .escalations
            .iter()
            .map(|x| {
                format!(
                    "{} -> {}",
                    x.from.as_deref().unwrap_or("?"),
                    x.to.as_deref().unwrap_or("?")
                )
            })
            .collect();
        println!("escalation path: {}", path.join(", "));
    }
    if let Some(r) = &s.resolution {
        println!("resolution: {}", r.outcome.as_deref().unwrap_or("?"));
    }
    println!("human time spent: {}", minutes(s.human_time_ms));
    Ok(())
}
