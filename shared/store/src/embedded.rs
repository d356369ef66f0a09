//! The embedded backend: [`EmbeddedStore`], every table a fjall keyspace in one local folder.
//!
//! The layout mirrors the CQL tables of the ScyllaDB backend: every key starts with the
//! tenant, then the table's partition key, then (for tables read by time) a time bucket,
//! then the clustering columns. In an ordered key-value store the bucket is redundant (it is
//! a function of `ts`, so one range scan crosses buckets), but keeping it makes both backends
//! agree on what a partition is. Keys are built by [`key`]: length-prefixed strings, times
//! big-endian with the sign bit flipped, so components never run into each other and times
//! sort numerically, negative before positive.
//!
//! | keyspace | key | value | read by |
//! |---|---|---|---|
//! | `dedup` | tenant, namespace (`m` message, `e` event_id), id | empty | `ingest` |
//! | `messages` | tenant, msg_hash | `Message` | `messages` |
//! | `touches_by_customer` | tenant, customer, 30-day bucket, ts, event_id | `Touch` | `customer_touches` |
//! | `touches_by_message` | tenant, msg_hash, ts, event_id | `Touch` | `message_touches` |
//! | `touches_by_time` | tenant, hour, ts, event_id | `Touch` | `touches_between` |
//! | `events_by_time` | tenant, hour, ts, event_id | `AppEvent` | `events_between` |
//! | `events_by_name` | tenant, name, ts, event_id | `AppEvent` | `tenant_events_named` |
//! | `orders` | tenant, order_id, ts, event_id | `OrderRecord` | `order_records`, `tenant_orders` |
//! | `badges` | tenant, customer, ts, event_id | `BadgeEvent` | (the badge timeline, later) |
//! | `configs` | tenant | `TenantConfig` | `tenant_config`, `save_tenant_config` |
//! | `tenants` | tenant | empty | `tenants` |
//! | `log` | shard (u32), seq (u64) | appended_at and payload | `read_log`, `log_status` |
//! | `meta` | `log_head` or `processed`, shard | u64 | `ingest`, `log_status`, `commit_attribution` |
//! | `conversions` | tenant, goal_id, key | `Conversion` | `conversion`, `tenant_conversions` |
//! | `conversions_by_customer` | tenant, customer, 30-day bucket, ts, goal_id, key | `Conversion` | `customer_conversions` |
//! | `conversions_by_time` | tenant, hour, ts, goal_id, key | `Conversion` | `conversions_between` |
//! | `conversions_by_explicit` | tenant, explicit msg_hash, goal_id, key | `Conversion` | `explicit_conversions` |
//! | `rollups` | tenant, granularity (`h`/`d`), bucket start, cell (postcard) | `Tally` | `rollups` |
//!
//! Every index holds a full copy of its row rather than a pointer to a primary table, as the
//! CQL tables do: each read is then one range scan, never a scan plus a point read per row.
//! Touches and conversions, the rows with several indexes, are small, so copies cost little.
//!
//! Leases and the live-worker list are kept in memory: one process opens a folder at a time,
//! so its workers are the only ones there are.
//!
//! Values are postcard (serde). Each call's writes (rows, indexes, dedup marks, log entries,
//! counters) go to fjall in one atomic batch whose journal is flushed before the call
//! returns: to the OS by default, which survives a crash of the process, or with
//! `fdatasync` when [`EmbeddedOptions::sync`] is set, which survives a crash of the machine.

use crate::{
    AttributionCommit, ConversionKey, CustomerSpan, IngestOutcome, LOG_SHARDS, LogEntry, LogMark, LogPayload, LogStatus, Result, Store, StoreError,
    log_shard,
};
use crate::support::{StoredPayload, encode, lock, now_millis};
use async_trait::async_trait;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode, Slice};
use key::Key;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::Bound;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{AppEvent, DedupKey, Millis, OrderRecord, Record, Touch};
use touchstone_core::rollup::{Cell, Cells, DAY_MS, Granularity, HOUR_MS, Tally};

/// Bucket of the per-customer tables: a customer's reads span at most a channel window
/// (a year at the very most, a week usually), so one or two buckets per read.
const CUSTOMER_BUCKET_MS: Millis = 30 * DAY_MS;
/// Bucket of the per-tenant time tables: reports scan raw rows only for the edges of a
/// range that whole hours do not cover, so an hour bucket keeps those scans small.
const TIME_BUCKET_MS: Millis = HOUR_MS;

/// Memory bounds, so that the process stays small however much data it holds:
/// - each table's memtable is flushed at this size (18 tables: at most ~75 MiB of
///   memtables, and smaller skiplists insert faster than fjall's 64 MiB default);
const MEMTABLE_BYTES: u64 = 4 * 1024 * 1024;
/// - the journal is rotated (flushing memtables that hold old entries) at this size;
const JOURNAL_BYTES: u64 = 128 * 1024 * 1024;
/// - the block cache, shared by every table. Attribution's reads (a customer's touches and
///   conversions) are random, so memory does more good here than in memtables: 128 MiB of
///   cache with 4 MiB memtables costs less CPU than 64 MiB with 8 MiB, in the same RSS.
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

const LOG_HEAD: &[u8] = b"log_head";
const PROCESSED: &[u8] = b"processed";

/// The tables, one fjall keyspace each; see the module docs for their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Table {
    Dedup,
    Messages,
    TouchesByCustomer,
    TouchesByMessage,
    TouchesByTime,
    EventsByTime,
    EventsByName,
    Orders,
    Badges,
    Configs,
    Tenants,
    Log,
    Meta,
    Conversions,
    ConversionsByCustomer,
    ConversionsByTime,
    ConversionsByExplicit,
    Rollups,
}

impl Table {
    /// Every table, in discriminant order, so that `ALL[t as usize] == t`.
    const ALL: [Table; 18] = [
        Table::Dedup,
        Table::Messages,
        Table::TouchesByCustomer,
        Table::TouchesByMessage,
        Table::TouchesByTime,
        Table::EventsByTime,
        Table::EventsByName,
        Table::Orders,
        Table::Badges,
        Table::Configs,
        Table::Tenants,
        Table::Log,
        Table::Meta,
        Table::Conversions,
        Table::ConversionsByCustomer,
        Table::ConversionsByTime,
        Table::ConversionsByExplicit,
        Table::Rollups,
    ];

