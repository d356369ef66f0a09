//! [`AttributionState`] on CQL: the engine's reads, and its commit, fenced by one
//! compare-and-set, applied after it, re-applied by whoever finds a step it has not applied
//! itself.
//!
//! A commit stores the step's body in `shard_steps`, then moves `shard_progress` from
//! `(after, previous step)` to `(processed, this step)` by LWT: a worker that lost its lease
//! (or any second commit from the same position) finds the row changed and gets
//! [`StoreError::Fenced`]. Applying the step (conversion rows, rollup deltas of message,
//! campaign and pending counters, set-aside entries, trimming the log) follows; if the
//! process dies before it is done, the next process to resume or commit the lane applies
//! the stored step again first ([`Inner::catch_up`]). Every write of a step is idempotent
//! and carries the step's timestamp, which grows from step to step, so applying a step
//! twice, or late, never changes what a newer step wrote.

use super::timed;
use super::layout::{
    ACTIVITY_BADGE, ACTIVITY_EVENT, ACTIVITY_ORDER, BucketRow, CHUNK, CampaignRollupRow, ConversionRow, Partitions, PendingRow, RecordKind, RollupRow,
    StoredCells, bucket, campaign_rollup_bucket, chunk, conversion_buckets, conversion_rows, decode, lane_value, records_parts, rollup_bucket,
    seq_value, shard_value, slot, table,
};
use super::badges::{index_value, level_code};
use super::fold_state::StoredFold;
use super::{CqlStore, Inner, StepMark, Write, all};
use crate::support::{StoredPayload, encode, encode_campaign_cells, encode_conversion};
use crate::{AttributionCommit, AttributionState, CustomerMonths, BadgeRowChange, FeedChange, LOG_SHARDS, Lane, LogEntry, Result, SetAside, StatLevel, StoreError};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use touchstone_core::attribution::Conversion;
use touchstone_core::badge_stats::{BadgeTally, Interval};
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::{CustomerState, OrderState};
use touchstone_core::model::{AppEvent, BadgeEvent, Millis, OrderRecord, Record};
use touchstone_core::rollup::{CAMPAIGN_LEVELS, CampaignCell, Cell, DAY_MS, Granularity, MESSAGE_LEVELS, Tally};

#[async_trait]
impl AttributionState for CqlStore {
    async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        timed("tenant_orders", async { self.inner.tenant_orders(tenant).await }).await
    }

    async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        timed("tenant_events_named", async { self.inner.tenant_events_named(tenant, name).await }).await
    }

    async fn pending_counters(&self, tenant: &str, lane: u32, msg_hash: &str) -> Result<Vec<(Millis, CampaignCell, Tally)>> {
        timed("pending_counters", async { self.inner.pending_counters(tenant, lane, msg_hash).await }).await
    }

    async fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>> {
        timed("tenant_conversions", async { self.inner.conversions_between(tenant, Millis::MIN, Millis::MAX).await }).await
    }

    async fn customer_months(&self, spans: &[CustomerMonths]) -> Result<Vec<CustomerState>> {
        timed("customer_months", async { self.inner.customers_months(spans).await }).await
    }

    async fn order_states(&self, lane: u32, orders: &[(String, String)]) -> Result<Vec<OrderState>> {
        timed("order_states", async { self.inner.order_states(lane, orders).await }).await
    }

    async fn tenant_customer_states(&self, tenant: &str) -> Result<Vec<(String, CustomerState)>> {
        timed("tenant_customer_states", async { self.inner.tenant_customer_states(tenant).await }).await
    }

    async fn tenant_order_states(&self, tenant: &str, lane: u32) -> Result<Vec<(String, OrderState)>> {
        timed("tenant_order_states", async { self.inner.tenant_order_states(tenant, lane).await }).await
    }

    async fn unregistered_customers(&self, tenant: &str, msg_hash: &str) -> Result<Vec<String>> {
        timed("unregistered_customers", async { self.inner.unregistered_customers(tenant, msg_hash).await }).await
    }

    async fn folded_config(&self, tenant: &str, lane: u32) -> Result<Option<TenantConfig>> {
        timed("folded_config", async { self.inner.folded_config(tenant, lane).await }).await
    }

    async fn resume_lane(&self, lane: Lane) -> Result<u64> {
        timed("resume_lane", async { Ok(self.inner.catch_up(self.inner.lane_number(lane)?).await?.processed) }).await
    }

    async fn commit_attribution(&self, commit: AttributionCommit) -> Result<()> {
        timed("commit_attribution", async { self.inner.commit(commit, true).await }).await
    }
}

