//! Rollups: what each record adds to the counters reports read, and how a report range is
//! split into rolled-up buckets (UTC months, days, hours) and raw edges scanned record by
//! record.
//!
//! Counters come in two families: per message ([`Cell`], for message reports and goal
//! series) and per campaign ([`CampaignCell`], for campaign lists, campaign stats and goal
//! KPIs, so that those read one row per campaign and bucket whatever the number of
//! messages). A report over `[from, to)` reads month buckets for the whole months inside
//! it, days and then hours for what is left at either side, and raw records for the rest,
//! so any ms range is exact and a year costs a few dozen bucket reads.

use crate::attribution::{Conversion, Rule};
use crate::model::{AppEvent, Micros, Millis, Touch, TouchKind};
use crate::shares::Model;
#[cfg(doc)]
use crate::shares::ModelSplit;
use chrono::{DateTime, Datelike, NaiveDate};
use serde::{Deserialize, Serialize};
use foldhash::fast::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

pub const HOUR_MS: Millis = 3_600_000;
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// One counter of a report: touches of a message, event hits of a message, conversions of a
/// goal credited by a rule to a message (`msg_hash` empty when unattributed), or what a
/// model credits a message beyond last touch (ppm as the count, micros as the value; see
/// [`ModelSplit::shifts`]). A model's credit is last touch's plus its shifts.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Cell {
    Touch { msg_hash: String, kind: TouchKind },
    EventHit { msg_hash: String, name: String },
    Conversion { goal_id: String, rule: Rule, msg_hash: String },
    ModelShift { goal_id: String, model: Model, msg_hash: String },
}

/// One counter of a campaign (or, under the empty campaign id, of messages of no campaign
/// and of unattributed conversions): a message-level [`Cell`] without its message, plus the
/// campaign's messages counted at their `sent_at`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum CampaignCell {
    Message,
    Touch { kind: TouchKind },
    EventHit { name: String },
    Conversion { goal_id: String, rule: Rule },
    ModelShift { goal_id: String, model: Model },
}

impl CampaignCell {
    /// Conversions by rule: what goal KPIs read.
    pub fn is_conversion(&self) -> bool {
        matches!(self, CampaignCell::Conversion { .. })
    }

    /// What a model shifts from last touch: read by reports under a model only.
    pub fn is_model_shift(&self) -> bool {
        matches!(self, CampaignCell::ModelShift { .. })
    }
}

/// The campaign a message counter (`msg_hash`, `cell`) counts under, given the campaign of
/// its message when that is registered: that campaign; no campaign (`""`) for unattributed
/// conversions (no message) and conversions of a message not found; `None` for the other
/// counters of a message not registered yet, which wait for its registration.
pub fn campaign_of<'a>(msg_hash: &str, cell: &CampaignCell, registered: Option<&'a str>) -> Option<&'a str> {
    match registered {
        Some(campaign_id) => Some(campaign_id),
        None if msg_hash.is_empty() || cell.is_conversion() || cell.is_model_shift() => Some(""),
        None => None,
    }
}

impl Cell {
    /// The message the cell counts for (empty for unattributed conversions) and the same
    /// counter at campaign level.
    pub fn into_campaign_cell(self) -> (String, CampaignCell) {
        match self {
            Cell::Touch { msg_hash, kind } => (msg_hash, CampaignCell::Touch { kind }),
            Cell::EventHit { msg_hash, name } => (msg_hash, CampaignCell::EventHit { name }),
            Cell::Conversion { goal_id, rule, msg_hash } => (msg_hash, CampaignCell::Conversion { goal_id, rule }),
            Cell::ModelShift { goal_id, model, msg_hash } => (msg_hash, CampaignCell::ModelShift { goal_id, model }),
        }
    }

    /// The message the cell counts for; empty for unattributed conversions.
    pub fn msg_hash(&self) -> &str {
        match self {
            Cell::Touch { msg_hash, .. }
            | Cell::EventHit { msg_hash, .. }
            | Cell::Conversion { msg_hash, .. }
            | Cell::ModelShift { msg_hash, .. } => msg_hash,
        }
    }
}

