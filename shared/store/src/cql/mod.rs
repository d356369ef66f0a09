//! The ScyllaDB / Cassandra backend: [`CqlStore`], on the tables of `deploy/cql/` (see the
//! README there for each table's key and the query that reads it).
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | options, connecting and migrating, the session helpers every role uses |
//! | `statements.rs` | every CQL statement, prepared once at connect |
//! | `layout.rs` | how values map onto tables (shards, chunks, buckets, conversion rows), the row writes of ingest and commits |
//! | `errors.rs` | driver errors sorted into transient and permanent |
//! | `schema.rs` | the schema of `deploy/cql/` rendered into statements (`touchstone migrate` applies them) |
//! | `ingest_log.rs`, `config_store.rs`, `coordination.rs`, `record_reads.rs`, `attribution_state.rs`, `report_reads.rs` | one role of the contract each |
//!
//! A cluster gives no multi-partition transactions, so every guarantee of the contract is
//! built from single-partition steps that are safe to repeat, with compare-and-set (LWT) only
//! where processes race:
//!
//! - **Ingest** (`ingest_log.rs`): one process at a time appends to a log shard, under a
//!   lease taken by compare-and-set on `log_shards`, which gives it an epoch. It dedups with
//!   plain reads of `dedup_marks` (a mark counts when its epoch committed), writes marks and
//!   log rows tagged with its epoch, and commits the new head with one more compare-and-set
//!   that also frees the lease: two Paxos rounds per call and shard, none per record. A
//!   lapsed lease is taken over with its holder's epoch recorded as abandoned, so nothing
//!   it wrote counts. Committed rows are intents until the call has written the records'
//!   rows; a reader finishes an intent older than [`CqlOptions::intent_timeout`] itself.
//! - **Commits** (`attribution_state.rs`): the body of a step (conversion changes, rollup
//!   deltas of message, campaign and pending counters, set-aside entries) is stored first,
//!   then one LWT on `shard_progress` moves the processed position and names the step, which
//!   fences off a worker that lost its lease. Applying the step comes after; a process that
//!   resumes a lane whose stored step it has not applied itself applies it again first.
//!   Re-applying is exact: rollup deltas (all three kinds) are rows keyed by the step id,
//!   summed on read (no counters), and conversion and set-aside rows are written with the
//!   step's own timestamp, so a late re-apply of an older step never overwrites a newer one.
//! - **Reads** (`record_reads.rs`, `attribution_state.rs`, `report_reads.rs`): every table
//!   is partitioned by tenant, natural key and a time bucket; the `buckets` table lists the
//!   buckets that hold rows, so open-ended reads visit only those. Reads are paged.
//!
//! Imports go one way: the role files use `mod.rs`, `layout.rs`, `statements.rs` and
//! `errors.rs`, which use no role file; the one import between roles is `config_store.rs`
//! using the log appends of `ingest_log.rs`. Where one role's protocol needs another's (log
//! reads apply a committed step first, appends check the processed position), it calls a
//! method that the other's file adds to `Inner`.

mod attribution_state;
mod badges;
mod config_store;
mod coordination;
mod errors;
mod fold_state;
mod ingest_log;
mod layout;
mod record_reads;
mod report_reads;
pub mod schema;
mod statements;

use crate::support::lock;
use crate::{LOG_SHARDS, Result, StoreError};
use errors::cql_error;
use futures_util::future::BoxFuture;
use futures_util::{StreamExt, TryStreamExt};
use layout::shard_value;
use schema::SchemaParams;
use scylla::client::execution_profile::ExecutionProfile;
use scylla::client::session::Session;
use scylla::client::session_builder::SessionBuilder;
use scylla::deserialize::row::DeserializeRow;
use scylla::policies::retry::DefaultRetryPolicy;
use scylla::response::query_result::QueryResult;
use scylla::serialize::row::SerializeRow;
use scylla::statement::prepared::PreparedStatement;
use scylla::value::{CqlValue, Row};
use statements::Statements;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

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
    /// How long an ingest process holds a log shard before another may take it over, and
    /// how long a log reader waits on an intent before it finishes the intent itself: longer
    /// than any ingest call takes.
    pub intent_timeout: Duration,
    /// Lanes a log shard's attribution is split into ([`Lane`](crate::Lane)): how many
    /// workers can share one tenant (default [`DEFAULT_LANES`]). Part of the stored format,
    /// so fixed for a keyspace by the first process that connects to it (or `migrate`):
    /// [`CqlStore::connect`] uses the keyspace's, whatever this says.
    pub lanes: u32,
}

