//! `aitrail bench query`: the query interface at the scale of a real deployment, on the
//! embedded store, printed as Markdown for BENCHMARKS.md.
//!
//! The trail is made by the demo generator (`--events`; BENCHMARKS.md uses 10 million) in `--dir`
//! (kept and reused by the next run) or a temporary directory. Then, on a warm page cache:
//! - timeline: `task_timeline` (query and derivation) of random tasks, beside the raw SQL
//!   read of the same rows, and with the `audit.accessed` append the CLI and API add;
//! - first page of search, for each filter alone, beside the simplest indexed SQL a DBA
//!   would write for it;
//! - export: `aitrail export` run as a child process to a pipe, CSV and NDJSON, rows/s and
//!   the child's peak RSS (its `VmHWM`), beside a raw scan of the entry bytes.

use crate::args::BenchArgs;
use crate::commands::demo;
use crate::data::DataDir;
use crate::progress::thousands;
use crate::sample::{task_events, Rng};
use aitrail_store::audit::{record_access, search, task_timeline, Reader};
use aitrail_store::keys::Keyring;
use aitrail_store::query::{Filter, Query, TimeField};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::{configure, entry_id};
use aitrail_store::store::Store;
use anyhow::{bail, Context, Result};
use rusqlite::{Connection, OptionalExtension, ToSql};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const LOG: &str = "default";
const SEED: u64 = 7;
/// Timelines and first pages measured per row of the tables.
const SAMPLES: usize = 500;
/// Rows of a first page (the API's default page).
const PAGE: usize = 100;

pub fn run(args: &BenchArgs) -> Result<()> {
    let (dir, temporary) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => (
            std::env::temp_dir().join(format!("aitrail-bench-query-{}", std::process::id())),
            true,
        ),
    };
    let result = bench(&dir, args.events);
    if temporary {
        let _ = std::fs::remove_dir_all(&dir);
    }
    result
}

fn bench(dir: &Path, events: u64) -> Result<()> {
    let data_path = dir.join("data");
    let (data, _) = DataDir::init(&data_path, None)?;
    let store = data.store(None)?;
    let have = store.head(LOG)?.size;
    if have == 0 {
        load(&data, &store, events)?;
    } else {
        println!(
            "Reusing the {} entries already in {}.\n",
            thousands(have),
            data_path.display()
        );
    }
    let size = store.head(LOG)?.size;
    let db = data_path.join("trail.db");
    let bytes = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "### Query: {} entries, {:.1} GB of SQLite, page cache warm\n",
        thousands(size),
        bytes as f64 / 1e9
    );
    let raw = Connection::open(&db)?;
    configure(&raw)?;
    let log_id: i64 = raw.query_row("SELECT id FROM logs WHERE name = ?1", [LOG], |r| r.get(0))?;
    let samples = sample_rows(&raw, log_id, size)?;

    let tenant_key = data.tenant_key(LOG)?;
    timeline(&store, &tenant_key, &raw, log_id, &samples)?;
    first_pages(store.as_ref(), &raw, log_id, &samples)?;
    export(&data_path, &raw, log_id, size)?;
    Ok(())
}