// The engine's reads.
impl Inner {
    async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        self.records_of_hours(tenant, RecordKind::Order, Millis::MIN, Millis::MAX).await
    }

    async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        let mut events: Vec<AppEvent> = self.records_of_hours(tenant, RecordKind::Event, Millis::MIN, Millis::MAX).await?;
        events.retain(|event| event.name == name);
        Ok(events)
    }

    /// The message's `pending_deltas` rows of the lane (one per hour and step; a slice of
    /// its slot partition) summed per hour and cell.
    async fn pending_counters(&self, tenant: &str, lane: u32, msg_hash: &str) -> Result<Vec<(Millis, CampaignCell, Tally)>> {
        let values = (tenant, slot(msg_hash), msg_hash, lane_value(lane));
        let rows: Vec<(i64, Vec<u8>)> = self.rows(&self.statements.select_pending_deltas, values).await?;
        let mut sums: BTreeMap<(Millis, CampaignCell), Tally> = BTreeMap::new();
        for (hour, cells) in rows {
            for (cell, tally) in decode::<StoredCells>("pending cells", &cells)? {
                sums.entry((hour, cell)).or_default().add(tally);
            }
        }
        Ok(sums.into_iter().filter(|(_, tally)| !tally.is_zero()).map(|((hour, cell), tally)| (hour, cell, tally)).collect())
    }
}

/// The most bytes of a step body stored in one `shard_steps` row: a recompute of a large
/// tenant changes many conversions, and one cell must stay well below the mutation limit.
const PART_BYTES: usize = 1 << 20;

/// A committed step as stored: the commit and what is needed to apply it again.
#[derive(Serialize, Deserialize)]
struct StoredStep {
    id: i64,
    /// The step it follows, whose body is deleted once this one is applied.
    previous: i64,
    timestamp: i64,
    shard: u32,
    lane: u32,
    after: u64,
    processed: u64,
    conversions: Vec<(Option<Conversion>, Option<Conversion>)>,
    rollups: Vec<(String, Millis, Cell, Tally)>,
    /// `(tenant, campaign_id, hour, cell, tally)`.
    campaign_rollups: Vec<(String, String, Millis, CampaignCell, Tally)>,
    /// `(tenant, msg_hash, hour, cell, tally)`.
    pending: Vec<(String, String, Millis, CampaignCell, Tally)>,
    set_aside: Vec<StoredSetAside>,
    /// Derived badge entries: a row to write, or `(tenant, customer_id, ts, event_id)` to delete.
    badge_rows: Vec<Result<BadgeEvent, (String, String, Millis, String)>>,
    /// Badge activity to index: app events and order status records.
    activity: Vec<Record>,
    /// Touches, app events and order records to index by time (`records_by_day`).
    records: Vec<Record>,
    badge_stats: Vec<StatDelta>,
    holdings: Vec<HoldingRow>,
    badge_feed: Vec<FeedRow>,
    fold: StoredFold,
}

/// `(tenant, badge_id, ts, delta)` of a badge counter.
type StatDelta = (String, String, Millis, BadgeTally);
/// `(tenant, customer_id, badge_id, intervals)`; no intervals: delete the row.
type HoldingRow = (String, String, String, Vec<Interval>);
/// `(seq, index, added, event)` of a feed entry.
type FeedRow = (u64, u32, bool, BadgeEvent);
/// `(tenant, badge_id, level, ts)` of a `badge_stat_deltas` row.
type StatKey<'a> = (&'a str, &'a str, &'static str, Millis);

/// A set-aside entry as stored in the step body; written to `set_aside` when the step is
/// applied.
#[derive(Serialize, Deserialize)]
struct StoredSetAside {
    seq: u64,
    appended_at: Millis,
    set_aside_at: Millis,
    payload: StoredPayload,
    reason: String,
}

