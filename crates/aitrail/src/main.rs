//! The `aitrail` command. Exit codes: 0 ok, 1 verification failed, 2 error.

mod anchors;
mod args;
mod commands;
mod data;
mod pii_config;
mod progress;
mod retention_config;
mod sample;

use args::{Cli, Command, RetentionCommand};
use clap::Parser;
use commands::Ctx;
use std::process::ExitCode;

fn main() -> ExitCode {
    // Die quietly on a closed pipe (`aitrail search | head`), like other Unix tools.
    #[cfg(unix)]
    // SAFETY: restoring the default action of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<ExitCode> {
    let ok = |_| ExitCode::SUCCESS;
    match &cli.command {
        Command::Init(a) => commands::init::run(cli, a).map(ok),
        Command::Key => commands::key::run(cli).map(ok),
        Command::Ingest(a) => commands::ingest::run(&Ctx::open(cli)?, a).map(ok),
        Command::Verify(a) => commands::verify::run(&Ctx::open(cli)?, a),
        Command::Checkpoint => commands::checkpoint::run(&Ctx::open(cli)?).map(ok),
        Command::Prove(a) => commands::prove::run(&Ctx::open(cli)?, a).map(ok),
        Command::VerifyProof(a) => commands::verify_proof::run(cli, a),
        Command::Anchor(a) => commands::anchor::run(&Ctx::open(cli)?, a),
        Command::Demo(a) => commands::demo::run(cli, a),
        Command::Bench(a) if matches!(a.what, args::BenchWhat::Pii) => {
            commands::bench_pii::run().map(ok)
        }
        Command::Bench(a) if matches!(a.what, args::BenchWhat::Http) => {
            commands::bench_http::run(a).map(ok)
        }
        Command::Bench(a) if matches!(a.what, args::BenchWhat::Postgres) => {
            commands::bench_pg::run(cli, a).map(ok)
        }
        Command::Bench(a) if matches!(a.what, args::BenchWhat::Query) => {
            commands::bench_query::run(a).map(ok)
        }
        Command::Bench(a) => commands::bench::run(a).map(ok),
        Command::Search(a) => commands::search::run(&Ctx::open(cli)?, a).map(ok),
        Command::Timeline(a) => commands::timeline::run(&Ctx::open(cli)?, a).map(ok),
        Command::Export(a) => commands::export::run(&Ctx::open(cli)?, a).map(ok),
        Command::Review(a) => commands::review::run(&Ctx::open(cli)?, a).map(ok),
        Command::Erase(a) => commands::erase::run(&Ctx::open(cli)?, a).map(ok),
        Command::Serve(a) => commands::serve::run(cli, a).map(ok),
        Command::Token(t) => commands::token::run(cli, t).map(ok),
        Command::Retention(RetentionCommand::Run(a)) => {
            commands::retention::run(&Ctx::open(cli)?, a)
        }
        Command::Hold(h) => commands::hold::run(&Ctx::open(cli)?, h).map(ok),
    }
}
