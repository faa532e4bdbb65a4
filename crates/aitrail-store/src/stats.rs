//! Review statistics for product people: how often reviewers override the model (reject or
//! modify), how often they escalate, and how long reviews take, by model version and prompt
//! version over a period. [`compute`] is pure; [`review_stats`] reads what it needs.
//!
//! A decision counts in the period when its `occurred_at` is inside `[from, to)`. It is
//! attributed to its own model and prompt version where the event carries them, otherwise to
//! those of its task's latest `ai.inference` at or before it, as the SQL view
//! `reviewer_decisions` does (`views.rs`); decisions with neither fall under "unknown".

use crate::error::{Result, StoreError};
use crate::query::{Filter, Query};
use crate::store::Store;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// Which model and prompt a decision is about.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Version {
    /// `name version` of the model, or "unknown".
    pub model: String,
    /// The prompt version, or "unknown".
    pub prompt: String,
}

/// One reviewer decision, reduced to what the statistics need.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionFact {
    pub task_id: String,
    /// approve, reject, modify or escalate.
    pub decision: String,
    pub duration_ms: Option<u64>,
    /// The model and prompt the decision is attributed to.
    pub version: Version,
}

/// The figures of one group of decisions.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct GroupStats {
    pub decisions: u64,
    /// Reject or modify.
    pub overrides: u64,
    pub escalations: u64,
    /// Decisions that carried a `review.duration_ms`.
    pub timed: u64,
    pub p50_ms: Option<u64>,
    pub p90_ms: Option<u64>,
}

impl GroupStats {
    /// Overrides over all decisions (0 when there are none).
    pub fn override_rate(&self) -> f64 {
        ratio(self.overrides, self.decisions)
    }

    /// Escalate decisions over all decisions (0 when there are none).
    pub fn escalation_rate(&self) -> f64 {
        ratio(self.escalations, self.decisions)
    }
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

/// Statistics over a period: overall and for each (model, prompt) pair, sorted.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Stats {
    pub total: GroupStats,
    pub groups: Vec<(Version, GroupStats)>,
}

/// Nearest-rank percentile (`p` in 1..=100) of sorted values.
pub fn percentile(sorted: &[u64], p: u64) -> Option<u64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p as usize * sorted.len()).div_ceil(100).max(1);
    Some(sorted[rank - 1])
}

fn group(decisions: &[&DecisionFact]) -> GroupStats {
    let mut durations: Vec<u64> = decisions.iter().filter_map(|d| d.duration_ms).collect();
    durations.sort_unstable();
    GroupStats {
        decisions: decisions.len() as u64,
        overrides: decisions
            .iter()
            .filter(|d| d.decision == "reject" || d.decision == "modify")
            .count() as u64,
        escalations: decisions
            .iter()
            .filter(|d| d.decision == "escalate")
            .count() as u64,
        timed: durations.len() as u64,
        p50_ms: percentile(&durations, 50),
        p90_ms: percentile(&durations, 90),
    }
}

/// What decisions are grouped by.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum By {
    /// Model version alone (`prompt` is "all").
    Model,
    /// Prompt version alone (`model` is "all").
    Prompt,
    /// Each (model version, prompt version) pair.
    #[default]
    Both,
}

impl By {
    fn key(self, v: &Version) -> Version {
        let all = || "all".to_owned();
        match self {
            By::Model => Version {
                model: v.model.clone(),
                prompt: all(),
            },
            By::Prompt => Version {
                model: all(),
                prompt: v.prompt.clone(),
            },
            By::Both => v.clone(),
        }
    }
}

/// Groups `decisions` by their version.
pub fn compute(decisions: &[DecisionFact], by: By) -> Stats {
    let mut groups: BTreeMap<Version, Vec<&DecisionFact>> = BTreeMap::new();
    for d in decisions {
        groups.entry(by.key(&d.version)).or_default().push(d);
    }
    let all: Vec<&DecisionFact> = decisions.iter().collect();
    Stats {
        total: group(&all),
        groups: groups.into_iter().map(|(v, ds)| (v, group(&ds))).collect(),
    }
}

/// The few fields of an entry the statistics read. Deserializing only these (serde skips
/// the rest without building it) is several times faster than `Record::parse` on entries
/// that carry a model's whole input and output.
#[derive(Deserialize)]
struct Slim<'a> {
    #[serde(borrow)]
    event: SlimEvent<'a>,
}

#[derive(Deserialize)]
struct SlimEvent<'a> {
    #[serde(borrow)]
    task_id: Cow<'a, str>,
    #[serde(borrow, default)]
    model: Option<NameVersion<'a>>,
    #[serde(borrow, default)]
    prompt: Option<NameVersion<'a>>,
    #[serde(borrow, default)]
    review: Option<SlimReview<'a>>,
}