/// A count and a value sum. Deltas may be negative (a conversion re-credited elsewhere).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    pub count: i64,
    pub value_micros: i128,
}

impl Tally {
    pub const ONE: Tally = Tally { count: 1, value_micros: 0 };

    pub fn of(value_micros: Micros) -> Tally {
        Tally { count: 1, value_micros: value_micros as i128 }
    }

    pub fn add(&mut self, other: Tally) {
        self.count += other.count;
        self.value_micros += other.value_micros;
    }

    pub fn negated(self) -> Tally {
        Tally { count: -self.count, value_micros: -self.value_micros }
    }

    pub fn is_zero(&self) -> bool {
        self.count == 0 && self.value_micros == 0
    }
}

pub fn touch_cell(touch: &Touch) -> Cell {
    Cell::Touch { msg_hash: touch.msg_hash.clone(), kind: touch.kind }
}

/// Event hits count app events that carry a `msg_hash`.
pub fn event_cell(event: &AppEvent) -> Option<Cell> {
    let msg_hash = event.msg_hash.clone()?;
    Some(Cell::EventHit { msg_hash, name: event.name.clone() })
}

/// The counters of a credited conversion: last touch's, then the model shifts of its split.
pub fn conversion_cells(conversion: &Conversion) -> impl Iterator<Item = (Cell, Tally)> + '_ {
    let goal_id = &conversion.fact.goal_id;
    let cell = Cell::Conversion { goal_id: goal_id.clone(), rule: conversion.credit.rule, msg_hash: conversion.credit.msg_hash.clone().unwrap_or_default() };
    let shifts = conversion.split.iter().flat_map(move |split| {
        split.shifts(conversion.fact.value_micros).map(move |(model, msg_hash, ppm, micros)| {
            let cell = Cell::ModelShift { goal_id: goal_id.clone(), model, msg_hash: msg_hash.to_owned() };
            (cell, Tally { count: ppm, value_micros: i128::from(micros) })
        })
    });
    std::iter::once((cell, Tally::of(conversion.fact.value_micros))).chain(shifts)
}

/// Counters summed over some stretch of time. Reports sum tens of thousands of cells per
/// call, so the map hashes with foldhash (fast, and seeded per map, unlike FxHash, so
/// that crafted event names cannot make a tenant's reports slow).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counters<C: Hash + Eq>(pub HashMap<C, Tally, RandomState>);

/// Message-level counters.
pub type Cells = Counters<Cell>;
/// The counters of one campaign.
pub type CampaignCells = Counters<CampaignCell>;

impl<C: Hash + Eq> Default for Counters<C> {
    fn default() -> Self {
        Counters(HashMap::default())
    }
}

impl<C: Hash + Eq> Counters<C> {
    pub fn add(&mut self, cell: C, tally: Tally) {
        self.0.entry(cell).or_default().add(tally);
    }

    pub fn merge(&mut self, other: Counters<C>) {
        for (cell, tally) in other.0 {
            self.add(cell, tally);
        }
    }

    /// Drops cells that summed to nothing, as a retracted conversion leaves behind.
    pub fn without_zeros(mut self) -> Counters<C> {
        self.0.retain(|_, tally| !tally.is_zero());
        self
    }

    pub fn is_empty(&self) -> bool {
        self.0.values().all(Tally::is_zero)
    }
}

/// Campaign counters by campaign id with zero cells dropped, and campaigns left with none.
pub fn campaigns_without_zeros(by_campaign: BTreeMap<String, CampaignCells>) -> BTreeMap<String, CampaignCells> {
    by_campaign
        .into_iter()
        .map(|(campaign_id, cells)| (campaign_id, cells.without_zeros()))
        .filter(|(_, cells)| !cells.0.is_empty())
        .collect()
}

