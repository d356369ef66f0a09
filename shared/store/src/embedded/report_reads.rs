//! [`ReportReads`] on fjall: rollup rows summed over a range of buckets, raw rows by time.

use super::key::Key;
use super::layout::{TIME_BUCKET_MS, Table, granularity_tag, range_is_empty, time_range};
use super::{EmbeddedStore, Tables, backend, decode};
use crate::{ReportReads, Result, StoreError};
use async_trait::async_trait;
use touchstone_core::attribution::Conversion;
use touchstone_core::model::{AppEvent, Millis, Touch};
use touchstone_core::rollup::{Cell, Cells, Granularity};

#[async_trait]
impl ReportReads for EmbeddedStore {
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.rollups(&tenant, granularity, from, to)).await
    }

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.touches_between(&tenant, from, to)).await
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.events_between(&tenant, from, to)).await
    }

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.conversions_between(&tenant, from, to)).await
    }
}

impl Tables {
    fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let partition = Key::new().str(tenant).tag(granularity_tag(granularity));
        let range = time_range(&partition, None, from, Some(to));
        let mut cells = Cells::default();
        if range_is_empty(&range) {
            return Ok(cells);
        }
        // The cell is the rest of the key after the partition and the bucket start.
        let cell_at = partition.as_bytes().len() + 8;
        for guard in self.table(Table::Rollups).range(range) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let cell_bytes = key
                .get(cell_at..)
                .ok_or_else(|| StoreError::Corrupt("rollup key too short".to_owned()))?;
            cells.add(decode::<Cell>(Table::Rollups, cell_bytes)?, decode(Table::Rollups, &value)?);
        }
        // Rows that sum to zero are deleted, but rows of different buckets may still cancel.
        Ok(cells.without_zeros())
    }

    fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        self.scan(Table::TouchesByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }

    fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        self.scan(Table::EventsByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }

    fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        self.scan(Table::ConversionsByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }
}
