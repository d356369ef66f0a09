//! [`IngestLog`] on fjall: dedup marks, rows and the log chunks of an ingest call in one
//! atomic batch; the log read back in order; entries attribution set aside.
//!
//! The log is kept in chunks: one value per call and shard, under the key of its first
//! position, holding every entry that call appended to that shard (the positions of a
//! chunk are consecutive: appends hold the `log_writer` lock). A chunk is written once and
//! never changed; attribution does not remove what it processed, so the log is the archive
//! of everything accepted.

use super::key::Key;
use super::layout::{LOG_HEAD, PROCESSED, TIME_BUCKET_MS, Table, counter_key, log_key, time_key};
use super::{EmbeddedStore, Tables, Writes, Written, backend, decode};
use crate::support::{StoredPayload, decode_with_trace, lock, now_millis};
use crate::{IngestLog, IngestOutcome, LogEntry, LogMark, LogPayload, LogStatus, Result, SetAside, StoreError, TraceParent, log_shard};
use async_trait::async_trait;
use fjall::Slice;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use touchstone_core::model::{DedupKey, Millis, Record};

#[async_trait]
impl IngestLog for EmbeddedStore {
    async fn ingest_traced(&self, records: Vec<Record>, trace: Option<TraceParent>) -> Result<Vec<IngestOutcome>> {
        self.blocking("ingest", move |tables| tables.ingest(records, trace)).await
    }

    async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        let tenant = tenant.to_owned();
        self.blocking("append_recompute", move |tables| tables.append_recompute(&tenant)).await
    }

    async fn log_status(&self, shard: u32) -> Result<LogStatus> {
        self.blocking("log_status", move |tables| tables.log_status(shard)).await
    }

    async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        self.blocking("read_log", move |tables| tables.read_log(shard, after, limit)).await
    }

    async fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>> {
        self.blocking("set_aside", move |tables| tables.set_aside(shard, limit)).await
    }
}

impl Tables {
    pub(super) fn ingest(&self, records: Vec<Record>, trace: Option<TraceParent>) -> Result<Vec<IngestOutcome>> {
        let mut filter = lock(&self.log_writer);
        let mut log = LogAppender::new(trace);
        // Straight into the fjall batch, no `Writes` map: ingest writes every key at most once
        // per call. Dedup marks are checked against `marked`, rows are keyed by the record's
        // dedup id (one accepted record per id), and each shard's chunk and head once, at
        // the end.
        let mut batch = self.db.batch().durability(Some(self.persist));
        let mut marked: HashSet<Slice> = HashSet::with_capacity(records.len());
        let mut buffers = Buffers::default();
        let mut outcomes = Vec::with_capacity(records.len());
        let mut written = Written::default();
        let mut tenants: Vec<String> = Vec::new();
        for record in records {
            let dedup_key = buffers.key(|key| dedup_key(key, &record));
            super::checked(&dedup_key)?;
            // The table is read only when the filter may hold the key.
            let seen = marked.contains(&dedup_key)
                || (filter.may_contain(&dedup_key) && self.read(Table::Dedup).contains_key(&dedup_key).map_err(backend)?);
            if seen {
                outcomes.push(IngestOutcome::Duplicate);
                continue;
            }
            filter.insert(&dedup_key);
            marked.insert(dedup_key.clone());
            written.add(Table::Dedup, dedup_key.len());
            batch.insert(self.table(Table::Dedup), dedup_key, Slice::empty());
            // Encoded once: the record's rows share one slice, its log entry copies the bytes
            // after a short header.
            let row = buffers.record_row(&record)?;
            if let Record::Badge(badge) = &record {
                // Which customers a rederive of the tenant's badges visits.
                let key = buffers.key(|key| key.str(&badge.tenant).str(&badge.customer_id));
                written.add(Table::BadgeCustomers, key.len());
                batch.insert(self.table(Table::BadgeCustomers), key, Slice::empty());
            }
            record_rows(&record, &mut buffers, |table, key| {
                written.add(table, key.len() + row.len());
                batch.insert(self.table(table), key, row.clone());
            });
            if !tenants.iter().any(|tenant| tenant == record.tenant()) {
                tenants.push(record.tenant().to_owned());
            }
            log.push_record(self, log_shard(record.tenant()), &record, &row)?;
            outcomes.push(IngestOutcome::Accepted);
        }
        for (key, chunk) in log.chunks()? {
            written.add(Table::Log, key.len() + chunk.len());
            batch.insert(self.table(Table::Log), key, chunk);
        }
        for (key, head) in log.heads() {
            written.add(Table::Meta, key.len() + head.len());
            batch.insert(self.table(Table::Meta), key, head);
        }
        // A tenant exists once its first record is stored: its row goes in the same batch.
        let mut known = lock(&self.known_tenants);
        let new_tenants: Vec<String> = tenants.into_iter().filter(|tenant| !known.contains(tenant)).collect();
        for tenant in &new_tenants {
            let key = Key::new().str(tenant).into_vec();
            written.add(Table::Tenants, key.len());
            batch.insert(self.table(Table::Tenants), key, Slice::empty());
        }
        batch.commit().map_err(backend)?;
        known.extend(new_tenants);
        drop(known);
        self.account(written);
        Ok(outcomes)
    }

    fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        let _turn = lock(&self.log_writer);
        let mut writes = Writes::default();
        let mut log = LogAppender::new(None);
        let mark = log.append(self, log_shard(tenant), LogPayload::Recompute { tenant: tenant.to_owned() }, &mut writes)?;
        log.finish(&mut writes)?;
        self.apply(writes)?;
        Ok(mark)
    }

    fn log_status(&self, shard: u32) -> Result<LogStatus> {
        let head = self.counter(LOG_HEAD, shard)?;
        let processed = self.counter(PROCESSED, shard)?;
        let oldest_pending_at = self.appended_after(shard, processed)?;
        let set_aside = self.read(Table::SetAside).prefix(shard.to_be_bytes()).count() as u64;
        Ok(LogStatus { head, processed, oldest_pending_at, set_aside })
    }

    pub(super) fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        let mut entries = Vec::new();
        if limit == 0 {
            return Ok(entries);
        }
        for chunk in self.chunks_from(shard, after)? {
            let (first, value) = chunk?;
            let (header, mut rest) = chunk_header(&value)?;
            for seq in first..first + u64::from(header.entries) {
                let (payload, tail): (StoredPayload, _) = postcard::take_from_bytes(rest).map_err(corrupt_chunk)?;
                rest = tail;
                if seq <= after {
                    continue;
                }
                entries.push(LogEntry { seq, appended_at: header.appended_at, payload: payload.into(), trace: header.trace() });
                if entries.len() == limit {
                    return Ok(entries);
                }
            }
        }
        Ok(entries)
    }

    /// Every record of `tenant` in its shard's log that `keep` keeps, in log order: the log
    /// is the archive, so this is every such record ever accepted (stores whose log was
    /// trimmed before it was kept also read their legacy rows: see `tenant_orders`).
    pub(super) fn tenant_records(&self, tenant: &str, mut keep: impl FnMut(&Record) -> bool) -> Result<Vec<Record>> {
        let mut records = Vec::new();
        for chunk in self.chunks_from(log_shard(tenant), 0)? {
            let (_, value) = chunk?;
            let (header, mut rest) = chunk_header(&value)?;
            for _ in 0..header.entries {
                let (payload, tail): (StoredPayload, _) = postcard::take_from_bytes(rest).map_err(corrupt_chunk)?;
                rest = tail;
                if let LogPayload::Record(record) = LogPayload::from(payload)
                    && record.tenant() == tenant
                    && keep(&record)
                {
                    records.push(record);
                }
            }
        }
        Ok(records)
    }

    /// `appended_at` of the first entry after `after`, reading chunk headers only.
    fn appended_after(&self, shard: u32, after: u64) -> Result<Option<Millis>> {
        for chunk in self.chunks_from(shard, after)? {
            let (first, value) = chunk?;
            let (header, _) = chunk_header(&value)?;
            if first + u64::from(header.entries) > after.saturating_add(1) {
                return Ok(Some(header.appended_at));
            }
        }
        Ok(None)
    }

    /// The shard's chunks in order, from the one holding the entry after `after` (the last
    /// chunk starting at or before it, which may end before it), as (first position, value).
    fn chunks_from(&self, shard: u32, after: u64) -> Result<impl Iterator<Item = Result<(u64, fjall::Slice)>> + '_> {
        let next = after.saturating_add(1);
        let holding = self.read(Table::Log).range(log_key(shard, 0)..=log_key(shard, next)).next_back();
        let start = match holding {
            Some(guard) => guard.key().map_err(backend)?,
            None => Slice::new(&log_key(shard, next)),
        };
        let chunks = self.table(Table::Log).range(start..=Slice::new(&log_key(shard, u64::MAX)));
        Ok(chunks.map(|guard| {
            let (key, value) = guard.into_inner().map_err(backend)?;
            self.usage.read_bytes(Table::Log, key.len() + value.len());
            Ok((log_seq(&key)?, value))
        }))
    }

    fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>> {
        self.read(Table::SetAside)
            .prefix(shard.to_be_bytes())
            .rev()
            .take(limit)
            .map(|guard| {
                let (key, value) = guard.into_inner().map_err(backend)?;
                let stored: StoredSetAside = decode(Table::SetAside, &value)?;
                let entry = LogEntry { seq: log_seq(&key)?, appended_at: stored.appended_at, payload: stored.payload.into(), trace: None };
                Ok(SetAside { entry, reason: stored.reason, set_aside_at: stored.set_aside_at })
            })
            .collect()
    }

    pub(super) fn counter(&self, name: &[u8], shard: u32) -> Result<u64> {
        let Some(bytes) = self.read(Table::Meta).get(counter_key(name, shard)).map_err(backend)? else {
            return Ok(0);
        };
        let bytes: [u8; 8] = (*bytes).try_into().map_err(|_| {
            StoreError::Corrupt(format!("meta counter {:?}/{shard} is not 8 bytes", String::from_utf8_lossy(name)))
        })?;
        Ok(u64::from_be_bytes(bytes))
    }
}

