//! `touchstone dev`: ingest, config, attribution and query in one process on the embedded
//! store, like Jaeger's all-in-one. One gRPC server carries every service, plus gRPC health
//! (for load balancers and `grpc-health-probe`) and reflection (for `grpcurl`).

use crate::CommandResult;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use tokio::sync::{Notify, watch};
use tokio_stream::wrappers::TcpListenerStream;
use touchstone_attribution::{AttributionApi, Worker};
use touchstone_ingest::{ConfigApi, IngestApi};
use touchstone_proto::v1::attribution_service_server::AttributionServiceServer;
use touchstone_proto::v1::config_service_server::ConfigServiceServer;
use touchstone_proto::v1::ingest_service_server::IngestServiceServer;
use touchstone_proto::v1::query_service_server::QueryServiceServer;
use touchstone_query::QueryApi;
use touchstone_store::embedded::EmbeddedOptions;
use opentelemetry_sdk::trace::SdkTracerProvider;
use touchstone_store::{EmbeddedStore, Store};

/// Largest request accepted: an ingest batch of `MAX_BATCH` records with room to spare.
const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

pub async fn run(listen: SocketAddr, data_dir: PathBuf, sync: bool) -> CommandResult {
    let tracer_provider = init_tracing();
    std::fs::create_dir_all(&data_dir)
        .map_err(|err| format!("cannot create data dir {}: {err}", data_dir.display()))?;
    let store = EmbeddedStore::open_with(&data_dir, EmbeddedOptions { sync })
        .map_err(|err| format!("cannot open the embedded store in {}: {err}", data_dir.display()))?;
    let store: Arc<dyn Store> = Arc::new(store);
    let wake = Arc::new(Notify::new());

    let (health_reporter, health_service) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<IngestServiceServer<IngestApi>>().await;
    health_reporter.set_serving::<ConfigServiceServer<ConfigApi>>().await;
    health_reporter.set_serving::<AttributionServiceServer<AttributionApi>>().await;
    health_reporter.set_serving::<QueryServiceServer<QueryApi>>().await;
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(touchstone_proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()?;

    let listener = tokio::net::TcpListener::bind(listen).await.map_err(|err| format!("cannot listen on {listen}: {err}"))?;
    let bound = listener.local_addr()?;
    // Scripts read this line to find the port when started with port 0.
    println!("touchstone dev listening on http://{bound} (data in {})", data_dir.display());

    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let worker = tokio::spawn(Worker::new(store.clone(), wake.clone()).run(shutdown_rx));

    let server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .layer(tower::limit::ConcurrencyLimitLayer::new(1024))
        .add_service(health_service)
        .add_service(reflection)
        .add_service(
            IngestServiceServer::new(IngestApi::new(store.clone(), wake.clone())).max_decoding_message_size(MAX_MESSAGE_BYTES),
        )
        .add_service(ConfigServiceServer::new(ConfigApi::new(store.clone(), wake.clone())))
        .add_service(AttributionServiceServer::new(AttributionApi::new(store.clone(), wake.clone())))
        .add_service(QueryServiceServer::new(QueryApi::new(store.clone())).max_encoding_message_size(MAX_MESSAGE_BYTES))
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown_signal());
    let served = server.await;

    // Stop the worker between steps; whatever it has not committed is redone next start.
    let _ = shutdown_tx.send(true);
    let _ = worker.await;
    if let Some(provider) = tracer_provider {
        let _ = provider.shutdown();
    }
    served?;
    tracing::info!("touchstone dev stopped");
    Ok(ExitCode::SUCCESS)
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
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

/// Logs to stderr (`RUST_LOG` overrides the default, `info`) and, when
/// `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exports every span (one per RPC, and the attribution
/// steps) over OTLP/gRPC. The returned provider flushes pending spans when shut down.
fn init_tracing() -> Option<SdkTracerProvider> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal, not in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let fmt = tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr);
    let provider = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").and_then(|_| otlp_provider());
    let otel = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("touchstone"))
    });
    let _ = tracing_subscriber::registry().with(filter).with(fmt).with(otel).try_init();
    provider
}

fn otlp_provider() -> Option<SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("warning: OTLP export disabled: {err}");
            return None;
        }
    };
    let resource = opentelemetry_sdk::Resource::builder().with_service_name("touchstone").build();
    Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}
