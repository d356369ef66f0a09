//! [`IngestLog`] on fjall: dedup marks, rows and log entries of an ingest call in one atomic
//! batch; the log read back in order; entries attribution set aside.

use super::key::Key;
use super::layout::{CUSTOMER_BUCKET_MS, LOG_HEAD, PROCESSED, TIME_BUCKET_MS, Table, counter_key, log_key, time_key};
use super::{EmbeddedStore, Tables, Writes, Written, backend, decode};
use crate::support::{StoredPayload, decode_with_trace, lock, now_millis, with_trace};
use crate::{IngestLog, IngestOutcome, LogEntry, LogMark, LogPayload, LogStatus, Result, SetAside, StoreError, TraceParent, log_shard};
use async_trait::async_trait;
use fjall::Slice;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
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
        let _turn = lock(&self.log_writer);
        let mut log = LogAppender::new();
        // Straight into the fjall batch, no `Writes` map: ingest writes every key at most once
        // per call. Dedup marks are checked against `marked`, rows are keyed by the record's
        // dedup id (one accepted record per id), log keys by fresh positions and each shard's
        // head once, at the end.
        let mut batch = self.db.batch().durability(Some(self.persist));
        let mut marked: HashSet<Slice> = HashSet::with_capacity(records.len());
        let mut buffers = Buffers::default();
        let mut outcomes = Vec::with_capacity(records.len());
        let mut written = Written::default();
        let mut tenants: Vec<String> = Vec::new();
        for record in records {
            let dedup_key = buffers.key(|key| dedup_key(key, &record));
            super::checked(&dedup_key)?;
            if marked.contains(&dedup_key) || self.table(Table::Dedup).contains_key(&dedup_key).map_err(backend)? {
                outcomes.push(IngestOutcome::Duplicate);
                continue;
            }
            marked.insert(dedup_key.clone());
            written.add(Table::Dedup, dedup_key.len());
            batch.insert(self.table(Table::Dedup), dedup_key, Slice::empty());
            // Encoded once: the record's rows share one slice, its log entry copies the bytes
            // after a short header.
            let (row, entry) = buffers.record_values(log.appended_at, &record, trace)?;
            if let Record::Badge(badge) = &record {
                // Which customers a rederive of the tenant's badges visits.
                let key = buffers.key(|key| key.str(&badge.tenant).str(&badge.customer_id));
                batch.insert(self.table(Table::BadgeCustomers), key, Slice::empty());
            }
            record_rows(&record, &mut buffers, |table, key| {
                written.add(table, key.len() + row.len());
                batch.insert(self.table(table), key, row.clone());
            });
            if !tenants.iter().any(|tenant| tenant == record.tenant()) {
                tenants.push(record.tenant().to_owned());
            }
            let mark = log.next(self, log_shard(record.tenant()))?;
            written.add(Table::Log, 12 + entry.len());
            batch.insert(self.table(Table::Log), log_key(mark.shard, mark.seq), entry);
            outcomes.push(IngestOutcome::Accepted);
        }
        for (key, head) in log.heads() {
            batch.insert(self.table(Table::Meta), key, head);
        }
        // A tenant exists once its first record is stored: its row goes in the same batch.
        let mut known = lock(&self.known_tenants);
        let new_tenants: Vec<String> = tenants.into_iter().filter(|tenant| !known.contains(tenant)).collect();
        for tenant in &new_tenants {
            batch.insert(self.table(Table::Tenants), Key::new().str(tenant).into_vec(), Slice::empty());
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
        let mut log = LogAppender::new();
        let mark = log.append(self, log_shard(tenant), LogPayload::Recompute { tenant: tenant.to_owned() }, &mut writes)?;
        log.finish(&mut writes);
        self.apply(writes)?;
        Ok(mark)
    }

    fn log_status(&self, shard: u32) -> Result<LogStatus> {
        let head = self.counter(LOG_HEAD, shard)?;
        let processed = self.counter(PROCESSED, shard)?;
        let oldest_pending_at = self.read_log(shard, processed, 1)?.first().map(|entry| entry.appended_at);
        let set_aside = self.table(Table::SetAside).prefix(shard.to_be_bytes()).count() as u64;
        Ok(LogStatus { head, processed, oldest_pending_at, set_aside })
    }

    pub(super) fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        // Within one shard: `after` is at most u64::MAX, the next shard's keys start after it.
        let range = (Bound::Excluded(log_key(shard, after)), Bound::Included(log_key(shard, u64::MAX)));
        self.table(Table::Log)
            .range(range)
            .take(limit)
            .map(|guard| {
                let (key, value) = guard.into_inner().map_err(backend)?;
                let seq = log_seq(&key)?;
                let (stored, trace): (StoredLogEntry, _) = decode_with_trace(&value)
                    .map_err(|e| StoreError::Corrupt(format!("undecodable value in {}: {e}", Table::Log.name())))?;
                Ok(LogEntry { seq, appended_at: stored.appended_at, payload: stored.payload.into(), trace })
            })
            .collect()
    }

    fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>> {
        self.table(Table::SetAside)
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
        let Some(bytes) = self.table(Table::Meta).get(counter_key(name, shard)).map_err(backend)? else {
            return Ok(0);
        };
        let bytes: [u8; 8] = (*bytes).try_into().map_err(|_| {
            StoreError::Corrupt(format!("meta counter {:?}/{shard} is not 8 bytes", String::from_utf8_lossy(name)))
        })?;
        Ok(u64::from_be_bytes(bytes))
    }
}

