//! The `aitrail` binary on a PostgreSQL store (`--store postgres://...` or `AITRAIL_STORE`):
//! `init` migrates and creates the application role, every command then runs as that role,
//! and two `aitrail ingest` processes writing at once neither fork nor skip a seq.
//!
//! Each test gets a database of its own on the server of `AITRAIL_TEST_POSTGRES` (see
//! `aitrail-store/tests/postgres_support`), dropped afterwards; without a server the tests
//! say so and pass, except under CI=true. Where a new test belongs: a command's behaviour on
//! any store goes to `cli.rs`; what differs on PostgreSQL goes here.

mod common;
#[path = "../../aitrail-store/tests/postgres_support/mod.rs"]
mod pg;

use aitrail_store::postgres::ScratchDatabase;
use common::{stderr, Trail};
use serde_json::{json, Value};
use std::path::PathBuf;
use std::process::Command;

/// A data directory whose store is a scratch PostgreSQL database of its own, initialised by
/// its owner; every command then runs as the application role `init` created.
struct PgTrail {
    trail: Trail,
    db: ScratchDatabase,
    init_stderr: String,
}

impl std::ops::Deref for PgTrail {
    type Target = Trail;
    fn deref(&self) -> &Trail {
        &self.trail
    }
}

impl PgTrail {
    fn new() -> Option<PgTrail> {
        let mut db = pg::database()?;
        let role = db.role_name("app");
        let mut trail = Trail::empty();
        trail.env = vec![("AITRAIL_PG_APP_ROLE", role.clone())];
        let out = trail.run(&["--store", &db.url(), "init", "--origin", "test.example"]);
        let init_stderr = stderr(&out);
        assert!(out.status.success(), "{init_stderr}");
        let app_url = init_stderr
            .lines()
            .find_map(|l| l.trim().strip_prefix("--store '"))
            .and_then(|l| l.strip_suffix('\''))
            .unwrap_or_else(|| panic!("init printed no URL for the role: {init_stderr}"))
            .to_owned();
        assert!(app_url.contains(&role), "{app_url}");
        trail.env = vec![("AITRAIL_STORE", app_url)];
        Some(PgTrail {
            trail,
            db,
            init_stderr,
        })
    }

    fn app_url(&self) -> &str {
        &self.trail.env[0].1
    }
}

fn ndjson(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| {
            json!({"id": format!("00000000-0000-4000-8000-{i:012}"), "type": "review.decision",
                   "task_id": format!("loan-{}", i / 3), "occurred_at": "2026-03-01T12:00:00Z",
                   "actor": {"kind": "human", "id": "rev-ana"},
                   "review": {"decision": "approve", "duration_ms": 1000 + i},
                   "subject": {"kind": "applicant", "id": format!("applicant-{i}")}})
            .to_string()
                + "\n"
        })
        .collect()
}

