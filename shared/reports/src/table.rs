//! Human-readable output: aligned columns (text left, numbers right), two spaces apart.
//! Campaigns end with a totals line; goals are followed by their campaign breakdown.
//!
//! Tables are for people at a terminal, so unlike json and csv (exact minor units, every
//! column) they show money in major units with the currency's own decimals and thousands
//! grouped ("23,509.27 USD", "1,500 JPY"), EVENT goal values as plain numbers (an event's
//! value is no money), counts grouped, and by default only the columns that answer "which
//! campaign sold": the default goal's figures. `--goals` shows every goal (`--goals G`, the
//! ones named), each in a table of its own: one row of every goal would not fit a terminal.

use crate::rows::{GoalRow, StatsKind, StatsReport, StatsRow, Subject, Tally, Totals, Units, ValueUnit, derived, value_text};
use touchstone_core::currency::{format_money, group_thousands};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Align {
    Left,
    Right,
}

/// Columns sized to their widest cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    columns: Vec<(String, Align)>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: Vec<(String, Align)>) -> Table {
        Table { columns, rows: Vec::new() }
    }

    /// Adds a row; a short row is padded with empty cells.
    pub fn push(&mut self, mut row: Vec<String>) {
        debug_assert!(row.len() <= self.columns.len(), "more cells than columns");
        row.resize(self.columns.len(), String::new());
        self.rows.push(row);
    }

    /// The header line and one line per row, each ending in a newline, without trailing spaces.
    pub fn render(&self) -> String {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(index, (title, _))| {
                self.rows.iter().map(|row| width(&row[index])).chain([width(title)]).max().unwrap_or(0)
            })
            .collect();
        let header: Vec<String> = self.columns.iter().map(|(title, _)| title.clone()).collect();
        let mut text = String::new();
        for row in std::iter::once(&header).chain(&self.rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(&self.columns)
                .zip(&widths)
                .map(|((cell, (_, align)), &width)| pad(cell, width, *align))
                .collect();
            text.push_str(cells.join("  ").trim_end());
            text.push('\n');
        }
        text
    }
}

/// `2026-01-05 14:03:07.250 UTC`, or the epoch ms when out of chrono's range.
pub fn time_text(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map_or_else(|| ms.to_string(), |t| t.format("%Y-%m-%d %H:%M:%S%.3f UTC").to_string())
}

fn width(text: &str) -> usize {
    text.chars().count()
}

fn pad(text: &str, width: usize, align: Align) -> String {
    match align {
        Align::Left => format!("{text:<width$}"),
        Align::Right => format!("{text:>width$}"),
    }
}

/// Which goals the campaign and message tables show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GoalColumns {
    /// The default goal's conversions, value and conversion rate: a table that fits a terminal.
    Default,
    /// Every goal, each in a table of its own with its average too (`--goals`).
    All,
    /// These goals, each in a table of its own (`--goals G,H`).
    Only(Vec<String>),
}

/// `25.0%`, or `-` when the denominator is 0.
fn percent_text(rate: f64, denominator: u64) -> String {
    derived(rate, denominator).map_or_else(|| "-".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
}

/// `1,234`: a count with thousands grouped.
fn count_text(count: impl Into<u128>) -> String {
    group_thousands(count.into())
}

/// A decimal as written by [`value_text`] or `{:.2}` with its whole part grouped: "-1,234.5".
fn group_decimal(text: &str) -> String {
    let (sign, digits) = text.strip_prefix('-').map_or(("", text), |rest| ("-", rest));
    let (whole, fraction) = digits.split_once('.').map_or((digits, None), |(whole, fraction)| (whole, Some(fraction)));
    // Only digits reach here; anything else is shown as it came rather than lost.
    let grouped = whole.parse::<u128>().map_or_else(|_| whole.to_owned(), group_thousands);
    match fraction {
        Some(fraction) => format!("{sign}{grouped}.{fraction}"),
        None => format!("{sign}{grouped}"),
    }
}

/// A goal value: money of the tenant's currency, or the exact plain number (grouped).
pub fn value_cell(value_micros: i128, unit: ValueUnit<'_>) -> String {
    match unit {
        ValueUnit::Money(currency) => format_money(value_micros, currency),
        ValueUnit::Plain => group_decimal(&value_text(value_micros)),
    }
}

/// Value per conversion: money rounded to the currency's minor unit, a plain number to two
/// decimals; `-` without conversions.
fn average_text(average: f64, conversions: u64, unit: ValueUnit<'_>) -> String {
    derived(average, conversions).map_or_else(|| "-".to_owned(), |average| approximate_value(average, unit))
}

/// A computed value (a mean, a difference) in minor units or the event's units: money
/// rounded to the currency's minor unit, a plain number to two decimals.
pub fn approximate_value(value: f64, unit: ValueUnit<'_>) -> String {
    match unit {
        // format_money takes millionths of minor units.
        ValueUnit::Money(currency) => format_money((value * 1_000_000.0).round() as i128, currency),
        ValueUnit::Plain => group_decimal(&format!("{value:.2}")),
    }
}

fn column(title: impl Into<String>, align: Align) -> (String, Align) {
    (title.into(), align)
}

/// A goal the stats table shows, and how.
struct ShownGoal<'a> {
    id: String,
    unit: ValueUnit<'a>,
    /// The default table's goal: titled by its name, no average column. Otherwise the goal
    /// heads a table of its own, whose columns need not name it.
    default: bool,
}

