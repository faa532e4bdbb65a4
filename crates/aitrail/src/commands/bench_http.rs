//! `aitrail bench http`: HTTP ingest over loopback with batches of 1, 10 and 100 events, side
//! by side with embedded ingest of the same events through the same sequencer; then p50/p99
//! latency of single-event requests sent at a fixed rate (open loop: latency counts from the
//! moment a request was due, so a slow server cannot hide its queue).

use crate::args::BenchArgs;
use crate::progress::thousands;
use crate::sample::padded_events;
use aitrail_core::checkpoint::Signer;
use aitrail_core::entry::PreparedEvent;
use aitrail_core::event::{Event, Origin};
use aitrail_server::metrics::Metrics;
use aitrail_server::state::{AppState, Keys, Settings};
use aitrail_store::sequencer::Sequencer;
use aitrail_store::sqlite::SqliteStore;
use aitrail_store::store::Store;
use aitrail_store::tokens::{token_hash, Role, SqliteTokens, TokenRecord, TokenStore};
use anyhow::{ensure, Context, Result};
use serde_json::Value;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Client threads, each with its own keep-alive connection.
const CLIENTS: usize = 16;
const TOKEN: &str = "bench-token";
const SUBJECT_KEY: &[u8] = b"bench subject key";

struct BenchKeys(Arc<Signer>);

impl Keys for BenchKeys {
    fn signer(&self, _log: &str) -> Result<Arc<Signer>, String> {
        Ok(self.0.clone())
    }
    fn subject_key(&self) -> Arc<Vec<u8>> {
        Arc::new(SUBJECT_KEY.to_vec())
    }
}

/// A server on a free loopback port, stopped on drop.
struct Running {
    base: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start(dir: &Path, name: &str) -> Result<Running> {
    let path = dir.join(name);
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&path)?);
    let tokens = Arc::new(SqliteTokens::open(&path)?);
    tokens.add(
        &TokenRecord {
            id: "bench".into(),
            name: "bench".into(),
            role: Role::Ingest,
            tenant: "default".into(),
            created_at: 0,
            revoked_at: None,
        },
        &token_hash(TOKEN),
    )?;
    let state = AppState {
        store: store.clone(),
        sequencer: Arc::new(Sequencer::new(store)),
        tokens,
        keys: Arc::new(BenchKeys(Arc::new(Signer::from_seed(
            "bench.local/default",
            [3; 32],
        )?))),
        metrics: Arc::new(Metrics::new()),
        settings: Settings::default(),
        archive: None,
    };
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let base = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            let _ = aitrail_server::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await;
        });
    });
    Ok(Running {
        base,
        stop: Some(stop),
        thread: Some(thread),
    })
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into()
}

fn post(agent: &ureq::Agent, base: &str, body: &str) -> Result<()> {
    let resp = agent
        .post(&format!("{base}/v1/events"))
        .header("Authorization", &format!("Bearer {TOKEN}"))
        .header("Content-Type", "application/json")
        .send(body)
        .context("POST /v1/events")?;
    ensure!(
        resp.status().as_u16() == 201,
        "unexpected status {}",
        resp.status()
    );
    Ok(())
}

/// Runs `work(i)` for i in 0..n on CLIENTS threads; returns the wall time.
fn parallel(n: usize, work: impl Fn(usize) -> Result<()> + Sync) -> Result<Duration> {
    let next = AtomicUsize::new(0);
    let started = Instant::now();
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| -> Result<()> {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            return Ok(());
                        }
                        work(i)?;
                    }
                })
            })
            .collect();
        handles.into_iter().try_for_each(|h| {
            h.join()
                .map_err(|_| anyhow::anyhow!("client thread panicked"))?
        })
    })?;
    Ok(started.elapsed())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("aitrail-bench-http-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let result = run_in(&dir, args);
    let _ = std::fs::remove_dir_all(&dir);
    result
}

