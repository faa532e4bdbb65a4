//! Retention from the command line, over a trail recorded years back (written through the
//! store's API with a clock set in 2019, as only a test may): `retention run --dry-run`,
//! `hold add|list|release`, `retention run` archiving to a directory and then expiring what
//! no hold covers, `search`/`timeline`/`export --include-archive`, `prove` of an archived
//! event, and `verify` passing, then naming a deleted segment's range.

mod common;
#[path = "../../aitrail-anchor/tests/support/servers.rs"]
mod servers;

use aitrail_core::entry::PreparedEvent;
use aitrail_core::event::{parse_time, Event, Origin};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::SqliteStore;
use common::{stderr, stdout, Trail};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

/// Events of two days in March 2019 and one of today, recorded at those times.
fn write_old_trail(t: &Trail) -> Vec<String> {
    let store = Arc::new(SqliteStore::open(&t.data().join("trail.db")).unwrap());
    let clock = Arc::new(AtomicI64::new(0));
    let c = clock.clone();
    let seq = Sequencer::with_clock(store, Arc::new(move || c.load(Ordering::SeqCst)));
    let mut ids = Vec::new();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    for (recorded, task, occurred) in [
        (
            parse_time("2019-03-01T10:00:00Z").unwrap(),
            "held-task",
            "2019-03-01T09:00:00Z",
        ),
        (
            parse_time("2019-03-01T10:00:00Z").unwrap(),
            "t-1",
            "2019-03-01T09:10:00Z",
        ),
        (
            parse_time("2019-03-01T10:00:00Z").unwrap(),
            "held-task",
            "2019-03-01T09:20:00Z",
        ),
        (
            parse_time("2019-03-02T10:00:00Z").unwrap(),
            "t-2",
            "2019-03-02T09:00:00Z",
        ),
        (
            parse_time("2019-03-02T10:00:00Z").unwrap(),
            "t-2",
            "2019-03-02T09:30:00Z",
        ),
        (now, "t-now", "2026-01-01T00:00:00Z"),
    ] {
        clock.store(recorded, Ordering::SeqCst);
        let e = Event::from_value(
            json!({"type": "task.created", "task_id": task, "occurred_at": occurred}),
            Origin::Client,
        )
        .unwrap();
        let out = seq
            .append("default", vec![PreparedEvent::new(e, b"k").unwrap()])
            .unwrap();
        ids.push(out[0].receipt().id.to_string());
    }
    seq.shutdown();
    ids
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn archive_hold_expire_and_verify_from_the_cli() {
    let t = Trail::new();
    let ids = write_old_trail(&t);
    let config = t.data().join("aitrail.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += "\n[retention]\narchive = \"dir:archive\"\n";
    std::fs::write(&config, text).unwrap();
    let archive = t.data().join("archive");
    std::fs::create_dir(&archive).unwrap();

    // A dry run lists the two 2019 days and changes nothing.
    let plan = json_of(&t.ok(&["retention", "run", "--dry-run", "--json"]));
    let moves = &plan["logs"][0]["moves"];
    assert_eq!(moves.as_array().unwrap().len(), 2, "{plan}");
    assert_eq!(moves[0]["day"], "2019-03-01");
    assert_eq!(
        (moves[0]["first_seq"].as_u64(), moves[0]["end_seq"].as_u64()),
        (Some(0), Some(3))
    );
    assert!(
        t.ok(&["search", "--task", "t-2"]).contains("t-2"),
        "still hot after a dry run"
    );

    // A hold on one task, listed, recorded in the trail.
    let hold = json_of(&t.ok(&[
        "hold",
        "add",
        "--task",
        "held-task",
        "--reason",
        "matter 42",
        "--json",
    ]));
    let hold_id = hold["id"].as_str().unwrap().to_owned();
    let list = json_of(&t.ok(&["hold", "list", "--json"]));
    assert_eq!(
        list[0]["scope"],
        json!({"kind": "task", "task_id": "held-task"})
    );
    let bad = t.run(&[
        "hold",
        "add",
        "--task",
        "x",
        "--from",
        "2019-01-01",
        "--reason",
        "r",
    ]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("exactly one of"), "{}", stderr(&bad));

    // First run: both days archived, their hot rows gone.
    let out = t.ok(&["retention", "run"]);
    assert!(
        out.contains("archived") && out.contains("2019-03-01"),
        "{out}"
    );
    let segment = archive.join("default/segments/2019-03-01-0.seg.gz");
    assert!(segment.exists());
    assert!(archive
        .join("default/segments/2019-03-01-0.manifest.json")
        .exists());
    let hot = t.ok(&["search", "--task", "t-2", "--format", "json"]);
    assert_eq!(
        json_of(&hot)["events"],
        json!([]),
        "archived rows left the store: {out}"
    );
    let found = json_of(&t.ok(&[
        "search",
        "--task",
        "t-2",
        "--include-archive",
        "--format",
        "json",
    ]));
    assert_eq!(found["events"].as_array().unwrap().len(), 2, "{found}");
    let tl = t.ok(&["timeline", "held-task", "--include-archive"]);
    assert!(tl.contains("2 events"), "{tl}");
    let csv = t.ok(&["export", "--format", "csv", "--include-archive"]);
    for task in ["held-task", "t-1", "t-2", "t-now"] {
        assert!(csv.contains(&format!(",{task},")), "{task} in {csv}");
    }
    // An archived event's proof, checked offline.
    let proof = t.dir.path().join("proof.json");
    t.ok(&["prove", &ids[0], "-o", proof.to_str().unwrap()]);
    t.ok(&["verify-proof", proof.to_str().unwrap()]);

    // Second run: the 2019-03-02 segment expires; the held one stays.
    let report = json_of(&t.ok(&["retention", "run", "--json"]));
    let r = &report["logs"][0]["report"];
    assert_eq!(r["done"][0]["action"], "expired", "{report}");
    assert_eq!(r["done"][0]["first_seq"], 3);
    assert_eq!(r["skipped"][0]["action"], "held");
    assert!(r["skipped"][0]["detail"]
        .as_str()
        .unwrap()
        .contains(&hold_id));
    assert!(!archive
        .join("default/segments/2019-03-02-3.seg.gz")
        .exists());
    assert!(segment.exists());
    let events = json_of(&t.ok(&[
        "search",
        "--type",
        "audit.retention",
        "--format",
        "json",
        "--limit",
        "100",
    ]));
    let actions: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["attributes"]["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["hold_added", "archived", "archived", "expired"]);

    // Verify: archived entries read back, expired ones known by policy.
    let (code, v) = t.verify_json();
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (
            v["logs"][0]["archived"].as_u64(),
            v["logs"][0]["expired"].as_u64()
        ),
        (Some(3), Some(2))
    );
    let human = t.ok(&["verify"]);
    assert!(human.contains("2 expired by policy"), "{human}");

    // The same reads over HTTP: with include_archive=true they reach the archive.
    let token = stdout(&t.run(&["token", "create", "--role", "auditor"]))
        .trim()
        .to_owned();
    let (mut serve, base) = t.serve(&[]);
    let get = |path: &str| {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        let mut resp = agent
            .get(&format!("{base}{path}"))
            .header("Authorization", &format!("Bearer {token}"))
            .call()
            .unwrap();
        let body = resp.body_mut().read_to_string().unwrap();
        (resp.status().as_u16(), body)
    };
    let (code, body) = get("/v1/events?task=held-task");
    assert_eq!((code, json_of(&body)["events"].clone()), (200, json!([])));
    let (code, body) = get("/v1/events?task=held-task&include_archive=true");
    assert_eq!(code, 200, "{body}");
    let found = json_of(&body)["events"].as_array().unwrap().len();
    assert_eq!(found, 2, "{body}");
    assert_eq!(get("/v1/tasks/held-task/timeline").0, 404);
    let (code, body) = get("/v1/tasks/held-task/timeline?include_archive=true");
    assert_eq!(code, 200, "{body}");
    let steps = json_of(&body)["steps"].as_array().unwrap().len();
    assert_eq!(steps, 2, "{body}");
    let (code, csv) = get("/v1/export?format=csv&include_archive=true");
    assert_eq!(code, 200, "{csv}");
    for task in ["held-task", "t-1", "t-now"] {
        assert!(csv.contains(&format!(",{task},")), "{task} in {csv}");
    }
    serve.kill().unwrap();
    serve.wait().unwrap();

    // The held segment deleted behind aitrail's back: missing, with its range.
    std::fs::remove_file(&segment).unwrap();
    let (code, v) = t.verify_json();
    assert_eq!(code, 1, "{v}");
    let p = &v["problems"][0];
    assert_eq!(
        (p["kind"].as_str(), p["seq"].as_u64()),
        (Some("missing_archive"), Some(0))
    );
    assert!(p["detail"].as_str().unwrap().contains("seqs 0 to 2"), "{p}");
    let out = t.run(&["export", "--format", "ndjson", "--include-archive"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("2019-03-01-0.seg.gz"),
        "{}",
        stderr(&out)
    );

    // Released, the hold no longer keeps it, but a missing segment is not expired.
    t.ok(&["hold", "release", &hold_id, "--reason", "matter closed"]);
    assert!(t.ok(&["hold", "list"]).contains("no active holds"));
    let out = t.run(&["retention", "run"]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("missing"), "{}", stdout(&out));
}

#[test]
fn retention_without_an_archive_says_how_to_configure_one() {
    let t = Trail::new();
    write_old_trail(&t);
    let out = t.run(&["retention", "run"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("[retention]"), "{}", stderr(&out));
    // A dry run needs no archive.
    assert!(t
        .ok(&["retention", "run", "--dry-run"])
        .contains("2 day(s) would be archived"));
}

/// The same against S3 with Object Lock (SeaweedFS): segments written under a COMPLIANCE lock;
/// a segment whose retention already ended when it was archived (2019 + 6 years) is locked for
/// a day, so its expiry is recorded and the delete, refused by the lock, waits for a later run.
#[test]
fn archiving_to_s3_under_object_lock() {
    let Some(s3) = servers::Seaweed::get() else {
        return;
    };
    let mut t = Trail::new();
    t.env.extend(s3.env());
    write_old_trail(&t);
    let config = t.data().join("aitrail.toml");
    let mut text = std::fs::read_to_string(&config).unwrap();
    text += &format!(
        "\n[retention]\narchive = \"s3://{}/trail\"\n",
        s3.bucket(true)
    );
    std::fs::write(&config, text).unwrap();

    let out = t.ok(&["retention", "run"]);
    assert_eq!(out.matches("archived").count(), 2, "{out}");
    let (code, v) = t.verify_json();
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["logs"][0]["archived"], 5);

    let report = json_of(&t.ok(&["retention", "run", "--json"]));
    let done = report["logs"][0]["report"]["done"]
        .as_array()
        .unwrap()
        .clone();
    assert_eq!(done.len(), 2, "{report}");
    for d in &done {
        assert_eq!(d["action"], "expired");
        assert!(d["detail"].as_str().unwrap().contains("still locks"), "{d}");
    }
    let (code, v) = t.verify_json();
    assert_eq!(code, 0, "{v}");
    assert_eq!(
        (
            v["logs"][0]["archived"].as_u64(),
            v["logs"][0]["expired"].as_u64()
        ),
        (Some(0), Some(5))
    );
    // Nothing more is due; the refused deletes are retried quietly.
    let plan = json_of(&t.ok(&["retention", "run", "--dry-run", "--json"]));
    assert_eq!(plan["logs"][0]["expiries"], json!([]), "{plan}");
}
