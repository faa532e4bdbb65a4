//! End-to-end tests of the `aitrail` binary: each test makes its own data directory and runs
//! commands as a user would. A new command gets its tests here, grouped under its name.

mod common;

use common::{stderr, stdout, Trail};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;

impl Trail {
    fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open(self.data().join("trail.db")).unwrap()
    }
}

fn ndjson(events: &[Value]) -> String {
    events.iter().map(|e| e.to_string() + "\n").collect()
}

fn sample(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            json!({"id": format!("00000000-0000-4000-8000-{:012}", i), "type": "review.decision", "task_id": format!("loan-{}", i / 3),
                   "occurred_at": "2026-03-01T12:00:00Z", "actor": {"kind": "human", "id": "rev-ana"},
                   "review": {"decision": "approve", "duration_ms": 1000 + i}, "subject": {"kind": "applicant", "id": format!("applicant-{i}")}})
        })
        .collect()
}

// ---- init and key ----

#[test]
fn init_creates_private_keys_and_prints_the_verifier_key() {
    let t = Trail::new();
    let key = stdout(&t.run(&["key"]));
    assert!(key.starts_with("test.example/default+"), "{key}");
    aitrail_core::checkpoint::Verifier::parse(key.trim()).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in ["hmac.key", "keys/default.key"] {
            let mode = std::fs::metadata(t.data().join(f))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
    }
    // A second init keeps the keys.
    let again = t.run(&["init"]);
    assert!(again.status.success());
    assert_eq!(stdout(&again), key);
}

#[test]
fn commands_without_init_say_what_to_do() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aitrail"))
        .arg("--data")
        .arg(dir.path().join("none"))
        .arg("verify")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("aitrail init"), "{}", stderr(&out));
}

// ---- ingest ----

#[test]
fn ingest_file_and_stdin_then_verify() {
    let t = Trail::new();
    let events = sample(10);
    let f = t.file("a.ndjson", &ndjson(&events[..6]));
    let out = t.run(&["ingest", f.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("ingested 6 events"),
        "{}",
        stdout(&out)
    );
    let out = t.run_stdin(&["ingest", "-"], &ndjson(&events[6..]));
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("as seq 6..=9"), "{}", stdout(&out));
    let (code, report) = t.verify_json();
    assert_eq!(
        (code, report["ok"].clone(), report["entries"].clone()),
        (0, json!(true), json!(10))
    );
}

