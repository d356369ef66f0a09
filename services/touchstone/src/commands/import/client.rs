//! Connecting to a running server and describing what went wrong, shared by `import` and
//! `report` (both are plain gRPC clients of the public API).

use std::sync::OnceLock;
use std::time::Duration;
use tonic::metadata::{AsciiMetadataValue, MetadataValue};
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};
pub use touchstone_proto::error::code_name;

/// A connection to a server, every call carrying the API key when one is set.
pub type Connection = InterceptedService<Channel, ApiKey>;

/// The key of `--api-key` / `TOUCHSTONE_API_KEY`, set once by `main`.
static API_KEY: OnceLock<AsciiMetadataValue> = OnceLock::new();

/// Sends `key` with every call of this process; an error if it cannot be a header.
pub fn use_api_key(key: &str) -> Result<(), String> {
    let value: AsciiMetadataValue =
        MetadataValue::try_from(format!("Bearer {}", key.trim())).map_err(|_| "the API key holds characters no header can carry".to_owned())?;
    let _ = API_KEY.set(value);
    Ok(())
}

/// The CA of `--tls-ca` / `TOUCHSTONE_TLS_CA`, set once by `main`.
static TLS_CA: OnceLock<tonic::transport::Certificate> = OnceLock::new();

/// Trusts the PEM CA certificate at `path` for https:// servers.
pub fn use_tls_ca(path: &std::path::Path) -> Result<(), String> {
    let pem = std::fs::read(path).map_err(|err| format!("cannot read the TLS CA {}: {err}", path.display()))?;
    let _ = TLS_CA.set(tonic::transport::Certificate::from_pem(pem));
    Ok(())
}

/// Adds `authorization: Bearer <key>` to each call, when a key is set.
#[derive(Clone, Default)]
pub struct ApiKey(Option<AsciiMetadataValue>);

impl tonic::service::Interceptor for ApiKey {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request.metadata_mut().insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// Replies can be large (a message report for a big tenant); tonic's default 4 MiB
/// limit would turn a big report into an error.
pub const MAX_REPLY_BYTES: usize = 256 * 1024 * 1024;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A failed call to the server: either it could not be reached or it answered with an error.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid server address {url}: {reason}")]
    BadAddress { url: String, reason: String },
    /// No answer: `transient` when the connection failed or broke (a server restarting), not
    /// when it never could work (a certificate no one trusts, TLS against plaintext).
    #[error("cannot reach touchstone at {url}: {reason}")]
    Unreachable { url: String, reason: String, transient: bool },
    /// The server answered with an error status: `INVALID_ARGUMENT: from must be before to`;
    /// `retry_after` is its RetryInfo, when it has one.
    #[error("{}: {}", code_name(*.code), .message)]
    Status { code: Code, message: String, retry_after: Option<Duration> },
}

impl ClientError {
    /// Sorts a status into "the server said no" and "the connection failed": tonic reports
    /// a transport failure as `UNAVAILABLE` with the transport error as its source, while a
    /// server's own `UNAVAILABLE` (storage down) carries none.
    pub fn from_status(url: &str, status: Status) -> ClientError {
        let source = std::error::Error::source(&status);
        if status.code() == Code::Unavailable
            && let Some(source) = source
        {
            return unreachable(url, error_chain(source));
        }
        // A plaintext client talking to a TLS listener gets a broken HTTP/2 exchange, which
        // tonic reports as INTERNAL, UNKNOWN or CANCELLED with the transport's words (which
        // of them depends on timing): say what it means.
        let transport = ["h2 protocol error", "transport error", "operation was canceled"].iter().any(|words| status.message().contains(words));
        let broken_h2 = transport && matches!(status.code(), Code::Internal | Code::Unknown | Code::Cancelled);
        if broken_h2 && url.starts_with("http://") {
            let reason = format!(
                "no gRPC answer over plain HTTP/2 ({}): if the server speaks TLS, use https://{}",
                status.message(),
                url.trim_start_matches("http://")
            );
            return ClientError::Unreachable { url: url.to_owned(), reason, transient: false };
        }
        if status.code() == Code::Unimplemented {
            let message = format!("{url} does not serve this call. {WHO_SERVES_WHAT}");
            return ClientError::Status { code: Code::Unimplemented, message, retry_after: None };
        }
        let retry_after = {
            use tonic_types::StatusExt as _;
            status.get_details_retry_info().and_then(|info| info.retry_delay)
        };
        ClientError::Status { code: status.code(), message: status.message().to_owned(), retry_after }
    }

