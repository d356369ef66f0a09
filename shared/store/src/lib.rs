//! Storage for Touchstone: one trait, [`Store`], that every backend implements, and the
//! conformance suite that holds them to it.
//!
//! - [`Store`]: the contract (dedup, the ingest log, attribution state, rollups, report reads).
//! - [`embedded`]: the embedded backend on fjall, an LSM store in a local folder, for
//!   `touchstone dev` and single-node use.
//! - [`cql`]: the ScyllaDB / Cassandra backend, for clusters (schema in `deploy/cql/`,
//!   rendered by [`cql_schema`]).
//! - [`conformance`]: the suite, generic over [`Store`], run once per backend.
//!
//! The layout is time-partitioned in every backend: each table is keyed by tenant, its
//! natural key and a time bucket, so that reads are range scans within one partition.

pub mod conformance;
pub mod cql;
pub mod cql_schema;
pub mod embedded;
mod support;

use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use std::collections::HashMap;
use std::time::Duration;
use touchstone_core::attribution::{Conversion, ConversionFact, Messages};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{AppEvent, Millis, OrderRecord, Record, Touch};
use touchstone_core::rollup::{Cell, Cells, Granularity, Tally};

pub use cql::{CqlOptions, CqlStore};
pub use embedded::EmbeddedStore;

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or timed out; the same call may succeed later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// A compare-and-set lost: someone else saved this tenant's config first.
    #[error("configuration of tenant {tenant:?} changed concurrently; read it again and retry")]
    Conflict { tenant: String },
    /// An attribution commit found the shard's processed position moved: another worker
    /// committed that shard first (this one lost its lease). Its step is discarded.
    #[error("log shard {shard} was committed by another worker; read it again")]
    Fenced { shard: u32 },
    /// Stored bytes that do not decode: a bug or a damaged store.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Any other backend failure; retrying will not help.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether the same call may succeed if retried later.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Conflict { .. } | StoreError::Fenced { .. } => true,
            StoreError::Corrupt(_) | StoreError::Backend(_) => false,
        }
    }
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

/// How many shards the ingest log is split into. Each tenant's entries go to one shard
/// ([`log_shard`]), each shard has its own positions and is processed by one attribution
/// worker at a time (under a lease), so workers split the tenants between them.
/// Changing it changes where tenants live: it is part of the stored format.
pub const LOG_SHARDS: u32 = 16;

/// The log shard of a tenant: FNV-1a of its name, stable across processes and releases.
pub fn log_shard(tenant: &str) -> u32 {
    let hash = tenant.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193));
    hash % LOG_SHARDS
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
}

#[derive(Debug, Clone, PartialEq, Eq)]
// Almost every entry is a record; boxing it to shrink the rare `Recompute` is not worth it.
#[allow(clippy::large_enum_variant)]
pub enum LogPayload {
    /// A newly accepted record.
    Record(Record),
    /// Recompute this tenant's whole history (its config changed, or an operator asked).
    Recompute { tenant: String },
    /// A position that holds nothing to process (a backend may hand out positions that end
    /// up empty, as the CQL one does for duplicates). Returned only as the last entry of a
    /// read, so that committing it moves the processed position past such positions.
    Nothing,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogStatus {
    /// The last position appended or reserved (0 when the shard never had an entry).
    pub head: u64,
    /// The last position whose effects attribution has committed.
    pub processed: u64,
    /// `appended_at` of the oldest entry after `processed`, if any.
    pub oldest_pending_at: Option<Millis>,
}

/// A customer's rows with `from <= ts <= to` (inclusive), for the batched reads.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CustomerSpan {
    pub tenant: String,
    pub customer_id: String,
    pub from: Millis,
    pub to: Millis,
}

/// Names one conversion row: one per tenant, goal and key (order id or event id).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ConversionKey {
    pub tenant: String,
    pub goal_id: String,
    pub key: String,
}

impl ConversionKey {
    pub fn of(fact: &ConversionFact) -> ConversionKey {
        ConversionKey { tenant: fact.tenant.clone(), goal_id: fact.goal_id.clone(), key: fact.key.clone() }
    }
}

/// How many single reads the default batched reads keep in flight: enough to hide a
/// network round trip, few enough not to flood a cluster from one worker.
pub const READ_CONCURRENCY: usize = 64;

/// One conversion row changing: as stored before (`None`: new) and after (`None`: gone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionChange {
    pub old: Option<Conversion>,
    pub new: Option<Conversion>,
}

/// A change to one rollup counter, for the hour holding `hour` (and its day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDelta {
    pub tenant: String,
    /// Start of the UTC hour bucket.
    pub hour: Millis,
    pub cell: Cell,
    pub tally: Tally,
}

