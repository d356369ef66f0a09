//! [`ReportReads`] on CQL: rollup delta rows summed over the buckets of a range (listed in
//! `buckets` first), and raw rows of the hour partitions a range touches.

use super::layout::{decode, from_varint, granularity_code, table, touch};
use super::{CqlStore, Inner, all};
use crate::{ReportReads, Result};
use async_trait::async_trait;
use scylla::value::CqlVarint;
use touchstone_core::attribution::Conversion;
use touchstone_core::model::{AppEvent, Millis, Touch};
use touchstone_core::rollup::{Cell, Cells, Granularity, Tally};

#[async_trait]
impl ReportReads for CqlStore {
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        self.inner.rollups(tenant, granularity, from, to).await
    }

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        self.inner.touches_between(tenant, from, to).await
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        self.inner.events_between(tenant, from, to).await
    }

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        self.inner.conversions_between(tenant, from, to).await
    }
}

impl Inner {
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let mut cells = Cells::default();
        if from >= to {
            return Ok(cells);
        }
        let code = granularity_code(granularity);
        let buckets = self.buckets(tenant, table::ROLLUP_DELTAS, code, from, to - 1).await?;
        let reads = buckets.into_iter().map(|bucket| {
            self.rows::<(Vec<u8>, i64, CqlVarint)>(&self.statements.select_rollup_deltas, (tenant, code, bucket))
        });
        for (cell, count, value_micros) in all(reads).await?.into_iter().flatten() {
            let cell: Cell = decode("rollup cell", &cell)?;
            cells.add(cell, Tally { count, value_micros: from_varint(&value_micros)? });
        }
        Ok(cells.without_zeros())
    }

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let partitions = self.hour_partitions(tenant, table::TOUCHES_BY_TIME, from, to).await?;
        let reads = partitions.into_iter().map(|(hour, shard)| {
            self.rows::<(i64, String, String, String, String)>(&self.statements.select_touches_by_time, (tenant, hour, shard, from, to))
        });
        all(reads)
            .await?
            .into_iter()
            .flatten()
            .map(|(ts, event_id, msg_hash, customer_id, kind)| touch(tenant, event_id, msg_hash, customer_id, &kind, ts))
            .collect()
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        type EventRow = (i64, String, String, String, Option<i64>, Option<String>);
        let partitions = self.hour_partitions(tenant, table::EVENTS_BY_TIME, from, to).await?;
        let reads = partitions
            .into_iter()
            .map(|(hour, shard)| self.rows::<EventRow>(&self.statements.select_events_by_time, (tenant, hour, shard, from, to)));
        let events = all(reads).await?.into_iter().flatten();
        Ok(events
            .map(|(ts, event_id, customer_id, name, value_micros, msg_hash)| AppEvent {
                tenant: tenant.to_owned(),
                event_id,
                customer_id,
                name,
                ts,
                value_micros,
                msg_hash,
            })
            .collect())
    }

    pub(super) async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let partitions = self.hour_partitions(tenant, table::CONVERSIONS_BY_TIME, from, to).await?;
        let reads = partitions.into_iter().map(|(hour, shard)| {
            self.rows::<(Vec<u8>,)>(&self.statements.select_conversions_by_time, (tenant, hour, shard, from, to))
        });
        all(reads).await?.into_iter().flatten().map(|(body,)| decode("conversion", &body)).collect()
    }
}
