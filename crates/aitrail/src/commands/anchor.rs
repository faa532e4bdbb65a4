//! `aitrail anchor [--anchor SPEC]... [--all]`: keep the latest checkpoint of the log (signed
//! now if the tree has grown past it) at every configured anchor, and record each new copy
//! in the log as an `audit.anchored` event. Exit 0 when every anchor took it, 2 otherwise.

use super::Ctx;
use crate::args::AnchorArgs;
use aitrail_store::sequencer::Sequencer;
use anyhow::{bail, Result};
use std::process::ExitCode;

pub fn run(ctx: &Ctx, args: &AnchorArgs) -> Result<ExitCode> {
    let anchors = crate::anchors::open(&ctx.data, &args.anchors)?;
    if anchors.is_empty() {
        bail!(
            "no anchors configured: pass --anchor SPEC (dir:PATH, s3://BUCKET/PREFIX, tsa:URL) or set `anchors` in {}",
            ctx.data.path.join("aitrail.toml").display()
        );
    }
    let logs = if args.all {
        ctx.store.logs()?
    } else {
        vec![ctx.log.clone()]
    };
    let subject_key = ctx.data.hmac_key()?;
    let sequencer = Sequencer::new(ctx.store.clone());
    let mut failed = 0usize;
    let mut attempts = 0usize;
    for log in &logs {
        if ctx.store.head(log)?.size == 0 {
            eprintln!("log {log:?} has no entries: nothing to anchor");
            continue;
        }
        let signer = ctx.data.signer(log)?;
        let (cp, done) = crate::anchors::anchor_log(
            ctx.store.as_ref(),
            &sequencer,
            log,
            &signer,
            &subject_key,
            &anchors,
        )?;
        println!(
            "checkpoint {} of log {log:?}: {} entries, root {}",
            cp.number,
            cp.size,
            hex::encode(cp.root)
        );
        for a in done {
            attempts += 1;
            match a.outcome {
                Ok(r) => {
                    let what = if r.created { "anchored" } else { "already at" };
                    let when = r
                        .timestamp
                        .map(|t| format!(" (timestamped {} by {})", t.gen_time, t.tsa))
                        .unwrap_or_default();
                    println!("  {what} {}: {}{when}", a.anchor, r.location);
                }
                Err(e) => {
                    failed += 1;
                    println!("  FAILED {}: {e}", a.anchor);
                }
            }
        }
    }
    sequencer.shutdown();
    if failed > 0 {
        eprintln!("error: {failed} of {attempts} anchorings failed (see above)");
        return Ok(ExitCode::from(2));
    }
    Ok(ExitCode::SUCCESS)
}