/// The levels of the rollup hierarchy, finest first. Each bucket of a level is made of
/// whole buckets of the level below: hours, UTC days, UTC calendar months.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Granularity {
    Hour,
    Day,
    Month,
}

/// The levels message counters are kept at: a message is active for days, so months would
/// save reports little and cost attribution a write per counter.
pub const MESSAGE_LEVELS: &[Granularity] = &[Granularity::Hour, Granularity::Day];
/// The levels campaign counters are kept at: a campaign runs for months, and a year of it
/// is then about a dozen rows.
pub const CAMPAIGN_LEVELS: &[Granularity] = &[Granularity::Hour, Granularity::Day, Granularity::Month];

impl Granularity {
    pub const ALL: [Granularity; 3] = [Granularity::Hour, Granularity::Day, Granularity::Month];

    /// The start of the bucket holding `ts`.
    pub fn bucket(self, ts: Millis) -> Millis {
        match self {
            Granularity::Hour => ts.div_euclid(HOUR_MS) * HOUR_MS,
            Granularity::Day => ts.div_euclid(DAY_MS) * DAY_MS,
            Granularity::Month => month_start(ts),
        }
    }

    /// The start of the bucket after the one starting at `bucket`.
    pub fn next(self, bucket: Millis) -> Millis {
        match self {
            Granularity::Hour => bucket + HOUR_MS,
            Granularity::Day => bucket + DAY_MS,
            Granularity::Month => month_start(month_start(bucket) + 32 * DAY_MS),
        }
    }

    /// The first bucket start at or after `ts`.
    pub fn ceil(self, ts: Millis) -> Millis {
        let start = self.bucket(ts);
        if start == ts { ts } else { self.next(start) }
    }
}

/// The start of the UTC calendar month holding `ts` (the day's start where chrono cannot
/// represent the date, far outside the times records may have).
fn month_start(ts: Millis) -> Millis {
    let day = Granularity::Day.bucket(ts);
    DateTime::from_timestamp_millis(ts)
        .and_then(|t| NaiveDate::from_ymd_opt(t.year(), t.month(), 1))
        .and_then(|first| first.and_hms_opt(0, 0, 0))
        .map_or(day, |start| start.and_utc().timestamp_millis())
}

/// A piece of a report range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangePiece {
    /// Buckets of `granularity` starting in `[from, to)`; both ends aligned.
    Rollup { granularity: Granularity, from: Millis, to: Millis },
    /// Raw records with `from <= ts < to`.
    Raw { from: Millis, to: Millis },
}

