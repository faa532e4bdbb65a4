//! `aitrail review --from --to --note`: attest that you reviewed a range of the trail. The
//! log is verified first; the attestation records the result, the entry count and the
//! latest checkpoint.

use super::filters::parse_bound;
use super::Ctx;
use crate::args::ReviewArgs;
use aitrail_store::audit::record_review;
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx, args: &ReviewArgs) -> Result<()> {
    let from = parse_bound("from", &args.from, false)?;
    let to = parse_bound("to", &args.to, true)?;
    if from >= to {
        bail!("--from must be before --to");
    }
    if args.note.trim().is_empty() {
        bail!("--note: say what you checked");
    }
    let verifier = ctx.data.verifier(&ctx.log)?;
    let report = aitrail_store::verify::verify_log(
        ctx.store.as_ref(),
        &ctx.log,
        verifier.as_ref(),
        &mut |_| {},
    )?;
    let receipt = record_review(
        ctx.store.as_ref(),
        &ctx.sequencer(),
        &ctx.log,
        &ctx.reader(),
        from..to,
        &args.note,
        Some(report.ok),
    )?;
    println!(
        "recorded your review as event {} (seq {}); the log verified {}",
        receipt.id,
        receipt.seq,
        if report.ok {
            "intact"
        } else {
            "with PROBLEMS: run aitrail verify"
        }
    );
    Ok(())
}
