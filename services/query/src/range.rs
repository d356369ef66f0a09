//! The counters of a range, per message or per campaign: whole months, days and hours from
//! rollups, the ragged edges from raw records, as [`touchstone_core::rollup::plan_range`]
//! splits it. Exact for any ms range.

use std::collections::{BTreeMap, BTreeSet};
use touchstone_core::model::Millis;
use touchstone_core::rollup::{self, CampaignCell, CampaignCells, Cells, RangePiece, Tally};
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
    let wanted = |campaign: &str, cell: &CampaignCell| {
        campaign_id.is_none_or(|wanted| wanted == campaign) && (kinds == CellKinds::All || cell.is_conversion())
    };
    for piece in rollup::plan_range(range.from, range.to, rollup::CAMPAIGN_LEVELS) {
        match piece {
            RangePiece::Rollup { granularity, from, to } => {
                for (campaign, cells) in store.campaign_rollups(tenant, campaign_id, kinds, granularity, from, to).await? {
                    match by_campaign.get_mut(&campaign) {
                        Some(sum) => sum.merge(cells),
                        None => {
                            by_campaign.insert(campaign, cells);
                        }
                    }
                }
            }
            RangePiece::Raw { from, to } => {
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
            }
        }
    }
    Ok(rollup::campaigns_without_zeros(by_campaign))
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
        let (cell, tally) = rollup::conversion_cell(&conversion);
        cells.add(cell, tally);
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