impl StoredSetAside {
    fn of(set_aside: SetAside) -> StoredSetAside {
        let SetAside { entry: LogEntry { seq, appended_at, payload, .. }, reason, set_aside_at } = set_aside;
        StoredSetAside { seq, appended_at, set_aside_at, payload: payload.into(), reason }
    }
}

/// `processed, step_id, step_timestamp, step_parts` of `shard_progress`.
type ProgressRow = (Option<i64>, Option<i64>, Option<i64>, Option<i32>);

/// `processed, step_id, applied_step, applied_processed` of `shard_progress`.
type AppliedRow = (Option<i64>, Option<i64>, Option<i64>, Option<i64>);

/// A lane's processed position, as committed and as far as its effects are readable.
#[derive(Debug, Clone, Copy, Default)]
struct LanePositions {
    committed: u64,
    applied: u64,
}

// The step protocol.
impl Inner {
    /// Commits (and with `apply`, applies) one attribution step.
    pub(super) async fn commit(&self, commit: AttributionCommit, apply: bool) -> Result<()> {
        let s = &self.statements;
        let shard = commit.shard;
        if shard >= LOG_SHARDS {
            return Err(StoreError::Backend(format!("commit of log shard {shard}, of {LOG_SHARDS}")));
        }
        // Progress, and the cache of applied steps, are kept by lane.
        let number = self.lane_number(Lane { shard, index: commit.lane })?;
        if commit.processed < commit.after {
            return Err(StoreError::Backend(format!(
                "commit of shard {shard} moves the processed position back from {} to {}",
                commit.after, commit.processed
            )));
        }
        let outside = |seq: u64| seq <= commit.after || seq > commit.processed;
        if let Some(aside) = commit.set_aside.iter().find(|aside| outside(aside.entry.seq)) {
            return Err(StoreError::Backend(format!(
                "entry {} set aside outside the step's ({}, {}]",
                aside.entry.seq, commit.after, commit.processed
            )));
        }
        let known = self.applied().get(&number).copied();
        let base = match known {
            Some(mark) if mark.processed == commit.after => mark,
            _ => self.catch_up(number).await?,
        };
        if base.processed != commit.after {
            return Err(StoreError::Fenced { shard });
        }

        let step = StoredStep {
            id: fresh_step_id(),
            previous: base.step_id,
            timestamp: now_micros().max(base.timestamp + 1),
            shard,
            lane: commit.lane,
            after: commit.after,
            processed: commit.processed,
            conversions: commit.conversions.into_iter().map(|change| (change.old, change.new)).collect(),
            rollups: commit.rollups.into_iter().map(|d| (d.tenant, d.hour, d.cell, d.tally)).collect(),
            campaign_rollups: commit
                .campaign_rollups
                .into_iter()
                .map(|d| (d.tenant, d.campaign_id, d.hour, d.cell, d.tally))
                .collect(),
            pending: commit.pending.into_iter().map(|d| (d.tenant, d.msg_hash, d.hour, d.cell, d.tally)).collect(),
            set_aside: commit.set_aside.into_iter().map(StoredSetAside::of).collect(),
            badge_rows: commit
                .badge_rows
                .into_iter()
                .map(|change| match change {
                    BadgeRowChange::Put(row) => Ok(row),
                    BadgeRowChange::Delete { tenant, customer_id, ts, event_id } => Err((tenant, customer_id, ts, event_id)),
                })
                .collect(),
            activity: commit.activity,
            records: commit.records,
            badge_stats: commit.badge_stats.into_iter().map(|d| (d.tenant, d.badge_id, d.ts, d.tally)).collect(),
            holdings: commit.holdings.into_iter().map(|h| (h.tenant, h.customer_id, h.badge_id, h.intervals)).collect(),
            badge_feed: commit
                .badge_feed
                .into_iter()
                .map(|e| (e.position.seq, e.position.index, e.change == FeedChange::Added, e.event))
                .collect(),
            fold: StoredFold::of(commit.fold)?,
        };
        // LZ4: a body repeats ids and names (a step's records and the states they change)
        // and is written once more than its rows, so it is most of a step's bytes.
        let body = lz4_flex::compress_prepend_size(&encode(&step)?);
        let parts: Vec<&[u8]> = body.chunks(PART_BYTES).collect();
        let part_count = i32::try_from(parts.len()).map_err(|_| StoreError::Backend("a step too large to store".to_owned()))?;
        let writes = parts.iter().zip(0..).map(|(part, i)| self.run(&s.insert_step_part, (shard_value(number), step.id, i, part)));
        all(writes).await?;

        let values = (
            seq_value(step.processed),
            step.id,
            step.timestamp,
            part_count,
            shard_value(number),
            seq_value(step.after),
            base.step_id,
        );
        let moved = self.lwt(&s.update_progress_if, values).await?;
        // Not applied but naming this step: an earlier attempt of this very request applied.
        if !moved.applied && moved.bigint("step_id") != Some(step.id) {
            if let Err(error) = self.run(&s.delete_step, (shard_value(number), step.id)).await {
                tracing::warn!(shard, lane = commit.lane, %error, "could not delete the body of a fenced step");
            }
            return Err(StoreError::Fenced { shard });
        }
        if apply {
            self.apply(&step).await?;
            let mark = StepMark { processed: step.processed, step_id: step.id, timestamp: step.timestamp, parts: part_count };
            self.applied().insert(number, mark);
        }
        Ok(())
    }

