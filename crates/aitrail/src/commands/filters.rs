//! From command-line filters to a store `Filter`: times parsed, the subject id turned into
//! its keyed reference.

use crate::args::{FilterArgs, TimeArg};
use aitrail_core::event::parse_time;
use aitrail_core::pii::Policy;
use aitrail_store::query::{Filter, TimeField};
use anyhow::{bail, Result};

/// Parses RFC 3339, or a date `YYYY-MM-DD` as the start of that day (or, for an end
/// bound, the start of the next day, so the whole day is included).
pub fn parse_bound(flag: &str, s: &str, end: bool) -> Result<i64> {
    if let Some(t) = parse_time(s) {
        return Ok(t);
    }
    if let Some(t) = parse_time(&format!("{s}T00:00:00Z")) {
        return Ok(if end { t + 86_400_000_000 } else { t });
    }
    bail!("--{flag} {s:?}: expected an RFC 3339 time (2026-03-01T12:00:00Z) or a date (2026-03-01)")
}

/// `policy` and `subject_key` are the tenant's: the subject and any field the policy
/// references are looked up by their keyed reference.
pub fn to_filter(a: &FilterArgs, policy: &Policy, subject_key: &[u8]) -> Result<Filter> {
    if let Some(d) = &a.decision {
        if !aitrail_core::event::DECISIONS.contains(&d.as_str()) {
            bail!(
                "--decision {d:?}: expected one of {}",
                aitrail_core::event::DECISIONS.join(", ")
            );
        }
    }
    let from = a
        .from
        .as_deref()
        .map(|s| parse_bound("from", s, false))
        .transpose()?;
    let to =
        a.to.as_deref()
            .map(|s| parse_bound("to", s, true))
            .transpose()?;
    if let (Some(f), Some(t)) = (from, to) {
        if f >= t {
            bail!("--from must be before --to");
        }
    }
    Ok(Filter {
        task_id: a.task.clone(),
        actor_id: a.actor.clone(),
        types: a
            .types
            .iter()
            .map(|t| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .collect(),
        model_name: a.model.clone(),
        model_version: a.model_version.clone(),
        prompt_version: a.prompt_version.clone(),
        decision: a.decision.clone(),
        subject_ref: a
            .subject
            .as_deref()
            .map(|s| aitrail_core::pii::subject_ref(subject_key, s)),
        from,
        to,
        time: match a.time {
            TimeArg::Occurred => TimeField::Occurred,
            TimeArg::Recorded => TimeField::Recorded,
        },
    }
    .under_policy(policy, subject_key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_cover_whole_days() {
        let from = parse_bound("from", "2026-03-01", false).unwrap();
        let to = parse_bound("to", "2026-03-01", true).unwrap();
        assert_eq!(to - from, 86_400_000_000);
        assert!(parse_bound("from", "March", false).is_err());
    }
}
