//! The counters of a range, per message or per campaign: whole months, days and hours from
//! rollups, the ragged edges from raw records, as [`touchstone_core::rollup::plan_range`]
//! splits it. Exact for any ms range.

use std::collections::{BTreeMap, BTreeSet};
use touchstone_core::model::Millis;
use touchstone_core::rollup::{self, CampaignCell, CampaignCells, Cells, Granularity, RangePiece, Tally};
use touchstone_core::validate::{MAX_TS, MIN_TS};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_store::{CellKinds, ReportReads, Result};

/// A report range in epoch ms, half-open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    pub from: Millis,
    pub to: Millis,
}

impl Range {
    /// From the wire: an absent end is unbounded, which is clamped to the times records can
    /// have (validation keeps every record inside `[MIN_TS, MAX_TS)`).
    pub fn from_pb(range: Option<pb::TimeRange>) -> Result<Range, ApiError> {
        let pb::TimeRange { from_ms, to_ms } = range.unwrap_or_default();
        let from = from_ms.unwrap_or(MIN_TS);
        let to = to_ms.unwrap_or(MAX_TS);
        if from > to {
            return Err(ApiError::bad_field("range", format!("range from {from} is after to {to}")));
        }
        Ok(Range { from: from.clamp(MIN_TS, MAX_TS), to: to.clamp(MIN_TS, MAX_TS) })
    }
}

/// Every message counter of a tenant summed over the range, zero cells dropped.
pub async fn cells(store: &dyn ReportReads, tenant: &str, range: Range) -> Result<Cells> {
    let mut cells = Cells::default();
    for piece in rollup::plan_range(range.from, range.to, rollup::MESSAGE_LEVELS) {
        match piece {
            RangePiece::Rollup { granularity, from, to } => {
                cells.merge(store.rollups(tenant, granularity, from, to).await?);
            }
            RangePiece::Raw { from, to } => cells.merge(raw_cells(store, tenant, from, to).await?),
        }
    }
    Ok(cells.without_zeros())
}

/// Campaign counters of a tenant summed over the range, by campaign id (empty: messages of
/// no campaign and unattributed conversions); only `campaign_id` when given. The raw edges
/// count what attribution counts once it has caught up: records of registered messages
/// under their campaign, of unregistered ones nowhere, and messages at their `sent_at`.
pub async fn campaign_cells(
    store: &dyn ReportReads,
    tenant: &str,
    campaign_id: Option<&str>,
    kinds: CellKinds,
    range: Range,
) -> Result<BTreeMap<String, CampaignCells>> {
    let mut by_campaign: BTreeMap<String, CampaignCells> = BTreeMap::new();
    for piece in rollup::plan_range(range.from, range.to, rollup::CAMPAIGN_LEVELS) {
        match piece {
            RangePiece::Rollup { granularity, from, to } => {
                for (campaign, cells) in store.campaign_rollups(tenant, campaign_id, kinds, granularity, from, to).await? {
                    add_campaign(&mut by_campaign, campaign, cells);
                }
            }
            RangePiece::Raw { from, to } => add_raw_campaign_cells(store, tenant, campaign_id, kinds, from, to, &mut by_campaign).await?,
        }
    }
    Ok(rollup::campaigns_without_zeros(by_campaign))
}

/// For each of `ranges`, in order, what [`campaign_cells`] gives for it summed over every
/// campaign (only `campaign_id`'s when given), with each rollup level read once over the
/// span of all of them: a year of daily points is one read of day rows (plus hour rows in a
/// zone whose days start off the UTC midnight), not 365 reads.
pub async fn campaign_cells_per_range(
    store: &dyn ReportReads,
    tenant: &str,
    campaign_id: Option<&str>,
    kinds: CellKinds,
    ranges: &[Range],
) -> Result<Vec<CampaignCells>> {
    let plans: Vec<Vec<RangePiece>> = ranges.iter().map(|range| rollup::plan_range(range.from, range.to, rollup::CAMPAIGN_LEVELS)).collect();
    // The span each level's pieces cover, then that level's buckets over it, oldest first.
    let mut spans: BTreeMap<Granularity, (Millis, Millis)> = BTreeMap::new();
    for piece in plans.iter().flatten() {
        if let RangePiece::Rollup { granularity, from, to } = *piece {
            let span = spans.entry(granularity).or_insert((from, to));
            *span = (span.0.min(from), span.1.max(to));
        }
    }
    let mut buckets = BTreeMap::new();
    for (granularity, (from, to)) in spans {
        buckets.insert(granularity, store.campaign_rollup_buckets(tenant, campaign_id, kinds, granularity, from, to).await?);
    }
    let mut totals = Vec::with_capacity(plans.len());
    for plan in plans {
        let mut total = CampaignCells::default();
        for piece in plan {
            match piece {
                RangePiece::Rollup { granularity, from, to } => {
                    let level = buckets.get(&granularity).map_or(&[][..], Vec::as_slice);
                    let first = level.partition_point(|(bucket, _)| *bucket < from);
                    for (_, cells) in level[first..].iter().take_while(|(bucket, _)| *bucket < to) {
                        for (cell, tally) in &cells.0 {
                            total.add(cell.clone(), *tally);
                        }
                    }
                }
                RangePiece::Raw { from, to } => {
                    let mut by_campaign = BTreeMap::new();
                    add_raw_campaign_cells(store, tenant, campaign_id, kinds, from, to, &mut by_campaign).await?;
                    by_campaign.into_values().for_each(|cells| total.merge(cells));
                }
            }
        }
        totals.push(total.without_zeros());
    }
    Ok(totals)
}

