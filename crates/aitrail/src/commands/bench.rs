//! `aitrail bench`: each measurement side by side with its baseline in the same run, printed
//! as Markdown for BENCHMARKS.md.
//!
//! - ingest: ~1 KB events into the embedded store (WAL, synchronous=FULL: one fsync per
//!   group commit) vs plain INSERTs of the same rows into the same table and indexes, with
//!   no hashing, in transactions of the same size; the sides take turns batch by batch, so
//!   background load on a shared machine falls on them alike.
//! - verify: `verify_log` vs raw SHA-256 over the same entry bytes held in memory.
//! - proof: inclusion proofs at a million entries vs rebuilding the tree from all leaves.

use crate::args::{BenchArgs, BenchWhat};
use crate::commands::ingest::prepare_ndjson;
use crate::progress::thousands;
use crate::sample::{task_events, Rng};
use aitrail_core::entry::PreparedEvent;
use aitrail_core::merkle::{inclusion_proof, leaf_hash, MemoryTree};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::{configure, entry_id, SqliteStore, INSERT_ENTRY, SCHEMA};
use aitrail_store::store::Store;
use anyhow::{Context, Result};
use rusqlite::{params, Connection};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events per transaction for both sides of the ingest benchmark.
const BATCH: usize = 5_000;
const LOG: &str = "bench";
const KEY: &[u8] = b"bench subject key";

