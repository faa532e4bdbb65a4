//! `aitrail bench pii`: the free-text PII scan in MB/s beside baselines in the same run, and
//! what the whole PII policy costs an event on its way to the store.
//!
//! - scan: `pii::scan::scan` (one pass, every kind) over ~32 MB of review notes and prompts
//!   with PII and look-alikes (dates, versions, order numbers, UUIDs, amounts) mixed in;
//!   `rewrite_text` (scan plus keyed tokens);
//! - baselines: a byte-count pass (the floor any scanner pays to touch every byte) and a
//!   naive scan with one regular expression per kind (`regex-lite`, six passes);
//! - per event: `PreparedEvent::new` (subject id referenced, as before) against
//!   `PreparedEvent::protected` with the default policy (scan, tokens, AES-256-GCM sealing).

use crate::progress::thousands;
use crate::sample::{task_events, Rng};
use aitrail_core::entry::PreparedEvent;
use aitrail_core::event::{Event, Origin};
use aitrail_core::pii::seal::DataKey;
use aitrail_core::pii::{rewrite_text, scan::scan, Policy};
use anyhow::Result;
use std::time::{Duration, Instant};

const KEY: &[u8] = b"bench tenant key";

/// Free text like reviewers and prompts write it, with PII about every 400 bytes and
/// look-alikes around it.
fn corpus(bytes: usize) -> String {
    let parts = [
        "Applicant asked to be called back on +44 20 7946 0958 after 5pm; ",
        "income verified against payslips for 2026-01 and 2026-02, ratio 0.38, ",
        "model v2.10.4 flagged order ORD-2026-000123 (uuid 550e8400-e29b-41d4-a716-446655440000). ",
        "Reviewer notes: documents consistent, affordability within policy limits, no exceptions. ",
        "Contact email jane.doe+loans@example.co.uk was confirmed by the applicant. ",
        "Statement shows card 4111 1111 1111 1111 and IBAN DE89 3704 0044 0532 0130 00; ",
        "login from 192.168.10.24 at 2026-03-01T12:00:00Z, previous 12:30:45, build 1.2.3. ",
        "Amount requested 12,500.00 EUR over 48 months; reference 1772366400123 in the ledger. ",
        "SSN 123-45-6789 appears on the scanned form, which should not have been uploaded. ",
        "The model's rationale cites stable employment and low utilisation of existing credit. ",
    ];
    let mut out = String::with_capacity(bytes + 200);
    let mut i = 0;
    while out.len() < bytes {
        out.push_str(parts[i % parts.len()]);
        i += 7;
    }
    out
}

fn best_of(rounds: usize, mut f: impl FnMut() -> usize) -> (Duration, usize) {
    let mut best = Duration::MAX;
    let mut found = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        found = std::hint::black_box(f());
        best = best.min(t.elapsed());
    }
    (best, found)
}

fn mbs(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9)
}

pub fn run() -> Result<()> {
    let text = corpus(32 << 20);
    let n = text.len();
    println!(
        "### PII scan over {:.1} MB of free text (best of 3)\n",
        n as f64 / 1e6
    );
    println!("| pass | MB/s | findings |\n| --- | ---: | ---: |");
    let (d, c) = best_of(3, || {
        text.bytes()
            .filter(|&b| b == b'@' || b.is_ascii_digit())
            .count()
    });
    println!(
        "| baseline: byte count (`@` and digits), every byte touched once | {:.0} | {} |",
        mbs(n, d),
        thousands(c as u64)
    );
    let (d, c) = best_of(3, || scan(&text).len());
    println!(
        "| **aitrail `scan`: one pass, six kinds, Luhn and mod-97 checked** | **{:.0}** | {} |",
        mbs(n, d),
        thousands(c as u64)
    );
    let policy = Policy::default();
    let (d, c) = best_of(3, || rewrite_text(&text, &policy, KEY).len());
    println!(
        "| aitrail `rewrite_text`: scan + keyed tokens (default policy) | {:.0} | {} bytes out |",
        mbs(n, d),
        thousands(c as u64)
    );
    let patterns = [
        r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}",
        r"\+?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{4}",
        r"\b(?:\d[ -]?){13,19}\b",
        r"\b\d{3}-\d{2}-\d{4}\b",
        r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b",
        r"\b(?:\d{1,3}\.){3}\d{1,3}\b",
    ];
    let regexes: Vec<regex_lite::Regex> = patterns
        .iter()
        .map(|p| regex_lite::Regex::new(p))
        .collect::<Result<_, _>>()?;
    let naive = &text[..n / 8];
    let (d, c) = best_of(1, || {
        regexes.iter().map(|r| r.find_iter(naive).count()).sum()
    });
    println!("| baseline: naive regex per kind (`regex-lite`, six passes, no checksums; on the first {:.1} MB) | {:.1} | {} |", naive.len() as f64 / 1e6, mbs(naive.len(), d), thousands(c as u64));

    // Per event: the old path (subject reference only) against the whole policy.
    let mut rng = Rng::new(42);
    let mut events = Vec::new();
    for i in 0..4_000 {
        for v in task_events(&mut rng, i, 4_000) {
            events
                .push(Event::from_value(v, Origin::Client).map_err(|e| anyhow::anyhow!("{e:?}"))?);
        }
    }
    let key = DataKey {
        subject_ref: "0".repeat(64),
        key_id: "0011223344556677".into(),
        key: [9; 32],
    };
    let count = events.len();
    let (plain, _) = best_of(3, || {
        events
            .iter()
            .cloned()
            .map(|e| {
                PreparedEvent::new(e, KEY)
                    .map(|p| p.canonical.len())
                    .unwrap_or(0)
            })
            .sum()
    });
    let (protected, _) = best_of(3, || {
        events
            .iter()
            .cloned()
            .map(|e| {
                let k = e.value.contains_key("subject").then_some(&key);
                PreparedEvent::protected(e, &policy, KEY, k)
                    .map(|p| p.canonical.len())
                    .unwrap_or(0)
            })
            .sum()
    });
    let per = |d: Duration| count as f64 / d.as_secs_f64().max(1e-9);
    println!(
        "\n### Preparing sample events, one thread ({} events, best of 3)\n",
        thousands(count as u64)
    );
    println!("| path | events/s | µs/event |\n| --- | ---: | ---: |");
    println!(
        "| baseline: `PreparedEvent::new` (subject id referenced only) | {} | {:.1} |",
        thousands(per(plain) as u64),
        plain.as_secs_f64() * 1e6 / count as f64
    );
    println!("| `PreparedEvent::protected`, default policy (scan, tokens, AES-256-GCM sealing) | {} | {:.1} |", thousands(per(protected) as u64), protected.as_secs_f64() * 1e6 / count as f64);
    Ok(())
}
