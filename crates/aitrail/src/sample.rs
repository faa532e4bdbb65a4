//! A realistic, deterministic sample pipeline: loan applications summarised by a model,
//! reviewed by a team of underwriters who approve, reject or modify the recommendation,
//! escalate hard cases to senior underwriting, and resolve them. Same seed, same events.

use serde_json::{json, Value};

/// splitmix64: a tiny, well-known deterministic generator; enough for sample data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in 0..n.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn uuid(&mut self) -> String {
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&self.next_u64().to_le_bytes());
        b[8..].copy_from_slice(&self.next_u64().to_le_bytes());
        uuid::Builder::from_random_bytes(b).into_uuid().to_string()
    }

    fn hex(&mut self, bytes: usize) -> String {
        (0..bytes)
            .map(|_| format!("{:02x}", self.below(256)))
            .collect()
    }
}

const REVIEWERS: &[&str] = &[
    "rev-amara",
    "rev-bruno",
    "rev-chen",
    "rev-dalia",
    "rev-emeka",
    "rev-farah",
    "rev-goran",
    "rev-hana",
];
const SENIORS: &[&str] = &["senior-ines", "senior-jonas"];
const PRODUCTS: &[&str] = &[
    "personal_loan",
    "auto_loan",
    "credit_line",
    "home_improvement",
];
const BANDS: &[&str] = &["300-579", "580-669", "670-739", "740-799", "800-850"];
const AMOUNTS: &[&str] = &["1k-5k", "5k-10k", "10k-25k", "25k-50k"];
const REJECT_REASONS: &[(&str, &str, &str)] = &[
    (
        "R-INC-02",
        "income",
        "Stated income not supported by the bank statements in the file.",
    ),
    (
        "R-DTI-01",
        "affordability",
        "Debt-to-income above policy limit once the new payment is included.",
    ),
    (
        "R-DOC-03",
        "documentation",
        "Employment letter is older than 90 days.",
    ),
];
const MODIFY_REASONS: &[(&str, &str, &str)] = &[
    (
        "M-AMT-01",
        "affordability",
        "Approve at a lower amount that keeps DTI under 40%.",
    ),
    (
        "M-CND-02",
        "conditions",
        "Approve with a condition: proof of address before disbursement.",
    ),
    (
        "M-TRM-01",
        "terms",
        "Approve with a shorter term to reduce risk.",
    ),
];
const ESCALATION_REASONS: &[&str] = &[
    "Possible identity mismatch between application and credit file",
    "Amount above the reviewer's approval authority",
    "Model confidence low and file incomplete",
];

/// Base time of the sample: 2026-06-01T08:00:00Z, in seconds.
const BASE: i64 = 1_780_300_800;

fn ts(secs: i64) -> String {
    aitrail_core::event::format_time(secs * 1_000_000).replace(".000000Z", "Z")
}

