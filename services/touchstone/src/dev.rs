//! `touchstone dev`: ingest, attribution and query in one process on the embedded store.

use crate::CommandResult;
use std::net::SocketAddr;
use std::path::PathBuf;

pub async fn run(listen: SocketAddr, data_dir: PathBuf, sync: bool) -> CommandResult {
    let _ = (listen, data_dir, sync);
    Err("touchstone dev is being wired up".into())
}
