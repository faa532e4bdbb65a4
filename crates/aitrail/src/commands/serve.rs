//! `aitrail serve`: the HTTP API, with checkpoints, verification and anchoring on a schedule.

use crate::args::{Cli, ServeArgs};
use crate::data::{DataDir, DataKeys};
use aitrail_server::metrics::Metrics;
use aitrail_server::state::{AppState, Keys, Settings};
use aitrail_store::retention::ArchiveStore;
use aitrail_store::sequencer::Sequencer;
use aitrail_store::store::Store;
use aitrail_store::tokens::Role;
use anyhow::{Context, Result};
use std::sync::Arc;

pub fn run(cli: &Cli, args: &ServeArgs) -> Result<()> {
    let data = if args.demo {
        DataDir::init(&cli.data, None)?.0
    } else {
        DataDir::open(&cli.data)?
    };
    let store = data.store(cli.store.as_deref())?;
    let tokens = data.tokens(cli.store.as_deref())?;
    let mut admin_token = None;
    if args.demo {
        if store.head(&cli.log)?.size == 0 {
            eprintln!("loading the demo data (2,000 loan applications)...");
            super::demo::load(&data, &store, &cli.log, 7, 2000)?;
        }
        admin_token =
            Some(super::token::create(tokens.as_ref(), Role::Admin, "demo admin", &cli.log)?.1);
    }
    let anchors = crate::anchors::open(&data, &args.anchors)?;
    let retention = crate::retention_config::RetentionConfig::load(&data)?;
    let archive: Option<Arc<dyn ArchiveStore>> = retention.open_archive()?.map(Arc::from);
    let keys: Arc<dyn Keys> = Arc::new(DataKeys::new(data)?);
    let state = AppState {
        store: store.clone(),
        sequencer: Arc::new(Sequencer::new(store.clone())),
        tokens,
        keys: keys.clone(),
        metrics: Arc::new(Metrics::new()),
        settings: Settings {
            body_limit: args.body_limit,
        },
        archive: archive.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        println!("aitrail listening on http://{addr}");
        if let Some(token) = admin_token {
            println!("admin token (shown once): {token}");
            println!("try: curl -H 'Authorization: Bearer {token}' http://{addr}/v1/checkpoint");
        }
        tokio::spawn(checkpoints(
            store.clone(),
            keys.clone(),
            args.checkpoint_every,
        ));
        let anchors = Arc::new(anchors);
        if !anchors.is_empty() {
            let names: Vec<&str> = anchors.iter().map(|a| a.name()).collect();
            eprintln!(
                "anchoring every log's latest checkpoint every {} s to: {}",
                args.anchor_every.as_secs(),
                names.join(", ")
            );
            tokio::spawn(anchoring(
                store.clone(),
                state.sequencer.clone(),
                keys.clone(),
                anchors.clone(),
                args.anchor_every,
            ));
        }
        if let Some(archive) = &archive {
            eprintln!(
                "retention every {} s: days older than the hot window go to {}",
                retention.every.as_secs(),
                archive.name()
            );
            tokio::spawn(retention_runs(
                store.clone(),
                state.sequencer.clone(),
                keys.clone(),
                retention.clone(),
                archive.clone(),
            ));
        }
        tokio::spawn(verifications(
            store.clone(),
            keys,
            anchors,
            archive,
            state.metrics.clone(),
            args.verify_every,
        ));
        aitrail_server::serve(listener, state, aitrail_server::shutdown_signal())
            .await
            .context("serving")?;
        eprintln!(
            "aitrail stopped: requests in flight finished, every acknowledged event is committed"
        );
        Ok(())
    })
}

/// Signs a checkpoint of every log that grew, every `every`.
async fn checkpoints(store: Arc<dyn Store>, keys: Arc<dyn Keys>, every: std::time::Duration) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (store, keys) = (store.clone(), keys.clone());
        let result = tokio::task::spawn_blocking(move || -> Result<()> {
            for log in store.logs()? {
                let signer = keys.signer(&log).map_err(anyhow::Error::msg)?;
                if store.head(&log)?.size > 0 {
                    aitrail_store::log::checkpoint(
                        store.as_ref(),
                        &log,
                        &signer,
                        super::now_micros(),
                    )?;
                }
            }
            Ok(())
        })
        .await;
        if let Ok(Err(e)) = result {
            eprintln!("aitrail: scheduled checkpoint failed: {e:#}");
        }
    }
}