/// The goals the tables show: the default goal, or every goal (`--goals`, the default
/// first, then the rows' order), or the ones named. A named goal no row has is an error.
fn shown_goals<'a>(report: &'a StatsReport, goals: &GoalColumns) -> Result<Vec<ShownGoal<'a>>, String> {
    let default = report.default_goal();
    let shown = |id: String, default| ShownGoal { unit: report.units.of(&id), id, default };
    match goals {
        GoalColumns::Default => Ok(default.into_iter().map(|id| shown(id, true)).collect()),
        GoalColumns::All => {
            let mut ids: Vec<String> = default.clone().into_iter().collect();
            ids.extend(report.goal_ids().into_iter().filter(|id| default.as_deref() != Some(id.as_str())));
            Ok(ids.into_iter().map(|id| shown(id, false)).collect())
        }
        GoalColumns::Only(named) => {
            let known = report.goal_ids();
            match named.iter().find(|id| !known.contains(id) && default.as_deref() != Some(id.as_str())) {
                Some(unknown) => Err(format!("--goals: no goal {unknown:?} in this report; its goals: {}", known.join(", "))),
                None => Ok(named.iter().map(|id| shown(id.clone(), false)).collect()),
            }
        }
    }
}

fn stats_columns(kind: StatsKind, goal: Option<&ShownGoal<'_>>) -> Vec<(String, Align)> {
    let mut columns = match kind {
        StatsKind::Campaigns => vec![column("CAMPAIGN", Align::Left), column("MSGS", Align::Right)],
        StatsKind::Messages => vec![column("MESSAGE", Align::Left), column("CAMPAIGN", Align::Left)],
    };
    columns.extend([column("SENT", Align::Right), column("OPENED", Align::Right)]);
    let Some(goal) = goal else { return columns };
    let money = matches!(goal.unit, ValueUnit::Money(_));
    let value = if money { "REVENUE" } else { "VALUE" };
    if goal.default {
        // "ORDERS  REVENUE  CONV RATE": short, so that the default table fits 80 columns.
        columns.extend([column(goal.id.to_uppercase(), Align::Right), column(value, Align::Right), column("CONV RATE", Align::Right)]);
    } else {
        let average = if money { "AVG CHECK" } else { "AVG VALUE" };
        columns.extend(["CONV", value, "CONV RATE", average].map(|title| column(title, Align::Right)));
    }
    columns
}

fn stats_cells(row: &StatsRow, goal: Option<&ShownGoal<'_>>) -> Vec<String> {
    let mut cells = match &row.subject {
        Subject::Campaign { campaign_id, messages } => vec![campaign_id.clone(), count_text(*messages)],
        Subject::Message { msg_hash, campaign_id, channel: _, registered } => {
            // Without a channel column, the campaign cell tells a message nobody registered.
            let campaign = match (registered, campaign_id.is_empty()) {
                (false, _) => "(unregistered)".to_owned(),
                (true, true) => "-".to_owned(),
                (true, false) => campaign_id.clone(),
            };
            vec![msg_hash.clone(), campaign]
        }
    };
    let touches = row.touches;
    cells.extend([count_text(touches.sent), count_text(touches.opened)]);
    let Some(goal) = goal else { return cells };
    let cell = row.goal(&goal.id);
    cells.extend([count_text(cell.conversions), value_cell(cell.value_micros, goal.unit), percent_text(cell.conversion_rate, touches.opened)]);
    if !goal.default {
        cells.push(average_text(cell.average_check, cell.conversions, goal.unit));
    }
    cells
}

