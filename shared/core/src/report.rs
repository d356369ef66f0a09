//! Report rows from summed counters (docs/behaviour/reports.md): per message, per campaign, per goal.
//! The query service sums [`Cells`] over a range and calls these; the derived figures
//! (rates, averages, campaign totals) and the local days of a series live here too, so
//! every front end computes them the same way and handlers only convert.

use crate::attribution::Rule;
use crate::config::{DEFAULT_GOAL_ID, TenantConfig};
use crate::model::{MICROS_PER_UNIT, Millis, TouchKind};
use crate::rollup::{CampaignCell, CampaignCells, Cell, Cells, Tally};
use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Tz;
use std::collections::BTreeMap;

/// What happened to one message, or to all messages of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub sent: i64,
    pub delivered: i64,
    pub opened: i64,
    pub clicked: i64,
    /// HELD_OUT touches: customers held out of the message.
    pub held_out: i64,
    pub event_hits: BTreeMap<String, i64>,
    /// Conversions credited (explicitly or by last touch), for every goal of the tenant.
    pub goals: BTreeMap<String, Tally>,
}

impl Activity {
    fn for_goals(config: &TenantConfig) -> Activity {
        Activity {
            goals: config.goals.iter().map(|g| (g.id.clone(), Tally::default())).collect(),
            ..Activity::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sent == 0
            && self.delivered == 0
            && self.opened == 0
            && self.clicked == 0
            && self.held_out == 0
            && self.event_hits.values().all(|&n| n == 0)
            && self.goals.values().all(Tally::is_zero)
    }

    /// Opened per delivered (0 without deliveries).
    pub fn open_rate(&self) -> f64 {
        rate(self.opened as f64, self.delivered as f64)
    }

    /// Clicked per delivered (0 without deliveries).
    pub fn click_rate(&self) -> f64 {
        rate(self.clicked as f64, self.delivered as f64)
    }

    /// The figures of every goal of the tenant, in the tenant's goal order.
    pub fn goal_figures(&self, config: &TenantConfig) -> Vec<GoalFigures> {
        config
            .goals
            .iter()
            .map(|goal| {
                let tally = self.goals.get(&goal.id).copied().unwrap_or_default();
                GoalFigures {
                    goal_id: goal.id.clone(),
                    tally,
                    conversion_rate: rate(tally.count as f64, self.opened as f64),
                    average_check: average_check(tally),
                }
            })
            .collect()
    }

    /// Event names, most hits first, then by name.
    pub fn top_event_hits(&self) -> Vec<(&str, i64)> {
        let mut hits: Vec<(&str, i64)> =
            self.event_hits.iter().filter(|(_, n)| **n != 0).map(|(name, n)| (name.as_str(), *n)).collect();
        hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        hits
    }
}

/// An exact value as a JSON number: an integer when whole, else the nearest float.
/// The JSON of docs/behaviour/reports.md writes `"value": x` this way everywhere.
pub fn value_json(micros: i128) -> serde_json::Value {
    serde_json::from_str(&crate::model::format_micros(micros)).unwrap_or(serde_json::Value::Null)
}

/// `numerator / denominator`, 0 when the denominator is 0.
pub fn rate(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 { 0.0 } else { numerator / denominator }
}

/// Value per conversion in major units (0 without conversions).
pub fn average_check(tally: Tally) -> f64 {
    rate(tally.value_micros as f64 / MICROS_PER_UNIT as f64, tally.count as f64)
}

/// One goal's results for a message or campaign (docs/behaviour/reports.md).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalFigures {
    pub goal_id: String,
    /// Conversions credited and their value.
    pub tally: Tally,
    /// Conversions per opened message (0 without opens).
    pub conversion_rate: f64,
    /// Value per conversion in major units (0 without conversions).
    pub average_check: f64,
}

/// The totals on top of a campaign list: purchases and revenue are the default `orders`
/// goal's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CampaignTotals {
    pub campaigns: u64,
    /// Purchases (count) and revenue (value).
    pub purchases: Tally,
    pub average_check: f64,
}

pub fn campaign_totals(campaigns: &BTreeMap<String, (u32, Activity)>) -> CampaignTotals {
    let mut purchases = Tally::default();
    for (_, activity) in campaigns.values() {
        purchases.add(activity.goals.get(DEFAULT_GOAL_ID).copied().unwrap_or_default());
    }
    CampaignTotals { campaigns: campaigns.len() as u64, purchases, average_check: average_check(purchases) }
}

/// Days one goal series may span.
pub const MAX_SERIES_DAYS: i64 = 400;
/// The series range when the request gives none: the last 30 days.
pub const DEFAULT_SERIES_DAYS: i64 = 30;

