//! `aitrail token create|list|revoke`: API tokens, stored only as hashes.

use super::now_micros;
use crate::args::{Cli, TokenCommand};
use crate::data::{random_bytes, DataDir};
use aitrail_core::event::format_time;
use aitrail_store::tokens::{token_hash, Role, TokenRecord, TokenStore};
use anyhow::{Context, Result};

/// Creates a token and stores its hash; returns (record, token).
pub fn create(
    tokens: &dyn TokenStore,
    role: Role,
    name: &str,
    tenant: &str,
) -> Result<(TokenRecord, String)> {
    let token = format!("atr_{}", hex::encode(random_bytes()?));
    let record = TokenRecord {
        id: format!("tk_{}", hex::encode(&random_bytes()?[..6])),
        name: name.to_owned(),
        role,
        tenant: tenant.to_owned(),
        created_at: now_micros(),
        revoked_at: None,
    };
    tokens.add(&record, &token_hash(&token))?;
    Ok((record, token))
}

pub fn run(cli: &Cli, cmd: &TokenCommand) -> Result<()> {
    let data = DataDir::open(&cli.data)?;
    let tokens = data.tokens(cli.store.as_deref())?;
    match cmd {
        TokenCommand::Create { role, name, tenant } => {
            let role =
                Role::parse(role).context("--role: expected ingest, viewer, auditor or admin")?;
            let tenant = tenant.as_deref().unwrap_or(&cli.log);
            let (record, token) = create(tokens.as_ref(), role, name, tenant)?;
            eprintln!(
                "created token {} (role {}, tenant {:?}); it is shown only this once:",
                record.id,
                role.as_str(),
                tenant
            );
            println!("{token}");
        }
        TokenCommand::List { json } => {
            let list = tokens.list()?;
            if *json {
                println!("{}", serde_json::to_string_pretty(&list)?);
            } else {
                println!(
                    "{:<16} {:<8} {:<12} {:<20} {:<28} status",
                    "id", "role", "tenant", "name", "created"
                );
                for t in list {
                    let status = t
                        .revoked_at
                        .map(|r| format!("revoked {}", format_time(r)))
                        .unwrap_or_else(|| "active".into());
                    println!(
                        "{:<16} {:<8} {:<12} {:<20} {:<28} {status}",
                        t.id,
                        t.role.as_str(),
                        t.tenant,
                        t.name,
                        format_time(t.created_at)
                    );
                }
            }
        }
        TokenCommand::Revoke { id } => {
            tokens.revoke(id, now_micros())?;
            eprintln!("revoked {id}");
        }
    }
    Ok(())
}