/// The events of task number `i` (0-based) of `tasks`, in the order they occurred.
pub fn task_events(rng: &mut Rng, i: u64, tasks: u64) -> Vec<Value> {
    let task = format!("loan-{:06}", i + 1);
    // Spread the tasks over 120 days, business hours-ish.
    let mut t = BASE + (i as i64) * (120 * 86_400) / tasks.max(1) as i64 + rng.below(3600) as i64;
    // Model version 2.0 replaces 1.4 after a third of the period; prompts move v3 -> v4 -> v5.
    let phase = i * 3 / tasks.max(1);
    let (model_version, prompt_version) = match phase {
        0 => ("1.4.0", "v3"),
        1 => (*rng.pick(&["1.4.0", "2.0.0"]), "v4"),
        _ => ("2.0.0", "v5"),
    };
    let env = json!({"deployment": "production", "region": "eu-west-1"});
    let request = format!("req-{}", rng.hex(8));
    let trace = rng.hex(16);
    let product = *rng.pick(PRODUCTS);
    let band = *rng.pick(BANDS);
    let amount = *rng.pick(AMOUNTS);
    let applicant = format!("applicant-{:07}", 1_000_000 + i * 7 + rng.below(7));
    let mut out = Vec::new();

    out.push(json!({
        "id": rng.uuid(), "type": "task.created", "task_id": task, "occurred_at": ts(t),
        "actor": {"kind": "system", "id": "intake-service"},
        "subject": {"kind": "applicant", "id": applicant},
        "environment": env, "request_id": request, "trace_id": trace,
        "attributes": {"product": product, "amount_band": amount, "channel": *rng.pick(&["web", "branch", "partner"])}
    }));

    t += 2 + rng.below(5) as i64;
    let score_rank = BANDS.iter().position(|b| *b == band).unwrap_or(2) as f64;
    let approve_model = rng.unit() < 0.25 + score_rank * 0.15;
    let confidence = ((0.55 + rng.unit() * 0.4) * 1000.0).round() / 1000.0;
    let verdict = if approve_model { "APPROVE" } else { "DECLINE" };
    let dti = 18 + rng.below(30);
    out.push(json!({
        "id": rng.uuid(), "type": "ai.inference", "task_id": task, "occurred_at": ts(t),
        "actor": {"kind": "model", "id": "credit-summary"},
        "subject": {"kind": "applicant", "id": applicant},
        "model": {"provider": "acme-ai", "name": "credit-risk-llm", "version": model_version},
        "prompt": {"id": "loan-summary", "version": prompt_version},
        "input": {
            "prompt": "Summarise the credit file and recommend APPROVE or DECLINE with reasons, citing policy sections.",
            "context": {"product": product, "credit_score_band": band, "amount_band": amount, "dti_percent": dti,
                        "employment_years": rng.below(25), "open_accounts": rng.below(12)},
            "parameters": {"temperature": 0.2, "max_tokens": 512}
        },
        "output": {
            "text": format!("Recommend {verdict}. Score band {band}, DTI {dti}%, within policy 4.2 limits: {}.",
                            if approve_model { "yes" } else { "no" }),
            "confidence": confidence,
            "token_logprobs": [{"token": verdict, "logprob": confidence.ln()}],
            "finish_reason": "stop"
        },
        "environment": env, "request_id": request, "trace_id": trace,
        "attributes": {"latency_ms": 400 + rng.below(1800), "input_tokens": 900 + rng.below(400), "output_tokens": 60 + rng.below(120)}
    }));

    t += 60 + rng.below(3 * 3600) as i64;
    let reviewer = *rng.pick(REVIEWERS);
    out.push(json!({
        "id": rng.uuid(), "type": "review.assigned", "task_id": task, "occurred_at": ts(t),
        "actor": {"kind": "system", "id": "review-router"},
        "attributes": {"assignee": reviewer, "queue": "consumer-lending"}
    }));

    // Newer model versions are overridden less often.
    let override_rate = if model_version == "1.4.0" { 0.30 } else { 0.16 };
    let roll = rng.unit();
    let decision = if roll < 0.06 {
        "escalate"
    } else if roll < 0.06 + override_rate * 0.55 {
        "reject"
    } else if roll < 0.06 + override_rate {
        "modify"
    } else {
        "approve"
    };
    let duration = 45_000
        + rng.below(if decision == "approve" {
            240_000
        } else {
            900_000
        });
    t += (duration / 1000) as i64 + 30;
    let mut review = json!({"decision": decision, "duration_ms": duration});
    let (code, category, note) = match decision {
        "reject" => {
            let r = *rng.pick(REJECT_REASONS);
            review["changes"] = json!({"recommendation": {"from": verdict.to_lowercase(), "to": if approve_model { "decline" } else { "approve" }}});
            r
        }
        "modify" => {
            let r = *rng.pick(MODIFY_REASONS);
            review["changes"] = json!({"recommendation": {"from": verdict.to_lowercase(), "to": "approve_with_conditions"},
                                        "conditions": [r.2]});
            r
        }
        "escalate" => ("E-AUTH-01", "authority", "Needs senior underwriting."),
        _ => (
            "A-POL-01",
            "policy",
            "Model summary matches the file; within policy.",
        ),
    };
    out.push(json!({
        "id": rng.uuid(), "type": "review.decision", "task_id": task, "occurred_at": ts(t),
        "actor": {"kind": "human", "id": reviewer, "role": "underwriter"},
        "subject": {"kind": "applicant", "id": applicant},
        "model": {"provider": "acme-ai", "name": "credit-risk-llm", "version": model_version},
        "prompt": {"id": "loan-summary", "version": prompt_version},
        "review": review, "rationale": {"code": code, "category": category, "note": note},
        "request_id": request, "trace_id": trace
    }));

    let mut outcome = match decision {
        "approve" if approve_model => "approved",
        "approve" => "declined",
        "reject" if approve_model => "declined",
        "reject" => "approved",
        _ => "approved_with_conditions",
    };
    if decision == "escalate" {
        let senior = *rng.pick(SENIORS);
        t += 120 + rng.below(600) as i64;
        out.push(json!({
            "id": rng.uuid(), "type": "task.escalated", "task_id": task, "occurred_at": ts(t),
            "actor": {"kind": "human", "id": reviewer, "role": "underwriter"},
            "escalation": {"from": reviewer, "to": "senior-underwriting", "reason": *rng.pick(ESCALATION_REASONS)}
        }));
        let senior_approves = rng.unit() < 0.6;
        let senior_duration = 300_000 + rng.below(1_800_000);
        t += 3600 + rng.below(20 * 3600) as i64;
        out.push(json!({
            "id": rng.uuid(), "type": "review.decision", "task_id": task, "occurred_at": ts(t),
            "actor": {"kind": "human", "id": senior, "role": "senior_underwriter"},
            "subject": {"kind": "applicant", "id": applicant},
            "model": {"provider": "acme-ai", "name": "credit-risk-llm", "version": model_version},
            "prompt": {"id": "loan-summary", "version": prompt_version},
            "review": {"decision": if senior_approves { "approve" } else { "reject" }, "duration_ms": senior_duration,
                       "changes": if senior_approves { Value::Null } else { json!({"recommendation": {"from": verdict.to_lowercase(), "to": "decline"}}) }},
            "rationale": {"code": if senior_approves { "S-VER-01" } else { "S-RSK-02" }, "category": "senior_review",
                          "note": if senior_approves { "Identity and income verified by phone." } else { "Risk outside appetite after verification." }},
            "request_id": request, "trace_id": trace
        }));
        outcome = if senior_approves {
            "approved"
        } else {
            "declined"
        };
    }
    t += 30 + rng.below(600) as i64;
    out.push(json!({
        "id": rng.uuid(), "type": "task.resolved", "task_id": task, "occurred_at": ts(t),
        "actor": {"kind": "system", "id": "decision-service"},
        "resolution": {"outcome": outcome, "note": format!("Customer notified via {}.", rng.pick(&["email", "app", "letter"]))},
        "request_id": request, "trace_id": trace
    }));
    // Drop explicit nulls so events stay tidy.
    for ev in &mut out {
        if let Some(r) = ev.get_mut("review").and_then(Value::as_object_mut) {
            r.retain(|_, v| !v.is_null());
        }
    }
    out
}

