//! `aitrail prove EVENT_ID`: a self-contained inclusion proof against a signed checkpoint.

use super::{now_micros, Ctx};
use crate::args::ProveArgs;
use aitrail_store::retention::WithArchive;
use aitrail_store::store::Store;
use anyhow::{Context, Result};

pub fn run(ctx: &Ctx, args: &ProveArgs) -> Result<()> {
    // An archived event is read back from its segment (when an archive is configured).
    let archive = ctx.configured_archive()?;
    let with = archive.as_deref().map(|archive| WithArchive {
        store: ctx.store.as_ref(),
        archive,
    });
    let store: &dyn Store = match &with {
        Some(w) => w,
        None => ctx.store.as_ref(),
    };
    let proof = match aitrail_store::log::prove(store, &ctx.log, &args.event_id)? {
        Some(p) => p,
        None => {
            // No checkpoint covers the entry yet: sign one, as `aitrail checkpoint` would.
            let signer = ctx.data.signer(&ctx.log)?;
            let (cp, _) = aitrail_store::log::checkpoint(store, &ctx.log, &signer, now_micros())?;
            eprintln!(
                "signed checkpoint {} at size {} to cover the entry",
                cp.number, cp.size
            );
            aitrail_store::log::prove(store, &ctx.log, &args.event_id)?
                .context("no checkpoint covers the entry")?
        }
    };
    aitrail_store::audit::record_access(
        &ctx.sequencer(),
        &ctx.log,
        &ctx.reader(),
        "proof",
        serde_json::json!({"event_id": args.event_id}),
        1,
        None,
    )?;
    let text = serde_json::to_string_pretty(&proof)? + "\n";
    match &args.output {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
            eprintln!(
                "wrote the proof of seq {} (tree size {}) to {}",
                proof.seq,
                proof.tree_size,
                path.display()
            );
        }
        None => print!("{text}"),
    }
    Ok(())
}
