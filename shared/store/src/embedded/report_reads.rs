//! [`ReportReads`] on fjall: rollup rows summed over a range of buckets, raw rows by time.

use super::key::{Key, read_str, read_time};
use super::layout::{
    TIME_BUCKET_MS, Table, campaign_rollup_key, campaign_rollup_partition, granularity_tag, range_is_empty, time_range,
};
use super::rollup_overlay::Overlay;
use super::{EmbeddedStore, Tables, backend, decode};
use crate::support::decode_campaign_cells;
use crate::{CellKinds, ReportReads, Result, StoreError};
use async_trait::async_trait;
use touchstone_core::attribution::Conversion;
use touchstone_core::fold::CustomerState;
use std::collections::BTreeMap;
use touchstone_core::model::{AppEvent, Message, Millis, Touch};
use touchstone_core::rollup::{CampaignCell, CampaignCells, Cell, Cells, Granularity, Tally, campaigns_without_zeros};

#[async_trait]
impl ReportReads for EmbeddedStore {
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells> {
        let tenant = tenant.to_owned();
        self.blocking("rollups", move |tables| tables.rollups(&tenant, granularity, from, to)).await
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
        let tenant = tenant.to_owned();
        let campaign_id = campaign_id.map(str::to_owned);
        self.blocking("campaign_rollups", move |tables| tables.campaign_rollups(&tenant, campaign_id.as_deref(), kinds, granularity, from, to)).await
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
        let tenant = tenant.to_owned();
        let campaign_id = campaign_id.map(str::to_owned);
        self.blocking("campaign_rollup_buckets", move |tables| {
            tables.campaign_rollup_buckets(&tenant, campaign_id.as_deref(), kinds, granularity, from, to)
        })
        .await
    }

