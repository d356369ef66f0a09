//! The ingest side of Touchstone: the `IngestService` gRPC API, which validates, dedups and
//! durably stores records ([`ingest`]), and the `ConfigService` API for tenant settings and
//! goals ([`config`]). Both only write; attribution follows the ingest log on its own.

pub mod config;
pub mod ingest;

pub use config::ConfigApi;
pub use ingest::IngestApi;
