//! `aitrail demo`: load the sample pipeline (see `sample.rs`), checkpoint, verify, and say
//! what to try next. With `--output FILE` it writes the NDJSON instead of loading it.

use crate::args::{Cli, DemoArgs};
use crate::data::DataDir;
use crate::progress::{bar, thousands};
use crate::sample::{task_events, Rng};
use aitrail_core::event::{Event, Origin};
use aitrail_store::sequencer::{Outcome, Sequencer};
use aitrail_store::store::Store;
use anyhow::{Context, Result};
use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;

/// Tasks per group commit while loading.
const TASKS_PER_BATCH: u64 = 500;

/// What loading the demo did.
pub struct Loaded {
    pub appended: u64,
    pub skipped: u64,
    pub checkpoint: aitrail_store::store::StoredCheckpoint,
    pub intact: bool,
}

/// Loads `tasks` sample tasks into `log`, signs a checkpoint and verifies.
pub fn load(
    data: &DataDir,
    store: &Arc<dyn Store>,
    log: &str,
    seed: u64,
    tasks: u64,
) -> Result<Loaded> {
    let key = data.tenant_key(log)?;
    let policy = data.pii.policy(log);
    let signer = data.signer(log)?;
    let sequencer = Sequencer::new(store.clone());
    let mut rng = Rng::new(seed);
    let pb = bar(tasks, "demo", false);
    let (mut appended, mut skipped) = (0u64, 0u64);
    let mut task = 0;
    while task < tasks {
        let end = (task + TASKS_PER_BATCH).min(tasks);
        let mut batch = Vec::new();
        for i in task..end {
            for value in task_events(&mut rng, i, tasks) {
                let event = Event::from_value(value, Origin::Client)
                    .map_err(|e| anyhow::anyhow!("sample event is invalid: {e:?}"))?;
                batch.push(event);
            }
        }
        let batch = aitrail_store::keys::prepare_events(store.as_ref(), log, batch, &policy, &key)?;
        for o in sequencer.append(log, batch)? {
            match o {
                Outcome::Appended(_) => appended += 1,
                Outcome::Duplicate(_) => skipped += 1,
            }
        }
        pb.set_position(end);
        task = end;
    }
    pb.finish_and_clear();
    let (checkpoint, _) =
        aitrail_store::log::checkpoint(store.as_ref(), log, &signer, super::now_micros())?;
    let report = aitrail_store::verify::verify_log(
        store.as_ref(),
        log,
        Some(&signer.verifier()),
        &mut |_| {},
    )?;
    Ok(Loaded {
        appended,
        skipped,
        checkpoint,
        intact: report.ok,
    })
}

pub fn run(cli: &Cli, args: &DemoArgs) -> Result<ExitCode> {
    if let Some(path) = &args.output {
        return write_ndjson(path, args).map(|_| ExitCode::SUCCESS);
    }
    let (data, _) = DataDir::init(&cli.data, None)?;
    let store = data.store(cli.store.as_deref())?;
    let started = std::time::Instant::now();
    let loaded = load(&data, &store, &cli.log, args.seed, args.tasks)?;
    let cp = &loaded.checkpoint;
    println!(
        "demo: {} loan applications, {} events appended{} in {:.1} s",
        thousands(args.tasks),
        thousands(loaded.appended),
        if loaded.skipped > 0 {
            format!(" ({} already there)", thousands(loaded.skipped))
        } else {
            String::new()
        },
        started.elapsed().as_secs_f64()
    );
    println!(
        "checkpoint {} signed at size {}; verify: {}",
        cp.number,
        cp.size,
        if loaded.intact {
            "intact"
        } else {
            "PROBLEMS FOUND"
        }
    );
    let data_flag = if cli.data.as_os_str() == "./aitrail-data" {
        String::new()
    } else {
        format!(" --data {}", cli.data.display())
    };
    let some_id = store
        .entry(&cli.log, cp.size / 2)?
        .map(|e| e.event_id)
        .unwrap_or_default();
    println!("\nTry next:");
    println!("  aitrail{data_flag} verify                 # recompute every hash, check every checkpoint");
    println!("  aitrail{data_flag} prove {some_id} -o proof.json");
    println!("  aitrail{data_flag} verify-proof proof.json --key \"$(aitrail{data_flag} key)\"");
    println!("  aitrail{data_flag} serve                  # the HTTP API on http://127.0.0.1:8080");
    Ok(if loaded.intact {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn write_ndjson(path: &std::path::Path, args: &DemoArgs) -> Result<()> {
    let file =
        std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut rng = Rng::new(args.seed);
    let pb = bar(args.tasks, "generate", false);
    let mut n = 0u64;
    for i in 0..args.tasks {
        for ev in task_events(&mut rng, i, args.tasks) {
            serde_json::to_writer(&mut out, &ev)?;
            out.write_all(b"\n")?;
            n += 1;
        }
        if i % 1000 == 0 {
            pb.set_position(i);
        }
    }
    out.flush()?;
    pb.finish_and_clear();
    println!(
        "wrote {} events of {} tasks to {}",
        thousands(n),
        thousands(args.tasks),
        path.display()
    );
    Ok(())
}
