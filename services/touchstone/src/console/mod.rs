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

mod chart;
mod pages;
mod tls;
mod view;

use touchstone::auth::KeyRing;
use touchstone::serve::TlsPem;
use axum::Router;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
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

    /// The caller's principal from the request's headers (the gRPC layer's, or a browser's
    /// HTTP Basic password); `Ok(None)` on an open server.
    fn caller(&self, headers: &HeaderMap) -> Result<Option<Principal>, PageError> {
        let Some(keys) = &self.keys else { return Ok(None) };
        let basic = || {
            let encoded = headers.get(header::AUTHORIZATION)?.to_str().ok()?.strip_prefix("Basic ")?;
            let text = String::from_utf8(base64_decode(encoded.trim())?).ok()?;
            text.split_once(':').map(|(_, password)| password.to_owned())
        };
        let key = touchstone::auth::presented_key(headers).map(str::to_owned).or_else(basic).ok_or(PageError::Unauthenticated)?;
        match touchstone::auth::admit_key(keys, &key, "the console", &[Scope::Query]) {
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

/// Binds `address`, says where the console is (after the gRPC listening line, which
/// scripts read first), and serves it in the background over `store` for the life of the
/// process: over TLS with the gRPC listener's certificate when it has one.
pub async fn start<S: Store>(address: SocketAddr, store: Arc<S>, keys: Option<Arc<KeyRing>>, tls: Option<&TlsPem>) -> Result<(), String> {
    let listener = TcpListener::bind(address).await.map_err(|err| format!("cannot listen for the console on {address}: {err}"))?;
    let bound = listener.local_addr().map_err(|err| err.to_string())?;
    let acceptor = tls.map(tls::acceptor).transpose()?;
    let scheme = if acceptor.is_some() { "https" } else { "http" };
    // A reader of the listening line may have gone: the line is for people, never fatal.
    let _ = writeln!(std::io::stdout(), "console on {scheme}://{bound}/");
    tracing::info!(address = %bound, "console serving");
    let console = Console::new(
        QueryApi::new(store.clone(), store.clone(), store.clone()),
        // Status reads only: nothing here appends to the log, so nothing wakes a worker.
        AttributionApi::new(store.clone(), Arc::new(tokio::sync::Notify::new())),
        store.clone(),
        store.clone(),
        store,
        keys,
    );
    let router = router(Arc::new(console));
    tokio::spawn(async move {
        let served = match acceptor {
            Some(acceptor) => axum::serve(tls::TlsListener::new(listener, acceptor), router).await,
            None => axum::serve(listener, router).await,
        };
        if let Err(err) = served {
            tracing::error!(error = %err, "the console stopped");
        }
    });
    Ok(())
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
