//! The web console: campaign and goal reports with charts, conversion explanations and
//! member care for badges, over HTTP beside the gRPC API (`touchstone dev`, and `touchstone
//! query --http`).
//!
//! - Every figure comes from the `QueryService` code the RPCs run, called in-process with
//!   the caller's key, so a page shows what the API and the CLI give, and a key sees only
//!   its tenant.
//! - Pages are rendered on the server (askama templates, SVG charts drawn by plotters):
//!   reading needs no JavaScript; one small script only sorts tables in place.
//! - Keys: with a keys file, the browser asks for one (HTTP Basic: any user name, the key
//!   as password; or `Authorization: Bearer`), which needs the `query` scope.
//! - Pages pass the server's layers: the caller's trace context, the server's limit on
//!   work in flight (a page refused is 503 with `Retry-After`), and the shutdown's drain;
//!   each is timed (`touchstone_console_request_seconds{page,status}`).

mod chart;
mod pages;
mod params;
mod range;
mod tls;
mod view;

use crate::keys::KeyRing;
use crate::layers::shed::ShedLayer;
use crate::tls::TlsPem;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use touchstone_attribution::AttributionApi;
use touchstone_proto::auth::{Principal, Scope};
use touchstone_query::QueryApi;
use touchstone_store::{BadgeStore, ConfigStore, ReportReads, Store};

/// What the pages read with: the query service, the attribution status, the store's
/// configs and report reads (tenants, currencies, the default range), and the keys.
pub struct Console {
    pub query: QueryApi,
    pub status: AttributionApi,
    pub configs: Arc<dyn ConfigStore>,
    pub reads: Arc<dyn ReportReads>,
    pub badges: Arc<dyn BadgeStore>,
    pub keys: Option<Arc<KeyRing>>,
    /// Per tenant, the last day holding data and when it was found (see `pages::default_range`).
    last_days: std::sync::Mutex<std::collections::HashMap<String, (i64, std::time::Instant)>>,
}

impl Console {
    pub fn new(
        query: QueryApi,
        status: AttributionApi,
        configs: Arc<dyn ConfigStore>,
        reads: Arc<dyn ReportReads>,
        badges: Arc<dyn BadgeStore>,
        keys: Option<Arc<KeyRing>>,
    ) -> Console {
        Console { query, status, configs, reads, badges, keys, last_days: Default::default() }
    }

    /// The caller of a tenant's page: 403 for a key of another tenant, before anything of
    /// the tenant is read (not even whether it exists).
    fn caller_for(&self, headers: &HeaderMap, tenant: &str) -> Result<Option<Principal>, PageError> {
        let caller = self.caller(headers)?;
        if let Some(principal) = &caller {
            principal.check_tenant(tenant).map_err(|err| PageError::Forbidden(err.to_string()))?;
        }
        Ok(caller)
    }

    /// The caller's principal from the request's headers (the gRPC layer's, or a browser's
    /// HTTP Basic password); `Ok(None)` on an open server.
    fn caller(&self, headers: &HeaderMap) -> Result<Option<Principal>, PageError> {
        let Some(keys) = &self.keys else { return Ok(None) };
        let basic = || {
            let encoded = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
            let text = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
            text.split_once(':').map(|(_, password)| password.to_owned())
        };
        let key = crate::layers::auth::presented_key(headers).map(str::to_owned).or_else(basic).ok_or(PageError::Unauthenticated)?;
        match crate::layers::auth::admit_key(keys, &key, "the console", &[Scope::Query]) {
            Ok(principal) => Ok(Some(principal)),
            Err(status) if status.code() == tonic::Code::PermissionDenied => Err(PageError::Forbidden(status.message().to_owned())),
            Err(_) => Err(PageError::Unauthenticated),
        }
    }
}

/// Why a page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("an API key is needed")]
    Unauthenticated,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
}

impl From<tonic::Status> for PageError {
    fn from(status: tonic::Status) -> PageError {
        let message = status.message().to_owned();
        match status.code() {
            tonic::Code::NotFound => PageError::NotFound(message),
            tonic::Code::InvalidArgument | tonic::Code::OutOfRange | tonic::Code::FailedPrecondition => PageError::BadRequest(message),
            tonic::Code::PermissionDenied | tonic::Code::Unauthenticated => PageError::Forbidden(message),
            _ => PageError::Unavailable(message),
        }
    }
}

