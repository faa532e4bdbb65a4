//! `aitrail bench postgres`: aitrail's PostgreSQL ingest side by side with its baselines in
//! the same run, printed as Markdown for BENCHMARKS.md. Every path writes the same ~1 KB
//! events into a fresh scratch database (dropped afterwards) holding the same partitioned
//! `aitrail.entries` table and indexes, in transactions of the same size:
//!
//! - plain COPY: the rows (entry bytes, index columns, zero hashes) by binary COPY, no hashing;
//!   once more together with their `entry_keys` rows and `entry_spans` row (all the tables
//!   aitrail writes); and
//!   once more the way aitrail writes a large group: the entries on one connection and the
//!   keys on another, at once, committed in that order;
//! - aitrail: the sequencer (seq, dedupe, leaf + chain hashes, Merkle nodes) and the store's
//!   binary COPYs, one group commit per request (`PgStore`: two connections for a large one);
//! - naive: the usual "row-level hashing" advice, a BEFORE INSERT trigger that reads the last
//!   row and sets `hash = sha256(prev_hash || payload)` (and the seq after the last one);
//! - under concurrency: 8 clients at once, naive trigger vs 8 aitrail stores (as 8 processes),
//!   counting forks: rows whose hash does not follow from the row before them.

use crate::args::{BenchArgs, Cli};
use crate::commands::ingest::prepare_ndjson;
use crate::progress::thousands;
use crate::sample::padded_events;
use aitrail_core::entry::{entry_bytes, PreparedEvent};
use aitrail_core::event::format_time;
use aitrail_store::postgres::client::{Client, NoTls};
use aitrail_store::postgres::{copy_entries, copy_keys, display_url, PgStore, ScratchDatabase};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::{NewEntry, Store};
use anyhow::{bail, ensure, Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events per transaction on every single-client path (as `aitrail bench ingest`).
const BATCH: usize = 5_000;
/// Rounds of the single-client paths.
const ROUNDS: usize = 5;
/// Concurrent clients, and events per transaction for each of them.
const CLIENTS: usize = 8;
const CLIENT_BATCH: usize = 100;
const LOG: &str = "bench";
const KEY: &[u8] = b"bench subject key";

/// The naive approach, on a table of the same columns, partitions and indexes as
/// `aitrail.entries` plus `id` (insertion order) and `prev_hash`.
const NAIVE_SCHEMA: &str = r#"
CREATE SCHEMA naive;
CREATE TABLE naive.entries (
    LIKE aitrail.entries INCLUDING DEFAULTS,
    id        bigint GENERATED ALWAYS AS IDENTITY,
    prev_hash bytea
) PARTITION BY RANGE (recorded_at);
CREATE INDEX ON naive.entries (log_id, seq);
CREATE INDEX ON naive.entries (log_id, task_id, occurred_at);
CREATE INDEX ON naive.entries (log_id, actor_id, occurred_at) WHERE actor_id IS NOT NULL;
CREATE INDEX ON naive.entries (log_id, type, occurred_at);
CREATE INDEX ON naive.entries (log_id, model_name, model_version, occurred_at) WHERE model_name IS NOT NULL;
CREATE INDEX ON naive.entries (log_id, occurred_at);
DO $$
DECLARE d date;
BEGIN
    FOR d IN SELECT g::date FROM generate_series(current_date - 1, current_date + 7, interval '1 day') g LOOP
        EXECUTE format('CREATE TABLE naive.%I PARTITION OF naive.entries FOR VALUES FROM (%L) TO (%L)',
            'entries_' || to_char(d, 'YYYYMMDD'),
            to_char(d, 'YYYY-MM-DD') || ' 00:00:00+00', to_char(d + 1, 'YYYY-MM-DD') || ' 00:00:00+00');
    END LOOP;
END $$;
CREATE FUNCTION naive.chain() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE last record;
BEGIN
    SELECT seq, chain_hash INTO last FROM naive.entries
        WHERE log_id = NEW.log_id ORDER BY seq DESC LIMIT 1;
    NEW.seq := coalesce(last.seq + 1, 0);
    NEW.prev_hash := coalesce(last.chain_hash, decode(repeat('00', 32), 'hex'));
    NEW.chain_hash := sha256(NEW.prev_hash || NEW.entry);
    RETURN NEW;
END
$fn$;
CREATE TRIGGER chain BEFORE INSERT ON naive.entries FOR EACH ROW EXECUTE FUNCTION naive.chain();
"#;

pub fn run(cli: &Cli, args: &BenchArgs) -> Result<()> {
    let Some(server) = cli
        .store
        .as_deref()
        .filter(|u| u.starts_with("postgres://") || u.starts_with("postgresql://"))
    else {
        bail!(
            "aitrail bench postgres needs --store postgres://USER@HOST/DB (or AITRAIL_STORE): a user \
             who may CREATE DATABASE; it works in scratch databases it drops afterwards"
        );
    };
    let n = args.events as usize;
    let mut client = Client::connect(server, NoTls)
        .with_context(|| format!("connecting to {}", display_url(server)))?;
    let version: String = client.query_one("SHOW server_version", &[])?.get(0);
    drop(client);
    println!(
        "## PostgreSQL bench ({}; PostgreSQL {version} on the same machine)\n",
        machine()
    );

    let lines: Vec<String> = padded_events(42, n, 1000)
        .iter()
        .map(|v| v.to_string())
        .collect();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    let prepared: Vec<PreparedEvent> = prepare_ndjson(&lines.join("\n"), KEY, &|_| {})
        .map_err(|e| anyhow::anyhow!("bench events invalid: {e:?}"))?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    drop(lines);
    // The baselines' rows, built before any clock starts: what aitrail would store, with
    // zero hashes.
    let recorded_at = now_micros();
    let text = format_time(recorded_at);
    let rows: Vec<NewEntry> = prepared
        .iter()
        .enumerate()
        .map(|(i, p)| NewEntry {
            seq: i as u64,
            event_id: p.id.to_string(),
            recorded_at,
            occurred_at: p.occurred_at,
            event_type: p.event_type.clone(),
            task_id: p.task_id.clone(),
            index: p.index.clone(),
            entry: entry_bytes(i as u64, LOG, &text, &p.canonical),
            leaf_hash: [0; 32],
            chain_hash: [0; 32],
        })
        .collect();

    println!(
        "### Ingest: {} events, {:.0} bytes of JSON each on average, {BATCH} per transaction, best of {ROUNDS} rounds\n",
        thousands(n as u64),
        bytes as f64 / n as f64
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("Load average when the run started: {}.\n", load.join(" "));
    }
    // Rounds interleave the paths, and each path's best round counts: other work on the
    // machine slows single runs down, never speeds them up.
    let mut best = [Duration::MAX; 5];
    for _ in 0..ROUNDS {
        let times = [
            plain_copy(server, &rows, false)?,
            plain_copy(server, &rows, true)?,
            plain_copy_split(server, &rows)?,
            aitrail_ingest(server, &prepared)?,
            naive_ingest(server, &rows)?,
        ];
        for (b, t) in best.iter_mut().zip(times) {
            *b = (*b).min(t);
        }
    }
    let [plain, plain_keys, split, ours, naive] = best;
    println!("| path | time | events/s | vs plain COPY |");
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
        "plain binary COPY into the partitioned `aitrail.entries`, same rows and indexes, no hashing (baseline)",
        plain,
    );
    row(
        "plain binary COPY into `aitrail.entries` + `aitrail.entry_keys` + `entry_spans` (every table aitrail writes), no hashing",
        plain_keys,
    );
    row(
        "plain binary COPY into the same tables on two connections, as aitrail writes a large group (entries; keys and span), no hashing",
        split,
    );
    row(
        "aitrail: sequencer (seq, dedupe, leaf + chain + Merkle nodes) + binary COPY on two connections, advisory lock",
        ours,
    );
    row(
        "naive: BEFORE INSERT trigger, `sha256(prev_hash || payload)` from the last row",
        naive,
    );
    println!(
        "\naitrail is {:.2}x plain COPY (target at least 0.9x), {:.2}x the same tables written the same way \
         without hashing, and {:.2}x the naive trigger (target at least 2.5x). \
         Durability: every {BATCH} events are on disk when their commit returns, on every path \
         (synchronous_commit=on; on two connections the entries' commit is flushed by the keys' one).\n",
        plain.as_secs_f64() / ours.as_secs_f64(),
        split.as_secs_f64() / ours.as_secs_f64(),
        naive.as_secs_f64() / ours.as_secs_f64()
    );

    println!(
        "### Concurrency: {CLIENTS} clients at once, {CLIENT_BATCH} events per transaction, {} events in all\n",
        thousands(n as u64)
    );
    let naive_c = naive_concurrent(server, &rows)?;
    let ours_c = aitrail_concurrent(server, &prepared)?;
    println!("| path | time | events/s | forks | repeated seqs |");
    println!("|---|---:|---:|---:|---:|");
    for (name, (d, chain)) in [
        ("naive trigger, 8 connections", naive_c),
        (
            "aitrail, 8 stores (each its own connections and sequencer, as 8 processes)",
            ours_c,
        ),
    ] {
        println!(
            "| {name} | {:.2} s | {} | {} | {} |",
            d.as_secs_f64(),
            thousands(rate(n, d) as u64),
            thousands(chain.forks as u64),
            thousands(chain.repeated as u64)
        );
    }
    println!(
        "\nA fork is a row whose hash does not follow from the row before it in log order \
         (its `prev_hash` is not that row's hash); a repeated seq is a seq held by more than one row.\n"
    );
    Ok(())
}

