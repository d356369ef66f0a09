//! How the backend's values map onto the tables of `deploy/cql/`: log shards and chunks,
//! time buckets, the rows a record, a conversion or a rollup delta (message, campaign or
//! pending counters) is stored in, column conversions; the writes of those rows (by ingest
//! and by commits, each with the `buckets` rows they occupy), and the bucket lookups that
//! every read over a range starts from.
//!
//! Tables read by time are partitioned by a time bucket (an hour or a day per tenant, and a
//! UTC month too for rollups); the `buckets` table lists the buckets that hold rows of one
//! `(tenant, table, key)`, so a read over an open range or a whole history visits only
//! partitions that exist. Messages by time also spread each hour over [`TIME_SHARDS`]
//! partitions by a hash of the row's id, so a busy tenant's hour is not one hot partition;
//! a commit's touches, app events and orders go to `records_by_day` a few rows per hour, in
//! a partition per tenant and UTC day ([`records_parts`]). Tables keyed by customer or order put a tenant's rows
//! in [`CUSTOMER_SLOTS`] partitions ([`slot`]), so a commit writes a batch per partition,
//! not a request per customer. The ingest log is cut into chunks of [`CHUNK`] positions per
//! partition.

use super::errors::cql_error;
use super::{Inner, Write, all};
use crate::support::encode;
use crate::{LOG_SHARDS, Result, StoreError};
use scylla::deserialize::row::DeserializeRow;
use scylla::serialize::row::SerializeRow;
use scylla::statement::batch::{Batch, BatchType};
use scylla::statement::prepared::PreparedStatement;
use scylla::value::CqlVarint;
use serde::de::DeserializeOwned;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::str::FromStr;
use std::time::{Duration, Instant};
use touchstone_core::attribution::Conversion;
use touchstone_core::model::{AppEvent, Message, Millis, OrderRecord, Record, Touch};
use touchstone_core::rollup::{CampaignCell, DAY_MS, Granularity, HOUR_MS, Tally};

/// Positions per `log_entries` partition: a partition never grows past this many positions.
pub(super) const CHUNK: u64 = 10_000;

/// The `log_entries` partition of a position.
pub(super) fn chunk(seq: u64) -> i64 {
    seq_value(seq / CHUNK)
}

/// The chunk holding `first`, and the last position of it to read (at most `head`).
pub(super) fn chunk_bounds(first: u64, head: u64) -> (i64, u64) {
    let chunk_no = first / CHUNK;
    (seq_value(chunk_no), ((chunk_no + 1) * CHUNK - 1).min(head))
}

/// A shard, or a lane's number ([`Lane::number`](crate::Lane::number)), as the `int`
/// column it is stored in.
pub(super) fn shard_value(shard: u32) -> i32 {
    debug_assert!(shard < LOG_SHARDS * super::MAX_LANES);
    shard as i32
}

/// A log position as the `bigint` column it is stored in. Positions count records, so they
/// stay far below `i64::MAX`.
pub(super) fn seq_value(seq: u64) -> i64 {
    i64::try_from(seq).unwrap_or(i64::MAX)
}

/// A TTL in whole seconds, rounded up: a lease or a live mark never lapses early.
pub(super) fn ttl_seconds(ttl: Duration) -> i32 {
    let seconds = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    i32::try_from(seconds.max(1)).unwrap_or(i32::MAX)
}

/// `activity_by_customer.kind` of an app event, of an order status record, and of a row of
/// the customer's badge partition as committed (a stored badge event or a derived entry).
pub(super) const ACTIVITY_EVENT: &str = "e";
pub(super) const ACTIVITY_ORDER: &str = "o";
pub(super) const ACTIVITY_BADGE: &str = "b";

pub(super) fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable {what}: {e}")))
}

/// About what a record's row takes in a batch: ids, a name, a few numbers.
const RECORD_ROW_BYTES: usize = 160;

/// How long a process trusts the `buckets` row it wrote, before it writes it again.
const BUCKET_REWRITE: Duration = Duration::from_secs(3600);
/// How many written `buckets` rows a process remembers (cleared when full).
const RECENT_BUCKETS: usize = 200_000;

/// A TTL a day longer than the data's (`retention_seconds`): of `buckets` rows, so that a
/// row written once within [`BUCKET_REWRITE`] outlives every data row it points to, and of
/// abandoned epochs, which must outlive the dedup marks they void.
pub(super) fn outliving_ttl(retention_seconds: u64) -> i32 {
    i32::try_from(retention_seconds.saturating_add(86_400)).unwrap_or(i32::MAX)
}

