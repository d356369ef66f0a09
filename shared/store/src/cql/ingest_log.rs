//! [`IngestLog`] on CQL: appending to a log shard under its lease, dedup by plain reads,
//! reading the log back in order (finishing what a crashed writer left behind), the shard's
//! status, and the entries attribution set aside.
//!
//! **Appending** (one call, one shard): one process at a time appends to a shard. It takes
//! the shard's lease in `log_shards` by compare-and-set, which gives it a new *epoch*, then
//! 1. dedups its records with plain reads of `dedup_marks`: a mark counts when its epoch
//!    committed, that is when it is older than the current one and not abandoned;
//! 2. writes a mark and a log row per new record, both carrying its epoch (plain writes,
//!    the log rows in unlogged batches per partition);
//! 3. commits: one compare-and-set moves the head past the new rows and frees the lease,
//!    if the epoch is still its own.
//!
//! So a chunk costs two Paxos rounds, however many records it holds. A process that finds
//! the lease held past its expiry ([`CqlOptions::intent_timeout`](super::CqlOptions)) takes
//! it over and records the holder's epoch as abandoned in the same compare-and-set: nothing
//! that holder wrote counts, even if its writes land later. A position may so hold rows of
//! several epochs (an abandoned holder's, then the next holder's); the highest is the one
//! that committed it, as every holder starts at the committed head.
//!
//! **Readable rows.** A committed log row starts as an *intent* (no outcome). The ingest
//! call then writes the record's rows in its tables and sets the outcome `accepted`; a
//! reader waits on an intent, and finishes it itself (writes the rows, accepts it) once it
//! has waited the intent timeout. Rows are only ever written for committed records, so a
//! crashed append leaves nothing a read could see.
//!
//! Config saves append their `Recompute` as an intent too, and settle it by compare-and-set
//! (`config_store.rs`). Set-aside entries are written by the commit that sets them aside
//! (`attribution_state.rs`); here they are only counted and read.

use super::timed;
use super::errors::cql_error;
use super::layout::{IDS_PER_READ, Partitions, chunk, chunk_bounds, decode, dedup_bucket, outliving_ttl, seq_value, shard_value};
use super::statements::PAGE_SIZE;
use super::{CqlStore, Inner, Lwt, Write, all};
use crate::support::{StoredPayload, decode_with_trace, encode, now_millis, with_trace};
use crate::{IngestLog, IngestOutcome, LogEntry, LogMark, LogPayload, LogPositions, LogStatus, Result, SetAside, StoreError, TraceParent, log_shard};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use scylla::statement::batch::{Batch, BatchType};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, Instant};
use touchstone_core::model::{DedupKey, Millis, Record};

/// Appends tried before giving up when other processes keep taking the shard over.
const APPEND_ATTEMPTS: u32 = 10;

/// Outcomes of `log_entries` rows (null: an intent).
pub(super) const ACCEPTED: &str = "accepted";
pub(super) const DUPLICATE: &str = "duplicate";

/// How appended rows start out.
#[derive(Clone, Copy)]
pub(super) enum Appended {
    /// An intent: its writer (or, after the timeout, a reader) settles it.
    Intent,
    /// Settled already (recomputes that need no more work).
    Accepted,
}

/// Where an appended row went: its position and the epoch it was written in (part of its
/// key, needed to settle it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placed {
    pub seq: u64,
    pub epoch: i64,
}

/// One thing to append: its payload, and its dedup key when it has one.
struct Item<'a> {
    dedup: Option<(&'a str, &'static str, &'a str)>,
    payload: Vec<u8>,
}