#[test]
fn init_migrates_once_and_creates_the_application_role() {
    let Some(t) = PgTrail::new() else { return };
    assert!(
        t.init_stderr.contains(&format!(
            "migrated from version 0 to {}",
            aitrail_store::postgres::SCHEMA_VERSION
        )),
        "{}",
        t.init_stderr
    );
    assert!(
        t.init_stderr.contains("SELECT and INSERT"),
        "{}",
        t.init_stderr
    );
    // Again as the owner: nothing to migrate, the role's grants are in place.
    let out = Command::new(env!("CARGO_BIN_EXE_aitrail"))
        .arg("--data")
        .arg(t.dir.path().join("data"))
        .args(["--store", &t.db.url(), "init"])
        .env("AITRAIL_PG_APP_ROLE", "")
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!(
            "is up to date (version {})",
            aitrail_store::postgres::SCHEMA_VERSION
        )),
        "{}",
        stderr(&out)
    );
    // As the application role (AITRAIL_STORE): up to date; it sets up no role.
    let out = t.run(&["init"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("is up to date"), "{err}");
    assert!(err.contains("does not own the aitrail schema"), "{err}");
    assert!(
        !err.contains(t.app_url()),
        "a password is printed only once: {err}"
    );
    // A database without the schema says what to do.
    let Some(empty) = pg::database() else { return };
    let out = t
        .cmd(&["verify"])
        .env("AITRAIL_STORE", empty.url())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("run `aitrail init --store URL`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn every_command_works_on_a_postgres_store() {
    let Some(t) = PgTrail::new() else { return };
    let vkey = t.ok(&["key"]).trim().to_owned();
    let file = t.file("a.ndjson", &ndjson(0, 30));
    let out = t.run(&["ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = t.run_stdin(&["ingest", "-"], &ndjson(30, 10));
    assert!(out.status.success(), "{}", stderr(&out));
    // The same file again: already recorded, nothing written.
    assert!(t.run(&["ingest", file.to_str().unwrap()]).status.success());
    let (code, report) = t.verify_json();
    assert_eq!((code, &report["entries"]), (0, &json!(40)), "{report}");

    // Reads: search, timeline and export find the events through the partitioned table.
    let found = t.ok(&["search", "--task", "loan-3", "--format", "json"]);
    for i in 9..12 {
        assert!(
            found.contains(&format!("00000000-0000-4000-8000-{i:012}")),
            "{found}"
        );
    }
    assert!(
        !found.contains("00000000-0000-4000-8000-000000000012"),
        "{found}"
    );
    let timeline = t.ok(&["timeline", "loan-3", "--json"]);
    assert!(
        timeline.contains("00000000-0000-4000-8000-000000000010"),
        "{timeline}"
    );
    let export = t.ok(&["export", "--format", "ndjson", "--type", "review.decision"]);
    assert_eq!(export.lines().count(), 40, "{export}");

    let note = t.ok(&["checkpoint"]);
    assert!(note.starts_with("test.example/default\n"), "{note}");
    let covered: u64 = note
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("a size");
    assert!(
        covered >= 40,
        "the 40 events and what aitrail recorded itself: {note}"
    );
    let proof = t.dir.path().join("proof.json");
    t.ok(&[
        "prove",
        "00000000-0000-4000-8000-000000000007",
        "-o",
        proof.to_str().unwrap(),
    ]);
    t.ok(&["verify-proof", proof.to_str().unwrap(), "--key", &vkey]);

    let token = t.ok(&["token", "create", "--role", "admin", "--name", "ops"]);
    let token = token.trim();
    let list: Value = serde_json::from_str(&t.ok(&["token", "list", "--json"])).unwrap();
    let id = list[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(list[0]["role"], "admin");

    // serve: an event over HTTP lands in PostgreSQL; a checkpoint is served.
    let (child, base) = t.serve(&[]);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut resp = agent
        .post(&format!("{base}/v1/events"))
        .header("Authorization", &format!("Bearer {token}"))
        .header("Content-Type", "application/x-ndjson")
        .send(ndjson(40, 2))
        .unwrap();
    let body = resp.body_mut().read_to_string().unwrap();
    assert_eq!(resp.status().as_u16(), 201, "{body}");
    let receipts: Value = serde_json::from_str(&body).unwrap();
    let receipts = receipts.get("receipts").unwrap_or(&receipts);
    let last = receipts[1]["seq"].as_u64().expect("a seq");
    // After the 40 events (and whatever aitrail recorded itself, such as audit.accessed).
    assert!(last > 40, "{receipts}");
    assert_eq!(receipts[0]["seq"].as_u64(), Some(last - 1), "{receipts}");
    let mut resp = agent
        .get(&format!("{base}/v1/checkpoint"))
        .header("Authorization", &format!("Bearer {token}"))
        .call()
        .unwrap();
    let status = resp.status().as_u16();
    let cp = resp.body_mut().read_to_string().unwrap();
    assert_eq!(status, 200, "{cp}");
    let size: u64 = cp
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .unwrap_or_else(|| panic!("a size in {cp}"));
    assert!(
        size > last,
        "the served checkpoint covers the new events: {cp}"
    );
    assert!(Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap()
        .success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "serve: {}", stderr(&out));

    t.ok(&["token", "revoke", &id]);
    let list: Value = serde_json::from_str(&t.ok(&["token", "list", "--json"])).unwrap();
    assert!(list[0]["revoked_at"].is_number(), "{list}");

    // Someone with the owner's rights goes around the triggers: verify names the entry.
    let mut su = pg::raw(&t.db);
    su.batch_execute(
        "ALTER TABLE aitrail.entries DISABLE TRIGGER refuse_update_delete; \
         UPDATE aitrail.entries SET entry = convert_to(replace(convert_from(entry, 'UTF8'), 'approve', 'reject'), 'UTF8') WHERE seq = 12",
    )
    .unwrap();
    let (code, report) = t.verify_json();
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["problems"][0]["kind"], "changed_entry", "{report}");
    assert_eq!(report["problems"][0]["seq"], 12, "{report}");
    assert_eq!(
        report["problems"][0]["event_id"],
        "00000000-0000-4000-8000-000000000012"
    );
}

/// Two real `aitrail ingest` processes at once, five times each, on one database: each waits
/// for the other's transaction (advisory lock) and re-reads the head, so the log has every
/// event once, seqs 0..n with no gap, and one unbroken chain.
#[test]
fn two_ingest_processes_at_once_do_not_fork() {
    let Some(t) = PgTrail::new() else { return };
    const PER_FILE: usize = 40;
    let files: Vec<Vec<PathBuf>> = (0..2)
        .map(|p| {
            (0..5)
                .map(|k| {
                    let first = (p * 5 + k) * PER_FILE;
                    t.file(&format!("p{p}-{k}.ndjson"), &ndjson(first, PER_FILE))
                })
                .collect()
        })
        .collect();
    std::thread::scope(|s| {
        for mine in &files {
            let t = &t;
            s.spawn(move || {
                for f in mine {
                    let out = t.run(&["ingest", f.to_str().unwrap()]);
                    assert!(out.status.success(), "{}", stderr(&out));
                }
            });
        }
    });
    let total = 10 * PER_FILE;
    let (code, report) = t.verify_json();
    assert_eq!((code, &report["entries"]), (0, &json!(total)), "{report}");
    let mut su = pg::raw(&t.db);
    let row = su
        .query_one(
            "SELECT count(*), count(DISTINCT seq), min(seq), max(seq), count(DISTINCT event_id), \
             count(DISTINCT recorded_at) FROM aitrail.entries",
            &[],
        )
        .unwrap();
    let (rows, seqs, min, max, ids): (i64, i64, i64, i64, i64) =
        (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4));
    assert_eq!(
        (rows, seqs, min, max, ids),
        (
            total as i64,
            total as i64,
            0,
            total as i64 - 1,
            total as i64
        )
    );
    let commits: i64 = row.get(5);
    assert!(
        commits >= 10,
        "one group commit per ingest at least: {commits}"
    );
    // Every row's chain hash follows from the row before it (no fork), checked in SQL.
    let forks: i64 = su
        .query_one(
            "SELECT count(*) FROM (SELECT chain_hash, leaf_hash, lag(chain_hash) OVER (ORDER BY seq) AS prev \
             FROM aitrail.entries) r WHERE prev IS NOT NULL AND sha256(prev || leaf_hash) <> chain_hash",
            &[],
        )
        .unwrap()
        .get(0);
    assert_eq!(forks, 0);
}

/// Retention on PostgreSQL, run as the application role: a day recorded in 2019 is archived
/// to a directory, its partition detached and dropped (through `drop_retired_day`, the one
/// way the role may), the trail verifies, and the archived task is found with
/// `--include-archive`.
#[test]
fn retention_archives_and_drops_the_days_partition() {
    use aitrail_core::entry::PreparedEvent;
    use aitrail_core::event::{parse_time, Event, Origin};
    use aitrail_store::sequencer::Sequencer;
    use std::sync::Arc;

    let Some(t) = PgTrail::new() else { return };
    let store = Arc::new(aitrail_store::postgres::PgStore::open(t.app_url()).unwrap());
    for (at, task) in [
        ("2019-03-01T10:00:00Z", "old-task"),
        ("2019-03-01T11:00:00Z", "old-task"),
    ] {
        let when = parse_time(at).unwrap();
        let seq = Sequencer::with_clock(store.clone(), Arc::new(move || when));
        let e = Event::from_value(
            json!({"type": "task.created", "task_id": task, "occurred_at": at}),
            Origin::Client,
        )
        .unwrap();
        seq.append("default", vec![PreparedEvent::new(e, b"k").unwrap()])
            .unwrap();
        seq.shutdown();
    }
    drop(store);
    t.ok(&[
        "ingest",
        t.file("now.ndjson", &ndjson(0, 3)).to_str().unwrap(),
    ]);
    let config = t.data().join("aitrail.toml");
    let text =
        std::fs::read_to_string(&config).unwrap() + "\n[retention]\narchive = \"dir:archive\"\n";
    std::fs::write(&config, text).unwrap();
    std::fs::create_dir(t.data().join("archive")).unwrap();

    let out = t.ok(&["retention", "run"]);
    assert!(
        out.contains("archived") && out.contains("2019-03-01"),
        "{out}"
    );
    let mut owner = pg::raw(&t.db);
    let exists: bool = owner
        .query_one(
            "SELECT to_regclass('aitrail.entries_20190301') IS NOT NULL",
            &[],
        )
        .unwrap()
        .get(0);
    assert!(!exists, "the 2019-03-01 partition is dropped");
    let (code, v) = t.verify_json();
    assert_eq!(code, 0, "{v}");
    assert_eq!(v["logs"][0]["archived"], 2);
    let found: Value = serde_json::from_str(&t.ok(&[
        "search",
        "--task",
        "old-task",
        "--include-archive",
        "--format",
        "json",
    ]))
    .unwrap();
    assert_eq!(found["events"].as_array().unwrap().len(), 2, "{found}");
    // The application role still may not drop a partition itself.
    let mut app = aitrail_store::postgres::client::Client::connect(
        t.app_url(),
        aitrail_store::postgres::client::NoTls,
    )
    .unwrap();
    let today = app
        .query_one(
            "SELECT 'aitrail.entries_' || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD')",
            &[],
        )
        .unwrap()
        .get::<_, String>(0);
    let err = app
        .batch_execute(&format!("DROP TABLE {today}"))
        .unwrap_err();
    let msg = err
        .as_db_error()
        .map(|e| e.message().to_owned())
        .unwrap_or_default();
    assert!(msg.contains("must be owner"), "{err:?}");
}

/// `bench postgres` runs every path in scratch databases of its own, three transactions
/// each taking turns (it checks that aitrail's log verifies and that the naive trigger forks
/// nowhere with one client), prints its Markdown tables, and drops every database it made.
#[test]
fn bench_postgres_runs_its_paths_and_cleans_up() {
    let Some(server) = pg::server() else {
        return;
    };
    use aitrail_store::postgres::client::{Client, NoTls};
    let scratch = |c: &mut Client| -> i64 {
        c.query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE 'aitrail_bench%'",
            &[],
        )
        .unwrap()
        .get(0)
    };
    let mut admin = Client::connect(&server, NoTls).unwrap();
    let before = scratch(&mut admin);
    let out = Trail::empty().run(&["--store", &server, "bench", "postgres", "--events", "11000"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}{text}", stderr(&out));
    for expected in [
        "| round | plain COPY | aitrail | naive trigger |",
        "Round by round, aitrail was",
        "| aitrail, 8 stores (each its own connections and sequencer, as 8 processes) |",
    ] {
        assert!(
            text.contains(expected),
            "{expected:?} missing from:\n{text}"
        );
    }
    let eight = text
        .lines()
        .find(|l| l.starts_with("| aitrail, 8 stores"))
        .unwrap();
    assert!(eight.ends_with("| 0 | 0 |"), "aitrail forked: {eight}");
    assert_eq!(
        scratch(&mut admin),
        before,
        "a scratch database was left behind"
    );
}