/// The totals of a campaign list: its default goal (revenue and average check in its unit).
fn totals_line(totals: &Totals, unit: ValueUnit<'_>) -> String {
    let Totals { campaigns, purchases, revenue_micros, average_check } = totals;
    format!(
        "total: {} campaigns, {} purchases, revenue {}, average check {}\n",
        count_text(*campaigns),
        count_text(*purchases),
        value_cell(*revenue_micros, unit),
        average_text(*average_check, *purchases, unit),
    )
}

/// The default table, or one table a goal under its name; then a campaign list's totals.
pub fn render_stats(report: &StatsReport, goals: &GoalColumns) -> Result<String, String> {
    let shown = shown_goals(report, goals)?;
    // No goal at all (no row has one, the server named none): the touch columns alone.
    let tables: Vec<Option<&ShownGoal<'_>>> = if shown.is_empty() { vec![None] } else { shown.iter().map(Some).collect() };
    let mut text = String::new();
    for goal in tables {
        let mut table = Table::new(stats_columns(report.kind, goal));
        for row in &report.rows {
            table.push(stats_cells(row, goal));
        }
        if let Some(goal) = goal.filter(|goal| !goal.default) {
            if !text.is_empty() {
                text.push('\n');
            }
            text.push_str(&format!("{}:\n", goal.id));
        }
        text.push_str(&table.render());
    }
    if let Some(totals) = &report.totals {
        let unit = report.default_goal().map_or(ValueUnit::Plain, |goal| report.units.of(&goal));
        text.push('\n');
        text.push_str(&totals_line(totals, unit));
    }
    Ok(text)
}

fn tally_cells(Tally { conversions, value_micros }: Tally, unit: ValueUnit<'_>) -> [String; 2] {
    [count_text(conversions), value_cell(value_micros, unit)]
}

/// A line a rule of each goal (its name on the first), then each goal's campaigns.
pub fn render_goals(rows: &[GoalRow], units: &Units) -> String {
    let columns = vec![column("GOAL", Align::Left), column("RULE", Align::Left), column("CONV", Align::Right), column("VALUE", Align::Right)];
    let mut table = Table::new(columns);
    for row in rows {
        let unit = units.of(&row.goal_id);
        let rules = [("explicit", row.explicit), ("last touch", row.last_touch), ("unattributed", row.unattributed), ("total", row.total())];
        for (index, (rule, tally)) in rules.into_iter().enumerate() {
            let goal = if index == 0 { row.goal_id.clone() } else { String::new() };
            let [conversions, value] = tally_cells(tally, unit);
            table.push(vec![goal, rule.to_owned(), conversions, value]);
        }
    }
    let mut text = table.render();
    for row in rows {
        if let Some(breakdown) = campaign_breakdown(row, units.of(&row.goal_id)) {
            text.push('\n');
            text.push_str(&format!("{} credited by campaign:\n", row.goal_id));
            text.push_str(&breakdown);
        }
    }
    text
}

/// Which campaigns a goal's credited conversions went to, or none when nothing was credited.
fn campaign_breakdown(row: &GoalRow, unit: ValueUnit<'_>) -> Option<String> {
    if row.campaigns.is_empty() && row.no_campaign == Tally::default() {
        return None;
    }
    let mut table =
        Table::new(vec![column("CAMPAIGN", Align::Left), column("CONV", Align::Right), column("VALUE", Align::Right)]);
    for (campaign_id, tally) in &row.campaigns {
        let [conversions, value] = tally_cells(*tally, unit);
        table.push(vec![campaign_id.clone(), conversions, value]);
    }
    if row.no_campaign != Tally::default() {
        let [conversions, value] = tally_cells(row.no_campaign, unit);
        table.push(vec!["(no campaign)".to_owned(), conversions, value]);
    }
    Some(table.render())
}

#[cfg(test)]
mod tests {
    use crate::rows::fixtures::*;
    use crate::rows::goal_report;
    use super::*;
    use touchstone_proto::v1 as pb;

