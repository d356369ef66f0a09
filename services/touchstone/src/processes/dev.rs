//! `touchstone dev`: ingest, config, attribution and query in one process on the embedded
//! store, like Jaeger's all-in-one.

use crate::CommandResult;
use crate::processes::listeners::{Addresses, bind};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use touchstone_attribution::WorkerOptions;
use touchstone_server::keys::KeyRing;
use touchstone_server::limits::Limits;
use touchstone_server::serve::{Roles, serve, shutdown_signal};
use touchstone_server::tls::Tls;
use touchstone_server::telemetry::init_tracing;
use touchstone_store::EmbeddedStore;
use touchstone_store::embedded::EmbeddedOptions;

/// What `touchstone dev` was asked to do.
pub struct DevOptions {
    /// Where to serve gRPC, and health alone, the console and metrics if anywhere.
    pub addresses: Addresses,
    pub data_dir: PathBuf,
    pub sync: bool,
    pub keys_file: Option<PathBuf>,
    pub limits: Limits,
    pub tls: Tls,
}

pub async fn run(options: DevOptions) -> CommandResult {
    let DevOptions { addresses, data_dir, sync, keys_file, limits, tls } = options;
    let tracer_provider = init_tracing("touchstone");
    let listen = addresses.grpc;
    let keys = match &keys_file {
        Some(path) => Some(KeyRing::load(path)?),
        None => {
            tracing::warn!("touchstone dev is OPEN: no API keys are checked, anyone who reaches {listen} reads and changes every tenant (--keys-file to check keys)");
            None
        }
    };
    std::fs::create_dir_all(&data_dir)
        .map_err(|err| format!("cannot create data dir {}: {err}", data_dir.display()))?;
    let store = Arc::new(
        EmbeddedStore::open_with(&data_dir, EmbeddedOptions { sync })
            .map_err(|err| format!("cannot open the embedded store in {}: {err}", data_dir.display()))?,
    );
    let listeners = bind(addresses, "touchstone dev", &format!("(data in {})", data_dir.display()), tls.identity.is_some()).await?;
    let usage_of = store.clone();
    // The only worker there is: it takes every log shard's lease.
    let roles = Roles {
        ingest: true,
        worker: Some(WorkerOptions::new("dev")),
        query: true,
        keys,
        limits,
        tls,
        usage: Some(Arc::new(move || usage_of.usage())),
    };
    let result = serve(store, listeners, roles, shutdown_signal()).await;
    tracing::info!("touchstone dev stopped");
    if let Some(provider) = tracer_provider {
        let _ = provider.shutdown();
    }
    result.map(|()| ExitCode::SUCCESS)
}