fn add_campaign(by_campaign: &mut BTreeMap<String, CampaignCells>, campaign: String, cells: CampaignCells) {
    match by_campaign.get_mut(&campaign) {
        Some(sum) => sum.merge(cells),
        None => {
            by_campaign.insert(campaign, cells);
        }
    }
}

/// Adds the campaign counters of the raw records with `from <= ts < to` (the ragged edges
/// of a range), as attribution will have counted them.
async fn add_raw_campaign_cells(
    store: &dyn ReportReads,
    tenant: &str,
    campaign_id: Option<&str>,
    kinds: CellKinds,
    from: Millis,
    to: Millis,
    by_campaign: &mut BTreeMap<String, CampaignCells>,
) -> Result<()> {
    let wanted = |campaign: &str, cell: &CampaignCell| {
        campaign_id.is_none_or(|wanted| wanted == campaign) && kinds.wants(cell)
    };
    let cells = raw_cells(store, tenant, from, to).await?;
    let hashes: BTreeSet<String> = cells.0.keys().map(|cell| cell.msg_hash().to_owned()).collect();
    let hashes: Vec<String> = hashes.into_iter().filter(|hash| !hash.is_empty()).collect();
    let messages = store.messages(tenant, &hashes).await?;
    let mut counted = Vec::new();
    for (cell, tally) in cells.0 {
        let (msg_hash, cell) = cell.into_campaign_cell();
        let registered = messages.get(&msg_hash).map(|message| message.campaign_id.as_str());
        // Counters of messages not registered yet are in no campaign's rows either.
        if let Some(campaign_id) = rollup::campaign_of(&msg_hash, &cell, registered) {
            counted.push((campaign_id.to_owned(), cell, tally));
        }
    }
    for message in store.messages_sent_between(tenant, from, to).await? {
        counted.push((message.campaign_id, CampaignCell::Message, Tally::ONE));
    }
    for (campaign, cell, tally) in counted {
        if wanted(&campaign, &cell) {
            by_campaign.entry(campaign).or_default().add(cell, tally);
        }
    }
    Ok(())
}

/// Message counters of the raw records with `from <= ts < to`.
async fn raw_cells(store: &dyn ReportReads, tenant: &str, from: Millis, to: Millis) -> Result<Cells> {
    let mut cells = Cells::default();
    for touch in store.touches_between(tenant, from, to).await? {
        cells.add(rollup::touch_cell(&touch), Tally::ONE);
    }
    for event in store.events_between(tenant, from, to).await? {
        if let Some(cell) = rollup::event_cell(&event) {
            cells.add(cell, Tally::ONE);
        }
    }
    for conversion in store.conversions_between(tenant, from, to).await? {
        for (cell, tally) in rollup::conversion_cells(&conversion) {
            cells.add(cell, tally);
        }
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_ends_are_unbounded_and_reversed_ranges_refused() {
        let all = Range::from_pb(None).unwrap();
        assert_eq!(all, Range { from: MIN_TS, to: MAX_TS });
        let some = Range::from_pb(Some(pb::TimeRange { from_ms: Some(MIN_TS + 5), to_ms: None })).unwrap();
        assert_eq!(some, Range { from: MIN_TS + 5, to: MAX_TS });
        let reversed = Range::from_pb(Some(pb::TimeRange { from_ms: Some(10), to_ms: Some(9) }));
        assert!(matches!(reversed, Err(ApiError::BadField { .. })));
        let empty = Range::from_pb(Some(pb::TimeRange { from_ms: Some(MIN_TS + 9), to_ms: Some(MIN_TS + 9) })).unwrap();
        assert_eq!(empty.from, empty.to);
    }
}
