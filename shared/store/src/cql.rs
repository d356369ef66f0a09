//! The ScyllaDB / Cassandra backend: [`CqlStore`], on the tables of `deploy/cql/` (see the
//! README there for each table's key and the query that reads it).
//!
//! A cluster gives no multi-partition transactions, so every guarantee of [`Store`] is built
//! from single-partition steps that are safe to repeat, with compare-and-set (LWT) only
//! where processes race:
//!
//! - **Ingest** (`cql/log.rs`): positions are reserved per log shard by compare-and-set on
//!   `log_heads`; each record is written to its position as an *intent* (payload, no
//!   outcome) before dedup decides, by LWT on `dedup`, which arrival wins. The dedup row
//!   names the winner's log position, so after a crash anyone can finish the job: a log
//!   reader that finds an intent older than [`CqlOptions::intent_timeout`] runs the same
//!   dedup LWT, writes the record's rows if that position won, and sets the outcome. A
//!   reserved position that never got a row is marked `skipped` by LWT after the same
//!   timeout, which also stops a late writer from filling it (its insert is not applied).
//! - **Commits** (`cql/steps.rs`): the body of a step (conversion changes, rollup deltas) is
//!   stored first, then one LWT on `shard_progress` moves the processed position and names
//!   the step, which fences off a worker that lost its lease. Applying the step comes after;
//!   a process that reads a shard whose stored step it has not applied itself applies it
//!   again first. Re-applying is exact: rollup deltas are rows keyed by the step id, summed
//!   on read (no counters), and conversion rows are written with the step's own timestamp,
//!   so a late re-apply of an older step never overwrites a newer one.
//! - **Reads** (`cql/rows.rs`): every table is partitioned by tenant, natural key and a time
//!   bucket; the `buckets` table lists the buckets that hold rows, so open-ended reads visit
//!   only those. Reads are paged.

mod log;
mod rows;
mod statements;
mod steps;

use crate::support::{encode, lock, now_millis};

use crate::cql_schema::{self, SchemaParams};
use crate::{
    AttributionCommit, IngestOutcome, LOG_SHARDS, LogEntry, LogMark, LogStatus, Result, Store, StoreError,
};
use async_trait::async_trait;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::errors::{
    DbError, ExecutionError, IntoRowsResultError, MaybeFirstRowError, NewSessionError, NextRowError,
    PagerExecutionError, PrepareError, RequestAttemptError, RowsError, SchemaAgreementError,
};
use scylla::policies::retry::DefaultRetryPolicy;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use serde::de::DeserializeOwned;
use statements::Statements;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{AppEvent, Millis, OrderRecord, Record, Touch};
use touchstone_core::rollup::{Cells, Granularity};

pub use scylla::statement::{Consistency, SerialConsistency};

/// How many requests one call keeps in flight at once.
const CONCURRENCY: usize = 64;

/// Where and how to connect, and the schema parameters applied at connect.
#[derive(Debug, Clone)]
pub struct CqlOptions {
    /// Contact points, `host:port`.
    pub nodes: Vec<String>,
    pub keyspace: String,
    /// Used only when the keyspace is created.
    pub replication_factor: u32,
    /// TTL of the time-partitioned tables.
    pub retention_seconds: u64,
    /// Of every read and write (default `LOCAL_QUORUM`: a write that returned is seen by
    /// every later read, in the local datacenter).
    pub consistency: Consistency,
    /// Of every compare-and-set (default `LOCAL_SERIAL`).
    pub serial_consistency: SerialConsistency,
    /// Client-side limit of one request, retries included.
    pub request_timeout: Duration,
    /// How long a log reader waits on a position that is reserved but not (or not fully)
    /// written before it finishes or skips it itself: longer than any ingest call takes.
    pub intent_timeout: Duration,
}

impl CqlOptions {
    pub fn new(nodes: Vec<String>, keyspace: impl Into<String>) -> CqlOptions {
        CqlOptions {
            nodes,
            keyspace: keyspace.into(),
            replication_factor: 1,
            retention_seconds: cql_schema::DEFAULT_RETENTION_SECONDS,
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            request_timeout: Duration::from_secs(30),
            intent_timeout: Duration::from_secs(10),
        }
    }
}

/// The [`Store`] on ScyllaDB or Cassandra. Cheap to clone: clones share the session.
#[derive(Clone)]
pub struct CqlStore {
    inner: Arc<Inner>,
}

