//! Prometheus metrics: a scrape endpoint (`--metrics-listen`, `GET /metrics`) and the tower
//! layer that times every RPC. What the services record (the `metrics` facade; names in the
//! README's operator section):
//! - `touchstone_rpc_duration_seconds{method,code}` (histogram), here;
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

use crate::layers::{BoxFuture, take_ready};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpListener;
use tonic::codegen::http;
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
    describe_counter!("touchstone_attribution_steps_total", "Attribution steps committed.");
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

/// Times every RPC by method and gRPC code.
#[derive(Clone, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = CallTimer { method: request.uri().path().to_owned(), started: Instant::now() };
        let mut inner = take_ready(&mut self.inner);
        Box::pin(async move {
            let response = inner.call(request).await?;
            // An error known before any message is in the headers (a trailers-only
            // response); otherwise the status comes in the trailers, at the body's end.
            if let Some(code) = grpc_status(response.headers()) {
                call.record(code);
                return Ok(response);
            }
            Ok(response.map(|body| tonic::body::Body::new(TimedBody { inner: body, call: Some(call) })))
        })
    }
}

/// One call's method and start, recorded once its final status is known.
struct CallTimer {
    method: String,
    started: Instant,
}

impl CallTimer {
    fn record(self, code: tonic::Code) {
        let code = touchstone_proto::error::code_name(code);
        metrics::histogram!("touchstone_rpc_duration_seconds", "method" => self.method, "code" => code).record(self.started.elapsed().as_secs_f64());
    }
}

/// The `grpc-status` of headers or trailers.
fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}

/// A response body that records its call when the status arrives in the trailers (a
/// stream's late error included); a body that fails counts as UNKNOWN, and one dropped
/// before its end (the client went away) as CANCELLED.
struct TimedBody {
    inner: tonic::body::Body,
    call: Option<CallTimer>,
}

impl TimedBody {
    fn record(&mut self, code: tonic::Code) {
        if let Some(call) = self.call.take() {
            call.record(code);
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.record(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.record(status.code()),
            // Ended without trailers: nothing said otherwise.
            Poll::Ready(None) => self.record(tonic::Code::Ok),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        self.record(tonic::Code::Cancelled);
    }
}