    /// The number a lane's progress and steps are kept under ([`Lane::number`]); an error
    /// for a lane this store does not have.
    pub(super) fn lane_number(&self, lane: Lane) -> Result<u32> {
        if lane.shard >= LOG_SHARDS || lane.index >= self.options.lanes {
            return Err(StoreError::Backend(format!("lane {} of log shard {}: the store has {} lanes a shard", lane.index, lane.shard, self.options.lanes)));
        }
        Ok(lane.number())
    }

    /// Each lane of `shard`'s processed position as committed and as applied (the
    /// committed one once its step is marked applied, else the one before it), in one read
    /// of their progress rows; a lane without its row (made at connect) at 0.
    async fn lane_positions(&self, shard: u32) -> Result<Vec<LanePositions>> {
        let lanes: Vec<i32> = (0..self.options.lanes).map(|index| shard_value(Lane { shard, index }.number())).collect();
        let rows: Vec<AppliedRow> = self.rows(&self.statements.select_progress_of_lanes, (lanes,)).await?;
        let position = |p: Option<i64>| p.map_or(0, |p| p.max(0) as u64);
        let mut positions: Vec<LanePositions> = rows
            .into_iter()
            .map(|(processed, step_id, applied_step, applied_processed)| {
                let applied = match step_id.unwrap_or(0) {
                    0 => processed,
                    step if applied_step == Some(step) => processed,
                    _ => applied_processed,
                };
                LanePositions { committed: position(processed), applied: position(applied) }
            })
            .collect();
        positions.resize(self.options.lanes as usize, LanePositions::default());
        Ok(positions)
    }

    /// The shard's processed position as far as its effects are readable, in every lane
    /// ([`Self::lane_positions`]). Plain reads, no writes: what status calls report.
    pub(super) async fn applied_position(&self, shard: u32) -> Result<u64> {
        Ok(self.applied_positions(shard).await?.0)
    }

    /// [`Self::applied_position`], and the sum of the lanes' applied positions.
    pub(super) async fn applied_positions(&self, shard: u32) -> Result<(u64, u64)> {
        let applied: Vec<u64> = self.lane_positions(shard).await?.into_iter().map(|lane| lane.applied).collect();
        Ok((lowest(applied.iter().copied()), applied.iter().sum()))
    }

    /// The shard's processed position as last committed, the lowest of its lanes' (plain
    /// reads: commits complete before the log rows they pass are trimmed, which is all a
    /// config save and a log read rely on).
    pub(super) async fn processed_position(&self, shard: u32) -> Result<u64> {
        Ok(lowest(self.lane_positions(shard).await?.into_iter().map(|lane| lane.committed)))
    }

    /// Reads the shard's progress at serial consistency (seeing every commit before it) and
    /// applies its step unless this process already has. A newer step may land between the
    /// read and loading the step's body (its worker is busy committing): then it reads again,
    /// rather than failing a status call over a benign race.
    async fn catch_up(&self, shard: u32) -> Result<StepMark> {
        const ATTEMPTS: usize = 5;
        for _ in 1..ATTEMPTS {
            if let Some(mark) = self.try_catch_up(shard).await? {
                return Ok(mark);
            }
        }
        self.try_catch_up(shard)
            .await?
            .ok_or_else(|| StoreError::Unavailable(format!("log shard {shard} moved while it was read; read it again")))
    }

