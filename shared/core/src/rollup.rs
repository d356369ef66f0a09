//! Rollups: what each record adds to the counters reports read, and how a report range is
//! split into rolled-up buckets (days, hours) and raw edges scanned record by record.
//!
//! A report over `[from, to)` reads day buckets for the whole days inside it, hour buckets
//! for the whole hours left at either side, and raw records for the rest, so any ms range
//! is exact and a long range costs a few hundred bucket reads.

use crate::attribution::{Conversion, Rule};
use crate::model::{AppEvent, Micros, Millis, Touch, TouchKind};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

pub const HOUR_MS: Millis = 3_600_000;
pub const DAY_MS: Millis = 24 * HOUR_MS;

/// One counter of a report: touches of a message, event hits of a message, or conversions
/// of a goal credited by a rule to a message (`msg_hash` empty when unattributed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Cell {
    Touch { msg_hash: String, kind: TouchKind },
    EventHit { msg_hash: String, name: String },
    Conversion { goal_id: String, rule: Rule, msg_hash: String },
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

pub fn conversion_cell(conversion: &Conversion) -> (Cell, Tally) {
    let cell = Cell::Conversion {
        goal_id: conversion.fact.goal_id.clone(),
        rule: conversion.credit.rule,
        msg_hash: conversion.credit.msg_hash.clone().unwrap_or_default(),
    };
    (cell, Tally::of(conversion.fact.value_micros))
}

/// Counters summed over some stretch of time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cells(pub HashMap<Cell, Tally>);

impl Cells {
    pub fn add(&mut self, cell: Cell, tally: Tally) {
        self.0.entry(cell).or_default().add(tally);
    }

    pub fn merge(&mut self, other: Cells) {
        for (cell, tally) in other.0 {
            self.add(cell, tally);
        }
    }

    /// Drops cells that summed to nothing, as a retracted conversion leaves behind.
    pub fn without_zeros(mut self) -> Cells {
        self.0.retain(|_, tally| !tally.is_zero());
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Granularity {
    Hour,
    Day,
}

impl Granularity {
    pub const ALL: [Granularity; 2] = [Granularity::Hour, Granularity::Day];

    pub fn millis(self) -> Millis {
        match self {
            Granularity::Hour => HOUR_MS,
            Granularity::Day => DAY_MS,
        }
    }

    /// The start of the bucket holding `ts`.
    pub fn bucket(self, ts: Millis) -> Millis {
        ts.div_euclid(self.millis()) * self.millis()
    }
}

/// A piece of a report range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangePiece {
    /// Buckets of `granularity` starting in `[from, to)`; both ends aligned.
    Rollup { granularity: Granularity, from: Millis, to: Millis },
    /// Raw records with `from <= ts < to`.
    Raw { from: Millis, to: Millis },
}

fn ceil_to(ts: Millis, step: Millis) -> Millis {
    -((-ts).div_euclid(step) * step)
}

/// Splits `[from, to)` into whole days, whole hours around them, and raw edges, in time
/// order, covering each ms exactly once. Empty when `from >= to`.
pub fn plan_range(from: Millis, to: Millis) -> Vec<RangePiece> {
    let mut pieces = Vec::new();
    if from >= to {
        return pieces;
    }
    let hour_from = ceil_to(from, HOUR_MS);
    let hour_to = Granularity::Hour.bucket(to);
    if hour_from >= hour_to {
        pieces.push(RangePiece::Raw { from, to });
        return pieces;
    }
    let day_from = ceil_to(hour_from, DAY_MS);
    let day_to = Granularity::Day.bucket(hour_to);
    let mut push = |piece: RangePiece| match piece {
        RangePiece::Raw { from, to } | RangePiece::Rollup { from, to, .. } if from < to => pieces.push(piece),
        _ => {}
    };
    push(RangePiece::Raw { from, to: hour_from });
    if day_from < day_to {
        push(RangePiece::Rollup { granularity: Granularity::Hour, from: hour_from, to: day_from });
        push(RangePiece::Rollup { granularity: Granularity::Day, from: day_from, to: day_to });
        push(RangePiece::Rollup { granularity: Granularity::Hour, from: day_to, to: hour_to });
    } else {
        push(RangePiece::Rollup { granularity: Granularity::Hour, from: hour_from, to: hour_to });
    }
    push(RangePiece::Raw { from: hour_to, to });
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const D0: Millis = 1_700_006_400_000; // a UTC midnight

    #[test]
    fn a_range_inside_one_hour_is_all_raw() {
        assert_eq!(plan_range(D0 + 5, D0 + 10), vec![RangePiece::Raw { from: D0 + 5, to: D0 + 10 }]);
    }

    #[test]
    fn a_range_cutting_through_hours_and_days_uses_every_level() {
        let from = D0 - HOUR_MS - 7;
        let to = D0 + 2 * DAY_MS + 2 * HOUR_MS + 9;
        assert_eq!(
            plan_range(from, to),
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
            plan_range(D0, D0 + DAY_MS),
            vec![RangePiece::Rollup { granularity: Granularity::Day, from: D0, to: D0 + DAY_MS }]
        );
        assert_eq!(plan_range(D0, D0), vec![]);
        assert_eq!(plan_range(D0 + 1, D0), vec![]);
    }

    #[test]
    fn buckets_floor_negative_times_too() {
        assert_eq!(Granularity::Hour.bucket(-1), -HOUR_MS);
        assert_eq!(ceil_to(-1, HOUR_MS), 0);
        assert_eq!(ceil_to(HOUR_MS, HOUR_MS), HOUR_MS);
    }

    proptest! {
        #[test]
        fn pieces_tile_the_range_exactly(from in 0i64..10 * DAY_MS, len in 0i64..5 * DAY_MS) {
            let to = from + len;
            let pieces = plan_range(from, to);
            let mut at = from;
            for piece in &pieces {
                let (start, end) = match *piece {
                    RangePiece::Raw { from, to } => (from, to),
                    RangePiece::Rollup { granularity, from, to } => {
                        prop_assert_eq!(granularity.bucket(from), from);
                        prop_assert_eq!(granularity.bucket(to), to);
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
