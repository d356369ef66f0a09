//! The embedded backend: [`EmbeddedStore`], every table a fjall keyspace in one local folder.
//!
//! | file | what |
//! |---|---|
//! | `mod.rs` | opening the store, the blocking-pool adapter, reads and atomic write batches |
//! | `layout.rs` | the tables and how their keys are laid out |
//! | `key.rs` | composite keys whose byte order is the order of their components |
//! | `ingest_log.rs`, `config_store.rs`, `coordination.rs`, `record_reads.rs`, `attribution_state.rs`, `report_reads.rs` | one role of the contract each |
//!
//! The layout mirrors the CQL tables of the ScyllaDB backend (`layout.rs` lists them):
//! every key starts with the tenant, then the table's partition key, then (for tables read
//! by time) a time bucket, then the clustering columns. Every index holds a full copy of
//! its row rather than a pointer to a primary table, as the CQL tables do: each read is then
//! one range scan, never a scan plus a point read per row. One table has no CQL twin:
//! `tenant_rollups`, every campaign's counters summed per bucket, because a scan here steps
//! over every row in its range, where CQL reads each bucket's partition on its own.
//!
//! Leases and the live-worker list are kept in memory: one process opens a folder at a
//! time, so its workers are the only ones there are.
//!
//! Values are postcard (serde). Each call's writes (rows, indexes, dedup marks, log
//! entries, counters) go to fjall in one atomic batch whose journal is flushed before the
//! call returns: to the OS by default, which survives a crash of the process, or with
//! `fdatasync` when [`EmbeddedOptions::sync`] is set, which survives a crash of the machine.

mod attribution_state;
mod badges;
mod config_store;
mod coordination;
mod dedup_filter;
mod fold_state;
mod ingest_log;
mod key;
mod layout;
mod message_cache;
mod record_reads;
mod report_reads;
mod rollup_overlay;
mod usage;

use crate::{LOG_SHARDS, Result, StoreError};
use crate::support::{decode_campaign_cells, encode, encode_campaign_cells};
use touchstone_core::attribution::Conversion;
use touchstone_core::fold::Segment;
use crate::CellKinds;
use touchstone_core::rollup::CampaignCells;
use coordination::Leases;
use fjall::{Database, Keyspace, KeyspaceCreateOptions, PersistMode};
use key::Key;
use layout::{KeyRange, Table, range_is_empty};
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Memory bounds, so that the process stays small however much data it holds:
/// - each table's memtable is flushed at this size (30 tables: at most ~120 MiB of
///   memtables, and smaller skiplists insert faster than fjall's 64 MiB default). This
///   store rotates memtables itself ([`Tables::account`]); fjall's own rotation is set never
///   to trigger ([`FJALL_ROTATION_OFF`]);
const MEMTABLE_BYTES: u64 = 4 * 1024 * 1024;
/// fjall 3.1 rotates a full memtable by a message to its worker pool, sent again on every
/// write until a worker gets to it; the worker that rotates then sends a flush message on
/// the same bounded channel. Under sustained writes the repeats fill the channel and every
/// worker blocks on that send: flushes stop for good and memtables grow without bound (the
/// 10M-record bench run stopped flushing at ~4.5M records and grew 1.5 GiB per million;
/// fjall-rs/fjall#323). Rotating from the writing thread, as [`Tables::account`] does, sends
/// from outside the pool, which the workers keep draining.
const FJALL_ROTATION_OFF: u64 = 1 << 40;
/// - fjall rotates journals at 64 MB; when one is sealed, the store flushes every table
///   holding writes in it ([`Tables::release_old_journals`]), so journals stay near two.
///   Past this size fjall would ask its workers to rotate the stragglers itself, which can
///   deadlock them: set well above what the store's own rotation lets journals reach;
const JOURNAL_BYTES: u64 = 512 * 1024 * 1024;
/// - the block cache, shared by every table. Attribution's reads (a customer's touches and
///   conversions) are random, so memory does more good here than in memtables: 128 MiB of
///   cache with 4 MiB memtables costs less CPU than 64 MiB with 8 MiB, in the same RSS.
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

/// fjall's flush and compaction threads. With two or more, fjall 3.1's first worker hands
/// every compaction it receives back to the channel it reads, to stay free for flushes:
/// while the others are busy compacting it receives that message again at once, and spins
/// on it (a profile of a bulk load saw ~10% of the process's CPU there on two cores).
/// One worker flushes and compacts in turn.
const FJALL_WORKERS: usize = 1;