    #[test]
    fn columns_are_padded_to_the_widest_cell_text_left_numbers_right_headers_too() {
        let mut table =
            Table::new(vec![column("NAME", Align::Left), column("N", Align::Right), column("NOTE", Align::Left)]);
        table.push(vec!["a".into(), "1000".into(), "x".into()]);
        table.push(vec!["longer".into(), "7".into()]);
        assert_eq!(table.render(), "NAME       N  NOTE\na       1000  x\nlonger     7\n");
    }

    #[test]
    fn widths_count_characters_not_bytes() {
        let mut table = Table::new(vec![column("K", Align::Left), column("V", Align::Right)]);
        table.push(vec!["été".into(), "1".into()]);
        table.push(vec!["abcd".into(), "2".into()]);
        assert_eq!(table.render(), "K     V\nété   1\nabcd  2\n");
    }

    fn campaigns(list: pb::CampaignList, goals: GoalColumns) -> String {
        render_stats(&StatsReport::from_campaigns(list).unwrap(), &goals).unwrap()
    }

    #[test]
    fn campaign_table_shows_the_default_goal_only_money_in_major_units_and_ends_with_totals() {
        let expected = "\
CAMPAIGN  MSGS  SENT  OPENED  ORDERS    REVENUE  CONV RATE
spring       2   100      20       4  50.00 USD      20.0%
summer       1    10       0       0   0.00 USD          -

total: 2 campaigns, 4 purchases, revenue 50.00 USD, average check 12.50 USD
";
        assert_eq!(campaigns(campaign_list(), GoalColumns::Default), expected);
    }

    #[test]
    fn goals_flag_shows_every_goal_in_a_table_of_its_own_event_values_as_plain_numbers() {
        let expected = "\
orders:
CAMPAIGN  MSGS  SENT  OPENED  CONV    REVENUE  CONV RATE  AVG CHECK
spring       2   100      20     4  50.00 USD      20.0%  12.50 USD
summer       1    10       0     0   0.00 USD          -          -

checkin:
CAMPAIGN  MSGS  SENT  OPENED  CONV  VALUE  CONV RATE  AVG VALUE
spring       2   100      20     1   12.5       5.0%      12.50
summer       1    10       0     0      0          -          -

total: 2 campaigns, 4 purchases, revenue 50.00 USD, average check 12.50 USD
";
        assert_eq!(campaigns(campaign_list(), GoalColumns::All), expected);
        // `--goals checkin`: that goal's table alone; a goal the report lacks is an error.
        let only = campaigns(campaign_list(), GoalColumns::Only(vec!["checkin".into()]));
        assert!(only.starts_with("checkin:\nCAMPAIGN") && !only.contains("orders:"), "{only}");
        let unknown = render_stats(&StatsReport::from_campaigns(campaign_list()).unwrap(), &GoalColumns::Only(vec!["nope".into()]));
        assert_eq!(unknown.unwrap_err(), "--goals: no goal \"nope\" in this report; its goals: orders, checkin");
    }

    #[test]
    fn money_has_the_currencys_decimals_and_grouping_counts_are_grouped() {
        let mut list = campaign_list();
        list.campaigns[0].touches = touches(1_234_567, 1_000_000, 200_000, 5);
        list.campaigns[0].goals[0] = goal("orders", 4, "2350927", 0.00002, 587_731.75);
        list.totals = Some(pb::CampaignTotals { campaigns: 2, purchases: 4, revenue: decimal("2350927"), average_check: 587_731.75 });
        let text = campaigns(list.clone(), GoalColumns::Default);
        assert!(text.contains("spring       2  1,234,567  200,000       4  23,509.27 USD"), "{text}");
        assert!(text.ends_with("revenue 23,509.27 USD, average check 5,877.32 USD\n"), "{text}");

        list.units = units("JPY");
        list.campaigns[0].goals[0].value = decimal("1500");
        let text = campaigns(list.clone(), GoalColumns::Default);
        assert!(text.contains("  1,500 JPY  "), "{text}");
        assert!(text.contains("      0 JPY  "), "no decimals for JPY: {text}");
        assert!(text.ends_with("revenue 2,350,927 JPY, average check 587,732 JPY\n"), "{text}");

        list.units = units("KWD");
        list.campaigns[0].goals[0].value = decimal("1234");
        let text = campaigns(list, GoalColumns::Default);
        assert!(text.contains("  1.234 KWD  "), "{text}");
        assert!(text.ends_with("revenue 2,350.927 KWD, average check 587.732 KWD\n"), "{text}");
    }

