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
    /// Keep the latest checkpoint (signed now if behind) at every configured anchor.
    Anchor(AnchorArgs),
    /// Load a realistic sample pipeline (loan decisions reviewed by a team).
    Demo(DemoArgs),
    /// Measure ingest, verify and proofs against baselines in the same run.
    Bench(BenchArgs),
    /// Search events (every read is itself recorded).
    Search(SearchArgs),
    /// A task's full timeline, with what a case reviewer wants derived.
    Timeline(TimelineArgs),
    /// Export events as CSV or NDJSON, streaming.
    Export(ExportArgs),
    /// Record that you reviewed a range of the trail (SOC 2 log review evidence).
    Review(ReviewArgs),
    /// Erase a subject (GDPR Art. 17): destroy its data key so its events' content can no
    /// longer be read; hashes and verify are unaffected.
    Erase(EraseArgs),
    /// Serve the HTTP API.
    Serve(ServeArgs),
    /// Create, list and revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Move old entries to the archive and expire what is past retention.
    #[command(subcommand)]
    Retention(RetentionCommand),
    /// Legal holds: nothing a hold covers expires while it stands.
    #[command(subcommand)]
    Hold(HoldCommand),
}

#[derive(Debug, Subcommand)]
pub enum RetentionCommand {
    /// Archive the days past the hot window and expire segments past retention (every log).
    Run(RetentionRunArgs),
}

