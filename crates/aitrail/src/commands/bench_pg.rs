//! `aitrail bench postgres`: aitrail's PostgreSQL ingest side by side with its baselines in
//! the same run, printed as Markdown for BENCHMARKS.md. Every path writes the same ~1 KB
//! events into a fresh scratch database (dropped afterwards) holding the same partitioned
//! `aitrail.entries` table and indexes, in transactions of the same size:
//!
//! - plain COPY: the rows (entry bytes, index columns, zero hashes) by binary COPY, no hashing;
//!   once more together with their `entry_keys` rows and `entry_spans` row (all the tables
//!   aitrail writes); and
//!   once more the way aitrail writes a large group on two connections at once (`Split`);
//! - aitrail: the sequencer (seq, dedupe, leaf + chain hashes, Merkle nodes) and the store's
//!   binary COPYs, one group commit per request (`PgStore`: two connections for a large one);
//! - naive: the usual "row-level hashing" advice, a BEFORE INSERT trigger that reads the last
//!   row and sets `hash = sha256(prev_hash || payload)` (and the seq after the last one);
//! - under concurrency: 8 clients at once, naive trigger vs 8 aitrail stores (as 8 processes),
//!   counting forks: rows whose hash does not follow from the row before them.
//!
//! The single-client paths run in rounds, and within a round they take turns transaction by
//! transaction (`round`): on a machine whose speed drifts from one second to the next (a
//! shared virtual machine), paths run one after the other would each meet a different one.

use crate::args::{BenchArgs, Cli};
use crate::commands::ingest::prepare_ndjson;
use crate::progress::thousands;
use crate::sample::{padded_events, Rng};
use aitrail_core::entry::{entry_bytes, PreparedEvent};
use aitrail_core::event::format_time;
use aitrail_store::postgres::client::{Client, NoTls};
use aitrail_store::postgres::{
    copy_entries, copy_keys, display_url, max_prepared_transactions, PgStore, ScratchDatabase,
};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::{NewEntry, Store};
use anyhow::{bail, ensure, Context, Result};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Events per transaction on every single-client path (as `aitrail bench ingest`).
const BATCH: usize = 5_000;
/// Rounds of the single-client paths.
const ROUNDS: usize = 7;
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
    let layout = match max_prepared_transactions(&mut client)? {
        0 => "max_prepared_transactions = 0: a large group's entries go on one connection, its keys on another".to_owned(),
        n => format!("max_prepared_transactions = {n}: a large group's rows are shared by two connections, committed in two phases"),
    };
    drop(client);
    println!(
        "## PostgreSQL bench ({}; PostgreSQL {version} on the same machine, {layout})\n",
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
        "### Ingest: {} events, {:.0} bytes of JSON each on average, {BATCH} per transaction, best of {ROUNDS} rounds, the paths taking turns transaction by transaction\n",
        thousands(n as u64),
        bytes as f64 / n as f64
    );
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        let load: Vec<&str> = load.split_whitespace().take(3).collect();
        println!("Load average when the run started: {}.\n", load.join(" "));
    }
    // Every path's best round counts: other work on the machine slows rounds down, never
    // speeds them up. Within a round the paths take turns group by group (`round`).
    let mut best = [Duration::MAX; 5];
    let mut rounds = Vec::with_capacity(ROUNDS);
    for r in 0..ROUNDS {
        let times = round(server, r, &rows, &prepared)?;
        for (b, t) in best.iter_mut().zip(times) {
            *b = (*b).min(t);
        }
        rounds.push(times);
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
        "plain binary COPY into the same tables on two connections, as aitrail writes a large group (layout above), no hashing",
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
         (synchronous_commit=on; on two connections the first commit is flushed by the later one).\n",
        plain.as_secs_f64() / ours.as_secs_f64(),
        split.as_secs_f64() / ours.as_secs_f64(),
        naive.as_secs_f64() / ours.as_secs_f64()
    );
    print_rounds(&rounds);

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

/// Every round's times and ratios: within a round the paths took turns, so a round's ratios
/// compare them on the same machine, while the best times above may come from different
/// rounds.
fn print_rounds(rounds: &[[Duration; 5]]) {
    println!(
        "| round | plain COPY | aitrail | naive trigger | aitrail vs plain | aitrail vs naive |"
    );
    println!("|---:|---:|---:|---:|---:|---:|");
    let (mut vs_plain, mut vs_naive) = (Vec::new(), Vec::new());
    for (i, [plain, _, _, ours, naive]) in rounds.iter().enumerate() {
        let (p, o, n) = (plain.as_secs_f64(), ours.as_secs_f64(), naive.as_secs_f64());
        vs_plain.push(p / o);
        vs_naive.push(n / o);
        println!(
            "| {} | {p:.2} s | {o:.2} s | {n:.2} s | {:.2}x | {:.2}x |",
            i + 1,
            p / o,
            n / o
        );
    }
    println!(
        "\nRound by round, aitrail was {} plain COPY (median {:.2}x) and {} the naive trigger (median {:.2}x).\n",
        spread(&vs_plain),
        median(&mut vs_plain),
        spread(&vs_naive),
        median(&mut vs_naive)
    );
}