/// The `[from, to)` a goal series covers: the range asked for, else the last
/// [`DEFAULT_SERIES_DAYS`] days up to `now`; an error when it spans more than
/// [`MAX_SERIES_DAYS`].
pub fn series_range(asked: Option<(Millis, Millis)>, now: Millis) -> Result<(Millis, Millis), String> {
    let (from, to) = asked.unwrap_or((now - DEFAULT_SERIES_DAYS * crate::rollup::DAY_MS, now));
    if to - from > MAX_SERIES_DAYS * crate::rollup::DAY_MS {
        return Err(format!("a series spans at most {MAX_SERIES_DAYS} days; narrow the range"));
    }
    Ok((from, to))
}

/// One calendar day of a series in the tenant's time zone, cut to the range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalDay {
    pub date: NaiveDate,
    pub from: Millis,
    pub to: Millis,
}

/// The local days of `[from, to)` in `tz`, each as its date and its `[start, end)` cut to
/// the range. Days are calendar days, so they are 23 or 25 hours long across DST changes.
pub fn local_days(tz: Tz, from: Millis, to: Millis) -> Vec<LocalDay> {
    let date_of = |ms: Millis| DateTime::from_timestamp_millis(ms).map(|t| t.with_timezone(&tz).date_naive());
    let start_of = |date: NaiveDate| -> Millis {
        // Midnight can fall in a DST gap (some zones change at 00:00): then the day starts
        // at the first instant that exists.
        (0..24)
            .find_map(|hour| date.and_hms_opt(hour, 0, 0).and_then(|t| tz.from_local_datetime(&t).earliest()))
            .map_or(from, |t| t.timestamp_millis())
    };
    if from >= to {
        return Vec::new();
    }
    let (Some(first), Some(last)) = (date_of(from), date_of(to - 1)) else {
        return Vec::new();
    };
    let mut days = Vec::new();
    let mut date = first;
    while date <= last {
        let Some(next) = date.succ_opt() else { break };
        days.push(LocalDay { date, from: start_of(date).max(from), to: start_of(next).min(to) });
        date = next;
    }
    days
}

impl Activity {
    /// Adds one counter. Conversions of a goal deleted since, unattributed conversions and
    /// message counts are not part of an activity.
    fn add(&mut self, cell: &CampaignCell, tally: Tally, config: &TenantConfig) {
        match cell {
            CampaignCell::Touch { kind } => {
                let counter = match kind {
                    TouchKind::Sent => &mut self.sent,
                    TouchKind::Delivered => &mut self.delivered,
                    TouchKind::Opened => &mut self.opened,
                    TouchKind::Clicked => &mut self.clicked,
                    TouchKind::HeldOut => &mut self.held_out,
                };
                *counter += tally.count;
            }
            CampaignCell::EventHit { name } => *self.event_hits.entry(name.clone()).or_default() += tally.count,
            CampaignCell::Conversion { goal_id, rule: Rule::Explicit | Rule::LastTouch } => {
                if config.goal(goal_id).is_some() {
                    self.goals.entry(goal_id.clone()).or_default().add(tally);
                }
            }
            // Model shifts are read by model reports ([`crate::models::by_campaign`]).
            CampaignCell::Conversion { rule: Rule::Unattributed, .. } | CampaignCell::ModelShift { .. } | CampaignCell::Message => {}
        }
    }
}

/// Per message with any activity, by `msg_hash`.
pub fn message_activity(cells: &Cells, config: &TenantConfig) -> BTreeMap<String, Activity> {
    let mut rows: BTreeMap<String, Activity> = BTreeMap::new();
    for (cell, tally) in &cells.0 {
        let (msg_hash, cell) = cell.clone().into_campaign_cell();
        rows.entry(msg_hash).or_insert_with(|| Activity::for_goals(config)).add(&cell, *tally, config);
    }
    rows.retain(|_, activity| !activity.is_empty());
    rows
}

/// Per campaign with any activity (not the empty campaign id: messages of no campaign),
/// by campaign id, with the number of its messages sent in the range.
pub fn campaign_activity(
    by_campaign: &BTreeMap<String, CampaignCells>,
    config: &TenantConfig,
) -> BTreeMap<String, (u32, Activity)> {
    by_campaign
        .iter()
        .filter(|(id, _)| !id.is_empty())
        .filter_map(|(campaign_id, cells)| Some((campaign_id.clone(), one_campaign_activity(cells, config)?)))
        .collect()
}