/// Lanes a log shard has on CQL unless the keyspace was made with others: two, so that a
/// tenant's work spreads over two workers. Every lane reads its whole shard and pays a
/// step's costs per partition for its part, so lanes cost the store more the more there
/// are: measured on 207k records with two workers, 4 lanes cost 0.46 CQL requests a record
/// (5,259 records/s to final reports), 2 lanes 0.26-0.28 (7,655-8,437), 1 lane 0.20
/// (10,575, one worker a tenant).
pub const DEFAULT_LANES: u32 = 2;

/// The most lanes a shard may have (each is a progress row and a lease).
pub const MAX_LANES: u32 = 64;

impl CqlOptions {
    pub fn new(nodes: Vec<String>, keyspace: impl Into<String>) -> CqlOptions {
        CqlOptions {
            nodes,
            keyspace: keyspace.into(),
            replication_factor: 1,
            retention_seconds: schema::DEFAULT_RETENTION_SECONDS,
            consistency: Consistency::LocalQuorum,
            serial_consistency: SerialConsistency::LocalSerial,
            request_timeout: Duration::from_secs(30),
            intent_timeout: Duration::from_secs(10),
            lanes: DEFAULT_LANES,
        }
    }
}

/// Every role of the [`Store`](crate::Store) on ScyllaDB or Cassandra. Cheap to clone:
/// clones share the session.
#[derive(Clone)]
pub struct CqlStore {
    inner: Arc<Inner>,
}

/// The session, the prepared statements and what this process remembers of the shards.
/// Each role file adds the methods of its role here.
struct Inner {
    session: Session,
    statements: Statements,
    options: CqlOptions,
    /// Per shard, the last step this process knows to be applied (see `attribution_state.rs`).
    applied: Mutex<HashMap<u32, StepMark>>,
    /// Log positions a reader found to be intents, and when this process first saw each:
    /// measured on our own clock, not the writer's.
    stalls: Mutex<HashMap<(u32, u64), Instant>>,
    /// Per log shard with lanes, the log chunks below which this process deleted them all.
    trimmed: Mutex<HashMap<u32, u64>>,
    /// `buckets` rows this process wrote, and when (see `layout.rs`).
    recent_buckets: Mutex<HashMap<layout::BucketRow, Instant>>,
    /// Tenants this process has written to `tenants` (a tenant's row is written once).
    known_tenants: Mutex<std::collections::HashSet<String>>,
    /// Registered messages this process has read, by tenant, then msg_hash: a registration
    /// never changes (the first one stands), so a step reads each message once.
    registered: Mutex<HashMap<String, touchstone_core::attribution::Messages>>,
    /// Who this process is, as the owner of log shard leases.
    owner: String,
    /// Per log shard, whose turn it is among this process's appends.
    append_turns: Vec<tokio::sync::Mutex<()>>,
}

/// A shard's progress as stored in `shard_progress`: what `attribution_state.rs` commits
/// and what the `applied` map of [`Inner`] remembers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct StepMark {
    processed: u64,
    /// 0: no step committed yet.
    step_id: i64,
    /// Write timestamp (µs) of the step's rows.
    timestamp: i64,
    parts: i32,
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
        let mut rendered = Vec::new();
        for (_, cql) in schema::MIGRATIONS {
            rendered.extend(schema::render(cql, &params).map_err(|e| StoreError::Backend(e.to_string()))?);
        }
        let session = open_session(options).await?;
        let tablets = has_tablets(&session).await;
        for statement in &rendered {
            let statement = match statement.starts_with("CREATE KEYSPACE") && tablets {
                // The log protocol, dedup and leases rely on LWT, which tablets keyspaces of
                // some ScyllaDB versions refuse; Cassandra refuses the option itself.
                true => format!("{statement} AND tablets = {{'enabled': false}}"),
                false => statement.clone(),
            };
            session.query_unpaged(statement, ()).await.map_err(cql_error)?;
        }
        session.await_schema_agreement().await.map_err(cql_error)?;
        let lanes = format!("INSERT INTO {}.store_settings (name, value) VALUES ('lanes', ?) IF NOT EXISTS", options.keyspace);
        session.query_unpaged(lanes, (i64::from(options.lanes),)).await.map_err(cql_error)?;
        tracing::info!(keyspace = %options.keyspace, statements = rendered.len(), "schema applied");
        Ok(())
    }

    /// Connects to a migrated keyspace ([`CqlStore::migrate`]), prepares every statement
    /// (which fails if a table is missing) and creates the per-shard rows the
    /// compare-and-sets start from.
    pub async fn connect(options: CqlOptions) -> Result<CqlStore> {
        let session = open_session(&options).await?;
        let statements = Statements::prepare(&session, &options.keyspace, options.serial_consistency).await?;
        let mut inner = Inner {
            session,
            statements,
            options,
            applied: Mutex::new(HashMap::new()),
            stalls: Mutex::new(HashMap::new()),
            trimmed: Mutex::new(HashMap::new()),
            recent_buckets: Mutex::new(HashMap::new()),
            known_tenants: Mutex::default(),
            registered: Mutex::default(),
            owner: owner_id(),
            append_turns: (0..LOG_SHARDS).map(|_| tokio::sync::Mutex::new(())).collect(),
        };
        if inner.options.lanes == 0 || inner.options.lanes > MAX_LANES {
            return Err(StoreError::Backend(format!("{} lanes a shard: from 1 to {MAX_LANES}", inner.options.lanes)));
        }
        // The keyspace's lanes: this process's, if it is the first to say.
        let set = inner.lwt(&inner.statements.init_setting, ("lanes", i64::from(inner.options.lanes))).await?;
        if !set.applied {
            let stored = set.bigint("value").and_then(|lanes| u32::try_from(lanes).ok()).filter(|lanes| (1..=MAX_LANES).contains(lanes));
            inner.options.lanes = stored.ok_or_else(|| StoreError::Corrupt(format!("the keyspace's lanes setting is {:?}", set.bigint("value"))))?;
        }
        let shards = (0..LOG_SHARDS).map(|shard| inner.lwt(&inner.statements.init_log_shard, (shard_value(shard),)));
        let lanes = crate::Lane::all(inner.options.lanes).map(|lane| inner.lwt(&inner.statements.init_progress, (shard_value(lane.number()),)));
        all(shards.chain(lanes).collect::<Vec<_>>()).await?;
        tracing::info!(keyspace = %inner.options.keyspace, nodes = ?inner.options.nodes, "cql store connected");
        Ok(CqlStore { inner: Arc::new(inner) })
    }
}

