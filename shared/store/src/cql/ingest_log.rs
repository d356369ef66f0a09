//! [`IngestLog`] on CQL: reserving positions, writing records as intents before dedup
//! decides, reading the log back in order (finishing whatever a crashed writer left
//! behind), the shard's status, and the entries attribution set aside.
//!
//! A position moves through these states; only `accepted` rows become entries:
//!
//! ```text
//! reserved ──(writer inserts IF NOT EXISTS)──> intent ──(dedup LWT)──> accepted | duplicate
//!    └──(a reader, after the intent timeout, inserts IF NOT EXISTS)──> skipped
//! ```
//!
//! Both inserts are compare-and-sets on the same row, so exactly one of them lands. An intent
//! still unresolved after the timeout is resolved by the reader with the same dedup LWT the
//! writer runs, which names the winning log position: writer and reader cannot disagree.
//!
//! Set-aside entries are written by the commit that sets them aside
//! (`attribution_state.rs`); here they are only counted and read.

use super::errors::cql_error;
use super::layout::{chunk, chunk_bounds, decode, seq_value, shard_value};
use super::statements::PAGE_SIZE;
use super::{CqlStore, Inner, Lwt, all};
use crate::support::{StoredPayload, encode, now_millis};
use crate::{IngestLog, IngestOutcome, LogEntry, LogMark, LogPayload, LogStatus, Result, SetAside, StoreError, log_shard};
use async_trait::async_trait;
use futures_util::TryStreamExt;
use scylla::statement::batch::{Batch, BatchType};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use touchstone_core::model::{DedupKey, Record};

/// Compare-and-set attempts on a shard's head before giving up as contended.
const HEAD_ATTEMPTS: u32 = 100;
/// Attempts at writing rows to freshly reserved positions (each lost one is reserved anew).
const APPEND_ATTEMPTS: u32 = 20;
/// Rows per conditional batch: one Paxos round each.
const INSERT_BATCH_ROWS: usize = 500;

/// Outcomes of `ingest_log` rows (null: an intent, not yet deduplicated).
pub(super) const ACCEPTED: &str = "accepted";
pub(super) const DUPLICATE: &str = "duplicate";
const SKIPPED: &str = "skipped";

/// How appended rows start out.
#[derive(Clone, Copy)]
pub(super) enum Appended {
    /// Not yet deduplicated: no outcome.
    Intent,
    /// Needs no dedup (recomputes).
    Accepted,
}

/// `seq, appended_at, outcome, payload` of an `ingest_log` row.
type LogRow = (i64, Option<i64>, Option<String>, Option<Vec<u8>>);

/// `seq, appended_at, set_aside_at, payload, reason` of a `set_aside` row.
type SetAsideRow = (i64, i64, i64, Vec<u8>, String);

/// What a reader makes of one log row.
// Short-lived, one at a time: boxing the entry would cost an allocation per entry for nothing.
#[allow(clippy::large_enum_variant)]
enum Settled {
    Entry(LogEntry),
    /// A duplicate or skipped position: passed without an entry.
    Passed,
    /// Still being written: the read stops before it.
    Wait,
}

/// `(tenant, namespace, id)` of the `dedup` table.
fn dedup_key(record: &Record) -> (&str, &'static str, &str) {
    match record.dedup_key() {
        DedupKey::Message(msg_hash) => (record.tenant(), "m", msg_hash),
        DedupKey::Event(event_id) => (record.tenant(), "e", event_id),
    }
}

#[async_trait]
impl IngestLog for CqlStore {
    async fn ingest(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
        self.inner.ingest(records).await
    }

    async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        self.inner.append_recompute(tenant).await
    }

    async fn log_status(&self, shard: u32) -> Result<LogStatus> {
        self.inner.log_status(shard).await
    }

    async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        self.inner.read_log(shard, after, limit).await
    }

    async fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>> {
        self.inner.set_aside(shard, limit).await
    }
}

