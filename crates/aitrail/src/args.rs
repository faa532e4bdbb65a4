//! Command-line types (clap). The contract is DESIGN.md "CLI contract".

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "aitrail",
    version,
    about = "A tamper-evident audit trail for AI decisions and the people who review them."
)]
pub struct Cli {
    /// Data directory: keys, config and the embedded store.
    #[arg(
        long,
        global = true,
        env = "AITRAIL_DATA",
        default_value = "./aitrail-data"
    )]
    pub data: PathBuf,
    /// Store URL: `sqlite:PATH` (default: trail.db inside the data directory) or `postgres://...`.
    #[arg(long, global = true, env = "AITRAIL_STORE")]
    pub store: Option<String>,
    /// The log (tenant) to work on.
    #[arg(long, global = true, env = "AITRAIL_LOG", default_value = "default")]
    pub log: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory, its keys and the store; print the verifier key.
    Init(InitArgs),
    /// Print the log's verifier key (C2SP vkey).
    Key,
    /// Append events from an NDJSON file or stdin, all or nothing.
    Ingest(IngestArgs),
    /// Recompute every hash and check every checkpoint: exit 0 intact, 1 tampered, 2 error.
    Verify(VerifyArgs),
    /// Sign a checkpoint of the current tree if the latest is behind it; print the latest.
    Checkpoint,
    /// Print a self-contained inclusion proof of one event.
    Prove(ProveArgs),
    /// Check a proof file offline.
    VerifyProof(VerifyProofArgs),
    /// Load a realistic sample pipeline (loan decisions reviewed by a team).
    Demo(DemoArgs),
    /// Measure ingest, verify and proofs against baselines in the same run.
    Bench(BenchArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Prefix of the checkpoint origin and key name: `<origin>/<log>`. Default: a random one.
    #[arg(long)]
    pub origin: Option<String>,
}

#[derive(Debug, Args)]
pub struct IngestArgs {
    /// NDJSON file; `-` or nothing reads stdin.
    pub file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Print a JSON report: {"ok", "entries", "problems": [...]}.
    #[arg(long)]
    pub json: bool,
    /// Verify every log in the store, not only --log.
    #[arg(long)]
    pub all: bool,
}

#[derive(Debug, Args)]
pub struct ProveArgs {
    /// The event id.
    pub event_id: String,
    /// Write the proof here instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct VerifyProofArgs {
    /// The proof file (`-` for stdin).
    pub file: PathBuf,
    /// The log's verifier key (vkey); default: the key in the data directory.
    #[arg(long)]
    pub key: Option<String>,
}

#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Seed of the generator: the same seed gives the same events.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Number of tasks (loan applications).
    #[arg(long, default_value_t = 2000)]
    pub tasks: u64,
    /// Write the events as NDJSON to this file instead of loading them.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum BenchWhat {
    All,
    Ingest,
    Verify,
    Proof,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Which benchmark to run.
    #[arg(value_enum, default_value_t = BenchWhat::All)]
    pub what: BenchWhat,
    /// Events for the ingest and verify benchmarks.
    #[arg(long, default_value_t = 200_000)]
    pub events: u64,
    /// Tree size for the proof benchmark.
    #[arg(long, default_value_t = 1_000_000)]
    pub proof_size: u64,
    /// Where the benchmark databases go (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}