    /// When a failure may pass by itself: how long the server asked to wait (zero: it did
    /// not say); `None` when the same call will fail the same way.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            ClientError::BadAddress { .. } | ClientError::Unreachable { transient: false, .. } => None,
            ClientError::Unreachable { transient: true, .. } => Some(Duration::ZERO),
            ClientError::Status { code, retry_after, .. } => match code {
                // Storage or the server down for a moment; lost a race; a server stopping.
                Code::Unavailable | Code::Aborted => Some(retry_after.unwrap_or_default()),
                // Over a rate or shed: RetryInfo says when. A message too large has none.
                Code::ResourceExhausted => *retry_after,
                _ => None,
            },
        }
    }
}

/// A transport failure at `url`: transient unless it is about certificates.
fn unreachable(url: &str, reason: String) -> ClientError {
    let certificate = ["certificate", "native certs", "tls handshake"].iter().any(|words| reason.to_ascii_lowercase().contains(words));
    let reason = with_tls_hint(url, reason);
    ClientError::Unreachable { url: url.to_owned(), reason, transient: !certificate }
}

/// How long client commands keep retrying failures that may pass (`--retry-for`).
static RETRY_FOR: OnceLock<Duration> = OnceLock::new();
pub const DEFAULT_RETRY_FOR: Duration = Duration::from_secs(60);

pub fn use_retry_for(bound: Duration) {
    let _ = RETRY_FOR.set(bound);
}

/// Backoff between attempts when the server named no wait: doubling from half a second,
/// at most 8 s.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
const MAX_BACKOFF: Duration = Duration::from_secs(8);

/// The retries of one operation: a run of failures that may pass is waited out, with
/// backoff and a line on stderr each time, for at most `--retry-for` from its first failure.
pub struct Retries {
    what: String,
    bound: Duration,
    failing_since: Option<std::time::Instant>,
    attempts: u32,
    /// Failures waited out in all, over every run.
    pub retried: u32,
}

impl Retries {
    /// Retries of `what` (a file name, "waiting for attribution"), as stderr names it.
    pub fn new(what: &str) -> Retries {
        Retries::bounded(what, RETRY_FOR.get().copied().unwrap_or(DEFAULT_RETRY_FOR))
    }

    fn bounded(what: &str, bound: Duration) -> Retries {
        Retries { what: what.to_owned(), bound, failing_since: None, attempts: 0, retried: 0 }
    }

    /// After a failure: waits for the next attempt and returns, or gives the error back when
    /// it will not pass or the failures have lasted `--retry-for`.
    pub async fn wait(&mut self, error: ClientError) -> Result<(), ClientError> {
        let Some(asked) = error.retry_after() else { return Err(error) };
        let since = *self.failing_since.get_or_insert_with(std::time::Instant::now);
        let backoff = FIRST_BACKOFF.saturating_mul(1 << self.attempts.min(4)).min(MAX_BACKOFF);
        let delay = asked.max(backoff);
        if since.elapsed() + delay > self.bound {
            return Err(error);
        }
        eprintln!(
            "{}: {error}; retrying in {:.1} s (failing for {:.0} s; gives up after {} s, --retry-for)",
            self.what,
            delay.as_secs_f64(),
            since.elapsed().as_secs_f64(),
            self.bound.as_secs()
        );
        tokio::time::sleep(delay).await;
        self.attempts += 1;
        self.retried += 1;
        Ok(())
    }

    /// After a success: the next failure starts a new run.
    pub fn succeeded(&mut self) {
        self.failing_since = None;
        self.attempts = 0;
    }
}

/// Which process to point a command at, for a server that answered UNIMPLEMENTED.
pub const WHO_SERVES_WHAT: &str = "`touchstone dev` serves every command; in a cluster, `touchstone ingest` (port 50051 \
by default) serves imports and `badges import`, `touchstone query` (50053) serves reports and `badges timeline|trophy-case|stats|watch`, \
and every process answers `import --wait`'s status calls";

/// Opens a channel to `url` and checks the server is there, so that an unreachable server is
/// one clear error before any work starts.
/// A bare `host:port` is taken as `http://host:port`.
pub async fn connect(url: &str) -> Result<Connection, ClientError> {
    let address = if url.contains("://") { url.to_owned() } else { format!("http://{url}") };
    let mut endpoint = Endpoint::from_shared(address.clone())
        .map_err(|err| ClientError::BadAddress { url: url.to_owned(), reason: error_chain(&err) })?
        .connect_timeout(CONNECT_TIMEOUT);
    if address.starts_with("https://") {
        // `--tls-ca` names the one CA to trust (a private one); without it, the system's
        // roots, as a browser would (SSL_CERT_FILE and SSL_CERT_DIR are honoured).
        let tls = match TLS_CA.get().cloned() {
            Some(ca) => tonic::transport::ClientTlsConfig::new().ca_certificate(ca),
            None => tonic::transport::ClientTlsConfig::new().with_native_roots(),
        };
        endpoint = endpoint.tls_config(tls).map_err(|err| ClientError::BadAddress { url: url.to_owned(), reason: error_chain(&err) })?;
    }
    let channel = endpoint.connect().await.map_err(|err| unreachable(&address, error_chain(&err)))?;
    Ok(InterceptedService::new(channel, ApiKey(API_KEY.get().cloned())))
}

