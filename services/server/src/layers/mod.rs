//! The tower layers every gRPC call passes, outermost first, and what they share:
//! - [`trace_context`]: the caller's W3C trace context, so the call's spans join its trace;
//! - [`rpc_metrics`]: the call timed by method and the status it ended with (refusals too);
//! - [`auth`]: the API key checked, its principal passed on;
//! - [`shed`]: calls beyond the server's or the tenant's share refused at once, request
//!   bytes metered ([`request_bytes`]), unary calls cut at the deadline.
//!
//! The console's pages pass the trace context and shedding layers too (with an HTTP
//! refusal), and are timed by the console itself.

pub mod auth;
pub mod request_bytes;
pub mod rpc_metrics;
pub mod shed;
pub mod trace_context;

use std::sync::Arc;
use tower::layer::util::{Identity, Stack};

/// A layer's response future.
pub type BoxFuture<T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>>;

/// The inner service that `poll_ready` made ready, leaving a clone in its place: tower's
/// rule for calling a cloned service from `call`.
pub fn take_ready<S: Clone>(inner: &mut S) -> S {
    let clone = inner.clone();
    std::mem::replace(inner, clone)
}

/// The gRPC stack, in the order above: the trace first, so every later layer and the
/// handler run in its span; timing next, so refusals count too; keys before the limits,
/// which count per tenant.
pub type GrpcStack = Stack<
    shed::ShedLayer,
    Stack<auth::AuthLayer, Stack<rpc_metrics::RpcMetricsLayer, Stack<trace_context::TraceContextLayer, Identity>>>,
>;

pub fn grpc_stack(keys: Option<Arc<crate::keys::KeyRing>>, shed: shed::ShedLayer) -> GrpcStack {
    tower::ServiceBuilder::new()
        .layer(trace_context::TraceContextLayer)
        .layer(rpc_metrics::RpcMetricsLayer)
        .layer(auth::AuthLayer::new(keys))
        .layer(shed)
        .into_inner()
}