impl Inner {
    pub(super) async fn ingest(&self, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
        let mut outcomes = vec![IngestOutcome::Duplicate; records.len()];
        // The first of several arrivals of one key within the call stands: the others never
        // reach the log.
        let mut seen = HashSet::new();
        let mut by_shard: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
        for (i, record) in records.iter().enumerate() {
            if seen.insert(dedup_key(record)) {
                by_shard.entry(log_shard(record.tenant())).or_default().push(i);
            }
        }

        // Each record's intent at its own position, so that a crash from here on leaves
        // something a reader can finish.
        let appends = by_shard.iter().map(|(&shard, indices)| {
            let records = &records;
            async move {
                let payloads = indices
                    .iter()
                    .map(|&i| encode(&StoredPayload::Record(records[i].clone())))
                    .collect::<Result<Vec<_>>>()?;
                let seqs = self.append(shard, &payloads, Appended::Intent).await?;
                Ok(indices.iter().zip(seqs).map(|(&i, seq)| (i, shard, seq)).collect::<Vec<_>>())
            }
        });
        let placed: Vec<(usize, u32, u64)> = all(appends).await?.into_iter().flatten().collect();

        let claims = placed.iter().map(|&(i, shard, seq)| self.claim(&records[i], shard, seq));
        let won = all(claims).await?;

        let accepted: Vec<&Record> = placed.iter().zip(&won).filter(|(_, won)| **won).map(|(&(i, ..), _)| &records[i]).collect();
        self.write_records(&accepted).await?;
        let outcome_updates = placed
            .iter()
            .zip(&won)
            .map(|(&(_, shard, seq), &won)| self.set_outcome(shard, seq, if won { ACCEPTED } else { DUPLICATE }));
        all(outcome_updates).await?;

        for (&(i, ..), won) in placed.iter().zip(won) {
            if won {
                outcomes[i] = IngestOutcome::Accepted;
            }
        }
        Ok(outcomes)
    }