impl From<touchstone_store::StoreError> for PageError {
    fn from(error: touchstone_store::StoreError) -> PageError {
        PageError::Unavailable(error.to_string())
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let status = match &self {
            PageError::Unauthenticated => StatusCode::UNAUTHORIZED,
            PageError::Forbidden(_) => StatusCode::FORBIDDEN,
            PageError::NotFound(_) => StatusCode::NOT_FOUND,
            PageError::BadRequest(_) => StatusCode::BAD_REQUEST,
            PageError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        let page = view::ErrorPage { status: status.as_u16(), message: self.to_string() };
        let mut response = (status, view::html(&page)).into_response();
        if matches!(self, PageError::Unauthenticated) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"touchstone\""));
        }
        response
    }
}

/// The console's routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(pages::index))
        .route("/t/{tenant}", get(pages::tenant_home))
        .route("/t/{tenant}/campaigns", get(pages::campaigns))
        .route("/t/{tenant}/campaigns.csv", get(pages::campaigns_csv))
        .route("/t/{tenant}/campaigns/{campaign_id}", get(pages::campaign))
        .route("/t/{tenant}/campaigns/{campaign_id}/lift", get(pages::campaign_lift))
        .route("/t/{tenant}/goals", get(pages::goals))
        .route("/t/{tenant}/explain", get(pages::explain))
        .route("/t/{tenant}/models", get(pages::models))
        .route("/t/{tenant}/members", get(pages::members))
        .route("/static/console.css", get(|| async { ([(header::CONTENT_TYPE, "text/css")], include_str!("../../static/console.css")) }))
        .route("/static/console.js", get(|| async { ([(header::CONTENT_TYPE, "text/javascript")], include_str!("../../static/console.js")) }))
        .with_state(console)
}

/// The console over `store`, with `extra` routes beside its own, behind the server's layers:
/// the trace context, page timing and the limits `shed` applies to calls.
pub fn router_over<S: Store>(store: Arc<S>, keys: Option<Arc<KeyRing>>, extra: Option<Router>, shed: &ShedLayer) -> Router {
    let console = Console::new(
        QueryApi::new(store.clone(), store.clone(), store.clone()),
        // Status reads only: nothing here appends to the log, so nothing wakes a worker.
        AttributionApi::new(store.clone(), Arc::new(tokio::sync::Notify::new())),
        store.clone(),
        store.clone(),
        store,
        keys,
    );
    let mut router = router(Arc::new(console));
    if let Some(extra) = extra {
        router = router.merge(extra);
    }
    // Outermost last: the trace, then timing (refusals count), then the limits.
    router.layer(shed.pages()).layer(axum::middleware::from_fn(time_page)).layer(crate::layers::trace_context::TraceContextLayer)
}

/// Times a page by its route (`/t/{tenant}/campaigns`, not each tenant's path) and status.
async fn time_page(request: Request, next: Next) -> Response {
    let page = request.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let started = std::time::Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::histogram!("touchstone_console_request_seconds", "page" => page, "status" => status).record(started.elapsed().as_secs_f64());
    response
}

/// Serves `router` on `listener` (over TLS with `pem` when given) until `draining` turns
/// true, then lets the pages in flight finish.
pub async fn serve(listener: TcpListener, router: Router, pem: Option<TlsPem>, mut draining: watch::Receiver<bool>) -> Result<(), String> {
    let acceptor = pem.as_ref().map(tls::acceptor).transpose()?;
    let stop = async move {
        let _ = draining.wait_for(|draining| *draining).await;
    };
    let served = match acceptor {
        Some(acceptor) => axum::serve(tls::TlsListener::new(listener, acceptor), router).with_graceful_shutdown(stop).await,
        None => axum::serve(listener, router).with_graceful_shutdown(stop).await,
    };
    served.map_err(|err| err.to_string())
}

/// HTTP Basic credentials' bytes (standard base64).
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.decode(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_credentials_decode() {
        assert_eq!(base64_decode("dXNlcjp0c2tfYV9i").as_deref(), Some(&b"user:tsk_a_b"[..]));
        assert_eq!(base64_decode("not base64!"), None);
    }
}