    fn name(self) -> &'static str {
        match self {
            Table::Dedup => "dedup",
            Table::Messages => "messages",
            Table::TouchesByCustomer => "touches_by_customer",
            Table::TouchesByMessage => "touches_by_message",
            Table::TouchesByTime => "touches_by_time",
            Table::EventsByTime => "events_by_time",
            Table::EventsByName => "events_by_name",
            Table::Orders => "orders",
            Table::Badges => "badges",
            Table::Configs => "configs",
            Table::Tenants => "tenants",
            Table::Log => "log",
            Table::Meta => "meta",
            Table::Conversions => "conversions",
            Table::ConversionsByCustomer => "conversions_by_customer",
            Table::ConversionsByTime => "conversions_by_time",
            Table::ConversionsByExplicit => "conversions_by_explicit",
            Table::Rollups => "rollups",
        }
    }
}

/// How far a write is pushed towards the disk before the call that made it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// `fdatasync` the journal on every write: survives power loss, costs a disk flush per
    /// call. Off, writes reach the OS before returning, which survives a crash of the process.
    pub sync: bool,
}

/// The [`Store`] on fjall, in one local folder. One process opens a folder at a time.
/// Cheap to clone: clones share the open store.
#[derive(Clone)]
pub struct EmbeddedStore {
    tables: Arc<Tables>,
}