/// One campaign's activity with the number of its messages sent in the range; `None` when
/// it has no activity (as [`campaign_activity`] leaves it out).
pub fn one_campaign_activity(cells: &CampaignCells, config: &TenantConfig) -> Option<(u32, Activity)> {
    let mut activity = Activity::for_goals(config);
    let mut messages = 0;
    for (cell, tally) in &cells.0 {
        match cell {
            CampaignCell::Message => messages += tally.count,
            _ => activity.add(cell, *tally, config),
        }
    }
    (!activity.is_empty()).then(|| (u32::try_from(messages.max(0)).unwrap_or(u32::MAX), activity))
}

/// Goal KPIs over some range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoalKpi {
    pub goal_id: String,
    pub explicit: Tally,
    pub last_touch: Tally,
    pub unattributed: Tally,
    pub campaigns: BTreeMap<String, Tally>,
    /// Credited to messages of no campaign.
    pub no_campaign: Tally,
}

/// KPIs for every goal of the tenant, in config order, from campaign counters (the empty
/// campaign id holding unattributed conversions and those credited to messages of no
/// campaign).
pub fn goal_kpis(by_campaign: &BTreeMap<String, CampaignCells>, config: &TenantConfig) -> Vec<GoalKpi> {
    let mut kpis: Vec<GoalKpi> =
        config.goals.iter().map(|g| GoalKpi { goal_id: g.id.clone(), ..GoalKpi::default() }).collect();
    for (campaign_id, cells) in by_campaign {
        for (cell, tally) in &cells.0 {
            let CampaignCell::Conversion { goal_id, rule } = cell else { continue };
            let Some(kpi) = kpis.iter_mut().find(|k| &k.goal_id == goal_id) else { continue };
            match rule {
                Rule::Explicit => kpi.explicit.add(*tally),
                Rule::LastTouch => kpi.last_touch.add(*tally),
                Rule::Unattributed => {
                    kpi.unattributed.add(*tally);
                    continue;
                }
            }
            if campaign_id.is_empty() {
                kpi.no_campaign.add(*tally);
            } else {
                kpi.campaigns.entry(campaign_id.clone()).or_default().add(*tally);
            }
        }
    }
    for kpi in &mut kpis {
        kpi.campaigns.retain(|_, tally| !tally.is_zero());
    }
    kpis
}

/// A goal's conversions by rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GoalTotals {
    pub explicit: Tally,
    pub last_touch: Tally,
    pub unattributed: Tally,
}

/// A goal's conversions by rule from counters summed over campaigns (a point of a daily
/// series): what [`goal_kpis`] gives from the same counters by campaign, without the split
/// by campaign.
pub fn goal_totals(cells: &CampaignCells, goal_id: &str) -> GoalTotals {
    let mut totals = GoalTotals::default();
    for (cell, tally) in &cells.0 {
        let CampaignCell::Conversion { goal_id: id, rule } = cell else { continue };
        if id != goal_id {
            continue;
        }
        match rule {
            Rule::Explicit => totals.explicit.add(*tally),
            Rule::LastTouch => totals.last_touch.add(*tally),
            Rule::Unattributed => totals.unattributed.add(*tally),
        }
    }
    totals
}