struct Inner {
    session: Session,
    statements: Statements,
    options: CqlOptions,
    /// Per shard, the last step this process knows to be applied (see `cql/steps.rs`).
    applied: Mutex<HashMap<u32, steps::StepMark>>,
    /// Log positions a reader found unfinished (reserved without a row, or an intent), and
    /// when this process first saw each: measured on our own clock, not the writer's.
    stalls: Mutex<HashMap<(u32, u64), Instant>>,
}

impl CqlStore {
    /// Creates or updates the keyspace and tables of `deploy/cql/` (every statement is
    /// `IF NOT EXISTS`, so this is a no-op on an up-to-date keyspace) and waits for schema
    /// agreement. Run once per deployment (`touchstone migrate`), not by every process at
    /// start: concurrent schema changes from several clients are what clusters without
    /// Raft-managed schema handle worst.
    pub async fn migrate(options: &CqlOptions) -> Result<()> {
        let params = SchemaParams {
            keyspace: options.keyspace.clone(),
            replication_factor: options.replication_factor,
            retention_seconds: options.retention_seconds,
        };
        let mut schema = Vec::new();
        for (_, cql) in cql_schema::MIGRATIONS {
            schema.extend(cql_schema::render(cql, &params).map_err(|e| StoreError::Backend(e.to_string()))?);
        }
        let session = open_session(options).await?;
        let tablets = has_tablets(&session).await;
        for statement in &schema {
            let statement = match statement.starts_with("CREATE KEYSPACE") && tablets {
                // The log protocol, dedup and leases rely on LWT, which tablets keyspaces of
                // some ScyllaDB versions refuse; Cassandra refuses the option itself.
                true => format!("{statement} AND tablets = {{'enabled': false}}"),
                false => statement.clone(),
            };
            session.query_unpaged(statement, ()).await.map_err(cql_error)?;
        }
        session.await_schema_agreement().await.map_err(cql_error)?;
        tracing::info!(keyspace = %options.keyspace, statements = schema.len(), "schema applied");
        Ok(())
    }

    /// Connects to a migrated keyspace ([`CqlStore::migrate`]), prepares every statement
    /// (which fails if a table is missing) and creates the per-shard rows the
    /// compare-and-sets start from.
    pub async fn connect(options: CqlOptions) -> Result<CqlStore> {
        let session = open_session(&options).await?;
        let statements = Statements::prepare(&session, &options.keyspace, options.serial_consistency).await?;
        let inner = Inner {
            session,
            statements,
            options,
            applied: Mutex::new(HashMap::new()),
            stalls: Mutex::new(HashMap::new()),
        };
        let starts = (0..LOG_SHARDS).flat_map(|shard| {
            let shard = shard_value(shard);
            [
                inner.lwt(&inner.statements.init_log_head, (shard,)),
                inner.lwt(&inner.statements.init_progress, (shard,)),
            ]
        });
        all(starts).await?;
        tracing::info!(keyspace = %inner.options.keyspace, nodes = ?inner.options.nodes, "cql store connected");
        Ok(CqlStore { inner: Arc::new(inner) })
    }

    /// Test support: commits `commit` like [`Store::commit_attribution`] but stops before
    /// applying it, as a process that crashed right after the compare-and-set would.
    #[doc(hidden)]
    pub async fn commit_without_applying(&self, commit: AttributionCommit) -> Result<()> {
        self.inner.commit(commit, false).await
    }

    /// Test support: writes `record`'s log intent and stops, as an ingest call that crashed
    /// right after would.
    #[doc(hidden)]
    pub async fn append_intent_only(&self, record: Record) -> Result<LogMark> {
        self.inner.append_intent_only(record).await
    }

    /// Test support: reserves `count` positions of `shard` and writes nothing there, as an
    /// ingest call that crashed right after reserving would. Returns the first.
    #[doc(hidden)]
    pub async fn reserve_only(&self, shard: u32, count: u64) -> Result<u64> {
        self.inner.reserve_only(shard, count).await
    }
}

/// Whether the server is a ScyllaDB that knows tablets: only there does this table (with
/// this column) exist. Any error means no.
async fn has_tablets(session: &Session) -> bool {
    session.query_unpaged("SELECT initial_tablets FROM system_schema.scylla_keyspaces LIMIT 1", ()).await.is_ok()
}

