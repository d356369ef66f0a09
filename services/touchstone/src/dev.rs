//! `touchstone dev`: ingest, config, attribution and query in one process on the embedded
//! store, like Jaeger's all-in-one.

use crate::{CommandResult, MetricsArgs};
use crate::cluster::listen_on;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use touchstone::auth::KeyRing;
use touchstone::limits::Limits;
use touchstone::serve::Tls;
use touchstone::serve::{Roles, init_tracing, serve, shutdown_signal};
use touchstone_attribution::WorkerOptions;
use touchstone_store::EmbeddedStore;
use touchstone_store::embedded::EmbeddedOptions;

/// What `touchstone dev` was asked to do.
pub struct DevOptions {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub sync: bool,
    pub keys_file: Option<PathBuf>,
    /// Where to serve the web console, if anywhere.
    pub console: Option<SocketAddr>,
    pub limits: Limits,
    pub tls: Tls,
    pub metrics: MetricsArgs,
}

pub async fn run(options: DevOptions) -> CommandResult {
    let DevOptions { listen, data_dir, sync, keys_file, console, limits, tls, metrics } = options;
    let tracer_provider = init_tracing("touchstone");
    let keys = match &keys_file {
        Some(path) => Some(KeyRing::load(path)?),
        None => {
            tracing::warn!("touchstone dev is OPEN: no API keys are checked, anyone who reaches {listen} reads and changes every tenant (--keys-file to check keys)");
            None
        }
    };
    std::fs::create_dir_all(&data_dir)
        .map_err(|err| format!("cannot create data dir {}: {err}", data_dir.display()))?;
    let store = EmbeddedStore::open_with(&data_dir, EmbeddedOptions { sync })
        .map_err(|err| format!("cannot open the embedded store in {}: {err}", data_dir.display()))?;
    // The only worker there is: it takes every log shard's lease.
    let roles = Roles { ingest: true, worker: Some(WorkerOptions::new("dev")), query: true, keys: keys.clone(), limits, tls: tls.clone() };
    let listener = listen_on(listen, "touchstone dev", &format!("(data in {})", data_dir.display()), tls.identity.is_some()).await?;
    let store = Arc::new(store);
    // After the listening line, which scripts read first.
    let usage_of = store.clone();
    metrics.start(store.clone(), Some(Arc::new(move || usage_of.usage()))).await?;
    if let Some(address) = console {
        crate::console::start(address, store.clone(), keys, tls.pem.as_ref()).await?;
    }
    let result = serve(store, listener, roles, shutdown_signal()).await;
    tracing::info!("touchstone dev stopped");
    if let Some(provider) = tracer_provider {
        let _ = provider.shutdown();
    }
    result.map(|()| ExitCode::SUCCESS)
}