/// fjall refuses (by panicking) keys longer than this; every key is checked first, so that
/// an oversized one is an error, never a panic.
const MAX_KEY_BYTES: usize = u16::MAX as usize;

/// How far a write is pushed towards the disk before the call that made it returns.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EmbeddedOptions {
    /// `fdatasync` the journal on every write: survives power loss, costs a disk flush per
    /// call. Off, writes reach the OS before returning, which survives a crash of the process.
    pub sync: bool,
}

/// Every role of the [`Store`](crate::Store) on fjall, in one local folder. One process
/// opens a folder at a time. Cheap to clone: clones share the open store.
#[derive(Clone)]
pub struct EmbeddedStore {
    tables: Arc<Tables>,
    leases: Arc<Leases>,
}

/// The open fjall database and its keyspaces, one per table.
struct Tables {
    db: Database,
    /// Indexed by `Table as usize`.
    tables: Vec<Keyspace>,
    /// Bytes written to each table's active memtable, indexed like `tables`.
    unflushed: Vec<AtomicU64>,
    /// fjall's journal count when the last batch was accounted ([`Tables::release_old_journals`]).
    journals_seen: std::sync::atomic::AtomicUsize,
    /// Operations and bytes per table, for `make bench`.
    usage: usage::Usage,
    /// Registered messages read before (a registration never changes: its first arrival
    /// stands), so attribution reads each from the table once.
    registered_messages: message_cache::MessageCache,
    persist: PersistMode,
    /// Held by every call that appends to the log (ingest, config saves, recomputes): it
    /// makes dedup's check-then-write and the head counter's read-then-write atomic. It
    /// guards the filter of dedup keys, which only ingest calls change.
    log_writer: Mutex<dedup_filter::DedupFilter>,
    /// Tenants this process has seen in `tenants`: ingest writes a tenant's row once.
    known_tenants: Mutex<std::collections::HashSet<String>>,
    /// One per log shard, held by that shard's commits: their read-modify-writes (rollups,
    /// the processed position) must not interleave. Every row a commit writes is of a
    /// tenant of its shard, so commits of different shards touch different rows and run
    /// side by side.
    committers: Vec<Mutex<()>>,
    /// Each shard's rollup deltas committed and not yet folded into their rows.
    overlays: rollup_overlay::Overlays,
}

impl EmbeddedStore {
    /// Opens (creating if needed) the store in `dir`, flushing writes to the OS.
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_with(dir, EmbeddedOptions::default())
    }

    pub fn open_with(dir: &Path, options: EmbeddedOptions) -> Result<Self> {
        Self::open_inner(dir, options, rollup_overlay::OVERLAY_BYTES)
    }

    fn open_inner(dir: &Path, options: EmbeddedOptions, overlay_budget: usize) -> Result<Self> {
        std::fs::create_dir_all(dir)
            .map_err(|e| StoreError::Backend(format!("creating {}: {e}", dir.display())))?;
        let db = Database::builder(dir)
            .cache_size(CACHE_BYTES)
            .max_journaling_size(JOURNAL_BYTES)
            .worker_threads(FJALL_WORKERS)
            .open()
            .map_err(backend)?;
        let tables = Table::ALL
            .iter()
            .map(|table| db.keyspace(table.name(), || KeyspaceCreateOptions::default().max_memtable_size(FJALL_ROTATION_OFF)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        for name in Table::RETIRED {
            if db.keyspace_exists(name) {
                let retired = db.keyspace(name, KeyspaceCreateOptions::default).map_err(backend)?;
                db.delete_keyspace(retired).map_err(backend)?;
                tracing::info!(keyspace = name, "retired keyspace deleted");
            }
        }
        tracing::info!(dir = %dir.display(), sync = options.sync, "embedded store opened");
        let unflushed = Table::ALL.iter().map(|_| AtomicU64::new(0)).collect();
        let dedup_filter = dedup_filter::DedupFilter::load(&tables[Table::Dedup as usize]).map_err(backend)?;
        let tables = Tables {
            db,
            tables,
            unflushed,
            journals_seen: std::sync::atomic::AtomicUsize::new(0),
            usage: usage::Usage::default(),
            registered_messages: message_cache::MessageCache::default(),
            persist: if options.sync { PersistMode::SyncData } else { PersistMode::Buffer },
            log_writer: Mutex::new(dedup_filter),
            known_tenants: Mutex::default(),
            committers: (0..LOG_SHARDS).map(|_| Mutex::new(())).collect(),
            overlays: rollup_overlay::Overlays::new(overlay_budget),
        };
        tables.replay_rollup_journal()?;
        tables.fill_tenant_rollups()?;
        ingest_log::convert_entry_log(&tables.db, &tables)?;
        tables.build_fold_state()?;
        tables.recompute_once(&[
            (layout::MODELS_SPLIT, "conversions credited before model splits were kept"),
            (layout::EXPOSURES_INDEXED, "customers folded before campaign exposures were indexed"),
        ])?;
        Ok(EmbeddedStore { tables: Arc::new(tables), leases: Arc::default() })
    }

    /// Operations and bytes per table since the store was opened.
    pub fn usage(&self) -> Vec<crate::TableUsage> {
        self.tables.usage.snapshot()
    }

    /// Runs `call` on the blocking pool with the open tables: fjall reads and journal
    /// flushes are blocking file I/O, and a long scan (a tenant recompute) must not stall
    /// the async workers. A panic is logged here and answered with a plain error, so its
    /// text never reaches a client. `op` names the role method, for the latency metric.
    async fn blocking<T: Send + 'static>(&self, op: &'static str, call: impl FnOnce(&Tables) -> Result<T> + Send + 'static) -> Result<T> {
        let tables = self.tables.clone();
        crate::support::timed("embedded", op, async move {
            tokio::task::spawn_blocking(move || call(&tables)).await.map_err(|err| {
                tracing::error!(error = %err, "embedded store call panicked");
                StoreError::Backend("embedded store call failed; the server log has the details".to_owned())
            })?
        })
        .await
    }
}