/// "a-bx": the smallest and largest ratio.
fn spread(ratios: &[f64]) -> String {
    let lo = ratios.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    format!("{lo:.2}-{hi:.2}x")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    }
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

/// One single-client path of a round, in a scratch database of its own.
trait Path {
    /// Writes group `i` (`rows`: its rows as the baselines write them).
    fn group(&mut self, i: usize, rows: &[NewEntry]) -> Result<()>;
    /// Checks what the path wrote, once every group is in (off the clock).
    fn check(&mut self) -> Result<()> {
        Ok(())
    }
}

/// One round: the paths take turns group by group, in an order shuffled anew for every group
/// (seeded by `round`), so every path meets the machine as the others do however its speed
/// drifts, and follows each other path about as often (what one leaves behind, dirty pages
/// or a busy WAL, does not always land on the same next one); returns each path's total
/// time, in the order of `run`.
fn round(
    server: &str,
    round: usize,
    rows: &[NewEntry],
    prepared: &[PreparedEvent],
) -> Result<[Duration; 5]> {
    let mut paths: [Box<dyn Path>; 5] = [
        Box::new(Plain::new(server, Target::Entries)?),
        Box::new(Plain::new(server, Target::EntriesAndKeys)?),
        Box::new(Split::new(server)?),
        Box::new(Ours::new(server, prepared)?),
        Box::new(Plain::new(server, Target::Naive)?),
    ];
    let mut times = [Duration::ZERO; 5];
    let mut rng = Rng::new(round as u64);
    let mut order: [usize; 5] = [0, 1, 2, 3, 4];
    for (g, chunk) in rows.chunks(BATCH).enumerate() {
        for i in (1..order.len()).rev() {
            order.swap(i, rng.below(i as u64 + 1) as usize);
        }
        for &p in &order {
            let started = Instant::now();
            paths[p].group(g, chunk)?;
            times[p] += started.elapsed();
        }
    }
    for path in &mut paths {
        path.check()?;
    }
    Ok(times)
}

/// What a one-connection path copies its rows into.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Target {
    /// `aitrail.entries` alone.
    Entries,
    /// `aitrail.entries` and the rows' keys and span (every table aitrail writes).
    EntriesAndKeys,
    /// `naive.entries`, whose BEFORE INSERT trigger sets each row's seq and hash from the
    /// last row (the naive approach).
    Naive,
}

/// Binary COPY of the rows into `target` on one connection, a transaction per group.
struct Plain {
    client: Client,
    log_id: i32,
    target: Target,
    /// Last: dropped after the connections that use it.
    _db: ScratchDatabase,
}

impl Plain {
    fn new(server: &str, target: Target) -> Result<Plain> {
        let db = scratch(server)?;
        let mut client = Client::connect(&db.url(), NoTls)?;
        if target == Target::Naive {
            client.batch_execute(NAIVE_SCHEMA)?;
        }
        let log_id = log_id(&mut client)?;
        Ok(Plain {
            _db: db,
            client,
            log_id,
            target,
        })
    }
}

impl Path for Plain {
    fn group(&mut self, _: usize, rows: &[NewEntry]) -> Result<()> {
        let mut tx = self.client.transaction()?;
        let table = match self.target {
            Target::Entries => "aitrail.entries",
            Target::EntriesAndKeys => {
                copy_keys(&mut tx, self.log_id, rows)?;
                "aitrail.entries"
            }
            Target::Naive => "naive.entries",
        };
        copy_entries(&mut tx, table, self.log_id, rows)?;
        tx.commit()?;
        Ok(())
    }

    /// The naive trigger must not fork with one client (it does with eight).
    fn check(&mut self) -> Result<()> {
        if self.target == Target::Naive {
            let chain = naive_chain(&mut self.client)?;
            ensure!(
                chain.forks == 0 && chain.repeated == 0,
                "the naive trigger forked with a single client: {chain:?}"
            );
        }
        Ok(())
    }
}

