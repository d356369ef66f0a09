//! Per-badge analytics: how many earns, revokes and expiries fall on each day, and how many
//! customers hold a badge at a moment, from counters attribution commits keep exact.
//!
//! Holding is a set of intervals per customer and badge ([`holding_intervals`]): the
//! customer holds the badge at `t` exactly when `t` lies in one of them (the replay rule of
//! docs/behaviour/badges.md, [`crate::badges::held_now`]). So the number of holders at `t` is the
//! number of interval starts at or before `t` minus the number of ends at or before `t`, and
//! counters of starts and ends by time answer it for any `t`, "now" included, without
//! visiting a single customer. A commit turns each change of a customer's entries and
//! intervals into counter deltas ([`StatChanges`]).
//!
//! Counters are kept at two levels: by UTC day and by instant (ms). A report reads whole
//! days from the first and the partial days at its edges (and "now") from the second
//! ([`StatsPlan`]), so every figure is exact for any range.

use crate::badges::{BadgeDefinition, TimelineEntry};
use crate::model::{BadgeAction, Millis};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One UTC day in ms.
pub const DAY_MS: Millis = 86_400_000;

/// The most days one report may cover (about three years).
pub const MAX_REPORT_DAYS: i64 = 1_100;

/// `[start, end)`: held from `start` until before `end`; `end` is [`Millis::MAX`] when
/// nothing ends it.
pub type Interval = (Millis, Millis);

/// Counters of one badge at one time (a day or an instant): entries of each action, and
/// holding intervals that start and end then.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeTally {
    pub earned: i64,
    pub revoked: i64,
    pub expired: i64,
    pub holds_from: i64,
    pub holds_to: i64,
}

impl BadgeTally {
    pub fn add(&mut self, other: BadgeTally) {
        self.earned += other.earned;
        self.revoked += other.revoked;
        self.expired += other.expired;
        self.holds_from += other.holds_from;
        self.holds_to += other.holds_to;
    }

    pub fn is_zero(&self) -> bool {
        *self == BadgeTally::default()
    }

    /// How the number of holders changes over this time.
    pub fn holders_change(&self) -> i64 {
        self.holds_from - self.holds_to
    }
}

/// The UTC day holding `ts` (its first ms).
pub fn day_of(ts: Millis) -> Millis {
    ts.div_euclid(DAY_MS) * DAY_MS
}

/// When a customer holds one badge, from that badge's entries (any order) and its
/// definition (for the expiry of each earn; none: earns never expire). An earn holds from
/// its `ts` until the next entry of the badge or its expiry, whichever comes first; touching
/// intervals are joined. Entries at one `ts` go by `event_id`, as the replay does.
pub fn holding_intervals(badge: Option<&BadgeDefinition>, entries: &[&TimelineEntry]) -> Vec<Interval> {
    let mut oldest_first: Vec<&TimelineEntry> = entries.to_vec();
    oldest_first.sort_by(|a, b| TimelineEntry::newest_first(b, a));
    let mut intervals: Vec<Interval> = Vec::new();
    for (at, entry) in oldest_first.iter().enumerate() {
        if entry.action != BadgeAction::Earned {
            continue;
        }
        let expiry = badge.and_then(|b| b.expiry_of(entry.ts)).unwrap_or(Millis::MAX);
        let next = oldest_first.get(at + 1).map_or(Millis::MAX, |next| next.ts);
        let (start, end) = (entry.ts, expiry.min(next));
        if start >= end {
            continue;
        }
        match intervals.last_mut() {
            Some(last) if last.1 == start => last.1 = end,
            _ => intervals.push((start, end)),
        }
    }
    intervals
}

/// [`holding_intervals`] of every badge in a customer's entries (stored and derived), by
/// badge id; badges with no interval are left out.
pub fn holdings(badges: &[BadgeDefinition], entries: &[TimelineEntry]) -> BTreeMap<String, Vec<Interval>> {
    let by_id: BTreeMap<&str, &BadgeDefinition> = badges.iter().map(|b| (b.id.as_str(), b)).collect();
    let mut by_badge: BTreeMap<&str, Vec<&TimelineEntry>> = BTreeMap::new();
    for entry in entries {
        by_badge.entry(&entry.badge_id).or_default().push(entry);
    }
    by_badge
        .into_iter()
        .map(|(badge_id, entries)| (badge_id.to_owned(), holding_intervals(by_id.get(badge_id).copied(), &entries)))
        .filter(|(_, intervals)| !intervals.is_empty())
        .collect()
}