impl Tables {
    /// A table to write to (writes are counted when their batch commits).
    fn table(&self, table: Table) -> &Keyspace {
        &self.tables[table as usize]
    }

    /// A table to read from: counts one read operation (a point read, a membership check
    /// or one range scan). Bytes read are counted where values are decoded.
    fn read(&self, table: Table) -> &Keyspace {
        self.usage.read(table);
        &self.tables[table as usize]
    }

    /// The stored bytes of a key, counted as a read.
    pub(super) fn get_bytes(&self, table: Table, key: &[u8]) -> Result<Option<fjall::Slice>> {
        let bytes = self.read(table).get(checked(key)?).map_err(backend)?;
        if let Some(bytes) = &bytes {
            self.usage.read_bytes(table, bytes.len());
        }
        Ok(bytes)
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        self.get_bytes(table, key)?.map(|bytes| decode(table, &bytes)).transpose()
    }

    /// A stored tenant configuration, of the current layout or an older one.
    fn get_config(&self, table: Table, key: &[u8]) -> Result<Option<touchstone_core::config::TenantConfig>> {
        self.get_bytes(table, key)?.map(|bytes| crate::support::decode_config(table.name(), &bytes)).transpose()
    }

    fn scan<T: DeserializeOwned>(&self, table: Table, range: KeyRange) -> Result<Vec<T>> {
        if range_is_empty(&range) {
            return Ok(Vec::new());
        }
        layout::check_range(&range)?;
        self.read(table).range(range).map(|guard| self.decode_read(table, &guard.value().map_err(backend)?)).collect()
    }

    fn scan_prefix<T: DeserializeOwned>(&self, table: Table, prefix: Key) -> Result<Vec<T>> {
        let scan = self.read(table).prefix(checked(prefix.as_bytes())?);
        scan.map(|guard| self.decode_read(table, &guard.value().map_err(backend)?)).collect()
    }

    /// The conversions in a range of `table` (conversions or conversions by time).
    fn scan_conversions(&self, table: Table, range: KeyRange) -> Result<Vec<Conversion>> {
        if range_is_empty(&range) {
            return Ok(Vec::new());
        }
        layout::check_range(&range)?;
        self.read(table).range(range).map(|guard| self.decode_conversion(table, &guard.value().map_err(backend)?)).collect()
    }

    fn scan_conversions_prefix(&self, prefix: Key) -> Result<Vec<Conversion>> {
        let scan = self.read(Table::Conversions).prefix(checked(prefix.as_bytes())?);
        scan.map(|guard| self.decode_conversion(Table::Conversions, &guard.value().map_err(backend)?)).collect()
    }

    fn decode_conversion(&self, table: Table, bytes: &[u8]) -> Result<Conversion> {
        self.usage.read_bytes(table, bytes.len());
        crate::support::decode_conversion(table.name(), bytes)
    }

