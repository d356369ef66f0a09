//! The server every long-running subcommand shares: `dev` runs every role in one process
//! on the embedded store; `ingest`, `attribution` and `query` run one role each on
//! ScyllaDB. One gRPC server carries the role's services, plus gRPC health (for load
//! balancers and Kubernetes probes), reflection (for `grpcurl`) and the `AttributionService`
//! status, which every role serves: it is a store read, so `import --wait` works against
//! the ingest process and reports can wait on the query one. Beside it, on listeners of
//! their own: health alone in plaintext, the web console, Prometheus's scrape endpoint.
//!
//! [`serve`] takes every listener already bound ([`Listeners`]) and one shutdown future (as
//! mini-redis does), so the binary decides the addresses and the signals, and tests run it
//! in-process on port 0. Shutdown is one sequence for all of them: health NOT_SERVING, a
//! notice, then streams end and calls and pages in flight drain, up to a deadline.

use crate::keys::KeyRing;
use crate::layers::shed::ShedLayer;
use crate::limits::Limits;
use crate::telemetry::UsageSource;
use crate::tls::Tls;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::{Notify, watch};
use tonic::transport::server::TcpIncoming;
use touchstone_attribution::{AttributionApi, Worker, WorkerOptions};
use touchstone_ingest::{Backlog, ConfigApi, IngestApi};
use touchstone_proto::v1::attribution_service_server::AttributionServiceServer;
use touchstone_proto::v1::config_service_server::ConfigServiceServer;
use touchstone_proto::v1::ingest_service_server::IngestServiceServer;
use touchstone_proto::v1::query_service_server::QueryServiceServer;
use touchstone_query::QueryApi;
use touchstone_store::Store;

/// Why the server stopped other than by its shutdown future.
pub type ServeError = Box<dyn std::error::Error + Send + Sync>;

/// On shutdown, how long health answers NOT_SERVING while the server still takes calls, so
/// load balancers and probes route new calls elsewhere first.
const SHUTDOWN_NOTICE: Duration = Duration::from_millis(1_000);
/// Then how long calls and pages in flight may take to finish before they are cut (open
/// streams end at once, with UNAVAILABLE and what they stored).
const DRAIN_DEADLINE: Duration = Duration::from_secs(10);

/// What one process does.
#[derive(Clone, Default)]
pub struct Roles {
    /// Serve `IngestService` and `ConfigService`.
    pub ingest: bool,
    /// Run an attribution worker with this id.
    pub worker: Option<WorkerOptions>,
    /// Serve `QueryService`.
    pub query: bool,
    /// The API keys every RPC and page is checked against; `None`: an open server.
    pub keys: Option<Arc<KeyRing>>,
    /// Calls in flight, in all and per tenant, beyond which calls are refused at once.
    pub limits: Limits,
    /// TLS on the gRPC and console listeners.
    pub tls: Tls,
    /// The store's own per-table counts, for the metrics listener (the embedded store's).
    pub usage: Option<UsageSource>,
}

/// Every listener a server serves, bound by the caller.
pub struct Listeners {
    /// The gRPC API (TLS when `Roles::tls` has an identity).
    pub grpc: TcpListener,
    /// `grpc.health.v1` alone, in plaintext: for probes that speak no TLS (the kubelet's
    /// gRPC probes), while every other call needs TLS.
    pub health: Option<TcpListener>,
    /// The web console (HTTPS with the gRPC listener's certificate when it has one).
    pub console: Option<TcpListener>,
    /// Routes served beside the console's pages, behind the same layers (an embedding
    /// application's own).
    pub console_routes: Option<axum::Router>,
    /// Prometheus's scrape endpoint (any path).
    pub metrics: Option<TcpListener>,
}

impl Listeners {
    /// The gRPC listener alone.
    pub fn grpc(grpc: TcpListener) -> Listeners {
        Listeners { grpc, health: None, console: None, console_routes: None, metrics: None }
    }
}