/// Partitions each hour of `messages_by_time` is spread over.
pub(super) const TIME_SHARDS: i32 = 8;

/// Partitions each day of `conversions_by_time` is spread over: one. Commits write a day's
/// conversions of a step in one batch, so a day is no hot partition, and a step of a
/// history import writes a partition per day it touches, not eight. The `shard` column is
/// kept (always 0) so that busy days can be split again.
pub(super) const CONVERSION_TIME_SHARDS: i32 = 1;

/// Names of bucketed tables, as stored in `buckets.table_name`.
pub(super) mod table {
    pub const MESSAGES_BY_TIME: &str = "messages_by_time";
    pub const RECORDS_BY_DAY: &str = "records_by_day";
    pub const CONVERSIONS_BY_TIME: &str = "conversions_by_time";
    pub const ROLLUP_DELTAS: &str = "rollup_deltas";
    pub const CAMPAIGN_ROLLUP_DELTAS: &str = "campaign_rollup_deltas";
}

/// One row of `buckets`: `bucket` of `table` holds rows of `key` (of the tenant).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct BucketRow {
    pub tenant: String,
    pub table: &'static str,
    pub key: String,
    pub bucket: Millis,
}

impl BucketRow {
    pub(super) fn new(tenant: &str, table: &'static str, key: &str, bucket: Millis) -> BucketRow {
        BucketRow { tenant: tenant.to_owned(), table, key: key.to_owned(), bucket }
    }
}

/// The start of the bucket of `size` holding `ts`.
pub(super) fn bucket(ts: Millis, size: Millis) -> Millis {
    // Saturating: the bucket of a time near `Millis::MIN` would start below it.
    ts.saturating_sub(ts.rem_euclid(size))
}

/// The most clustering keys one read names (`IN ?`): ScyllaDB refuses a query restricting
/// more than 100 (`max_clustering_key_restrictions_per_query`).
pub(super) const IDS_PER_READ: usize = 100;

/// Partitions per tenant of the tables keyed by customer, order or conversion key
/// (`customer_states`, `order_states`, `activity_by_customer`, `badge_holdings`,
/// `conversions`): a commit writes a batch per
/// partition and reads up to [`IDS_PER_READ`] customers a request; a recompute reads them all.
pub(super) const CUSTOMER_SLOTS: i32 = 16;

/// A lane index as stored.
pub(super) fn lane_value(lane: u32) -> i32 {
    lane as i32
}

/// The slot of a customer or order id: FNV-1a, mod [`CUSTOMER_SLOTS`]. Part of the stored
/// format.
pub(super) fn slot(id: &str) -> i32 {
    (crate::contract::fnv1a(id) % CUSTOMER_SLOTS as u32) as i32
}

/// Partitions a tenant's dedup marks are spread over.
pub(super) const DEDUP_BUCKETS: u32 = 16;

/// The `dedup_marks` partition (of its tenant) of an id: FNV-1a of it. Part of the stored
/// format: changing it loses the marks written before.
pub(super) fn dedup_bucket(id: &str) -> i32 {
    (crate::contract::fnv1a(id) % DEDUP_BUCKETS) as i32
}

/// Which of the `shards` partitions of a time bucket a row goes to: FNV-1a of its id.
fn spread(id: &[&str], shards: i32) -> i32 {
    let hash = id.iter().enumerate().fold(0x811c_9dc5_u32, |hash, (i, part)| {
        let separator = if i == 0 { hash } else { (hash ^ 0xff).wrapping_mul(0x0100_0193) };
        part.bytes().fold(separator, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
    });
    (hash % shards.max(1) as u32) as i32
}

pub(super) fn granularity_code(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Hour => "h",
        Granularity::Day => "d",
        Granularity::Month => "m",
    }
}