/// Plain COPY the way `PgStore` writes a large group, on two connections at once. With
/// prepared transactions (`two_phase`): the first three fifths of the rows on one, the rest
/// with the keys on the other, whose transaction is prepared before the first commits
/// (without waiting for the disk) and committed after. Without: all the entries on one, the
/// keys on the other; the entries commit first without waiting for the disk, the keys'
/// commit makes both durable (one flush).
struct Split {
    entries: Client,
    keys: Client,
    log_id: i32,
    two_phase: bool,
    /// Last: dropped after the connections that use it.
    _db: ScratchDatabase,
}

impl Split {
    fn new(server: &str) -> Result<Split> {
        let db = scratch(server)?;
        let entries = Client::connect(&db.url(), NoTls)?;
        let mut keys = Client::connect(&db.url(), NoTls)?;
        let log_id = log_id(&mut keys)?;
        let two_phase = max_prepared_transactions(&mut keys)? > 0;
        Ok(Split {
            _db: db,
            entries,
            keys,
            log_id,
            two_phase,
        })
    }
}

impl Path for Split {
    fn group(&mut self, _: usize, rows: &[NewEntry]) -> Result<()> {
        let log_id = self.log_id;
        let cut = match self.two_phase {
            true => rows.len() * 3 / 5,
            false => rows.len(),
        };
        let (first, rest) = rows.split_at(cut);
        let mut entries_tx = self.entries.transaction()?;
        let mut keys_tx = self.keys.transaction()?;
        let two_phase = self.two_phase;
        std::thread::scope(|s| -> Result<()> {
            let keys = s.spawn(|| -> Result<()> {
                if !rest.is_empty() {
                    copy_entries(&mut keys_tx, "aitrail.entries", log_id, rest)?;
                }
                copy_keys(&mut keys_tx, log_id, rows)?;
                if two_phase {
                    keys_tx.batch_execute("PREPARE TRANSACTION 'aitrail bench'")?;
                }
                Ok(())
            });
            entries_tx.batch_execute("SET LOCAL synchronous_commit = off")?;
            copy_entries(&mut entries_tx, "aitrail.entries", log_id, first)?;
            keys.join()
                .map_err(|_| anyhow::anyhow!("the keys' COPY thread panicked"))??;
            Ok(())
        })?;
        entries_tx.commit()?;
        // After a PREPARE, only a warning: the transaction is in the server's hands.
        keys_tx.commit()?;
        if two_phase {
            self.keys.batch_execute("COMMIT PREPARED 'aitrail bench'")?;
        }
        Ok(())
    }
}

/// aitrail: one request per group through the sequencer and `PgStore`.
struct Ours {
    store: Arc<dyn Store>,
    pg: Arc<PgStore>,
    seq: Sequencer,
    /// The requests outlive the clock, as the baselines' rows do: freeing the input is not
    /// part of the ingest (`append_shared` frees nothing of it on the sequencer).
    requests: Vec<Arc<Vec<PreparedEvent>>>,
    events: u64,
    /// Last: dropped after the connections that use it.
    _db: ScratchDatabase,
}

impl Ours {
    fn new(server: &str, prepared: &[PreparedEvent]) -> Result<Ours> {
        let db = scratch(server)?;
        // The log exists before the clock starts, as for the baselines (`log_id`).
        log_id(&mut Client::connect(&db.url(), NoTls)?)?;
        let pg = Arc::new(PgStore::open(&db.url())?);
        let store: Arc<dyn Store> = pg.clone();
        Ok(Ours {
            _db: db,
            seq: Sequencer::new(store.clone()),
            store,
            pg,
            requests: super::shared_requests(prepared, BATCH),
            events: prepared.len() as u64,
        })
    }
}

impl Path for Ours {
    fn group(&mut self, i: usize, _: &[NewEntry]) -> Result<()> {
        self.seq.append_shared(LOG, Arc::clone(&self.requests[i]))?;
        Ok(())
    }

    fn check(&mut self) -> Result<()> {
        let report =
            aitrail_store::verify::verify_log(self.store.as_ref(), LOG, None, &mut |_| {})?;
        ensure!(
            report.ok && report.entries == self.events,
            "the benchmark log does not verify: {:?}",
            report.problems.first()
        );
        // Every large group went on two connections, in two phases where the server allows
        // (a smaller last one goes on one).
        let groups = self
            .requests
            .iter()
            .filter(|r| r.len() >= aitrail_store::sequencer::PIPELINE_MIN)
            .count() as u64;
        let expected = (groups, if self.pg.two_phase() { groups } else { 0 });
        let seen = (self.pg.two_connection_groups(), self.pg.two_phase_groups());
        ensure!(
            seen == expected,
            "aitrail's groups on two connections and in two phases: {seen:?}, expected {expected:?}"
        );
        Ok(())
    }
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