    async fn messages_sent_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Message>> {
        let tenant = tenant.to_owned();
        self.blocking("messages_sent_between", move |tables| {
            tables.scan(Table::MessagesByTime, time_range(&Key::new().str(&tenant), Some(TIME_BUCKET_MS), from, Some(to)))
        })
        .await
    }

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let tenant = tenant.to_owned();
        self.blocking("touches_between", move |tables| tables.touches_between(&tenant, from, to)).await
    }

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        let tenant = tenant.to_owned();
        self.blocking("events_between", move |tables| tables.events_between(&tenant, from, to)).await
    }

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        let tenant = tenant.to_owned();
        self.blocking("conversions_between", move |tables| tables.conversions_between(&tenant, from, to)).await
    }

    async fn exposed_customer_states(&self, tenant: &str, campaign_id: &str) -> Result<Vec<(String, CustomerState)>> {
        let (tenant, campaign_id) = (tenant.to_owned(), campaign_id.to_owned());
        self.blocking("exposed_customer_states", move |tables| tables.exposed_customer_states(&tenant, &campaign_id)).await
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
        let cell_of = |key: &[u8]| -> Result<Cell> {
            let bytes = key.get(cell_at..).ok_or_else(|| StoreError::Corrupt("rollup key too short".to_owned()))?;
            decode(Table::Rollups, bytes)
        };
        let overlay = self.overlay_of(tenant)?;
        for guard in self.read(Table::Rollups).range(range.clone()) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            self.usage.read_bytes(Table::Rollups, key.len() + value.len());
            cells.add(cell_of(&key)?, decode(Table::Rollups, &value)?);
        }
        for (key, tally) in overlay.deltas.rollups.range(range) {
            cells.add(cell_of(key)?, *tally);
        }
        // Rows that sum to zero are deleted, but rows of different buckets may still cancel.
        Ok(cells.without_zeros())
    }

    /// One range scan over the buckets of every campaign; for one campaign, its buckets as
    /// [`Self::campaign_buckets_of`] reads them, summed.
    fn campaign_rollups(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<BTreeMap<String, CampaignCells>> {
        let overlay = self.overlay_of(tenant)?;
        let mut by_campaign: BTreeMap<String, CampaignCells> = BTreeMap::new();
        if let Some(campaign_id) = campaign_id {
            let mut sum = CampaignCells::default();
            for (_bucket, cells) in self.campaign_buckets_of(&overlay, tenant, campaign_id, kinds, granularity, from, to)? {
                sum.merge(cells);
            }
            by_campaign.insert(campaign_id.to_owned(), sum);
            return Ok(campaigns_without_zeros(by_campaign));
        }
        self.scan_campaign_rows(&overlay, tenant, kinds, granularity, from, to, |_bucket, campaign, cells| {
            let sum = by_campaign.entry(campaign.to_owned()).or_default();
            cells.into_iter().for_each(|(cell, tally)| sum.add(cell, tally));
        })?;
        Ok(campaigns_without_zeros(by_campaign))
    }

    /// Over every campaign, one scan of the tenant's rows between the bounds, one row per
    /// bucket; for one campaign, its rows as [`Self::campaign_rollups`] reads them, bucket by
    /// bucket.
    fn campaign_rollup_buckets(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, CampaignCells)>> {
        let partition = campaign_rollup_partition(tenant, granularity);
        let range = time_range(&partition, None, from, Some(to));
        if range_is_empty(&range) {
            return Ok(Vec::new());
        }
        let overlay = self.overlay_of(tenant)?;
        if let Some(campaign_id) = campaign_id {
            return self.campaign_buckets_of(&overlay, tenant, campaign_id, kinds, granularity, from, to);
        }
        super::layout::check_range(&range)?;
        let corrupt = || StoreError::Corrupt("tenant rollup key too short".to_owned());
        let bucket_of = |key: &[u8]| key.get(partition.as_bytes().len()..).and_then(read_time).map(|(bucket, _)| bucket).ok_or_else(corrupt);
        let mut buckets = Buckets::default();
        for guard in self.read(Table::TenantRollups).range(range.clone()) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            self.usage.read_bytes(Table::TenantRollups, key.len() + value.len());
            buckets.add(bucket_of(&key)?, decode_campaign_cells(&value, kinds)?);
        }
        for (key, cells) in overlay.deltas.tenants.range(range) {
            buckets.add_wanted(bucket_of(key)?, cells, kinds);
        }
        Ok(buckets.without_zeros())
    }

    /// One campaign's rows per bucket: a point read per bucket (a year is ~100 buckets of
    /// one campaign, against ~2,000 rows of every campaign to step over), or a scan of every
    /// campaign's rows past [`MAX_POINT_READS`] buckets.
    #[allow(clippy::too_many_arguments)]
    fn campaign_buckets_of(
        &self,
        overlay: &Overlay,
        tenant: &str,
        campaign_id: &str,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, CampaignCells)>> {
        let mut buckets = Buckets::default();
        if from < to
            && let Some(starts) = buckets_within(granularity, from, to, MAX_POINT_READS)
        {
            for bucket in starts {
                let key = campaign_rollup_key(tenant, granularity, bucket, campaign_id);
                buckets.add(bucket, self.cells_row(Table::CampaignRollups, &key, kinds)?.0);
                if let Some(cells) = overlay.deltas.campaigns.get(&key) {
                    buckets.add_wanted(bucket, cells, kinds);
                }
            }
        } else {
            self.scan_campaign_rows(overlay, tenant, kinds, granularity, from, to, |bucket, campaign, cells| {
                if campaign == campaign_id {
                    buckets.add(bucket, cells);
                }
            })?;
        }
        Ok(buckets.without_zeros())
    }

    /// Each `campaign_rollups` row of the tenant's buckets of `granularity` starting in
    /// `[from, to)`, in key order (bucket, then campaign): its bucket, campaign and cells of
    /// `kinds`; then each row's deltas in the overlay.
    #[allow(clippy::too_many_arguments)]
    fn scan_campaign_rows(
        &self,
        overlay: &Overlay,
        tenant: &str,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
        mut row: impl FnMut(Millis, &str, Vec<(CampaignCell, Tally)>),
    ) -> Result<()> {
        let partition = campaign_rollup_partition(tenant, granularity);
        let range = time_range(&partition, None, from, Some(to));
        if range_is_empty(&range) {
            return Ok(());
        }
        super::layout::check_range(&range)?;
        let at = partition.as_bytes().len();
        for guard in self.read(Table::CampaignRollups).range(range.clone()) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            self.usage.read_bytes(Table::CampaignRollups, key.len() + value.len());
            let (bucket, campaign) = campaign_row(&key, at)?;
            row(bucket, campaign, decode_campaign_cells(&value, kinds)?);
        }
        for (key, cells) in overlay.deltas.campaigns.range(range) {
            let (bucket, campaign) = campaign_row(key, at)?;
            row(bucket, campaign, wanted(cells, kinds));
        }
        Ok(())
    }

    fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        self.scan(Table::TouchesByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }

    fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>> {
        self.scan(Table::EventsByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }

    fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>> {
        self.scan_conversions(Table::ConversionsByTime, time_range(&Key::new().str(tenant), Some(TIME_BUCKET_MS), from, Some(to)))
    }
}

