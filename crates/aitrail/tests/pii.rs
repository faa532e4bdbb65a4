//! End-to-end tests of PII handling through the `aitrail` binary: subject ids and PII in
//! free text never reach the data directory's files (WAL included), search by subject works
//! through the keyed reference, erasure destroys a subject's content while verify passes,
//! and the tenant configuration's mistakes are named by key and line.
//!
//! A new PII behaviour of the CLI gets its test here.

use serde_json::{json, Value};
use std::path::PathBuf;

mod common;

use common::Trail;

impl Trail {
    /// Every file under the data directory, as bytes.
    fn files(&self) -> Vec<(PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut dirs = vec![self.data()];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    dirs.push(p);
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out
    }
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

const ADA: &str = "ADA-4471-K";
const BOB: &str = "BOB-9090-Q";

fn events(subject: &str, task: &str, email: &str) -> String {
    [
        json!({"type": "ai.inference", "task_id": task, "occurred_at": "2026-03-01T12:00:00Z",
               "subject": {"kind": "applicant", "id": subject}, "model": {"name": "m"},
               "input": {"prompt": format!("Applicant {email}, phone +44 20 7946 0958, card 4111 1111 1111 1111")},
               "output": {"text": format!("approve {task}")}}),
        json!({"type": "review.decision", "task_id": task, "occurred_at": "2026-03-01T12:05:00Z",
               "subject": {"kind": "applicant", "id": subject},
               "actor": {"kind": "human", "id": "rev-1"},
               "review": {"decision": "modify", "changes": {"limit": 900}},
               "rationale": {"note": format!("called {email} from 10.20.30.40")}}),
    ]
    .iter()
    .map(|v| v.to_string() + "\n")
    .collect()
}

fn search(t: &Trail, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["search", "--format", "json"];
    all.extend_from_slice(args);
    let v: Value = serde_json::from_str(&t.ok(&all)).unwrap();
    v["events"].as_array().unwrap().clone()
}

#[test]
fn raw_pii_never_reaches_the_files_and_erasure_shreds_one_subject() {
    let t = Trail::new();
    let mut input = events(ADA, "loan-a", "ada.lovelace@example.com");
    input += &events(BOB, "loan-b", "bob.stone@example.org");
    let out = t.run_stdin(&["ingest", "-"], &input);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Search by the raw id finds the subject's events, through its reference.
    let ada = search(&t, &["--subject", ADA]);
    assert_eq!(ada.len(), 2);
    let prompt = ada[0]["event"]["input"]["prompt"].as_str().unwrap();
    assert!(prompt.starts_with("Applicant ⟦EMAIL:"), "{prompt}");
    assert!(
        prompt.contains("⟦PHONE:") && prompt.contains("⟦CARD:"),
        "{prompt}"
    );
    assert_eq!(ada[0]["event"]["output"]["text"], "approve loan-a");
    let note = ada[1]["event"]["rationale"]["note"].as_str().unwrap();
    assert!(note.contains("⟦IP:") && note.contains("⟦EMAIL:"), "{note}");
    // The same email gives the same token in both events.
    let tok = &prompt["Applicant ".len()..prompt.find(',').unwrap()];
    assert!(note.contains(tok), "{tok} in {note}");

    // Nothing raw in any file of the data directory, WAL included.
    for (path, bytes) in t.files() {
        for raw in [
            ADA,
            BOB,
            "ada.lovelace@example.com",
            "bob.stone",
            "7946 0958",
            "4111 1111",
            "10.20.30.40",
            "approve loan-a",
        ] {
            assert!(
                !contains(&bytes, raw),
                "{raw:?} found in {}",
                path.display()
            );
        }
    }

    let erased = t.ok(&[
        "erase",
        "--subject",
        ADA,
        "--reason",
        "Art. 17 request of 2026-03-02 by ada.lovelace@example.com",
    ]);
    assert!(erased.contains("content of 2 entries"), "{erased}");
    let ada = search(&t, &["--subject", ADA]);
    assert_eq!(ada.len(), 3, "two events and audit.erased");
    assert_eq!(ada[0]["event"]["input"], json!({"erased": true}));
    assert_eq!(
        ada[1]["event"]["review"]["changes"],
        json!({"erased": true})
    );
    assert_eq!(ada[2]["event"]["type"], "audit.erased");
    assert!(!ada[2].to_string().contains(ADA));
    let bob = search(&t, &["--subject", BOB]);
    assert_eq!(bob[0]["event"]["output"]["text"], "approve loan-b");

    let export = t.ok(&["export", "--format", "ndjson"]);
    assert!(!export.contains("approve loan-a") && export.contains("approve loan-b"));
    let timeline = t.ok(&["timeline", "loan-a", "--json"]);
    assert!(
        timeline.contains("\"erased\":true") || timeline.contains("\"erased\": true"),
        "{timeline}"
    );
    let verify = t.ok(&["verify", "--json"]);
    assert_eq!(serde_json::from_str::<Value>(&verify).unwrap()["ok"], true);
    for (path, bytes) in t.files() {
        for raw in [ADA, "ada.lovelace@example.com", "approve loan-a"] {
            let shown = path.display();
            assert!(!contains(&bytes, raw), "{raw:?} in {shown} after erase");
        }
    }
    let again = t.run_stdin(&["erase", "--subject", ADA], "");
    assert_eq!(again.status.code(), Some(2));
}

#[test]
fn tenant_policy_from_the_config_file() {
    let t = Trail::new();
    let path = t.data().join("aitrail.toml");
    let mut cfg = std::fs::read_to_string(&path).unwrap();
    cfg += "\n[tenants.default]\npii_fields = [\"attributes.customer_email\", \"actor.id\"]\nencrypt = false\n\n[tenants.default.text]\nemail = \"redact\"\nip = \"keep\"\n";
    std::fs::write(&path, &cfg).unwrap();
    let ev = json!({"type": "ai.inference", "task_id": "t1", "occurred_at": "2026-03-01T12:00:00Z",
        "subject": {"id": "S-1"}, "model": {"name": "m"},
        "actor": {"kind": "human", "id": "rev-amara"},
        "output": {"text": "mail a.b@example.com from 10.0.0.1"},
        "attributes": {"customer_email": "a.b@example.com"}});
    let out = t.run_stdin(&["ingest", "-"], &format!("{ev}\n"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let found = search(&t, &["--subject", "S-1"]);
    let event = &found[0]["event"];
    assert_eq!(
        event["output"]["text"], "mail ⟦EMAIL⟧ from 10.0.0.1",
        "not encrypted, email redacted, ip kept"
    );
    assert!(event["attributes"]["customer_email"]
        .as_str()
        .unwrap()
        .starts_with("ref:"));
    // The actor id is stored as its reference; a search by the raw id still finds it, and
    // the search's access record holds the reference, not the raw id.
    let actor = event["actor"]["id"].as_str().unwrap().to_owned();
    assert!(actor.starts_with("ref:"), "{actor}");
    assert_eq!(search(&t, &["--actor", "rev-amara"]).len(), 1);
    assert_eq!(search(&t, &["--actor", &actor]).len(), 1);
    assert!(search(&t, &["--actor", "rev-other"]).is_empty());
    let accessed = search(&t, &["--type", "audit.accessed"]);
    let records = serde_json::to_string(&accessed).unwrap();
    assert!(
        records.contains(&actor) && !records.contains("rev-amara"),
        "{records}"
    );

    std::fs::write(&path, cfg + "[tenants.other.text]\nphone = \"hide\"\n").unwrap();
    let out = t.run_stdin(&["search"], "");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains("line ") && err.contains("hide") && err.contains("redact"),
        "{err}"
    );
}