/// Hooks that stop a protocol half-way, as a process that crashed there would.
#[cfg(feature = "testsuite")]
impl CqlStore {
    /// Test support: commits `commit` like
    /// [`AttributionState::commit_attribution`](crate::AttributionState::commit_attribution)
    /// but stops before applying it, as a process that crashed right after the
    /// compare-and-set would.
    #[doc(hidden)]
    pub async fn commit_without_applying(&self, commit: crate::AttributionCommit) -> Result<()> {
        self.inner.commit(commit, false).await
    }

    /// Test support: drops the store's keyspace (a test's own), so that a run's keyspaces
    /// do not pile up in the node's memory.
    #[doc(hidden)]
    pub async fn drop_keyspace(&self) -> Result<()> {
        let statement = format!("DROP KEYSPACE IF EXISTS {}", self.inner.options.keyspace);
        self.inner.session.query_unpaged(statement, ()).await.map_err(cql_error)?;
        Ok(())
    }

    /// Test support: appends and commits `record` as an intent and stops, as an ingest call
    /// that crashed right after its commit would. `None` when it was a duplicate.
    #[doc(hidden)]
    pub async fn append_intent_only(&self, record: touchstone_core::model::Record) -> Result<Option<crate::LogMark>> {
        self.inner.append_intent_only(record).await
    }

    /// Test support: takes the records' log shard and writes their dedup marks and log rows,
    /// then stops before committing, as an ingest call that crashed there would.
    #[doc(hidden)]
    pub async fn append_uncommitted(&self, records: Vec<touchstone_core::model::Record>) -> Result<()> {
        self.inner.append_uncommitted(records).await
    }
}

/// A name for this process as a lease owner: host-independent, unique enough (process id,
/// clock, and a counter for several stores in one process).
fn owner_id() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    format!("ingest-{}-{nanos:x}-{n}", std::process::id())
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

    fn applied(&self) -> MutexGuard<'_, HashMap<u32, StepMark>> {
        lock(&self.applied)
    }

    fn trimmed(&self) -> MutexGuard<'_, HashMap<u32, u64>> {
        lock(&self.trimmed)
    }

    fn stalls(&self) -> MutexGuard<'_, HashMap<(u32, u64), Instant>> {
        lock(&self.stalls)
    }

    fn recent_buckets(&self) -> MutexGuard<'_, HashMap<layout::BucketRow, Instant>> {
        lock(&self.recent_buckets)
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

    fn text(&self, column: &str) -> Option<&str> {
        match self.current.get(column) {
            Some(CqlValue::Text(value) | CqlValue::Ascii(value)) => Some(value),
            _ => None,
        }
    }
}

/// Times a role method of this backend ([`crate::support::timed`]).
async fn timed<T>(op: &'static str, call: impl Future<Output = Result<T>>) -> Result<T> {
    crate::support::timed("cql", op, call).await
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
