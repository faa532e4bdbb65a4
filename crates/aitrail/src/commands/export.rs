//! `aitrail export --format csv|ndjson`: every matching event, streamed with constant memory
//! (see `aitrail_store::export`), to stdout or a file with a progress display.

use super::filters::to_filter;
use super::Ctx;
use crate::args::{ExportArgs, ExportFormat};
use crate::progress::{bar, spinner};
use aitrail_store::audit::record_access;
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
    let rows = match &args.output {
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
            let rows = export(
                store,
                &ctx.log,
                &query,
                format,
                &mut out,
                &mut |n| {
                    sp.set_position(n);
                    if sp.length().is_none() {
                        sp.set_message(format!("exported {n} rows"));
                    }
                },
                keyring,
            )?;
            out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
            sp.finish_and_clear();
            eprintln!("exported {rows} events to {}", path.display());
            rows
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
                &mut |_| {},
                keyring,
            )?
        }
    };
    let mut asked = serde_json::to_value(&query.filter)?;
    asked["format"] = format.as_str().into();
    record_access(
        &ctx.sequencer(),
        &ctx.log,
        &ctx.reader(),
        "export",
        asked,
        rows,
        query.filter.task_id.as_deref(),
    )?;
    Ok(())
}
