//! The web panel in a real browser: starts `aitrail serve --demo --listen 127.0.0.1:0`, reads
//! the URL and admin token it prints, creates a viewer token with `aitrail token create`, and
//! runs `tests/browser/panel.test.mjs` (playwright-core driving headless Debian chromium):
//! sign in, search by reviewer, open a timeline and an event, download the CSV and check its
//! rows, the product view, a viewer refused an export. Screenshots of the main pages go to
//! `target/panel-screenshots/`; page timings are printed (never asserted).
//!
//! Needs `/usr/bin/chromium` (or `CHROMIUM`), `node`, and `npm ci` run in `tests/browser`.
//! Without them it says why and skips; with `CI=true` it fails instead.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

/// Stops the server however the test ends.
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let _ = self.0.wait();
    }
}

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Why the browser test cannot run here, if it cannot.
fn missing() -> Option<String> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !Path::new(&chromium).exists() {
        return Some(format!(
            "{chromium} is missing (apt-get install -y --no-install-recommends chromium)"
        ));
    }
    if Command::new("node").arg("--version").output().is_err() {
        return Some("node is not installed".into());
    }
    if !browser_dir().join("node_modules/playwright-core").exists() {
        return Some(format!(
            "playwright-core is not installed (run npm ci in {})",
            browser_dir().display()
        ));
    }
    None
}

fn aitrail(data: &Path) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_aitrail"));
    c.arg("--data").arg(data).env_remove("AITRAIL_STORE");
    c
}

#[test]
fn the_panel_in_headless_chromium() {
    if let Some(why) = missing() {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("the browser test must run in CI, but {why}");
        }
        eprintln!("skipping the browser test: {why}");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = std::fs::File::create(dir.path().join("serve.log")).unwrap();
    let mut child = aitrail(&data)
        .args(["serve", "--demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(log)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Server(child);
    let (mut url, mut admin) = (None, None);
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(u) = line.strip_prefix("aitrail listening on ") {
            url = Some(u.trim().to_owned());
        }
        if let Some(t) = line.strip_prefix("admin token (shown once): ") {
            admin = Some(t.trim().to_owned());
            break;
        }
    }
    // Keep reading what serve prints, so its stdout never closes under it.
    std::thread::spawn(move || lines.for_each(drop));
    let serve_log = || std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default();
    let url = url.unwrap_or_else(|| panic!("serve printed no URL: {}", serve_log()));
    let admin = admin.unwrap_or_else(|| panic!("serve printed no admin token: {}", serve_log()));

    let out = aitrail(&data)
        .args(["token", "create", "--role", "viewer"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let viewer = String::from_utf8(out.stdout).unwrap().trim().to_owned();

    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("panel-screenshots");
    let run = Command::new("node")
        .arg("panel.test.mjs")
        .current_dir(browser_dir())
        .env("AITRAIL_URL", &url)
        .env("AITRAIL_ADMIN_TOKEN", &admin)
        .env("AITRAIL_VIEWER_TOKEN", &viewer)
        .env("SCREENSHOT_DIR", &shots)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&run.stdout);
    println!("{stdout}");
    eprintln!("{}", String::from_utf8_lossy(&run.stderr));
    drop(server);
    assert!(
        run.status.success(),
        "the browser test failed ({}); the server said:\n{}",
        run.status,
        serve_log()
    );
    assert!(stdout.contains("all checks passed"));
    println!("screenshots: {}", shots.display());
}
