//! [`ReportReads`] on CQL: rollup delta rows (message and campaign counters) summed over
//! the buckets of a range (listed in `buckets` first), and raw rows of the hour partitions
//! a range touches.

use super::timed;
use super::layout::{CONVERSION_TIME_SHARDS, RecordKind, TIME_SHARDS, bucket, decode, from_varint, granularity_code, message, table};
use super::{CqlStore, Inner, all};
use crate::support::{decode_campaign_cells, decode_conversion};
use crate::{CellKinds, ReportReads, Result};
use async_trait::async_trait;
use scylla::value::CqlVarint;
use std::collections::BTreeMap;
use touchstone_core::attribution::Conversion;
use touchstone_core::fold::CustomerState;
use touchstone_core::model::{AppEvent, Message, Millis, Touch};
use touchstone_core::rollup::{CampaignCells, Cell, Cells, DAY_MS, Granularity, HOUR_MS, Tally, campaigns_without_zeros};

#[async_trait]
impl ReportReads for CqlStore {
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        timed("rollups", async { self.inner.rollups(tenant, granularity, from, to).await }).await
    }

    async fn campaign_rollups(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<BTreeMap<String, CampaignCells>> {
        timed("campaign_rollups", async { self.inner.campaign_rollups(tenant, campaign_id, kinds, granularity, from, to).await }).await
    }

    async fn campaign_rollup_buckets(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, CampaignCells)>> {
        timed("campaign_rollup_buckets", async { self.inner.campaign_rollup_buckets(tenant, campaign_id, kinds, granularity, from, to).await }).await
    }

    async fn messages_sent_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Message>> {
        timed("messages_sent_between", async { self.inner.messages_sent_between(tenant, from, to).await }).await
    }

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        timed("touches_between", async { self.inner.touches_between(tenant, from, to).await }).await
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        timed("events_between", async { self.inner.events_between(tenant, from, to).await }).await
    }

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        timed("conversions_between", async { self.inner.conversions_between(tenant, from, to).await }).await
    }

    async fn exposed_customer_states(&self, tenant: &str, campaign_id: &str) -> Result<Vec<(String, CustomerState)>> {
        timed("exposed_customer_states", async { self.inner.exposed_customer_states(tenant, campaign_id).await }).await
    }
}

impl Inner {
    /// The spans (partitions) of `table`'s rollup rows of `granularity` that may hold buckets
    /// starting in `[from, to)`, as `buckets` lists them.
    async fn rollup_spans(&self, tenant: &str, table: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Vec<Millis>> {
        // The span holding the first bucket starting at or after `from` starts at or before
        // it (saturating: `from` may be `Millis::MIN`).
        let first = match granularity {
            Granularity::Hour => bucket(from, DAY_MS),
            Granularity::Day if from > Millis::MIN + 32 * DAY_MS => Granularity::Month.bucket(from),
            Granularity::Day => Millis::MIN,
            Granularity::Month => from,
        };
        self.buckets(tenant, table, granularity_code(granularity), first, to - 1).await
    }

    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let mut cells = Cells::default();
        if from >= to {
            return Ok(cells);
        }
        let code = granularity_code(granularity);
        let spans = self.rollup_spans(tenant, table::ROLLUP_DELTAS, granularity, from, to).await?;
        let reads = spans.into_iter().map(|span| {
            self.rows::<(i64, Vec<u8>, i64, CqlVarint)>(&self.statements.select_rollup_deltas, (tenant, code, span, from, to - 1))
        });
        for (_bucket, cell, count, value_micros) in all(reads).await?.into_iter().flatten() {
            let cell: Cell = decode("rollup cell", &cell)?;
            cells.add(cell, Tally { count, value_micros: from_varint(&value_micros)? });
        }
        Ok(cells.without_zeros())
    }

