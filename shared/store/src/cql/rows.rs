//! How records, conversions and rollups map onto their tables, and every read of them.
//!
//! Tables read by time are partitioned by a time bucket (30 days per customer or message,
//! an hour or a day per tenant); the `buckets` table lists the buckets that hold rows of
//! one `(tenant, table, key)`, so a read over an open range or a whole history visits only
//! partitions that exist. The per-tenant hour tables also spread each hour over
//! [`TIME_SHARDS`] partitions by a hash of the row's id, so a busy tenant's hour is not one
//! hot partition.

use super::{Inner, Write, all, decode, shard_value};
use crate::{Result, StoreError, log_shard};
use scylla::value::{CqlVarint, MaybeUnset};
use std::collections::HashSet;
use std::str::FromStr;
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{AppEvent, Message, Millis, OrderRecord, Record, Touch};
use touchstone_core::rollup::{Cell, Cells, DAY_MS, Granularity, HOUR_MS, Tally};

/// Bucket of the per-customer and per-message tables: a customer's reads span at most a
/// channel window, so one or two buckets per read.
const CUSTOMER_BUCKET_MS: Millis = 30 * DAY_MS;
/// Partitions each hour (or day) of a per-tenant time table is spread over.
const TIME_SHARDS: i32 = 8;

/// Names of bucketed tables, as stored in `buckets.table_name`.
mod table {
    pub const TOUCHES_BY_CUSTOMER: &str = "touches_by_customer";
    pub const TOUCHES_BY_MESSAGE: &str = "touches_by_message";
    pub const TOUCHES_BY_TIME: &str = "touches_by_time";
    pub const EVENTS_BY_TIME: &str = "events_by_time";
    pub const EVENTS_BY_NAME: &str = "events_by_name";
    pub const ORDERS_BY_DAY: &str = "orders_by_day";
    pub const BADGES: &str = "badges";
    pub const CONVERSIONS_BY_CUSTOMER: &str = "conversions_by_customer";
    pub const CONVERSIONS_BY_TIME: &str = "conversions_by_time";
    pub const ROLLUP_DELTAS: &str = "rollup_deltas";
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
    fn new(tenant: &str, table: &'static str, key: &str, bucket: Millis) -> BucketRow {
        BucketRow { tenant: tenant.to_owned(), table, key: key.to_owned(), bucket }
    }
}

/// The start of the bucket of `size` holding `ts`.
fn bucket(ts: Millis, size: Millis) -> Millis {
    // Saturating: the bucket of a time near `Millis::MIN` would start below it.
    ts.saturating_sub(ts.rem_euclid(size))
}

/// Which of the [`TIME_SHARDS`] partitions of an hour a row goes to: FNV-1a of its id.
fn spread(id: &[&str]) -> i32 {
    let hash = id.iter().enumerate().fold(0x811c_9dc5_u32, |hash, (i, part)| {
        let separator = if i == 0 { hash } else { (hash ^ 0xff).wrapping_mul(0x0100_0193) };
        part.bytes().fold(separator, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
    });
    (hash % TIME_SHARDS as u32) as i32
}

fn granularity_code(granularity: Granularity) -> &'static str {
    match granularity {
        Granularity::Hour => "h",
        Granularity::Day => "d",
    }
}

fn parse<T: FromStr>(what: &str, text: &str) -> Result<T>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn varint(value: i128) -> CqlVarint {
    CqlVarint::from_signed_bytes_be(value.to_be_bytes().to_vec())
}

fn from_varint(value: &CqlVarint) -> Result<i128> {
    let bytes = value.as_signed_bytes_be_slice();
    if bytes.len() > 16 {
        return Err(StoreError::Corrupt(format!("a rollup value of {} bytes", bytes.len())));
    }
    let fill = if bytes.first().is_some_and(|b| b & 0x80 != 0) { 0xff } else { 0 };
    let mut full = [fill; 16];
    full[16 - bytes.len()..].copy_from_slice(bytes);
    Ok(i128::from_be_bytes(full))
}

/// Optional columns are left unset rather than written as null, which would store a
/// tombstone per empty cell.
fn unset_if_none<T>(value: Option<T>) -> MaybeUnset<T> {
    MaybeUnset::from_option(value)
}

/// A row of one of the conversion tables (the key of each), for writing and deleting.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum ConversionRow {
    Main { tenant: String, goal_id: String, key: String },
    ByCustomer { tenant: String, customer_id: String, bucket: Millis, ts: Millis, goal_id: String, key: String },
    ByTime { tenant: String, hour: Millis, shard: i32, ts: Millis, goal_id: String, key: String },
    ByExplicit { tenant: String, msg_hash: String, goal_id: String, key: String },
}