#[derive(Deserialize)]
struct NameVersion<'a> {
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    version: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct SlimReview<'a> {
    #[serde(borrow, default)]
    decision: Option<Cow<'a, str>>,
    #[serde(default)]
    duration_ms: Option<u64>,
}

fn slim(entry: &[u8]) -> Result<SlimEvent<'_>> {
    serde_json::from_slice::<Slim>(entry)
        .map(|s| s.event)
        .map_err(|e| StoreError::Corrupt(format!("entry is not a record: {e}")))
}

/// Model name, model version and prompt version of an event, each where it has one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Parts {
    name: Option<String>,
    version: Option<String>,
    prompt: Option<String>,
}

impl Parts {
    fn of(ev: &SlimEvent<'_>) -> Parts {
        let model = ev.model.as_ref();
        let own = |v: Option<&Cow<'_, str>>| v.map(|s| s.to_string());
        Parts {
            name: own(model.and_then(|m| m.name.as_ref())),
            version: own(model.and_then(|m| m.version.as_ref())),
            prompt: own(ev.prompt.as_ref().and_then(|p| p.version.as_ref())),
        }
    }

    /// Each part of `self`, or where it has none, that of `fallback` (column by column, as
    /// the view's `coalesce`).
    fn or(self, fallback: Option<&Parts>) -> Parts {
        let fb = fallback.cloned().unwrap_or_default();
        Parts {
            name: self.name.or(fb.name),
            version: self.version.or(fb.version),
            prompt: self.prompt.or(fb.prompt),
        }
    }

    fn version(&self) -> Version {
        let model = match (&self.name, &self.version) {
            (Some(n), Some(v)) => format!("{n} {v}"),
            (Some(n), None) => n.clone(),
            _ => "unknown".to_owned(),
        };
        Version {
            model,
            prompt: self.prompt.clone().unwrap_or_else(|| "unknown".to_owned()),
        }
    }
}

/// The model and prompt of an event, "unknown" where it has none.
#[cfg(test)]
fn version_of(ev: &SlimEvent<'_>) -> Version {
    Parts::of(ev).version()
}