impl<'a> Item<'a> {
    /// A record, deduplicated by its key, with the trace of the call that appends it.
    fn record(record: &'a Record, trace: Option<TraceParent>) -> Result<Item<'a>> {
        Ok(Item { dedup: Some(dedup_key(record)), payload: with_trace(encode(&StoredPayload::Record(record.clone()))?, trace) })
    }
}

/// A shard's lease, held: the epoch it gave, the committed head it starts from, and the
/// epochs whose appends never committed.
pub(super) struct Hold {
    shard: u32,
    epoch: i64,
    head: u64,
    abandoned: HashSet<i64>,
}

/// `head, epoch, owner, lease_until, abandoned` of a `log_shards` row.
type ShardRow = (Option<i64>, Option<i64>, Option<String>, Option<i64>, Option<i64>);

/// `seq, epoch, appended_at, outcome, payload` of a `log_entries` row.
type LogRow = (i64, i64, Option<i64>, Option<String>, Option<Vec<u8>>);

/// `seq, appended_at, set_aside_at, payload, reason` of a `set_aside` row.
type SetAsideRow = (i64, i64, i64, Vec<u8>, String);

/// What a reader makes of one log position.
// Short-lived, one at a time: boxing the entry would cost an allocation per entry for nothing.
#[allow(clippy::large_enum_variant)]
enum Settled {
    Entry(LogEntry),
    /// A record whose writer stopped after its commit: an entry once the reader has done
    /// the rest of the writer's work (all such records of a read at once).
    Finish(LogEntry, Placed),
    /// A recompute that turned out not to be needed: passed without an entry.
    Passed,
    /// An intent still being settled: the read stops before it.
    Wait,
}

/// `(tenant, namespace, id)` of the `dedup_marks` table.
fn dedup_key(record: &Record) -> (&str, &'static str, &str) {
    match record.dedup_key() {
        DedupKey::Message(msg_hash) => (record.tenant(), "m", msg_hash),
        DedupKey::Event(event_id) => (record.tenant(), "e", event_id),
    }
}

#[async_trait]
impl IngestLog for CqlStore {
    async fn ingest_traced(&self, records: Vec<Record>, trace: Option<TraceParent>) -> Result<Vec<IngestOutcome>> {
        timed("ingest", async { self.inner.ingest(records, trace).await }).await
    }

    async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        timed("append_recompute", async { self.inner.append_recompute(tenant).await }).await
    }

    async fn log_status(&self, shard: u32) -> Result<LogStatus> {
        timed("log_status", async { self.inner.log_status(shard).await }).await
    }

    /// Two reads (the head, the lanes' applied positions), concurrently; nothing is applied.
    async fn log_positions(&self, shard: u32) -> Result<LogPositions> {
        timed("log_positions", async {
            let (head, (processed, progress)) = futures_util::try_join!(self.inner.head(shard), self.inner.applied_positions(shard))?;
            Ok(LogPositions { head, processed, progress })
        })
        .await
    }

    async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        timed("read_log", async { self.inner.read_log(shard, after, limit).await }).await
    }

    async fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>> {
        timed("set_aside", async { self.inner.set_aside(shard, limit).await }).await
    }
}

impl Inner {
    pub(super) async fn ingest(&self, records: Vec<Record>, trace: Option<TraceParent>) -> Result<Vec<IngestOutcome>> {
        // Before the log entries: a tenant exists once a record of it is stored.
        self.note_tenants(records.iter().map(Record::tenant)).await?;
        let placed = self.append_records(&records, trace).await?;
        let accepted: Vec<&Record> = placed.iter().map(|&(i, ..)| &records[i]).collect();
        self.write_records(&accepted).await?;
        self.accept_all(placed.iter().map(|&(_, shard, at)| (shard, at))).await?;
        let mut outcomes = vec![IngestOutcome::Duplicate; records.len()];
        for (i, ..) in placed {
            outcomes[i] = IngestOutcome::Accepted;
        }
        Ok(outcomes)
    }