/// The rows a conversion is stored in: its own and one per index, each a full copy.
pub(super) fn conversion_rows(conversion: &Conversion) -> Vec<ConversionRow> {
    let fact = &conversion.fact;
    let (tenant, goal_id, key) = (fact.tenant.clone(), fact.goal_id.clone(), fact.key.clone());
    let mut rows = vec![
        ConversionRow::Main { tenant: tenant.clone(), goal_id: goal_id.clone(), key: key.clone() },
        ConversionRow::ByCustomer {
            tenant: tenant.clone(),
            customer_id: fact.customer_id.clone(),
            bucket: bucket(fact.ts, CUSTOMER_BUCKET_MS),
            ts: fact.ts,
            goal_id: goal_id.clone(),
            key: key.clone(),
        },
        ConversionRow::ByTime {
            tenant: tenant.clone(),
            hour: bucket(fact.ts, HOUR_MS),
            shard: spread(&[&goal_id, &key]),
            ts: fact.ts,
            goal_id: goal_id.clone(),
            key: key.clone(),
        },
    ];
    if let Some(msg_hash) = &fact.explicit_msg_hash {
        rows.push(ConversionRow::ByExplicit { tenant, msg_hash: msg_hash.clone(), goal_id, key });
    }
    rows
}

/// The buckets a stored conversion occupies.
pub(super) fn conversion_buckets(conversion: &Conversion) -> [BucketRow; 2] {
    let fact = &conversion.fact;
    [
        BucketRow::new(&fact.tenant, table::CONVERSIONS_BY_CUSTOMER, &fact.customer_id, bucket(fact.ts, CUSTOMER_BUCKET_MS)),
        BucketRow::new(&fact.tenant, table::CONVERSIONS_BY_TIME, "", bucket(fact.ts, HOUR_MS)),
    ]
}

/// The bucket of the rollup rows of `granularity` holding `hour`.
pub(super) fn rollup_bucket(tenant: &str, granularity: Granularity, hour: Millis) -> BucketRow {
    BucketRow::new(tenant, table::ROLLUP_DELTAS, granularity_code(granularity), granularity.bucket(hour))
}

/// A rollup delta row to write: `(tenant, granularity, bucket)` is its partition.
pub(super) struct RollupRow {
    pub tenant: String,
    pub granularity: Granularity,
    pub bucket: Millis,
    pub cell: Vec<u8>,
    pub tally: Tally,
}

