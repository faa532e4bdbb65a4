//! `aitrail key`: the log's verifier key in C2SP vkey form.

use crate::args::Cli;
use crate::data::DataDir;
use anyhow::Result;

pub fn run(cli: &Cli) -> Result<()> {
    let data = DataDir::open(&cli.data)?;
    println!("{}", data.signer(&cli.log)?.verifier().to_vkey());
    Ok(())
}