#[derive(Debug, Args)]
pub struct RetentionRunArgs {
    /// List what would be done, and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Subcommand)]
pub enum HoldCommand {
    /// Place a hold on a task, a subject, or a range of occurred_at.
    Add {
        /// Hold everything of this task.
        #[arg(long)]
        task: Option<String>,
        /// Hold everything about this subject (raw id: turned into its keyed reference).
        #[arg(long)]
        subject: Option<String>,
        /// Hold everything about the subject with this keyed reference.
        #[arg(long)]
        subject_ref: Option<String>,
        /// Hold what occurred from this time (RFC 3339 or a date), with --to.
        #[arg(long)]
        from: Option<String>,
        /// ...until this time (exclusive; a date: the whole of that day).
        #[arg(long)]
        to: Option<String>,
        /// Why (the matter or request); recorded in the trail.
        #[arg(long)]
        reason: String,
        #[arg(long)]
        json: bool,
    },
    /// List the active holds (--all: released ones too).
    List {
        #[arg(long)]
        all: bool,
        #[arg(long)]
        json: bool,
    },
    /// Release a hold (recorded; the hold itself stays listed with --all).
    Release {
        id: String,
        #[arg(long)]
        reason: String,
    },
}

/// Filters shared by search and export.
#[derive(Debug, Args, Clone, Default)]
pub struct FilterArgs {
    /// Task id.
    #[arg(long)]
    pub task: Option<String>,
    /// Actor (reviewer) id.
    #[arg(long)]
    pub actor: Option<String>,
    /// Event type; repeat or separate with commas for several.
    #[arg(long = "type", value_delimiter = ',')]
    pub types: Vec<String>,
    /// Model name.
    #[arg(long)]
    pub model: Option<String>,
    /// Model version.
    #[arg(long)]
    pub model_version: Option<String>,
    /// Prompt version.
    #[arg(long)]
    pub prompt_version: Option<String>,
    /// Review decision: approve, reject, modify or escalate.
    #[arg(long)]
    pub decision: Option<String>,
    /// Subject id (raw): matched through its keyed reference, never stored.
    #[arg(long)]
    pub subject: Option<String>,
    /// From this time (RFC 3339, or a date: the start of that day, UTC), inclusive.
    #[arg(long)]
    pub from: Option<String>,
    /// Until this time (RFC 3339, exclusive; or a date: the whole of that day, UTC).
    #[arg(long)]
    pub to: Option<String>,
    /// Which time --from/--to apply to.
    #[arg(long, value_enum, default_value_t = TimeArg::Occurred)]
    pub time: TimeArg,
}

#[derive(Debug, Clone, Copy, Default, ValueEnum)]
pub enum TimeArg {
    #[default]
    Occurred,
    Recorded,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SearchFormat {
    Table,
    Json,
    Csv,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Ndjson,
}

#[derive(Debug, Args)]
pub struct SearchArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    #[arg(long, value_enum, default_value_t = SearchFormat::Table)]
    pub format: SearchFormat,
    /// Results per page.
    #[arg(long, default_value_t = 50)]
    pub limit: usize,
    /// Also search entries moved to the archive (read back from its segments).
    #[arg(long)]
    pub include_archive: bool,
    /// Continue after this cursor (printed with the previous page).
    #[arg(long)]
    pub cursor: Option<String>,
    /// Newest first.
    #[arg(long)]
    pub desc: bool,
}

#[derive(Debug, Args)]
pub struct TimelineArgs {
    /// The task id.
    pub task: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
    /// Also read entries moved to the archive.
    #[arg(long)]
    pub include_archive: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub filter: FilterArgs,
    #[arg(long, value_enum)]
    pub format: ExportFormat,
    /// Write here (with a progress display on a terminal) instead of stdout.
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// NDJSON: write the stored entry bytes even where content is sealed (each line then
    /// hashes to its leaf); by default sealed content is opened.
    #[arg(long)]
    pub sealed: bool,
    /// Also export entries moved to the archive (read back from its segments first).
    #[arg(long)]
    pub include_archive: bool,
}

#[derive(Debug, Args)]
pub struct EraseArgs {
    /// The subject's raw id (used only to compute its keyed reference; never stored).
    #[arg(long, conflicts_with = "subject_ref")]
    pub subject: Option<String>,
    /// The subject's keyed reference (`subject.ref`, 64 hex digits).
    #[arg(long)]
    pub subject_ref: Option<String>,
    /// Why, kept in the audit.erased event (the request, its date, the legal basis).
    #[arg(long)]
    pub reason: Option<String>,
}

#[derive(Debug, Args)]
pub struct ReviewArgs {
    /// Start of the reviewed range (RFC 3339 or a date).
    #[arg(long)]
    pub from: String,
    /// End of the reviewed range (RFC 3339 exclusive, or a date: the whole day).
    #[arg(long)]
    pub to: String,
    /// What you checked and found.
    #[arg(long)]
    pub note: String,
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
    /// How often to anchor every log's latest checkpoint, when anchors are configured
    /// (1m at least: e.g. 15m, 6h, 1d).
    #[arg(long, default_value = "1d", value_parser = parse_anchor_every)]
    pub anchor_every: std::time::Duration,
    #[command(flatten)]
    pub anchors: AnchorOpts,
}

/// Where checkpoints are kept outside aitrail (DESIGN.md `--anchor SPEC`).
#[derive(Debug, Args, Clone, Default)]
pub struct AnchorOpts {
    /// An anchor: dir:PATH, s3://BUCKET/PREFIX (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID,
    /// AWS_SECRET_ACCESS_KEY, AWS_REGION) or tsa:URL. Repeatable; replaces `anchors` in
    /// aitrail.toml.
    #[arg(long = "anchor", value_name = "SPEC")]
    pub anchor: Vec<String>,
    /// PEM file of the CA a TSA's certificate must chain to (default: `tsa_ca` in aitrail.toml).
    #[arg(long, value_name = "FILE")]
    pub tsa_ca: Option<PathBuf>,
    /// How long S3 keeps anchored objects locked (COMPLIANCE mode): e.g. 6y, 2190d
    /// (default: `s3_retention` in aitrail.toml, else 6y).
    #[arg(long, value_name = "DURATION")]
    pub s3_retention: Option<String>,
}

#[derive(Debug, Args)]
pub struct AnchorArgs {
    /// Anchor every log in the store, not only --log.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub anchors: AnchorOpts,
}

/// `--anchor-every`: a duration of at least a minute.
fn parse_anchor_every(s: &str) -> Result<std::time::Duration, String> {
    let d = parse_duration(s)?;
    if d < std::time::Duration::from_secs(60) {
        return Err(format!("{s:?}: anchor at most once a minute"));
    }
    Ok(d)
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
    /// Also prove the log consistent with every checkpoint these anchors hold.
    #[command(flatten)]
    pub anchors: AnchorOpts,
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
    /// The free-text PII scan in MB/s beside a byte count and a regex per kind, and the
    /// cost of the PII policy per event.
    Pii,
    /// PostgreSQL ingest vs plain COPY and a naive hash-chain trigger, and forks under
    /// concurrency; needs `--store postgres://...` (a user who may CREATE DATABASE).
    Postgres,
    /// Timeline, first page of search per filter and export on a trail made by the demo
    /// generator (`--events`; BENCHMARKS.md uses 10,000,000), kept in `--dir` for reruns.
    Query,
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