    /// One attempt of [`Self::catch_up`]; `None` when the shard moved while it was read.
    async fn try_catch_up(&self, shard: u32) -> Result<Option<StepMark>> {
        let row: Option<ProgressRow> = self.row(&self.statements.select_progress_serial, (shard_value(shard),)).await?;
        let stored = match row {
            Some((processed, step_id, timestamp, parts)) => StepMark {
                processed: processed.map_or(0, |p| p.max(0) as u64),
                step_id: step_id.unwrap_or(0),
                timestamp: timestamp.unwrap_or(0),
                parts: parts.unwrap_or(0),
            },
            None => StepMark { processed: 0, step_id: 0, timestamp: 0, parts: 0 },
        };
        let known = self.applied().get(&shard).map(|mark| mark.step_id);
        if stored.step_id != 0 && known != Some(stored.step_id) {
            let Some(step) = self.load_step(shard, stored).await? else {
                // Its body is gone: a newer step was applied since the read above.
                return Ok(None);
            };
            tracing::info!(shard, step = step.id, processed = step.processed, "applying a committed step again");
            self.apply(&step).await?;
        }
        self.applied().insert(shard, stored);
        Ok(Some(stored))
    }

    async fn load_step(&self, shard: u32, mark: StepMark) -> Result<Option<StoredStep>> {
        // Parts are up to a MiB each: a few per page.
        let mut statement = self.statements.select_step_parts.clone();
        statement.set_page_size(4);
        let parts: Vec<(i32, Vec<u8>)> = self.rows(&statement, (shard_value(shard), mark.step_id)).await?;
        if parts.len() != usize::try_from(mark.parts).unwrap_or(0) || parts.iter().zip(0..).any(|((part, _), i)| *part != i) {
            return Ok(None);
        }
        let body: Vec<u8> = parts.into_iter().flat_map(|(_, bytes)| bytes).collect();
        let body = lz4_flex::decompress_size_prepended(&body).map_err(|e| StoreError::Corrupt(format!("undecompressable attribution step: {e}")))?;
        decode("attribution step", &body).map(Some)
    }