fn now_micros() -> i64 {
    super::now_micros()
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

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64().max(1e-9)
}

/// A scratch database with the aitrail schema; CHECKPOINT first, so no path pays for the
/// dirty pages of the one before.
fn scratch(server: &str) -> Result<ScratchDatabase> {
    let db = ScratchDatabase::create(server, "aitrail_bench", false)?;
    PgStore::init(&db.url(), None)?;
    db.admin_execute("CHECKPOINT")?;
    Ok(db)
}

/// The log's id in a scratch database (created as aitrail would).
fn log_id(client: &mut Client) -> Result<i32> {
    Ok(client
        .query_one(
            "INSERT INTO aitrail.logs (name) VALUES ($1) RETURNING id",
            &[&LOG],
        )?
        .get(0))
}

fn plain_copy(server: &str, rows: &[NewEntry], keys: bool) -> Result<Duration> {
    let db = scratch(server)?;
    let mut client = Client::connect(&db.url(), NoTls)?;
    let log_id = log_id(&mut client)?;
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut tx = client.transaction()?;
        if keys {
            copy_keys(&mut tx, log_id, chunk)?;
        }
        copy_entries(&mut tx, "aitrail.entries", log_id, chunk)?;
        tx.commit()?;
    }
    Ok(started.elapsed())
}

