//! `aitrail anchor`, `verify --anchor` and `serve --anchor` end to end, with a directory, the
//! test TSA and SeaweedFS (started on 127.0.0.1 by `../../aitrail-anchor/tests/support`).
//!
//! The attack tests play someone who holds the database *and* the signing key: they rewrite
//! or cut anchored history, rehash everything and re-sign every checkpoint, so that `verify`
//! without anchors finds nothing; with anchors it must fail and name the anchor.
//!
//! Where a new test belongs: anything about anchoring through the binary goes here; behaviour
//! of one anchor alone goes to aitrail-anchor's tests.

#[path = "../../aitrail-anchor/tests/support/servers.rs"]
mod servers;

use aitrail_core::chain::chain_hash;
use aitrail_core::checkpoint::{Checkpoint, Signer};
use aitrail_core::merkle::{leaf_hash, subtree_hash, Hash, MemoryTree};
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use servers::{Seaweed, Tsa};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

mod common;

use common::Trail;

impl Trail {
    /// Ingests `n` review decisions numbered from `from`.
    fn ingest(&self, from: usize, n: usize) {
        let lines: Vec<String> = (from..from + n)
            .map(|i| {
                json!({"type": "review.decision", "task_id": format!("loan-{i}"),
                       "occurred_at": "2026-03-01T12:00:00Z",
                       "actor": {"kind": "human", "id": "rev-ana"},
                       "review": {"decision": "approve", "duration_ms": 1000 + i}})
                .to_string()
            })
            .collect();
        let out = self.run_stdin(&["ingest", "-"], &lines.join("\n"));
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    fn anchor(&self, anchors: &[String]) -> Output {
        let mut args = vec!["anchor".to_string()];
        args.extend(anchors.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args)
    }

    fn verify(&self, anchors: &[String]) -> (i32, Value, String) {
        let mut args = vec!["verify".to_string(), "--json".to_string()];
        args.extend(anchors.iter().cloned());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = self.run(&args);
        (
            out.status.code().unwrap(),
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
            text(&out.stderr),
        )
    }

    fn db(&self) -> Connection {
        Connection::open(self.data().join("trail.db")).unwrap()
    }

    fn signer(&self) -> Signer {
        Signer::parse(&std::fs::read_to_string(self.data().join("keys/default.key")).unwrap())
            .unwrap()
    }

    /// The `audit.anchored` events of the log, as event JSON.
    fn anchored_events(&self) -> Vec<Value> {
        let db = self.db();
        let mut stmt = db
            .prepare("SELECT entry FROM entries WHERE type = 'audit.anchored' ORDER BY seq")
            .unwrap();
        let rows = stmt
            .query_map([], |r| r.get::<_, Vec<u8>>(0))
            .unwrap()
            .map(|e| serde_json::from_slice::<Value>(&e.unwrap()).unwrap()["event"].clone())
            .collect();
        rows
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `--anchor SPEC` pairs for each spec, plus `--tsa-ca` when a TSA is among them.
fn flags(specs: &[String], tsa_ca: Option<&Path>) -> Vec<String> {
    let mut out = Vec::new();
    for s in specs {
        out.push("--anchor".into());
        out.push(s.clone());
    }
    if let Some(ca) = tsa_ca {
        out.push("--tsa-ca".into());
        out.push(ca.display().to_string());
    }
    out
}

// ----- what the attacker with the file and the key does --------------------------------------

/// Drops the append-only triggers, as someone with write access to the file can.
fn drop_triggers(db: &Connection) {
    for table in ["logs", "entries", "nodes", "checkpoints"] {
        for op in ["update", "delete"] {
            db.execute_batch(&format!("DROP TRIGGER IF EXISTS {table}_no_{op}"))
                .unwrap();
        }
    }
}

/// Leaf hashes of the log as stored, in seq order.
fn leaves(db: &Connection) -> Vec<Hash> {
    let mut stmt = db
        .prepare("SELECT entry FROM entries ORDER BY seq")
        .unwrap();
    let rows = stmt
        .query_map([], |r| r.get::<_, Vec<u8>>(0))
        .unwrap()
        .map(|e| leaf_hash(&e.unwrap()))
        .collect();
    rows
}

/// Rehashes everything after the entries were changed: every leaf and chain hash, every kept
/// node, and every checkpoint, re-signed with the log's own key. Nothing in the database
/// then tells the rewrite apart from history.
fn rehash_and_resign(db: &Connection, signer: &Signer) {
    let leaves = leaves(db);
    let mut chain = [0u8; 32];
    for (seq, leaf) in leaves.iter().enumerate() {
        chain = chain_hash(&chain, leaf);
        db.execute(
            "UPDATE entries SET leaf_hash = ?1, chain_hash = ?2 WHERE seq = ?3",
            params![&leaf[..], &chain[..], seq as i64],
        )
        .unwrap();
    }
    let mut tree = MemoryTree::new();
    for leaf in &leaves {
        tree.push(*leaf);
    }
    let nodes: Vec<(u32, u64)> = db
        .prepare("SELECT level, idx FROM nodes")
        .unwrap()
        .query_map([], |r| {
            Ok((r.get::<_, u32>(0)?, r.get::<_, i64>(1)? as u64))
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (level, idx) in nodes {
        let hash = subtree_hash(&mut tree, idx << level, (idx + 1) << level).unwrap();
        db.execute(
            "UPDATE nodes SET hash = ?1 WHERE level = ?2 AND idx = ?3",
            params![&hash[..], level, idx as i64],
        )
        .unwrap();
    }
    let checkpoints: Vec<(i64, u64)> = db
        .prepare("SELECT id, size FROM checkpoints")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get::<_, i64>(1)? as u64)))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    for (id, size) in checkpoints {
        let root = aitrail_core::merkle::root_at(&mut tree, size).unwrap();
        let note = Checkpoint {
            origin: signer.name.clone(),
            size,
            root,
        }
        .sign(signer)
        .unwrap();
        db.execute(
            "UPDATE checkpoints SET root = ?1, note = ?2 WHERE id = ?3",
            params![&root[..], note, id],
        )
        .unwrap();
    }
}

/// Flips the review decision recorded at `seq` and rehashes and re-signs everything.
fn rewrite_decision(t: &Trail, seq: u64) {
    let db = t.db();
    drop_triggers(&db);
    let entry: Vec<u8> = db
        .query_row(
            "SELECT entry FROM entries WHERE seq = ?1",
            [seq as i64],
            |r| r.get(0),
        )
        .unwrap();
    let edited = String::from_utf8(entry).unwrap().replacen(
        r#""decision":"approve""#,
        r#""decision":"reject""#,
        1,
    );
    assert!(edited.contains("reject"), "seq {seq} holds no decision");
    db.execute(
        "UPDATE entries SET entry = ?1 WHERE seq = ?2",
        params![edited.as_bytes(), seq as i64],
    )
    .unwrap();
    rehash_and_resign(&db, &t.signer());
}

/// Deletes every entry from `size` on, and every checkpoint beyond it; rehashes and re-signs.
fn truncate(t: &Trail, size: u64) {
    let db = t.db();
    drop_triggers(&db);
    db.execute("DELETE FROM entries WHERE seq >= ?1", [size as i64])
        .unwrap();
    db.execute("DELETE FROM checkpoints WHERE size > ?1", [size as i64])
        .unwrap();
    db.execute(
        "DELETE FROM nodes WHERE ((idx + 1) << level) > ?1",
        [size as i64],
    )
    .unwrap();
    rehash_and_resign(&db, &t.signer());
}

/// Every anchor the machine offers: a directory always, the TSA and S3 when they run.
struct Anchors {
    specs: Vec<String>,
    tsa_ca: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

fn anchors(t: &mut Trail) -> Anchors {
    let dir = tempfile::tempdir().unwrap();
    let mut specs = vec![format!("dir:{}", dir.path().display())];
    let mut tsa_ca = None;
    if let Some(tsa) = Tsa::get() {
        specs.push(format!("tsa:{}", tsa.url()));
        tsa_ca = Some(tsa.ca());
    }
    if let Some(s3) = Seaweed::get() {
        specs.push(format!("s3://{}/trail", s3.bucket(true)));
        t.env.extend(s3.env());
    }
    Anchors {
        specs,
        tsa_ca,
        _dir: dir,
    }
}

impl Anchors {
    fn flags(&self) -> Vec<String> {
        let mut f = flags(&self.specs, self.tsa_ca.as_deref());
        f.push("--s3-retention".into());
        f.push("1d".into());
        f
    }
}

/// The anchor_mismatch problems of a verify report, with the anchor each names.
fn mismatches(report: &Value) -> Vec<(String, Value)> {
    report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "anchor_mismatch")
        .map(|p| {
            let detail = p["detail"].as_str().unwrap();
            let anchor = detail
                .strip_prefix("anchor ")
                .and_then(|d| d.split_once(", checkpoint of size"))
                .map(|(a, _)| a.to_owned())
                .unwrap_or_default();
            (anchor, p.clone())
        })
        .collect()
}

// ----- tests -----------------------------------------------------------------------------------

#[test]
fn anchor_writes_the_latest_checkpoint_everywhere_and_records_it() {
    let mut t = Trail::new();
    let a = anchors(&mut t);
    t.ingest(0, 12);
    let out = t.anchor(&a.flags());
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    let printed = text(&out.stdout);
    assert!(
        printed.contains("checkpoint 1 of log \"default\": 12 entries"),
        "{printed}"
    );
    for spec in &a.specs {
        assert!(
            printed.contains(&format!("anchored {spec}")),
            "{spec}: {printed}"
        );
    }
    // One audit.anchored per anchor, naming it, the checkpoint and where it is kept.
    let events = t.anchored_events();
    assert_eq!(events.len(), a.specs.len(), "{events:#?}");
    for (event, spec) in events.iter().zip(&a.specs) {
        let attrs = &event["attributes"];
        assert_eq!(attrs["anchor"], spec.as_str());
        assert_eq!(attrs["checkpoint"]["size"], 12);
        assert_eq!(attrs["checkpoint"]["number"], 1);
        assert_eq!(attrs["checkpoint"]["root"].as_str().unwrap().len(), 64);
        assert!(!attrs["location"].as_str().unwrap().is_empty());
        assert_eq!(event["actor"]["kind"], "system");
        if spec.starts_with("tsa:") {
            assert!(attrs["timestamp"]["gen_time"].is_string(), "{attrs}");
        }
    }
    // The log grew by those events: the next anchoring signs and keeps a new checkpoint.
    let out = t.anchor(&a.flags());
    assert!(out.status.success(), "{}", text(&out.stderr));
    let expected = format!(
        "checkpoint 2 of log \"default\": {} entries",
        12 + a.specs.len()
    );
    assert!(
        text(&out.stdout).contains(&expected),
        "{}",
        text(&out.stdout)
    );
    let (code, report, err) = t.verify(&a.flags());
    assert_eq!(code, 0, "{report:#}\n{err}");
    for s in report["anchors"].as_array().unwrap() {
        assert_eq!(
            (s["checkpoints"].as_u64(), s["consistent"].as_u64()),
            (Some(2), Some(2)),
            "{s}"
        );
    }
}

#[test]
fn rewriting_anchored_history_with_the_signing_key_is_caught_and_the_anchor_named() {
    let mut t = Trail::new();
    let a = anchors(&mut t);
    t.ingest(0, 10);
    assert!(t.anchor(&a.flags()).status.success());
    t.ingest(10, 10);
    assert!(t.anchor(&a.flags()).status.success());
    // Anchored: size 10, then size 20 + one audit.anchored per anchor. seq 13 is a decision
    // made after the first anchoring, before the second; entries from seq 10 on are what
    // the first anchored checkpoint does not vouch for.
    let second = 20 + a.specs.len() as u64;
    let seq10 = t
        .db()
        .query_row("SELECT event_id FROM entries WHERE seq = 10", [], |r| {
            r.get::<_, String>(0)
        })
        .unwrap();
    rewrite_decision(&t, 13);

    // Without anchors the rewrite is perfect: every hash and signature checks out.
    let (code, report, err) = t.verify(&[]);
    assert_eq!(
        code, 0,
        "the rewrite should be invisible without anchors: {report:#}\n{err}"
    );

    // With them, verify fails (exit 1) and names each anchor and its checkpoint.
    let (code, report, err) = t.verify(&a.flags());
    assert_eq!(code, 1, "{report:#}\n{err}");
    assert_eq!(report["ok"], false);
    let found = mismatches(&report);
    let named: Vec<&str> = found.iter().map(|(a, _)| a.as_str()).collect();
    assert_eq!(named.len(), a.specs.len(), "{report:#}");
    for spec in &a.specs {
        assert!(
            named.contains(&spec.as_str()),
            "{spec} not named: {report:#}"
        );
    }
    for (anchor, p) in &found {
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains(&format!("checkpoint of size {second}"))
                && detail.contains("does not extend"),
            "{anchor}: {detail}"
        );
        // The first anchored checkpoint still holds: the change is after it.
        assert_eq!(p["seq"], 10, "{p}");
        assert_eq!(p["event_id"], seq10.as_str(), "{p}");
    }
    // The text report says the same to a person.
    let out = t.run(
        &[
            &["verify"][..],
            &a.flags().iter().map(String::as_str).collect::<Vec<_>>(),
        ]
        .concat(),
    );
    let printed = text(&out.stdout);
    assert!(
        printed.contains("TAMPERED") && printed.contains("AnchorMismatch"),
        "{printed}"
    );
    assert!(
        printed.contains("first entry affected: seq 10"),
        "{printed}"
    );
}

#[test]
fn truncating_anchored_history_with_the_signing_key_is_caught() {
    let mut t = Trail::new();
    let a = anchors(&mut t);
    t.ingest(0, 30);
    assert!(t.anchor(&a.flags()).status.success());
    truncate(&t, 20);
    let (code, report, _) = t.verify(&[]);
    assert_eq!(
        code, 0,
        "the cut should be invisible without anchors: {report:#}"
    );
    let (code, report, err) = t.verify(&a.flags());
    assert_eq!(code, 1, "{report:#}\n{err}");
    let found = mismatches(&report);
    assert_eq!(found.len(), a.specs.len(), "{report:#}");
    for (anchor, p) in found {
        let detail = p["detail"].as_str().unwrap();
        assert!(
            detail.contains("seqs 20 to 29 are gone"),
            "{anchor}: {detail}"
        );
        assert_eq!(p["seq"], 20);
    }
}

#[test]
fn a_forged_note_in_an_anchor_is_reported_as_a_bad_anchor() {
    let t = Trail::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("dir:{}", dir.path().display());
    t.ingest(0, 3);
    assert!(t
        .anchor(&flags(std::slice::from_ref(&spec), None))
        .status
        .success());
    // A checkpoint for the same log signed by another key, dropped into the directory.
    let other = Signer::from_seed(&t.signer().name, [9; 32]).unwrap();
    let note = Checkpoint {
        origin: other.name.clone(),
        size: 2,
        root: [1; 32],
    }
    .sign(&other)
    .unwrap();
    std::fs::write(
        dir.path().join("default/00000000000000000002-forged.note"),
        note,
    )
    .unwrap();
    let (code, report, _) = t.verify(&flags(std::slice::from_ref(&spec), None));
    assert_eq!(code, 1, "{report:#}");
    let bad: Vec<&Value> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == "bad_anchor")
        .collect();
    assert_eq!(bad.len(), 1, "{report:#}");
    let detail = bad[0]["detail"].as_str().unwrap();
    assert!(
        detail.contains(&spec)
            && detail.contains("forged.note")
            && detail.contains("not a checkpoint signed by the log's key"),
        "{detail}"
    );
}

