//! `aitrail ingest [FILE|-]`: NDJSON, all or nothing. Every bad line is named by line number
//! and field, and nothing is written unless every line is valid.

use super::Ctx;
use crate::args::IngestArgs;
use crate::progress::{bar, spinner, thousands};
use aitrail_core::entry::PreparedEvent;
use aitrail_core::event::{Event, FieldError, Origin};
use aitrail_store::sequencer::{Outcome, Sequencer};
use aitrail_store::StoreError;
use anyhow::{bail, Context, Result};
use std::io::Read;

/// Most problems listed before the rest are only counted.
const SHOWN: usize = 20;

/// A bad line of NDJSON.
#[derive(Debug)]
pub struct LineError {
    pub line: usize,
    pub errors: Vec<FieldError>,
}

/// Validates and prepares every line of NDJSON with `PreparedEvent::new` (subject ids
/// referenced, nothing else): what the benchmarks measure. `aitrail ingest` applies the
/// tenant's whole PII policy instead (`validate_ndjson`, then `keys::prepare_events`).
pub fn prepare_ndjson(
    text: &str,
    subject_key: &[u8],
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<(usize, PreparedEvent)>, Vec<LineError>> {
    parse_lines(text, progress, &|e| {
        PreparedEvent::new(e, subject_key).map_err(|e| {
            vec![FieldError {
                field: String::new(),
                message: e.to_string(),
            }]
        })
    })
}

/// Validates every line of NDJSON (blank lines are skipped), in parallel. Returns the events
/// with their line numbers, or every bad line.
pub fn validate_ndjson(
    text: &str,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Vec<(usize, Event)>, Vec<LineError>> {
    parse_lines(text, progress, &Ok)
}

type Make<'a, T> = dyn Fn(Event) -> Result<T, Vec<FieldError>> + Sync + 'a;

fn parse_lines<T: Send>(
    text: &str,
    progress: &(dyn Fn(u64) + Sync),
    make: &Make<'_, T>,
) -> Result<Vec<(usize, T)>, Vec<LineError>> {
    let lines: Vec<(usize, &str)> = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| !l.trim().is_empty())
        .collect();
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    let chunk = lines.len().div_ceil(threads).max(1);
    let parts: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = lines
            .chunks(chunk)
            .map(|part| {
                s.spawn(move || {
                    let mut ok = Vec::with_capacity(part.len());
                    let mut bad = Vec::new();
                    for (i, (line, text)) in part.iter().enumerate() {
                        match Event::parse(text, Origin::Client).and_then(make) {
                            Ok(p) => ok.push((*line, p)),
                            Err(errors) => bad.push(LineError {
                                line: *line,
                                errors,
                            }),
                        }
                        if i % 1024 == 1023 {
                            progress(1024);
                        }
                    }
                    progress((part.len() % 1024) as u64);
                    (ok, bad)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("parser thread"))
            .collect()
    });
    let mut events = Vec::with_capacity(lines.len());
    let mut errors = Vec::new();
    for (ok, bad) in parts {
        events.extend(ok);
        errors.extend(bad);
    }
    if errors.is_empty() {
        Ok(events)
    } else {
        Err(errors)
    }
}

pub fn run(ctx: &Ctx, args: &IngestArgs) -> Result<()> {
    let (name, text) = match args.file.as_deref() {
        None => ("stdin".to_owned(), read_stdin()?),
        Some(p) if p.as_os_str() == "-" => ("stdin".to_owned(), read_stdin()?),
        Some(p) => (
            p.display().to_string(),
            std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?,
        ),
    };
    let started = std::time::Instant::now();
    let lines = text.lines().count() as u64;
    let pb = bar(lines, "validate", false);
    let prepared = match validate_ndjson(&text, &|n| pb.inc(n)) {
        Ok(p) => p,
        Err(errors) => {
            pb.finish_and_clear();
            for e in errors.iter().take(SHOWN) {
                for f in &e.errors {
                    if f.field.is_empty() {
                        eprintln!("{name}: line {}: {}", e.line, f.message);
                    } else {
                        eprintln!("{name}: line {}: {f}", e.line);
                    }
                }
            }
            if errors.len() > SHOWN {
                eprintln!("{name}: ... and {} more bad lines", errors.len() - SHOWN);
            }
            bail!(
                "{} of {} lines are invalid; nothing was written",
                errors.len(),
                lines
            );
        }
    };
    pb.finish_and_clear();
    if prepared.is_empty() {
        bail!("{name} holds no events; nothing was written");
    }
    let (line_of, events): (Vec<usize>, Vec<Event>) = prepared.into_iter().unzip();
    let sp = spinner(&format!(
        "committing {} events",
        thousands(events.len() as u64)
    ));
    // PII policy: subjects' data keys are created and committed first; if the append below
    // is refused (a conflicting id), they stay unused and seal nothing.
    let events = aitrail_store::keys::prepare_events(
        ctx.store.as_ref(),
        &ctx.log,
        events,
        &ctx.data.pii.policy(&ctx.log),
        &ctx.data.tenant_key(&ctx.log)?,
    )?;
    let sequencer = Sequencer::new(ctx.store.clone());
    let outcomes = match sequencer.append(&ctx.log, events) {
        Ok(o) => o,
        Err(StoreError::Conflict { index, id }) => {
            bail!("{name}: line {}: id: event {id} was already recorded with different content; nothing was written", line_of[index])
        }
        Err(e) => return Err(e.into()),
    };
    sp.finish_and_clear();
    let appended: Vec<_> = outcomes
        .iter()
        .filter_map(|o| {
            if let Outcome::Appended(r) = o {
                Some(r.seq)
            } else {
                None
            }
        })
        .collect();
    let dupes = outcomes.len() - appended.len();
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    let range = match (appended.first(), appended.last()) {
        (Some(a), Some(b)) => format!(" as seq {a}..={b}"),
        _ => String::new(),
    };
    println!(
        "ingested {} events into log {:?}{range}{} in {:.2} s ({} events/s)",
        thousands(appended.len() as u64),
        ctx.log,
        if dupes > 0 {
            format!("; {} already recorded, skipped", thousands(dupes as u64))
        } else {
            String::new()
        },
        secs,
        thousands((outcomes.len() as f64 / secs) as u64)
    );
    Ok(())
}

fn read_stdin() -> Result<String> {
    let mut s = String::new();
    std::io::stdin()
        .read_to_string(&mut s)
        .context("reading stdin")?;
    Ok(s)
}
