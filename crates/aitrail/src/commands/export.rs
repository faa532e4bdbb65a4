//! `aitrail export --format csv|ndjson`: every matching event, streamed with constant memory
//! (see `aitrail_store::export`), to stdout or a file with a progress display.

use super::filters::to_filter;
use super::Ctx;
use crate::args::{ExportArgs, ExportFormat};
use crate::progress::{bar, spinner};
use aitrail_store::audit::{record_access, record_partial_export};
use aitrail_store::export::{export, Format};
use aitrail_store::query::{Filter, Query};
use aitrail_store::retention::WithArchive;
use aitrail_store::store::Store;
use anyhow::{Context, Result};

pub fn run(ctx: &Ctx, args: &ExportArgs) -> Result<()> {
    let tenant_key = ctx.data.tenant_key(&ctx.log)?;
    let filter = to_filter(&args.filter, &ctx.data.pii.policy(&ctx.log), &tenant_key)?;
    let mut keyring = aitrail_store::keys::Keyring::new(ctx.store.as_ref(), &ctx.log, &tenant_key);
    let keyring = (!args.sealed).then_some(&mut keyring);
    let archive = ctx.archive(args.include_archive)?;
    let with = archive.as_deref().map(|archive| WithArchive {
        store: ctx.store.as_ref(),
        archive,
    });
    let store: &dyn Store = match &with {
        Some(w) => w,
        None => ctx.store.as_ref(),
    };
    let query = Query {
        filter,
        ..Query::default()
    };
    let format = match args.format {
        ExportFormat::Csv => Format::Csv,
        ExportFormat::Ndjson => Format::Ndjson,
    };
    // Entries read and handed on so far: an export that fails part way is recorded with it.
    let mut sent = 0u64;
    let exported: Result<u64> = match &args.output {
        Some(path) => {
            let file = std::fs::File::create(path)
                .with_context(|| format!("creating {}", path.display()))?;
            let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
            // Without a filter the total is the log's size, known at once: a bar. With one,
            // counting first would cost a second pass: a spinner with the count so far.
            let sp = if query.filter == Filter::default() {
                bar(ctx.store.head(&ctx.log)?.size, "export", false)
            } else {
                spinner("exporting")
            };
            let mut progress = |n: u64| {
                sent = n;
                if n.is_multiple_of(10_000) {
                    sp.set_position(n);
                    if sp.length().is_none() {
                        sp.set_message(format!("exported {n} rows"));
                    }
                }
            };
            let exported = export(
                store,
                &ctx.log,
                &query,
                format,
                &mut out,
                &mut progress,
                keyring,
            )
            .map_err(anyhow::Error::from)
            .and_then(|rows| {
                out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
                Ok(rows)
            });
            sp.finish_and_clear();
            if let Ok(rows) = exported {
                eprintln!("exported {rows} events to {}", path.display());
            }
            exported
        }
        None => {
            let stdout = std::io::stdout();
            let mut out = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
            export(
                store,
                &ctx.log,
                &query,
                format,
                &mut out,
                &mut |n| sent = n,
                keyring,
            )
            .map_err(Into::into)
        }
    };
    let mut asked = serde_json::to_value(&query.filter)?;
    asked["format"] = format.as_str().into();
    let task = query.filter.task_id.as_deref();
    let (seq, reader) = (ctx.sequencer(), ctx.reader());
    match exported {
        Ok(rows) => {
            record_access(&seq, &ctx.log, &reader, "export", asked, rows, task)?;
            Ok(())
        }
        Err(e) => {
            // What was read before the failure was read all the same.
            if sent > 0 {
                if let Err(r) = record_partial_export(&seq, &ctx.log, &reader, asked, sent, task) {
                    eprintln!("aitrail: could not record the interrupted export: {r}");
                }
            }
            Err(e)
        }
    }
}