/// Counter deltas by badge and time, built from the changes a commit makes.
#[derive(Debug, Default)]
pub struct StatChanges {
    deltas: BTreeMap<(String, Millis), BadgeTally>,
}

impl StatChanges {
    /// An entry of `action` at `ts` appears (`sign` 1) or goes away (`sign` -1).
    pub fn entry(&mut self, badge_id: &str, action: BadgeAction, ts: Millis, sign: i64) {
        let tally = self.deltas.entry((badge_id.to_owned(), ts)).or_default();
        match action {
            BadgeAction::Earned => tally.earned += sign,
            BadgeAction::Revoked => tally.revoked += sign,
            BadgeAction::Expired => tally.expired += sign,
        }
    }

    /// A customer's intervals of a badge change from `old` to `new`.
    pub fn holding(&mut self, badge_id: &str, old: &[Interval], new: &[Interval]) {
        for (intervals, sign) in [(old, -1), (new, 1)] {
            for &(start, end) in intervals {
                self.deltas.entry((badge_id.to_owned(), start)).or_default().holds_from += sign;
                if end != Millis::MAX {
                    self.deltas.entry((badge_id.to_owned(), end)).or_default().holds_to += sign;
                }
            }
        }
    }

    /// `(badge_id, ts, delta)`, zeros left out.
    pub fn into_deltas(self) -> impl Iterator<Item = (String, Millis, BadgeTally)> {
        self.deltas.into_iter().filter(|(_, tally)| !tally.is_zero()).map(|((badge_id, ts), tally)| (badge_id, ts, tally))
    }
}

/// What a report over `[from, to)` at `now` reads: every day row before the last day it
/// needs, and instant rows for the partial days (the range's edges, and "now").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatsPlan {
    pub from: Millis,
    pub to: Millis,
    pub now: Millis,
    /// Day rows with day `< days_to` (all of them: holders are a running sum).
    pub days_to: Millis,
    /// Instant rows in each of these `[from, to)` ranges, which do not overlap.
    pub instants: Vec<(Millis, Millis)>,
}

impl StatsPlan {
    /// `from < to` and at most [`MAX_REPORT_DAYS`] days apart (the caller checks).
    pub fn new(from: Millis, to: Millis, now: Millis) -> StatsPlan {
        let mut partial = Vec::new();
        // The range's first and last days, when the range cuts them: from the day's start
        // (holders are counted from there) to where the range ends in it.
        for day in [day_of(from), day_of(to - 1)] {
            let end = to.min(day + DAY_MS);
            if from > day || end < day + DAY_MS {
                partial.push((day, end));
            }
        }
        // Today up to now, unless now is the day's last ms.
        let now_day = day_of(now);
        if now + 1 != now_day + DAY_MS {
            partial.push((now_day, now + 1));
        }
        partial.sort();
        let mut instants: Vec<(Millis, Millis)> = Vec::new();
        for (start, end) in partial {
            match instants.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => instants.push((start, end)),
            }
        }
        let last_needed = (to - 1).max(now);
        StatsPlan { from, to, now, days_to: day_of(last_needed) + DAY_MS, instants }
    }
}

/// One UTC day of a report, cut to the report's range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayStats {
    /// The day's first ms (UTC).
    pub day: Millis,
    pub earned: i64,
    pub revoked: i64,
    pub expired: i64,
    /// Customers holding the badge at the last ms of the day within the range.
    pub holders_at_end: i64,
}

/// A badge's figures over a range.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BadgeStats {
    /// Entries in `[from, to)`: earns (stored and by rule), revokes, expiries (stored, and
    /// derived ones, whose time may still be ahead).
    pub earned: i64,
    pub revoked: i64,
    pub expired: i64,
    /// Customers holding the badge at `now`.
    pub holders_now: i64,
    /// Each UTC day the range touches, oldest first.
    pub days: Vec<DayStats>,
}

