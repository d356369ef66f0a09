//! Limits that shed load instead of queueing it: a call beyond the server's calls in
//! flight, or beyond its tenant's share, is answered RESOURCE_EXHAUSTED at once, with a
//! `RetryInfo` saying when to try again, instead of waiting in a queue until its deadline.
//! Health, reflection and `GetStatus` are never limited, so probes and `import --wait`
//! answer however busy the server is. A permit is held until the handler returns: a server
//! stream (`WatchBadgeEvents`) holds none once it is open, a client stream (`IngestStream`)
//! holds one until it ends, which its idle timeout bounds. Request bodies are metered
//! against the server's budget of request bytes ([`super::request_bytes`]).

use crate::layers::request_bytes::{Held, RequestBytes};
use crate::layers::{BoxFuture, take_ready};
use crate::limits::Limits;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::{Code, Status};
use tonic::codegen::http;
use touchstone_proto::auth::Principal;

/// Paths no limit applies to.
fn exempt(path: &str) -> bool {
    path.starts_with("/grpc.health.") || path.starts_with("/grpc.reflection.") || path == "/touchstone.v1.AttributionService/GetStatus"
}

/// The streaming calls: bounded by their idle timeout (ingest) or the caller (a feed), not
/// by the unary calls' deadline.
fn streaming(path: &str) -> bool {
    path == "/touchstone.v1.IngestService/IngestStream" || path == "/touchstone.v1.QueryService/WatchBadgeEvents"
}

#[derive(Clone)]
pub struct ShedLayer {
    state: Arc<Shed>,
}

struct Shed {
    limits: Limits,
    all: Arc<Semaphore>,
    /// Per tenant (operator keys: per key), the calls it may still start.
    shares: Mutex<HashMap<String, Arc<Semaphore>>>,
    bytes: RequestBytes,
}

impl ShedLayer {
    pub fn new(limits: Limits) -> ShedLayer {
        let state = Shed {
            limits,
            all: Arc::new(Semaphore::new(limits.in_flight)),
            shares: Mutex::new(HashMap::new()),
            bytes: RequestBytes::new(limits.message_bytes, limits.request_bytes),
        };
        ShedLayer { state: Arc::new(state) }
    }
}

impl<S> tower::Layer<S> for ShedLayer {
    type Service = ShedService<S>;

    fn layer(&self, inner: S) -> ShedService<S> {
        ShedService { inner, state: self.state.clone() }
    }
}

#[derive(Clone)]
pub struct ShedService<S> {
    inner: S,
    state: Arc<Shed>,
}

impl Shed {
    /// Permits for one call: the server's, and its tenant's when its key has one (all keys of
    /// a tenant share its share; an operator key, good for every tenant, has its own).
    fn admit(&self, principal: Option<&Principal>) -> Result<(OwnedSemaphorePermit, Option<OwnedSemaphorePermit>), Status> {
        let share_permit = match principal {
            Some(principal) => {
                let (share, who) = match &principal.tenant {
                    Some(tenant) => (format!("tenant {tenant}"), format!("tenant {tenant:?}")),
                    None => (format!("key {}", principal.key_id), format!("operator key {}", principal.key_id)),
                };
                let semaphore = {
                    let mut shares = self.shares.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    shares.entry(share).or_insert_with(|| Arc::new(Semaphore::new(self.limits.per_tenant))).clone()
                };
                Some(semaphore.try_acquire_owned().map_err(|_| {
                    metrics::counter!("touchstone_rpc_shed_total", "limit" => "tenant").increment(1);
                    busy("tenant", format!("{who} already has {} calls in flight; retry shortly", self.limits.per_tenant))
                })?)
            }
            None => None,
        };
        let permit = self.all.clone().try_acquire_owned().map_err(|_| {
            metrics::counter!("touchstone_rpc_shed_total", "limit" => "server").increment(1);
            busy("server", format!("the server already runs {} calls; retry shortly or on another replica", self.limits.in_flight))
        })?;
        Ok((permit, share_permit))
    }
}

/// RESOURCE_EXHAUSTED with when to retry (the error table's details), naming the `limit`
/// (`server` or `tenant`) the call is over.
fn busy(limit: &str, message: String) -> Status {
    let reason = touchstone_core::error::Reason::new("OVERLOADED").with("limit", limit);
    touchstone_proto::error::ApiError::named(touchstone_core::error::ErrorKind::ResourceExhausted, reason, message).into()
}

impl<S, B> tower::Service<http::Request<B>> for ShedService<S>
where
    S: tower::Service<http::Request<tonic::body::Body>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: tonic::codegen::Body<Data = tonic::codegen::Bytes> + Send + Unpin + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let held = Held::default();
        let (permits, request) = if exempt(request.uri().path()) {
            (None, request.map(tonic::body::Body::new))
        } else {
            match self.state.admit(request.extensions().get::<Principal>()) {
                Ok(permits) => (Some(permits), request.map(|body| tonic::body::Body::new(self.state.bytes.meter(body, held.clone())))),
                Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
            }
        };
        let deadline = (permits.is_some() && !streaming(request.uri().path())).then_some(self.state.limits.call_timeout);
        let mut inner = take_ready(&mut self.inner);
        Box::pin(async move {
            let call = inner.call(request);
            let response = match deadline {
                Some(deadline) => match tokio::time::timeout(deadline, call).await {
                    Ok(response) => response,
                    Err(_) => {
                        metrics::counter!("touchstone_rpc_shed_total", "limit" => "deadline").increment(1);
                        let message = format!("the call ran past the server's {deadline:?} deadline and was cut; what it wrote stands or is redone exactly on retry");
                        let reason = touchstone_core::error::Reason::new("CALL_TIMED_OUT").with("timeout_ms", deadline.as_millis().to_string());
                        let status = touchstone_proto::error::status_with_reason(Code::DeadlineExceeded, message, reason, Default::default());
                        Ok(status.into_http())
                    }
                },
                None => call.await,
            };
            drop((permits, held));
            response
        })
    }
}

impl ShedLayer {
    /// The same limits for the console's pages, which count against the server's calls in
    /// flight like a call does; a page refused is 503 with `Retry-After`.
    pub fn pages(&self) -> PageShedLayer {
        PageShedLayer { state: self.state.clone() }
    }
}

#[derive(Clone)]
pub struct PageShedLayer {
    state: Arc<Shed>,
}

impl<S> tower::Layer<S> for PageShedLayer {
    type Service = PageShed<S>;

    fn layer(&self, inner: S) -> PageShed<S> {
        PageShed { inner, state: self.state.clone() }
    }
}

#[derive(Clone)]
pub struct PageShed<S> {
    inner: S,
    state: Arc<Shed>,
}

impl<S, B> tower::Service<http::Request<B>> for PageShed<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<axum::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<axum::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        // The console checks keys itself, page by page: only the server's share applies.
        let permits = match self.state.admit(None) {
            Ok(permits) => permits,
            Err(status) => {
                let refused = http::Response::builder()
                    .status(http::StatusCode::SERVICE_UNAVAILABLE)
                    .header(http::header::RETRY_AFTER, touchstone_proto::error::RETRY_AFTER.as_secs().max(1).to_string())
                    .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
                    .body(axum::body::Body::from(format!("{}\n", status.message())))
                    .unwrap_or_default();
                return Box::pin(async move { Ok(refused) });
            }
        };
        let mut inner = take_ready(&mut self.inner);
        Box::pin(async move {
            let response = inner.call(request).await;
            drop(permits);
            response
        })
    }
}