/// Plain COPY the way `PgStore` writes a large group: the entries on one connection and the
/// keys on another, at once; the entries commit first without waiting for the disk, the
/// keys' commit makes both durable (one flush).
fn plain_copy_split(server: &str, rows: &[NewEntry]) -> Result<Duration> {
    let db = scratch(server)?;
    let mut entries = Client::connect(&db.url(), NoTls)?;
    let mut keys = Client::connect(&db.url(), NoTls)?;
    let log_id = log_id(&mut keys)?;
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut entries_tx = entries.transaction()?;
        let mut keys_tx = keys.transaction()?;
        std::thread::scope(|s| -> Result<()> {
            let keys = s.spawn(|| copy_keys(&mut keys_tx, log_id, chunk));
            entries_tx.batch_execute("SET LOCAL synchronous_commit = off")?;
            copy_entries(&mut entries_tx, "aitrail.entries", log_id, chunk)?;
            keys.join()
                .map_err(|_| anyhow::anyhow!("the keys' COPY thread panicked"))??;
            Ok(())
        })?;
        entries_tx.commit()?;
        keys_tx.commit()?;
    }
    Ok(started.elapsed())
}

fn aitrail_ingest(server: &str, prepared: &[PreparedEvent]) -> Result<Duration> {
    let db = scratch(server)?;
    // The log exists before the clock starts, as for the baselines (`log_id`).
    log_id(&mut Client::connect(&db.url(), NoTls)?)?;
    let store: Arc<dyn Store> = Arc::new(PgStore::open(&db.url())?);
    let seq = Sequencer::new(store.clone());
    // The requests outlive the clock, as the baselines' rows do: freeing the input is not
    // part of the ingest (`append_shared` frees nothing of it on the sequencer).
    let requests = super::shared_requests(prepared, BATCH);
    let started = Instant::now();
    for request in &requests {
        seq.append_shared(LOG, Arc::clone(request))?;
    }
    let elapsed = started.elapsed();
    drop(requests);
    drop(seq);
    let report = aitrail_store::verify::verify_log(store.as_ref(), LOG, None, &mut |_| {})?;
    ensure!(
        report.ok && report.entries == prepared.len() as u64,
        "the benchmark log does not verify: {:?}",
        report.problems.first()
    );
    Ok(elapsed)
}

fn naive_ingest(server: &str, rows: &[NewEntry]) -> Result<Duration> {
    let db = scratch(server)?;
    let mut client = Client::connect(&db.url(), NoTls)?;
    client.batch_execute(NAIVE_SCHEMA)?;
    let log_id = log_id(&mut client)?;
    let started = Instant::now();
    for chunk in rows.chunks(BATCH) {
        let mut tx = client.transaction()?;
        copy_entries(&mut tx, "naive.entries", log_id, chunk)?;
        tx.commit()?;
    }
    let elapsed = started.elapsed();
    let chain = naive_chain(&mut client)?;
    ensure!(
        chain.forks == 0 && chain.repeated == 0,
        "the naive trigger forked with a single client: {chain:?}"
    );
    Ok(elapsed)
}

