//! Telemetry: logs and trace export ([`init_tracing`]), and Prometheus metrics, served on
//! their own listener (`--metrics-listen`, `GET /metrics`). What the services record (the
//! `metrics` facade; names in the operator docs):
//! - `touchstone_rpc_duration_seconds{method,code}` (histogram), in `layers::rpc_metrics`;
//! - `touchstone_console_request_seconds{page,status}` (histogram), in `console`;
//! - `touchstone_rpc_shed_total{limit}`, in `limits`;
//! - `touchstone_records_{accepted,duplicate,rejected}_total`, in the ingest service;
//! - `touchstone_attribution_steps_total`, `_entries_total`, `_step_seconds`, in the worker;
//! - `touchstone_log_pending_entries{shard}`, `touchstone_attribution_lag_seconds{shard}`,
//!   `touchstone_set_aside_entries{shard}`, polled from the store here, so every process of
//!   a cluster reports the shared log;
//! - `touchstone_store_ops_total{backend,table,kind}` and `touchstone_store_bytes_total{...}`
//!   (`kind` `read` or `write`), the embedded store's own counts, copied in at each scrape;
//! - the process metrics every Prometheus user expects (`process_cpu_seconds_total`,
//!   `process_resident_memory_bytes`, `process_open_fds`, ...), read at each scrape
//!   (`metrics-process`).
//!
//! Each has a `# HELP` line ([`describe`]).

use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::{Arc, OnceLock};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use touchstone_store::{IngestLog, LOG_SHARDS, TableUsage};

/// Where a scrape reads a store's per-table counts ([`TableUsage`]): the embedded store's
/// `usage`. The store keeps plain atomics (a metrics-registry lookup per read would cost
/// more than many reads); they are copied into the recorder when scraped.
pub type UsageSource = Arc<dyn Fn() -> Vec<TableUsage> + Send + Sync>;

/// Bucket bounds of the RPC latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 14] = [0.000_5, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];
/// How often the log's positions are read for the gauges.
const POLL_LOG_EVERY: Duration = Duration::from_secs(5);

/// The process's recorder, installed on first use (one per process).
pub fn handle() -> Result<&'static PrometheusHandle, String> {
    static HANDLE: OnceLock<Result<PrometheusHandle, String>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            PrometheusBuilder::new()
                .set_buckets(&LATENCY_BUCKETS)
                .map_err(|err| err.to_string())?
                .install_recorder()
                .map_err(|err| format!("cannot install the metrics recorder: {err}"))
                .inspect(|_| describe())
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The `# HELP` text of every metric this process records.
fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram};
    describe_histogram!("touchstone_rpc_duration_seconds", metrics::Unit::Seconds, "Time to answer an RPC, by method and the status code it ended with.");
    describe_counter!("touchstone_rpc_shed_total", "Calls refused at once because a limit was reached, by limit.");
    describe_counter!("touchstone_records_accepted_total", "Records stored by ingestion (first arrivals).");
    describe_counter!("touchstone_records_duplicate_total", "Records acknowledged as duplicates of an earlier arrival.");
    describe_counter!("touchstone_records_rejected_total", "Records refused by validation.");
    describe_counter!("touchstone_records_rate_limited_total", "Records refused because their tenant was over its ingest rate.");
    describe_counter!("touchstone_attribution_steps_total", "Attribution steps committed, by log shard and lane.");
    describe_counter!("touchstone_attribution_entries_total", "Log entries attribution processed.");
    describe_histogram!("touchstone_attribution_step_seconds", metrics::Unit::Seconds, "Time an attribution step took, read to commit.");
    describe_gauge!("touchstone_log_pending_entries", "Log entries appended but not yet attributed, by shard.");
    describe_gauge!("touchstone_attribution_lag_seconds", "Age of the oldest unattributed log entry, by shard.");
    describe_gauge!("touchstone_set_aside_entries", "Log entries attribution set aside, by shard.");
    describe_counter!("touchstone_store_ops_total", "Embedded store operations, by table and kind (read or write).");
    describe_counter!("touchstone_store_bytes_total", "Embedded store bytes read and written, by table and kind.");
    describe_histogram!("touchstone_store_call_seconds", metrics::Unit::Seconds, "Time of a CQL store call, by call.");
    metrics_process::Collector::default().describe();
}