/// Appends log entries after each shard's head, all stamped with the same clock reading and
/// trace, into one chunk per shard. Used under the `log_writer` lock.
pub(super) struct LogAppender {
    /// The heads of the shards appended to so far.
    heads: BTreeMap<u32, u64>,
    /// Per shard: the position of the chunk's first entry, its entry count and the entries'
    /// stored payloads back to back.
    chunks: BTreeMap<u32, (u64, u32, Vec<u8>)>,
    appended_at: Millis,
    trace: Option<TraceParent>,
}

impl LogAppender {
    pub(super) fn new(trace: Option<TraceParent>) -> Self {
        LogAppender { heads: BTreeMap::new(), chunks: BTreeMap::new(), appended_at: now_millis(), trace }
    }

    /// The next position of `shard`, and the body of its chunk to append the entry to.
    fn next(&mut self, tables: &Tables, shard: u32) -> Result<(LogMark, &mut Vec<u8>)> {
        let head = match self.heads.get_mut(&shard) {
            Some(head) => head,
            None => self.heads.entry(shard).or_insert(tables.counter(LOG_HEAD, shard)?),
        };
        *head += 1;
        let seq = *head;
        let (_, entries, body) = self.chunks.entry(shard).or_insert_with(|| (seq, 0, Vec::new()));
        *entries += 1;
        Ok((LogMark { shard, seq }, body))
    }

    /// Appends an accepted record whose postcard is `row`: its stored payload is a short
    /// header, then those bytes.
    fn push_record(&mut self, tables: &Tables, shard: u32, record: &Record, row: &[u8]) -> Result<LogMark> {
        let (mark, body) = self.next(tables, shard)?;
        *body = extend_with_record_payload(std::mem::take(body), record, row)?;
        Ok(mark)
    }