/// The bucket and campaign of a `campaign_rollups` key whose partition is `at` bytes long.
fn campaign_row(key: &[u8], at: usize) -> Result<(Millis, &str)> {
    let corrupt = || StoreError::Corrupt("campaign rollup key too short".to_owned());
    let (bucket, rest) = key.get(at..).and_then(read_time).ok_or_else(corrupt)?;
    let (campaign, _) = read_str(rest).ok_or_else(corrupt)?;
    Ok((bucket, campaign))
}

/// Cells summed per bucket.
#[derive(Default)]
struct Buckets(BTreeMap<Millis, CampaignCells>);

impl Buckets {
    fn add(&mut self, bucket: Millis, cells: impl IntoIterator<Item = (CampaignCell, Tally)>) {
        let sum = self.0.entry(bucket).or_default();
        cells.into_iter().for_each(|(cell, tally)| sum.add(cell, tally));
    }

    fn add_wanted(&mut self, bucket: Millis, cells: &CampaignCells, kinds: CellKinds) {
        self.add(bucket, wanted(cells, kinds));
    }

    /// The buckets in order, each without its zero cells, empty ones left out.
    fn without_zeros(self) -> Vec<(Millis, CampaignCells)> {
        self.0.into_iter().map(|(bucket, cells)| (bucket, cells.without_zeros())).filter(|(_, cells)| !cells.is_empty()).collect()
    }
}

/// The cells of `kinds` of an overlay's row.
fn wanted(cells: &CampaignCells, kinds: CellKinds) -> Vec<(CampaignCell, Tally)> {
    cells.0.iter().filter(|(cell, _)| kinds.wants(cell)).map(|(cell, tally)| (cell.clone(), *tally)).collect()
}

/// Past this many buckets a range is scanned rather than read bucket by bucket.
const MAX_POINT_READS: usize = 400;

/// The starts of the buckets of `granularity` in `[from, to)`, if there are at most `max`.
fn buckets_within(granularity: Granularity, from: Millis, to: Millis, max: usize) -> Option<Vec<Millis>> {
    let mut buckets = Vec::new();
    let mut bucket = granularity.ceil(from);
    while bucket < to {
        if buckets.len() == max {
            return None;
        }
        buckets.push(bucket);
        bucket = granularity.next(bucket);
    }
    Some(buckets)
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::rollup::{DAY_MS, HOUR_MS};

    #[test]
    fn buckets_within_lists_bucket_starts_in_the_range_up_to_a_limit() {
        let day = 1_704_067_200_000; // 1 January 2024, UTC
        assert_eq!(buckets_within(Granularity::Hour, day + 1, day + 3 * HOUR_MS, 10), Some(vec![day + HOUR_MS, day + 2 * HOUR_MS]));
        assert_eq!(buckets_within(Granularity::Day, day, day, 10), Some(vec![]));
        assert_eq!(buckets_within(Granularity::Day, day, day + 5 * DAY_MS, 4), None);
        assert_eq!(buckets_within(Granularity::Month, day, day + 60 * DAY_MS, 4), Some(vec![day, day + 31 * DAY_MS]));
    }
}