/// Answers every HTTP request on `listener` with the metrics in Prometheus's text format,
/// and polls the log's positions into gauges, until the task is dropped.
pub async fn serve(listener: TcpListener, log: Arc<dyn IngestLog>, usage: Option<UsageSource>) {
    let Ok(handle) = handle() else { return };
    tokio::spawn(poll_log(log));
    loop {
        let Ok((mut socket, _)) = listener.accept().await else { continue };
        let usage = usage.clone();
        tokio::spawn(async move {
            if let Some(usage) = usage {
                publish_usage(&usage());
            }
            // The request itself does not matter: one page, whatever the path.
            let mut request = [0u8; 1024];
            let _ = tokio::time::timeout(Duration::from_secs(2), socket.read(&mut request)).await;
            metrics_process::Collector::default().collect();
            let body = handle.render();
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n", body.len());
            let _ = socket.write_all(head.as_bytes()).await;
            let _ = socket.write_all(body.as_bytes()).await;
            let _ = socket.shutdown().await;
        });
    }
}

fn publish_usage(tables: &[TableUsage]) {
    for usage in tables {
        let TableUsage { table, reads, read_bytes, writes, write_bytes } = *usage;
        for (kind, ops, bytes) in [("read", reads, read_bytes), ("write", writes, write_bytes)] {
            metrics::counter!("touchstone_store_ops_total", "backend" => "embedded", "table" => table, "kind" => kind).absolute(ops);
            metrics::counter!("touchstone_store_bytes_total", "backend" => "embedded", "table" => table, "kind" => kind).absolute(bytes);
        }
    }
}

async fn poll_log(log: Arc<dyn IngestLog>) {
    loop {
        for shard in 0..LOG_SHARDS {
            let Ok(status) = log.log_status(shard).await else { continue };
            let label = shard.to_string();
            metrics::gauge!("touchstone_log_pending_entries", "shard" => label.clone()).set(status.head.saturating_sub(status.processed) as f64);
            metrics::gauge!("touchstone_set_aside_entries", "shard" => label.clone()).set(status.set_aside as f64);
            let lag = status.oldest_pending_at.map_or(0.0, |at| (chrono::Utc::now().timestamp_millis() - at).max(0) as f64 / 1000.0);
            metrics::gauge!("touchstone_attribution_lag_seconds", "shard" => label).set(lag);
        }
        tokio::time::sleep(POLL_LOG_EVERY).await;
    }
}

/// What is logged without `RUST_LOG`: info from Touchstone's crates (every target starting
/// `touchstone`), warnings from the rest, whose progress lines say nothing to an operator.
pub const DEFAULT_LOG_FILTER: &str = "warn,touchstone=info";

/// Logs to stderr (`RUST_LOG` overrides [`DEFAULT_LOG_FILTER`]; `TOUCHSTONE_LOG_FORMAT=json`
/// for JSON lines) and, when `OTEL_EXPORTER_OTLP_ENDPOINT` is set, exports every span (one
/// per RPC, and the attribution steps) over OTLP/gRPC. The returned provider flushes
/// pending spans when shut down.
pub fn init_tracing(service_name: &str) -> Option<SdkTracerProvider> {
    use tracing_subscriber::layer::SubscriberExt as _;
    use tracing_subscriber::util::SubscriberInitExt as _;

    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    // Colours only on a terminal, not in log files; one JSON object a line when asked
    // (TOUCHSTONE_LOG_FORMAT=json), for log pipelines.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = std::env::var("TOUCHSTONE_LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let text = (!json).then(|| tracing_subscriber::fmt::layer().with_ansi(ansi).with_writer(std::io::stderr));
    let json = json.then(|| tracing_subscriber::fmt::layer().json().with_current_span(true).with_writer(std::io::stderr));
    let provider = std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").and_then(|_| otlp_provider(service_name));
    let otel = provider.as_ref().map(|provider| {
        use opentelemetry::trace::TracerProvider as _;
        tracing_opentelemetry::layer().with_tracer(provider.tracer("touchstone"))
    });
    let _ = tracing_subscriber::registry().with(filter).with(text).with(json).with(otel).try_init();
    // W3C trace context (`traceparent`) from callers: RPC spans join their traces.
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    provider
}

fn otlp_provider(service_name: &str) -> Option<SdkTracerProvider> {
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_tonic().build() {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("warning: OTLP export disabled: {err}");
            return None;
        }
    };
    // OTEL_SERVICE_NAME, when set, names the service instead.
    let service_name = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service_name.to_owned());
    let resource = opentelemetry_sdk::Resource::builder().with_service_name(service_name).build();
    Some(SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build())
}