impl Inner {
    /// Writes the rows of newly accepted records: their tables, the buckets they occupy and
    /// their tenants. Plain upserts, so a repeat (a reader finishing a crashed ingest) is
    /// harmless.
    pub(super) async fn write_records(&self, records: &[&Record]) -> Result<()> {
        let s = &self.statements;
        let mut bucket_rows = HashSet::new();
        let mut writes: Vec<Write<'_>> = Vec::new();
        let mut tenants = HashSet::new();
        for &record in records {
            tenants.insert(record.tenant());
            match record {
                Record::Message(m) => {
                    let values = (&m.tenant, &m.msg_hash, &m.campaign_id, m.channel.as_str(), &m.tags, m.sent_at);
                    writes.push(Box::pin(self.write(&s.insert_message, values)));
                }
                Record::Touch(t) => {
                    let month = bucket(t.ts, CUSTOMER_BUCKET_MS);
                    let hour = bucket(t.ts, HOUR_MS);
                    let kind = t.kind.as_str();
                    let by_customer = (&t.tenant, &t.customer_id, month, t.ts, &t.event_id, &t.msg_hash, kind);
                    let by_message = (&t.tenant, &t.msg_hash, month, t.ts, &t.event_id, &t.customer_id, kind);
                    let shard = spread(&[&t.event_id]);
                    let by_time = (&t.tenant, hour, shard, t.ts, &t.event_id, &t.msg_hash, &t.customer_id, kind);
                    writes.push(Box::pin(self.write(&s.insert_touch_by_customer, by_customer)));
                    writes.push(Box::pin(self.write(&s.insert_touch_by_message, by_message)));
                    writes.push(Box::pin(self.write(&s.insert_touch_by_time, by_time)));
                    bucket_rows.insert(BucketRow::new(&t.tenant, table::TOUCHES_BY_CUSTOMER, &t.customer_id, month));
                    bucket_rows.insert(BucketRow::new(&t.tenant, table::TOUCHES_BY_MESSAGE, &t.msg_hash, month));
                    bucket_rows.insert(BucketRow::new(&t.tenant, table::TOUCHES_BY_TIME, "", hour));
                }
                Record::Event(e) => {
                    let (hour, day) = (bucket(e.ts, HOUR_MS), bucket(e.ts, DAY_MS));
                    let (value, msg_hash) = (unset_if_none(e.value_micros), unset_if_none(e.msg_hash.as_deref()));
                    let shard = spread(&[&e.event_id]);
                    let by_time = (&e.tenant, hour, shard, e.ts, &e.event_id, &e.customer_id, &e.name, value, msg_hash);
                    let by_name = (&e.tenant, &e.name, day, e.ts, &e.event_id, &e.customer_id, value, msg_hash);
                    writes.push(Box::pin(self.write(&s.insert_event_by_time, by_time)));
                    writes.push(Box::pin(self.write(&s.insert_event_by_name, by_name)));
                    bucket_rows.insert(BucketRow::new(&e.tenant, table::EVENTS_BY_TIME, "", hour));
                    bucket_rows.insert(BucketRow::new(&e.tenant, table::EVENTS_BY_NAME, &e.name, day));
                }
                Record::Order(o) => {
                    let day = bucket(o.ts, DAY_MS);
                    let msg_hash = unset_if_none(o.msg_hash.as_deref());
                    let order = (
                        &o.tenant, &o.order_id, o.ts, &o.event_id, &o.customer_id, &o.status, o.amount_minor,
                        &o.currency, &o.categories, &o.channel, msg_hash,
                    );
                    let by_day = (
                        &o.tenant, day, spread(&[&o.event_id]), &o.order_id, o.ts, &o.event_id, &o.customer_id,
                        &o.status, o.amount_minor, &o.currency, &o.categories, &o.channel, msg_hash,
                    );
                    writes.push(Box::pin(self.write(&s.insert_order, order)));
                    writes.push(Box::pin(self.write(&s.insert_order_by_day, by_day)));
                    bucket_rows.insert(BucketRow::new(&o.tenant, table::ORDERS_BY_DAY, "", day));
                }
                Record::Badge(b) => {
                    let month = bucket(b.ts, CUSTOMER_BUCKET_MS);
                    let values = (
                        &b.tenant, &b.customer_id, month, b.ts, &b.event_id, &b.badge_id, b.action.as_str(),
                        b.source.as_str(), unset_if_none(b.reason.as_deref()),
                    );
                    writes.push(Box::pin(self.write(&s.insert_badge, values)));
                    bucket_rows.insert(BucketRow::new(&b.tenant, table::BADGES, &b.customer_id, month));
                }
            }
        }
        for tenant in tenants {
            writes.push(Box::pin(self.write(&s.insert_tenant, (shard_value(log_shard(tenant)), tenant))));
        }
        writes.extend(bucket_rows.into_iter().map(|row| self.write_bucket(row)));
        all(writes).await?;
        Ok(())
    }

    async fn write(&self, statement: &scylla::statement::prepared::PreparedStatement, values: impl scylla::serialize::row::SerializeRow) -> Result<()> {
        self.run(statement, values).await.map(drop)
    }