/// `reason`, and what to do when it may be a certificate no trusted CA signed.
fn with_tls_hint(url: &str, mut reason: String) -> String {
    let certificate = ["certificate", "native certs"].iter().any(|words| reason.contains(words));
    if url.starts_with("https://") && TLS_CA.get().is_none() && certificate {
        reason.push_str(" (the system's CA certificates were trusted: if a private CA signed the server's, pass it with --tls-ca or TOUCHSTONE_TLS_CA)");
    }
    reason
}

/// An error and its sources, joined: tonic's own message ("transport error") says little.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_statuses_print_as_code_and_message() {
        let err = ClientError::from_status("http://x", Status::invalid_argument("from must be before to"));
        assert_eq!(err.to_string(), "INVALID_ARGUMENT: from must be before to");
    }

    #[test]
    fn a_server_side_unavailable_is_not_a_connection_failure() {
        let err = ClientError::from_status("http://x", Status::unavailable("storage unavailable: timeout"));
        assert_eq!(err.to_string(), "UNAVAILABLE: storage unavailable: timeout");
    }

    #[test]
    fn what_may_pass_is_retried_and_what_will_not_is_not() {
        use touchstone_core::error::{ErrorKind, Reason};
        use touchstone_proto::error::ApiError;
        let status = |error: ApiError| ClientError::from_status("http://x", Status::from(error));
        let storage = status(ApiError::named(ErrorKind::Unavailable, Reason::new("STORAGE_UNAVAILABLE"), "down"));
        assert_eq!(storage.retry_after(), Some(touchstone_proto::error::RETRY_AFTER), "the server's RetryInfo");
        let rate = ApiError::RateLimited { tenant: "t".into(), message: "slow down".into(), retry_after: Duration::from_millis(300) };
        assert_eq!(status(rate).retry_after(), Some(Duration::from_millis(300)));
        assert_eq!(status(ApiError::TooLarge("big".into())).retry_after(), None, "the same call is always too large");
        assert_eq!(status(ApiError::bad_field("tenant", "empty")).retry_after(), None);
        assert_eq!(unreachable("http://x", "connection refused".into()).retry_after(), Some(Duration::ZERO));
        assert_eq!(unreachable("https://x", "invalid peer certificate: UnknownIssuer".into()).retry_after(), None);
    }

    #[tokio::test]
    async fn retries_wait_out_a_run_of_failures_for_their_bound_and_no_longer() {
        let down = || ClientError::Unreachable { url: "u".into(), reason: "connection refused".into(), transient: true };
        let mut retries = Retries::bounded("test", Duration::from_secs(2));
        let started = std::time::Instant::now();
        retries.wait(down()).await.expect("0.5 s");
        retries.wait(down()).await.expect("1 s more");
        assert!(started.elapsed() >= Duration::from_millis(1_500), "backoff doubles");
        let given_up = retries.wait(down()).await.expect_err("2 s more would pass the bound");
        assert!(given_up.to_string().contains("connection refused"), "{given_up}");
        retries.succeeded();
        retries.wait(down()).await.expect("a new run of failures");
        assert_eq!(retries.retried, 3);
        let refused = ClientError::Status { code: Code::InvalidArgument, message: "bad".into(), retry_after: None };
        assert!(retries.wait(refused).await.is_err(), "never retried");
    }

    #[test]
    fn every_code_has_its_grpc_name() {
        for value in 0..=16 {
            let code = Code::from_i32(value);
            let name = code_name(code);
            assert!(name.chars().all(|c| c.is_ascii_uppercase() || c == '_'), "{name}");
        }
        assert_eq!(code_name(Code::FailedPrecondition), "FAILED_PRECONDITION");
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_in_the_error() {
        // Port 1 on localhost: nothing listens there, the connection is refused at once.
        let err = connect("http://127.0.0.1:1").await.unwrap_err();
        assert!(err.to_string().starts_with("cannot reach touchstone at http://127.0.0.1:1: "), "{err}");
    }

    #[tokio::test]
    async fn a_malformed_address_is_refused_before_connecting() {
        let err = connect("not a url").await.unwrap_err();
        assert!(matches!(err, ClientError::BadAddress { .. }), "{err}");
    }
}
