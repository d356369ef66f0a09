//! [`ReportReads`]: what reports sum over a range.

use crate::{RecordReads, Result};
use async_trait::async_trait;
use touchstone_core::attribution::Conversion;
use touchstone_core::fold::CustomerState;
use std::collections::BTreeMap;
use touchstone_core::model::{AppEvent, Message, Millis, Touch};
use touchstone_core::rollup::{CampaignCell, CampaignCells, Cells, Granularity};

/// Which of a campaign's counters a read returns. A stored row keeps conversions, model
/// shifts and the rest apart, so a read decodes only what it asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CellKinds {
    All,
    /// Touches, event hits, messages and conversions by rule: a campaign's stats, without
    /// the model shifts.
    Stats,
    /// Only [`CampaignCell::Conversion`] cells: what goal KPIs need.
    Conversions,
    /// Conversions and [`CampaignCell::ModelShift`]s: what reports under any model need.
    Credit,
}

impl CellKinds {
    pub fn wants(self, cell: &CampaignCell) -> bool {
        match self {
            CellKinds::All => true,
            CellKinds::Stats => !cell.is_model_shift(),
            CellKinds::Conversions => cell.is_conversion(),
            CellKinds::Credit => cell.is_conversion() || cell.is_model_shift(),
        }
    }
}

/// Rollup counters for whole hours, days and months, raw rows for the ragged edges of a
/// range. A row is readable here once the attribution commit that counted it returned
/// (rollups, conversions) or once its ingest call returned (touches, events, messages).
#[async_trait]
pub trait ReportReads: RecordReads {
    /// Message counters summed over the buckets of `granularity` (one of
    /// [`MESSAGE_LEVELS`](touchstone_core::rollup::MESSAGE_LEVELS)) starting in `[from, to)`.
    async fn rollups(&self, tenant: &str, granularity: Granularity, from: Millis, to: Millis) -> Result<Cells>;

    /// Campaign counters summed over the buckets of `granularity` (one of
    /// [`CAMPAIGN_LEVELS`](touchstone_core::rollup::CAMPAIGN_LEVELS)) starting in `[from, to)`,
    /// by campaign id (empty: no campaign); only `campaign_id` when given. Zero cells and
    /// campaigns left with none are left out. Only the cells of `kinds`.
    async fn campaign_rollups(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<BTreeMap<String, CampaignCells>>;

    /// The counters of every campaign (the no-campaign row too), or of `campaign_id` alone
    /// when given, summed per bucket of `granularity` starting in `[from, to)`: each bucket
    /// left with cells, with its start, oldest first. Only the cells of `kinds`. A daily
    /// series of a tenant's goal figures or of a campaign's stats is one such read, not one
    /// per day.
    async fn campaign_rollup_buckets(
        &self,
        tenant: &str,
        campaign_id: Option<&str>,
        kinds: CellKinds,
        granularity: Granularity,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<(Millis, CampaignCells)>>;

    /// Registered messages with `from <= sent_at < to`, any order.
    async fn messages_sent_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Message>>;

    async fn touches_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Touch>>;

    async fn events_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<AppEvent>>;

    async fn conversions_between(&self, tenant: &str, from: Millis, to: Millis) -> Result<Vec<Conversion>>;

    /// Every customer exposed to a campaign (a `SENT` or `HELD_OUT` touch of one of its
    /// registered messages, at any time, as commits recorded them: [`Exposure`]) with their
    /// whole fold state (touches and credited conversions), any order: what a campaign's
    /// lift reads, instead of every customer of the tenant.
    ///
    /// [`Exposure`]: crate::Exposure
    async fn exposed_customer_states(&self, tenant: &str, campaign_id: &str) -> Result<Vec<(String, CustomerState)>>;
}
