//! [`ReportReads`]: what reports sum over a range.

use crate::{RecordReads, Result};
use async_trait::async_trait;
use touchstone_core::attribution::Conversion;
use touchstone_core::model::{AppEvent, Millis, Touch};
use touchstone_core::rollup::{Cells, Granularity};

/// Rollup counters for whole hours and days, raw rows for the ragged edges of a range.
/// A row is readable here once the attribution commit that counted it returned (rollups,
/// conversions) or once its ingest call returned (touches, events).
#[async_trait]
pub trait ReportReads: RecordReads {
    /// Rollup counters summed over the buckets of `granularity` starting in `[from, to)`.
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells>;

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>>;

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>>;

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>>;
}
