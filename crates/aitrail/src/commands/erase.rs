//! `aitrail erase --subject ID`: GDPR Art. 17 erasure by crypto-shredding. The subject's
//! data key is destroyed, so the content of its events (input, output, review changes) can
//! no longer be read anywhere, while the entries and every hash stay as they were and
//! `verify` still passes. The erasure is recorded as an `audit.erased` event holding the
//! subject's keyed reference, never its id.

use super::Ctx;
use crate::args::EraseArgs;
use aitrail_store::keys::erase_subject;
use anyhow::{bail, Result};

pub fn run(ctx: &Ctx, args: &EraseArgs) -> Result<()> {
    let tenant_key = ctx.data.tenant_key(&ctx.log)?;
    let subject_ref = match (&args.subject, &args.subject_ref) {
        (Some(id), None) if !id.trim().is_empty() => {
            aitrail_core::pii::subject_ref(&tenant_key, id)
        }
        (None, Some(r))
            if r.len() == 64
                && r.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) =>
        {
            r.clone()
        }
        (None, Some(r)) => bail!("--subject-ref {r:?}: expected 64 lowercase hex digits"),
        _ => bail!("give --subject ID or --subject-ref REF"),
    };
    // The reason is free text too: the tenant's policy applies to it.
    let reason = args.reason.as_deref().map(|r| {
        aitrail_core::pii::rewrite_text(r, &ctx.data.pii.policy(&ctx.log), &tenant_key).into_owned()
    });
    let erasure = erase_subject(
        &ctx.sequencer(),
        &ctx.log,
        &ctx.reader(),
        &subject_ref,
        reason.as_deref(),
    )?;
    println!(
        "erased subject {} in log {:?}: data key {} destroyed; the content of {} entries can no longer be read; recorded as audit.erased at seq {}",
        erasure.subject_ref, ctx.log, erasure.key_id, erasure.entries, erasure.receipt.seq
    );
    for w in &erasure.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
