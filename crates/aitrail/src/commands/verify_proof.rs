//! `aitrail verify-proof FILE [--key VKEY]`: check a proof offline.

use crate::args::{Cli, VerifyProofArgs};
use crate::data::DataDir;
use aitrail_core::checkpoint::Verifier;
use aitrail_core::proof::Proof;
use anyhow::{Context, Result};
use std::io::Read;
use std::process::ExitCode;

pub fn run(cli: &Cli, args: &VerifyProofArgs) -> Result<ExitCode> {
    let text = if args.file.as_os_str() == "-" {
        let mut s = String::new();
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        std::fs::read_to_string(&args.file)
            .with_context(|| format!("reading {}", args.file.display()))?
    };
    let proof: Proof = serde_json::from_str(&text)
        .with_context(|| format!("{} is not an aitrail proof", args.file.display()))?;
    let verifier = match &args.key {
        Some(vkey) => Verifier::parse(vkey).context("--key")?,
        None => DataDir::open(&cli.data)?
            .verifier(&proof.log)?
            .with_context(|| {
                format!(
                    "no key for log {:?} in {}: pass --key VKEY",
                    proof.log,
                    cli.data.display()
                )
            })?,
    };
    match proof.verify(&verifier) {
        Ok(v) => {
            let id = v
                .record
                .event
                .get("id")
                .and_then(|i| i.as_str())
                .unwrap_or("?");
            println!(
                "proof valid: event {id} is seq {} of log {:?}, included in the tree of size {} signed by {}",
                v.record.seq, v.record.log, v.checkpoint.size, verifier.name
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            println!("proof INVALID: {e}");
            Ok(ExitCode::from(1))
        }
    }
}
