//! `touchstone dev`: ingest, config, attribution and query in one process on the embedded
//! store, like Jaeger's all-in-one.

use crate::CommandResult;
use crate::serve::{Roles, init_tracing, serve};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use touchstone_attribution::WorkerOptions;
use touchstone_store::embedded::EmbeddedOptions;
use touchstone_store::{EmbeddedStore, Store};

pub async fn run(listen: SocketAddr, data_dir: PathBuf, sync: bool) -> CommandResult {
    let tracer_provider = init_tracing("touchstone");
    std::fs::create_dir_all(&data_dir)
        .map_err(|err| format!("cannot create data dir {}: {err}", data_dir.display()))?;
    let store = EmbeddedStore::open_with(&data_dir, EmbeddedOptions { sync })
        .map_err(|err| format!("cannot open the embedded store in {}: {err}", data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    // The only worker there is: it takes every log shard's lease.
    let roles = Roles { ingest: true, worker: Some(WorkerOptions::new("dev")), query: true };
    let detail = format!("(data in {})", data_dir.display());
    let result = serve(store, listen, roles, "touchstone dev", &detail).await;
    if let Some(provider) = tracer_provider {
        let _ = provider.shutdown();
    }
    result
}