/// Runs retention (`aitrail retention run`) at start and every `config.every`.
async fn retention_runs(
    store: Arc<dyn Store>,
    sequencer: Arc<Sequencer>,
    keys: Arc<dyn Keys>,
    config: crate::retention_config::RetentionConfig,
    archive: Arc<dyn ArchiveStore>,
) {
    let mut tick = tokio::time::interval(config.every);
    let config = Arc::new(config);
    loop {
        tick.tick().await;
        let (store, sequencer, keys) = (store.clone(), sequencer.clone(), keys.clone());
        let (config, archive) = (config.clone(), archive.clone());
        let result = tokio::task::spawn_blocking(move || {
            super::retention::scheduled(
                store.as_ref(),
                &sequencer,
                &|log| keys.signer(log).map_err(anyhow::Error::msg),
                &config,
                archive.as_ref(),
            )
        })
        .await;
        match result {
            Ok(Ok(lines)) => lines.iter().for_each(|l| eprintln!("aitrail: {l}")),
            Ok(Err(e)) => eprintln!("aitrail: scheduled retention failed: {e:#}"),
            Err(e) => eprintln!("aitrail: scheduled retention failed: {e}"),
        }
    }
}

/// Verifies every log at start and every `every`, against the anchors too (as `aitrail
/// verify --anchor` does) and reading archived segments back; results go to the metrics and
/// the panel's status card.
async fn verifications(
    store: Arc<dyn Store>,
    keys: Arc<dyn Keys>,
    anchors: Arc<Vec<Box<dyn aitrail_anchor::Anchor>>>,
    archive: Option<Arc<dyn ArchiveStore>>,
    metrics: Arc<Metrics>,
    every: std::time::Duration,
) {
    let mut tick = tokio::time::interval(every);
    loop {
        tick.tick().await;
        let (store, keys, metrics) = (store.clone(), keys.clone(), metrics.clone());
        let (anchors, archive) = (anchors.clone(), archive.clone());
        let result = tokio::task::spawn_blocking(move || -> Result<()> {
            for log in store.logs()? {
                let verifier = keys.signer(&log).map_err(anyhow::Error::msg)?.verifier();
                let mut report = aitrail_store::verify::verify_archived(
                    store.as_ref(),
                    &log,
                    Some(&verifier),
                    archive.as_deref(),
                    &mut |_| {},
                )?;
                crate::anchors::verify_against_anchors(
                    store.as_ref(),
                    &log,
                    Some(&verifier),
                    &mut report,
                    &anchors,
                )?;
                if !report.ok {
                    eprintln!(
                        "aitrail: VERIFY FAILED for log {log:?}: {:?}",
                        report.problems.first()
                    );
                }
                metrics.verified(
                    &log,
                    report.ok,
                    report.entries,
                    super::now_micros() / 1_000_000,
                );
            }
            Ok(())
        })
        .await;
        if let Ok(Err(e)) = result {
            eprintln!("aitrail: scheduled verification failed: {e:#}");
        }
    }
}

/// Anchors every log's latest checkpoint soon after start and then every `every`; each new
/// copy is recorded in its log as `audit.anchored` (see `crate::anchors`).
async fn anchoring(
    store: Arc<dyn Store>,
    sequencer: Arc<Sequencer>,
    keys: Arc<dyn Keys>,
    anchors: Arc<Vec<Box<dyn aitrail_anchor::Anchor>>>,
    every: std::time::Duration,
) {
    // A few seconds after the checkpointer's ticks, so the two rarely sign at the same moment
    // (either copes when they do).
    let start = tokio::time::Instant::now() + std::time::Duration::from_secs(3);
    let mut tick = tokio::time::interval_at(start, every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (store, sequencer, keys, anchors) = (
            store.clone(),
            sequencer.clone(),
            keys.clone(),
            anchors.clone(),
        );
        // Anchors block (S3, TSA over HTTP): never on an async worker.
        let result = tokio::task::spawn_blocking(move || -> Result<()> {
            for log in store.logs()? {
                // One log failing does not keep the others from being anchored.
                let anchored = (|| -> Result<()> {
                    if store.head(&log)?.size == 0 {
                        return Ok(());
                    }
                    let signer = keys.signer(&log).map_err(anyhow::Error::msg)?;
                    let (cp, done) = crate::anchors::anchor_log(
                        store.as_ref(),
                        &sequencer,
                        &log,
                        &signer,
                        &keys.subject_key(),
                        &anchors,
                    )?;
                    for a in done {
                        match a.outcome {
                            Ok(r) if r.created => eprintln!(
                                "aitrail: anchored checkpoint {} of log {log:?} ({} entries) at {}: {}",
                                cp.number, cp.size, a.anchor, r.location
                            ),
                            Ok(_) => {}
                            Err(e) => eprintln!(
                                "aitrail: ANCHORING FAILED for log {log:?} at {}: {e}",
                                a.anchor
                            ),
                        }
                    }
                    Ok(())
                })();
                if let Err(e) = anchored {
                    eprintln!("aitrail: ANCHORING FAILED for log {log:?}: {e:#}");
                }
            }
            Ok(())
        })
        .await;
        if let Ok(Err(e)) = result {
            eprintln!("aitrail: scheduled anchoring failed: {e:#}");
        }
    }
}