/// Serves `roles` on `listeners` until `shutdown` completes, drains, then stops the worker
/// between steps. Each service holds only the roles of the store it uses.
pub async fn serve<S: Store>(
    store: Arc<S>,
    listeners: Listeners,
    roles: Roles,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServeError> {
    let Listeners { grpc: listener, health: health_listener, console: console_listener, console_routes, metrics: metrics_listener } = listeners;
    // In-process ingestion wakes an in-process worker; across processes the worker polls.
    let wake = Arc::new(Notify::new());

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    let services = served_names(roles.ingest, roles.query);
    for &service in &services {
        health_reporter.set_service_status(service, tonic_health::ServingStatus::Serving).await;
    }
    // Both reflection versions: grpcurl speaks v1, Python's grpcio-reflection only v1alpha.
    let reflection = || {
        tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(touchstone_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            // Not a service: the error details, so grpcurl prints them decoded.
            .register_encoded_file_descriptor_set(touchstone_proto::GOOGLE_RPC_DESCRIPTOR_SET)
    };
    let reflection_v1alpha = reflection().build_v1alpha()?;
    let reflection = reflection().build_v1()?;

    if let Some(keys) = &roles.keys {
        KeyRing::watch(keys);
    }
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    // Streams end and pages stop being taken when draining starts; the worker stops after
    // the servers have.
    let (draining_tx, draining_rx) = watch::channel(false);
    let health_stopped = shutdown_rx.clone();
    let shed = ShedLayer::new(roles.limits);
    let in_process_worker = roles.worker.is_some();
    let worker = roles.worker.map(|options| tokio::spawn(Worker::new(store.clone(), wake.clone(), options).run(shutdown_rx)));

    let ingest = roles.ingest.then(|| {
        let mut api = IngestApi::new(store.clone(), store.clone(), wake.clone())
            .with_shutdown(draining_rx.clone())
            .with_stream_idle(roles.limits.stream_idle)
            .with_tenant_rate(roles.limits.tenant_records_per_second);
        // Replies wait for attribution while it is seen moving, in this process or another;
        // across processes the store is remote: positions are polled less often, and the
        // default backlog is smaller, as attribution there is slower.
        let (default_limit, poll) =
            if in_process_worker { (Backlog::DEFAULT_LIMIT, Backlog::LOCAL_POLL) } else { (Backlog::REMOTE_DEFAULT_LIMIT, Backlog::REMOTE_POLL) };
        let limit = roles.limits.attribution_backlog.unwrap_or(default_limit);
        if limit > 0 {
            api = api.with_backlog(Backlog::within(limit, poll));
        }
        // The limits' metered body refuses larger messages first, with RESOURCE_EXHAUSTED.
        IngestServiceServer::new(api).max_decoding_message_size(roles.limits.message_bytes)
    });
    let config = roles.ingest.then(|| {
        ConfigServiceServer::new(ConfigApi::new(store.clone(), store.clone(), wake.clone())).max_decoding_message_size(roles.limits.message_bytes)
    });
    let query = roles
        .query
        .then(|| {
            QueryServiceServer::new(QueryApi::new(store.clone(), store.clone(), store.clone()).with_shutdown(draining_rx.clone()))
                .max_encoding_message_size(crate::limits::MAX_MESSAGE_BYTES)
                .max_decoding_message_size(roles.limits.message_bytes)
        });
    // TCP_NODELAY on every accepted connection: without it a small reply waits for the
    // client's delayed ACK (Nagle), ~40 ms. The builder's `tcp_nodelay` does not reach
    // connections from an incoming stream of our own, so it is set here.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    // A connection's calls beyond its share wait in the client, behind its own calls.
    let mut builder = tonic::transport::Server::builder().max_concurrent_streams(roles.limits.per_connection);
    if let Some(identity) = roles.tls.identity.clone() {
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    // The plaintext health listener: health alone, no keys (health needs none), stopped
    // with the server.
    let health_only = match health_listener {
        Some(listener) => {
            let mut stopped = health_stopped;
            let server = tonic::transport::Server::builder()
                .add_service(health_service.clone())
                .serve_with_incoming_shutdown(TcpIncoming::from(listener), async move {
                    let _ = stopped.wait_for(|stopped| *stopped).await;
                });
            Some(tokio::spawn(server))
        }
        None => None,
    };
    // Every service this process serves, once: the gRPC listener serves them, and the HTTP
    // listener hands Connect calls to them through the same layers.
    let mut routes = tonic::service::Routes::new(health_service)
        .add_service(reflection)
        .add_service(reflection_v1alpha)
        .add_service(AttributionServiceServer::new(AttributionApi::new(store.clone(), wake.clone())).max_decoding_message_size(roles.limits.message_bytes));
    if let Some(ingest) = ingest {
        routes = routes.add_service(ingest);
    }
    if let Some(config) = config {
        routes = routes.add_service(config);
    }
    if let Some(query) = query {
        routes = routes.add_service(query);
    }
    let routes = routes.prepare();
    let console = match console_listener {
        Some(listener) => {
            let grpc = tower::ServiceBuilder::new().layer(crate::layers::grpc_stack(roles.keys.clone(), shed.clone())).service(routes.clone());
            let connect = crate::connect::Connect::new(tower::util::BoxCloneSyncService::new(grpc))?;
            let router = crate::console::router_over(store.clone(), roles.keys.clone(), console_routes, &shed).fallback_service(connect);
            Some(tokio::spawn(crate::console::serve(listener, router, roles.tls.pem.clone(), draining_rx.clone())))
        }
        None => None,
    };
    let metrics = match metrics_listener {
        Some(listener) => {
            crate::telemetry::handle()?;
            Some(tokio::spawn(crate::telemetry::serve(listener, store.clone(), roles.usage.clone())))
        }
        None => None,
    };
    let served = builder
        .layer(crate::layers::grpc_stack(roles.keys.clone(), shed))
        .add_routes(routes)
        .serve_with_incoming_shutdown(incoming, async {
            shutdown.await;
            // Health first, then a moment for probes to see it, then streams end and the
            // server stops accepting and drains.
            health_reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
            for &service in &services {
                health_reporter.set_service_status(service, tonic_health::ServingStatus::NotServing).await;
            }
            tracing::info!(notice = ?SHUTDOWN_NOTICE, "health NOT_SERVING; draining");
            tokio::time::sleep(SHUTDOWN_NOTICE).await;
            let _ = draining_tx.send(true);
        });
    // Calls and pages in flight get DRAIN_DEADLINE once draining starts; then they are cut.
    let console_abort = console.as_ref().map(tokio::task::JoinHandle::abort_handle);
    let console_drained = async {
        if let Some(console) = console {
            match console.await {
                Ok(Err(err)) => tracing::error!(error = %err, "the console stopped"),
                Err(err) => tracing::error!(error = %err, "the console failed"),
                Ok(Ok(())) => {}
            }
        }
    };
    let mut draining = draining_rx.clone();
    let served = tokio::select! {
        (served, ()) = async { tokio::join!(served, console_drained) } => served,
        () = async {
            let _ = draining.wait_for(|draining| *draining).await;
            tokio::time::sleep(DRAIN_DEADLINE).await;
        } => {
            tracing::warn!(deadline = ?DRAIN_DEADLINE, "calls still in flight at the drain deadline were cut");
            Ok(())
        }
    };
    if let Some(console) = console_abort {
        console.abort();
    }
    if let Some(metrics) = metrics {
        metrics.abort();
    }

    // Stop the worker between steps; whatever it has not committed is redone next start
    // (or by another worker once its leases lapse).
    let _ = shutdown_tx.send(true);
    if let Some(worker) = worker {
        let _ = worker.await;
    }
    if let Some(health_only) = health_only {
        let _ = health_only.await;
    }
    served?;
    Ok(())
}

/// The health names of the services a server with these roles serves.
fn served_names(ingest: bool, query: bool) -> Vec<&'static str> {
    use tonic::server::NamedService as _;
    let mut names = vec![<AttributionServiceServer<AttributionApi>>::NAME];
    if ingest {
        names.push(<IngestServiceServer<IngestApi>>::NAME);
        names.push(<ConfigServiceServer<ConfigApi>>::NAME);
    }
    if query {
        names.push(<QueryServiceServer<QueryApi>>::NAME);
    }
    names
}

/// Ctrl-C or SIGTERM: what ends a server started from the command line.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(term) => term,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    tracing::info!("shutting down");
}