/// Splits `[from, to)` into the coarsest whole buckets of `levels` (finest first, each made
/// of whole buckets of the one before) inside it, finer ones at either side, and raw
/// edges, in time order, covering each ms exactly once. Empty when `from >= to`.
pub fn plan_range(from: Millis, to: Millis, levels: &[Granularity]) -> Vec<RangePiece> {
    let mut pieces = Vec::new();
    if from >= to {
        return pieces;
    }
    // The span each level covers, nested: level i covers [lows[i], highs[i]).
    let (mut lows, mut highs) = (Vec::new(), Vec::new());
    let (mut low, mut high) = (from, to);
    for &granularity in levels {
        let (next_low, next_high) = (granularity.ceil(low), granularity.bucket(high));
        if next_low >= next_high {
            break;
        }
        (low, high) = (next_low, next_high);
        lows.push(low);
        highs.push(high);
    }
    let mut push = |piece: RangePiece| match piece {
        RangePiece::Raw { from, to } | RangePiece::Rollup { from, to, .. } if from < to => pieces.push(piece),
        _ => {}
    };
    let levels_used = levels;
    let levels = lows.len();
    if levels == 0 {
        push(RangePiece::Raw { from, to });
        return pieces;
    }
    // Left side, outermost first; the innermost level whole; right side back out.
    push(RangePiece::Raw { from, to: lows[0] });
    for i in 0..levels - 1 {
        push(RangePiece::Rollup { granularity: levels_used[i], from: lows[i], to: lows[i + 1] });
    }
    push(RangePiece::Rollup { granularity: levels_used[levels - 1], from: lows[levels - 1], to: highs[levels - 1] });
    for i in (0..levels - 1).rev() {
        push(RangePiece::Rollup { granularity: levels_used[i], from: highs[i + 1], to: highs[i] });
    }
    push(RangePiece::Raw { from: highs[0], to });
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D0: Millis = 1_700_006_400_000; // a UTC midnight

    #[test]
    fn a_range_inside_one_hour_is_all_raw() {
        assert_eq!(plan_range(D0 + 5, D0 + 10, CAMPAIGN_LEVELS), vec![RangePiece::Raw { from: D0 + 5, to: D0 + 10 }]);
    }

    #[test]
    fn a_range_cutting_through_hours_and_days_uses_every_level() {
        let from = D0 - HOUR_MS - 7;
        let to = D0 + 2 * DAY_MS + 2 * HOUR_MS + 9;
        assert_eq!(
            plan_range(from, to, CAMPAIGN_LEVELS),
            vec![
                RangePiece::Raw { from, to: D0 - HOUR_MS },
                RangePiece::Rollup { granularity: Granularity::Hour, from: D0 - HOUR_MS, to: D0 },
                RangePiece::Rollup { granularity: Granularity::Day, from: D0, to: D0 + 2 * DAY_MS },
                RangePiece::Rollup { granularity: Granularity::Hour, from: D0 + 2 * DAY_MS, to: D0 + 2 * DAY_MS + 2 * HOUR_MS },
                RangePiece::Raw { from: D0 + 2 * DAY_MS + 2 * HOUR_MS, to },
            ]
        );
    }

    #[test]
    fn aligned_ranges_need_no_raw_scan() {
        assert_eq!(
            plan_range(D0, D0 + DAY_MS, CAMPAIGN_LEVELS),
            vec![RangePiece::Rollup { granularity: Granularity::Day, from: D0, to: D0 + DAY_MS }]
        );
        assert_eq!(plan_range(D0, D0, CAMPAIGN_LEVELS), vec![]);
        assert_eq!(plan_range(D0 + 1, D0, CAMPAIGN_LEVELS), vec![]);
    }

    #[test]
    fn buckets_floor_negative_times_too() {
        assert_eq!(Granularity::Hour.bucket(-1), -HOUR_MS);
        assert_eq!(Granularity::Hour.ceil(-1), 0);
        assert_eq!(Granularity::Hour.ceil(HOUR_MS), HOUR_MS);
    }

    fn utc(y: i32, m: u32, d: u32) -> Millis {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(0, 0, 0).unwrap().and_utc().timestamp_millis()
    }

    #[test]
    fn months_are_utc_calendar_months() {
        let month = Granularity::Month;
        assert_eq!(month.bucket(utc(2024, 2, 29) + 5), utc(2024, 2, 1));
        assert_eq!(month.next(utc(2024, 2, 1)), utc(2024, 3, 1), "a leap February");
        assert_eq!(month.next(utc(2023, 12, 1)), utc(2024, 1, 1), "into the next year");
        assert_eq!(month.ceil(utc(2024, 3, 1)), utc(2024, 3, 1));
        assert_eq!(month.ceil(utc(2024, 3, 1) + 1), utc(2024, 4, 1));
        assert_eq!(month.bucket(utc(1969, 12, 31) + 1), utc(1969, 12, 1), "before the epoch");
    }

    #[test]
    fn a_year_is_months_with_days_hours_and_raw_edges_around_them() {
        let from = utc(2024, 1, 30) - HOUR_MS - 7;
        let to = utc(2025, 1, 3) + 2 * HOUR_MS + 9;
        assert_eq!(
            plan_range(from, to, CAMPAIGN_LEVELS),
            vec![
                RangePiece::Raw { from, to: utc(2024, 1, 30) - HOUR_MS },
                RangePiece::Rollup { granularity: Granularity::Hour, from: utc(2024, 1, 30) - HOUR_MS, to: utc(2024, 1, 30) },
                RangePiece::Rollup { granularity: Granularity::Day, from: utc(2024, 1, 30), to: utc(2024, 2, 1) },
                RangePiece::Rollup { granularity: Granularity::Month, from: utc(2024, 2, 1), to: utc(2025, 1, 1) },
                RangePiece::Rollup { granularity: Granularity::Day, from: utc(2025, 1, 1), to: utc(2025, 1, 3) },
                RangePiece::Rollup { granularity: Granularity::Hour, from: utc(2025, 1, 3), to: utc(2025, 1, 3) + 2 * HOUR_MS },
                RangePiece::Raw { from: utc(2025, 1, 3) + 2 * HOUR_MS, to },
            ]
        );
        assert_eq!(
            plan_range(utc(2024, 3, 1), utc(2024, 5, 1), CAMPAIGN_LEVELS),
            vec![RangePiece::Rollup { granularity: Granularity::Month, from: utc(2024, 3, 1), to: utc(2024, 5, 1) }]
        );
    }

    #[test]
    fn counters_of_unregistered_messages_wait_but_their_conversions_do_not() {
        let opened = CampaignCell::Touch { kind: TouchKind::Opened };
        let converted = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch };
        assert_eq!(campaign_of("m1", &opened, Some("spring")), Some("spring"));
        assert_eq!(campaign_of("m1", &opened, None), None);
        assert_eq!(campaign_of("m1", &converted, None), Some(""));
        assert_eq!(campaign_of("", &converted, None), Some(""), "unattributed");
    }

    #[test]
    fn campaign_cells_drop_the_message() {
        let cell = Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened };
        assert_eq!(cell.into_campaign_cell(), ("m1".to_owned(), CampaignCell::Touch { kind: TouchKind::Opened }));
        let unattributed = Cell::Conversion { goal_id: "orders".into(), rule: Rule::Unattributed, msg_hash: String::new() };
        let expected = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::Unattributed };
        assert_eq!(unattributed.into_campaign_cell(), (String::new(), expected));
    }

    proptest! {
        #[test]
        fn every_bucket_is_made_of_whole_buckets_of_the_finer_levels(ts in -400 * DAY_MS..40_000 * DAY_MS) {
            for (i, coarse) in Granularity::ALL.iter().enumerate() {
                let (start, end) = (coarse.bucket(ts), coarse.next(coarse.bucket(ts)));
                prop_assert!(start <= ts && ts < end, "{coarse:?} bucket [{start}, {end}) misses {ts}");
                prop_assert_eq!(coarse.bucket(end - 1), start);
                for finer in &Granularity::ALL[..i] {
                    prop_assert_eq!(finer.bucket(start), start, "{:?} starts inside a {:?}", coarse, finer);
                    prop_assert_eq!(finer.bucket(end), end, "{:?} ends inside a {:?}", coarse, finer);
                }
            }
        }

        #[test]
        fn pieces_tile_the_range_exactly(
            from in 0i64..400 * DAY_MS,
            len in 0i64..400 * DAY_MS,
            levels in prop::sample::select(vec![MESSAGE_LEVELS, CAMPAIGN_LEVELS]),
        ) {
            let to = from + len;
            let pieces = plan_range(from, to, levels);
            let mut at = from;
            for piece in &pieces {
                let (start, end) = match *piece {
                    RangePiece::Raw { from, to } => (from, to),
                    RangePiece::Rollup { granularity, from, to } => {
                        prop_assert_eq!(granularity.bucket(from), from);
                        prop_assert_eq!(granularity.bucket(to), to);
                        prop_assert!(granularity == Granularity::Hour || len >= DAY_MS);
                        prop_assert!(levels.contains(&granularity));
                        (from, to)
                    }
                };
                prop_assert_eq!(start, at);
                prop_assert!(start < end);
                at = end;
            }
            prop_assert_eq!(at, if len == 0 { from } else { to });
        }
    }
}