/// The report `plan` describes, from the rows it read: `day_rows` by day, `instant_rows` by
/// ms (both any order; rows outside the plan are ignored).
pub fn report(plan: &StatsPlan, day_rows: &[(Millis, BadgeTally)], instant_rows: &[(Millis, BadgeTally)]) -> BadgeStats {
    let mut days: BTreeMap<Millis, BadgeTally> = BTreeMap::new();
    for &(day, tally) in day_rows.iter().filter(|(day, _)| *day < plan.days_to) {
        days.entry(day).or_default().add(tally);
    }
    let within = |from: Millis, to: Millis| {
        let mut sum = BadgeTally::default();
        for (_, tally) in instant_rows.iter().filter(|(ts, _)| from <= *ts && *ts < to) {
            sum.add(*tally);
        }
        sum
    };
    // Holders at the start of each day: the running sum of the days before it.
    let holders_before = |day: Millis| days.range(..day).map(|(_, tally)| tally.holders_change()).sum::<i64>();

    let mut stats = BadgeStats { earned: 0, revoked: 0, expired: 0, holders_now: 0, days: Vec::new() };
    let mut day = day_of(plan.from);
    while day < plan.to {
        let (from, to) = (plan.from.max(day), plan.to.min(day + DAY_MS));
        let whole = from == day && to == day + DAY_MS;
        let counts = if whole { days.get(&day).copied().unwrap_or_default() } else { within(from, to) };
        let up_to_end = if whole { counts } else { within(day, to) };
        stats.earned += counts.earned;
        stats.revoked += counts.revoked;
        stats.expired += counts.expired;
        stats.days.push(DayStats {
            day,
            earned: counts.earned,
            revoked: counts.revoked,
            expired: counts.expired,
            holders_at_end: holders_before(day) + up_to_end.holders_change(),
        });
        day += DAY_MS;
    }
    let now_day = day_of(plan.now);
    let today = if plan.now + 1 == now_day + DAY_MS { days.get(&now_day).copied().unwrap_or_default() } else { within(now_day, plan.now + 1) };
    stats.holders_now = holders_before(now_day) + today.holders_change();
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BadgeSource;

    fn entry(event_id: &str, action: BadgeAction, ts: Millis) -> TimelineEntry {
        TimelineEntry { event_id: event_id.into(), badge_id: "b".into(), action, ts, source: BadgeSource::Api, reason: None }
    }

    #[test]
    fn an_earn_holds_until_the_next_entry_or_its_expiry() {
        let mut badge = BadgeDefinition::new("b", "B");
        badge.validity_ms = Some(100);
        let earn = entry("e1", BadgeAction::Earned, 10);
        let revoke = entry("r1", BadgeAction::Revoked, 50);
        let again = entry("e2", BadgeAction::Earned, 60);
        assert_eq!(holding_intervals(Some(&badge), &[&earn]), vec![(10, 110)]);
        assert_eq!(holding_intervals(Some(&badge), &[&again, &revoke, &earn]), vec![(10, 50), (60, 160)]);
        assert_eq!(holding_intervals(None, &[&earn, &revoke]), vec![(10, 50)]);
        assert_eq!(holding_intervals(None, &[&earn]), vec![(10, Millis::MAX)]);
        // A second earn before the first expires: one interval, to the second's expiry.
        let renew = entry("e3", BadgeAction::Earned, 90);
        assert_eq!(holding_intervals(Some(&badge), &[&earn, &renew]), vec![(10, 190)]);
        // A revoke at the earn's very ts, ordered after it by event id: never held.
        let same_time = entry("z", BadgeAction::Revoked, 10);
        assert_eq!(holding_intervals(None, &[&earn, &same_time]), vec![]);
    }

    #[test]
    fn changes_net_out_and_count_both_ends() {
        let mut changes = StatChanges::default();
        changes.holding("b", &[(10, 50)], &[(10, 50), (60, Millis::MAX)]);
        changes.entry("b", BadgeAction::Earned, 60, 1);
        changes.entry("b", BadgeAction::Earned, 70, 1);
        changes.entry("b", BadgeAction::Earned, 70, -1);
        let deltas: Vec<_> = changes.into_deltas().collect();
        assert_eq!(deltas, vec![("b".to_owned(), 60, BadgeTally { earned: 1, holds_from: 1, ..BadgeTally::default() })]);
    }

    #[test]
    fn a_plan_reads_instants_only_for_partial_days() {
        let day = 10 * DAY_MS;
        let whole = StatsPlan::new(day, day + 2 * DAY_MS, day + 3 * DAY_MS - 1);
        assert_eq!(whole.instants, vec![]);
        assert_eq!(whole.days_to, day + 3 * DAY_MS);
        let cut = StatsPlan::new(day + 5, day + DAY_MS + 7, day + DAY_MS + 3);
        // Touching ranges are read as one.
        assert_eq!(cut.instants, vec![(day, day + DAY_MS + 7)]);
        let inside = StatsPlan::new(day + 5, day + 9, day + 100);
        assert_eq!(inside.instants, vec![(day, day + 101)]);
    }

    /// Brute force: the figures straight from every customer's intervals and entries.
    #[test]
    fn reports_equal_counting_customers_one_by_one() {
        type Customer = (Vec<Interval>, Vec<(BadgeAction, Millis)>);
        let customers: Vec<Customer> = vec![
            (vec![(5, 3 * DAY_MS + 10)], vec![(BadgeAction::Earned, 5)]),
            (vec![(DAY_MS + 1, DAY_MS + 2), (2 * DAY_MS, Millis::MAX)], vec![
                (BadgeAction::Earned, DAY_MS + 1),
                (BadgeAction::Revoked, DAY_MS + 2),
                (BadgeAction::Earned, 2 * DAY_MS),
            ]),
            (vec![(3 * DAY_MS + 10, 4 * DAY_MS)], vec![(BadgeAction::Earned, 3 * DAY_MS + 10), (BadgeAction::Expired, 4 * DAY_MS)]),
        ];
        let mut changes = StatChanges::default();
        for (intervals, entries) in &customers {
            changes.holding("b", &[], intervals);
            for &(action, ts) in entries {
                changes.entry("b", action, ts, 1);
            }
        }
        let instants: Vec<(Millis, BadgeTally)> = changes.into_deltas().map(|(_, ts, tally)| (ts, tally)).collect();
        let mut by_day: BTreeMap<Millis, BadgeTally> = BTreeMap::new();
        for &(ts, tally) in &instants {
            by_day.entry(day_of(ts)).or_default().add(tally);
        }
        let days: Vec<(Millis, BadgeTally)> = by_day.into_iter().collect();
        let holders_at = |t: Millis| customers.iter().filter(|(iv, _)| iv.iter().any(|&(s, e)| s <= t && t < e)).count() as i64;
        let count = |action: BadgeAction, from: Millis, to: Millis| {
            customers.iter().flat_map(|(_, e)| e).filter(|(a, ts)| *a == action && from <= *ts && *ts < to).count() as i64
        };
        let points = [0, 4, 5, 6, DAY_MS, DAY_MS + 1, DAY_MS + 2, 2 * DAY_MS - 1, 2 * DAY_MS, 3 * DAY_MS + 10, 4 * DAY_MS, 5 * DAY_MS];
        for &from in &points {
            for &to in points.iter().filter(|&&to| to > from) {
                for &now in &points {
                    let plan = StatsPlan::new(from, to, now);
                    let stats = report(&plan, &days, &instants);
                    assert_eq!(stats.holders_now, holders_at(now), "now {now}");
                    assert_eq!(stats.earned, count(BadgeAction::Earned, from, to), "[{from}, {to})");
                    assert_eq!(stats.revoked, count(BadgeAction::Revoked, from, to));
                    assert_eq!(stats.expired, count(BadgeAction::Expired, from, to));
                    for d in &stats.days {
                        let end = to.min(d.day + DAY_MS);
                        assert_eq!(d.holders_at_end, holders_at(end - 1), "day {} of [{from}, {to})", d.day);
                        assert_eq!(d.earned, count(BadgeAction::Earned, from.max(d.day), end));
                    }
                }
            }
        }
    }
}