/// How broken a chain is.
#[derive(Debug, Clone, Copy)]
struct Chain {
    forks: i64,
    repeated: i64,
}

/// Forks and repeated seqs of `naive.entries`, in log order (seq, then insertion order).
fn naive_chain(client: &mut Client) -> Result<Chain> {
    let row = client.query_one(
        "SELECT count(*) FILTER (WHERE prev IS NOT NULL AND prev_hash IS DISTINCT FROM prev), \
                count(*) FILTER (WHERE seq = prev_seq) \
         FROM (SELECT seq, prev_hash, lag(chain_hash) OVER w AS prev, lag(seq) OVER w AS prev_seq \
               FROM naive.entries WINDOW w AS (ORDER BY seq, id)) r",
        &[],
    )?;
    Ok(Chain {
        forks: row.get(0),
        repeated: row.get(1),
    })
}

/// The same for `aitrail.entries`: chain_hash[n] must be SHA-256(chain_hash[n-1] || leaf[n]).
fn aitrail_chain(client: &mut Client) -> Result<Chain> {
    let row = client.query_one(
        "SELECT count(*) FILTER (WHERE prev IS NOT NULL AND sha256(prev || leaf_hash) <> chain_hash), \
                count(*) FILTER (WHERE seq = prev_seq) \
         FROM (SELECT seq, leaf_hash, chain_hash, lag(chain_hash) OVER w AS prev, lag(seq) OVER w AS prev_seq \
               FROM aitrail.entries WINDOW w AS (ORDER BY seq)) r",
        &[],
    )?;
    Ok(Chain {
        forks: row.get(0),
        repeated: row.get(1),
    })
}

/// `CLIENTS` threads, each running `work` on its share of `0..n` in `CLIENT_BATCH` chunks.
fn clients<T: Sync>(
    items: &[T],
    work: impl Fn(usize, &[T]) -> Result<()> + Sync,
) -> Result<Duration> {
    let share = items.len().div_ceil(CLIENTS);
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(share.max(1))
            .enumerate()
            .map(|(c, mine)| {
                let work = &work;
                s.spawn(move || work(c, mine))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("a client thread panicked"))?
            })
            .collect::<Result<Vec<()>>>()
    })?;
    Ok(started.elapsed())
}

fn naive_concurrent(server: &str, rows: &[NewEntry]) -> Result<(Duration, Chain)> {
    let db = scratch(server)?;
    let mut client = Client::connect(&db.url(), NoTls)?;
    client.batch_execute(NAIVE_SCHEMA)?;
    let log_id = log_id(&mut client)?;
    let url = db.url();
    let elapsed = clients(rows, |_, mine| {
        let mut c = Client::connect(&url, NoTls)?;
        for chunk in mine.chunks(CLIENT_BATCH) {
            let mut tx = c.transaction()?;
            copy_entries(&mut tx, "naive.entries", log_id, chunk)?;
            tx.commit()?;
        }
        Ok(())
    })?;
    Ok((elapsed, naive_chain(&mut client)?))
}

fn aitrail_concurrent(server: &str, prepared: &[PreparedEvent]) -> Result<(Duration, Chain)> {
    let db = scratch(server)?;
    // As for one client: the log and the requests are ready before the clock.
    log_id(&mut Client::connect(&db.url(), NoTls)?)?;
    let stores = (0..CLIENTS)
        .map(|_| Ok(Arc::new(PgStore::open(&db.url())?) as Arc<dyn Store>))
        .collect::<Result<Vec<_>>>()?;
    let requests = super::shared_requests(prepared, CLIENT_BATCH);
    let elapsed = clients(&requests, |c, mine| {
        let seq = Sequencer::new(stores[c].clone());
        for request in mine {
            seq.append_shared(LOG, Arc::clone(request))?;
        }
        Ok(())
    })?;
    drop(requests);
    let report = aitrail_store::verify::verify_log(stores[0].as_ref(), LOG, None, &mut |_| {})?;
    ensure!(
        report.ok && report.entries == prepared.len() as u64,
        "the concurrent benchmark log does not verify: {:?}",
        report.problems.first()
    );
    let mut client = Client::connect(&db.url(), NoTls)?;
    Ok((elapsed, aitrail_chain(&mut client)?))
}
