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
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Load the demo data when the log is empty and print an admin token.
    #[arg(long)]
    pub demo: bool,
    /// Largest request body accepted, in bytes.
    #[arg(long, default_value_t = 16 * 1024 * 1024)]
    pub body_limit: usize,
    /// How often to sign a checkpoint of every log that grew (e.g. 30s, 5m, 1h).
    #[arg(long, default_value = "1m", value_parser = parse_duration)]
    pub checkpoint_every: std::time::Duration,
    /// How often to verify every log (the result is in /metrics).
    #[arg(long, default_value = "24h", value_parser = parse_duration)]
    pub verify_every: std::time::Duration,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; it is printed once, alone on the last line of stdout.
    Create {
        #[arg(long, value_parser = ["ingest", "viewer", "auditor", "admin"])]
        role: String,
        /// A name to recognise it by.
        #[arg(long, default_value = "")]
        name: String,
        /// The tenant (log) it works on; default: --log.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id.
    Revoke { id: String },
}

/// Parses `90s`, `5m`, `2h`, `1d` (a bare number is seconds).
pub fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s.trim().split_at(
        s.trim()
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(s.trim().len()),
    );
    let n: u64 = num
        .parse()
        .map_err(|_| format!("{s:?}: expected a duration like 30s, 5m, 1h or 1d"))?;
    let secs = match unit {
        "" | "s" => n,
        "m" => n * 60,
        "h" => n * 3600,
        "d" => n * 86_400,
        _ => return Err(format!("{s:?}: unknown unit {unit:?} (use s, m, h or d)")),
    };
    if secs == 0 {
        return Err(format!("{s:?}: must be more than zero"));
    }
    Ok(std::time::Duration::from_secs(secs))
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
    /// HTTP ingest over loopback vs embedded, and single-event latency at a fixed rate.
    Http,
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
    /// Requests per second for the HTTP latency benchmark.
    #[arg(long, default_value_t = 1000)]
    pub rate: u64,
    /// Seconds the HTTP latency benchmark runs.
    #[arg(long, default_value_t = 5)]
    pub seconds: u64,
    /// Where the benchmark databases go (default: a temporary directory).
    #[arg(long)]
    pub dir: Option<PathBuf>,
}