    /// Writes everything a step changes. Safe to repeat, also after newer steps.
    async fn apply(&self, step: &StoredStep) -> Result<()> {
        let timestamp = step.timestamp;

        // Rows that a change's new version writes are not deleted for its old version: with
        // equal timestamps the deletion would win.
        let mut written = HashSet::new();
        let mut new_rows = Vec::new();
        let mut buckets = HashSet::new();
        for new in step.conversions.iter().filter_map(|(_, new)| new.as_ref()) {
            let rows = conversion_rows(new);
            written.extend(rows.iter().cloned());
            buckets.extend(conversion_buckets(new));
            new_rows.push((rows, encode_conversion(new)?));
        }
        let deleted: HashSet<ConversionRow> = step
            .conversions
            .iter()
            .filter_map(|(old, _)| old.as_ref())
            .flat_map(conversion_rows)
            .filter(|row| !written.contains(row))
            .collect();

        // Sum per stored row first: the hours of one day all land on the same day row.
        let mut sums: BTreeMap<(String, Granularity, Millis, Vec<u8>), Tally> = BTreeMap::new();
        for (tenant, hour, cell, tally) in &step.rollups {
            let cell = encode(cell)?;
            for &granularity in MESSAGE_LEVELS {
                sums.entry((tenant.clone(), granularity, granularity.bucket(*hour), cell.clone())).or_default().add(*tally);
                buckets.insert(rollup_bucket(tenant, granularity, *hour));
            }
        }
        let rollups: Vec<RollupRow> = sums
            .into_iter()
            .filter(|(_, tally)| !tally.is_zero())
            .map(|((tenant, granularity, bucket, cell), tally)| RollupRow { tenant, granularity, bucket, cell, tally })
            .collect();

        // Campaign counters the same way, one row per campaign and bucket holding all its
        // cells; pending counters one row per message and hour.
        type Sums = BTreeMap<CampaignCell, Tally>;
        let mut campaign_sums: BTreeMap<(String, Granularity, Millis, String), Sums> = BTreeMap::new();
        for (tenant, campaign_id, hour, cell, tally) in &step.campaign_rollups {
            for &granularity in CAMPAIGN_LEVELS {
                let key = (tenant.clone(), granularity, granularity.bucket(*hour), campaign_id.clone());
                campaign_sums.entry(key).or_default().entry(cell.clone()).or_default().add(*tally);
                buckets.insert(campaign_rollup_bucket(tenant, granularity, *hour));
            }
        }
        let mut campaign_rollups = Vec::new();
        for ((tenant, granularity, bucket, campaign_id), sums) in campaign_sums {
            if let Some(cells) = encode_campaign_cells(sums)? {
                campaign_rollups.push(CampaignRollupRow { tenant, granularity, bucket, campaign_id, cells });
            }
        }
        let mut pending_sums: BTreeMap<(String, String, Millis), Sums> = BTreeMap::new();
        for (tenant, msg_hash, hour, cell, tally) in &step.pending {
            let key = (tenant.clone(), msg_hash.clone(), Granularity::Hour.bucket(*hour));
            pending_sums.entry(key).or_default().entry(cell.clone()).or_default().add(*tally);
        }
        let mut pending = Vec::new();
        for ((tenant, msg_hash, hour), sums) in pending_sums {
            if let Some(cells) = stored_cells(sums)? {
                pending.push(PendingRow { tenant, msg_hash, lane: lane_value(step.lane), hour, cells });
            }
        }

        // Kept for good (no TTL), and written at the step's timestamp like the rest, so a
        // re-applied step rewrites the very same rows.
        let set_aside: Vec<(&StoredSetAside, Vec<u8>)> =
            step.set_aside.iter().map(|entry| Ok((entry, encode(&entry.payload)?))).collect::<Result<_>>()?;

        let activity: Vec<(&Record, Vec<u8>)> = step
            .activity
            .iter()
            .map(|record| match record {
                Record::Event(e) => Ok((record, encode(e)?)),
                Record::Order(o) => Ok((record, encode(o)?)),
                Record::Message(_) | Record::Touch(_) | Record::Badge(_) => {
                    Err(StoreError::Backend(format!("a {} is no badge activity", crate::support::record_kind(record))))
                }
            })
            .collect::<Result<_>>()?;
        // A customer's badge partition as committed (`ACTIVITY_BADGE` rows): the step's
        // stored badge events and its derived entries.
        let stored_badges = step.records.iter().filter_map(|record| match record {
            Record::Badge(b) => Some(b),
            _ => None,
        });
        let badge_bodies: Vec<(&BadgeEvent, Vec<u8>)> = stored_badges
            .chain(step.badge_rows.iter().filter_map(|change| change.as_ref().ok()))
            .map(|row| Ok((row, encode(row)?)))
            .collect::<Result<_>>()?;
        let mut stat_sums: BTreeMap<(&str, &str, StatLevel, Millis), BadgeTally> = BTreeMap::new();
        for (tenant, badge_id, ts, tally) in &step.badge_stats {
            for level in [StatLevel::Day, StatLevel::Instant] {
                stat_sums.entry((tenant, badge_id, level, level.bucket(*ts))).or_default().add(*tally);
            }
        }
        let stat_rows: Vec<(StatKey<'_>, Vec<u8>)> = stat_sums
            .into_iter()
            .filter(|(_, tally)| !tally.is_zero())
            .map(|((tenant, badge_id, level, ts), tally)| Ok(((tenant, badge_id, level_code(level), ts), encode(&tally)?)))
            .collect::<Result<_>>()?;
        let holdings: Vec<(&HoldingRow, Vec<u8>)> =
            step.holdings.iter().map(|row| Ok((row, encode(&row.3)?))).collect::<Result<_>>()?;
        let feed: Vec<(&FeedRow, Vec<u8>)> =
            step.badge_feed.iter().map(|row| Ok((row, encode(&row.3)?))).collect::<Result<_>>()?;

        let mut records = Partitions::default();
        let records_parts = records_parts(&step.records)?;
        for (tenant, hour, kind, part, body) in &records_parts {
            let day = bucket(*hour, DAY_MS);
            records.add((tenant, day), (tenant, day, *hour, *kind, step.id, *part, body), body.len() + 32);
            buckets.insert(BucketRow::new(tenant, table::RECORDS_BY_DAY, "", *hour));
        }

        let mut writes: Vec<Write<'_>> = self.bucket_writes(buckets);
        writes.extend(records.batches(self, &self.statements.insert_records_part, Some(timestamp)));
        let written = new_rows.iter().flat_map(|(rows, body)| rows.iter().map(move |row| (row, Some(body.as_slice()))));
        writes.extend(self.conversion_writes(written.chain(deleted.iter().map(|row| (row, None))), timestamp));
        writes.extend(set_aside.iter().map(|row| self.write_set_aside(step.shard, row, timestamp)));
        writes.extend(self.rollup_writes(&rollups, step.id, timestamp));
        writes.extend(self.campaign_rollup_writes(&campaign_rollups, step.id, timestamp));
        writes.extend(self.pending_writes(&pending, step.id, timestamp));
        let s = &self.statements;
        // Activity and holdings go in a batch per slot partition: a step's customers share
        // their tenant's 16.
        let mut activity_rows = Partitions::default();
        for (record, body) in &activity {
            let (tenant, customer_id, kind, ts, event_id) = match record {
                Record::Event(e) => (&e.tenant, &e.customer_id, ACTIVITY_EVENT, e.ts, &e.event_id),
                Record::Order(o) => (&o.tenant, &o.customer_id, ACTIVITY_ORDER, o.ts, &o.event_id),
                // Refused above: only events and orders reach here.
                Record::Message(_) | Record::Touch(_) | Record::Badge(_) => continue,
            };
            let slot = slot(customer_id);
            let size = customer_id.len() + event_id.len() + body.len() + 24;
            activity_rows.add((tenant, slot), (tenant, slot, customer_id, kind, ts, event_id, body), size);
        }
        // The badge partition as committed, for the next steps' badge inputs, beside the
        // activity.
        for (row, body) in &badge_bodies {
            let slot = slot(&row.customer_id);
            let size = row.customer_id.len() + row.event_id.len() + body.len() + 24;
            activity_rows.add((&row.tenant, slot), (&row.tenant, slot, &row.customer_id, ACTIVITY_BADGE, row.ts, &row.event_id, body), size);
        }
        writes.extend(activity_rows.batches(self, &s.insert_activity, Some(timestamp)));
        let mut removed = Partitions::default();
        for (tenant, customer_id, ts, event_id) in step.badge_rows.iter().filter_map(|change| change.as_ref().err()) {
            let slot = slot(customer_id);
            removed.add((tenant, slot), (tenant, slot, customer_id, ACTIVITY_BADGE, *ts, event_id), customer_id.len() + event_id.len() + 24);
        }
        writes.extend(removed.batches(self, &s.delete_activity, Some(timestamp)));
        let mut stats = Partitions::default();
        for ((tenant, badge_id, level, ts), tally) in &stat_rows {
            stats.add((*tenant, *badge_id, *level), (*tenant, *badge_id, *level, *ts, step.id, tally), tally.len() + 24);
        }
        writes.extend(stats.batches(self, &s.insert_badge_stat_delta, Some(timestamp)));
        let (mut held, mut dropped) = (Partitions::default(), Partitions::default());
        for ((tenant, customer_id, badge_id, intervals), body) in &holdings {
            let slot = slot(customer_id);
            let size = customer_id.len() + badge_id.len() + body.len() + 16;
            if intervals.is_empty() {
                dropped.add((tenant, slot), (tenant, slot, customer_id, badge_id), size);
            } else {
                held.add((tenant, slot), (tenant, slot, customer_id, badge_id, body), size);
            }
        }
        writes.extend(held.batches(self, &s.insert_badge_holding, Some(timestamp)));
        writes.extend(dropped.batches(self, &s.delete_badge_holding, Some(timestamp)));
        let mut feed_rows = Partitions::default();
        for ((seq, index, added, event), body) in &feed {
            let values = (&event.tenant, seq_value(*seq), index_value(*index), if *added { "a" } else { "r" }, body);
            feed_rows.add(&event.tenant, values, body.len() + 24);
        }
        writes.extend(feed_rows.batches(self, &s.insert_badge_feed, Some(timestamp)));
        writes.extend(self.fold_writes(&step.fold, step.lane, timestamp));
        all(writes).await?;
        // Its effects are readable: status calls may report its position. At the step's
        // timestamp, so a late re-apply of an older step never marks back.
        let number = shard_value(Lane { shard: step.shard, index: step.lane }.number());
        self.run_at(&self.statements.mark_step_applied, timestamp, (step.id, seq_value(step.processed), number)).await?;

        // The log rows every lane has passed go. With lanes, lane 0 deletes the whole
        // chunks below the lowest lane's position (a lane's reads start after its own
        // position, so the rest of a chunk is never read again).
        if self.options.lanes == 1 {
            self.trim_log(step.shard, step.after, step.processed).await?;
        } else if step.lane == 0 {
            self.trim_chunks(step.shard).await?;
        }
        if step.previous != 0 {
            self.run(&self.statements.delete_step, (number, step.previous)).await?;
        }
        Ok(())
    }

    /// Writes one set-aside row (`payload` is its encoded payload) at the step's timestamp.
    fn write_set_aside<'a>(&'a self, shard: u32, row: &'a (&'a StoredSetAside, Vec<u8>), timestamp: i64) -> Write<'a> {
        let (entry, payload) = row;
        let values = (shard_value(shard), seq_value(entry.seq), entry.appended_at, entry.set_aside_at, payload, &entry.reason);
        Box::pin(self.run_at(&self.statements.insert_set_aside, timestamp, values))
    }

    /// Deletes the shard's log chunks that every lane has passed whole, from the first one
    /// this process has not deleted yet.
    async fn trim_chunks(&self, shard: u32) -> Result<()> {
        let passed = self.processed_position(shard).await?;
        let below = (passed + 1) / CHUNK;
        let from = self.trimmed().get(&shard).copied().unwrap_or(0);
        let deletes = (from..below).map(|chunk_no| self.run(&self.statements.delete_log_chunk, (shard_value(shard), chunk(chunk_no * CHUNK))));
        all(deletes).await?;
        self.trimmed().insert(shard, below.max(from));
        Ok(())
    }

    /// Deletes the shard's log rows with `after < seq <= processed`: whole partitions where
    /// every position is processed, a range of the last one otherwise.
    async fn trim_log(&self, shard: u32, after: u64, processed: u64) -> Result<()> {
        if processed <= after {
            return Ok(());
        }
        let s = &self.statements;
        let deletes = (after + 1) / CHUNK..=processed / CHUNK;
        let deletes = deletes.map(|chunk_no| {
            let last_in_chunk = (chunk_no + 1) * CHUNK - 1;
            let chunk_no = chunk(chunk_no * CHUNK);
            async move {
                if processed >= last_in_chunk {
                    self.run(&s.delete_log_chunk, (shard_value(shard), chunk_no)).await
                } else {
                    self.run(&s.delete_log_range, (shard_value(shard), chunk_no, seq_value(after), seq_value(processed))).await
                }
            }
        });
        all(deletes).await?;
        Ok(())
    }
}

/// The encoded [`StoredCells`] of one row, zeros left out; `None` when nothing is left.
fn stored_cells(sums: BTreeMap<CampaignCell, Tally>) -> Result<Option<Vec<u8>>> {
    let cells: StoredCells = sums.into_iter().filter(|(_, tally)| !tally.is_zero()).collect();
    if cells.is_empty() { Ok(None) } else { encode(&cells).map(Some) }
}

/// A step id no other step of any process has: random, never 0.
fn fresh_step_id() -> i64 {
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    // `RandomState` is seeded from the OS once per thread and stepped on every call.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(NEXT.fetch_add(1, Ordering::Relaxed));
    hasher.write_i64(now_micros());
    match hasher.finish() as i64 {
        0 => 1,
        id => id,
    }
}

fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| i64::try_from(since.as_micros()).unwrap_or(i64::MAX))
}

/// The lowest of the positions (0 when there are none).
fn lowest(positions: impl Iterator<Item = u64>) -> u64 {
    positions.min().unwrap_or(0)
}