fn run_in(dir: &Path, args: &BenchArgs) -> Result<()> {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_default();
    println!(
        "## aitrail bench http ({cpu}, {} cores; server and {CLIENTS} client threads share them)\n",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("### HTTP ingest over loopback vs embedded, ~1 KB events\n");
    println!("| batch | events | HTTP events/s | embedded events/s | HTTP / embedded |");
    println!("|---:|---:|---:|---:|---:|");
    for (round, (batch, n)) in [(1usize, 4_000usize), (10, 20_000), (100, 50_000)]
        .into_iter()
        .enumerate()
    {
        let events = padded_events(1000 + round as u64, n, 1000);
        let bodies: Vec<String> = events
            .chunks(batch)
            .map(|c| {
                if batch == 1 {
                    c[0].to_string()
                } else {
                    Value::Array(c.to_vec()).to_string()
                }
            })
            .collect();

        let server = start(dir, &format!("http-{batch}.db"))?;
        let agents: Vec<ureq::Agent> = (0..CLIENTS).map(|_| agent()).collect();
        let http = parallel(bodies.len(), |i| {
            post(&agents[i % CLIENTS], &server.base, &bodies[i])
        })?;
        drop(server);

        // Embedded: the same events, the same request sizes and concurrency, no HTTP.
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open(
            &dir.join(format!("embedded-{batch}.db")),
        )?);
        let seq = Sequencer::new(store);
        let embedded = parallel(bodies.len(), |i| {
            let chunk = &events[i * batch..((i + 1) * batch).min(n)];
            let prepared = chunk
                .iter()
                .map(|v| {
                    Ok(PreparedEvent::new(
                        Event::from_value(v.clone(), Origin::Client)
                            .map_err(|e| anyhow::anyhow!("{e:?}"))?,
                        SUBJECT_KEY,
                    )?)
                })
                .collect::<Result<Vec<_>>>()?;
            seq.append("default", prepared)?;
            Ok(())
        })?;
        let (h, e) = (
            n as f64 / http.as_secs_f64(),
            n as f64 / embedded.as_secs_f64(),
        );
        println!(
            "| {batch} | {} | {} | {} | {:.2}x |",
            thousands(n as u64),
            thousands(h as u64),
            thousands(e as u64),
            h / e
        );
    }

    // Fixed-rate single-event latency.
    let server = start(dir, "latency.db")?;
    let total = (args.rate * args.seconds) as usize;
    let events: Vec<String> = padded_events(99, total, 1000)
        .iter()
        .map(Value::to_string)
        .collect();
    let interval = Duration::from_secs_f64(1.0 / args.rate as f64);
    let next = AtomicUsize::new(0);
    let start_at = Instant::now() + Duration::from_millis(100);
    let latencies = std::sync::Mutex::new(Vec::with_capacity(total));
    std::thread::scope(|s| {
        for _ in 0..32 {
            s.spawn(|| {
                let agent = agent();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        return;
                    }
                    let due = start_at + interval * i as u32;
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                    let ok = post(&agent, &server.base, &events[i]).is_ok();
                    latencies
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push((due.elapsed(), ok));
                }
            });
        }
    });
    let elapsed = start_at.elapsed();
    drop(server);
    let mut lat = latencies.into_inner().unwrap_or_else(|p| p.into_inner());
    let failed = lat.iter().filter(|(_, ok)| !ok).count();
    lat.sort();
    let pct = |q: f64| {
        lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)]
            .0
            .as_secs_f64()
            * 1e3
    };
    println!(
        "\n### Single-event requests at a fixed {} requests/s for {} s\n",
        thousands(args.rate),
        args.seconds
    );
    println!("| requests | achieved/s | failed | p50 | p99 | max |");
    println!("|---:|---:|---:|---:|---:|---:|");
    println!(
        "| {} | {} | {failed} | {:.2} ms | {:.2} ms | {:.2} ms |\n",
        thousands(lat.len() as u64),
        thousands((lat.len() as f64 / elapsed.as_secs_f64()) as u64),
        pct(0.5),
        pct(0.99),
        lat.last().map_or(0.0, |l| l.0.as_secs_f64() * 1e3)
    );
    Ok(())
}