    pub(super) fn append(&mut self, tables: &Tables, shard: u32, payload: LogPayload, writes: &mut Writes) -> Result<LogMark> {
        // (A name too long for a key, which the edge never lets through, cannot hold data:
        // its tenant does not come to exist.)
        if let Some(tenant) = payload.tenant()
            && let key = Key::new().str(tenant).into_vec()
            && super::checked(&key).is_ok()
        {
            writes.put_raw(Table::Tenants, key, Vec::new());
        }
        let (mark, body) = self.next(tables, shard)?;
        let taken = postcard::to_extend(&StoredPayload::from(payload), std::mem::take(body)).map_err(encoding)?;
        *body = taken;
        Ok(mark)
    }

    /// Each shard's chunk: its key and value.
    fn chunks(&self) -> Result<Vec<([u8; 12], Vec<u8>)>> {
        let trace = self.trace.map(TraceParent::to_bytes);
        self.chunks
            .iter()
            .map(|(&shard, (first, entries, body))| {
                let header = ChunkHeader { appended_at: self.appended_at, trace, entries: *entries };
                let mut value = postcard::to_stdvec(&header).map_err(encoding)?;
                value.extend_from_slice(body);
                Ok((log_key(shard, *first), value))
            })
            .collect()
    }

    /// The `meta` rows of the new heads.
    fn heads(&self) -> impl Iterator<Item = (Vec<u8>, [u8; 8])> + '_ {
        self.heads.iter().map(|(&shard, head)| (counter_key(LOG_HEAD, shard), head.to_be_bytes()))
    }

    /// Records the chunks and the new heads in `writes`.
    pub(super) fn finish(self, writes: &mut Writes) -> Result<()> {
        for (key, chunk) in self.chunks()? {
            writes.put_raw(Table::Log, key.to_vec(), chunk);
        }
        for (key, head) in self.heads() {
            writes.put_raw(Table::Meta, key, head.to_vec());
        }
        Ok(())
    }
}

/// `body` with `StoredPayload::Record(record)` appended, given the record's postcard `row`.
/// Postcard writes an enum variant as its index (a varint, as a u32 is), so the payload is
/// that short header, then the row (`record_payload_encodes_as_header_and_row` checks it).
fn extend_with_record_payload(body: Vec<u8>, record: &Record, row: &[u8]) -> Result<Vec<u8>> {
    let mut body = postcard::to_extend(&(STORED_PAYLOAD_RECORD, record_variant(record)), body).map_err(encoding)?;
    body.extend_from_slice(row);
    Ok(body)
}

/// What a chunk's value starts with (postcard); the entries' [`StoredPayload`]s follow,
/// back to back.
#[derive(Serialize, Deserialize)]
struct ChunkHeader {
    /// When the call appended the chunk (the store's clock).
    appended_at: Millis,
    /// The trace context of that call ([`TraceParent::to_bytes`]), if it was traced.
    trace: Option<[u8; TraceParent::STORED_LEN]>,
    entries: u32,
}

impl ChunkHeader {
    fn trace(&self) -> Option<TraceParent> {
        self.trace.as_ref().and_then(|bytes| TraceParent::from_bytes(bytes))
    }
}

/// A chunk's header and the entries after it.
fn chunk_header(value: &[u8]) -> Result<(ChunkHeader, &[u8])> {
    postcard::take_from_bytes(value).map_err(corrupt_chunk)
}

fn corrupt_chunk(error: postcard::Error) -> StoreError {
    StoreError::Corrupt(format!("undecodable chunk in {}: {error}", Table::Log.name()))
}

