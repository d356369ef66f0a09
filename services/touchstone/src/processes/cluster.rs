//! The separate-process deployment on ScyllaDB (or Cassandra): `touchstone migrate`, then
//! any number of `touchstone ingest`, `touchstone attribution` and `touchstone query`
//! processes on the same keyspace. They share nothing but the database: ingestion reaches
//! attribution through the ingest log tables, and attribution workers split the log shards
//! through leases there.

use crate::processes::listeners::{Addresses, bind};
use crate::{AccessArgs, CommandResult};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;
use touchstone_server::keys::KeyRing;
use touchstone_server::limits::Limits;
use touchstone_server::serve::{Roles, serve, shutdown_signal};
use touchstone_server::tls::Tls;
use touchstone_server::telemetry::init_tracing;
use touchstone_attribution::WorkerOptions;
use touchstone_store::cql::{CqlOptions, CqlStore};
use touchstone_store::cql::schema::DEFAULT_RETENTION_SECONDS;

/// Where the database is: shared by every subcommand that talks to it.
#[derive(clap::Args, Debug, Clone)]
pub struct DatabaseArgs {
    /// ScyllaDB (or Cassandra) contact points, `host:port`, comma-separated.
    #[arg(long, env = "TOUCHSTONE_SCYLLA_NODES", value_delimiter = ',', required = true)]
    pub scylla_nodes: Vec<String>,
    #[arg(long, env = "TOUCHSTONE_KEYSPACE", default_value = "touchstone")]
    pub keyspace: String,
}

/// Schema parameters, used when `migrate` creates the keyspace and tables.
#[derive(clap::Args, Debug, Clone)]
pub struct SchemaArgs {
    /// Replicas of every row (NetworkTopologyStrategy in every datacenter); 3 in production.
    #[arg(long, env = "TOUCHSTONE_REPLICATION_FACTOR", default_value_t = 1)]
    pub replication_factor: u32,
    /// How long stored records, conversions and rollups live (the tables' default TTL).
    #[arg(long, env = "TOUCHSTONE_RETENTION_DAYS", default_value_t = DEFAULT_RETENTION_SECONDS / 86_400)]
    pub retention_days: u64,
    /// Lanes each log shard's attribution is split into: how many attribution workers can
    /// share one tenant. Fixed for the keyspace once set (here, or by the first process to
    /// connect, with the default); each lane costs the database a share of every step.
    #[arg(long, env = "TOUCHSTONE_LANES", default_value_t = touchstone_store::cql::DEFAULT_LANES, value_parser = clap::value_parser!(u32).range(1..=i64::from(touchstone_store::cql::MAX_LANES)))]
    pub lanes: u32,
}

/// The role a process plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Ingest,
    Attribution,
    Query,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Ingest => "touchstone ingest",
            Role::Attribution => "touchstone attribution",
            Role::Query => "touchstone query",
        }
    }

    fn service_name(self) -> &'static str {
        match self {
            Role::Ingest => "touchstone-ingest",
            Role::Attribution => "touchstone-attribution",
            Role::Query => "touchstone-query",
        }
    }
}

fn options(database: &DatabaseArgs) -> CqlOptions {
    CqlOptions::new(database.scylla_nodes.clone(), database.keyspace.clone())
}

/// `touchstone migrate`: creates or updates the keyspace and tables, then exits.
pub async fn migrate(database: DatabaseArgs, schema: SchemaArgs) -> CommandResult {
    let mut options = options(&database);
    options.replication_factor = schema.replication_factor;
    options.retention_seconds = schema.retention_days.saturating_mul(86_400);
    options.lanes = schema.lanes;
    CqlStore::migrate(&options).await.map_err(|err| format!("migrating keyspace {}: {err}", database.keyspace))?;
    println!("keyspace {} is up to date", database.keyspace);
    Ok(ExitCode::SUCCESS)
}

/// How a process serves: its addresses (the console's for the query role only), keys,
/// limits and TLS.
pub struct Serving {
    pub addresses: Addresses,
    pub access: AccessArgs,
    pub limits: Limits,
    pub tls: Tls,
}

/// `touchstone ingest | attribution | query`: one role on the shared keyspace.
pub async fn run(role: Role, database: DatabaseArgs, worker_id: Option<String>, serving: Serving) -> CommandResult {
    let Serving { addresses, access, limits, tls } = serving;
    let listen = addresses.grpc;
    let tracer_provider = init_tracing(role.service_name());
    // Checked before anything else: a cluster process never starts open by accident.
    let keys = match (&access.keys_file, access.insecure) {
        (Some(path), _) => Some(KeyRing::load(path)?),
        (None, true) => {
            tracing::warn!(role = role.name(), "running with --insecure: no API keys are checked");
            None
        }
        (None, false) => {
            return Err(format!(
                "{} needs --keys-file (or TOUCHSTONE_KEYS_FILE; `touchstone keys create` makes one), or --insecure to serve without API keys",
                role.name()
            )
            .into());
        }
    };
    let store = CqlStore::connect(options(&database))
        .await
        .map_err(|err| format!("cannot use keyspace {} on {}: {err} (has `touchstone migrate` run?)", database.keyspace, database.scylla_nodes.join(",")))?;
    let roles = match role {
        Role::Ingest => Roles { ingest: true, keys: keys.clone(), limits, tls: tls.clone(), ..Roles::default() },
        Role::Query => Roles { query: true, keys: keys.clone(), limits, tls: tls.clone(), ..Roles::default() },
        Role::Attribution => {
            let id = worker_id.unwrap_or_else(default_worker_id);
            let mut worker = WorkerOptions::new(id);
            worker.lease_ttl = Duration::from_secs(10);
            // Steps as measured on CQL: a step's writes are requests over the network, and
            // larger steps were measured on the embedded store only.
            worker.batch = touchstone_attribution::engine::CQL_BATCH;
            Roles { worker: Some(worker), keys: keys.clone(), limits, tls: tls.clone(), ..Roles::default() }
        }
    };
    let detail = format!("(keyspace {} on {})", database.keyspace, database.scylla_nodes.join(","));
    if tls.identity.is_none() && !listen.ip().is_loopback() {
        tracing::warn!(%listen, "serving plaintext gRPC on a non-loopback address: keys and data cross the network in clear (--tls-cert, --tls-key)");
    }
    let listeners = bind(addresses, role.name(), &detail, tls.identity.is_some()).await?;
    let result = serve(Arc::new(store), listeners, roles, shutdown_signal()).await;
    tracing::info!(role = role.name(), "stopped");
    if let Some(provider) = tracer_provider {
        let _ = provider.shutdown();
    }
    result.map(|()| ExitCode::SUCCESS)
}

/// Host name and process id: unique among live workers, and readable in lease rows.
fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME").ok().filter(|host| !host.is_empty()).unwrap_or_else(|| "worker".to_owned());
    format!("{host}-{}", std::process::id())
}
