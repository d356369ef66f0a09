//! `touchstone keys create | list | revoke`: the API keys file every server process reads
//! (`--keys-file`). The file holds no secret, only each key's SHA-256; `create` prints the
//! key once. Servers reload the file within seconds of a change.

use crate::CommandResult;
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;
use touchstone_server::keys::{ALL_TENANTS, KeysFile};
use touchstone_proto::auth::Scope;

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Makes a key and prints it (only this once).
    Create {
        /// The keys file (created if missing).
        #[arg(long, env = "TOUCHSTONE_KEYS_FILE")]
        keys_file: PathBuf,
        /// The tenant the key is for; `*` for an operator key good for every tenant.
        #[arg(long)]
        tenant: String,
        /// What the key may do: ingest (IngestService), query (QueryService, config reads),
        /// admin (config changes, recomputes), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        scopes: Vec<String>,
        /// What the key is for, to tell keys apart in `keys list`.
        #[arg(long, default_value = "")]
        name: String,
    },
    /// Lists the keys (ids, tenants, scopes, names; never secrets).
    List {
        #[arg(long, env = "TOUCHSTONE_KEYS_FILE")]
        keys_file: PathBuf,
        /// Only this tenant's keys.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// Revokes a key by its id: servers refuse it from their next reload (seconds).
    Revoke {
        #[arg(long, env = "TOUCHSTONE_KEYS_FILE")]
        keys_file: PathBuf,
        id: String,
    },
}

pub fn run(what: KeysCommand) -> CommandResult {
    match what {
        KeysCommand::Create { keys_file, tenant, scopes, name } => {
            let scopes = scopes
                .iter()
                .map(|name| Scope::parse(name.trim()).ok_or_else(|| format!("unknown scope {name:?}: use ingest, query or admin")))
                .collect::<Result<Vec<Scope>, String>>()?;
            if tenant.is_empty() || (tenant != ALL_TENANTS && touchstone_core::validate::id("tenant", &tenant).is_err()) {
                return Err(format!("--tenant {tenant:?} is no tenant id (or `*`)").into());
            }
            let mut file = KeysFile::read(&keys_file)?;
            let (stored, key) = file.create(&tenant, &scopes, &name);
            file.write(&keys_file)?;
            eprintln!("key {} for tenant {} ({}) written to {}; keep it now, it is not shown again:", stored.id, stored.tenant, stored.scopes.join(","), keys_file.display());
            println!("{key}");
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::List { keys_file, tenant } => {
            let file = KeysFile::read(&keys_file)?;
            println!("{:<16}  {:<20}  {:<18}  {:<20}  {:<20}  NAME", "ID", "TENANT", "SCOPES", "CREATED", "REVOKED");
            for key in file.keys.iter().filter(|key| tenant.as_ref().is_none_or(|t| *t == key.tenant)) {
                let revoked = key.revoked_at.as_deref().unwrap_or("-");
                println!("{:<16}  {:<20}  {:<18}  {:<20}  {:<20}  {}", key.id, key.tenant, key.scopes.join(","), key.created_at, revoked, key.name);
            }
            Ok(ExitCode::SUCCESS)
        }
        KeysCommand::Revoke { keys_file, id } => {
            let mut file = KeysFile::read(&keys_file)?;
            if !file.revoke(&id) {
                return Err(format!("no key {id} in {}", keys_file.display()).into());
            }
            file.write(&keys_file)?;
            eprintln!("key {id} revoked");
            Ok(ExitCode::SUCCESS)
        }
    }
}