#[test]
fn ingest_is_all_or_nothing_and_names_line_and_field() {
    let t = Trail::new();
    let mut events = sample(5);
    events[3]["review"]["decision"] = json!("maybe");
    let mut text = ndjson(&events);
    text.push_str("{\"type\": \"task.created\", \"task_id\": \n");
    let f = t.file("bad.ndjson", &text);
    let out = t.run(&["ingest", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("line 4: review.decision: expected one of approve, reject, modify, escalate"),
        "{err}"
    );
    assert!(err.contains("line 6: malformed JSON"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    assert_eq!(t.verify_json().1["entries"], json!(0));
}

#[test]
fn ingest_twice_is_idempotent_and_a_changed_event_is_refused() {
    let t = Trail::new();
    let events = sample(4);
    let f = t.file("a.ndjson", &ndjson(&events));
    assert!(t.run(&["ingest", f.to_str().unwrap()]).status.success());
    let out = t.run(&["ingest", f.to_str().unwrap()]);
    assert!(out.status.success());
    assert!(
        stdout(&out).contains("4 already recorded"),
        "{}",
        stdout(&out)
    );
    let mut changed = sample(5);
    changed[2]["review"]["duration_ms"] = json!(99);
    let g = t.file("b.ndjson", &ndjson(&changed));
    let out = t.run(&["ingest", g.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("line 3: id:"), "{}", stderr(&out));
    assert_eq!(
        t.verify_json().1["entries"],
        json!(4),
        "the new fifth event must not be written either"
    );
}

#[test]
fn raw_subject_ids_are_not_stored() {
    let t = Trail::new();
    let f = t.file("a.ndjson", &ndjson(&sample(3)));
    assert!(t.run(&["ingest", f.to_str().unwrap()]).status.success());
    drop(t.run(&["checkpoint"]));
    for entry in std::fs::read_dir(t.data()).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !bytes.windows(11).any(|w| w == b"applicant-1"),
                "raw subject id found in {}",
                path.display()
            );
        }
    }
}

// ---- verify ----

fn tamper(t: &Trail, sql: &str) {
    let db = t.db();
    db.execute_batch("DROP TRIGGER entries_no_update; DROP TRIGGER entries_no_delete;")
        .unwrap();
    db.execute_batch(sql).unwrap();
}

#[test]
fn verify_exit_codes_and_json_name_the_first_entry() {
    let t = Trail::new();
    let f = t.file("a.ndjson", &ndjson(&sample(20)));
    assert!(t.run(&["ingest", f.to_str().unwrap()]).status.success());
    assert!(t.run(&["checkpoint"]).status.success());
    assert_eq!(t.verify_json().0, 0);
    tamper(
        &t,
        "UPDATE entries SET entry = replace(entry, 'approve', 'reject') WHERE seq = 7",
    );
    let (code, report) = t.verify_json();
    assert_eq!(code, 1);
    assert_eq!(report["ok"], json!(false));
    let first = &report["problems"][0];
    assert_eq!(first["kind"], json!("changed_entry"));
    assert_eq!(first["seq"], json!(7));
    assert_eq!(
        first["event_id"],
        json!("00000000-0000-4000-8000-000000000007")
    );
    let human = t.run(&["verify"]);
    assert_eq!(human.status.code(), Some(1));
    assert!(
        stdout(&human).contains("first entry affected: seq 7"),
        "{}",
        stdout(&human)
    );
}

#[test]
fn verify_reports_truncation_after_a_checkpoint() {
    let t = Trail::new();
    let f = t.file("a.ndjson", &ndjson(&sample(12)));
    assert!(t.run(&["ingest", f.to_str().unwrap()]).status.success());
    assert!(t.run(&["checkpoint"]).status.success());
    tamper(&t, "DELETE FROM entries WHERE seq >= 9");
    let (code, report) = t.verify_json();
    assert_eq!(code, 1);
    assert_eq!(report["problems"][0]["kind"], json!("truncated"));
    assert_eq!(report["problems"][0]["seq"], json!(9));
}

// ---- checkpoint, prove, verify-proof ----

#[test]
fn prove_and_verify_proof_offline() {
    let t = Trail::new();
    let f = t.file("a.ndjson", &ndjson(&sample(37)));
    assert!(t.run(&["ingest", f.to_str().unwrap()]).status.success());
    let cp = t.run(&["checkpoint"]);
    assert!(cp.status.success());
    let note = stdout(&cp);
    assert!(note.starts_with("test.example/default\n37\n"), "{note}");
    assert!(
        note.contains("\n\n\u{2014} test.example/default "),
        "{note}"
    );
    // A second checkpoint with nothing new returns the same note.
    assert_eq!(stdout(&t.run(&["checkpoint"])), note);

    let proof_path = t.dir.path().join("proof.json");
    let out = t.run(&[
        "prove",
        "00000000-0000-4000-8000-000000000013",
        "-o",
        proof_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let proof: Value =
        serde_json::from_str(&std::fs::read_to_string(&proof_path).unwrap()).unwrap();
    for field in [
        "log",
        "seq",
        "tree_size",
        "entry",
        "leaf_hash",
        "audit_path",
        "root_hash",
        "checkpoint",
    ] {
        assert!(proof.get(field).is_some(), "proof lacks {field}");
    }
    assert_eq!(
        (proof["seq"].clone(), proof["tree_size"].clone()),
        (json!(13), json!(37))
    );

    // Offline: another data directory, only the verifier key.
    let key = stdout(&t.run(&["key"])).trim().to_owned();
    let other = tempfile::tempdir().unwrap();
    let verify = |path: &Path, key: &str| {
        Command::new(env!("CARGO_BIN_EXE_aitrail"))
            .arg("--data")
            .arg(other.path())
            .args(["verify-proof", path.to_str().unwrap(), "--key", key])
            .output()
            .unwrap()
    };
    let ok = verify(&proof_path, &key);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("is seq 13"), "{}", stdout(&ok));

    let mut bad = proof.clone();
    bad["audit_path"][0] = json!("00".repeat(32));
    let bad_path = t.file("bad.json", &bad.to_string());
    assert_eq!(verify(&bad_path, &key).status.code(), Some(1));

    let stranger = aitrail_core::checkpoint::Signer::from_seed("test.example/default", [1; 32])
        .unwrap()
        .verifier()
        .to_vkey();
    assert_eq!(verify(&proof_path, &stranger).status.code(), Some(1));
}

#[test]
fn prove_signs_a_checkpoint_when_none_covers_the_entry() {
    let t = Trail::new();
    let f = t.file("a.ndjson", &ndjson(&sample(3)));
    assert!(t.run(&["ingest", f.to_str().unwrap()]).status.success());
    let out = t.run(&["prove", "00000000-0000-4000-8000-000000000002"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("signed checkpoint 1"),
        "{}",
        stderr(&out)
    );
    let unknown = t.run(&["prove", "00000000-0000-4000-8000-999999999999"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        stderr(&unknown).contains("not found"),
        "{}",
        stderr(&unknown)
    );
}

// ---- demo ----

#[test]
fn demo_loads_verifies_and_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let run = || {
        Command::new(env!("CARGO_BIN_EXE_aitrail"))
            .arg("--data")
            .arg(dir.path())
            .args(["demo", "--tasks", "60", "--seed", "3"])
            .output()
            .unwrap()
    };
    let first = run();
    assert!(first.status.success(), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("verify: intact"),
        "{}",
        stdout(&first)
    );
    assert!(stdout(&first).contains("Try next"));
    let second = run();
    assert!(
        stdout(&second).contains("0 events appended"),
        "{}",
        stdout(&second)
    );
}

// ---- token and serve ----

#[test]
fn token_create_prints_the_token_once_and_stores_only_its_hash() {
    let t = Trail::new();
    let out = t.run(&[
        "token",
        "create",
        "--role",
        "viewer",
        "--name",
        "dashboards",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).lines().last().unwrap().to_owned();
    assert!(token.starts_with("atr_") && token.len() > 60, "{token}");
    let db = std::fs::read(t.data().join("trail.db")).unwrap();
    let wal = std::fs::read(t.data().join("trail.db-wal")).unwrap_or_default();
    for bytes in [db, wal] {
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token itself is stored"
        );
    }
    let list = stdout(&t.run(&["token", "list", "--json"]));
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list[0]["role"], json!("viewer"));
    assert_eq!(list[0]["name"], json!("dashboards"));
    let id = list[0]["id"].as_str().unwrap();
    assert!(t.run(&["token", "revoke", id]).status.success());
    assert!(stdout(&t.run(&["token", "list"])).contains("revoked"));
    assert_eq!(
        t.run(&["token", "revoke", "tk_nope"]).status.code(),
        Some(2)
    );
    assert_eq!(
        t.run(&["token", "create", "--role", "root"]).status.code(),
        Some(2)
    );
}

/// A running `aitrail serve` on a free port.
struct Server {
    child: std::process::Child,
    base: String,
}

impl Server {
    fn start(t: &Trail) -> Server {
        let (child, base) = t.serve(&["--checkpoint-every", "1s"]);
        Server { child, base }
    }

    fn post(&self, token: &str, body: &str) -> (u16, String) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .post(&format!("{}/v1/events", self.base))
            .header("Authorization", &format!("Bearer {token}"))
            .header("Content-Type", "application/json")
            .send(body)
            .unwrap();
        (
            resp.status().as_u16(),
            resp.body_mut().read_to_string().unwrap(),
        )
    }

    /// Sends SIGTERM and waits; returns the exit status and stderr.
    fn terminate(self) -> (std::process::ExitStatus, String) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let out = self.child.wait_with_output().unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

#[test]
fn serve_acknowledges_only_committed_events_and_stops_cleanly_on_sigterm() {
    let t = Trail::new();
    let token = stdout(&t.run(&["token", "create", "--role", "ingest"]))
        .trim()
        .to_owned();
    let server = Server::start(&t);
    let events = sample(40);
    // Clients keep sending while the server is told to stop: every 201 must be on disk.
    let acknowledged = std::sync::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for chunk in events.chunks(10) {
            let (server, token, acknowledged) = (&server, &token, &acknowledged);
            s.spawn(move || {
                for e in chunk {
                    let (status, body) = server.post(token, &e.to_string());
                    assert_eq!(status, 201, "{body}");
                    acknowledged
                        .lock()
                        .unwrap()
                        .push(e["id"].as_str().unwrap().to_owned());
                }
            });
        }
    });
    let (status, err) = server.terminate();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("every acknowledged event is committed"),
        "{err}"
    );
    let (code, report) = t.verify_json();
    assert_eq!(code, 0);
    assert_eq!(report["entries"], json!(acknowledged.lock().unwrap().len()));
}

