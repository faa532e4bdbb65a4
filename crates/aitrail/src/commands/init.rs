//! `aitrail init`: data directory, keys, store; prints the verifier key.

use crate::args::{Cli, InitArgs};
use crate::data::DataDir;
use anyhow::Result;

pub fn run(cli: &Cli, args: &InitArgs) -> Result<()> {
    let (data, created) = DataDir::init(&cli.data, args.origin.clone())?;
    data.init_store(cli.store.as_deref())?;
    let verifier = data.signer(&cli.log)?.verifier();
    if created {
        eprintln!(
            "initialised {} (keys are mode 0600: back them up, never share them)",
            cli.data.display()
        );
    } else {
        eprintln!(
            "{} was already initialised; nothing overwritten",
            cli.data.display()
        );
    }
    eprintln!(
        "verifier key of log {:?} (give it to whoever checks your proofs):",
        cli.log
    );
    println!("{}", verifier.to_vkey());
    Ok(())
}