    /// The campaign rollup rows `(bucket, campaign_id, cells)` of buckets starting in
    /// `[from, to)`: of one campaign, a slice of each span; of all, whole spans filtered.
    async fn campaign_rollup_rows(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(i64, String, Vec<u8>)>> {
        let s = &self.statements;
        let code = granularity_code(granularity);
        let spans = self.rollup_spans(tenant, table::CAMPAIGN_ROLLUP_DELTAS, granularity, from, to).await?;
        let reads = spans.into_iter().map(|span| async move {
            match campaign_id {
                Some(id) => self.rows(&s.select_campaign_rollup_deltas_of, (tenant, code, span, id, from, to - 1)).await,
                None => self.rows(&s.select_campaign_rollup_deltas, (tenant, code, span)).await,
            }
        });
        let mut rows: Vec<(i64, String, Vec<u8>)> = all(reads).await?.into_iter().flatten().collect();
        rows.retain(|(bucket, _, _)| (from..to).contains(bucket));
        Ok(rows)
    }

    /// Like [`Self::rollups`], by campaign: the buckets' rows (of one campaign, when one is
    /// asked for) summed per campaign and cell.
    async fn campaign_rollups(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<BTreeMap<String, CampaignCells>> {
        let mut campaigns: BTreeMap<String, CampaignCells> = BTreeMap::new();
        if from >= to {
            return Ok(campaigns);
        }
        for (_bucket, campaign, cells) in self.campaign_rollup_rows(tenant, campaign_id, granularity, from, to).await? {
            let sums = campaigns.entry(campaign).or_default();
            for (cell, tally) in decode_campaign_cells(&cells, kinds)? {
                sums.add(cell, tally);
            }
        }
        Ok(campaigns_without_zeros(campaigns))
    }

    /// Each bucket (of one campaign, when one is asked for) summed on its own, oldest first.
    async fn campaign_rollup_buckets(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, CampaignCells)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let mut buckets: BTreeMap<Millis, CampaignCells> = BTreeMap::new();
        for (bucket, _campaign, cells) in self.campaign_rollup_rows(tenant, campaign_id, granularity, from, to).await? {
            let sum = buckets.entry(bucket).or_default();
            for (cell, tally) in decode_campaign_cells(&cells, kinds)? {
                sum.add(cell, tally);
            }
        }
        Ok(buckets.into_iter().map(|(bucket, sum)| (bucket, sum.without_zeros())).filter(|(_, sum)| !sum.is_empty()).collect())
    }

    /// Messages by `sent_at`, from the `messages_by_time` partitions of the hours that hold
    /// any (listed in `buckets`), so any range is exact, however long.
    async fn messages_sent_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Message>> {
        type MessageRow = (i64, String, String, String, Option<Vec<String>>);
        let partitions = self.time_partitions(tenant, table::MESSAGES_BY_TIME, (HOUR_MS, TIME_SHARDS), from, to).await?;
        let reads = partitions.into_iter().map(|(hour, shard)| {
            self.rows::<MessageRow>(&self.statements.select_messages_by_time, (tenant, hour, shard, from, to))
        });
        all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|(sent_at, msg_hash, campaign_id, channel, tags)| message(tenant, msg_hash, campaign_id, &channel, tags, sent_at))
            .collect()
    }

    /// Touches from the `records_by_day` rows of the hours that hold any.
    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        self.records_between(tenant, RecordKind::Touch, from, to, |touch: &Touch| touch.ts).await
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        self.records_between(tenant, RecordKind::Event, from, to, |event: &AppEvent| event.ts).await
    }

    pub(super) async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let partitions = self.time_partitions(tenant, table::CONVERSIONS_BY_TIME, (DAY_MS, CONVERSION_TIME_SHARDS), from, to).await?;
        let reads = partitions.into_iter().map(|(day, shard)| {
            self.rows::<(Vec<u8>,)>(&self.statements.select_conversions_by_time, (tenant, day, shard, from, to))
        });
        all(reads).await?.into_iter().flatten().map(|(body,)| decode_conversion("conversion", &body)).collect()
    }
}