    fn decode_segment(&self, bytes: &[u8]) -> Result<Segment> {
        self.usage.read_bytes(Table::CustomerStates, bytes.len());
        crate::support::decode_segment(Table::CustomerStates.name(), bytes)
    }

    /// Decodes a value read from `table`, counting its bytes.
    fn decode_read<T: DeserializeOwned>(&self, table: Table, bytes: &[u8]) -> Result<T> {
        self.usage.read_bytes(table, bytes.len());
        decode(table, bytes)
    }

    /// Sums `campaign_rollups` into `tenant_rollups` once, for a store made before that
    /// table (a new one just gets the mark). One batch holds the rows and the mark, so a fill
    /// cut short is done again from the start at the next open.
    fn fill_tenant_rollups(&self) -> Result<()> {
        if self.read(Table::Meta).get(layout::TENANT_ROLLUPS_FILLED).map_err(backend)?.is_some() {
            return Ok(());
        }
        let mut sums: BTreeMap<Vec<u8>, CampaignCells> = BTreeMap::new();
        for guard in self.read(Table::CampaignRollups).iter() {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let sum = sums.entry(layout::tenant_rollup_key_of(&key)?.to_vec()).or_default();
            for (cell, tally) in decode_campaign_cells(&value, CellKinds::All)? {
                sum.add(cell, tally);
            }
        }
        let mut writes = Writes::default();
        if !sums.is_empty() {
            tracing::info!(rows = sums.len(), "filling tenant_rollups from campaign_rollups, once");
        }
        for (key, cells) in sums {
            if let Some(row) = encode_campaign_cells(cells.0)? {
                writes.put_raw(Table::TenantRollups, key, row);
            }
        }
        writes.put_raw(Table::Meta, layout::TENANT_ROLLUPS_FILLED.to_vec(), Vec::new());
        self.apply(writes)
    }

    /// Applies `writes` as one atomic batch and flushes its journal as configured.
    fn apply(&self, writes: Writes) -> Result<()> {
        let mut batch = self.db.batch().durability(Some(self.persist));
        let mut written = Written::default();
        for ((table, key), value) in writes.0 {
            checked(&key)?;
            written.add(table, key.len() + value.as_ref().map_or(0, Vec::len));
            match value {
                Some(value) => batch.insert(self.table(table), key, value),
                None => batch.remove(self.table(table), key),
            }
        }
        batch.commit().map_err(backend)?;
        self.account(written);
        Ok(())
    }

    /// Counts a committed batch's writes per table ([`usage::Usage`]) and its bytes against
    /// each table's memtable, and rotates those that reached [`MEMTABLE_BYTES`] (see
    /// [`FJALL_ROTATION_OFF`] for why here) and, when fjall sealed a journal, every table
    /// holding unflushed writes. fjall halts writers while a table has 4 sealed memtables
    /// queued, which bounds what waits for a flush.
    fn account(&self, written: Written) {
        for (index, (&writes, &bytes)) in written.writes.iter().zip(&written.bytes).enumerate().filter(|(_, (writes, _))| **writes > 0) {
            self.usage.written(Table::ALL[index], writes, bytes);
            let total = self.unflushed[index].fetch_add(bytes, Ordering::Relaxed) + bytes;
            if total >= MEMTABLE_BYTES {
                self.rotate(index);
            }
        }
        self.release_old_journals();
    }

    /// When fjall seals another journal, rotates every table that still holds unflushed
    /// writes, so that the sealed journal can be dropped once they are flushed. Without it,
    /// a table written rarely keeps old journals alive until they pass
    /// [`JOURNAL_BYTES`]; fjall then asks its own workers to rotate those tables, and a
    /// worker doing that blocks on a send to the channel it drains: with every worker
    /// blocked so, flushes stop and every writer waits for ever (seen in a 10M-record run:
    /// both workers and every writer parked in `inner_rotate_memtable`). From here, the
    /// sends come from outside the pool, which keeps draining.
    fn release_old_journals(&self) {
        self.release_journals_at(self.db.journal_count());
    }

    /// [`Tables::release_old_journals`] with fjall's journal count read as `journals`.
    fn release_journals_at(&self, journals: usize) {
        if self.journals_seen.swap(journals, Ordering::Relaxed) >= journals || journals < 2 {
            return;
        }
        for index in 0..self.tables.len() {
            if self.unflushed[index].load(Ordering::Relaxed) > 0 {
                self.rotate(index);
            }
        }
    }