/// Loads about `events` demo events (whole tasks), as `aitrail demo --tasks N` would.
fn load(data: &DataDir, store: &Arc<dyn Store>, events: u64) -> Result<()> {
    let mut rng = Rng::new(SEED);
    let probe = 2_000u64;
    let per_task = (0..probe)
        .map(|i| task_events(&mut rng, i, probe).len() as f64)
        .sum::<f64>()
        / probe as f64;
    let tasks = ((events as f64 / per_task).round() as u64).max(1);
    let started = Instant::now();
    let loaded = demo::load(data, store, LOG, SEED, tasks)?;
    if !loaded.intact {
        bail!("the generated trail does not verify");
    }
    println!(
        "Generated with the demo generator: {} tasks, {} events, appended, checkpointed and \
         verified in {:.0} s.\n",
        thousands(tasks),
        thousands(loaded.appended),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The indexed columns of one stored row, to take filter values from.
struct Sample {
    task: String,
    event_type: String,
    actor: Option<String>,
    model: Option<(String, String)>,
    prompt: Option<String>,
    decision: Option<String>,
    subject: Option<String>,
    occurred_at: i64,
    recorded_at: i64,
}

/// Rows at random seqs: filter values drawn as the data is distributed.
fn sample_rows(raw: &Connection, log_id: i64, size: u64) -> Result<Vec<Sample>> {
    let mut rng = Rng::new(99);
    let mut stmt = raw.prepare(
        "SELECT task_id, type, actor_id, model_name, model_version, prompt_version, decision, \
         subject_ref, occurred_at, recorded_at FROM entries WHERE id = ?1",
    )?;
    let mut out = Vec::new();
    while out.len() < 20 * SAMPLES {
        let seq = rng.below(size);
        let row = stmt
            .query_row([entry_id(log_id, seq)], |r| {
                let model: Option<String> = r.get(3)?;
                let version: Option<String> = r.get(4)?;
                Ok(Sample {
                    task: r.get(0)?,
                    event_type: r.get(1)?,
                    actor: r.get(2)?,
                    model: model.zip(version),
                    prompt: r.get(5)?,
                    decision: r.get(6)?,
                    subject: r.get(7)?,
                    occurred_at: r.get(8)?,
                    recorded_at: r.get(9)?,
                })
            })
            .optional()?;
        out.extend(row);
    }
    Ok(out)
}

/// p50 and p99 of `times`, in milliseconds.
fn percentiles(times: &mut [Duration]) -> (f64, f64) {
    times.sort();
    let at = |q: f64| {
        let i = ((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1;
        times[i].as_secs_f64() * 1e3
    };
    (at(0.50), at(0.99))
}

/// Timelines as the CLI and an auditor get them: sealed content opened with `tenant_key`.
fn timeline(
    store: &Arc<dyn Store>,
    tenant_key: &[u8],
    raw: &Connection,
    log_id: i64,
    samples: &[Sample],
) -> Result<()> {
    let tasks: Vec<&str> = samples
        .iter()
        .filter(|s| s.task != aitrail_store::audit::AUDIT_TASK)
        .map(|s| s.task.as_str())
        .take(SAMPLES)
        .collect();
    let mut baseline = Vec::new();
    let mut ours = Vec::new();
    let mut events = 0usize;
    let mut stmt = raw.prepare(
        "SELECT entry FROM entries WHERE log_id = ?1 AND task_id = ?2 ORDER BY occurred_at, id",
    )?;
    // The two sides take turns task by task, so background load falls on both alike.
    for task in &tasks {
        let t = Instant::now();
        let rows: Vec<Vec<u8>> = stmt
            .query_map(rusqlite::params![log_id, task], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        baseline.push(t.elapsed());
        let t = Instant::now();
        let mut keyring = Keyring::new(store.as_ref(), LOG, tenant_key);
        let tl = task_timeline(store.as_ref(), LOG, task, Some(&mut keyring))?;
        ours.push(t.elapsed());
        if tl.steps.len() != rows.len() {
            bail!(
                "timeline of {task}: {} events, the raw query found {}",
                tl.steps.len(),
                rows.len()
            );
        }
        events += rows.len();
    }
    // What the CLI and the API do: the timeline, then its audit.accessed record committed.
    let sequencer = Sequencer::new(store.clone());
    let reader = Reader {
        kind: "system",
        id: "bench".into(),
        role: "auditor".into(),
    };
    let mut recorded = Vec::new();
    for task in tasks.iter().take(SAMPLES / 5) {
        let t = Instant::now();
        let mut keyring = Keyring::new(store.as_ref(), LOG, tenant_key);
        let tl = task_timeline(store.as_ref(), LOG, task, Some(&mut keyring))?;
        let asked = serde_json::json!({"task": task});
        record_access(
            &sequencer,
            LOG,
            &reader,
            "timeline",
            asked,
            tl.steps.len() as u64,
            Some(task),
        )?;
        recorded.push(t.elapsed());
    }
    let (b50, b99) = percentiles(&mut baseline);
    let (o50, o99) = percentiles(&mut ours);
    let (r50, r99) = percentiles(&mut recorded);
    println!(
        "#### Task timeline ({} random tasks, {:.1} events each on average)\n",
        tasks.len(),
        events as f64 / tasks.len().max(1) as f64
    );
    println!("| path | p50 | p99 |\n|---|---:|---:|");
    println!("| raw SQL: the task's rows by index (baseline) | {b50:.3} ms | {b99:.3} ms |");
    println!("| aitrail `task_timeline`: query, parse, derive | {o50:.3} ms | {o99:.3} ms |");
    println!(
        "| the same plus its `audit.accessed` committed (what CLI and API do; {} tasks) | {r50:.3} ms | {r99:.3} ms |\n",
        recorded.len()
    );
    Ok(())
}

/// One filter of the first-page table: aitrail's query and the baseline SQL with its value.
struct Case {
    name: &'static str,
    filter: Filter,
    sql: &'static str,
    params: Vec<Box<dyn ToSql>>,
}

/// A case for each filter, its value taken from sample `s` (None when the row lacks it).
fn case(which: usize, s: &Sample, next: &Sample) -> Option<Case> {
    const HOUR: i64 = 3_600_000_000;
    let f = Filter::default();
    let one = |name, filter, sql, v: &str| Case {
        name,
        filter,
        sql,
        params: vec![Box::new(v.to_owned())],
    };
    Some(match which {
        0 => one(
            "task",
            Filter { task_id: Some(s.task.clone()), ..f },
            "SELECT entry FROM entries WHERE log_id = ?1 AND task_id = ?2 ORDER BY occurred_at, id LIMIT 101",
            &s.task,
        ),
        1 => {
            let a = s.actor.as_ref()?;
            one(
                "actor",
                Filter { actor_id: Some(a.clone()), ..f },
                "SELECT entry FROM entries WHERE log_id = ?1 AND actor_id = ?2 ORDER BY occurred_at, id LIMIT 101",
                a,
            )
        }
        2 => one(
            "one type",
            Filter { types: vec![s.event_type.clone()], ..f },
            "SELECT entry FROM entries WHERE log_id = ?1 AND type = ?2 ORDER BY occurred_at, id LIMIT 101",
            &s.event_type,
        ),
        3 => {
            if s.event_type == next.event_type {
                return None;
            }
            Case {
                name: "two types",
                filter: Filter { types: vec![s.event_type.clone(), next.event_type.clone()], ..f },
                sql: "SELECT entry FROM entries WHERE log_id = ?1 AND type IN (?2, ?3) ORDER BY occurred_at, id LIMIT 101",
                params: vec![Box::new(s.event_type.clone()), Box::new(next.event_type.clone())],
            }
        }
        4 => {
            let (m, v) = s.model.as_ref()?;
            Case {
                name: "model and version",
                filter: Filter { model_name: Some(m.clone()), model_version: Some(v.clone()), ..f },
                sql: "SELECT entry FROM entries WHERE log_id = ?1 AND model_name = ?2 AND model_version = ?3 ORDER BY occurred_at, id LIMIT 101",
                params: vec![Box::new(m.clone()), Box::new(v.clone())],
            }
        }
        5 => {
            let p = s.prompt.as_ref()?;
            one(
                "prompt version",
                Filter { prompt_version: Some(p.clone()), ..f },
                "SELECT entry FROM entries WHERE log_id = ?1 AND prompt_version = ?2 ORDER BY occurred_at, id LIMIT 101",
                p,
            )
        }
        6 => {
            let d = s.decision.as_ref()?;
            one(
                "decision",
                Filter { decision: Some(d.clone()), ..f },
                "SELECT entry FROM entries WHERE log_id = ?1 AND decision = ?2 ORDER BY occurred_at, id LIMIT 101",
                d,
            )
        }
        7 => {
            let r = s.subject.as_ref()?;
            one(
                "subject",
                Filter { subject_ref: Some(r.clone()), ..f },
                "SELECT entry FROM entries WHERE log_id = ?1 AND subject_ref = ?2 ORDER BY occurred_at, id LIMIT 101",
                r,
            )
        }
        8 => Case {
            name: "occurred in an hour",
            filter: Filter { from: Some(s.occurred_at), to: Some(s.occurred_at + HOUR), ..f },
            sql: "SELECT entry FROM entries WHERE log_id = ?1 AND occurred_at >= ?2 AND occurred_at < ?3 ORDER BY occurred_at, id LIMIT 101",
            params: vec![Box::new(s.occurred_at), Box::new(s.occurred_at + HOUR)],
        },
        9 => Case {
            name: "recorded in a minute",
            filter: Filter {
                from: Some(s.recorded_at),
                to: Some(s.recorded_at + HOUR / 60),
                time: TimeField::Recorded,
                ..f
            },
            sql: "SELECT entry FROM entries WHERE id >= ?2 AND id < ?3 AND recorded_at >= ?4 AND recorded_at < ?5 ORDER BY id LIMIT 101",
            params: vec![Box::new(s.recorded_at), Box::new(s.recorded_at + HOUR / 60)],
        },
        _ => Case {
            name: "no filter",
            filter: f,
            sql: "SELECT entry FROM entries WHERE log_id = ?1 ORDER BY occurred_at, id LIMIT 101",
            params: vec![],
        },
    })
}

const CASES: usize = 11;

fn first_pages(store: &dyn Store, raw: &Connection, log_id: i64, samples: &[Sample]) -> Result<()> {
    println!(
        "#### First page of search ({PAGE} rows; {SAMPLES} random values per filter)
"
    );
    println!("| filter | rows on the page (mean) | baseline SQL p50 | p99 | aitrail p50 | p99 |");
    println!("|---|---:|---:|---:|---:|---:|");
    for which in 0..CASES {
        let cases: Vec<Case> = samples
            .windows(2)
            .filter_map(|w| case(which, &w[0], &w[1]))
            .take(SAMPLES)
            .collect();
        let Some(name) = cases.first().map(|c| c.name) else {
            continue;
        };
        let (mut base, mut ours, mut rows) = (Vec::new(), Vec::new(), 0usize);
        // No index serves recorded_at, so its baseline is a scan of the log: measured on a
        // few values only, or it alone would take most of the run.
        let baseline_runs = if which == 9 { 5 } else { cases.len() };
        for (i, c) in cases.iter().enumerate() {
            let mut params: Vec<&dyn ToSql> = vec![&log_id];
            let range;
            if which == 9 {
                // The recorded-time baseline reads the log's rowid range (as aitrail does).
                range = (entry_id(log_id, 0), entry_id(log_id + 1, 0));
                params.extend([&range.0 as &dyn ToSql, &range.1]);
            }
            params.extend(c.params.iter().map(|p| p.as_ref()));
            let n = if i < baseline_runs {
                let t = Instant::now();
                let mut stmt = raw.prepare_cached(c.sql)?;
                let n = stmt
                    .query_map(&params[..], |r| r.get::<_, Vec<u8>>(0))?
                    .count();
                base.push(t.elapsed());
                Some(n)
            } else {
                None
            };
            let t = Instant::now();
            let (page, _) = search(
                store,
                LOG,
                &Query {
                    filter: c.filter.clone(),
                    limit: Some(PAGE),
                    ..Query::default()
                },
            )?;
            ours.push(t.elapsed());
            if let Some(n) = n.filter(|n| page.len() != (*n).min(PAGE)) {
                bail!(
                    "{name}: aitrail found {} rows, the baseline {n}",
                    page.len()
                );
            }
            rows += page.len();
        }
        let (b50, b99) = percentiles(&mut base);
        let (o50, o99) = percentiles(&mut ours);
        let runs = if base.len() < cases.len() {
            format!(" (baseline: {} values)", base.len())
        } else {
            String::new()
        };
        println!(
            "| {name}{runs} | {:.0} | {b50:.2} ms | {b99:.2} ms | {o50:.2} ms | {o99:.2} ms |",
            rows as f64 / cases.len() as f64
        );
    }
    println!();
    Ok(())
}

/// Runs `aitrail export` on the trail as a child writing to a pipe; returns its time, its
/// peak RSS in bytes and the lines it wrote.
///
/// The peak is the child's `VmHWM` (/proc/PID/status), read every 20 ms while it runs: it
/// belongs to the memory the child has had since its exec. (`wait4`'s `ru_maxrss` would also
/// count the moment between fork and exec, when the child still had this benchmark's pages.)
fn export_child(data: &Path, format: &str) -> Result<(Duration, u64, u64)> {
    let exe = std::env::current_exe()?;
    let started = Instant::now();
    let mut child = Command::new(exe)
        .arg("--data")
        .arg(data)
        .args(["export", "--format", format])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("starting aitrail export")?;
    let status_file = format!("/proc/{}/status", child.id());
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(Ordering::Relaxed) {
                let hwm = std::fs::read_to_string(&status_file).ok().and_then(|s| {
                    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
                    line.split_whitespace().nth(1)?.parse::<u64>().ok()
                });
                peak = peak.max(hwm.unwrap_or(0) * 1024);
                std::thread::sleep(Duration::from_millis(20));
            }
            peak
        })
    };
    let mut out = child.stdout.take().context("the child's stdout")?;
    let mut counted = CountLines(0);
    std::io::copy(&mut out, &mut counted)?;
    let status = child.wait()?;
    let elapsed = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let peak = watcher.join().unwrap_or(0);
    if !status.success() {
        bail!("aitrail export --format {format} failed ({status})");
    }
    Ok((elapsed, peak, counted.0))
}

/// A sink that counts newlines.
struct CountLines(u64);

impl Write for CountLines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.iter().filter(|&&b| b == b'\n').count() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn export(data: &Path, raw: &Connection, log_id: i64, size: u64) -> Result<()> {
    // Baseline: the entry bytes of the whole log in seq order, written to a sink.
    let t = Instant::now();
    let mut sink = CountLines(0);
    let mut stmt =
        raw.prepare("SELECT entry FROM entries WHERE id >= ?1 AND id < ?2 ORDER BY id")?;
    let mut rows = stmt.query([entry_id(log_id, 0), entry_id(log_id + 1, 0)])?;
    while let Some(r) = rows.next()? {
        sink.write_all(r.get_ref(0)?.as_bytes()?)?;
        sink.write_all(b"\n")?;
    }
    let base = t.elapsed();
    let (csv_time, csv_rss, csv_lines) = export_child(data, "csv")?;
    let (nd_time, nd_rss, nd_lines) = export_child(data, "ndjson")?;
    // CSV has a header line; both export what the log held when they started (the
    // benchmark's own audit records included).
    if nd_lines < size || csv_lines < size + 1 {
        bail!("export wrote {csv_lines} CSV and {nd_lines} NDJSON lines for {size} entries");
    }
    let rate = |n: u64, d: Duration| thousands((n as f64 / d.as_secs_f64()) as u64);
    let mb = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "#### Export of the whole log to a pipe
"
    );
    println!(
        "| path | rows | time | rows/s | peak RSS |
|---|---:|---:|---:|---:|"
    );
    println!(
        "| raw SQL scan of the entry bytes to a sink, in process (baseline) | {} | {:.1} s | {} | |",
        thousands(sink.0),
        base.as_secs_f64(),
        rate(sink.0, base)
    );
    println!(
        "| `aitrail export --format ndjson`, a child process | {} | {:.1} s | {} | {:.0} MiB |",
        thousands(nd_lines),
        nd_time.as_secs_f64(),
        rate(nd_lines, nd_time),
        mb(nd_rss)
    );
    println!(
        "| `aitrail export --format csv`, a child process | {} | {:.1} s | {} | {:.0} MiB |\n",
        thousands(csv_lines - 1),
        csv_time.as_secs_f64(),
        rate(csv_lines - 1, csv_time),
        mb(csv_rss)
    );
    Ok(())
}
