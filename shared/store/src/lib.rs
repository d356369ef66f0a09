//! Storage for Touchstone: the contract every backend implements, split into narrow role
//! traits, the backends, and the conformance suite that holds them to it.
//!
//! - [`contract`]: the role traits, one file each ([`IngestLog`], [`ConfigStore`],
//!   [`Coordination`], [`RecordReads`], [`AttributionState`], [`ReportReads`]) and [`Store`],
//!   their sum. A service holds only the roles it uses.
//! - [`embedded`] (feature `embedded`): the fjall backend, an LSM store in a local folder,
//!   for `touchstone dev` and single-node use.
//! - [`cql`] (feature `cql`): the ScyllaDB / Cassandra backend, for clusters (schema in
//!   `deploy/cql/`, rendered by [`cql::schema`]).
//! - [`conformance`] (feature `testsuite`): the suite, one file per role, generic over
//!   [`Store`], run once per backend.
//! - [`error`]: [`StoreError`], sorted into transient and permanent.
//!
//! `embedded/`, `cql/` and `conformance/` mirror `contract/`: one file per role, plus each
//! backend's layout (keys, tables, statements). Every table is keyed by tenant, its natural
//! key and a time bucket, so that reads are range scans within one partition.

pub mod contract;
pub mod error;
#[cfg(any(feature = "embedded", feature = "cql"))]
mod support;

#[cfg(feature = "testsuite")]
pub mod conformance;
#[cfg(feature = "cql")]
pub mod cql;
#[cfg(feature = "embedded")]
pub mod embedded;

pub use contract::*;
pub use error::{Result, StoreError};

/// What one table of a backend has cost since the process opened the store: read
/// operations and bytes, write operations (each key put or removed) and bytes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableUsage {
    pub table: &'static str,
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
}

#[cfg(feature = "cql")]
pub use cql::{CqlOptions, CqlStore};
#[cfg(feature = "embedded")]
pub use embedded::EmbeddedStore;
