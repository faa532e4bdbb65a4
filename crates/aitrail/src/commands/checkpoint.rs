//! `aitrail checkpoint`: sign a checkpoint when the latest is behind the tree, print it.

use super::{now_micros, Ctx};
use anyhow::Result;

pub fn run(ctx: &Ctx) -> Result<()> {
    let signer = ctx.data.signer(&ctx.log)?;
    let (cp, new) =
        aitrail_store::log::checkpoint(ctx.store.as_ref(), &ctx.log, &signer, now_micros())?;
    if new {
        eprintln!(
            "signed checkpoint {} of log {:?} at size {}",
            cp.number, ctx.log, cp.size
        );
    } else {
        eprintln!(
            "checkpoint {} already covers all {} entries of log {:?}",
            cp.number, cp.size, ctx.log
        );
    }
    print!("{}", cp.note);
    Ok(())
}