    /// Rotates a table's memtable, handing it to fjall's workers to flush. The batch that
    /// filled it is committed already, so a failed rotation is only logged, and tried again
    /// after the next write.
    fn rotate(&self, index: usize) {
        match self.tables[index].rotate_memtable() {
            Ok(_) => self.unflushed[index].store(0, Ordering::Relaxed),
            Err(error) => tracing::warn!(table = Table::ALL[index].name(), %error, "memtable rotation failed"),
        }
    }
}

/// Keys and bytes a batch writes to each table, indexed by `Table as usize`.
#[derive(Default)]
struct Written {
    writes: [u64; Table::ALL.len()],
    bytes: [u64; Table::ALL.len()],
}

impl Written {
    /// One key put or removed, `bytes` of key and value.
    fn add(&mut self, table: Table, bytes: usize) {
        self.writes[table as usize] += 1;
        self.bytes[table as usize] += bytes as u64;
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

/// `key`, if fjall takes it.
fn checked(key: &[u8]) -> Result<&[u8]> {
    if key.len() > MAX_KEY_BYTES {
        return Err(StoreError::Backend(format!("a key of {} bytes is longer than the {MAX_KEY_BYTES} the store takes", key.len())));
    }
    Ok(key)
}

fn decode<T: DeserializeOwned>(table: Table, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt(format!("undecodable value in {}: {e}", table.name())))
}

fn backend(error: fjall::Error) -> StoreError {
    StoreError::Backend(error.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{IngestLog, log_shard};
    use touchstone_core::model::{Record, Touch, TouchKind};

    /// A store made before `tenant_rollups` (campaign rows, no tenant rows, no mark) has
    /// them filled when opened, once: the buckets then read as the campaign rows summed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tenant_rollups_are_filled_once_from_campaign_rows() {
        use crate::{AttributionCommit, AttributionState, CampaignDelta, CellKinds, ReportReads};
        use touchstone_core::attribution::Rule;
        use touchstone_core::rollup::{CampaignCell, DAY_MS, Granularity, HOUR_MS, Tally};

        let dir = tempfile::tempdir().unwrap();
        let day = 1_767_225_600_000; // 1 January 2026, UTC
        let converted = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch };
        let opened = CampaignCell::Touch { kind: TouchKind::Opened };
        let delta = |campaign_id: &str, hour, cell: &CampaignCell, count| CampaignDelta {
            tenant: "t".into(),
            campaign_id: campaign_id.into(),
            hour,
            cell: cell.clone(),
            tally: Tally { count, value_micros: 10 * count as i128 },
        };
        let deltas = vec![
            delta("c1", day, &converted, 1),
            delta("c2", day + HOUR_MS, &converted, 2),
            delta("c2", day + HOUR_MS, &opened, 5),
            delta("", day + DAY_MS, &converted, 3),
        ];
        let read = |store: EmbeddedStore| async move { store.campaign_rollup_buckets("t", None, CellKinds::All, Granularity::Day, day, day + 2 * DAY_MS).await.unwrap() };
        let expected = {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let shard = log_shard("t");
            let commit = AttributionCommit { shard, campaign_rollups: deltas, ..AttributionCommit::default() };
            store.commit_attribution(commit).await.unwrap();
            store.tables.fold_every_overlay().unwrap();
            let expected = read(store.clone()).await;
            assert_eq!(expected.len(), 2);
            // Back to how an older store was left: no tenant rows and no mark.
            let tables = &store.tables;
            let mut writes = Writes::default();
            for guard in tables.table(Table::TenantRollups).iter() {
                writes.delete(Table::TenantRollups, guard.key().unwrap().to_vec());
            }
            writes.delete(Table::Meta, layout::TENANT_ROLLUPS_FILLED.to_vec());
            tables.apply(writes).unwrap();
            assert_eq!(read(store.clone()).await, vec![]);
            expected
        };
        let reopened = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(read(reopened.clone()).await, expected, "filled from the campaign rows");
        // Filled once: with the mark present, opening again leaves the rows as they are.
        let rows = |store: &EmbeddedStore| store.tables.table(Table::TenantRollups).iter().count();
        let filled = rows(&reopened);
        assert_eq!(filled, 3 + 2 + 1, "three hours, two days, one month");
        drop(reopened);
        let again = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(rows(&again), filled);
        assert_eq!(read(again).await, expected);
    }