    #[test]
    fn event_goal_values_are_never_money_even_when_the_event_goal_comes_first() {
        let mut list = campaign_list();
        list.campaigns[0].goals[1] = goal("checkin", 3, "1234567.5", 0.15, 411_522.5);
        let text = campaigns(list.clone(), GoalColumns::Only(vec!["checkin".into()]));
        let spring = text.lines().nth(2).unwrap();
        assert!(spring.contains("  1,234,567.5  "), "{spring}");
        assert!(spring.ends_with("  411,522.50"), "{spring}");
        assert!(!spring.contains("USD"), "only orders is money: {spring}");

        // A tenant whose first goal were an EVENT goal: its values stay plain numbers.
        let units = list.units.as_mut().unwrap();
        units.goals.reverse();
        for campaign in &mut list.campaigns {
            campaign.goals.reverse();
        }
        let text = campaigns(list, GoalColumns::Default);
        assert!(text.starts_with("CAMPAIGN  MSGS  SENT  OPENED  CHECKIN        VALUE  CONV RATE\n"), "{text}");
        assert!(text.contains("  1,234,567.5  "), "{text}");
        assert!(!text.contains("USD"), "{text}");
    }

    #[test]
    fn a_server_that_sends_no_units_gets_plain_values_as_stored() {
        let mut list = campaign_list();
        list.units = None;
        let text = campaigns(list, GoalColumns::Default);
        assert!(text.starts_with("CAMPAIGN  MSGS  SENT  OPENED  ORDERS  VALUE  CONV RATE\n"), "{text}");
        assert!(text.contains("       4  5,000      20.0%"), "{text}");
        assert!(text.ends_with("revenue 5,000, average check 1,250.00\n"), "{text}");
    }

    #[test]
    fn message_table_shows_the_default_goal_and_marks_unregistered_messages() {
        let mut list = message_list();
        list.messages[0].event_hits = (1..=7).map(|n| hit(&format!("e{n}"), n)).collect();
        let mut no_campaign = list.messages[0].clone();
        no_campaign.msg_hash = "m2".into();
        no_campaign.campaign_id = String::new();
        list.messages.push(no_campaign);
        let expected = "\
MESSAGE  CAMPAIGN        SENT  OPENED  ORDERS   REVENUE  CONV RATE
m1       spring            50      10       3  1.00 USD      30.0%
m9       (unregistered)     0       0       0  0.00 USD          -
m2       -                 50      10       3  1.00 USD      30.0%
";
        let report = StatsReport::from_messages(list).unwrap();
        assert_eq!(render_stats(&report, &GoalColumns::Default).unwrap(), expected, "no totals for messages");
        let all = render_stats(&report, &GoalColumns::All).unwrap();
        assert!(all.starts_with("orders:\nMESSAGE  CAMPAIGN        SENT  OPENED  CONV   REVENUE  CONV RATE  AVG CHECK\n"), "{all}");
    }

    #[test]
    fn goal_table_splits_by_rule_and_lists_credited_campaigns_order_values_as_money() {
        let (rows, units) = goal_report(goal_kpis()).unwrap();
        let text = render_goals(&rows, &units);
        let expected = "\
GOAL     RULE          CONV     VALUE
orders   explicit         2  2.51 USD
         last touch       3  1.00 USD
         unattributed     5  0.00 USD
         total           10  3.51 USD
checkin  explicit         0         0
         last touch       0         0
         unattributed     4         0
         total            4         0

orders credited by campaign:
CAMPAIGN       CONV     VALUE
b                 3  2.01 USD
a                 1  0.50 USD
(no campaign)     1  1.00 USD
";
        assert_eq!(text, expected);
    }

    #[test]
    fn goal_table_event_values_are_plain_and_grouped() {
        let mut reply = goal_kpis();
        reply.goals[1].unattributed = tally(4, "12345.75");
        reply.units = units("JPY");
        reply.goals[0].explicit = tally(2, "123456");
        let (rows, units) = goal_report(reply).unwrap();
        let text = render_goals(&rows, &units);
        assert!(text.lines().nth(1).unwrap().ends_with("  123,456 JPY"), "{text}");
        let checkin = text.lines().nth(7).unwrap();
        assert!(checkin.ends_with("  12,345.75") && !checkin.contains("JPY"), "{checkin}");
    }
}