pub fn run(args: &BenchArgs) -> Result<()> {
    let dir = match &args.dir {
        Some(d) => d.clone(),
        None => std::env::temp_dir().join(format!("aitrail-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    println!("## aitrail bench ({})\n", machine());
    let result = (|| {
        if matches!(
            args.what,
            BenchWhat::All | BenchWhat::Ingest | BenchWhat::Verify
        ) {
            let store = ingest(&dir, args.events as usize)?;
            if matches!(args.what, BenchWhat::All | BenchWhat::Verify) {
                verify(store.as_ref())?;
            }
        }
        if matches!(args.what, BenchWhat::All | BenchWhat::Proof) {
            proof(&dir, args.proof_size)?;
        }
        Ok(())
    })();
    if args.dir.is_none() {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    format!("{cpu}, {cores} cores, {}", std::env::consts::OS)
}

/// NDJSON lines of sample events padded to about 1 KB of canonical JSON each.
fn kilobyte_events(n: usize) -> Vec<String> {
    let mut rng = Rng::new(42);
    let tasks = (n / 5 + 1) as u64;
    let mut out = Vec::with_capacity(n);
    let filler =
        "Reviewer checklist: identity, income, affordability, documentation, policy exceptions. ";
    'outer: for i in 0.. {
        for mut ev in task_events(&mut rng, i, tasks) {
            let len = serde_json::to_vec(&ev).map(|v| v.len()).unwrap_or(0);
            if len < 1000 {
                let pad: String = filler.chars().cycle().take(1000 - len - 20).collect();
                if let Some(obj) = ev.as_object_mut() {
                    obj.entry("attributes").or_insert_with(|| json!({}))["notes"] =
                        Value::String(pad);
                }
            }
            out.push(ev.to_string());
            if out.len() == n {
                break 'outer;
            }
        }
    }
    out
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

fn ingest(dir: &Path, n: usize) -> Result<Arc<dyn Store>> {
    let lines = kilobyte_events(n);
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let text = lines.join("\n");
    drop(lines);
    let prepared: Vec<PreparedEvent> = prepare_ndjson(&text, KEY, &|_| {})
        .map_err(|e| anyhow::anyhow!("bench events invalid: {e:?}"))?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    println!(
        "### Ingest: {} events, {:.0} bytes of JSON each on average\n",
        thousands(n as u64),
        bytes as f64 / n as f64
    );

    // Baseline: the same rows (entry bytes and index columns, zero hashes) into the same
    // table and indexes with the same statement, same pragmas, same transaction size.
    let conn = Connection::open(fresh(dir, "baseline.db")?)?;
    configure(&conn)?;
    conn.execute_batch(SCHEMA)?;
    conn.execute("INSERT INTO logs (name) VALUES (?1)", [LOG])?;
    let log_id = conn.last_insert_rowid();
    let rows: Vec<Vec<u8>> = prepared
        .iter()
        .enumerate()
        .map(|(i, p)| {
            aitrail_core::entry::entry_bytes(
                i as u64,
                LOG,
                "2026-11-29T00:00:00.000000Z",
                &p.canonical,
            )
        })
        .collect();
    let plain_batch = |b: usize| -> Result<()> {
        let tx = conn.unchecked_transaction()?;
        {
            let mut stmt = tx.prepare_cached(INSERT_ENTRY)?;
            let end = ((b + 1) * BATCH).min(n);
            for (seq, p) in prepared.iter().enumerate().take(end).skip(b * BATCH) {
                stmt.execute(params![
                    entry_id(log_id, seq as u64),
                    p.id.to_string(),
                    0i64,
                    p.occurred_at,
                    p.event_type,
                    p.task_id,
                    p.index.actor_id,
                    p.index.model_name,
                    p.index.model_version,
                    p.index.prompt_version,
                    p.index.decision,
                    p.index.subject_ref,
                    rows[seq],
                    &[0u8; 32][..],
                    &[0u8; 32][..],
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    };

    // aitrail, store path: prepared events through the sequencer (seq, dedupe, hashes, nodes).
    // The requests are split off before the clock starts and freed after it, as the
    // baseline's rows are (`append_shared`: the sequencer frees nothing of them).
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&fresh(dir, "aitrail.db")?)?);
    let seq = Sequencer::new(store.clone());
    let requests = super::shared_requests(&prepared, BATCH);
    // The same, on a log with archived history: every insert also looks its id up among
    // the retired ones (SQLite's unique index no longer sees them).
    let archived_seq = Sequencer::new(with_archived_history(dir, &prepared[0])?);
    let archived_requests = requests.clone();

    // aitrail end to end: each request's NDJSON text -> validate, canonicalize (parallel)
    // -> sequencer.
    let e2e_seq = Sequencer::new(Arc::new(SqliteStore::open(&fresh(dir, "e2e.db")?)?));
    let texts: Vec<String> = text
        .lines()
        .collect::<Vec<_>>()
        .chunks(BATCH)
        .map(|c| c.join("\n"))
        .collect();
    drop(text);

    // The three take turns, one transaction of BATCH events each per round, the first of
    // each round rotating, so that background load on a shared machine falls on all three
    // alike rather than on whichever would have run last.
    let mut times = [Duration::ZERO; 4];
    for round in 0..requests.len() {
        for turn in 0..4 {
            let side = (round + turn) % 4;
            let started = Instant::now();
            match side {
                0 => plain_batch(round)?,
                1 => {
                    seq.append_shared(LOG, Arc::clone(&requests[round]))?;
                }
                3 => {
                    archived_seq.append_shared(LOG, Arc::clone(&archived_requests[round]))?;
                }
                _ => {
                    let events = prepare_ndjson(&texts[round], KEY, &|_| {})
                        .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                    e2e_seq.append(LOG, events.into_iter().map(|(_, p)| p).collect())?;
                }
            }
            times[side] += started.elapsed();
        }
    }
    let [plain, ours, e2e, archived] = times;
    drop(e2e_seq);
    drop(archived_seq);

    println!("| path | time | events/s | vs plain insert |");
    println!("|---|---:|---:|---:|");
    let row = |name: &str, d: Duration| {
        println!(
            "| {name} | {:.2} s | {} | {:.2}x |",
            d.as_secs_f64(),
            thousands(rate(n, d) as u64),
            plain.as_secs_f64() / d.as_secs_f64()
        );
    };
    row(
        "plain INSERT, same rows and indexes, no hashing (baseline)",
        plain,
    );
    row(
        "aitrail sequencer: seq, dedupe, leaf + chain + Merkle nodes",
        ours,
    );
    row(
        "aitrail end to end from NDJSON: + parse, validate, canonicalize",
        e2e,
    );
    row(
        "aitrail sequencer, log with archived history: + retired-id lookup per event",
        archived,
    );
    println!("\nDurability: WAL with synchronous=FULL, one fsync'd commit per {BATCH} events on every side. \
              The sides take turns batch by batch.\n");
    Ok(store)
}

fn verify(store: &dyn Store) -> Result<()> {
    let mut entries = Vec::new();
    store.scan(LOG, 0, &mut |e| {
        entries.push(e.entry);
        Ok(true)
    })?;
    let bytes: usize = entries.iter().map(Vec::len).sum();
    let started = Instant::now();
    let mut acc = 0u8;
    for e in &entries {
        acc ^= Sha256::digest(e)[0];
    }
    let raw = started.elapsed();
    std::hint::black_box(acc);
    let started = Instant::now();
    let report = aitrail_store::verify::verify_log(store, LOG, None, &mut |_| {})?;
    let ours = started.elapsed();
    anyhow::ensure!(
        report.ok,
        "verify found problems in the benchmark log: {:?}",
        report.problems.first()
    );
    let n = entries.len();
    let mb = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64();
    println!(
        "### Verify: {} entries, {:.1} MB of entry bytes\n",
        thousands(n as u64),
        bytes as f64 / 1e6
    );
    println!("| path | time | entries/s | MB/s | vs raw SHA-256 |");
    println!("|---|---:|---:|---:|---:|");
    println!(
        "| raw SHA-256 over the entry bytes in memory (baseline) | {:.3} s | {} | {:.0} | 1.00x |",
        raw.as_secs_f64(),
        thousands(rate(n, raw) as u64),
        mb(raw)
    );
    println!(
        "| aitrail verify: read from SQLite, leaf + chain + tree + nodes | {:.3} s | {} | {:.0} | {:.2}x |\n",
        ours.as_secs_f64(),
        thousands(rate(n, ours) as u64),
        mb(ours),
        raw.as_secs_f64() / ours.as_secs_f64()
    );
    Ok(())
}

fn proof(dir: &Path, size: u64) -> Result<()> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&fresh(dir, "proof.db")?)?);
    let seq = Sequencer::new(store.clone());
    let started = Instant::now();
    let mut ids = Vec::with_capacity(size as usize);
    let mut next = 0u64;
    while next < size {
        let end = (next + 20_000).min(size);
        let batch = (next..end)
            .map(|i| {
                let ev = json!({"type": "task.created", "task_id": format!("t{i}"), "occurred_at": "2026-01-01T00:00:00Z"});
                let ev = aitrail_core::event::Event::from_value(ev, aitrail_core::event::Origin::Client).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                Ok(PreparedEvent::new(ev, KEY)?)
            })
            .collect::<Result<Vec<_>>>()?;
        for o in seq.append(LOG, batch)? {
            ids.push(o.receipt().id.to_string());
        }
        next = end;
    }
    let build = started.elapsed();
    let signer = aitrail_core::checkpoint::Signer::from_seed("bench.local/bench", [9; 32])?;
    aitrail_store::log::checkpoint(store.as_ref(), LOG, &signer, 0)?;
    let mut rng = Rng::new(1);
    let mut times = Vec::new();
    for _ in 0..1000 {
        let id = &ids[rng.below(size) as usize];
        let started = Instant::now();
        let p = aitrail_store::log::prove(store.as_ref(), LOG, id)?.context("no checkpoint")?;
        times.push(started.elapsed());
        std::hint::black_box(p);
    }
    times.sort();
    let pct = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    // Baseline: what a store without kept nodes would do, rebuild the tree from every leaf.
    let started = Instant::now();
    let mut tree = MemoryTree::new();
    let mut leaves = 0u64;
    store.scan(LOG, 0, &mut |e| {
        tree.push(e.leaf());
        leaves += 1;
        Ok(true)
    })?;
    let path = inclusion_proof(&mut tree, size / 3, size)?;
    let naive = started.elapsed();
    std::hint::black_box((path, leaf_hash(b"")));
    println!(
        "### Proofs at {} entries (tree built in {:.1} s)\n",
        thousands(size),
        build.as_secs_f64()
    );
    println!("| path | p50 | p99 | max |");
    println!("|---|---:|---:|---:|");
    println!("| rebuild the tree from all {} leaf hashes, then prove (baseline, one run) | {:.1} ms | | |", thousands(leaves), naive.as_secs_f64() * 1e3);
    println!(
        "| aitrail prove: entry by id, latest checkpoint, path from kept nodes (1,000 random) | {:.3} ms | {:.3} ms | {:.3} ms |\n",
        pct(0.5).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        times.last().map_or(0.0, |d| d.as_secs_f64() * 1e3)
    );
    Ok(())
}

/// A store whose log has one entry recorded in 2019 and already retired (as after an
/// archive run), so later inserts check ids against `retired`.
fn with_archived_history(dir: &Path, first: &PreparedEvent) -> Result<Arc<dyn Store>> {
    use aitrail_store::retention::{Retired, Segment};
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&fresh(dir, "archived.db")?)?);
    let old = Sequencer::with_clock(store.clone(), Arc::new(|| 1_551_434_400_000_000));
    let mut event = first.clone();
    event.id = uuid::Uuid::now_v7();
    old.append(LOG, vec![event])?;
    old.shutdown();
    let e = store.entry(LOG, 0)?.context("the archived entry")?;
    let retired = Retired {
        seq: 0,
        event_id: e.event_id.clone(),
        recorded_at: e.recorded_at,
        leaf_hash: e.leaf(),
        chain_hash: aitrail_store::store::to_hash(&e.chain_hash),
    };
    let mut tree = aitrail_core::merkle::Frontier::new();
    tree.push(retired.leaf_hash, |_, _, _| {});
    let segment = Segment {
        first_seq: 0,
        end_seq: 1,
        day: "2019-03-01".into(),
        key: "default/segments/2019-03-01-0.seg.gz".into(),
        root: tree.root(),
        sha256: [0; 32],
        checkpoint_size: 1,
        expires_at: 0,
        archived_at: 0,
    };
    store.retire(LOG, &segment, &[retired])?;
    Ok(store)
}

fn fresh(dir: &Path, name: &str) -> Result<PathBuf> {
    let path = dir.join(name);
    for suffix in ["", "-wal", "-shm"] {
        let p = PathBuf::from(format!("{}{suffix}", path.display()));
        if p.exists() {
            std::fs::remove_file(&p)?;
        }
    }
    Ok(path)
}