    /// Appends the first arrivals among `records` as intents, shard by shard; which records
    /// were accepted (by index) and where they went.
    async fn append_records(&self, records: &[Record], trace: Option<TraceParent>) -> Result<Vec<(usize, u32, Placed)>> {
        // The first of several arrivals of one key within the call stands: the others never
        // reach the log.
        let mut seen = HashSet::new();
        let mut by_shard: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, record) in records.iter().enumerate() {
            if seen.insert(dedup_key(record)) {
                by_shard.entry(log_shard(record.tenant())).or_default().push(i);
            }
        }
        let appends = by_shard.into_iter().map(|(shard, indices)| async move {
            let items = indices.iter().map(|&i| Item::record(&records[i], trace)).collect::<Result<Vec<_>>>()?;
            let placed = self.append(shard, &items, Appended::Intent).await?;
            Ok(indices.into_iter().zip(placed).filter_map(|(i, at)| at.map(|at| (i, shard, at))).collect::<Vec<_>>())
        });
        Ok(all(appends).await?.into_iter().flatten().collect())
    }

    /// Sets the outcome of committed intents to `accepted`: in batches per log partition.
    async fn accept_all(&self, placed: impl Iterator<Item = (u32, Placed)>) -> Result<()> {
        let mut partitions = Partitions::default();
        for (shard, at) in placed {
            let values = (ACCEPTED, shard_value(shard), chunk(at.seq), seq_value(at.seq), at.epoch);
            partitions.add((shard, chunk(at.seq)), values, 32);
        }
        all(partitions.batches(self, &self.statements.update_log_outcome, None)).await.map(drop)
    }

    pub(super) async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        let shard = log_shard(tenant);
        self.note_tenants([tenant]).await?;
        let payload = encode(&StoredPayload::Recompute { tenant: tenant.to_owned() })?;
        let placed = self.append_one(shard, payload, Appended::Accepted).await?;
        Ok(LogMark { shard, seq: placed.seq })
    }

    /// Appends one payload that needs no dedup.
    pub(super) async fn append_one(&self, shard: u32, payload: Vec<u8>, start: Appended) -> Result<Placed> {
        let placed = self.append(shard, &[Item { dedup: None, payload }], start).await?;
        placed
            .first()
            .copied()
            .flatten()
            .ok_or_else(|| StoreError::Backend("appending one log row returned no position".to_owned()))
    }

    /// Appends the items not seen before to `shard`, in order, under its lease: where each
    /// went, `None` for a duplicate. Retried from the start when another process took the
    /// shard over meanwhile (what this attempt wrote is then abandoned).
    async fn append(&self, shard: u32, items: &[Item<'_>], start: Appended) -> Result<Vec<Option<Placed>>> {
        // Calls of this process take turns on a shard, rather than take its lease from
        // each other.
        let _turn = self.append_turns[shard as usize].lock().await;
        for _ in 0..APPEND_ATTEMPTS {
            let hold = self.take_shard(shard).await?;
            match self.append_held(&hold, items, start).await {
                Ok(Some(placed)) => return Ok(placed),
                Ok(None) => tracing::warn!(shard, epoch = hold.epoch, "another process took the log shard over mid-append; appending again"),
                Err(error) => {
                    self.abandon(&hold).await;
                    return Err(error);
                }
            }
        }
        Err(StoreError::Unavailable(format!("could not append to log shard {shard} in {APPEND_ATTEMPTS} attempts")))
    }

    /// Dedups, writes and commits under `hold`. `None` when the commit was fenced.
    async fn append_held(&self, hold: &Hold, items: &[Item<'_>], start: Appended) -> Result<Option<Vec<Option<Placed>>>> {
        let marked = self.marked(hold, items).await?;
        let fresh: Vec<&Item<'_>> = items.iter().zip(&marked).filter(|(_, marked)| !**marked).map(|(item, _)| item).collect();
        let head = self.write_held(hold, &fresh, start).await?;
        if !self.commit_append(hold, head).await? {
            return Ok(None);
        }
        // The fresh items, in order, got the positions after the hold's head.
        let mut seq = hold.head;
        let placed = marked
            .iter()
            .map(|&marked| {
                (!marked).then(|| {
                    seq += 1;
                    Placed { seq, epoch: hold.epoch }
                })
            })
            .collect();
        Ok(Some(placed))
    }

    /// Writes a mark (when it has a dedup key) and a log row for each item, at the
    /// positions after the hold's head and with its epoch; the head after them.
    async fn write_held(&self, hold: &Hold, items: &[&Item<'_>], start: Appended) -> Result<u64> {
        let s = &self.statements;
        let (shard, epoch) = (shard_value(hold.shard), hold.epoch);
        let appended_at = now_millis();
        let mut marks = Partitions::default();
        let mut partitions = Partitions::default();
        let mut head = hold.head;
        for item in items {
            head += 1;
            if let Some((tenant, namespace, id)) = item.dedup {
                let bucket = dedup_bucket(id);
                marks.add((tenant, bucket), (tenant, bucket, namespace, id, epoch, shard, seq_value(head)), id.len() + 40);
            }
            let size = item.payload.len() + 40;
            partitions.add(chunk(head), (shard, chunk(head), seq_value(head), epoch, appended_at, &item.payload), size);
        }
        let insert = match start {
            Appended::Intent => &s.insert_log_intent,
            Appended::Accepted => &s.insert_log_accepted,
        };
        let mut writes: Vec<Write<'_>> = marks.batches(self, &s.insert_dedup_mark, None);
        writes.extend(partitions.batches(self, insert, None));
        all(writes).await?;
        Ok(head)
    }

    /// Whether each item has a mark that counts: one written in an epoch that committed.
    /// One read per marks partition and namespace the items fall in (ids named in groups of
    /// [`IDS_PER_READ`]), not one per item.
    async fn marked(&self, hold: &Hold, items: &[Item<'_>]) -> Result<Vec<bool>> {
        let mut groups: HashMap<(&str, i32, &str), Vec<&str>> = HashMap::new();
        for (tenant, namespace, id) in items.iter().filter_map(|item| item.dedup) {
            groups.entry((tenant, dedup_bucket(id), namespace)).or_default().push(id);
        }
        let reads = groups.iter().flat_map(|(&(tenant, bucket, namespace), ids)| {
            ids.chunks(IDS_PER_READ).map(move |ids| async move {
                let rows: Vec<(String, i64)> = self.rows(&self.statements.select_dedup_marks, (tenant, bucket, namespace, ids)).await?;
                let counted = rows.into_iter().filter(|(_, epoch)| *epoch < hold.epoch && !hold.abandoned.contains(epoch));
                Ok(((tenant, namespace), counted.map(|(id, _)| id).collect::<Vec<_>>()))
            })
        });
        // By (tenant, namespace), so that an item is looked up by its borrowed id.
        let mut counted: HashMap<(&str, &str), HashSet<String>> = HashMap::new();
        for (key, ids) in all(reads).await? {
            counted.entry(key).or_default().extend(ids);
        }
        let marked = |(tenant, namespace, id): (&str, &str, &str)| counted.get(&(tenant, namespace)).is_some_and(|ids| ids.contains(id));
        Ok(items.iter().map(|item| item.dedup.is_some_and(marked)).collect())
    }

    /// Takes the shard's lease: at once when free or lapsed (recording the lapsed holder's
    /// epoch as abandoned), else after waiting for it to be freed, up to the request timeout.
    async fn take_shard(&self, shard: u32) -> Result<Hold> {
        let s = &self.statements;
        let give_up = Instant::now() + self.options.request_timeout;
        let mut pause = Duration::from_millis(1);
        loop {
            let rows: Vec<ShardRow> = self.rows(&s.select_log_shard, (shard_value(shard),)).await?;
            let Some(&(head, epoch, ref owner, lease_until, _)) = rows.first() else {
                return Err(StoreError::Corrupt(format!("log shard {shard} has no row")));
            };
            let (head, epoch) = (head.unwrap_or(0).max(0) as u64, epoch.unwrap_or(0));
            let mut abandoned: HashSet<i64> = rows.iter().filter_map(|row| row.4).collect();
            let now = now_millis();
            let lease = (epoch + 1, &self.owner, now.saturating_add(millis(self.options.intent_timeout)), shard_value(shard), epoch);
            let taken = match owner {
                None => self.lwt(&s.take_free_log_shard, lease).await?,
                // Our own lease, left by a call that failed to free it (calls of this
                // process take turns), or a lapsed one: its holder's appends never count.
                Some(holder) if *holder == self.owner || lease_until.is_none_or(|until| until < now) => {
                    let mut batch = Batch::new(BatchType::Unlogged);
                    batch.append_statement(s.take_held_log_shard.clone());
                    batch.append_statement(s.insert_abandoned_epoch.clone());
                    let (next, owner, until, shard_v, epoch) = lease;
                    let abandoned_row = (shard_v, epoch, self.abandoned_ttl());
                    let taken = self.session.batch(&batch, ((next, owner, until, shard_v, epoch, holder), abandoned_row)).await;
                    let taken = Lwt::from_result(taken.map_err(cql_error)?)?;
                    if taken.applied {
                        tracing::warn!(shard, holder, epoch, "took over a log shard whose lease lapsed; its unfinished appends are abandoned");
                        abandoned.insert(epoch);
                    }
                    taken
                }
                Some(_) => {
                    if Instant::now() >= give_up {
                        return Err(StoreError::Unavailable(format!("log shard {shard} stayed busy with another ingest process")));
                    }
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_millis(20));
                    continue;
                }
            };
            if taken.applied {
                return Ok(Hold { shard, epoch: epoch + 1, head, abandoned });
            }
        }
    }

    /// Moves the head to `head` (the hold's own head: nothing appended) and frees the lease,
    /// if the hold still has it. Whether it did (also when a retry of this very statement
    /// did it first).
    async fn commit_append(&self, hold: &Hold, head: u64) -> Result<bool> {
        let values = (seq_value(head), shard_value(hold.shard), hold.epoch, &self.owner);
        let committed = self.lwt(&self.statements.commit_log_shard, values).await?;
        // Only this hold frees the lease at its epoch: freed at our epoch means committed.
        Ok(committed.applied || (committed.bigint("epoch") == Some(hold.epoch) && committed.text("owner").is_none()))
    }

    /// Frees the lease after a failed append, recording the epoch as abandoned so that
    /// nothing it wrote counts. If this fails too, the lease lapses and the next process
    /// records it.
    async fn abandon(&self, hold: &Hold) {
        let s = &self.statements;
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.append_statement(s.release_log_shard.clone());
        batch.append_statement(s.insert_abandoned_epoch.clone());
        let shard = shard_value(hold.shard);
        let values = ((shard, hold.epoch, &self.owner), (shard, hold.epoch, self.abandoned_ttl()));
        if let Err(error) = self.session.batch(&batch, values).await {
            tracing::warn!(shard = hold.shard, %error, "could not free a log shard after a failed append; its lease will lapse");
        }
    }

    /// How long an abandoned epoch is remembered: longer than the marks it voids.
    fn abandoned_ttl(&self) -> i32 {
        outliving_ttl(self.options.retention_seconds)
    }

    pub(super) async fn head(&self, shard: u32) -> Result<u64> {
        let row: Option<(Option<i64>,)> = self.row(&self.statements.select_log_head, (shard_value(shard),)).await?;
        Ok(row.and_then(|(head,)| head).map_or(0, |head| head.max(0) as u64))
    }

    /// Reads only (see [`Inner::applied_position`]): a status call never applies a step.
    pub(super) async fn log_status(&self, shard: u32) -> Result<LogStatus> {
        let processed = self.applied_position(shard).await?;
        let (head, set_aside) = futures_util::try_join!(self.head(shard), self.set_aside_count(shard))?;
        let mut oldest_pending_at = None;
        let mut after = processed;
        // The first position still to be processed: accepted, or an intent. A recompute
        // that turned out a duplicate is not pending (it counts in head - processed, though).
        'chunks: while after < head {
            let (chunk_no, last) = chunk_bounds(after + 1, head);
            let rows: Vec<LogRow> = self.rows(&self.statements.select_log_rows, log_range(shard, chunk_no, after, last)).await?;
            for row in winners(rows) {
                if matches!(row.3.as_deref(), None | Some(ACCEPTED)) {
                    oldest_pending_at = row.2;
                    break 'chunks;
                }
            }
            after = last;
        }
        Ok(LogStatus { head, processed, oldest_pending_at, set_aside })
    }

    pub(super) async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        // A lane reads from its own position, which no trim passes (the log is trimmed to
        // the lowest lane's); only a caller from further back finds the rows gone, and
        // starts after them.
        match self.read_log_after(shard, after, limit).await {
            Err(error @ StoreError::Unavailable(_)) => {
                let processed = self.processed_position(shard).await?;
                if processed > after { self.read_log_after(shard, processed, limit).await } else { Err(error) }
            }
            read => read,
        }
    }

    /// Up to `limit` entries after `after`, whose rows must still be there.
    async fn read_log_after(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        let mut entries = Vec::new();
        if limit == 0 {
            return Ok(entries);
        }
        let head = self.head(shard).await?;
        // Entries come without gaps: `next` is the first position not passed yet. Once the
        // read is blocked (at an intent), the rest of the chunk is only scanned to start the
        // clocks of the intents after it, so that a crashed call's run of them times out
        // together rather than one timeout after another.
        let mut next = after + 1;
        let first = next;
        let mut blocked = false;
        let mut unfinished: Vec<Placed> = Vec::new();
        let page_size = i32::try_from(limit.saturating_add(16)).unwrap_or(i32::MAX).min(PAGE_SIZE);
        while next <= head && entries.len() < limit && !blocked {
            let (chunk_no, last) = chunk_bounds(next, head);
            let mut statement = self.statements.select_log_rows.clone();
            statement.set_page_size(page_size);
            let pager = self.session.execute_iter(statement, log_range(shard, chunk_no, next - 1, last)).await.map_err(cql_error)?;
            let mut rows = pager.rows_stream::<LogRow>().map_err(cql_error)?;
            // Rows come by position, then epoch: a position's last row is its winner.
            let mut expected = next;
            let mut winner: Option<LogRow> = None;
            loop {
                let row = rows.try_next().await.map_err(cql_error)?;
                if let Some(done) = winner.take_if(|held| row.as_ref().is_none_or(|row| row.0 != held.0)) {
                    let seq = position(done.0)?;
                    if seq != expected {
                        return Err(gap(shard, expected));
                    }
                    expected = seq + 1;
                    if blocked {
                        if done.3.is_none() {
                            self.stalled_long_enough(shard, seq);
                        }
                    } else {
                        match self.settle(shard, seq, done).await? {
                            Settled::Entry(entry) => entries.push(entry),
                            Settled::Finish(entry, at) => {
                                entries.push(entry);
                                unfinished.push(at);
                            }
                            Settled::Passed => {}
                            Settled::Wait => blocked = true,
                        }
                        if !blocked {
                            next = seq + 1;
                        }
                    }
                    if entries.len() >= limit {
                        break;
                    }
                }
                match row {
                    Some(row) => winner = Some(row),
                    None => break,
                }
            }
            if entries.len() < limit && !blocked && expected <= last {
                return Err(gap(shard, expected));
            }
        }
        if !unfinished.is_empty() {
            self.finish(shard, &entries, &unfinished).await?;
        }
        self.stalls().retain(|&(stalled_shard, seq), _| stalled_shard != shard || seq >= next);
        // Positions passed after the last entry (recomputes not needed) would otherwise stay
        // ahead of the processed position for good: one `Nothing` lets a commit pass them.
        let last_passed = next - 1;
        if last_passed >= first && entries.last().is_none_or(|entry| entry.seq < last_passed) && entries.len() < limit {
            let appended_at = now_millis();
            entries.push(LogEntry { seq: last_passed, appended_at, payload: LogPayload::Nothing, trace: None });
        }
        Ok(entries)
    }

    /// Whether the intent has been one for the intent timeout, as this process measures it
    /// from when it first saw it.
    fn stalled_long_enough(&self, shard: u32, seq: u64) -> bool {
        let mut stalls = self.stalls();
        let first_seen = *stalls.entry((shard, seq)).or_insert_with(Instant::now);
        first_seen.elapsed() >= self.options.intent_timeout
    }

    async fn settle(&self, shard: u32, seq: u64, row: LogRow) -> Result<Settled> {
        let (_, epoch, appended_at, outcome, payload) = row;
        let corrupt = |what: &str| StoreError::Corrupt(format!("log row {shard}/{seq} has {what}"));
        match outcome.as_deref() {
            Some(DUPLICATE) => return Ok(Settled::Passed),
            Some(ACCEPTED) | None => {}
            Some(other) => return Err(corrupt(&format!("outcome {other:?}"))),
        }
        let appended_at = appended_at.ok_or_else(|| corrupt("no appended_at"))?;
        let (payload, trace): (StoredPayload, _) = decode_with_trace(&payload.ok_or_else(|| corrupt("no payload"))?)
            .map_err(|e| StoreError::Corrupt(format!("undecodable log payload: {e}")))?;
        let entry = |payload: StoredPayload| Settled::Entry(LogEntry { seq, appended_at, payload: payload.into(), trace });
        if outcome.is_some() {
            return Ok(entry(payload));
        }
        if !self.stalled_long_enough(shard, seq) {
            return Ok(Settled::Wait);
        }
        // An intent whose writer stopped: its work is finished before the entry is returned.
        let at = Placed { seq, epoch };
        match payload {
            StoredPayload::Record(record) => Ok(Settled::Finish(LogEntry { seq, appended_at, payload: LogPayload::Record(record), trace }, at)),
            payload @ (StoredPayload::Recompute { .. } | StoredPayload::RederiveBadges { .. }) => {
                // A spare recompute is harmless; a missing one after a saved config is not.
                let accepted = self.settle_intent(shard, at, ACCEPTED).await?;
                Ok(if accepted.applied { entry(payload) } else { Settled::Wait })
            }
            // Never written: every position gets a record or a recompute.
            StoredPayload::Nothing => Err(corrupt("an empty payload")),
        }
    }

    /// Does what the writers of the `unfinished` record intents among `entries` did not:
    /// writes the records' rows and accepts them.
    async fn finish(&self, shard: u32, entries: &[LogEntry], unfinished: &[Placed]) -> Result<()> {
        let seqs: HashSet<u64> = unfinished.iter().map(|at| at.seq).collect();
        let records: Vec<&Record> = entries
            .iter()
            .filter(|entry| seqs.contains(&entry.seq))
            .filter_map(|entry| match &entry.payload {
                LogPayload::Record(record) => Some(record),
                _ => None,
            })
            .collect();
        self.write_records(&records).await?;
        self.accept_all(unfinished.iter().map(|&at| (shard, at))).await?;
        tracing::warn!(shard, records = records.len(), first = unfinished[0].seq, "finished ingest calls that stopped after committing their records");
        Ok(())
    }

    /// Sets an intent's outcome by compare-and-set: whoever settles it first decides.
    pub(super) async fn settle_intent(&self, shard: u32, at: Placed, outcome: &str) -> Result<Lwt> {
        let values = (outcome, shard_value(shard), chunk(at.seq), seq_value(at.seq), at.epoch);
        self.lwt(&self.statements.update_log_outcome_if_unset, values).await
    }

    /// How many entries of the shard were ever set aside: one small partition, counted.
    async fn set_aside_count(&self, shard: u32) -> Result<u64> {
        let row: Option<(i64,)> = self.row(&self.statements.count_set_aside, (shard_value(shard),)).await?;
        Ok(row.map_or(0, |(count,)| count.max(0) as u64))
    }

    /// Up to `limit` set-aside entries of the shard, the latest position first (the table's
    /// clustering order): the most recently set aside, as positions only grow. Reads only,
    /// like [`Inner::log_status`]: the entries of steps applied so far, as it counts them.
    pub(super) async fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows: Vec<SetAsideRow> = self.rows(&self.statements.select_set_aside, (shard_value(shard), limit)).await?;
        rows.into_iter()
            .map(|(seq, appended_at, set_aside_at, payload, reason)| {
                let seq = position(seq)?;
                let payload: StoredPayload = decode("set-aside payload", &payload)?;
                let entry = LogEntry { seq, appended_at, payload: payload.into(), trace: None };
                Ok(SetAside { entry, reason, set_aside_at })
            })
            .collect()
    }

    /// Test support: appends and commits `record` as an intent, then stops, as an ingest
    /// call that crashed right after its commit would.
    #[cfg(feature = "testsuite")]
    pub(super) async fn append_intent_only(&self, record: Record) -> Result<Option<LogMark>> {
        let placed = self.append_records(std::slice::from_ref(&record), None).await?;
        Ok(placed.first().map(|&(_, shard, at)| LogMark { shard, seq: at.seq }))
    }

    /// Test support: takes the records' shard, writes their marks and log rows, and stops
    /// before the commit, as an ingest call that crashed there would (its lease is left to
    /// lapse). The records must be of one shard.
    #[cfg(feature = "testsuite")]
    pub(super) async fn append_uncommitted(&self, records: Vec<Record>) -> Result<()> {
        let Some(shard) = records.first().map(|record| log_shard(record.tenant())) else {
            return Ok(());
        };
        let items = records.iter().map(|record| Item::record(record, None)).collect::<Result<Vec<_>>>()?;
        let hold = self.take_shard(shard).await?;
        self.write_held(&hold, &items.iter().collect::<Vec<_>>(), Appended::Intent).await.map(drop)
    }
}

/// The bound values of a read of one log partition's positions `after < seq <= last`.
fn log_range(shard: u32, chunk_no: i64, after: u64, last: u64) -> (i32, i64, i64, i64) {
    (shard_value(shard), chunk_no, seq_value(after), seq_value(last))
}

/// Of rows sorted by position then epoch, the last (the committed one) of each position.
fn winners(rows: Vec<LogRow>) -> Vec<LogRow> {
    let mut winners: Vec<LogRow> = Vec::with_capacity(rows.len());
    for row in rows {
        match winners.last_mut() {
            Some(last) if last.0 == row.0 => *last = row,
            _ => winners.push(row),
        }
    }
    winners
}

fn position(seq: i64) -> Result<u64> {
    u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("log position {seq}")))
}

/// A committed position without a row: trimmed by a newer step committed meanwhile (the
/// reader's own commit will be fenced), or lost by the cluster. Worth a retry either way.
fn gap(shard: u32, seq: u64) -> StoreError {
    StoreError::Unavailable(format!("log shard {shard} position {seq} is committed but has no row"))
}

fn millis(duration: Duration) -> Millis {
    Millis::try_from(duration.as_millis()).unwrap_or(Millis::MAX)
}