/// A session with the consistency, retry policy and timeout of `options`.
async fn open_session(options: &CqlOptions) -> Result<Session> {
    let profile = ExecutionProfile::builder()
        .consistency(options.consistency)
        .serial_consistency(Some(options.serial_consistency))
        .retry_policy(Arc::new(DefaultRetryPolicy::new()))
        .request_timeout(Some(options.request_timeout))
        .build();
    SessionBuilder::new()
        .known_nodes(&options.nodes)
        .default_execution_profile_handle(profile.into_handle())
        .build()
        .await
        .map_err(cql_error)
}

impl Inner {
    /// Runs a statement whose rows (if any) are not needed.
    async fn run(&self, statement: &PreparedStatement, values: impl SerializeRow) -> Result<QueryResult> {
        self.session.execute_unpaged(statement, values).await.map_err(cql_error)
    }

    /// Runs a write with the given write timestamp (microseconds).
    async fn run_at(&self, statement: &PreparedStatement, timestamp: i64, values: impl SerializeRow) -> Result<()> {
        let mut statement = statement.clone();
        statement.set_timestamp(Some(timestamp));
        self.session.execute_unpaged(&statement, values).await.map_err(cql_error)?;
        Ok(())
    }

    /// Every row of a read, fetched page by page.
    async fn rows<R>(&self, statement: &PreparedStatement, values: impl SerializeRow) -> Result<Vec<R>>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata> + Send + 'static,
    {
        let pager = self.session.execute_iter(statement.clone(), values).await.map_err(cql_error)?;
        pager.rows_stream::<R>().map_err(cql_error)?.map_err(cql_error).try_collect().await
    }

    /// The first row of a read that returns at most one.
    async fn row<R>(&self, statement: &PreparedStatement, values: impl SerializeRow) -> Result<Option<R>>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata>,
    {
        let result = self.run(statement, values).await?.into_rows_result().map_err(cql_error)?;
        result.maybe_first_row::<R>().map_err(cql_error)
    }

    /// Runs a compare-and-set.
    async fn lwt(&self, statement: &PreparedStatement, values: impl SerializeRow) -> Result<Lwt> {
        Lwt::from_result(self.run(statement, values).await?)
    }

    fn applied(&self) -> MutexGuard<'_, HashMap<u32, steps::StepMark>> {
        lock(&self.applied)
    }

    fn stalls(&self) -> MutexGuard<'_, HashMap<(u32, u64), Instant>> {
        lock(&self.stalls)
    }
}

/// The answer of a compare-and-set: whether it applied and, when not, the current values of
/// the columns it compared (or the whole existing row, for `IF NOT EXISTS`).
struct Lwt {
    applied: bool,
    current: HashMap<String, CqlValue>,
}

impl Lwt {
    fn from_result(result: QueryResult) -> Result<Lwt> {
        let rows = result.into_rows_result().map_err(cql_error)?;
        let names: Vec<String> = rows.column_specs().iter().map(|spec| spec.name().to_owned()).collect();
        let Some(row) = rows.maybe_first_row::<Row>().map_err(cql_error)? else {
            return Err(StoreError::Backend("a conditional statement returned no row".to_owned()));
        };
        let mut current: HashMap<String, CqlValue> = names
            .into_iter()
            .zip(row.columns)
            .filter_map(|(name, value)| value.map(|value| (name, value)))
            .collect();
        let applied = match current.remove("[applied]") {
            Some(CqlValue::Boolean(applied)) => applied,
            other => return Err(StoreError::Backend(format!("a conditional statement answered [applied] = {other:?}"))),
        };
        Ok(Lwt { applied, current })
    }

    fn bigint(&self, column: &str) -> Option<i64> {
        match self.current.get(column) {
            Some(CqlValue::BigInt(value)) => Some(*value),
            _ => None,
        }
    }

    fn int(&self, column: &str) -> Option<i32> {
        match self.current.get(column) {
            Some(CqlValue::Int(value)) => Some(*value),
            _ => None,
        }
    }

    fn text(&self, column: &str) -> Option<&str> {
        match self.current.get(column) {
            Some(CqlValue::Text(value) | CqlValue::Ascii(value)) => Some(value),
            _ => None,
        }
    }
}

