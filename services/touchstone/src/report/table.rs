//! Human-readable output: aligned columns (text left, numbers right), two spaces apart.
//! Campaigns end with a totals line; goals are followed by their campaign breakdown.

use super::rows::{
    GoalRow, StatsKind, StatsReport, StatsRow, Subject, TOP_EVENT_HITS, Tally, Totals, derived, value_text,
};

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

fn width(text: &str) -> usize {
    text.chars().count()
}

fn pad(text: &str, width: usize, align: Align) -> String {
    match align {
        Align::Left => format!("{text:<width$}"),
        Align::Right => format!("{text:>width$}"),
    }
}

/// `25.0%`, or `-` when the denominator is 0.
fn percent_text(rate: f64, denominator: u64) -> String {
    derived(rate, denominator).map_or_else(|| "-".to_owned(), |rate| format!("{:.1}%", rate * 100.0))
}

fn average_text(average: f64, conversions: u64) -> String {
    derived(average, conversions).map_or_else(|| "-".to_owned(), |average| format!("{average:.2}"))
}

/// `view 7, checkin 2`: the top event names.
fn hits_text(row: &StatsRow) -> String {
    row.event_hits
        .iter()
        .take(TOP_EVENT_HITS)
        .map(|(name, hits)| format!("{name} {hits}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn column(title: impl Into<String>, align: Align) -> (String, Align) {
    (title.into(), align)
}

fn stats_columns(kind: StatsKind, goal_ids: &[String]) -> Vec<(String, Align)> {
    let mut columns = match kind {
        StatsKind::Campaigns => vec![column("CAMPAIGN", Align::Left), column("MSGS", Align::Right)],
        StatsKind::Messages => {
            vec![column("MESSAGE", Align::Left), column("CAMPAIGN", Align::Left), column("CHANNEL", Align::Left)]
        }
    };
    for title in ["SENT", "DELIVERED", "OPENED", "CLICKED", "OPEN RATE", "CLICK RATE"] {
        columns.push(column(title, Align::Right));
    }
    for goal in goal_ids {
        for what in ["CONV", "VALUE", "CONV RATE", "AVG CHECK"] {
            columns.push(column(format!("{goal} {what}"), Align::Right));
        }
    }
    columns.push(column("TOP EVENTS", Align::Left));
    columns
}

fn stats_cells(row: &StatsRow, goal_ids: &[String]) -> Vec<String> {
    let mut cells = match &row.subject {
        Subject::Campaign { campaign_id, messages } => vec![campaign_id.clone(), messages.to_string()],
        Subject::Message { msg_hash, campaign_id, channel, registered } => {
            let channel = match (channel, registered) {
                (Some(channel), _) => channel.as_str().to_owned(),
                (None, false) => "unregistered".to_owned(),
                (None, true) => "-".to_owned(),
            };
            let campaign = if campaign_id.is_empty() { "-".to_owned() } else { campaign_id.clone() };
            vec![msg_hash.clone(), campaign, channel]
        }
    };
    let touches = row.touches;
    cells.extend([
        touches.sent.to_string(),
        touches.delivered.to_string(),
        touches.opened.to_string(),
        touches.clicked.to_string(),
        percent_text(touches.open_rate, touches.delivered),
        percent_text(touches.click_rate, touches.delivered),
    ]);
    for goal_id in goal_ids {
        let cell = row.goal(goal_id);
        cells.extend([
            cell.conversions.to_string(),
            value_text(cell.value_micros),
            percent_text(cell.conversion_rate, touches.opened),
            average_text(cell.average_check, cell.conversions),
        ]);
    }
    cells.push(hits_text(row));
    cells
}

fn totals_line(totals: &Totals) -> String {
    let Totals { campaigns, purchases, revenue_micros, average_check } = totals;
    format!(
        "total: {campaigns} campaigns, {purchases} purchases, revenue {}, average check {}\n",
        value_text(*revenue_micros),
        average_text(*average_check, *purchases),
    )
}

pub fn render_stats(report: &StatsReport) -> String {
    let goal_ids = report.goal_ids();
    let mut table = Table::new(stats_columns(report.kind, &goal_ids));
    for row in &report.rows {
        table.push(stats_cells(row, &goal_ids));
    }
    let mut text = table.render();
    if let Some(totals) = &report.totals {
        text.push('\n');
        text.push_str(&totals_line(totals));
    }
    text
}

fn tally_cells(Tally { conversions, value_micros }: Tally) -> [String; 2] {
    [conversions.to_string(), value_text(value_micros)]
}

pub fn render_goals(rows: &[GoalRow]) -> String {
    let mut columns = vec![column("GOAL", Align::Left)];
    for rule in ["EXPLICIT", "LAST TOUCH", "UNATTRIBUTED", "TOTAL"] {
        columns.push(column(rule, Align::Right));
        columns.push(column(format!("{rule} VALUE"), Align::Right));
    }
    let mut table = Table::new(columns);
    for row in rows {
        let mut cells = vec![row.goal_id.clone()];
        for tally in [row.explicit, row.last_touch, row.unattributed, row.total()] {
            cells.extend(tally_cells(tally));
        }
        table.push(cells);
    }
    let mut text = table.render();
    for row in rows {
        if let Some(breakdown) = campaign_breakdown(row) {
            text.push('\n');
            text.push_str(&format!("{} credited by campaign:\n", row.goal_id));
            text.push_str(&breakdown);
        }
    }
    text
}

/// Which campaigns a goal's credited conversions went to, or none when nothing was credited.
fn campaign_breakdown(row: &GoalRow) -> Option<String> {
    if row.campaigns.is_empty() && row.no_campaign == Tally::default() {
        return None;
    }
    let mut table =
        Table::new(vec![column("CAMPAIGN", Align::Left), column("CONV", Align::Right), column("VALUE", Align::Right)]);
    for (campaign_id, tally) in &row.campaigns {
        let [conversions, value] = tally_cells(*tally);
        table.push(vec![campaign_id.clone(), conversions, value]);
    }
    if row.no_campaign != Tally::default() {
        let [conversions, value] = tally_cells(row.no_campaign);
        table.push(vec!["(no campaign)".to_owned(), conversions, value]);
    }
    Some(table.render())
}

#[cfg(test)]
mod tests {
    use super::super::rows::fixtures::*;
    use super::super::rows::goal_rows;
    use super::*;

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

    #[test]
    fn campaign_table_is_aligned_and_ends_with_totals() {
        let mut list = campaign_list();
        for campaign in &mut list.campaigns {
            campaign.goals.truncate(1);
        }
        let text = render_stats(&StatsReport::from_campaigns(list).unwrap());
        let expected = "\
CAMPAIGN  MSGS  SENT  DELIVERED  OPENED  CLICKED  OPEN RATE  CLICK RATE  orders CONV  orders VALUE  orders CONV RATE  orders AVG CHECK  TOP EVENTS
spring       2   100         80      20        5      25.0%        6.2%            4          5000             20.0%           1250.00  view 7, checkin 2
summer       1    10          0       0        0          -           -            0             0                 -                 -

total: 2 campaigns, 4 purchases, revenue 5000, average check 1250.00
";
        assert_eq!(text, expected);
    }

    #[test]
    fn message_table_marks_unregistered_messages_and_shows_the_top_five_events() {
        let mut list = message_list();
        list.messages[0].event_hits = (1..=7).map(|n| hit(&format!("e{n}"), n)).collect();
        let text = render_stats(&StatsReport::from_messages(list).unwrap());
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("MESSAGE  CAMPAIGN  CHANNEL       SENT"), "{}", lines[0]);
        assert!(lines[1].starts_with("m1       spring    PUSH"), "{}", lines[1]);
        assert!(lines[1].ends_with("e7 7, e6 6, e5 5, e4 4, e3 3"), "{}", lines[1]);
        assert!(lines[2].starts_with("m9       -         unregistered"), "{}", lines[2]);
        assert_eq!(lines.len(), 3, "no totals for messages");
    }

    #[test]
    fn goal_table_splits_by_rule_and_lists_credited_campaigns() {
        let text = render_goals(&goal_rows(goal_kpis()).unwrap());
        let expected = "\
GOAL     EXPLICIT  EXPLICIT VALUE  LAST TOUCH  LAST TOUCH VALUE  UNATTRIBUTED  UNATTRIBUTED VALUE  TOTAL  TOTAL VALUE
orders          2           250.5           3               100             5                0.25     10       350.75
checkin         0               0           0                 0             4                   0      4            0

orders credited by campaign:
CAMPAIGN       CONV  VALUE
b                 3  200.5
a                 1     50
(no campaign)     1    100
";
        assert_eq!(text, expected);
    }
}
