//! W3C trace context from the caller: the layer reads `traceparent` (and `tracestate`) from
//! a request's metadata and opens the RPC's span as a child of the caller's span, so the
//! handler's spans, and what OTLP exports of them, carry the caller's trace id. The call's
//! context goes into the request's extensions too, for ingestion to keep with the log
//! entries it appends ([`TraceParent`]): the attribution step that processes them links to
//! it.

use crate::layers::{BoxFuture, take_ready};
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::TraceContextExt as _;
use std::task::{Context, Poll};
use tonic::codegen::http;
use tracing::Instrument as _;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use touchstone_store::TraceParent;

/// Reads propagation fields from request headers.
struct Headers<'a>(&'a http::HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}

/// Opens an `rpc` span per call, parented on the caller's trace context when it sent one.
#[derive(Clone, Default)]
pub struct TraceContextLayer;

impl<S> tower::Layer<S> for TraceContextLayer {
    type Service = TraceContext<S>;

    fn layer(&self, inner: S) -> TraceContext<S> {
        TraceContext { inner }
    }
}

#[derive(Clone)]
pub struct TraceContext<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for TraceContext<S>
where
    S: tower::Service<http::Request<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&Headers(request.headers())));
        let span = tracing::info_span!("rpc", method = %request.uri().path(), otel.kind = "server");
        let callers = parent.span().span_context().clone();
        let _ = span.set_parent(parent);
        // What ingestion keeps with the log entries the call appends: this span when spans
        // are exported (OTLP), else the caller's context as it came.
        let own = span.context().span().span_context().clone();
        let carried = if own.is_valid() { own } else { callers };
        if carried.is_valid()
            && let Some(trace) =
                TraceParent::new(carried.trace_id().to_bytes(), carried.span_id().to_bytes(), carried.trace_flags().to_u8())
        {
            request.extensions_mut().insert(trace);
        }
        let mut inner = take_ready(&mut self.inner);
        Box::pin(inner.call(request).instrument(span))
    }
}