    pub(super) fn write_bucket(&self, row: BucketRow) -> Write<'_> {
        Box::pin(async move {
            let BucketRow { tenant, table, key, bucket } = row;
            self.write(&self.statements.insert_bucket, (tenant, table, key, bucket)).await
        })
    }

    pub(super) async fn write_tenant(&self, tenant: &str) -> Result<()> {
        self.write(&self.statements.insert_tenant, (shard_value(log_shard(tenant)), tenant)).await
    }

    /// Writes (`Some` body) or deletes one conversion row, at the step's timestamp.
    pub(super) fn write_conversion<'a>(&'a self, row: &'a ConversionRow, body: Option<&'a [u8]>, timestamp: i64) -> Write<'a> {
        let s = &self.statements;
        match (row, body) {
            (ConversionRow::Main { tenant, goal_id, key }, Some(body)) => {
                Box::pin(self.run_at(&s.insert_conversion, timestamp, (tenant, goal_id, key, body)))
            }
            (ConversionRow::Main { tenant, goal_id, key }, None) => {
                Box::pin(self.run_at(&s.delete_conversion, timestamp, (tenant, goal_id, key)))
            }
            (ConversionRow::ByCustomer { tenant, customer_id, bucket, ts, goal_id, key }, Some(body)) => Box::pin(self.run_at(
                &s.insert_conversion_by_customer,
                timestamp,
                (tenant, customer_id, bucket, ts, goal_id, key, body),
            )),
            (ConversionRow::ByCustomer { tenant, customer_id, bucket, ts, goal_id, key }, None) => Box::pin(self.run_at(
                &s.delete_conversion_by_customer,
                timestamp,
                (tenant, customer_id, bucket, ts, goal_id, key),
            )),
            (ConversionRow::ByTime { tenant, hour, shard, ts, goal_id, key }, Some(body)) => {
                Box::pin(self.run_at(&s.insert_conversion_by_time, timestamp, (tenant, hour, shard, ts, goal_id, key, body)))
            }
            (ConversionRow::ByTime { tenant, hour, shard, ts, goal_id, key }, None) => {
                Box::pin(self.run_at(&s.delete_conversion_by_time, timestamp, (tenant, hour, shard, ts, goal_id, key)))
            }
            (ConversionRow::ByExplicit { tenant, msg_hash, goal_id, key }, Some(body)) => {
                Box::pin(self.run_at(&s.insert_conversion_by_explicit, timestamp, (tenant, msg_hash, goal_id, key, body)))
            }
            (ConversionRow::ByExplicit { tenant, msg_hash, goal_id, key }, None) => {
                Box::pin(self.run_at(&s.delete_conversion_by_explicit, timestamp, (tenant, msg_hash, goal_id, key)))
            }
        }
    }

    /// Writes rollup delta rows under `step`; rows of one partition go in one unlogged batch.
    pub(super) async fn write_rollups(&self, rows: &[RollupRow], step: i64, timestamp: i64) -> Result<()> {
        use scylla::statement::batch::{Batch, BatchType};
        // Bounded so a busy bucket does not make one oversized request.
        const BATCH_ROWS: usize = 100;
        let mut partitions: std::collections::BTreeMap<(&str, &str, Millis), Vec<&RollupRow>> = Default::default();
        for row in rows {
            partitions.entry((&row.tenant, granularity_code(row.granularity), row.bucket)).or_default().push(row);
        }
        let batches = partitions.iter().flat_map(|(&(tenant, granularity, bucket), rows)| {
            rows.chunks(BATCH_ROWS).map(move |rows| {
                let mut batch = Batch::new(BatchType::Unlogged);
                batch.set_is_idempotent(true);
                batch.set_timestamp(Some(timestamp));
                let values: Vec<_> = rows
                    .iter()
                    .map(|row| {
                        batch.append_statement(self.statements.insert_rollup_delta.clone());
                        (tenant, granularity, bucket, &row.cell, step, row.tally.count, varint(row.tally.value_micros))
                    })
                    .collect();
                async move { self.session.batch(&batch, values).await.map(drop).map_err(super::cql_error) }
            })
        });
        all(batches).await?;
        Ok(())
    }

    /// The buckets of `(tenant, table, key)` starting in `[first, last]` that hold rows.
    async fn buckets(&self, tenant: &str, table: &str, key: &str, first: Millis, last: Millis) -> Result<Vec<Millis>> {
        if first > last {
            return Ok(Vec::new());
        }
        let rows: Vec<(i64,)> = self.rows(&self.statements.select_buckets, (tenant, table, key, first, last)).await?;
        Ok(rows.into_iter().map(|(bucket,)| bucket).collect())
    }

    pub(super) async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        let stored: Option<(Option<i64>, Option<Vec<u8>>)> = self.row(&self.statements.select_config, (tenant,)).await?;
        match stored {
            Some((_, Some(config))) => decode("tenant config", &config),
            _ => Ok(TenantConfig::defaults(tenant)),
        }
    }

    pub(super) async fn tenants(&self) -> Result<Vec<String>> {
        let reads = (0..crate::LOG_SHARDS).map(|shard| self.rows::<(String,)>(&self.statements.select_tenants, (shard_value(shard),)));
        let mut tenants: Vec<String> = all(reads).await?.into_iter().flatten().map(|(tenant,)| tenant).collect();
        tenants.sort();
        Ok(tenants)
    }

    pub(super) async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let wanted: HashSet<&String> = msg_hashes.iter().collect();
        let reads = wanted.into_iter().map(|msg_hash| async move {
            let row: Option<(String, String, Option<Vec<String>>, i64)> =
                self.row(&self.statements.select_message, (tenant, msg_hash)).await?;
            let Some((campaign_id, channel, tags, sent_at)) = row else { return Ok(None) };
            let message = Message {
                tenant: tenant.to_owned(),
                msg_hash: msg_hash.clone(),
                campaign_id,
                channel: parse("message channel", &channel)?,
                tags: tags.unwrap_or_default(),
                sent_at,
            };
            Ok(Some((msg_hash.clone(), message)))
        });
        Ok(all(reads).await?.into_iter().flatten().collect())
    }

    pub(super) async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        if from > to {
            return Ok(Vec::new());
        }
        let buckets = self.buckets(tenant, table::TOUCHES_BY_CUSTOMER, customer_id, bucket(from, CUSTOMER_BUCKET_MS), to).await?;
        let reads = buckets.into_iter().map(|month| {
            self.rows::<(i64, String, String, String)>(&self.statements.select_touches_by_customer, (tenant, customer_id, month, from, to))
        });
        all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|(ts, event_id, msg_hash, kind)| touch(tenant, event_id, msg_hash, customer_id.to_owned(), &kind, ts))
            .collect()
    }

    pub(super) async fn message_touches(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Touch>> {
        let buckets = self.buckets(tenant, table::TOUCHES_BY_MESSAGE, msg_hash, Millis::MIN, Millis::MAX).await?;
        let reads = buckets.into_iter().map(|month| {
            self.rows::<(i64, String, String, String)>(&self.statements.select_touches_by_message, (tenant, msg_hash, month))
        });
        all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|(ts, event_id, customer_id, kind)| touch(tenant, event_id, msg_hash.to_owned(), customer_id, &kind, ts))
            .collect()
    }

    /// The `(hour, shard)` partitions of `table` that may hold rows with `from <= ts < to`.
    async fn hour_partitions(&self, tenant: &str, table: &str, from: Millis, to: Millis) -> Result<Vec<(Millis, i32)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let hours = self.buckets(tenant, table, "", bucket(from, HOUR_MS), to - 1).await?;
        Ok(hours.into_iter().flat_map(|hour| (0..TIME_SHARDS).map(move |shard| (hour, shard))).collect())
    }

    pub(super) async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let partitions = self.hour_partitions(tenant, table::TOUCHES_BY_TIME, from, to).await?;
        let reads = partitions.into_iter().map(|(hour, shard)| {
            self.rows::<(i64, String, String, String, String)>(&self.statements.select_touches_by_time, (tenant, hour, shard, from, to))
        });
        all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|(ts, event_id, msg_hash, customer_id, kind)| touch(tenant, event_id, msg_hash, customer_id, &kind, ts))
            .collect()
    }

    pub(super) async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        type EventRow = (i64, String, String, String, Option<i64>, Option<String>);
        let partitions = self.hour_partitions(tenant, table::EVENTS_BY_TIME, from, to).await?;
        let reads = partitions
            .into_iter()
            .map(|(hour, shard)| self.rows::<EventRow>(&self.statements.select_events_by_time, (tenant, hour, shard, from, to)));
        let events = all(reads).await?.into_iter().flatten();
        Ok(events
            .map(|(ts, event_id, customer_id, name, value_micros, msg_hash)| AppEvent {
                tenant: tenant.to_owned(),
                event_id,
                customer_id,
                name,
                ts,
                value_micros,
                msg_hash,
            })
            .collect())
    }

    pub(super) async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        type EventRow = (i64, String, String, Option<i64>, Option<String>);
        let days = self.buckets(tenant, table::EVENTS_BY_NAME, name, Millis::MIN, Millis::MAX).await?;
        let reads = days.into_iter().map(|day| self.rows::<EventRow>(&self.statements.select_events_by_name, (tenant, name, day)));
        let events = all(reads).await?.into_iter().flatten();
        Ok(events
            .map(|(ts, event_id, customer_id, value_micros, msg_hash)| AppEvent {
                tenant: tenant.to_owned(),
                event_id,
                customer_id,
                name: name.to_owned(),
                ts,
                value_micros,
                msg_hash,
            })
            .collect())
    }

    pub(super) async fn order_records(&self, tenant: &str, order_id: &str) -> Result<Vec<OrderRecord>> {
        let rows: Vec<OrderRow> = self.rows(&self.statements.select_orders, (tenant, order_id)).await?;
        Ok(rows.into_iter().map(|row| order(tenant, row)).collect())
    }

    pub(super) async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        let days = self.buckets(tenant, table::ORDERS_BY_DAY, "", Millis::MIN, Millis::MAX).await?;
        let reads = days
            .into_iter()
            .flat_map(|day| (0..TIME_SHARDS).map(move |shard| (day, shard)))
            .map(|(day, shard)| self.rows::<OrderRow>(&self.statements.select_orders_by_day, (tenant, day, shard)));
        Ok(all(reads).await?.into_iter().flatten().map(|row| order(tenant, row)).collect())
    }

    pub(super) async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        let row: Option<(Vec<u8>,)> = self.row(&self.statements.select_conversion, (tenant, goal_id, key)).await?;
        row.map(|(body,)| decode("conversion", &body)).transpose()
    }

    pub(super) async fn customer_conversions(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        if from > to {
            return Ok(Vec::new());
        }
        let buckets =
            self.buckets(tenant, table::CONVERSIONS_BY_CUSTOMER, customer_id, bucket(from, CUSTOMER_BUCKET_MS), to).await?;
        let reads = buckets.into_iter().map(|month| {
            self.rows::<(Vec<u8>,)>(&self.statements.select_conversions_by_customer, (tenant, customer_id, month, from, to))
        });
        all(reads).await?.into_iter().flatten().map(|(body,)| decode("conversion", &body)).collect()
    }

    pub(super) async fn explicit_conversions(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Conversion>> {
        let rows: Vec<(Vec<u8>,)> = self.rows(&self.statements.select_conversions_by_explicit, (tenant, msg_hash)).await?;
        rows.into_iter().map(|(body,)| decode("conversion", &body)).collect()
    }

    pub(super) async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let partitions = self.hour_partitions(tenant, table::CONVERSIONS_BY_TIME, from, to).await?;
        let reads = partitions.into_iter().map(|(hour, shard)| {
            self.rows::<(Vec<u8>,)>(&self.statements.select_conversions_by_time, (tenant, hour, shard, from, to))
        });
        all(reads).await?.into_iter().flatten().map(|(body,)| decode("conversion", &body)).collect()
    }

    pub(super) async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let mut cells = Cells::default();
        if from >= to {
            return Ok(cells);
        }
        let code = granularity_code(granularity);
        let buckets = self.buckets(tenant, table::ROLLUP_DELTAS, code, from, to - 1).await?;
        let reads = buckets.into_iter().map(|bucket| {
            self.rows::<(Vec<u8>, i64, CqlVarint)>(&self.statements.select_rollup_deltas, (tenant, code, bucket))
        });
        for (cell, count, value_micros) in all(reads).await?.into_iter().flatten() {
            let cell: Cell = decode("rollup cell", &cell)?;
            cells.add(cell, Tally { count, value_micros: from_varint(&value_micros)? });
        }
        Ok(cells.without_zeros())
    }
}

