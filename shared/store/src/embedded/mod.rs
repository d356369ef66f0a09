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
//! one range scan, never a scan plus a point read per row.
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
mod ingest_log;
mod key;
mod layout;
mod record_reads;
mod report_reads;

use crate::{LOG_SHARDS, Result, StoreError};
use crate::support::encode;
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
/// - each table's memtable is flushed at this size (21 tables: at most ~85 MiB of
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
/// - the journal is rotated (flushing memtables that hold old entries) at this size;
const JOURNAL_BYTES: u64 = 128 * 1024 * 1024;
/// - the block cache, shared by every table. Attribution's reads (a customer's touches and
///   conversions) are random, so memory does more good here than in memtables: 128 MiB of
///   cache with 4 MiB memtables costs less CPU than 64 MiB with 8 MiB, in the same RSS.
const CACHE_BYTES: u64 = 128 * 1024 * 1024;

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
    persist: PersistMode,
    /// Held by every call that appends to the log (ingest, config saves, recomputes): it
    /// makes dedup's check-then-write and the head counter's read-then-write atomic.
    log_writer: Mutex<()>,
    /// Tenants this process has seen in `tenants`: ingest writes a tenant's row once.
    known_tenants: Mutex<std::collections::HashSet<String>>,
    /// One per log shard, held by that shard's commits: their read-modify-writes (rollups,
    /// the processed position) must not interleave. Every row a commit writes is of a
    /// tenant of its shard, so commits of different shards touch different rows and run
    /// side by side.
    committers: Vec<Mutex<()>>,
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
            .map(|table| db.keyspace(table.name(), || KeyspaceCreateOptions::default().max_memtable_size(FJALL_ROTATION_OFF)))
            .collect::<Result<Vec<_>, _>>()
            .map_err(backend)?;
        tracing::info!(dir = %dir.display(), sync = options.sync, "embedded store opened");
        let unflushed = Table::ALL.iter().map(|_| AtomicU64::new(0)).collect();
        let tables = Tables {
            db,
            tables,
            unflushed,
            persist: if options.sync { PersistMode::SyncData } else { PersistMode::Buffer },
            log_writer: Mutex::new(()),
            known_tenants: Mutex::default(),
            committers: (0..LOG_SHARDS).map(|_| Mutex::new(())).collect(),
        };
        Ok(EmbeddedStore { tables: Arc::new(tables), leases: Arc::default() })
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
    fn table(&self, table: Table) -> &Keyspace {
        &self.tables[table as usize]
    }

    fn get<T: DeserializeOwned>(&self, table: Table, key: &[u8]) -> Result<Option<T>> {
        let Some(bytes) = self.table(table).get(checked(key)?).map_err(backend)? else {
            return Ok(None);
        };
        decode(table, &bytes).map(Some)
    }

    fn scan<T: DeserializeOwned>(&self, table: Table, range: KeyRange) -> Result<Vec<T>> {
        if range_is_empty(&range) {
            return Ok(Vec::new());
        }
        layout::check_range(&range)?;
        self.table(table)
            .range(range)
            .map(|guard| decode(table, &guard.value().map_err(backend)?))
            .collect()
    }

    fn scan_prefix<T: DeserializeOwned>(&self, table: Table, prefix: Key) -> Result<Vec<T>> {
        self.table(table)
            .prefix(checked(prefix.as_bytes())?)
            .map(|guard| decode(table, &guard.value().map_err(backend)?))
            .collect()
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

    /// Counts a committed batch's bytes against each table's memtable and rotates those
    /// that reached [`MEMTABLE_BYTES`], handing them to fjall's workers to flush (see
    /// [`FJALL_ROTATION_OFF`] for why here). fjall halts writers while a table has 4 sealed
    /// memtables queued, which bounds what waits for a flush. The batch is committed
    /// already, so a failed rotation is only logged, and tried again after the next write.
    fn account(&self, written: Written) {
        for (index, bytes) in written.0.iter().enumerate().filter(|(_, bytes)| **bytes > 0) {
            let total = self.unflushed[index].fetch_add(*bytes, Ordering::Relaxed) + bytes;
            if total < MEMTABLE_BYTES {
                continue;
            }
            match self.tables[index].rotate_memtable() {
                Ok(_) => self.unflushed[index].store(0, Ordering::Relaxed),
                Err(error) => tracing::warn!(table = Table::ALL[index].name(), %error, "memtable rotation failed"),
            }
        }
    }
}

/// Bytes a batch writes to each table, indexed by `Table as usize`.
#[derive(Default)]
struct Written([u64; Table::ALL.len()]);

impl Written {
    fn add(&mut self, table: Table, bytes: usize) {
        self.0[table as usize] += bytes as u64;
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
    use crate::IngestLog;
    use touchstone_core::model::{Record, Touch, TouchKind};

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
