//! The ingest side of Touchstone: the `IngestService` gRPC API, which validates, dedups and
//! durably stores records ([`ingest`]), and the `ConfigService` API for tenant settings and
//! goals ([`config`]). Both only write; attribution follows the ingest log on its own.

pub mod backlog;
pub mod config;
pub mod ingest;
pub mod rate;

pub use backlog::Backlog;
pub use config::ConfigApi;
pub use ingest::{IngestApi, STREAM_IDLE_TIMEOUT};

/// The server's clock, epoch ms: when a badge rule was saved or a badge deactivated, and
/// the time of a badge issued without one.
pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
