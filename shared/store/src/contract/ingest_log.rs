//! [`IngestLog`]: dedup, and the log that carries accepted records from ingestion to
//! attribution.

use crate::Result;
use async_trait::async_trait;
use touchstone_core::model::{Millis, Record};

/// How many shards the ingest log is split into. Each tenant's entries go to one shard
/// ([`log_shard`]), each shard has its own positions and is processed by its lanes
/// ([`Lane`](crate::Lane)), each by one attribution worker at a time (under a lease), so
/// workers split the tenants, and each tenant's customers, between them.
/// Changing it changes where tenants live: it is part of the stored format.
pub const LOG_SHARDS: u32 = 16;

/// The log shard of a tenant: FNV-1a of its name, stable across processes and releases.
pub fn log_shard(tenant: &str) -> u32 {
    crate::contract::fnv1a(tenant) % LOG_SHARDS
}

/// What ingesting one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// First arrival of its `(tenant, event_id)` (messages: `(tenant, msg_hash)`): stored
    /// and appended to the ingest log.
    Accepted,
    /// Seen before: nothing changed.
    Duplicate,
}

/// A position in one shard of the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogMark {
    pub shard: u32,
    pub seq: u64,
}

/// One entry of the ingest log, the queue between ingestion and attribution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogEntry {
    /// Position in its shard of the log: strictly increasing, starting at 1.
    pub seq: u64,
    /// When it was appended (epoch ms, the store's clock), for lag reporting.
    pub appended_at: Millis,
    pub payload: LogPayload,
    /// The trace of the call that appended it, when that call was traced: the attribution
    /// step that processes the entry links its span to it.
    pub trace: Option<TraceParent>,
}

/// A W3C trace context (`traceparent`): the trace, the span within it and the flags. Kept
/// with the log entries an ingest call appends, so a record's trace goes from the caller
/// through ingestion to the attribution step that credits it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub flags: u8,
}

impl TraceParent {
    /// Its size as stored after an entry's payload.
    pub const STORED_LEN: usize = 25;

    /// `None` for the all-zero ids W3C calls invalid.
    pub fn new(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> Option<TraceParent> {
        (trace_id != [0; 16] && span_id != [0; 8]).then_some(TraceParent { trace_id, span_id, flags })
    }

    pub fn to_bytes(self) -> [u8; Self::STORED_LEN] {
        let mut bytes = [0; Self::STORED_LEN];
        bytes[..16].copy_from_slice(&self.trace_id);
        bytes[16..24].copy_from_slice(&self.span_id);
        bytes[24] = self.flags;
        bytes
    }

    /// The context stored as `bytes`; `None` when there is none (or it is not one).
    pub fn from_bytes(bytes: &[u8]) -> Option<TraceParent> {
        let bytes: &[u8; Self::STORED_LEN] = bytes.try_into().ok()?;
        let (trace_id, rest) = bytes.split_at(16);
        let (span_id, flags) = rest.split_at(8);
        TraceParent::new(trace_id.try_into().ok()?, span_id.try_into().ok()?, flags[0])
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
// Almost every entry is a record; boxing it to shrink the rare `Recompute` is not worth it.
#[allow(clippy::large_enum_variant)]
pub enum LogPayload {
    /// A newly accepted record.
    Record(Record),
    /// Recompute this tenant's whole history (its config changed, or an operator asked).
    Recompute { tenant: String },
    /// Derive every customer's badge entries of this tenant again (its badge definitions
    /// changed); conversions are not touched.
    RederiveBadges { tenant: String },
    /// A position that holds nothing to process (a backend may hand out positions that end
    /// up empty, as the CQL one does for duplicates). Returned only as the last entry of a
    /// read, so that committing it moves the processed position past such positions.
    Nothing,
}

impl LogPayload {
    /// The tenant the entry is of; `None` for an empty position.
    pub fn tenant(&self) -> Option<&str> {
        match self {
            LogPayload::Record(record) => Some(record.tenant()),
            LogPayload::Recompute { tenant } | LogPayload::RederiveBadges { tenant } => Some(tenant),
            LogPayload::Nothing => None,
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStatus {
    /// The last position appended or reserved (0 when the shard never had an entry).
    pub head: u64,
    /// The last position whose effects attribution has committed and are readable, in
    /// every lane of the shard.
    pub processed: u64,
    /// `appended_at` of the oldest entry after `processed`, if any.
    pub oldest_pending_at: Option<Millis>,
    /// Entries of this shard that attribution set aside ([`SetAside`]), ever.
    pub set_aside: u64,
}

/// A shard's positions as flow control reads them ([`IngestLog::log_positions`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogPositions {
    pub head: u64,
    /// The lowest of its lanes' processed positions.
    pub processed: u64,
    /// The sum of its lanes' processed positions: it grows whenever any lane commits, so
    /// attribution is seen moving while the lowest lane waits its turn.
    pub progress: u64,
}

/// A log entry attribution could not process (it failed on it again and again, alone),
/// kept beside the log with the reason, so that one bad entry cannot stall its shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    pub entry: LogEntry,
    /// Why it could not be processed: the error it failed with.
    pub reason: String,
    /// When it was set aside (epoch ms, the worker's clock).
    pub set_aside_at: Millis,
}

/// The ingest log.
///
/// - **Dedup**: a record is accepted once per `(tenant, event_id)` (messages: per
///   `(tenant, msg_hash)`); the first arrival stands, later ones are `Duplicate` and change
///   nothing, also when they arrive concurrently.
/// - **Log order**: the log is split into [`LOG_SHARDS`] shards by tenant ([`log_shard`]).
///   Within a shard, accepted records get strictly increasing positions; every entry's record
///   is readable through the read roles before `read_log` returns the entry, and `read_log`
///   never skips a position that may still be filled (it stops before it).
/// - **Durability**: when `ingest` or `append_recompute` return `Ok`, their writes survive
///   a crash of the process.
#[async_trait]
pub trait IngestLog: Send + Sync + 'static {
    /// Dedups and stores records, appending the accepted ones to their tenants' log shards
    /// in input order, each entry with `trace`. Returns one outcome per record, in input
    /// order.
    async fn ingest_traced(&self, records: Vec<Record>, trace: Option<TraceParent>) -> Result<Vec<IngestOutcome>>;

    /// [`IngestLog::ingest_traced`] by a call that is not traced.
    async fn ingest(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
        self.ingest_traced(records, None).await
    }

    /// Appends a `Recompute` entry for the tenant; returns its position.
    async fn append_recompute(&self, tenant: &str) -> Result<LogMark>;

    /// The shard's positions. Reads only: cheap, and safe to call from any process as often
    /// as a client polls.
    async fn log_status(&self, shard: u32) -> Result<LogStatus>;

    /// The shard's head and processed positions alone ([`LogStatus::head`],
    /// [`LogStatus::processed`]), and how far its lanes have got in all: what flow control
    /// polls while attribution catches up, so a backend answers it with a read or two.
    async fn log_positions(&self, shard: u32) -> Result<LogPositions> {
        let status = self.log_status(shard).await?;
        Ok(LogPositions { head: status.head, processed: status.processed, progress: status.processed })
    }

    /// Up to `limit` entries of `shard` after position `after`, in order and without gaps
    /// (fewer when the next position is still being written).
    async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>>;

    /// Up to `limit` of the shard's set-aside entries, the most recently set aside first.
    async fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>>;
}