/// Everything one attribution step writes, applied all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributionCommit {
    /// The log shard the step read; every conversion and delta is of a tenant of it.
    pub shard: u32,
    /// The shard's processed position the step started from. The commit applies only if it
    /// is still the stored one, else [`StoreError::Fenced`]: this fences off a worker that
    /// lost its lease while it worked.
    pub after: u64,
    /// The position the step processed up to (inclusive), `>= after`; equal when it
    /// consumed no log entries.
    pub processed: u64,
    pub conversions: Vec<ConversionChange>,
    /// At most one delta per `(tenant, hour, cell)`.
    pub rollups: Vec<RollupDelta>,
}

/// The storage contract.
///
/// - **Dedup**: a record is accepted once per `(tenant, event_id)` (messages: per
///   `(tenant, msg_hash)`); the first arrival stands, later ones are `Duplicate` and change
///   nothing, also when they arrive concurrently.
/// - **Durability**: when `ingest`, `save_tenant_config`, `append_recompute` or
///   `commit_attribution` return `Ok`, their writes survive a crash of the process.
/// - **Log order**: the log is split into [`LOG_SHARDS`] shards by tenant ([`log_shard`]).
///   Within a shard, accepted records get strictly increasing positions; every entry's record
///   is readable through the read methods before `read_log` returns the entry, and
///   `read_log` never skips a position that may still be filled (it stops before it).
/// - **Atomic commits**: `commit_attribution` applies conversions, rollup deltas and the
///   processed position all together or not at all, so a step that crashed is simply
///   redone; and only if the shard's processed position is still the one the step started
///   from, so two workers can never both commit the same entries.
/// - **Leases**: at most one owner holds a shard's lease at a time; it lapses `ttl` after
///   the last renewal, so a dead worker's shards are taken over.
/// - **Ranges**: time ranges are half-open `[from, to)` unless a method says inclusive;
///   every read returns all matching rows (backends page internally).
/// - **Not found** is an empty result or `None`, never an error.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // ---- ingestion ----

    /// Dedups and stores records, appending the accepted ones to their tenants' log shards
    /// in input order. Returns one outcome per record, in input order.
    async fn ingest(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>>;

    // ---- configuration ----

    /// The tenant's saved config, or [`TenantConfig::defaults`] (version 0) when none is.
    async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig>;

    /// Saves `config` if the stored version is `config.version - 1` (0: none saved), and
    /// appends a `Recompute` entry for the tenant. Returns that entry's position.
    /// [`StoreError::Conflict`] when the stored version differs.
    async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark>;

    /// Appends a `Recompute` entry; returns its position.
    async fn append_recompute(&self, tenant: &str) -> Result<LogMark>;

    /// Tenants that have ingested a record or saved a config.
    async fn tenants(&self) -> Result<Vec<String>>;

    // ---- the ingest log and its workers ----

    async fn log_status(&self, shard: u32) -> Result<LogStatus>;

    /// Up to `limit` entries of `shard` after position `after`, in order and without gaps
    /// (fewer when the next position is still being written).
    async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>>;

    /// Takes the lease of `shard` for `owner`, or renews it if `owner` holds it, until `ttl`
    /// from now. `false` when another owner holds it.
    async fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> Result<bool>;

    /// Gives up `owner`'s lease of `shard` (nothing when someone else holds it).
    async fn release_lease(&self, shard: u32, owner: &str) -> Result<()>;

    /// Marks `worker` alive for `ttl` and returns every live worker, sorted: workers size
    /// their share of the shards by it.
    async fn live_workers(&self, worker: &str, ttl: Duration) -> Result<Vec<String>>;

    // ---- reads for attribution ----

    /// The registered messages among `msg_hashes`.
    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages>;

    /// The customer's touches with `from <= ts <= to` (inclusive), any order.
    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>>;

    /// Every touch of a message, any order.
    async fn message_touches(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Touch>>;

    /// Every status record of an order, any order.
    async fn order_records(&self, tenant: &str, order_id: &str) -> Result<Vec<OrderRecord>>;

    /// Every order status record of the tenant, any order (for recomputes).
    async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>>;

    /// Every app event of the tenant named `name`, any order (for recomputes).
    async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>>;

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>>;

    /// The customer's conversions with `from <= ts <= to` (inclusive), any goal.
    async fn customer_conversions(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>>;

    /// Conversions whose converting record carries `msg_hash` explicitly.
    async fn explicit_conversions(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Conversion>>;

    /// Every conversion of the tenant (for recomputes).
    async fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>>;

    // ---- batched reads for attribution: one call per step, not one per record ----
    // Each returns one result per input, in input order. The defaults run the single reads
    // above, [`READ_CONCURRENCY`] at a time; a backend with local reads does them in one go.

    async fn customer_touches_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Touch>>> {
        concurrently(spans.iter().map(|s| self.customer_touches(&s.tenant, &s.customer_id, s.from, s.to)).collect()).await
    }

    async fn customer_conversions_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Conversion>>> {
        concurrently(spans.iter().map(|s| self.customer_conversions(&s.tenant, &s.customer_id, s.from, s.to)).collect()).await
    }

    /// Status records of each `(tenant, order_id)`.
    async fn order_records_many(&self, orders: &[(String, String)]) -> Result<Vec<Vec<OrderRecord>>> {
        concurrently(orders.iter().map(|(tenant, order_id)| self.order_records(tenant, order_id)).collect()).await
    }

    async fn conversions_many(&self, keys: &[ConversionKey]) -> Result<Vec<Option<Conversion>>> {
        concurrently(keys.iter().map(|k| self.conversion(&k.tenant, &k.goal_id, &k.key)).collect()).await
    }

    /// Applies one attribution step atomically (see the trait docs), removing the shard's
    /// log entries up to `processed`. [`StoreError::Fenced`] when the shard's processed
    /// position is no longer `commit.after`.
    async fn commit_attribution(&self, commit: AttributionCommit) -> Result<()>;

    // ---- reads for reports ----

    /// Rollup counters summed over the buckets of `granularity` starting in `[from, to)`.
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells>;

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>>;

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>>;

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>>;
}

/// Runs the reads, [`READ_CONCURRENCY`] at a time, results in input order. The futures are
/// made up front (they do nothing until polled): a closure inside the stream would trip
/// the `Send` check of `async_trait` methods (rust-lang/rust#64552).
async fn concurrently<T, Fut>(reads: Vec<Fut>) -> Result<Vec<T>>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    futures_util::stream::iter(reads).buffered(READ_CONCURRENCY).try_collect().await
}

/// What crediting many conversions needs, read in a few batched calls
/// ([`credit_inputs_many`]).
#[derive(Debug, Default)]
pub struct CreditInputs {
    /// Per fact, in the order given: the customer's touches within the longest window before it.
    pub touches: Vec<Vec<Touch>>,
    /// Per tenant: the registered messages among all those touches and explicit hashes.
    pub messages: HashMap<String, Messages>,
}

/// [`credit_inputs`] for many facts at once: one batched touch read, one message read per
/// tenant. `configs` must hold the config of every fact's tenant.
pub async fn credit_inputs_many(
    store: &dyn Store,
    configs: &HashMap<String, TenantConfig>,
    facts: &[&ConversionFact],
) -> Result<CreditInputs> {
    let mut spans = Vec::with_capacity(facts.len());
    for fact in facts {
        let config = configs
            .get(&fact.tenant)
            .ok_or_else(|| StoreError::Backend(format!("no config loaded for tenant {:?}", fact.tenant)))?;
        let from = fact.ts.saturating_sub(config.max_window_ms());
        spans.push(CustomerSpan { tenant: fact.tenant.clone(), customer_id: fact.customer_id.clone(), from, to: fact.ts });
    }
    let touches = store.customer_touches_many(&spans).await?;
    let mut hashes: HashMap<&str, Vec<String>> = HashMap::new();
    for (fact, touches) in facts.iter().zip(&touches) {
        let tenant_hashes = hashes.entry(fact.tenant.as_str()).or_default();
        tenant_hashes.extend(touches.iter().map(|t| t.msg_hash.clone()));
        tenant_hashes.extend(fact.explicit_msg_hash.clone());
    }
    let mut messages = HashMap::with_capacity(hashes.len());
    for (tenant, mut tenant_hashes) in hashes {
        tenant_hashes.sort();
        tenant_hashes.dedup();
        messages.insert(tenant.to_owned(), store.messages(tenant, &tenant_hashes).await?);
    }
    Ok(CreditInputs { touches, messages })
}

/// What crediting a conversion needs: the customer's touches within the longest window
/// before it, and the registered messages among those and the explicit one. Used by the
/// attribution engine and by `ExplainConversion`, so both see the same candidates.
pub async fn credit_inputs(
    store: &dyn Store,
    config: &TenantConfig,
    fact: &ConversionFact,
) -> Result<(Vec<Touch>, Messages)> {
    let from = fact.ts.saturating_sub(config.max_window_ms());
    let touches = store.customer_touches(&fact.tenant, &fact.customer_id, from, fact.ts).await?;
    let mut hashes: Vec<String> = touches.iter().map(|t| t.msg_hash.clone()).collect();
    hashes.extend(fact.explicit_msg_hash.clone());
    hashes.sort();
    hashes.dedup();
    let messages = store.messages(&fact.tenant, &hashes).await?;
    Ok((touches, messages))
}