/// Runs `futures` with at most [`CONCURRENCY`] in flight; their outputs in input order.
///
/// The futures are boxed and collected before anything runs, so the returned future holds
/// no iterator adapters (whose closures' lifetimes would keep it from being `Send`).
fn all<'a, T, F>(futures: impl IntoIterator<Item = F>) -> impl Future<Output = Result<Vec<T>>> + Send + 'a
where
    T: Send + 'a,
    F: Future<Output = Result<T>> + Send + 'a,
{
    let futures: Vec<BoxFuture<'a, Result<T>>> = futures.into_iter().map(|future| Box::pin(future) as BoxFuture<'a, _>).collect();
    futures_util::stream::iter(futures).buffered(CONCURRENCY).try_collect()
}

/// A write of any statement, boxed so that writes of different tables run in one [`all`].
type Write<'a> = BoxFuture<'a, Result<()>>;

#[async_trait]
impl Store for CqlStore {
    async fn ingest(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
        self.inner.ingest(records).await
    }

    async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        self.inner.tenant_config(tenant).await
    }

    async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        self.inner.save_tenant_config(config).await
    }

    async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        self.inner.append_recompute(tenant).await
    }

    async fn tenants(&self) -> Result<Vec<String>> {
        self.inner.tenants().await
    }

    async fn log_status(&self, shard: u32) -> Result<LogStatus> {
        self.inner.log_status(shard).await
    }

    async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        self.inner.read_log(shard, after, limit).await
    }

    async fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> Result<bool> {
        let s = &self.inner.statements;
        let (shard, ttl) = (shard_value(shard), ttl_seconds(ttl));
        let taken = self.inner.lwt(&s.insert_lease_if_absent, (shard, owner, ttl)).await?;
        if taken.applied {
            return Ok(true);
        }
        if taken.text("owner") != Some(owner) {
            return Ok(false);
        }
        Ok(self.inner.lwt(&s.renew_lease_if_owner, (ttl, owner, shard, owner)).await?.applied)
    }

    async fn release_lease(&self, shard: u32, owner: &str) -> Result<()> {
        self.inner.lwt(&self.inner.statements.delete_lease_if_owner, (shard_value(shard), owner)).await?;
        Ok(())
    }

    async fn live_workers(&self, worker: &str, ttl: Duration) -> Result<Vec<String>> {
        const POOL: &str = "attribution";
        let s = &self.inner.statements;
        self.inner.run(&s.insert_live_worker, (POOL, worker, ttl_seconds(ttl))).await?;
        let mut live: Vec<(String,)> = self.inner.rows(&s.select_live_workers, (POOL,)).await?;
        live.sort();
        Ok(live.into_iter().map(|(worker,)| worker).collect())
    }

    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        self.inner.messages(tenant, msg_hashes).await
    }

    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        self.inner.customer_touches(tenant, customer_id, from, to).await
    }

    async fn message_touches(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Touch>> {
        self.inner.message_touches(tenant, msg_hash).await
    }

    async fn order_records(&self, tenant: &str, order_id: &str) -> Result<Vec<OrderRecord>> {
        self.inner.order_records(tenant, order_id).await
    }

    async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        self.inner.tenant_orders(tenant).await
    }

    async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        self.inner.tenant_events_named(tenant, name).await
    }

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        self.inner.conversion(tenant, goal_id, key).await
    }

    async fn customer_conversions(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        self.inner.customer_conversions(tenant, customer_id, from, to).await
    }

    async fn explicit_conversions(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Conversion>> {
        self.inner.explicit_conversions(tenant, msg_hash).await
    }

    async fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>> {
        self.inner.conversions_between(tenant, Millis::MIN, Millis::MAX).await
    }

    async fn commit_attribution(&self, commit: AttributionCommit) -> Result<()> {
        self.inner.commit(commit, true).await
    }

    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        self.inner.rollups(tenant, granularity, from, to).await
    }

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        self.inner.touches_between(tenant, from, to).await
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        self.inner.events_between(tenant, from, to).await
    }

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        self.inner.conversions_between(tenant, from, to).await
    }
}

/// A shard as the `int` column it is stored in.
fn shard_value(shard: u32) -> i32 {
    debug_assert!(shard < LOG_SHARDS);
    shard as i32
}

/// A log position as the `bigint` column it is stored in. Positions count records, so they
/// stay far below `i64::MAX`.
fn seq_value(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A TTL in whole seconds, rounded up: a lease or a live mark never lapses early.
fn ttl_seconds(ttl: Duration) -> i32 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable {what}: {e}")))
}