#[test]
fn serve_refuses_without_a_token_and_health_is_public() {
    let t = Trail::new();
    let server = Server::start(&t);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let health = agent
        .get(&format!("{}/healthz", server.base))
        .call()
        .unwrap();
    assert_eq!(health.status().as_u16(), 200);
    let (status, body) = server.post("not-a-token", &sample(1)[0].to_string());
    assert_eq!(status, 401, "{body}");
    assert!(body.contains("\"error\""), "{body}");
    let _ = server.terminate();
    assert_eq!(t.verify_json().1["entries"], json!(0));
}

// ---- search, timeline, export, review ----

#[test]
#[cfg(target_os = "linux")] // /dev/full
fn an_export_that_fails_part_way_is_recorded_as_incomplete() {
    let t = Trail::new();
    let out = t.run(&["demo", "--tasks", "20", "--seed", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));
    // /dev/full takes the file but refuses every write (ENOSPC).
    let out = t.run(&["export", "--format", "ndjson", "-o", "/dev/full"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("writing the export"),
        "{}",
        stderr(&out)
    );
    let audits = t.run(&[
        "search",
        "--type",
        "audit.accessed",
        "--format",
        "json",
        "--limit",
        "100",
    ]);
    let audits: Value = serde_json::from_slice(&audits.stdout).unwrap();
    let events = audits["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audits}");
    let a = &events[0]["event"]["attributes"];
    assert_eq!(a["action"], json!("export"));
    assert_eq!(a["complete"], json!(false), "{a}");
    assert!(a["results"].as_u64().unwrap() > 0, "{a}");
}

#[test]
fn search_timeline_export_and_review_from_the_cli() {
    let t = Trail::new();
    let out = t.run(&["demo", "--tasks", "40", "--seed", "5"]);
    assert!(out.status.success(), "{}", stderr(&out));

    let page = t.run(&[
        "search",
        "--type",
        "review.decision",
        "--decision",
        "reject",
        "--format",
        "json",
        "--limit",
        "100",
    ]);
    assert!(page.status.success(), "{}", stderr(&page));
    let page: Value = serde_json::from_slice(&page.stdout).unwrap();
    let events = page["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events
        .iter()
        .all(|e| e["event"]["review"]["decision"] == json!("reject")));
    let task = events[0]["event"]["task_id"].as_str().unwrap().to_owned();

    let tl = t.run(&["timeline", &task, "--json"]);
    assert!(tl.status.success(), "{}", stderr(&tl));
    let tl: Value = serde_json::from_slice(&tl.stdout).unwrap();
    assert!(tl["summary"]["overrides"].as_u64().unwrap() >= 1, "{tl}");
    let text = stdout(&t.run(&["timeline", &task]));
    assert!(
        text.contains("overrides of the model")
            && text.contains("time from model output to first review"),
        "{text}"
    );
    assert_eq!(t.run(&["timeline", "no-such-task"]).status.code(), Some(2));

    // CSV parsed by another reader (Python's csv module), with the header row.
    let csv_path = t.dir.path().join("out.csv");
    let out = t.run(&[
        "export",
        "--format",
        "csv",
        "--type",
        "review.decision",
        "-o",
        csv_path.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let py = Command::new("python3")
        .arg("-c")
        .arg("import csv,sys,json; r=list(csv.DictReader(open(sys.argv[1], encoding='utf-8-sig', newline=''))); print(json.dumps([len(r), sorted(set(x['type'] for x in r)), r[0]['leaf_hash']]))")
        .arg(&csv_path)
        .output()
        .unwrap();
    assert!(py.status.success(), "{}", stderr(&py));
    let parsed: Value = serde_json::from_slice(&py.stdout).unwrap();
    assert!(parsed[0].as_u64().unwrap() >= 40, "{parsed}");
    assert_eq!(parsed[1], json!(["review.decision"]));
    assert_eq!(parsed[2].as_str().unwrap().len(), 64);

    let nd = t.run(&["export", "--format", "ndjson", "--task", &task]);
    let lines: Vec<&[u8]> = nd
        .stdout
        .split(|b| *b == b'\n')
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines.len(), tl["steps"].as_array().unwrap().len());

    let review = t.run(&[
        "review",
        "--from",
        "2026-06-01",
        "--to",
        "2026-09-30",
        "--note",
        "Checked overrides",
    ]);
    assert!(review.status.success(), "{}", stderr(&review));
    assert!(
        stdout(&review).contains("the log verified intact"),
        "{}",
        stdout(&review)
    );
    let audits = t.run(&[
        "search",
        "--type",
        "audit.accessed,audit.reviewed",
        "--format",
        "json",
        "--limit",
        "100",
    ]);
    let audits: Value = serde_json::from_slice(&audits.stdout).unwrap();
    let actions: Vec<String> = audits["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            e["event"]["attributes"]["action"]
                .as_str()
                .map(str::to_owned)
                .unwrap_or_else(|| e["event"]["type"].as_str().unwrap().to_owned())
        })
        .collect();
    assert_eq!(
        actions,
        [
            "search",
            "timeline",
            "timeline",
            "timeline",
            "export",
            "export",
            "audit.reviewed"
        ],
        "every read is recorded"
    );
    assert_eq!(t.verify_json().0, 0);
    assert_eq!(
        t.run(&["search", "--decision", "maybe"]).status.code(),
        Some(2)
    );
}