#[test]
fn anchors_come_from_the_config_file_when_no_flag_is_given() {
    let t = Trail::new();
    t.ingest(0, 5);
    // No anchors anywhere: `anchor` says how to configure one; `verify` still runs.
    let out = t.anchor(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no anchors configured"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(t.verify(&[]).0, 0);

    let config = t.data().join("aitrail.toml");
    let mut text_cfg = std::fs::read_to_string(&config).unwrap();
    text_cfg += "anchors = [\"dir:kept-checkpoints\"]\n";
    std::fs::write(&config, text_cfg).unwrap();
    std::fs::create_dir(t.data().join("kept-checkpoints")).unwrap();
    let out = t.anchor(&[]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let kept = std::fs::read_dir(t.data().join("kept-checkpoints/default"))
        .unwrap()
        .count();
    assert_eq!(kept, 1);
    let (code, report, _) = t.verify(&[]);
    assert_eq!(code, 0, "{report:#}");
    let spec = format!("dir:{}", t.data().join("kept-checkpoints").display());
    assert_eq!(report["anchors"][0]["anchor"], spec.as_str());
    assert_eq!(report["anchors"][0]["consistent"], 1);

    // A bad spec in the file is named with the file.
    std::fs::write(
        &config,
        std::fs::read_to_string(&config)
            .unwrap()
            .replace("dir:kept-checkpoints", "ftp:x"),
    )
    .unwrap();
    let out = t.run(&["verify"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(
        err.contains("ftp:x") && err.contains("aitrail.toml"),
        "{err}"
    );
}

#[test]
fn a_tsa_without_its_ca_is_refused_before_anything_is_written() {
    let t = Trail::new();
    t.ingest(0, 2);
    let out = t.anchor(&flags(&["tsa:http://127.0.0.1:9/tsr".into()], None));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--tsa-ca"),
        "{}",
        text(&out.stderr)
    );
    assert!(t.anchored_events().is_empty());
}

#[test]
fn serve_anchors_on_its_schedule() {
    let t = Trail::new();
    t.ingest(0, 4);
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("dir:{}", dir.path().display());
    let child = t
        .cmd(&[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--anchor",
            &spec,
            "--anchor-every",
            "1m",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first anchoring happens at start.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let kept = dir.path().join("default");
    while std::fs::read_dir(&kept).map(|d| d.count()).unwrap_or(0) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "serve did not anchor within 60 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while t.anchored_events().is_empty() {
        assert!(
            std::time::Instant::now() < deadline,
            "no audit.anchored event"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    let err = text(&out.stderr);
    assert!(
        err.contains("anchoring every log's latest checkpoint every 60 s"),
        "{err}"
    );
    assert!(err.contains(&format!("at {spec}")), "{err}");
    assert_eq!(
        t.anchored_events()[0]["attributes"]["anchor"],
        spec.as_str()
    );

    // Less than a minute is refused.
    let out = t.run(&["serve", "--anchor", &spec, "--anchor-every", "30s"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("at most once a minute"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn serve_verifies_against_the_anchors() {
    let t = Trail::new();
    let dir = tempfile::tempdir().unwrap();
    let spec = format!("dir:{}", dir.path().display());
    t.ingest(0, 30);
    assert!(t
        .anchor(&flags(std::slice::from_ref(&spec), None))
        .status
        .success());
    // Cut anchored history with the signing key: invisible without the anchors.
    truncate(&t, 20);
    assert_eq!(t.verify(&[]).0, 0);
    let mut child = t
        .cmd(&["serve", "--listen", "127.0.0.1:0", "--anchor", &spec])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first scheduled verification runs at start; its finding goes to stderr.
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut seen = Vec::new();
    let failed = loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("VERIFY FAILED") => break line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no failed verification within 60 s: {seen:?}"),
        }
    };
    assert!(failed.contains("AnchorMismatch"), "{failed}");
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    child.wait().unwrap();
}