    /// Touch `i` of customer "c" of tenant "t", `i` ms into 2026.
    pub(super) fn touch(i: u64) -> Record {
        Record::Touch(Touch {
            tenant: "t".into(),
            event_id: format!("e{i}"),
            msg_hash: "m".into(),
            customer_id: "c".into(),
            kind: TouchKind::Opened,
            ts: 1_767_225_600_000 + i as i64,
        })
    }

    /// Status record `event_id` of order "o1" of customer "c" of tenant "t": 10.00 USD.
    pub(super) fn order(event_id: &str, ts: touchstone_core::model::Millis) -> touchstone_core::model::OrderRecord {
        touchstone_core::model::OrderRecord {
            tenant: "t".into(),
            event_id: event_id.into(),
            order_id: "o1".into(),
            customer_id: "c".into(),
            status: "purchased".into(),
            amount_minor: 1_000,
            currency: "USD".into(),
            categories: Vec::new(),
            channel: "app".into(),
            ts,
            msg_hash: None,
        }
    }

    /// Every table an ingest call writes counts one write per key and the bytes of key and
    /// value; dedup counts a read only for the keys its filter may hold.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn usage_counts_operations_and_bytes_per_table() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.ingest((0..10).map(touch).collect()).await.unwrap();
        store.ingest((5..15).map(touch).collect()).await.unwrap();
        let usage = |table: Table| store.usage().into_iter().find(|usage| usage.table == table.name()).unwrap_or_default();
        let dedup = usage(Table::Dedup);
        assert_eq!((dedup.reads, dedup.writes), (5, 15), "a read only for the keys the filter holds (the 5 repeats), a mark per accepted one");
        assert!(dedup.write_bytes >= 15 * 3, "key bytes counted: {}", dedup.write_bytes);
        let log = usage(Table::Log);
        assert_eq!(log.writes, 2, "one chunk per call");
        assert_eq!(usage(Table::TouchesByTime).writes, 15);
        assert_eq!(usage(Table::Meta).writes, 4 + 2, "the four marks written at open, then each call's shard head once");
        assert_eq!(usage(Table::Conversions), crate::TableUsage::default(), "tables never used are left out");
        store.read_log(log_shard("t"), 0, 100).await.unwrap();
        let log = usage(Table::Log);
        assert_eq!(log.reads, 1, "one range scan");
        assert!(log.read_bytes > 15 * 12);
    }

    /// When the journal count grows past one, every table still holding unflushed writes
    /// is rotated (its writes go to a table file and stop holding the sealed journal);
    /// the same count again rotates nothing more.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sealed_journal_gets_every_table_with_writes_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let tables = &store.tables;
        let mut writes = Writes::default();
        writes.put_raw(Table::Configs, b"straggler".to_vec(), b"x".to_vec());
        tables.apply(writes).unwrap();
        let unflushed = |table: Table| tables.unflushed[table as usize].load(Ordering::Relaxed);
        assert!(unflushed(Table::Configs) > 0);
        tables.release_journals_at(1);
        assert!(unflushed(Table::Configs) > 0, "one journal: nothing to release");
        tables.release_journals_at(2);
        assert_eq!(unflushed(Table::Configs), 0, "rotated when a journal was sealed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while tables.table(Table::Configs).table_count() == 0 {
            assert!(std::time::Instant::now() < deadline, "the rotated memtable was never flushed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// fjall's own rotation is off, so only [`Tables::account`] gets memtables flushed: past
    /// [`MEMTABLE_BYTES`] of writes, a table has a flushed table file and its count starts over.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn full_memtables_are_rotated_and_flushed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let touch = |i: u64| {
            Record::Touch(Touch {
                tenant: "t".into(),
                event_id: format!("event-{i:012}-{}", "x".repeat(100)),
                msg_hash: "m".into(),
                customer_id: format!("customer-{}", i % 1_000),
                kind: TouchKind::Opened,
                ts: 1_767_225_600_000 + i as i64,
            })
        };
        for chunk in 0..10 {
            store.ingest((chunk * 5_000..(chunk + 1) * 5_000).map(touch).collect()).await.unwrap();
        }
        let dedup = store.tables.table(Table::Dedup);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while dedup.table_count() == 0 {
            assert!(std::time::Instant::now() < deadline, "no memtable of `dedup` was flushed");
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert!(store.tables.unflushed[Table::Dedup as usize].load(Ordering::Relaxed) < MEMTABLE_BYTES);
    }
}