pub(super) fn parse<T: FromStr>(what: &str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn varint(value: i128) -> CqlVarint {
    CqlVarint::from_signed_bytes_be(value.to_be_bytes().to_vec())
}

pub(super) fn from_varint(value: &CqlVarint) -> Result<i128> {
    let bytes = value.as_signed_bytes_be_slice();
    if bytes.len() > 16 {
        return Err(StoreError::Corrupt(format!("a rollup value of {} bytes", bytes.len())));
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Ok(i128::from_be_bytes(full))
}

/// A row of one of the conversion tables (the key of each), for writing and deleting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ConversionRow {
    Main { tenant: String, goal_id: String, key: String, customer_id: String },
    ByTime { tenant: String, day: Millis, shard: i32, ts: Millis, goal_id: String, key: String, customer_id: String },
}

/// The rows a conversion is stored in: its own and one per index, each a full copy.
pub(super) fn conversion_rows(conversion: &Conversion) -> [ConversionRow; 2] {
    let fact = &conversion.fact;
    let (tenant, goal_id, key, customer_id) = (fact.tenant.clone(), fact.goal_id.clone(), fact.key.clone(), fact.customer_id.clone());
    let shard = spread(&[&goal_id, &key], CONVERSION_TIME_SHARDS);
    [
        ConversionRow::Main { tenant: tenant.clone(), goal_id: goal_id.clone(), key: key.clone(), customer_id: customer_id.clone() },
        ConversionRow::ByTime { tenant, day: bucket(fact.ts, DAY_MS), shard, ts: fact.ts, goal_id, key, customer_id },
    ]
}

/// The buckets a stored conversion occupies.
pub(super) fn conversion_buckets(conversion: &Conversion) -> [BucketRow; 1] {
    let fact = &conversion.fact;
    [BucketRow::new(&fact.tenant, table::CONVERSIONS_BY_TIME, "", bucket(fact.ts, DAY_MS))]
}

/// The `span` (partition) of the rollup rows of `granularity` in the bucket starting at
/// `bucket`: the UTC day of an hour bucket, the UTC month of a day bucket, a month bucket
/// itself. Part of the stored format.
pub(super) fn rollup_span(granularity: Granularity, bucket: Millis) -> Millis {
    match granularity {
        Granularity::Hour => Granularity::Day.bucket(bucket),
        Granularity::Day => Granularity::Month.bucket(bucket),
        Granularity::Month => bucket,
    }
}

/// The `buckets` row (its span) of the rollup rows of `granularity` holding `hour`.
pub(super) fn rollup_bucket(tenant: &str, granularity: Granularity, hour: Millis) -> BucketRow {
    BucketRow::new(tenant, table::ROLLUP_DELTAS, granularity_code(granularity), rollup_span(granularity, granularity.bucket(hour)))
}

/// A rollup delta row to write: `(tenant, granularity, span of bucket)` is its partition.
pub(super) struct RollupRow {
    pub tenant: String,
    pub granularity: Granularity,
    pub bucket: Millis,
    pub cell: Vec<u8>,
    pub tally: Tally,
}

/// The `buckets` row (its span) of the campaign rollup rows of `granularity` holding `hour`.
pub(super) fn campaign_rollup_bucket(tenant: &str, granularity: Granularity, hour: Millis) -> BucketRow {
    BucketRow::new(tenant, table::CAMPAIGN_ROLLUP_DELTAS, granularity_code(granularity), rollup_span(granularity, granularity.bucket(hour)))
}

/// The `cells` blob of `campaign_rollup_deltas` and `pending_deltas`: one step's summed
/// counters of one campaign (or message) in one bucket, one entry per cell.
pub(super) type StoredCells = Vec<(CampaignCell, Tally)>;

/// A campaign rollup delta row to write: `(tenant, granularity, span of bucket)` is its partition,
/// `cells` the encoded [`StoredCells`].
pub(super) struct CampaignRollupRow {
    pub tenant: String,
    pub granularity: Granularity,
    pub bucket: Millis,
    pub campaign_id: String,
    pub cells: Vec<u8>,
}

/// A pending delta row to write: `(tenant, slot of msg_hash)` is its partition, `cells` the
/// encoded [`StoredCells`].
pub(super) struct PendingRow {
    pub tenant: String,
    pub msg_hash: String,
    /// The lane that counted them.
    pub lane: i32,
    /// Start of the UTC hour.
    pub hour: Millis,
    pub cells: Vec<u8>,
}

/// A message from the columns of `messages` or `messages_by_time`.
pub(super) fn message(
    tenant: &str,
    msg_hash: String,
    campaign_id: String,
    channel: &str,
    tags: Option<Vec<String>>,
    sent_at: Millis,
) -> Result<Message> {
    Ok(Message {
        tenant: tenant.to_owned(),
        msg_hash,
        campaign_id,
        channel: parse("message channel", channel)?,
        tags: tags.unwrap_or_default(),
        sent_at,
    })
}

impl Inner {
    /// Writes the rows of newly accepted messages, and which customers have stored badge
    /// events (touches, app events, orders and badge events themselves are indexed by the
    /// commits that process them): their tables and the buckets they occupy. Plain upserts,
    /// so a repeat (a reader finishing a crashed ingest) is harmless. Rows go in a batch per
    /// partition.
    pub(super) async fn write_records(&self, records: &[&Record]) -> Result<()> {
        let s = &self.statements;
        let mut bucket_rows = HashSet::new();
        let mut writes: Vec<Write<'_>> = Vec::new();
        let (mut messages, mut messages_by_time) = (Partitions::default(), Partitions::default());
        let mut badge_customers = Partitions::default();
        let mut seen = HashSet::new();
        for &record in records {
            match record {
                Record::Message(m) => {
                    let hour = bucket(m.sent_at, HOUR_MS);
                    let channel = m.channel.as_str();
                    let slot = slot(&m.msg_hash);
                    let values = (&m.tenant, slot, &m.msg_hash, &m.campaign_id, channel, &m.tags, m.sent_at);
                    messages.add((&m.tenant, slot), values, RECORD_ROW_BYTES);
                    let shard = spread(&[&m.msg_hash], TIME_SHARDS);
                    let by_time = (&m.tenant, hour, shard, m.sent_at, &m.msg_hash, &m.campaign_id, channel, &m.tags);
                    messages_by_time.add((&m.tenant, hour, shard), by_time, RECORD_ROW_BYTES);
                    bucket_rows.insert(BucketRow::new(&m.tenant, table::MESSAGES_BY_TIME, "", hour));
                }
                // Indexed by the commit that processes them (`records_by_day`,
                // `activity_by_customer`).
                Record::Touch(_) | Record::Event(_) | Record::Order(_) => {}
                Record::Badge(b) => {
                    if seen.insert((&b.tenant, &b.customer_id)) {
                        badge_customers.add(&b.tenant, (&b.tenant, &b.customer_id), b.customer_id.len() + 16);
                    }
                }
            }
        }
        writes.extend(messages.batches(self, &s.insert_message, None));
        writes.extend(messages_by_time.batches(self, &s.insert_message_by_time, None));
        writes.extend(badge_customers.batches(self, &s.insert_badge_customer, None));
        writes.extend(self.bucket_writes(bucket_rows));
        all(writes).await?;
        Ok(())
    }

    pub(super) async fn write(&self, statement: &PreparedStatement, values: impl SerializeRow) -> Result<()> {
        self.run(statement, values).await.map(drop)
    }

    /// Writes the `buckets` rows this process did not write within the last
    /// [`BUCKET_REWRITE`], a batch per `(tenant, table, key)` partition. A row lives a day
    /// longer than the data ([`outliving_ttl`]), so it still outlives every data row written
    /// since it was.
    pub(super) fn bucket_writes(&self, rows: impl IntoIterator<Item = BucketRow>) -> Vec<Write<'_>> {
        let mut partitions: HashMap<(String, &'static str, String), Vec<BucketRow>> = HashMap::new();
        {
            let recent = self.recent_buckets();
            for row in rows {
                if recent.get(&row).is_none_or(|written| written.elapsed() >= BUCKET_REWRITE) {
                    partitions.entry((row.tenant.clone(), row.table, row.key.clone())).or_default().push(row);
                }
            }
        }
        let ttl = outliving_ttl(self.options.retention_seconds);
        partitions
            .into_values()
            .map(|rows| -> Write<'_> {
                Box::pin(async move {
                    let values = rows
                        .iter()
                        .map(|row| ((row.tenant.clone(), row.table, row.key.clone(), row.bucket, ttl), row.tenant.len() + row.key.len() + 40))
                        .collect();
                    all(self.partition_batches(&self.statements.insert_bucket, None, values)).await?;
                    let mut recent = self.recent_buckets();
                    if recent.len() + rows.len() > RECENT_BUCKETS {
                        recent.clear();
                    }
                    let now = Instant::now();
                    recent.extend(rows.into_iter().map(|row| (row, now)));
                    Ok(())
                })
            })
            .collect()
    }

    /// The writes of conversion rows (`Some` body: written, `None`: deleted), at the step's
    /// timestamp, a batch per partition and statement.
    pub(super) fn conversion_writes<'a>(&'a self, rows: impl Iterator<Item = (&'a ConversionRow, Option<&'a [u8]>)>, timestamp: i64) -> Vec<Write<'a>> {
        let s = &self.statements;
        let (mut main, mut main_deleted) = (Partitions::default(), Partitions::default());
        let (mut by_time, mut by_time_deleted) = (Partitions::default(), Partitions::default());
        for (row, body) in rows {
            match (row, body) {
                (ConversionRow::Main { tenant, goal_id, key, customer_id }, Some(body)) => {
                    let slot = slot(key);
                    let size = goal_id.len() + key.len() + customer_id.len() + body.len() + 16;
                    main.add((tenant, slot), (tenant, slot, goal_id, key, customer_id, body), size);
                }
                (ConversionRow::Main { tenant, goal_id, key, customer_id }, None) => {
                    let slot = slot(key);
                    main_deleted.add((tenant, slot), (tenant, slot, goal_id, key, customer_id), goal_id.len() + key.len() + customer_id.len() + 16);
                }
                (ConversionRow::ByTime { tenant, day, shard, ts, goal_id, key, customer_id }, Some(body)) => {
                    let size = goal_id.len() + key.len() + customer_id.len() + body.len() + 24;
                    by_time.add((tenant, *day, *shard), (tenant, day, shard, ts, goal_id, key, customer_id, body), size);
                }
                (ConversionRow::ByTime { tenant, day, shard, ts, goal_id, key, customer_id }, None) => {
                    let size = goal_id.len() + key.len() + customer_id.len() + 24;
                    by_time_deleted.add((tenant, *day, *shard), (tenant, day, shard, ts, goal_id, key, customer_id), size);
                }
            }
        }
        let mut writes = main.batches(self, &s.insert_conversion, Some(timestamp));
        writes.extend(main_deleted.batches(self, &s.delete_conversion, Some(timestamp)));
        writes.extend(by_time.batches(self, &s.insert_conversion_by_time, Some(timestamp)));
        writes.extend(by_time_deleted.batches(self, &s.delete_conversion_by_time, Some(timestamp)));
        writes
    }

    /// The writes of rollup delta rows under `step`, at the step's timestamp.
    pub(super) fn rollup_writes<'a>(&'a self, rows: &'a [RollupRow], step: i64, timestamp: i64) -> Vec<Write<'a>> {
        let mut partitions = Partitions::default();
        for row in rows {
            let (tenant, granularity) = (row.tenant.as_str(), granularity_code(row.granularity));
            let span = rollup_span(row.granularity, row.bucket);
            let values = (tenant, granularity, span, row.bucket, &row.cell, step, row.tally.count, varint(row.tally.value_micros));
            partitions.add((tenant, granularity, span), values, row.cell.len() + 40);
        }
        partitions.batches(self, &self.statements.insert_rollup_delta, Some(timestamp))
    }

    /// The writes of campaign rollup delta rows under `step`, at the step's timestamp.
    pub(super) fn campaign_rollup_writes<'a>(
        &'a self,
        rows: &'a [CampaignRollupRow],
        step: i64,
        timestamp: i64,
    ) -> Vec<Write<'a>> {
        let mut partitions = Partitions::default();
        for row in rows {
            let (tenant, granularity) = (row.tenant.as_str(), granularity_code(row.granularity));
            let span = rollup_span(row.granularity, row.bucket);
            let values = (tenant, granularity, span, row.bucket, row.campaign_id.as_str(), step, &row.cells);
            partitions.add((tenant, granularity, span), values, row.campaign_id.len() + row.cells.len() + 40);
        }
        partitions.batches(self, &self.statements.insert_campaign_rollup_delta, Some(timestamp))
    }

    /// The writes of pending delta rows under `step`, at the step's timestamp.
    pub(super) fn pending_writes<'a>(&'a self, rows: &'a [PendingRow], step: i64, timestamp: i64) -> Vec<Write<'a>> {
        let mut partitions = Partitions::default();
        for row in rows {
            let (tenant, msg_hash) = (row.tenant.as_str(), row.msg_hash.as_str());
            let slot = slot(msg_hash);
            let values = (tenant, slot, msg_hash, row.lane, row.hour, step, &row.cells);
            partitions.add((tenant, slot), values, msg_hash.len() + row.cells.len() + 24);
        }
        partitions.batches(self, &self.statements.insert_pending_delta, Some(timestamp))
    }

    /// Unlogged batches of `statement`, one run per row of `rows` (its values and about how
    /// many bytes they take), all at `timestamp` when given. The rows must be of one
    /// partition: a batch then costs no more than a single write, and is applied as one.
    fn partition_batches<'a, V>(
        &'a self,
        statement: &'a PreparedStatement,
        timestamp: Option<i64>,
        rows: Vec<(V, usize)>,
    ) -> Vec<Write<'a>>
    where
        V: SerializeRow + Send + Sync + 'a,
    {
        // Bounded so a busy bucket does not make one oversized request. 128 KiB is where
        // ScyllaDB starts warning about a batch (it refuses past 1 MiB); Cassandra does not
        // check the size of a batch of one partition.
        const BATCH_ROWS: usize = 1_000;
        const BATCH_BYTES: usize = 128 << 10;
        let mut chunks: Vec<Vec<V>> = Vec::new();
        let mut bytes = 0;
        for (values, size) in rows {
            match chunks.last_mut() {
                Some(chunk) if chunk.len() < BATCH_ROWS && bytes + size <= BATCH_BYTES => chunk.push(values),
                _ => {
                    chunks.push(vec![values]);
                    bytes = 0;
                }
            }
            bytes += size;
        }
        chunks
            .into_iter()
            .map(|values| {
                let mut batch = Batch::new(BatchType::Unlogged);
                batch.set_is_idempotent(true);
                batch.set_timestamp(timestamp);
                for _ in &values {
                    batch.append_statement(statement.clone());
                }
                Box::pin(async move { self.session.batch(&batch, values).await.map(drop).map_err(cql_error) }) as Write<'a>
            })
            .collect()
    }

    /// The buckets of `(tenant, table, key)` starting in `[first, last]` that hold rows.
    pub(super) async fn buckets(&self, tenant: &str, table: &str, key: &str, first: Millis, last: Millis) -> Result<Vec<Millis>> {
        if first > last {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> = self.rows(&self.statements.select_buckets, (tenant, table, key, first, last)).await?;
        Ok(rows.into_iter().map(|(bucket,)| bucket).collect())
    }

    /// The `(bucket, shard)` partitions of `table`, by buckets of `size` (an hour or a day)
    /// of `shards` partitions each, that may hold rows with `from <= ts < to`.
    pub(super) async fn time_partitions(&self, tenant: &str, table: &str, (size, shards): (Millis, i32), from: Millis, to: Millis) -> Result<Vec<(Millis, i32)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let buckets = self.buckets(tenant, table, "", bucket(from, size), to - 1).await?;
        Ok(buckets.into_iter().flat_map(|start| (0..shards).map(move |shard| (start, shard))).collect())
    }
}