/// Appends log entries after each shard's head, all stamped with the same clock reading.
/// Used under the `log_writer` lock.
pub(super) struct LogAppender {
    /// The heads of the shards appended to so far.
    heads: BTreeMap<u32, u64>,
    appended_at: Millis,
}

impl LogAppender {
    pub(super) fn new() -> Self {
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

    pub(super) fn append(&mut self, tables: &Tables, shard: u32, payload: LogPayload, writes: &mut Writes) -> Result<LogMark> {
        let mark = self.next(tables, shard)?;
        // (A name too long for a key, which the edge never lets through, cannot hold data:
        // its tenant does not come to exist.)
        if let Some(tenant) = payload.tenant()
            && let key = Key::new().str(tenant).into_vec()
            && super::checked(&key).is_ok()
        {
            writes.put_raw(Table::Tenants, key, Vec::new());
        }
        let entry = StoredLogEntry { appended_at: self.appended_at, payload: payload.into() };
        writes.put(Table::Log, log_key(shard, mark.seq).to_vec(), &entry)?;
        Ok(mark)
    }

    /// The `meta` rows of the new heads.
    fn heads(&self) -> impl Iterator<Item = (Vec<u8>, [u8; 8])> + '_ {
        self.heads.iter().map(|(&shard, head)| (counter_key(LOG_HEAD, shard), head.to_be_bytes()))
    }

    /// Records the new heads in `writes`.
    pub(super) fn finish(self, writes: &mut Writes) {
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
    /// ([`StoredLogEntry`], then the trace: [`with_trace`]), which is a short header
    /// followed by the same bytes.
    fn record_values(&mut self, appended_at: Millis, record: &Record, trace: Option<TraceParent>) -> Result<(Slice, Slice)> {
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
        let row_end = value.len();
        let value = with_trace(value, trace);
        let slices = (Slice::new(&value[header_len..row_end]), Slice::new(&value));
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
                let stored = StoredLogEntry { appended_at, payload: StoredPayload::Record(record.clone()) };
                let trace = TraceParent::new([7; 16], [9; 8], 1);
                let (_, traced) = buffers.record_values(appended_at, record, trace).unwrap();
                assert_eq!(&*traced, &with_trace(encode(&stored).unwrap(), trace)[..], "{record:?}");
                let (stored_again, trace_again) = decode_with_trace::<StoredLogEntry>(&traced).unwrap();
                assert_eq!((encode(&stored_again).unwrap(), trace_again), (encode(&stored).unwrap(), trace));
                let (row, entry) = buffers.record_values(appended_at, record, None).unwrap();
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
}
