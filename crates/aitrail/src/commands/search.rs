//! `aitrail search`: one page of matching events as a table, JSON or CSV.

use super::filters::to_filter;
use super::Ctx;
use crate::args::{SearchArgs, SearchFormat};
use aitrail_core::entry::Record;
use aitrail_store::audit::{record_access, search};
use aitrail_store::query::{Cursor, Order, Query};
use aitrail_store::retention::WithArchive;
use aitrail_store::store::Store;
use anyhow::{Context, Result};
use serde_json::{json, Value};

pub fn run(ctx: &Ctx, args: &SearchArgs) -> Result<()> {
    let tenant_key = ctx.data.tenant_key(&ctx.log)?;
    let filter = to_filter(&args.filter, &ctx.data.pii.policy(&ctx.log), &tenant_key)?;
    let after = args
        .cursor
        .as_deref()
        .map(|c| Cursor::decode(c).context("--cursor: not a cursor printed by aitrail"))
        .transpose()?;
    let query = Query {
        filter,
        order: if args.desc { Order::Desc } else { Order::Asc },
        after,
        limit: Some(args.limit.max(1)),
        from_seq: None,
    };
    let archive = ctx.archive(args.include_archive)?;
    let with = archive.as_deref().map(|archive| WithArchive {
        store: ctx.store.as_ref(),
        archive,
    });
    let store: &dyn Store = match &with {
        Some(w) => w,
        None => ctx.store.as_ref(),
    };
    let (rows, next) = search(store, &ctx.log, &query)?;
    record_access(
        &ctx.sequencer(),
        &ctx.log,
        &ctx.reader(),
        "search",
        serde_json::to_value(&query.filter)?,
        rows.len() as u64,
        query.filter.task_id.as_deref(),
    )?;
    let mut keyring = aitrail_store::keys::Keyring::new(ctx.store.as_ref(), &ctx.log, &tenant_key);
    let records = rows
        .iter()
        .map(|r| {
            let mut record = Record::parse(&r.entry.entry)?;
            keyring.reveal(&mut record.event)?;
            Ok((r.entry.clone(), record))
        })
        .collect::<Result<Vec<_>>>()?;
    match args.format {
        SearchFormat::Json => {
            let events: Vec<Value> = records
                .iter()
                .map(|(e, r)| json!({"log": r.log, "seq": r.seq, "recorded_at": r.recorded_at, "leaf_hash": hex::encode(e.leaf()), "event": r.event}))
                .collect();
            println!(
                "{}",
                serde_json::to_string_pretty(&json!({"events": events, "next_cursor": next}))?
            );
        }
        SearchFormat::Csv => {
            let mut w = aitrail_store::export::csv_writer(std::io::stdout().lock());
            for (e, r) in &records {
                w.write_record(aitrail_core::export::csv_row(
                    r.seq,
                    &r.recorded_at,
                    &hex::encode(e.leaf()),
                    &r.event,
                ))?;
            }
            w.flush()?;
        }
        SearchFormat::Table => {
            let get = |r: &Record, a: &str, b: &str| {
                r.event
                    .get(a)
                    .and_then(|x| x.get(b))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            };
            println!(
                "{:>7}  {:<20}  {:<16}  {:<12}  {:<14}  {:<22}  decision",
                "seq", "occurred_at", "type", "task", "actor", "model"
            );
            for (_, r) in &records {
                let at = r
                    .event
                    .get("occurred_at")
                    .and_then(Value::as_str)
                    .unwrap_or("");
                let model = [get(r, "model", "name"), get(r, "model", "version")].join(" ");
                println!(
                    "{:>7}  {:<20}  {:<16}  {:<12}  {:<14}  {:<22}  {}",
                    r.seq,
                    at.get(..19).unwrap_or(at),
                    r.event.get("type").and_then(Value::as_str).unwrap_or(""),
                    r.event.get("task_id").and_then(Value::as_str).unwrap_or(""),
                    get(r, "actor", "id"),
                    model.trim(),
                    get(r, "review", "decision")
                );
            }
            match next {
                Some(c) => eprintln!(
                    "{} results on this page; more with --cursor {c}",
                    records.len()
                ),
                None => eprintln!("{} results", records.len()),
            }
        }
    }
    Ok(())
}