/// A store made before chunks kept one value per log entry in the keyspace `log`: those
/// left unprocessed become chunks of one entry, with their positions, in one batch that
/// also drops the old keyspace's rows; then the keyspace is deleted.
pub(super) fn convert_entry_log(db: &fjall::Database, tables: &Tables) -> Result<()> {
    const OLD: &str = "log";
    if !db.keyspace_exists(OLD) {
        return Ok(());
    }
    let old = db.keyspace(OLD, fjall::KeyspaceCreateOptions::default).map_err(backend)?;
    let mut writes = Writes::default();
    let mut converted = 0usize;
    for guard in old.iter() {
        let (key, value) = guard.into_inner().map_err(backend)?;
        let seq = log_seq(&key)?;
        let shard = u32::from_be_bytes(key[..4].try_into().map_err(|_| StoreError::Corrupt("log key is not 12 bytes".to_owned()))?);
        let (stored, trace): (StoredLogEntry, _) = decode_with_trace(&value).map_err(corrupt_chunk)?;
        let header = ChunkHeader { appended_at: stored.appended_at, trace: trace.map(TraceParent::to_bytes), entries: 1 };
        let mut chunk = postcard::to_stdvec(&header).map_err(encoding)?;
        chunk = postcard::to_extend(&stored.payload, chunk).map_err(encoding)?;
        writes.put_raw(Table::Log, log_key(shard, seq).to_vec(), chunk);
        converted += 1;
    }
    tables.apply(writes)?;
    db.delete_keyspace(old).map_err(backend)?;
    tracing::info!(entries = converted, "log entries of an older store converted to chunks");
    Ok(())
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

    /// The value of the record's rows: its postcard.
    fn record_row(&mut self, record: &Record) -> Result<Slice> {
        self.value.clear();
        let value = std::mem::take(&mut self.value);
        let value = match record {
            Record::Message(message) => postcard::to_extend(message, value),
            Record::Touch(touch) => postcard::to_extend(touch, value),
            Record::Event(event) => postcard::to_extend(event, value),
            Record::Order(order) => postcard::to_extend(order, value),
            Record::Badge(badge) => postcard::to_extend(badge, value),
        }
        .map_err(encoding)?;
        let row = Slice::new(&value);
        self.value = value;
        Ok(row)
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

/// A log entry as stores made before chunks kept it, one value per position (its key).
#[derive(Serialize, Deserialize)]
struct StoredLogEntry {
    appended_at: Millis,
    payload: StoredPayload,
}

/// The position in a `log` or `set_aside` key.
fn log_seq(key: &[u8]) -> Result<u64> {
    key.get(4..)
        .and_then(|seq| <[u8; 8]>::try_from(seq).ok())
        .map(u64::from_be_bytes)
        .ok_or_else(|| StoreError::Corrupt("log key is not 12 bytes".to_owned()))
}

/// A set-aside entry as stored: its shard and seq are the key.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredSetAside {
    pub appended_at: Millis,
    pub set_aside_at: Millis,
    pub payload: StoredPayload,
    pub reason: String,
}

impl StoredSetAside {
    pub(super) fn of(set_aside: &SetAside) -> StoredSetAside {
        StoredSetAside {
            appended_at: set_aside.entry.appended_at,
            set_aside_at: set_aside.set_aside_at,
            payload: set_aside.entry.payload.clone().into(),
            reason: set_aside.reason.clone(),
        }
    }
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
            let by_time =
                buffers.key(|key| time_key(key.str(&message.tenant), Some(TIME_BUCKET_MS), message.sent_at).str(&message.msg_hash));
            row(Table::MessagesByTime, by_time);
        }
        Record::Touch(touch) => {
            let by_time = buffers.key(|key| time_key(key.str(&touch.tenant), Some(TIME_BUCKET_MS), touch.ts).str(&touch.event_id));
            row(Table::TouchesByTime, by_time);
        }
        Record::Event(event) => {
            let by_time = buffers.key(|key| time_key(key.str(&event.tenant), Some(TIME_BUCKET_MS), event.ts).str(&event.event_id));
            row(Table::EventsByTime, by_time);
        }
        // Kept by the log alone: a tenant's orders are read back from it (`tenant_records`).
        Record::Order(_) => {}
        Record::Badge(badge) => {
            let key = buffers.key(|key| key.str(&badge.tenant).str(&badge.customer_id).time_desc(badge.ts).str_desc(&badge.event_id));
            row(Table::Badges, key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::support::encode;
    use touchstone_core::model::{AppEvent, BadgeAction, BadgeEvent, BadgeSource, Channel, Message, OrderRecord, Touch, TouchKind};

    #[test]
    fn record_payload_encodes_as_header_and_row() {
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
        for record in &records {
            let row = buffers.record_row(record).unwrap();
            let own = match record {
                Record::Message(m) => encode(m),
                Record::Touch(t) => encode(t),
                Record::Event(e) => encode(e),
                Record::Order(o) => encode(o),
                Record::Badge(b) => encode(b),
            };
            assert_eq!(&*row, &own.unwrap()[..], "{record:?}");
            let payload = extend_with_record_payload(vec![7], record, &row).unwrap();
            assert_eq!(payload[0], 7, "appended after what the body held");
            assert_eq!(&payload[1..], &encode(&StoredPayload::Record(record.clone())).unwrap()[..], "{record:?}");
        }
    }
}

#[cfg(test)]
mod chunk_tests {
    use super::*;
    use crate::support::{encode, with_trace};
    use crate::embedded::tests::touch;
    use crate::{EmbeddedStore, IngestLog};

    /// One chunk per call and shard; reads start anywhere inside a chunk and run across
    /// chunks; the status reads the oldest pending entry's time from chunk headers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_call_appends_one_chunk_and_reads_start_inside_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let shard = log_shard("t");
        let trace = TraceParent::new([1; 16], [2; 8], 1);
        store.ingest_traced((0..5).map(touch).collect(), trace).await.unwrap();
        store.ingest((5..8).map(touch).collect()).await.unwrap();
        assert_eq!(store.tables.read(Table::Log).iter().count(), 2, "one chunk per call");
        let all = store.read_log(shard, 0, 100).await.unwrap();
        assert_eq!(all.iter().map(|entry| entry.seq).collect::<Vec<_>>(), (1..=8).collect::<Vec<_>>());
        assert!(all[..5].iter().all(|entry| entry.trace == trace) && all[5..].iter().all(|entry| entry.trace.is_none()));
        for after in 0..=8 {
            for limit in 1..=9 {
                let page = store.read_log(shard, after, limit).await.unwrap();
                let expected: Vec<u64> = (after + 1..=8).take(limit).collect();
                assert_eq!(page.iter().map(|entry| entry.seq).collect::<Vec<_>>(), expected, "after {after}, limit {limit}");
            }
        }
        let status = store.log_status(shard).await.unwrap();
        assert_eq!((status.head, status.oldest_pending_at), (8, Some(all[0].appended_at)));
    }

    /// A store made before chunks has its unprocessed log entries (one value each, in the
    /// keyspace `log`) converted to chunks of one when opened.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn entries_of_an_older_store_become_chunks() {
        let dir = tempfile::tempdir().unwrap();
        let shard = log_shard("t");
        let trace = TraceParent::new([3; 16], [4; 8], 0);
        {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            store.ingest((0..2).map(touch).collect()).await.unwrap();
            let db = &store.tables.db;
            let old = db.keyspace("log", fjall::KeyspaceCreateOptions::default).unwrap();
            for (seq, record) in [(3u64, touch(2)), (4, touch(3))] {
                let stored = StoredLogEntry { appended_at: 42, payload: StoredPayload::Record(record) };
                old.insert(log_key(shard, seq), with_trace(encode(&stored).unwrap(), trace)).unwrap();
            }
        }
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert!(!store.tables.db.keyspace_exists("log"));
        let entries = store.read_log(shard, 2, 10).await.unwrap();
        assert_eq!(entries.iter().map(|entry| (entry.seq, entry.appended_at, entry.trace)).collect::<Vec<_>>(), [(3, 42, trace), (4, 42, trace)]);
        assert_eq!(entries[1].payload, LogPayload::Record(touch(3)));
    }
}
