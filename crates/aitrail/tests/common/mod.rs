//! The harness the `aitrail` binary's end-to-end suites share (`cli.rs`, `pii.rs`,
//! `anchor.rs`, `postgres_cli.rs`): a data directory of its own per test, and the binary run
//! in it as a user would, with none of the caller's `AITRAIL_*` settings leaking in.
//!
//! Each suite includes this with `mod common;` and adds what only it needs in an `impl
//! Trail` block of its own, hence the `dead_code` allowance.
#![allow(dead_code)]

use serde_json::Value;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

pub struct Trail {
    pub dir: tempfile::TempDir,
    /// Environment for every command (`AITRAIL_STORE` for a PostgreSQL suite, AWS settings
    /// for an S3 anchor), set after the caller's `AITRAIL_*` are removed.
    pub env: Vec<(&'static str, String)>,
}

impl Trail {
    /// An empty directory: nothing initialised.
    pub fn empty() -> Trail {
        Trail {
            dir: tempfile::tempdir().unwrap(),
            env: Vec::new(),
        }
    }

    /// A directory after `aitrail init --origin test.example`.
    pub fn new() -> Trail {
        let t = Trail::empty();
        t.ok(&["init", "--origin", "test.example"]);
        t
    }

    pub fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_aitrail"));
        c.arg("--data")
            .arg(self.data())
            .args(args)
            .env_remove("AITRAIL_STORE")
            .env_remove("AITRAIL_LOG")
            .env_remove("AITRAIL_HMAC_KEY");
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    pub fn run_stdin(&self, args: &[&str], input: &str) -> Output {
        let mut child = self
            .cmd(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs a command that must succeed; its stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(out.status.success(), "aitrail {args:?}: {}", stderr(&out));
        stdout(&out)
    }

    /// Starts `aitrail serve --listen 127.0.0.1:0` and then `args`; returns the process (its
    /// stderr piped) and the base URL from the first line it prints.
    pub fn serve(&self, args: &[&str]) -> (std::process::Child, String) {
        let mut all = vec!["serve", "--listen", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let mut child = self
            .cmd(&all)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.as_mut().unwrap()),
            &mut line,
        )
        .unwrap();
        let base = line.trim().rsplit(' ').next().unwrap().to_owned();
        assert!(base.starts_with("http://127.0.0.1:"), "{line}");
        (child, base)
    }

    /// Writes `text` to `name` in the test's directory (beside the data directory).
    pub fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    /// `verify --json`: its exit code and report.
    pub fn verify_json(&self) -> (i32, Value) {
        let out = self.run(&["verify", "--json"]);
        (
            out.status.code().unwrap(),
            serde_json::from_slice(&out.stdout).unwrap_or(Value::Null),
        )
    }
}

pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}