/// The open fjall database and its keyspaces, one per table.
struct Tables {
    db: Database,
    /// Indexed by `Table as usize`.
    tables: Vec<Keyspace>,
    persist: PersistMode,
    /// Held by every call that appends to the log (ingest, config saves, recomputes): it
    /// makes dedup's check-then-write and the head counter's read-then-write atomic. It
    /// guards the tenants whose `tenants` row is known written, so that ingest writes that
    /// row once per tenant and process rather than once per record.
    log_writer: Mutex<HashSet<String>>,
    /// Held by commits: their rollup read-modify-writes must not interleave.
    committer: Mutex<()>,
    /// Shard leases: owner and expiry.
    leases: Mutex<HashMap<u32, (String, Instant)>>,
    /// Live workers and when each lapses.
    workers: Mutex<HashMap<String, Instant>>,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`, flushing writes to the OS.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    pub fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .open()
            .map_err(backend)?;
        let tables = Table::ALL
            .iter()
            .map(|table| db.keyspace(table.name(), || KeyspaceCreateOptions::default().max_memtable_size(MEMTABLE_BYTES)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        tracing::info!(dir = %dir.display(), sync = options.sync, "embedded store opened");
        let tables = Tables {
            db,
            tables,
            persist: if options.sync { PersistMode::SyncData } else { PersistMode::Buffer },
            log_writer: Mutex::new(HashSet::new()),
            committer: Mutex::new(()),
            leases: Mutex::new(HashMap::new()),
            workers: Mutex::new(HashMap::new()),
        };
        Ok(EmbeddedStore { tables: Arc::new(tables) })
    }

    /// Runs `call` on the blocking pool with the open tables.
    async fn blocking<T: Send + 'static>(&self, call: impl FnOnce(&Tables) -> Result<T> + Send + 'static) -> Result<T> {
        let tables = self.tables.clone();
        tokio::task::spawn_blocking(move || call(&tables))
            .await
            .map_err(|err| StoreError::Backend(format!("embedded store call failed: {err}")))?
    }
}

impl Tables {
    fn table(&self, table: Table) -> &Keyspace {
        &self.tables[table as usize]
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        let Some(bytes) = self.table(table).get(key).map_err(backend)? else {
            return Ok(None);
        };
        decode(table, &bytes).map(Some)
    }

    fn scan<T: DeserializeOwned>(&self, table: Table, range: KeyRange) -> Result<Vec<T>> {
        if range_is_empty(&range) {
            return Ok(Vec::new());
        }
        self.table(table)
            .range(range)
            .map(|guard| decode(table, &guard.value().map_err(backend)?))
            .collect()
    }

    fn scan_prefix<T: DeserializeOwned>(&self, table: Table, prefix: Key) -> Result<Vec<T>> {
        self.table(table)
            .prefix(prefix.as_bytes())
            .map(|guard| decode(table, &guard.value().map_err(backend)?))
            .collect()
    }

    fn counter(&self, name: &[u8], shard: u32) -> Result<u64> {
        let Some(bytes) = self.table(Table::Meta).get(counter_key(name, shard)).map_err(backend)? else {
            return Ok(0);
        };
        let bytes: [u8; 8] = (*bytes).try_into().map_err(|_| {
            StoreError::Corrupt(format!("meta counter {:?}/{shard} is not 8 bytes", String::from_utf8_lossy(name)))
        })?;
        Ok(u64::from_be_bytes(bytes))
    }

    /// Applies `writes` as one atomic batch and flushes its journal as configured.
    fn apply(&self, writes: Writes) -> Result<()> {
        let mut batch = self.db.batch().durability(Some(self.persist));
        for ((table, key), value) in writes.0 {
            match value {
                Some(value) => batch.insert(self.table(table), key, value),
                None => batch.remove(self.table(table), key),
            }
        }
        batch.commit().map_err(backend)
    }

    fn ingest_sync(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
        let mut known_tenants = lock(&self.log_writer);
        let mut new_tenants = Vec::new();
        let mut log = LogAppender::new();
        // Straight into the fjall batch, no `Writes` map: ingest writes every key at most once
        // per call. Dedup marks are checked against `marked`, the `tenants` row against
        // `new_tenants`, rows are keyed by the record's dedup id (one accepted record per id),
        // log keys by fresh positions and each shard's head once, at the end.
        let mut batch = self.db.batch().durability(Some(self.persist));
        let mut marked: HashSet<Slice> = HashSet::with_capacity(records.len());
        let mut buffers = Buffers::default();
        let mut outcomes = Vec::with_capacity(records.len());
        for record in records {
            let dedup_key = buffers.key(|key| dedup_key(key, &record));
            if marked.contains(&dedup_key) || self.table(Table::Dedup).contains_key(&dedup_key).map_err(backend)? {
                outcomes.push(IngestOutcome::Duplicate);
                continue;
            }
            marked.insert(dedup_key.clone());
            batch.insert(self.table(Table::Dedup), dedup_key, Slice::empty());
            if !known_tenants.contains(record.tenant()) && !new_tenants.iter().any(|t| t == record.tenant()) {
                batch.insert(self.table(Table::Tenants), Key::new().str(record.tenant()).into_vec(), Slice::empty());
                new_tenants.push(record.tenant().to_owned());
            }
            // Encoded once: the record's rows share one slice, its log entry copies the bytes
            // after a short header.
            let (row, entry) = buffers.record_values(log.appended_at, &record)?;
            record_rows(&record, &mut buffers, |table, key| batch.insert(self.table(table), key, row.clone()));
            let mark = log.next(self, log_shard(record.tenant()))?;
            batch.insert(self.table(Table::Log), log_key(mark.shard, mark.seq), entry);
            outcomes.push(IngestOutcome::Accepted);
        }
        for (key, head) in log.heads() {
            batch.insert(self.table(Table::Meta), key, head);
        }
        batch.commit().map_err(backend)?;
        known_tenants.extend(new_tenants);
        Ok(outcomes)
    }

    fn save_tenant_config_sync(&self, config: &TenantConfig) -> Result<LogMark> {
        let _turn = lock(&self.log_writer);
        let tenant_key = Key::new().str(&config.tenant).into_vec();
        let stored = self.get::<TenantConfig>(Table::Configs, &tenant_key)?.map_or(0, |c| c.version);
        // Version 0 is "never saved": no save can expect a stored version below it.
        if config.version.checked_sub(1) != Some(stored) {
            return Err(StoreError::Conflict { tenant: config.tenant.clone() });
        }
        let mut writes = Writes::default();
        writes.put(Table::Configs, tenant_key.clone(), config)?;
        writes.put_raw(Table::Tenants, tenant_key, Vec::new());
        let mut log = LogAppender::new();
        let mark = log.append(self, log_shard(&config.tenant), LogPayload::Recompute { tenant: config.tenant.clone() }, &mut writes)?;
        log.finish(&mut writes);
        self.apply(writes)?;
        Ok(mark)
    }

    fn append_recompute_sync(&self, tenant: &str) -> Result<LogMark> {
        let _turn = lock(&self.log_writer);
        let mut writes = Writes::default();
        let mut log = LogAppender::new();
        let mark = log.append(self, log_shard(tenant), LogPayload::Recompute { tenant: tenant.to_owned() }, &mut writes)?;
        log.finish(&mut writes);
        self.apply(writes)?;
        Ok(mark)
    }

    fn commit_attribution_sync(&self, commit: AttributionCommit) -> Result<()> {
        let _turn = lock(&self.committer);
        let shard = commit.shard;
        let processed = self.counter(PROCESSED, shard)?;
        if processed != commit.after {
            return Err(StoreError::Fenced { shard });
        }
        if commit.processed < commit.after {
            return Err(StoreError::Backend(format!(
                "commit of shard {shard} moves the processed position back from {} to {}",
                commit.after, commit.processed
            )));
        }
        let mut writes = Writes::default();
        for change in &commit.conversions {
            // Removing first and writing second: where old and new share a key, the new
            // row replaces the removal in `writes`.
            if let Some(old) = &change.old {
                for (table, key) in conversion_keys(old) {
                    writes.delete(table, key);
                }
            }
            if let Some(new) = &change.new {
                for (table, key) in conversion_keys(new) {
                    writes.put(table, key, new)?;
                }
            }
        }

        // Sum per stored row first: the hours of one day all land on the same day row.
        let mut sums: BTreeMap<Vec<u8>, Tally> = BTreeMap::new();
        for delta in &commit.rollups {
            for granularity in Granularity::ALL {
                let key = rollup_key(&delta.tenant, granularity, granularity.bucket(delta.hour), &delta.cell)?;
                sums.entry(key).or_default().add(delta.tally);
            }
        }
        for (key, delta) in sums {
            let mut tally: Tally = self.get(Table::Rollups, &key)?.unwrap_or_default();
            tally.add(delta);
            if tally.is_zero() {
                writes.delete(Table::Rollups, key);
            } else {
                writes.put(Table::Rollups, key, &tally)?;
            }
        }

        if commit.processed > processed {
            // `processed` may be past the stored head for a moment: fjall's plain reads see a
            // write batch while it is being applied, so a step can read the log entries of an
            // ingest call whose head row is not applied yet. Those entries are already
            // journaled (a batch is journaled before it is applied), so they are durable.
            writes.put_raw(Table::Meta, counter_key(PROCESSED, shard), commit.processed.to_be_bytes().to_vec());
            // Only the entries since the last commit (older ones are already removed). The
            // log has no gaps (every position up to the head holds an entry), so their keys
            // are known without scanning them.
            for seq in processed + 1..=commit.processed {
                writes.delete(Table::Log, log_key(shard, seq).to_vec());
            }
        }
        self.apply(writes)
    }

    fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut leases = lock(&self.leases);
        match leases.get(&shard) {
            Some((holder, until)) if holder != owner && *until > now => false,
            _ => {
                leases.insert(shard, (owner.to_owned(), now + ttl));
                true
            }
        }
    }

    fn release_lease(&self, shard: u32, owner: &str) {
        let mut leases = lock(&self.leases);
        if leases.get(&shard).is_some_and(|(holder, _)| holder == owner) {
            leases.remove(&shard);
        }
    }

    fn live_workers(&self, worker: &str, ttl: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut workers = lock(&self.workers);
        workers.insert(worker.to_owned(), now + ttl);
        workers.retain(|_, until| *until > now);
        let mut live: Vec<String> = workers.keys().cloned().collect();
        live.sort();
        live
    }
}

impl Tables {
    fn ingest(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
        self.ingest_sync(records)
    }

    fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        let stored = self.get(Table::Configs, Key::new().str(tenant).as_bytes())?;
        Ok(stored.unwrap_or_else(|| TenantConfig::defaults(tenant)))
    }

    fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        self.save_tenant_config_sync(config)
    }

    fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        self.append_recompute_sync(tenant)
    }

    fn tenants(&self) -> Result<Vec<String>> {
        self.table(Table::Tenants)
            .iter()
            .map(|guard| {
                let key = guard.key().map_err(backend)?;
                match key::read_str(&key) {
                    Some((tenant, [])) => Ok(tenant.to_owned()),
                    _ => Err(StoreError::Corrupt("tenants key is not one string".to_owned())),
                }
            })
            .collect()
    }

    fn log_status(&self, shard: u32) -> Result<LogStatus> {
        let head = self.counter(LOG_HEAD, shard)?;
        let processed = self.counter(PROCESSED, shard)?;
        let oldest_pending_at = self.read_log(shard, processed, 1)?.first().map(|entry| entry.appended_at);
        Ok(LogStatus { head, processed, oldest_pending_at })
    }

    fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        // Within one shard: `after` is at most u64::MAX, the next shard's keys start after it.
        let range = (Bound::Excluded(log_key(shard, after)), Bound::Included(log_key(shard, u64::MAX)));
        self.table(Table::Log)
            .range(range)
            .take(limit)
            .map(|guard| {
                let (key, value) = guard.into_inner().map_err(backend)?;
                let seq = key
                    .get(4..)
                    .and_then(|seq| <[u8; 8]>::try_from(seq).ok())
                    .map(u64::from_be_bytes)
                    .ok_or_else(|| StoreError::Corrupt("log key is not 12 bytes".to_owned()))?;
                let stored: StoredLogEntry = decode(Table::Log, &value)?;
                Ok(LogEntry { seq, appended_at: stored.appended_at, payload: stored.payload.into() })
            })
            .collect()
    }

    fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let mut messages = Messages::new();
        for msg_hash in msg_hashes {
            if messages.contains_key(msg_hash) {
                continue;
            }
            let key = Key::new().str(tenant).str(msg_hash);
            if let Some(message) = self.get(Table::Messages, key.as_bytes())? {
                messages.insert(msg_hash.clone(), message);
            }
        }
        Ok(messages)
    }

    fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let partition = Key::new().str(tenant).str(customer_id);
        self.scan(Table::TouchesByCustomer, time_range(&partition, Some(CUSTOMER_BUCKET_MS), from, to.checked_add(1)))
    }

    /// One scan per customer over the union of their overlapping spans, rather than one per
    /// span: attribution asks for the touches before each of a customer's conversions, and
    /// those spans mostly overlap.
    fn customer_touches_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Touch>>> {
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&spans[a], &spans[b]);
            (&a.tenant, &a.customer_id, a.from).cmp(&(&b.tenant, &b.customer_id, b.from))
        });
        let mut results = vec![Vec::new(); spans.len()];
        let mut rest = &order[..];
        while let Some((&first, _)) = rest.split_first() {
            // The spans of one customer that chain into one overlapping run.
            let head = &spans[first];
            let mut to = head.to;
            let mut len = 1;
            while let Some(&next) = rest.get(len) {
                let span = &spans[next];
                if span.tenant != head.tenant || span.customer_id != head.customer_id || span.from > to {
                    break;
                }
                to = to.max(span.to);
                len += 1;
            }
            let (group, after) = rest.split_at(len);
            rest = after;
            let touches = self.customer_touches(&head.tenant, &head.customer_id, head.from, to)?;
            if let [only] = *group {
                results[only] = touches;
                continue;
            }
            for &index in group {
                let span = &spans[index];
                results[index] = touches.iter().filter(|t| span.from <= t.ts && t.ts <= span.to).cloned().collect();
            }
        }
        Ok(results)
    }

    fn message_touches(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Touch>> {
        self.scan_prefix(Table::TouchesByMessage, Key::new().str(tenant).str(msg_hash))
    }

    fn order_records(&self, tenant: &str, order_id: &str) -> Result<Vec<OrderRecord>> {
        self.scan_prefix(Table::Orders, Key::new().str(tenant).str(order_id))
    }

    fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        self.scan_prefix(Table::Orders, Key::new().str(tenant))
    }

    fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        self.scan_prefix(Table::EventsByName, Key::new().str(tenant).str(name))
    }

    fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        self.get(Table::Conversions, Key::new().str(tenant).str(goal_id).str(key).as_bytes())
    }

    fn customer_conversions(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let partition = Key::new().str(tenant).str(customer_id);
        self.scan(Table::ConversionsByCustomer, time_range(&partition, Some(CUSTOMER_BUCKET_MS), from, to.checked_add(1)))
    }

    fn explicit_conversions(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Conversion>> {
        self.scan_prefix(Table::ConversionsByExplicit, Key::new().str(tenant).str(msg_hash))
    }

    fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>> {
        self.scan_prefix(Table::Conversions, Key::new().str(tenant))
    }

    fn commit_attribution(&self, commit: AttributionCommit) -> Result<()> {
        self.commit_attribution_sync(commit)
    }

    fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let partition = Key::new().str(tenant).tag(granularity_tag(granularity));
        let range = time_range(&partition, None, from, Some(to));
        let mut cells = Cells::default();
        if range_is_empty(&range) {
            return Ok(cells);
        }
        // The cell is the rest of the key after the partition and the bucket start.
        let cell_at = partition.as_bytes().len() + 8;
        for guard in self.table(Table::Rollups).range(range) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let cell_bytes = key
                .get(cell_at..)
                .ok_or_else(|| StoreError::Corrupt("rollup key too short".to_owned()))?;
            cells.add(decode::<Cell>(Table::Rollups, cell_bytes)?, decode(Table::Rollups, &value)?);
        }
        // Rows that sum to zero are deleted, but rows of different buckets may still cancel.
        Ok(cells.without_zeros())
    }

    fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        self.scan(Table::TouchesByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }

    fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        self.scan(Table::EventsByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }

    fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        self.scan(Table::ConversionsByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }
}

/// Every call runs on tokio's blocking pool: fjall reads and journal flushes are blocking
/// file I/O, and a long scan (a tenant recompute) must not stall the async workers.
#[async_trait]
impl Store for EmbeddedStore {
    async fn ingest(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
        self.blocking(move |tables| tables.ingest(records)).await
    }

    async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.tenant_config(&tenant)).await
    }

    async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        let config = config.clone();
        self.blocking(move |tables| tables.save_tenant_config(&config)).await
    }

    async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.append_recompute(&tenant)).await
    }

    async fn tenants(&self) -> Result<Vec<String>> {
        self.blocking(move |tables| tables.tenants()).await
    }

    async fn log_status(&self, shard: u32) -> Result<LogStatus> {
        self.blocking(move |tables| tables.log_status(shard)).await
    }

    async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        self.blocking(move |tables| tables.read_log(shard, after, limit)).await
    }

    async fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> Result<bool> {
        Ok(self.tables.acquire_lease(shard, owner, ttl))
    }

    async fn release_lease(&self, shard: u32, owner: &str) -> Result<()> {
        self.tables.release_lease(shard, owner);
        Ok(())
    }

    async fn live_workers(&self, worker: &str, ttl: Duration) -> Result<Vec<String>> {
        Ok(self.tables.live_workers(worker, ttl))
    }

    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let tenant = tenant.to_owned();
        let msg_hashes = msg_hashes.to_vec();
        self.blocking(move |tables| tables.messages(&tenant, &msg_hashes)).await
    }

    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let tenant = tenant.to_owned();
        let customer_id = customer_id.to_owned();
        self.blocking(move |tables| tables.customer_touches(&tenant, &customer_id, from, to)).await
    }

    async fn message_touches(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Touch>> {
        let tenant = tenant.to_owned();
        let msg_hash = msg_hash.to_owned();
        self.blocking(move |tables| tables.message_touches(&tenant, &msg_hash)).await
    }

    async fn order_records(&self, tenant: &str, order_id: &str) -> Result<Vec<OrderRecord>> {
        let tenant = tenant.to_owned();
        let order_id = order_id.to_owned();
        self.blocking(move |tables| tables.order_records(&tenant, &order_id)).await
    }

    async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.tenant_orders(&tenant)).await
    }

    async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        let tenant = tenant.to_owned();
        let name = name.to_owned();
        self.blocking(move |tables| tables.tenant_events_named(&tenant, &name)).await
    }

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        let tenant = tenant.to_owned();
        let goal_id = goal_id.to_owned();
        let key = key.to_owned();
        self.blocking(move |tables| tables.conversion(&tenant, &goal_id, &key)).await
    }

    async fn customer_conversions(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let tenant = tenant.to_owned();
        let customer_id = customer_id.to_owned();
        self.blocking(move |tables| tables.customer_conversions(&tenant, &customer_id, from, to)).await
    }

    async fn explicit_conversions(&self, tenant: &str, msg_hash: &str) -> Result<Vec<Conversion>> {
        let tenant = tenant.to_owned();
        let msg_hash = msg_hash.to_owned();
        self.blocking(move |tables| tables.explicit_conversions(&tenant, &msg_hash)).await
    }

    async fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.tenant_conversions(&tenant)).await
    }

    // The batched reads run in one blocking call each: a thread hop per single read would
    // cost more than the read.

    async fn customer_touches_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Touch>>> {
        let spans = spans.to_vec();
        self.blocking(move |tables| tables.customer_touches_many(&spans)).await
    }

    async fn customer_conversions_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Conversion>>> {
        let spans = spans.to_vec();
        self.blocking(move |tables| {
            spans.iter().map(|s| tables.customer_conversions(&s.tenant, &s.customer_id, s.from, s.to)).collect()
        })
        .await
    }

    async fn order_records_many(&self, orders: &[(String, String)]) -> Result<Vec<Vec<OrderRecord>>> {
        let orders = orders.to_vec();
        self.blocking(move |tables| orders.iter().map(|(tenant, order_id)| tables.order_records(tenant, order_id)).collect())
            .await
    }

    async fn conversions_many(&self, keys: &[ConversionKey]) -> Result<Vec<Option<Conversion>>> {
        let keys = keys.to_vec();
        self.blocking(move |tables| keys.iter().map(|k| tables.conversion(&k.tenant, &k.goal_id, &k.key)).collect())
            .await
    }

    async fn commit_attribution(&self, commit: AttributionCommit) -> Result<()> {
        self.blocking(move |tables| tables.commit_attribution(commit)).await
    }

    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.rollups(&tenant, granularity, from, to)).await
    }

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.touches_between(&tenant, from, to)).await
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.events_between(&tenant, from, to)).await
    }

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.conversions_between(&tenant, from, to)).await
    }
}

/// The writes of one call, applied as one batch. Keyed so that a later write of a key
/// replaces an earlier one: fjall gives every item of a batch the same sequence number, so a
/// removal and an insert of one key in the same batch would have no defined order.
#[derive(Default)]
struct Writes(BTreeMap<(Table, Vec<u8>), Option<Vec<u8>>>);

impl Writes {
    fn put<T: Serialize>(&mut self, table: Table, key: Vec<u8>, value: &T) -> Result<()> {
        self.put_raw(table, key, encode(value)?);
        Ok(())
    }

    fn put_raw(&mut self, table: Table, key: Vec<u8>, value: Vec<u8>) {
        self.0.insert((table, key), Some(value));
    }

    fn delete(&mut self, table: Table, key: Vec<u8>) {
        self.0.insert((table, key), None);
    }
}

/// Appends log entries after each shard's head, all stamped with the same clock reading.
/// Used under the `log_writer` lock.
struct LogAppender {
    /// The heads of the shards appended to so far.
    heads: BTreeMap<u32, u64>,
    appended_at: Millis,
}

impl LogAppender {
    fn new() -> Self {
        LogAppender { heads: BTreeMap::new(), appended_at: now_millis() }
    }

    /// The next position of `shard`; its entry must be written with [`LogAppender::heads`].
    fn next(&mut self, tables: &Tables, shard: u32) -> Result<LogMark> {
        let head = match self.heads.get_mut(&shard) {
            Some(head) => head,
            None => self.heads.entry(shard).or_insert(tables.counter(LOG_HEAD, shard)?),
        };
        *head += 1;
        Ok(LogMark { shard, seq: *head })
    }

    fn append(&mut self, tables: &Tables, shard: u32, payload: LogPayload, writes: &mut Writes) -> Result<LogMark> {
        let mark = self.next(tables, shard)?;
        let entry = StoredLogEntry { appended_at: self.appended_at, payload: payload.into() };
        writes.put(Table::Log, log_key(shard, mark.seq).to_vec(), &entry)?;
        Ok(mark)
    }

    /// The `meta` rows of the new heads.
    fn heads(&self) -> impl Iterator<Item = (Vec<u8>, [u8; 8])> + '_ {
        self.heads.iter().map(|(&shard, head)| (counter_key(LOG_HEAD, shard), head.to_be_bytes()))
    }

    /// Records the new heads in `writes`.
    fn finish(self, writes: &mut Writes) {
        for (key, head) in self.heads() {
            writes.put_raw(Table::Meta, key, head.to_vec());
        }
    }
}

/// Buffers reused across the records of one ingest call, so that a key or a value costs
/// one allocation: the fjall slice it ends up in.
#[derive(Default)]
struct Buffers {
    key: Vec<u8>,
    value: Vec<u8>,
}

impl Buffers {
    /// Builds a key in the reused buffer and copies it into a slice.
    fn key(&mut self, build: impl FnOnce(Key) -> Key) -> Slice {
        let key = build(Key::in_buffer(std::mem::take(&mut self.key)));
        let slice = Slice::new(key.as_bytes());
        self.key = key.into_vec();
        slice
    }

    /// The value of the record's rows (its postcard) and of its log entry
    /// ([`StoredLogEntry`]), which is a short header followed by the same bytes.
    fn record_values(&mut self, appended_at: Millis, record: &Record) -> Result<(Slice, Slice)> {
        // Postcard writes a struct as its fields in order and an enum variant as its index
        // (a varint, as a u32 is): so this header is what the entry's fields before the
        // record's own encode to (`log_entry_encodes_as_header_and_row` checks it).
        let header = (appended_at, STORED_PAYLOAD_RECORD, record_variant(record));
        self.value.clear();
        let value = std::mem::take(&mut self.value);
        let value = postcard::to_extend(&header, value).map_err(encoding)?;
        let header_len = value.len();
        let value = match record {
            Record::Message(message) => postcard::to_extend(message, value),
            Record::Touch(touch) => postcard::to_extend(touch, value),
            Record::Event(event) => postcard::to_extend(event, value),
            Record::Order(order) => postcard::to_extend(order, value),
            Record::Badge(badge) => postcard::to_extend(badge, value),
        }
        .map_err(encoding)?;
        let slices = (Slice::new(&value[header_len..]), Slice::new(&value));
        self.value = value;
        Ok(slices)
    }
}

/// The variant index of `StoredPayload::Record`.
const STORED_PAYLOAD_RECORD: u32 = 0;

/// The variant index of the record in [`Record`], as postcard writes it.
fn record_variant(record: &Record) -> u32 {
    match record {
        Record::Message(_) => 0,
        Record::Touch(_) => 1,
        Record::Event(_) => 2,
        Record::Order(_) => 3,
        Record::Badge(_) => 4,
    }
}

fn encoding(error: postcard::Error) -> StoreError {
    StoreError::Backend(format!("encoding a value: {error}"))
}

/// A log entry as stored: its seq is the key.
#[derive(Serialize, Deserialize)]
struct StoredLogEntry {
    appended_at: Millis,
    payload: StoredPayload,
}

fn dedup_key(key: Key, record: &Record) -> Key {
    let (namespace, id) = match record.dedup_key() {
        DedupKey::Message(msg_hash) => (b'm', msg_hash),
        DedupKey::Event(event_id) => (b'e', event_id),
    };
    key.str(record.tenant()).tag(namespace).str(id)
}

/// The keys of a newly accepted record's rows, its own table's and every index's: all hold
/// the same value, the record's postcard.
fn record_rows(record: &Record, buffers: &mut Buffers, mut row: impl FnMut(Table, Slice)) {
    match record {
        Record::Message(message) => {
            row(Table::Messages, buffers.key(|key| key.str(&message.tenant).str(&message.msg_hash)));
        }
        Record::Touch(touch) => {
            let by_customer =
                buffers.key(|key| time_key(key.str(&touch.tenant).str(&touch.customer_id), Some(CUSTOMER_BUCKET_MS), touch.ts).str(&touch.event_id));
            row(Table::TouchesByCustomer, by_customer);
            let by_message = buffers.key(|key| time_key(key.str(&touch.tenant).str(&touch.msg_hash), None, touch.ts).str(&touch.event_id));
            row(Table::TouchesByMessage, by_message);
            let by_time = buffers.key(|key| time_key(key.str(&touch.tenant), Some(TIME_BUCKET_MS), touch.ts).str(&touch.event_id));
            row(Table::TouchesByTime, by_time);
        }
        Record::Event(event) => {
            let by_time = buffers.key(|key| time_key(key.str(&event.tenant), Some(TIME_BUCKET_MS), event.ts).str(&event.event_id));
            row(Table::EventsByTime, by_time);
            let by_name = buffers.key(|key| time_key(key.str(&event.tenant).str(&event.name), None, event.ts).str(&event.event_id));
            row(Table::EventsByName, by_name);
        }
        Record::Order(order) => {
            let key = buffers.key(|key| time_key(key.str(&order.tenant).str(&order.order_id), None, order.ts).str(&order.event_id));
            row(Table::Orders, key);
        }
        Record::Badge(badge) => {
            let key = buffers.key(|key| time_key(key.str(&badge.tenant).str(&badge.customer_id), None, badge.ts).str(&badge.event_id));
            row(Table::Badges, key);
        }
    }
}

/// The conversion's row and its index rows, which all hold a copy of it.
fn conversion_keys(conversion: &Conversion) -> Vec<(Table, Vec<u8>)> {
    let fact = &conversion.fact;
    let id = |key: Key| key.str(&fact.goal_id).str(&fact.key).into_vec();
    let by_customer = Key::new().str(&fact.tenant).str(&fact.customer_id);
    let mut keys = vec![
        (Table::Conversions, id(Key::new().str(&fact.tenant))),
        (Table::ConversionsByCustomer, id(time_key(by_customer, Some(CUSTOMER_BUCKET_MS), fact.ts))),
        (Table::ConversionsByTime, id(time_key(Key::new().str(&fact.tenant), Some(TIME_BUCKET_MS), fact.ts))),
    ];
    if let Some(msg_hash) = &fact.explicit_msg_hash {
        keys.push((Table::ConversionsByExplicit, id(Key::new().str(&fact.tenant).str(msg_hash))));
    }
    keys
}

fn rollup_key(tenant: &str, granularity: Granularity, bucket: Millis, cell: &Cell) -> Result<Vec<u8>> {
    let key = Key::new().str(tenant).tag(granularity_tag(granularity)).time(bucket);
    Ok(key.bytes(&encode(cell)?).into_vec())
}

fn granularity_tag(granularity: Granularity) -> u8 {
    match granularity {
        Granularity::Hour => b'h',
        Granularity::Day => b'd',
    }
}

/// The key of a per-shard counter in `meta`: its name, then the shard.
fn counter_key(name: &[u8], shard: u32) -> Vec<u8> {
    debug_assert!(shard < LOG_SHARDS);
    [name, b"/", &shard.to_be_bytes()].concat()
}

/// The key of a log entry: shard, then position, both big-endian so they sort numerically.
fn log_key(shard: u32, seq: u64) -> [u8; 12] {
    let mut key = [0; 12];
    key[..4].copy_from_slice(&shard.to_be_bytes());
    key[4..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `partition`, then (in bucketed tables) the bucket of `ts`, then `ts`.
fn time_key(partition: Key, bucket_ms: Option<Millis>, ts: Millis) -> Key {
    match bucket_ms {
        // Saturating: the bucket of a time near `Millis::MIN` would start below it.
        Some(bucket_ms) => partition.time(ts.saturating_sub(ts.rem_euclid(bucket_ms))).time(ts),
        None => partition.time(ts),
    }
}

type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keys of rows in `partition`, laid out as [`time_key`] writes them, with
/// `from <= ts < to`; `to = None` means no upper end (an inclusive end at `Millis::MAX`).
fn time_range(partition: &Key, bucket_ms: Option<Millis>, from: Millis, to: Option<Millis>) -> KeyRange {
    let lower = Bound::Included(time_key(partition.clone(), bucket_ms, from).into_vec());
    let upper = match to {
        Some(to) => Bound::Excluded(time_key(partition.clone(), bucket_ms, to).into_vec()),
        None => key::prefix_end(partition.as_bytes()).map_or(Bound::Unbounded, Bound::Excluded),
    };
    (lower, upper)
}

/// Whether a range holds no key; fjall is not asked about inverted ranges.
fn range_is_empty(range: &KeyRange) -> bool {
    match range {
        (Bound::Included(lower), Bound::Excluded(upper)) => lower >= upper,
        _ => false,
    }
}

fn decode<T: DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable value in {}: {e}", table.name())))
}

fn backend(error: fjall::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

/// Composite keys whose byte order is the order of their components.
///
/// - strings: a u32 big-endian length, then the bytes. No byte is reserved, so ids holding
///   any bytes cannot collide, and a key built from whole components is a prefix only of
///   keys with exactly those components. (Strings sort by length first; no read here ranges
///   over strings, only over times and sequence numbers.)
/// - times (`i64`): big-endian with the sign bit flipped, so negative times sort first.
/// - tags: one byte.
mod key {
    #[derive(Debug, Clone, Default, PartialEq, Eq)]
    pub struct Key(Vec<u8>);

    impl Key {
        pub fn new() -> Key {
            Key(Vec::with_capacity(64))
        }

        /// A key built in `buffer`, emptied first (to reuse its allocation).
        pub fn in_buffer(mut buffer: Vec<u8>) -> Key {
            buffer.clear();
            Key(buffer)
        }

        pub fn str(mut self, text: &str) -> Key {
            // Keys are capped at 64 KiB by fjall, so a string's length always fits.
            let len = u32::try_from(text.len()).unwrap_or(u32::MAX);
            self.0.extend_from_slice(&len.to_be_bytes());
            self.0.extend_from_slice(text.as_bytes());
            self
        }

        pub fn time(mut self, ts: i64) -> Key {
            self.0.extend_from_slice(&((ts as u64) ^ (1 << 63)).to_be_bytes());
            self
        }

        pub fn tag(mut self, tag: u8) -> Key {
            self.0.push(tag);
            self
        }

        /// Raw bytes, only as the last component (they carry no length).
        pub fn bytes(mut self, bytes: &[u8]) -> Key {
            self.0.extend_from_slice(bytes);
            self
        }

        pub fn as_bytes(&self) -> &[u8] {
            &self.0
        }

        pub fn into_vec(self) -> Vec<u8> {
            self.0
        }
    }

    /// Reads a string component: the string and the bytes after it.
    pub fn read_str(bytes: &[u8]) -> Option<(&str, &[u8])> {
        let (len, rest) = bytes.split_first_chunk::<4>()?;
        let (text, rest) = rest.split_at_checked(u32::from_be_bytes(*len) as usize)?;
        Some((std::str::from_utf8(text).ok()?, rest))
    }

    /// The least key above every key starting with `prefix`; `None` when there is none.
    pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
        let mut end = prefix.to_vec();
        while let Some(last) = end.pop() {
            if last < u8::MAX {
                end.push(last + 1);
                return Some(end);
            }
        }
        None
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        #[test]
        fn times_sort_numerically_negative_first() {
            let times = [i64::MIN, -86_400_000, -1, 0, 1, 1_700_000_000_000, i64::MAX];
            let keys: Vec<Vec<u8>> = times.iter().map(|&ts| Key::new().time(ts).into_vec()).collect();
            assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "{keys:?}");
        }

        #[test]
        fn string_components_cannot_run_into_each_other() {
            let split = |a: &str, b: &str| Key::new().str(a).str(b).into_vec();
            assert_ne!(split("ab", "c"), split("a", "bc"));
            assert_ne!(split("a\0", ""), split("a", "\0"));
            // A whole-component prefix matches only keys with that very component.
            let tenant = Key::new().str("t").into_vec();
            assert!(!Key::new().str("t2").str("x").into_vec().starts_with(&tenant));
            assert!(Key::new().str("t").str("x").into_vec().starts_with(&tenant));
        }

        #[test]
        fn strings_read_back() {
            let key = Key::new().str("tenant").str("").tag(7).into_vec();
            let (first, rest) = read_str(&key).unwrap();
            let (second, rest) = read_str(rest).unwrap();
            assert_eq!((first, second, rest), ("tenant", "", &[7u8][..]));
            assert_eq!(read_str(&[0, 0, 0, 9, b'a']), None, "length past the end");
        }

        #[test]
        fn time_order_wins_over_later_components() {
            let key = |ts: i64, id: &str| Key::new().str("t").time(ts).str(id).into_vec();
            assert!(key(-1, "zzzz") < key(0, "a"));
            assert!(key(5, "b") < key(6, ""));
        }

        #[test]
        fn prefix_end_bounds_exactly_the_prefixed_keys() {
            assert_eq!(prefix_end(&[1, 2]), Some(vec![1, 3]));
            assert_eq!(prefix_end(&[1, 255, 255]), Some(vec![2]));
            assert_eq!(prefix_end(&[255]), None);
            let end = prefix_end(&[1, 255]).unwrap();
            assert!(vec![1, 255, 255, 255] < end && end <= vec![2]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::model::{BadgeAction, BadgeSource, BadgeEvent, Channel, Message, TouchKind};

    #[test]
    fn log_entry_encodes_as_header_and_row() {
        let tenant = "t".to_owned();
        let records = [
            Record::Message(Message {
                tenant: tenant.clone(),
                msg_hash: "m".into(),
                campaign_id: "c".into(),
                channel: Channel::ALL[0],
                tags: vec!["a".into()],
                sent_at: -5,
            }),
            Record::Touch(Touch {
                tenant: tenant.clone(),
                event_id: "e".into(),
                msg_hash: "m".into(),
                customer_id: "cu".into(),
                kind: TouchKind::ALL[1],
                ts: 1_700_000_000_000,
            }),
            Record::Event(AppEvent {
                tenant: tenant.clone(),
                event_id: "e".into(),
                customer_id: "cu".into(),
                name: "n".into(),
                ts: 3,
                value_micros: Some(-7),
                msg_hash: None,
            }),
            Record::Order(OrderRecord {
                tenant: tenant.clone(),
                event_id: "e".into(),
                order_id: "o".into(),
                customer_id: "cu".into(),
                status: "PAID".into(),
                amount_minor: 100,
                currency: "EUR".into(),
                categories: vec![],
                channel: "web".into(),
                ts: 4,
                msg_hash: Some("m".into()),
            }),
            Record::Badge(BadgeEvent {
                tenant,
                event_id: "e".into(),
                customer_id: "cu".into(),
                badge_id: "b".into(),
                action: BadgeAction::ALL[0],
                ts: 5,
                source: BadgeSource::ALL[0],
                reason: None,
            }),
        ];
        let mut buffers = Buffers::default();
        for appended_at in [0, 1, 1_800_000_000_000, -1] {
            for record in &records {
                let (row, entry) = buffers.record_values(appended_at, record).unwrap();
                let stored = StoredLogEntry { appended_at, payload: StoredPayload::Record(record.clone()) };
                assert_eq!(&*entry, &encode(&stored).unwrap()[..], "{record:?}");
                let own = match record {
                    Record::Message(m) => encode(m),
                    Record::Touch(t) => encode(t),
                    Record::Event(e) => encode(e),
                    Record::Order(o) => encode(o),
                    Record::Badge(b) => encode(b),
                };
                assert_eq!(&*row, &own.unwrap()[..], "{record:?}");
            }
        }
    }

    #[test]
    fn merged_touch_scans_equal_single_scans() {
        let dir = tempfile::tempdir().unwrap();
        let tables = EmbeddedStore::open(dir.path()).unwrap().tables;
        let touch = |i: i64, customer: &str| {
            Record::Touch(Touch {
                tenant: "t".into(),
                event_id: format!("e{i}"),
                msg_hash: "m".into(),
                customer_id: customer.into(),
                kind: TouchKind::ALL[1],
                ts: 1_000 * i,
            })
        };
        tables.ingest_sync((0..40).map(|i| touch(i, ["a", "b"][i as usize % 2])).collect()).unwrap();
        let span = |customer: &str, from: Millis, to: Millis| CustomerSpan { tenant: "t".into(), customer_id: customer.into(), from, to };
        let spans = [
            span("a", 5_000, 20_000),
            span("b", 0, 3_000),
            span("a", 10_000, 30_000),
            span("a", 30_000, 30_000),
            span("a", 9_000, 4_000),
            span("b", 2_000, 39_000),
            span("a", 31_000, 35_000),
            span("c", 0, 40_000),
            span("a", 5_000, 20_000),
        ];
        let merged = tables.customer_touches_many(&spans).unwrap();
        for (span, got) in spans.iter().zip(merged) {
            assert_eq!(got, tables.customer_touches("t", &span.customer_id, span.from, span.to).unwrap(), "{span:?}");
        }
    }
}
