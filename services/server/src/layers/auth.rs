//! The tower layer that checks an API key on every RPC.
//!
//! It reads `authorization: Bearer <key>` (or `x-api-key`), answers UNAUTHENTICATED for a
//! missing, unknown or revoked key and PERMISSION_DENIED for a key without a scope the
//! method needs (`touchstone_proto::auth::scopes_for`), and passes the key's `Principal` to
//! the services, which refuse another tenant's data once the request is decoded. Health and
//! reflection stay open (probes and `grpcurl list` need no key).

use crate::keys::{KeyRing, refused};
use crate::layers::{BoxFuture, take_ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;
use tonic::codegen::http;
use touchstone_core::error::{ErrorKind, Reason};
use touchstone_proto::auth::{Principal, Scope, scopes_for};

#[derive(Clone)]
pub struct AuthLayer {
    keys: Option<Arc<KeyRing>>,
}

impl AuthLayer {
    pub fn new(keys: Option<Arc<KeyRing>>) -> AuthLayer {
        AuthLayer { keys }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;

    fn layer(&self, inner: S) -> Auth<S> {
        Auth { inner, keys: self.keys.clone() }
    }
}

#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    keys: Option<Arc<KeyRing>>,
}

impl<S, B> tower::Service<http::Request<B>> for Auth<S>
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

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if let Some(keys) = &self.keys
            && let Some(needed) = scopes_for(request.uri().path())
        {
            match admit(keys, request.headers(), request.uri().path(), needed) {
                Ok(principal) => {
                    request.extensions_mut().insert(principal);
                }
                Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
            }
        }
        // The clone that was made ready is the one to call (tower's rule for `call`).
        let mut inner = take_ready(&mut self.inner);
        Box::pin(inner.call(request))
    }
}

/// The key a request presents: `authorization: Bearer <key>` or `x-api-key: <key>`.
pub fn presented_key(headers: &http::HeaderMap) -> Option<&str> {
    let bearer = headers.get(http::header::AUTHORIZATION).and_then(|value| value.to_str().ok()).and_then(|value| value.strip_prefix("Bearer "));
    bearer.or_else(|| headers.get("x-api-key").and_then(|value| value.to_str().ok())).map(str::trim)
}

/// The caller's principal, if its key is live and has one of `needed`.
fn admit(keys: &KeyRing, headers: &http::HeaderMap, path: &str, needed: &[Scope]) -> Result<Principal, Status> {
    let key = presented_key(headers).ok_or_else(|| {
        let message = "this server needs an API key: send `authorization: Bearer tsk_...` (the CLI: --api-key or TOUCHSTONE_API_KEY)";
        refused(ErrorKind::Unauthenticated, Reason::new("API_KEY_MISSING"), message)
    })?;
    admit_key(keys, key, path, needed)
}

/// The principal of `key`, if it is live and has one of the scopes `what` needs.
pub fn admit_key(keys: &KeyRing, key: &str, what: &str, needed: &[Scope]) -> Result<Principal, Status> {
    let principal = keys.check(key)?;
    if !needed.iter().any(|scope| principal.scopes.contains(scope)) {
        let needed: Vec<&str> = needed.iter().map(|scope| scope.name()).collect();
        let reason = Reason::new("SCOPE_MISSING").with("key_id", principal.key_id.as_str()).with("scopes", needed.join(","));
        let message = format!("API key {} lacks the scope {what} needs: one of {}", principal.key_id, needed.join(", "));
        return Err(refused(ErrorKind::PermissionDenied, reason, message));
    }
    Ok(principal)
}