/// Reads the decisions of `[from, to)` (Unix microseconds, occurred time) and the inferences
/// before `to`, and computes the statistics. Returns them with the number of entries read.
pub fn review_stats(
    store: &dyn Store,
    log: &str,
    from: i64,
    to: i64,
    by: By,
) -> Result<(Stats, u64)> {
    let mut read = 0u64;
    // (decision, its occurred_at, its own model and prompt parts)
    let mut decisions = Vec::new();
    let by_type = |types: &[&str], from: Option<i64>| Query {
        filter: Filter {
            types: types.iter().map(|t| (*t).to_owned()).collect(),
            from,
            to: Some(to),
            ..Filter::default()
        },
        ..Query::default()
    };
    store.query(
        log,
        &by_type(&["review.decision"], Some(from)),
        &mut |row| {
            read += 1;
            let ev = slim(&row.entry.entry)?;
            let review = ev.review.as_ref();
            let fact = DecisionFact {
                task_id: ev.task_id.to_string(),
                decision: review
                    .and_then(|r| r.decision.as_deref())
                    .unwrap_or_default()
                    .to_owned(),
                duration_ms: review.and_then(|r| r.duration_ms),
                version: Version {
                    model: String::new(),
                    prompt: String::new(),
                },
            };
            decisions.push((fact, row.occurred_at, Parts::of(&ev)));
            Ok(true)
        },
    )?;
    let wanted: HashSet<&str> = decisions.iter().map(|(d, ..)| d.task_id.as_str()).collect();
    // Each wanted task's inferences in occurred order (the query's order).
    let mut inferences: HashMap<String, Vec<(i64, Parts)>> = HashMap::new();
    if !wanted.is_empty() {
        store.query(log, &by_type(&["ai.inference"], None), &mut |row| {
            read += 1;
            let ev = slim(&row.entry.entry)?;
            if wanted.contains(ev.task_id.as_ref()) {
                inferences
                    .entry(ev.task_id.to_string())
                    .or_default()
                    .push((row.occurred_at, Parts::of(&ev)));
            }
            Ok(true)
        })?;
    }
    let facts: Vec<DecisionFact> = decisions
        .into_iter()
        .map(|(mut d, at, own)| {
            let before = inferences.get(&d.task_id).and_then(|list| {
                let n = list.partition_point(|(t, _)| *t <= at);
                n.checked_sub(1).map(|i| &list[i].1)
            });
            d.version = own.or(before).version();
            d
        })
        .collect();
    Ok((compute(&facts, by), read))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fact(task: &str, decision: &str, ms: Option<u64>) -> DecisionFact {
        let version = match task {
            "a" | "b" => v("m 1", "v3"),
            "c" => v("m 2", "v4"),
            _ => v("unknown", "unknown"),
        };
        DecisionFact {
            task_id: task.into(),
            decision: decision.into(),
            duration_ms: ms,
            version,
        }
    }

    fn v(model: &str, prompt: &str) -> Version {
        Version {
            model: model.into(),
            prompt: prompt.into(),
        }
    }

    /// The percentile by its definition: the smallest value with at least p% of values at
    /// or below it.
    fn naive_percentile(values: &[u64], p: u64) -> Option<u64> {
        let mut candidates: Vec<u64> = values.to_vec();
        candidates.sort_unstable();
        candidates.into_iter().find(|c| {
            let at_or_below = values.iter().filter(|x| *x <= c).count();
            at_or_below * 100 >= p as usize * values.len()
        })
    }

    #[test]
    fn percentile_matches_its_definition() {
        let mut x = 12345u64;
        for n in 0..60 {
            let values: Vec<u64> = (0..n)
                .map(|_| {
                    x = x
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    (x >> 33) % 50
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_unstable();
            for p in [1, 25, 50, 90, 99, 100] {
                assert_eq!(
                    percentile(&sorted, p),
                    naive_percentile(&values, p),
                    "{values:?} p{p}"
                );
            }
        }
    }

    #[test]
    fn groups_rates_and_times() {
        let decisions = vec![
            fact("a", "approve", Some(10)),
            fact("a", "reject", Some(40)),
            fact("b", "modify", Some(20)),
            fact("b", "escalate", None),
            fact("c", "approve", Some(30)),
            fact("z", "reject", Some(5)),
        ];
        let s = compute(&decisions, By::Both);
        assert_eq!(s.total.decisions, 6);
        assert_eq!(s.total.overrides, 3);
        assert_eq!(s.total.escalations, 1);
        assert_eq!(s.total.timed, 5);
        assert_eq!(s.total.p50_ms, Some(20));
        assert_eq!(s.total.p90_ms, Some(40));
        let names: Vec<_> = s.groups.iter().map(|(v, _)| v.clone()).collect();
        assert_eq!(
            names,
            vec![v("m 1", "v3"), v("m 2", "v4"), v("unknown", "unknown")]
        );
        let m1 = &s.groups[0].1;
        assert_eq!((m1.decisions, m1.overrides, m1.escalations), (4, 2, 1));
        assert_eq!(m1.override_rate(), 0.5);
        assert_eq!(m1.escalation_rate(), 0.25);
        assert_eq!((m1.p50_ms, m1.p90_ms), (Some(20), Some(40)));
        let unknown = &s.groups[2].1;
        assert_eq!((unknown.decisions, unknown.overrides), (1, 1));
        assert_eq!(GroupStats::default().override_rate(), 0.0);
        let by_prompt = compute(&decisions, By::Prompt);
        let prompts: Vec<_> = by_prompt
            .groups
            .iter()
            .map(|(v, g)| (v.prompt.as_str(), g.decisions))
            .collect();
        assert_eq!(prompts, vec![("unknown", 1), ("v3", 4), ("v4", 1)]);
        assert!(by_prompt.groups.iter().all(|(v, _)| v.model == "all"));
        assert_eq!(by_prompt.total, s.total);
    }

    #[test]
    fn the_slim_reader_agrees_with_the_whole_record() {
        let record = serde_json::json!({"seq": 3, "log": "default", "recorded_at": "2026-03-01T00:00:00Z",
            "event": {"type": "review.decision", "task_id": "loan-\"7\"é", "occurred_at": "2026-03-01T00:00:00Z",
                      "input": {"prompt": "long text", "nested": [1, {"a": null}]},
                      "model": {"name": "credit", "version": "2.0"}, "prompt": {"id": "p", "version": "v4"},
                      "review": {"decision": "modify", "duration_ms": 1234, "changes": {"x": 1}}}});
        let bytes = serde_json::to_vec(&record).unwrap();
        let ev = slim(&bytes).unwrap();
        assert_eq!(ev.task_id, record["event"]["task_id"].as_str().unwrap());
        assert_eq!(version_of(&ev), v("credit 2.0", "v4"));
        let review = ev.review.unwrap();
        assert_eq!(
            (review.decision.as_deref(), review.duration_ms),
            (Some("modify"), Some(1234))
        );
        let bare = serde_json::json!({"event": {"task_id": "t"}});
        let ev = slim(serde_json::to_vec(&bare).unwrap().as_slice())
            .map(|e| version_of(&e))
            .unwrap();
        assert_eq!(ev, v("unknown", "unknown"));
        assert!(slim(b"{}").is_err());
    }
}
