//! The ingest log: reserving positions, writing records as intents before dedup decides,
//! and reading the log back in order, finishing whatever a crashed writer left behind.
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

use super::{Inner, all, cql_error, decode, encode, now_millis, seq_value, shard_value};
use crate::support::StoredPayload;
use crate::{IngestOutcome, LogEntry, LogMark, LogPayload, LogStatus, Result, StoreError, log_shard};
use futures_util::TryStreamExt;
use scylla::statement::batch::{Batch, BatchType};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{DedupKey, Record};

/// Positions per `ingest_log` partition: a partition never grows past this many rows.
pub(super) const CHUNK: u64 = 10_000;
/// Compare-and-set attempts on a shard's head before giving up as contended.
const HEAD_ATTEMPTS: u32 = 100;
/// Attempts at writing rows to freshly reserved positions (each lost one is reserved anew).
const APPEND_ATTEMPTS: u32 = 20;
/// Rows per conditional batch: one Paxos round each.
const INSERT_BATCH_ROWS: usize = 500;

const ACCEPTED: &str = "accepted";
const DUPLICATE: &str = "duplicate";
const SKIPPED: &str = "skipped";

/// The `ingest_log` partition of a position.
pub(super) fn chunk(seq: u64) -> i64 {
    seq_value(seq / CHUNK)
}

/// How appended rows start out.
#[derive(Clone, Copy)]
enum Appended {
    /// Not yet deduplicated: no outcome.
    Intent,
    /// Needs no dedup (recomputes).
    Accepted,
}

/// `seq, appended_at, outcome, payload` of an `ingest_log` row.
type LogRow = (i64, Option<i64>, Option<String>, Option<Vec<u8>>);

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

    /// Saves the config by compare-and-set on its version, with its `Recompute` entry
    /// written as an intent first: if this call dies after the save, a reader finds the
    /// intent and accepts it, so a saved config is always followed by a recompute.
    pub(super) async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        let s = &self.statements;
        let tenant = &config.tenant;
        let conflict = || StoreError::Conflict { tenant: tenant.clone() };
        // Version 0 is "never saved": no save can expect a stored version below it.
        let expected = config.version.checked_sub(1).ok_or_else(conflict)?;
        let version = i64::try_from(config.version).map_err(|_| conflict())?;
        let shard = log_shard(tenant);
        let payload = encode(&StoredPayload::Recompute { tenant: tenant.clone() })?;
        let seq = self.append_one(shard, &payload, Appended::Intent).await?;

        let body = encode(config)?;
        let saved = if expected == 0 {
            self.lwt(&s.insert_config_if_absent, (tenant, version, &body)).await?
        } else {
            self.lwt(&s.update_config_if_version, (version, &body, tenant, seq_value(expected))).await?
        };
        let outcome = if saved.applied { ACCEPTED } else { DUPLICATE };
        let settled = self.lwt(&s.update_log_outcome_if_unset, (outcome, shard_value(shard), chunk(seq), seq_value(seq))).await?;
        if !saved.applied {
            // Whatever a reader made of the intent, a recompute without a change is harmless.
            return Err(conflict());
        }
        self.write_tenant(tenant).await?;
        // A reader that timed out on the intent accepted it already, maybe before the config
        // was saved; and a row written after its position was processed is never read.
        // Either way the recompute must come again, after the save.
        if !settled.applied || self.processed_position(shard).await? >= seq {
            let seq = self.append_one(shard, &payload, Appended::Accepted).await?;
            return Ok(LogMark { shard, seq });
        }
        Ok(LogMark { shard, seq })
    }

    pub(super) async fn append_recompute(&self, tenant: &str) -> Result<LogMark> {
        let shard = log_shard(tenant);
        let payload = encode(&StoredPayload::Recompute { tenant: tenant.to_owned() })?;
        let seq = self.append_one(shard, &payload, Appended::Accepted).await?;
        Ok(LogMark { shard, seq })
    }

    async fn append_one(&self, shard: u32, payload: &[u8], start: Appended) -> Result<u64> {
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
        Ok(super::Lwt::from_result(result.map_err(cql_error)?)?.applied)
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

    /// The processed position as last committed (a plain read: commits complete before the
    /// log rows they pass are trimmed, which is all [`Inner::append`] relies on).
    async fn processed_position(&self, shard: u32) -> Result<u64> {
        let row: Option<super::steps::ProgressRow> = self.row(&self.statements.select_progress, (shard_value(shard),)).await?;
        Ok(row.and_then(|(processed, ..)| processed).map_or(0, |processed| processed.max(0) as u64))
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
        let head = self.head(shard).await?;
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
        Ok(LogStatus { head, processed, oldest_pending_at })
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
        let page_size = i32::try_from(limit.saturating_add(16)).unwrap_or(i32::MAX).min(super::statements::PAGE_SIZE);
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
            let appended_at = super::now_millis();
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

    /// Test support: reserves a position and writes a record's intent there, then stops, as
    /// an ingest call that crashed right after would.
    pub(super) async fn append_intent_only(&self, record: Record) -> Result<LogMark> {
        let shard = log_shard(record.tenant());
        let seq = self.append_one(shard, &encode(&StoredPayload::Record(record))?, Appended::Intent).await?;
        Ok(LogMark { shard, seq })
    }

    /// Test support: reserves positions without writing them, as a crashed ingest would.
    pub(super) async fn reserve_only(&self, shard: u32, count: u64) -> Result<u64> {
        self.reserve(shard, count).await
    }
}

/// The chunk holding `first`, and the last position of it to read (at most `head`).
fn chunk_bounds(first: u64, head: u64) -> (i64, u64) {
    let chunk_no = first / CHUNK;
    (seq_value(chunk_no), ((chunk_no + 1) * CHUNK - 1).min(head))
}
