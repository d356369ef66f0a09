//! The storage contract, one role trait per file, and [`Store`], their sum.
//!
//! | role | file | used by |
//! |---|---|---|
//! | [`IngestLog`] | `ingest_log.rs` | ingest (dedup and append), attribution (read the log, status) |
//! | [`ConfigStore`] | `config_store.rs` | config service, attribution, query |
//! | [`Coordination`] | `coordination.rs` | attribution workers (shard leases, membership) |
//! | [`RecordReads`] | `record_reads.rs` | what explaining a conversion reads: the query service's `ExplainConversion` |
//! | [`AttributionState`] | `attribution_state.rs` | the attribution engine: its reads and its atomic commit |
//! | [`ReportReads`] | `report_reads.rs` | the query service: rollups and raw rows of a range |
//! | [`BadgeStore`] | `badges.rs` | badge definitions (config service) and a customer's badge reads (query) |
//!
//! What holds for every role:
//! - **Durability**: when a write returns `Ok`, it survives a crash of the process.
//! - **Ranges** are half-open `[from, to)` unless a method says inclusive; every read
//!   returns all matching rows (backends page internally).
//! - **Not found** is an empty result or `None`, never an error.

mod attribution_state;
mod badges;
mod config_store;
mod coordination;
mod ingest_log;
mod record_reads;
mod report_reads;

pub use attribution_state::{
    AttributionCommit, AttributionState, BadgeRowChange, BadgeStatDelta, CampaignDelta, ConversionChange, CustomerMonths, FoldWrites,
    Exposure, HoldingChange, OrderStateWrite, PendingDelta, RollupDelta, SegmentWrite, UnregisteredMark,
};
pub use badges::{BadgeFeedEntry, BadgeInputs, BadgeRows, BadgeStore, FeedChange, FeedPosition, StatLevel};
pub use config_store::ConfigStore;
pub use coordination::{Coordination, Lane, customer_lane};
pub use ingest_log::{IngestLog, IngestOutcome, LOG_SHARDS, LogEntry, LogMark, LogPayload, LogPositions, LogStatus, SetAside, TraceParent, log_shard};
pub use record_reads::RecordReads;

use crate::Result;
pub use report_reads::{CellKinds, ReportReads};

/// Every role: what a backend implements, and what a process that plays every role holds.
pub trait Store: IngestLog + ConfigStore + Coordination + AttributionState + ReportReads + BadgeStore {}

impl<T: IngestLog + ConfigStore + Coordination + AttributionState + ReportReads + BadgeStore> Store for T {}

/// FNV-1a (32 bit) of `text`: stable across processes and releases, so stored layouts
/// (log shards, lanes, state slots, dedup buckets) may be placed by it. Here, not with the
/// backends' support code, because the contract places tenants and customers by it.
pub(crate) fn fnv1a(text: &str) -> u32 {
    text.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// How many single reads a default batched read keeps in flight: enough to hide a network
/// round trip, few enough not to flood a cluster from one process.
const READ_CONCURRENCY: usize = 64;

/// Runs the reads, [`READ_CONCURRENCY`] at a time, results in input order. The futures are
/// made up front (they do nothing until polled): a closure inside the stream would trip
/// the `Send` check of `async_trait` methods (rust-lang/rust#64552).
pub(crate) async fn concurrently<T, Fut>(reads: Vec<Fut>) -> Result<Vec<T>>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    use futures_util::{StreamExt, TryStreamExt};
    futures_util::stream::iter(reads).buffered(READ_CONCURRENCY).try_collect().await
}