fn touch(tenant: &str, event_id: String, msg_hash: String, customer_id: String, kind: &str, ts: Millis) -> Result<Touch> {
    Ok(Touch { tenant: tenant.to_owned(), event_id, msg_hash, customer_id, kind: parse("touch kind", kind)?, ts })
}

type OrderRow = (String, i64, String, String, String, i64, String, Option<Vec<String>>, String, Option<String>);

fn order(tenant: &str, row: OrderRow) -> OrderRecord {
    let (order_id, ts, event_id, customer_id, status, amount_minor, currency, categories, channel, msg_hash) = row;
    OrderRecord {
        tenant: tenant.to_owned(),
        event_id,
        order_id,
        customer_id,
        status,
        amount_minor,
        currency,
        categories: categories.unwrap_or_default(),
        channel,
        ts,
        msg_hash,
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
    fn buckets_start_at_or_before_their_times() {
        assert_eq!(bucket(0, HOUR_MS), 0);
        assert_eq!(bucket(-1, HOUR_MS), -HOUR_MS);
        assert_eq!(bucket(HOUR_MS + 5, HOUR_MS), HOUR_MS);
        assert_eq!(bucket(Millis::MIN, HOUR_MS), Millis::MIN);
    }

    #[test]
    fn spread_separates_id_parts() {
        assert!((0..TIME_SHARDS).contains(&spread(&["a", "bc"])));
        let spreads: HashSet<i32> = (0..100).map(|i| spread(&[&format!("event-{i}")])).collect();
        assert_eq!(spreads.len(), TIME_SHARDS as usize, "ids spread over every shard");
    }
}