/// What a `records_by_day` row holds: its `kind` column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RecordKind {
    Touch,
    Event,
    Order,
}

impl RecordKind {
    fn code(self) -> &'static str {
        match self {
            RecordKind::Touch => "t",
            RecordKind::Event => "e",
            RecordKind::Order => "o",
        }
    }
}

/// Records a `records_by_day` row holds at most (about 50 KiB of touches).
const RECORDS_PER_PART: usize = 500;

/// One `records_by_day` row of a step: `(tenant, hour, kind, part, records)`.
pub(super) type RecordsPart = (String, Millis, &'static str, i32, Vec<u8>);

/// A step's touches, app events and order records as `records_by_day` rows: by tenant,
/// hour and kind, in step order, [`RECORDS_PER_PART`] a row. The same records always give
/// the same rows, so a step applied again rewrites them.
pub(super) fn records_parts(records: &[Record]) -> Result<Vec<RecordsPart>> {
    type Hours<'a, T> = BTreeMap<(&'a str, Millis), Vec<&'a T>>;
    let (mut touches, mut events, mut orders): (Hours<'_, Touch>, Hours<'_, AppEvent>, Hours<'_, OrderRecord>) = Default::default();
    for record in records {
        match record {
            Record::Touch(t) => touches.entry((&t.tenant, bucket(t.ts, HOUR_MS))).or_default().push(t),
            Record::Event(e) => events.entry((&e.tenant, bucket(e.ts, HOUR_MS))).or_default().push(e),
            Record::Order(o) => orders.entry((&o.tenant, bucket(o.ts, HOUR_MS))).or_default().push(o),
            Record::Message(_) | Record::Badge(_) => {}
        }
    }
    fn add<T: serde::Serialize>(parts: &mut Vec<RecordsPart>, kind: RecordKind, hours: Hours<'_, T>) -> Result<()> {
        for ((tenant, hour), records) in hours {
            for (chunk, part) in records.chunks(RECORDS_PER_PART).zip(0..) {
                parts.push((tenant.to_owned(), hour, kind.code(), part, encode(&chunk)?));
            }
        }
        Ok(())
    }
    let mut parts = Vec::new();
    add(&mut parts, RecordKind::Touch, touches)?;
    add(&mut parts, RecordKind::Event, events)?;
    add(&mut parts, RecordKind::Order, orders)?;
    Ok(parts)
}

impl Inner {
    /// The records of `kind` in the tenant's hours starting in `[first, last]` (those that
    /// hold any, listed in `buckets`): one read (a slice of its day) per hour.
    pub(super) async fn records_of_hours<T>(&self, tenant: &str, kind: RecordKind, first: Millis, last: Millis) -> Result<Vec<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        let hours = self.buckets(tenant, table::RECORDS_BY_DAY, "", first, last).await?;
        // Rows are up to ~50 KiB: a few dozen a page.
        let mut statement = self.statements.select_records_of_hour.clone();
        statement.set_page_size(64);
        let statement = &statement;
        let reads = hours.into_iter().map(|hour| self.rows::<(Vec<u8>,)>(statement, (tenant, bucket(hour, DAY_MS), hour, kind.code())));
        let mut records = Vec::new();
        for (body,) in all(reads).await?.into_iter().flatten() {
            records.extend(decode::<Vec<T>>("records of an hour", &body)?);
        }
        Ok(records)
    }

    /// The records of `kind` with `from <= ts < to`.
    pub(super) async fn records_between<T>(&self, tenant: &str, kind: RecordKind, from: Millis, to: Millis, ts: impl Fn(&T) -> Millis) -> Result<Vec<T>>
    where
        T: DeserializeOwned + Send + 'static,
    {
        if from >= to {
            return Ok(Vec::new());
        }
        let mut records = self.records_of_hours::<T>(tenant, kind, bucket(from, HOUR_MS), to - 1).await?;
        records.retain(|record| (from..to).contains(&ts(record)));
        Ok(records)
    }
}

