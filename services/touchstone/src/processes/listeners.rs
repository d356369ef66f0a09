//! Binding a server process's addresses, before anything is served: the gRPC one, and those
//! of health alone, the console and metrics when asked for. Each bound address is said on
//! stdout or in the log; the gRPC line comes first, since scripts and tests read it to find
//! a port chosen by the system (`--listen 127.0.0.1:0`).

use std::io::Write as _;
use std::net::SocketAddr;
use tokio::net::TcpListener;
use touchstone_server::serve::Listeners;

/// The addresses one process serves on.
pub struct Addresses {
    pub grpc: SocketAddr,
    pub health: Option<SocketAddr>,
    pub console: Option<SocketAddr>,
    pub metrics: Option<SocketAddr>,
}

/// Binds every address; `name` and `detail` make the gRPC line
/// (`NAME listening on http(s)://ADDRESS DETAIL`).
pub async fn bind(addresses: Addresses, name: &str, detail: &str, tls: bool) -> Result<Listeners, String> {
    let scheme = if tls { "https" } else { "http" };
    let grpc = TcpListener::bind(addresses.grpc).await.map_err(|err| format!("cannot listen on {}: {err}", addresses.grpc))?;
    let bound = local(&grpc, "gRPC")?;
    // A reader of these lines may have gone: they are for people and scripts, never fatal.
    let _ = writeln!(std::io::stdout(), "{name} listening on {scheme}://{bound} {detail}");
    let mut listeners = Listeners::grpc(grpc);
    if let Some(address) = addresses.health {
        let listener = TcpListener::bind(address).await.map_err(|err| format!("cannot listen for health on {address}: {err}"))?;
        tracing::info!(address = %local(&listener, "health")?, "plaintext health listener");
        listeners.health = Some(listener);
    }
    if let Some(address) = addresses.console {
        let listener = TcpListener::bind(address).await.map_err(|err| format!("cannot listen for the console on {address}: {err}"))?;
        let bound = local(&listener, "the console")?;
        let _ = writeln!(std::io::stdout(), "console on {scheme}://{bound}/");
        tracing::info!(address = %bound, "console serving");
        listeners.console = Some(listener);
    }
    if let Some(address) = addresses.metrics {
        let listener = TcpListener::bind(address).await.map_err(|err| format!("cannot serve metrics on {address}: {err}"))?;
        tracing::info!("metrics on http://{}/metrics", local(&listener, "metrics")?);
        listeners.metrics = Some(listener);
    }
    Ok(listeners)
}

fn local(listener: &TcpListener, what: &str) -> Result<SocketAddr, String> {
    listener.local_addr().map_err(|err| format!("cannot listen for {what}: {err}"))
}