    pub(super) async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        let shard = log_shard(tenant);
        let payload = encode(&StoredPayload::Recompute { tenant: tenant.to_owned() })?;
        let seq = self.append_one(shard, &payload, Appended::Accepted).await?;
        Ok(LogMark { shard, seq })
    }

    pub(super) async fn append_one(&self, shard: u32, payload: &[u8], start: Appended) -> Result<u64> {
        let seqs = self.append(shard, &[payload.to_vec()], start).await?;
        seqs.first().copied().ok_or_else(|| StoreError::Backend("appending one log row returned no position".to_owned()))
    }

    /// Writes `payloads` to fresh positions of `shard`, in order; returns the positions.
    ///
    /// A row whose insert does not apply (a reader skipped the position meanwhile), or that
    /// landed at or below the processed position (skipped and already trimmed, so nobody
    /// will read it), is written again at a new position. That can reorder rows of one call
    /// when its writer stalled past the intent timeout; nothing else does.
    async fn append(&self, shard: u32, payloads: &[Vec<u8>], start: Appended) -> Result<Vec<u64>> {
        let appended_at = now_millis();
        let mut seqs = vec![0; payloads.len()];
        let mut pending: Vec<usize> = (0..payloads.len()).collect();
        for _ in 0..APPEND_ATTEMPTS {
            if pending.is_empty() {
                return Ok(seqs);
            }
            let first = self.reserve(shard, pending.len() as u64).await?;
            for (&i, seq) in pending.iter().zip(first..) {
                seqs[i] = seq;
            }
            let mut groups: Vec<Vec<usize>> = Vec::new();
            for &i in &pending {
                match groups.last_mut() {
                    Some(group) if chunk(seqs[group[0]]) == chunk(seqs[i]) && group.len() < INSERT_BATCH_ROWS => group.push(i),
                    _ => groups.push(vec![i]),
                }
            }
            let inserts = groups.iter().map(|group| {
                let rows: Vec<(u64, &[u8])> = group.iter().map(|&i| (seqs[i], payloads[i].as_slice())).collect();
                self.insert_rows(shard, rows, appended_at, start)
            });
            let applied = all(inserts).await?;
            let processed = self.processed_position(shard).await?;
            let seqs = &seqs;
            pending = groups
                .iter()
                .zip(applied)
                .flat_map(|(group, applied)| group.iter().copied().filter(move |&i| !applied || seqs[i] <= processed))
                .collect();
            if !pending.is_empty() {
                tracing::warn!(shard, rows = pending.len(), "log positions were lost to a reader; writing them again");
            }
        }
        Err(StoreError::Unavailable(format!("could not append to log shard {shard} in {APPEND_ATTEMPTS} attempts")))
    }

    /// Inserts rows of one `ingest_log` partition if none of their positions has a row yet:
    /// one conditional batch, one Paxos round. Whether they were written.
    async fn insert_rows(&self, shard: u32, rows: Vec<(u64, &[u8])>, appended_at: i64, start: Appended) -> Result<bool> {
        let s = &self.statements;
        let mut batch = Batch::new(BatchType::Unlogged);
        batch.set_is_idempotent(true);
        let shard = shard_value(shard);
        let result = match start {
            Appended::Intent => {
                let values: Vec<_> = rows
                    .iter()
                    .map(|&(seq, payload)| {
                        batch.append_statement(s.insert_intent_if_absent.clone());
                        (shard, chunk(seq), seq_value(seq), appended_at, payload)
                    })
                    .collect();
                self.session.batch(&batch, values).await
            }
            Appended::Accepted => {
                let values: Vec<_> = rows
                    .iter()
                    .map(|&(seq, payload)| {
                        batch.append_statement(s.insert_entry_if_absent.clone());
                        (shard, chunk(seq), seq_value(seq), appended_at, ACCEPTED, payload)
                    })
                    .collect();
                self.session.batch(&batch, values).await
            }
        };
        Ok(Lwt::from_result(result.map_err(cql_error)?)?.applied)
    }

    /// Reserves `count` positions of `shard` by compare-and-set on its head; the first one.
    async fn reserve(&self, shard: u32, count: u64) -> Result<u64> {
        let s = &self.statements;
        let mut head = self.head(shard).await?;
        for attempt in 0..HEAD_ATTEMPTS {
            let moved = self.lwt(&s.update_log_head_if, (seq_value(head + count), shard_value(shard), seq_value(head))).await?;
            if moved.applied {
                return Ok(head + 1);
            }
            let current = moved.bigint("head").ok_or_else(|| StoreError::Corrupt(format!("log shard {shard} has no head")))?;
            head = u64::try_from(current).map_err(|_| StoreError::Corrupt(format!("log shard {shard} head {current}")))?;
            // Other ingest calls are reserving on this shard: back off a little, more each time.
            tokio::time::sleep(Duration::from_millis(u64::from(attempt.min(20)))).await;
        }
        Err(StoreError::Unavailable(format!("log shard {shard} is too contended to reserve positions")))
    }

    async fn head(&self, shard: u32) -> Result<u64> {
        let row: Option<(Option<i64>,)> = self.row(&self.statements.select_log_head, (shard_value(shard),)).await?;
        Ok(row.and_then(|(head,)| head).map_or(0, |head| head.max(0) as u64))
    }

    /// The dedup compare-and-set: whether the record at `(shard, seq)` is its key's first
    /// arrival. Also true when the dedup row already names this very position (a retry, or
    /// a reader that finished this intent first).
    async fn claim(&self, record: &Record, shard: u32, seq: u64) -> Result<bool> {
        let (tenant, namespace, id) = dedup_key(record);
        let (shard, seq) = (shard_value(shard), seq_value(seq));
        let claimed = self.lwt(&self.statements.insert_dedup_if_absent, (tenant, namespace, id, shard, seq)).await?;
        Ok(claimed.applied || (claimed.int("shard") == Some(shard) && claimed.bigint("seq") == Some(seq)))
    }

    async fn set_outcome(&self, shard: u32, seq: u64, outcome: &str) -> Result<()> {
        let values = (outcome, shard_value(shard), chunk(seq), seq_value(seq));
        self.run(&self.statements.update_log_outcome, values).await.map(drop)
    }

    pub(super) async fn log_status(&self, shard: u32) -> Result<LogStatus> {
        let processed = self.ensure_step_applied(shard, None).await?;
        let (head, set_aside) = futures_util::try_join!(self.head(shard), self.set_aside_count(shard))?;
        let mut oldest_pending_at = None;
        let mut after = processed;
        // The first row still to be processed: accepted, or an intent that may become so.
        // Duplicate and skipped rows are not pending (they count in head - processed, though).
        'chunks: while after < head {
            let (chunk_no, last) = chunk_bounds(after + 1, head);
            let rows: Vec<LogRow> = self.log_rows(shard, chunk_no, after, last, 100).await?;
            for (_, appended_at, outcome, _) in rows {
                if matches!(outcome.as_deref(), None | Some(ACCEPTED)) {
                    oldest_pending_at = appended_at;
                    break 'chunks;
                }
            }
            after = last;
        }
        Ok(LogStatus { head, processed, oldest_pending_at, set_aside })
    }

    /// The rows of one chunk with `after < seq <= last`.
    async fn log_rows(&self, shard: u32, chunk_no: i64, after: u64, last: u64, page_size: i32) -> Result<Vec<LogRow>> {
        let mut statement = self.statements.select_log_rows.clone();
        statement.set_page_size(page_size);
        self.rows(&statement, (shard_value(shard), chunk_no, seq_value(after), seq_value(last))).await
    }

    pub(super) async fn read_log(&self, shard: u32, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        // Positions up to the processed one are gone from the log: start after them.
        let processed = self.ensure_step_applied(shard, Some(after)).await?;
        let mut entries = Vec::new();
        if limit == 0 {
            return Ok(entries);
        }
        let head = self.head(shard).await?;
        // Entries come without gaps: `next` is the first position not passed yet. Once the
        // read is blocked (at a position still being written), the rest of the chunk is only
        // scanned to start the clocks of the unfinished positions after it, so that a run of
        // them times out together rather than one timeout after another.
        let mut next = after.max(processed) + 1;
        let first = next;
        let mut blocked = false;
        let page_size = i32::try_from(limit.saturating_add(16)).unwrap_or(i32::MAX).min(PAGE_SIZE);
        while next <= head && entries.len() < limit && !blocked {
            let (chunk_no, last) = chunk_bounds(next, head);
            let mut statement = self.statements.select_log_rows.clone();
            statement.set_page_size(page_size);
            let values = (shard_value(shard), chunk_no, seq_value(next - 1), seq_value(last));
            let pager = self.session.execute_iter(statement, values).await.map_err(cql_error)?;
            let mut rows = pager.rows_stream::<LogRow>().map_err(cql_error)?;
            let mut scanned = next;
            while let Some(row) = rows.try_next().await.map_err(cql_error)? {
                let seq = u64::try_from(row.0).map_err(|_| StoreError::Corrupt(format!("log position {}", row.0)))?;
                for hole in scanned..seq {
                    self.pass_or_block(shard, hole, &mut next, &mut blocked).await?;
                }
                scanned = seq + 1;
                if blocked {
                    if row.2.is_none() {
                        self.stalled_long_enough(shard, seq);
                    }
                    continue;
                }
                match self.settle(shard, seq, row).await? {
                    Settled::Entry(entry) => entries.push(entry),
                    Settled::Passed => {}
                    Settled::Wait => blocked = true,
                }
                if !blocked {
                    next = seq + 1;
                }
                if entries.len() >= limit {
                    break;
                }
            }
            if entries.len() >= limit {
                break;
            }
            for hole in scanned..=last {
                self.pass_or_block(shard, hole, &mut next, &mut blocked).await?;
            }
        }
        self.stalls().retain(|&(stalled_shard, seq), _| stalled_shard != shard || seq >= next);
        // Positions passed after the last entry (duplicates, skipped ones) would otherwise
        // stay ahead of the processed position for good: one `Nothing` lets a commit pass them.
        let last_passed = next - 1;
        if last_passed >= first && entries.last().is_none_or(|entry| entry.seq < last_passed) && entries.len() < limit {
            let appended_at = now_millis();
            entries.push(LogEntry { seq: last_passed, appended_at, payload: LogPayload::Nothing });
        }
        Ok(entries)
    }

    /// A position without a row, met by [`Inner::read_log`]: passed (when skipped), or it
    /// blocks the read; once blocked, only its clock is started.
    async fn pass_or_block(&self, shard: u32, hole: u64, next: &mut u64, blocked: &mut bool) -> Result<()> {
        if *blocked {
            self.stalled_long_enough(shard, hole);
        } else if self.pass_hole(shard, hole).await? {
            *next = hole + 1;
        } else {
            *blocked = true;
        }
        Ok(())
    }

    /// Whether the unfinished position has been so for the intent timeout, as this process
    /// measures it from when it first saw it.
    fn stalled_long_enough(&self, shard: u32, seq: u64) -> bool {
        let mut stalls = self.stalls();
        let first_seen = *stalls.entry((shard, seq)).or_insert_with(std::time::Instant::now);
        first_seen.elapsed() >= self.options.intent_timeout
    }

    /// A reserved position without a row: marked skipped once it has stalled long enough.
    /// Whether the read may go past it.
    async fn pass_hole(&self, shard: u32, seq: u64) -> Result<bool> {
        if !self.stalled_long_enough(shard, seq) {
            return Ok(false);
        }
        let values = (shard_value(shard), chunk(seq), seq_value(seq));
        let skipped = self.lwt(&self.statements.insert_skip_if_absent, values).await?;
        if skipped.applied {
            tracing::warn!(shard, seq, "skipped a log position that its writer never filled");
        }
        // Not applied: the row has just been written; the next read will see it.
        Ok(skipped.applied)
    }

    async fn settle(&self, shard: u32, seq: u64, row: LogRow) -> Result<Settled> {
        let (_, appended_at, outcome, payload) = row;
        let corrupt = |what: &str| StoreError::Corrupt(format!("log row {shard}/{seq} has {what}"));
        match outcome.as_deref() {
            Some(DUPLICATE | SKIPPED) => return Ok(Settled::Passed),
            Some(ACCEPTED) | None => {}
            Some(other) => return Err(corrupt(&format!("outcome {other:?}"))),
        }
        let appended_at = appended_at.ok_or_else(|| corrupt("no appended_at"))?;
        let payload: StoredPayload = decode("log payload", &payload.ok_or_else(|| corrupt("no payload"))?)?;
        let entry = |payload: StoredPayload| Settled::Entry(LogEntry { seq, appended_at, payload: payload.into() });
        if outcome.is_some() {
            return Ok(entry(payload));
        }
        if !self.stalled_long_enough(shard, seq) {
            return Ok(Settled::Wait);
        }
        // An intent whose writer stopped: finish its work as the writer would have.
        match payload {
            StoredPayload::Record(record) => {
                let won = self.claim(&record, shard, seq).await?;
                if won {
                    self.write_records(&[&record]).await?;
                }
                self.set_outcome(shard, seq, if won { ACCEPTED } else { DUPLICATE }).await?;
                tracing::warn!(shard, seq, won, "finished an ingest that stopped after writing its intent");
                Ok(if won { entry(StoredPayload::Record(record)) } else { Settled::Passed })
            }
            StoredPayload::Recompute { tenant } => {
                // A spare recompute is harmless; a missing one after a saved config is not.
                let values = (ACCEPTED, shard_value(shard), chunk(seq), seq_value(seq));
                let accepted = self.lwt(&self.statements.update_log_outcome_if_unset, values).await?;
                Ok(if accepted.applied { entry(StoredPayload::Recompute { tenant }) } else { Settled::Wait })
            }
            // Never written: every position gets a record or a recompute.
            StoredPayload::Nothing => Err(corrupt("an empty payload")),
        }
    }

    /// How many entries of the shard were ever set aside: one small partition, counted.
    async fn set_aside_count(&self, shard: u32) -> Result<u64> {
        let row: Option<(i64,)> = self.row(&self.statements.count_set_aside, (shard_value(shard),)).await?;
        Ok(row.map_or(0, |(count,)| count.max(0) as u64))
    }

    /// Up to `limit` set-aside entries of the shard, the latest position first (the table's
    /// clustering order): the most recently set aside, as positions only grow. The shard's
    /// last step is applied first, as for [`Inner::log_status`], so list and count agree.
    pub(super) async fn set_aside(&self, shard: u32, limit: usize) -> Result<Vec<SetAside>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        self.ensure_step_applied(shard, None).await?;
        let limit = i32::try_from(limit).unwrap_or(i32::MAX);
        let rows: Vec<SetAsideRow> = self.rows(&self.statements.select_set_aside, (shard_value(shard), limit)).await?;
        rows.into_iter()
            .map(|(seq, appended_at, set_aside_at, payload, reason)| {
                let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("set-aside position {seq}")))?;
                let payload: StoredPayload = decode("set-aside payload", &payload)?;
                let entry = LogEntry { seq, appended_at, payload: payload.into() };
                Ok(SetAside { entry, reason, set_aside_at })
            })
            .collect()
    }

    /// Test support: reserves a position and writes a record's intent there, then stops, as
    /// an ingest call that crashed right after would.
    #[cfg(feature = "testsuite")]
    pub(super) async fn append_intent_only(&self, record: Record) -> Result<LogMark> {
        let shard = log_shard(record.tenant());
        let seq = self.append_one(shard, &encode(&StoredPayload::Record(record))?, Appended::Intent).await?;
        Ok(LogMark { shard, seq })
    }

    /// Test support: reserves positions without writing them, as a crashed ingest would.
    #[cfg(feature = "testsuite")]
    pub(super) async fn reserve_only(&self, shard: u32, count: u64) -> Result<u64> {
        self.reserve(shard, count).await
    }
}