/// `n` sample events, each padded with `attributes.notes` to about `bytes` of JSON.
pub fn padded_events(seed: u64, n: usize, bytes: usize) -> Vec<Value> {
    let mut rng = Rng::new(seed);
    let tasks = (n / 5 + 1) as u64;
    let filler =
        "Reviewer checklist: identity, income, affordability, documentation, policy exceptions. ";
    let mut out = Vec::with_capacity(n);
    for i in 0.. {
        for mut ev in task_events(&mut rng, i, tasks) {
            let len = ev.to_string().len();
            if len + 20 < bytes {
                let pad: String = filler.chars().cycle().take(bytes - len - 20).collect();
                if let Some(obj) = ev.as_object_mut() {
                    obj.entry("attributes").or_insert_with(|| json!({}))["notes"] =
                        Value::String(pad);
                }
            }
            out.push(ev);
            if out.len() == n {
                return out;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aitrail_core::event::{Event, Origin};

    #[test]
    fn sample_is_deterministic_and_valid() {
        let gen = |seed| {
            let mut rng = Rng::new(seed);
            (0..200)
                .flat_map(|i| task_events(&mut rng, i, 200))
                .collect::<Vec<_>>()
        };
        let a = gen(7);
        assert_eq!(a, gen(7));
        assert_ne!(a, gen(8));
        for ev in a {
            Event::from_value(ev.clone(), Origin::Client).unwrap_or_else(|e| panic!("{ev}: {e:?}"));
        }
    }
}