/// The `msg_hash`es whose registration a report needs to see.
pub fn referenced_messages(cells: &Cells) -> Vec<String> {
    let mut hashes: Vec<String> = cells
        .0
        .keys()
        .map(Cell::msg_hash)
        .filter(|hash| !hash.is_empty())
        .map(str::to_owned)
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_covers_the_range_asked_for_else_the_last_30_days_and_400_at_most() {
        let day = crate::rollup::DAY_MS;
        assert_eq!(series_range(None, 100 * day), Ok((70 * day, 100 * day)));
        assert_eq!(series_range(Some((day, 401 * day)), 0), Ok((day, 401 * day)));
        assert!(series_range(Some((0, 400 * day + 1)), 0).unwrap_err().contains("at most 400 days"));
    }

    fn ms(text: &str) -> Millis {
        DateTime::parse_from_rfc3339(text).unwrap().timestamp_millis()
    }

    #[test]
    fn local_days_follow_the_zone_and_cut_to_the_range() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let days = local_days(tz, ms("2026-03-28T12:00:00Z"), ms("2026-03-30T00:00:00Z"));
        let dates: Vec<String> = days.iter().map(|day| day.date.to_string()).collect();
        assert_eq!(dates, ["2026-03-28", "2026-03-29", "2026-03-30"]);
        // The first day is cut at the range start; 29 March has 23 hours (DST starts).
        assert_eq!(days[0].from, ms("2026-03-28T12:00:00Z"));
        assert_eq!(days[1].from, ms("2026-03-28T23:00:00Z"));
        assert_eq!(days[1].to - days[1].from, 23 * 3_600_000);
        assert_eq!(days[2].from, ms("2026-03-29T22:00:00Z"));
        assert_eq!(days[2].to, ms("2026-03-30T00:00:00Z"));
        // The pieces tile the range.
        for pair in days.windows(2) {
            assert_eq!(pair[0].to, pair[1].from);
        }
    }

    #[test]
    fn an_empty_range_has_no_days() {
        let tz: Tz = "UTC".parse().unwrap();
        assert!(local_days(tz, 1_000, 1_000).is_empty());
    }

    #[test]
    fn rates_are_zero_without_a_denominator() {
        let activity = Activity { delivered: 0, opened: 0, ..Activity::default() };
        assert_eq!((activity.open_rate(), activity.click_rate()), (0.0, 0.0));
        let activity = Activity { delivered: 4, opened: 2, clicked: 1, ..Activity::default() };
        assert_eq!((activity.open_rate(), activity.click_rate()), (0.5, 0.25));
        assert_eq!(average_check(Tally::default()), 0.0);
    }

    #[test]
    fn goal_figures_follow_the_goal_order_with_rates_per_open() {
        let config = config();
        let mut activity = Activity { opened: 4, ..Activity::default() };
        activity.goals.insert("orders".into(), Tally { count: 2, value_micros: 3_000_000 });
        let figures = activity.goal_figures(&config);
        let ids: Vec<&str> = figures.iter().map(|f| f.goal_id.as_str()).collect();
        assert_eq!(ids, ["orders", "checkin"]);
        assert_eq!((figures[0].conversion_rate, figures[0].average_check), (0.5, 1.5));
        assert_eq!((figures[1].tally, figures[1].conversion_rate, figures[1].average_check), (Tally::default(), 0.0, 0.0));
    }

    #[test]
    fn campaign_totals_count_the_default_goal_only() {
        let mut a = Activity::default();
        a.goals.insert("orders".into(), Tally { count: 1, value_micros: 5_000_000 });
        a.goals.insert("checkin".into(), Tally { count: 9, value_micros: 0 });
        let mut b = Activity::default();
        b.goals.insert("orders".into(), Tally { count: 3, value_micros: 7_000_000 });
        let campaigns = BTreeMap::from([("c1".to_owned(), (1, a)), ("c2".to_owned(), (2, b))]);
        let totals = campaign_totals(&campaigns);
        assert_eq!(totals.campaigns, 2);
        assert_eq!(totals.purchases, Tally { count: 4, value_micros: 12_000_000 });
        assert_eq!(totals.average_check, 3.0);
    }
    use crate::config::{Goal, GoalKind};

    fn config() -> TenantConfig {
        let mut config = TenantConfig::defaults("t");
        config.save_goal(Goal { id: "checkin".into(), kind: GoalKind::Event { event_name: "checkin".into() } }).unwrap();
        config
    }

    fn registered() -> BTreeMap<&'static str, &'static str> {
        BTreeMap::from([("m1", "c1"), ("m2", "c1"), ("m3", "")])
    }

    /// The campaign counters of `cells()`, as attribution keeps them: registered messages
    /// under their campaign, unattributed conversions under no campaign, and one message
    /// of `c1` sent in the range.
    fn by_campaign() -> BTreeMap<String, CampaignCells> {
        let registered = registered();
        let mut by_campaign: BTreeMap<String, CampaignCells> = BTreeMap::new();
        for (cell, tally) in cells().0 {
            let (msg_hash, cell) = cell.into_campaign_cell();
            let campaign = match registered.get(msg_hash.as_str()) {
                Some(campaign) => campaign.to_string(),
                None if msg_hash.is_empty() => String::new(),
                None => continue,
            };
            by_campaign.entry(campaign).or_default().add(cell, tally);
        }
        by_campaign.entry("c1".into()).or_default().add(CampaignCell::Message, Tally::ONE);
        by_campaign.entry("c2".into()).or_default().add(CampaignCell::Message, Tally::ONE);
        by_campaign
    }

    fn cells() -> Cells {
        let mut cells = Cells::default();
        let touch = |msg: &str, kind| Cell::Touch { msg_hash: msg.into(), kind };
        let conv = |goal: &str, rule, msg: &str| Cell::Conversion { goal_id: goal.into(), rule, msg_hash: msg.into() };
        cells.add(touch("m1", TouchKind::Delivered), Tally { count: 10, value_micros: 0 });
        cells.add(touch("m1", TouchKind::Opened), Tally { count: 4, value_micros: 0 });
        cells.add(touch("m2", TouchKind::Opened), Tally { count: 1, value_micros: 0 });
        cells.add(touch("ghost", TouchKind::Sent), Tally { count: 3, value_micros: 0 });
        cells.add(Cell::EventHit { msg_hash: "m1".into(), name: "view".into() }, Tally { count: 2, value_micros: 0 });
        cells.add(conv("orders", Rule::Explicit, "m1"), Tally { count: 1, value_micros: 5 });
        cells.add(conv("orders", Rule::LastTouch, "m2"), Tally { count: 2, value_micros: 7 });
        cells.add(conv("orders", Rule::LastTouch, "m3"), Tally { count: 1, value_micros: 1 });
        cells.add(conv("orders", Rule::Unattributed, ""), Tally { count: 9, value_micros: 90 });
        cells.add(conv("deleted-goal", Rule::LastTouch, "m1"), Tally { count: 1, value_micros: 1 });
        cells.add(conv("checkin", Rule::LastTouch, "m2"), Tally { count: 0, value_micros: 0 });
        cells
    }

    #[test]
    fn message_rows_sum_touches_hits_and_credited_goals() {
        let rows = message_activity(&cells(), &config());
        assert_eq!(rows.keys().collect::<Vec<_>>(), vec!["ghost", "m1", "m2", "m3"]);
        let m1 = &rows["m1"];
        assert_eq!((m1.delivered, m1.opened), (10, 4));
        assert_eq!(m1.event_hits["view"], 2);
        assert_eq!(m1.goals["orders"], Tally { count: 1, value_micros: 5 });
        assert_eq!(m1.goals["checkin"], Tally::default(), "every goal is listed");
        assert!(!m1.goals.contains_key("deleted-goal"));
    }

    #[test]
    fn campaign_rows_skip_campaignless_and_inactive_ones() {
        let campaigns = campaign_activity(&by_campaign(), &config());
        assert_eq!(campaigns.keys().collect::<Vec<_>>(), vec!["c1"], "c2 only sent a message");
        let (count, c1) = &campaigns["c1"];
        assert_eq!(*count, 1, "messages sent in the range");
        assert_eq!(c1.opened, 5);
        assert_eq!(c1.goals["orders"], Tally { count: 3, value_micros: 12 });
    }

    #[test]
    fn goal_kpis_split_by_rule_and_campaign() {
        let kpis = goal_kpis(&by_campaign(), &config());
        assert_eq!(kpis.len(), 2);
        let orders = &kpis[0];
        assert_eq!(orders.explicit, Tally { count: 1, value_micros: 5 });
        assert_eq!(orders.last_touch, Tally { count: 3, value_micros: 8 });
        assert_eq!(orders.unattributed, Tally { count: 9, value_micros: 90 });
        assert_eq!(orders.campaigns["c1"], Tally { count: 3, value_micros: 12 });
        assert_eq!(orders.no_campaign, Tally { count: 1, value_micros: 1 });
        assert!(kpis[1].campaigns.is_empty());
    }

    #[test]
    fn goal_totals_of_cells_summed_over_campaigns_are_the_kpis_by_rule() {
        let mut summed = CampaignCells::default();
        by_campaign().into_values().for_each(|cells| summed.merge(cells));
        for kpi in goal_kpis(&by_campaign(), &config()) {
            let totals = goal_totals(&summed, &kpi.goal_id);
            assert_eq!((totals.explicit, totals.last_touch, totals.unattributed), (kpi.explicit, kpi.last_touch, kpi.unattributed), "{}", kpi.goal_id);
        }
        assert_eq!(goal_totals(&summed, "orders").unattributed, Tally { count: 9, value_micros: 90 });
        assert_eq!(goal_totals(&summed, "no-such-goal"), GoalTotals::default());
    }

    #[test]
    fn values_are_json_numbers_integers_when_whole() {
        assert_eq!(value_json(12_000_000).to_string(), "12");
        assert_eq!(value_json(12_500_000).to_string(), "12.5");
        assert_eq!(value_json(-1).as_f64(), Some(-0.000001));
    }

    #[test]
    fn rates_are_zero_rather_than_nan() {
        assert_eq!(rate(1.0, 0.0), 0.0);
        assert_eq!(rate(1.0, 4.0), 0.25);
    }

    #[test]
    fn top_event_hits_are_ordered_by_hits_then_name() {
        let activity = Activity {
            event_hits: BTreeMap::from([("b".into(), 2), ("a".into(), 2), ("c".into(), 5), ("z".into(), 0)]),
            ..Activity::default()
        };
        assert_eq!(activity.top_event_hits(), vec![("c", 5), ("a", 2), ("b", 2)]);
    }
}
