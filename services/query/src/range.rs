//! The counters of a range: whole days and hours from rollups, the ragged edges from raw
//! records, as [`touchstone_core::rollup::plan_range`] splits it. Exact for any ms range.

use touchstone_core::model::Millis;
use touchstone_core::rollup::{self, Cells, RangePiece};
use touchstone_core::validate::{MAX_TS, MIN_TS};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_store::{ReportReads, Result};

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
            return Err(ApiError::InvalidArgument(format!("range from {from} is after to {to}")));
        }
        Ok(Range { from: from.clamp(MIN_TS, MAX_TS), to: to.clamp(MIN_TS, MAX_TS) })
    }
}

/// Every counter of a tenant summed over the range, zero cells dropped.
pub async fn cells(store: &dyn ReportReads, tenant: &str, range: Range) -> Result<Cells> {
    let mut cells = Cells::default();
    for piece in rollup::plan_range(range.from, range.to) {
        match piece {
            RangePiece::Rollup { granularity, from, to } => {
                cells.merge(store.rollups(tenant, granularity, from, to).await?);
            }
            RangePiece::Raw { from, to } => {
                for touch in store.touches_between(tenant, from, to).await? {
                    cells.add(rollup::touch_cell(&touch), rollup::Tally::ONE);
                }
                for event in store.events_between(tenant, from, to).await? {
                    if let Some(cell) = rollup::event_cell(&event) {
                        cells.add(cell, rollup::Tally::ONE);
                    }
                }
                for conversion in store.conversions_between(tenant, from, to).await? {
                    let (cell, tally) = rollup::conversion_cell(&conversion);
                    cells.add(cell, tally);
                }
            }
        }
    }
    Ok(cells.without_zeros())
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
        assert!(matches!(reversed, Err(ApiError::InvalidArgument(_))));
        let empty = Range::from_pb(Some(pb::TimeRange { from_ms: Some(MIN_TS + 9), to_ms: Some(MIN_TS + 9) })).unwrap();
        assert_eq!(empty.from, empty.to);
    }
}