/// Sorts a driver error into transient ([`StoreError::Unavailable`]: the cluster could not
/// be reached or answered in time, the same call may succeed later) or not.
fn cql_error(error: impl Into<CqlError>) -> StoreError {
    let error = error.into();
    let text = error.text;
    if error.transient { StoreError::Unavailable(text) } else { StoreError::Backend(text) }
}

/// A driver error, its text and whether it is transient.
struct CqlError {
    text: String,
    transient: bool,
}

impl CqlError {
    fn new(error: &impl std::fmt::Display, transient: bool) -> CqlError {
        CqlError { text: error.to_string(), transient }
    }
}

fn attempt_is_transient(error: &RequestAttemptError) -> bool {
    match error {
        RequestAttemptError::UnableToAllocStreamId | RequestAttemptError::BrokenConnectionError(_) => true,
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::ReadFailure { .. }
                | DbError::WriteFailure { .. }
                | DbError::RateLimitReached { .. }
                | DbError::TruncateError
        ),
        // The driver's enum is non-exhaustive: anything else (bad requests, protocol errors)
        // will not get better by retrying.
        _ => false,
    }
}

impl From<ExecutionError> for CqlError {
    fn from(error: ExecutionError) -> CqlError {
        let transient = match &error {
            ExecutionError::ConnectionPoolError(_)
            | ExecutionError::RequestTimeout(_)
            | ExecutionError::SchemaAgreementError(_)
            | ExecutionError::MetadataError(_) => true,
            ExecutionError::LastAttemptError(attempt) => attempt_is_transient(attempt),
            ExecutionError::PrepareError(prepare) => prepare_is_transient(prepare),
            // Non-exhaustive: bad queries, empty plans and the like are not transient.
            _ => false,
        };
        CqlError::new(&error, transient)
    }
}

fn prepare_is_transient(error: &PrepareError) -> bool {
    match error {
        PrepareError::ConnectionPoolError(_) => true,
        PrepareError::AllAttemptsFailed { first_attempt } => attempt_is_transient(first_attempt),
        _ => false,
    }
}

impl From<PrepareError> for CqlError {
    fn from(error: PrepareError) -> CqlError {
        let transient = prepare_is_transient(&error);
        CqlError::new(&error, transient)
    }
}

impl From<PagerExecutionError> for CqlError {
    fn from(error: PagerExecutionError) -> CqlError {
        let transient = match &error {
            PagerExecutionError::PrepareError(prepare) => prepare_is_transient(prepare),
            PagerExecutionError::NextPageError(page) => next_page_is_transient(page),
            PagerExecutionError::SchemaAgreementError(_) | PagerExecutionError::MetadataError(_) => true,
            _ => false,
        };
        CqlError::new(&error, transient)
    }
}

fn next_page_is_transient(error: &scylla::errors::NextPageError) -> bool {
    use scylla::errors::{NextPageError, RequestError};
    match error {
        NextPageError::RequestFailure(request) => match request {
            RequestError::ConnectionPoolError(_) | RequestError::RequestTimeout(_) => true,
            RequestError::LastAttemptError(attempt) => attempt_is_transient(attempt),
            _ => false,
        },
        _ => false,
    }
}

impl From<NextRowError> for CqlError {
    fn from(error: NextRowError) -> CqlError {
        let transient = match &error {
            NextRowError::NextPageError(page) => next_page_is_transient(page),
            _ => false,
        };
        CqlError::new(&error, transient)
    }
}

impl From<NewSessionError> for CqlError {
    fn from(error: NewSessionError) -> CqlError {
        // No node answered or the cluster is starting: worth retrying. Bad options are
        // reported the same way; they are visible in the text.
        CqlError::new(&error, true)
    }
}

impl From<SchemaAgreementError> for CqlError {
    fn from(error: SchemaAgreementError) -> CqlError {
        CqlError::new(&error, true)
    }
}

/// Rows that do not have the types the statements ask for: a schema mismatch.
macro_rules! permanent_cql_errors {
    ($($error:ty),+) => {
        $(impl From<$error> for CqlError {
            fn from(error: $error) -> CqlError {
                CqlError::new(&error, false)
            }
        })+
    };
}

permanent_cql_errors!(
    IntoRowsResultError,
    MaybeFirstRowError,
    RowsError,
    scylla::deserialize::TypeCheckError
);