impl Inner {
    /// The rows of `statement` (`... WHERE tenant = ? AND slot = ? AND <id> IN ?`) of every
    /// `(tenant, id)` of a customer, an order or a message: one read per slot partition and up to
    /// [`IDS_PER_READ`] of its ids, each read with its tenant and the ids it named.
    pub(super) async fn rows_by_slot<'a, R>(&self, statement: &PreparedStatement, ids: &[(&'a str, &'a str)]) -> Result<Vec<(&'a str, HashSet<&'a str>, Vec<R>)>>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata> + Send + 'static,
    {
        self.rows_by_slot_in(statement, None, ids).await
    }

    /// [`Self::rows_by_slot`] of a statement that names a lane after the slot
    /// (`... AND slot = ? AND lane = ? AND <id> IN ?`), when `lane` is given.
    pub(super) async fn rows_by_slot_in<'a, R>(
        &self,
        statement: &PreparedStatement,
        lane: Option<i32>,
        ids: &[(&'a str, &'a str)],
    ) -> Result<Vec<(&'a str, HashSet<&'a str>, Vec<R>)>>
    where
        R: for<'frame, 'metadata> DeserializeRow<'frame, 'metadata> + Send + 'static,
    {
        let mut partitions: HashMap<(&'a str, i32), Vec<&'a str>> = HashMap::new();
        for &(tenant, id) in ids {
            partitions.entry((tenant, slot(id))).or_default().push(id);
        }
        for ids in partitions.values_mut() {
            ids.sort_unstable();
            ids.dedup();
        }
        let reads = partitions.iter().flat_map(|(&(tenant, slot), ids)| {
            ids.chunks(IDS_PER_READ).map(move |ids| async move {
                let rows: Vec<R> = match lane {
                    Some(lane) => self.rows(statement, (tenant, slot, lane, ids)).await?,
                    None => self.rows(statement, (tenant, slot, ids)).await?,
                };
                Ok((tenant, ids.iter().copied().collect::<HashSet<&'a str>>(), rows))
            })
        });
        all(reads).await
    }
}

/// Rows of one table grouped by partition key, written as a batch per partition
/// ([`Inner::partition_batches`]): each row with its values and about how many bytes they
/// take.
pub(super) struct Partitions<K, V>(HashMap<K, Vec<(V, usize)>>);

impl<K, V> Default for Partitions<K, V> {
    fn default() -> Self {
        Partitions(HashMap::new())
    }
}

impl<K: std::hash::Hash + Eq, V: SerializeRow + Send + Sync> Partitions<K, V> {
    pub(super) fn add(&mut self, partition: K, values: V, size: usize) {
        self.0.entry(partition).or_default().push((values, size));
    }

    /// The batches, all at `timestamp` when given.
    pub(super) fn batches<'a>(self, inner: &'a Inner, statement: &'a PreparedStatement, timestamp: Option<i64>) -> Vec<Write<'a>>
    where
        V: 'a,
    {
        self.0.into_values().flat_map(|rows| inner.partition_batches(statement, timestamp, rows)).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip() {
        for value in [0, 1, -1, 127, 128, -128, -129, i128::from(i64::MAX) * 3, i128::MIN, i128::MAX] {
            assert_eq!(from_varint(&varint(value)).unwrap(), value);
        }
        // Minimal encodings, as another client may write them.
        assert_eq!(from_varint(&CqlVarint::from_signed_bytes_be(vec![0xff])).unwrap(), -1);
        assert_eq!(from_varint(&CqlVarint::from_signed_bytes_be(vec![0x01, 0x00])).unwrap(), 256);
    }

    #[test]
    fn records_parts_group_by_tenant_hour_and_kind_in_bounded_rows() {
        let touch = |i: i64, ts: Millis| {
            Record::Touch(Touch {
                tenant: "t".into(),
                event_id: format!("e{i}"),
                msg_hash: "m".into(),
                customer_id: "c".into(),
                kind: touchstone_core::model::TouchKind::Opened,
                ts,
            })
        };
        let event = |ts: Millis| {
            Record::Event(AppEvent { tenant: "t".into(), event_id: format!("v{ts}"), customer_id: "c".into(), name: "view".into(), ts, value_micros: None, msg_hash: None })
        };
        let mut records: Vec<Record> = (0..1_200).map(|i| touch(i, 5 * HOUR_MS + i)).collect();
        records.extend([event(HOUR_MS), event(HOUR_MS + 1), event(2 * HOUR_MS)]);
        let parts = records_parts(&records).unwrap();
        let keys: Vec<(Millis, &str, i32)> = parts.iter().map(|(_, hour, kind, part, _)| (*hour, *kind, *part)).collect();
        assert_eq!(keys, [(5 * HOUR_MS, "t", 0), (5 * HOUR_MS, "t", 1), (5 * HOUR_MS, "t", 2), (HOUR_MS, "e", 0), (2 * HOUR_MS, "e", 0)]);
        let touches: Vec<Touch> = parts[..3].iter().flat_map(|part| decode::<Vec<Touch>>("touches", &part.4).unwrap()).collect();
        assert_eq!(touches.len(), 1_200);
        assert!(touches.iter().zip(&records).all(|(got, want)| matches!(want, Record::Touch(t) if t == got)), "step order kept");
        assert_eq!(records_parts(&records).unwrap(), parts, "the same records give the same rows");
    }

    #[test]
    fn buckets_start_at_or_before_their_times() {
        assert_eq!(bucket(0, HOUR_MS), 0);
        assert_eq!(bucket(-1, HOUR_MS), -HOUR_MS);
        assert_eq!(bucket(HOUR_MS + 5, HOUR_MS), HOUR_MS);
        assert_eq!(bucket(Millis::MIN, HOUR_MS), Millis::MIN);
    }

    #[test]
    fn spread_separates_id_parts() {
        assert!((0..TIME_SHARDS).contains(&spread(&["a", "bc"], TIME_SHARDS)));
        let spreads: HashSet<i32> = (0..100).map(|i| spread(&[&format!("event-{i}")], TIME_SHARDS)).collect();
        assert_eq!(spreads.len(), TIME_SHARDS as usize, "ids spread over every shard");
        assert!((0..100).all(|i| spread(&[&format!("event-{i}")], 1) == 0), "one shard: every id in it");
    }
}
