//! CSV output: a header row, then one row per campaign, message or goal. Every goal the rows
//! report gets its columns; derived figures are empty when their denominator is 0.
//!
//! Ids come from clients, and a spreadsheet runs a cell starting with `=`, `+`, `-`, `@`, a
//! tab or a carriage return as a formula (`=HYPERLINK(...)`): such text cells get a leading
//! `'` (OWASP's advice), which spreadsheets show as text. `top_event_hits` is a JSON object,
//! so names holding `;`, `=` or quotes read back unambiguously.

use crate::rows::{GoalRow, StatsKind, StatsReport, StatsRow, Subject, TOP_EVENT_HITS, Tally, derived, value_text};

#[derive(Debug, thiserror::Error)]
pub enum CsvError {
    #[error("cannot write csv: {0}")]
    Csv(#[from] csv::Error),
    #[error("cannot write csv: {0}")]
    Buffer(String),
}

fn rate_text(rate: f64, denominator: u64) -> String {
    derived(rate, denominator).map(|rate| format!("{rate:.4}")).unwrap_or_default()
}

fn average_text(average: f64, conversions: u64) -> String {
    derived(average, conversions).map(|average| format!("{average:.2}")).unwrap_or_default()
}

/// `{"view":7,"checkin":2}`: the most hit event names, most hits first; empty when none.
fn hits_text(row: &StatsRow) -> String {
    if row.event_hits.is_empty() {
        return String::new();
    }
    let pairs: Vec<String> = row
        .event_hits
        .iter()
        .take(TOP_EVENT_HITS)
        .map(|(name, hits)| format!("{}:{hits}", serde_json::Value::String(name.clone())))
        .collect();
    format!("{{{}}}", pairs.join(","))
}

/// A client-given text as a cell no spreadsheet runs as a formula.
fn text_cell(text: &str) -> String {
    match text.chars().next() {
        Some('=' | '+' | '-' | '@' | '\t' | '\r') => format!("'{text}"),
        _ => text.to_owned(),
    }
}

pub fn stats_header(kind: StatsKind, goal_ids: &[String]) -> Vec<String> {
    let mut header: Vec<String> = match kind {
        StatsKind::Campaigns => vec!["campaign_id", "messages"],
        StatsKind::Messages => vec!["msg_hash", "campaign_id", "channel"],
    }
    .into_iter()
    .chain(["sent", "delivered", "opened", "clicked", "open_rate", "click_rate", "held_out"])
    .map(str::to_owned)
    .collect();
    for goal in goal_ids {
        for column in ["conversions", "value", "conversion_rate", "average_check"] {
            header.push(format!("{goal}_{column}"));
        }
    }
    header.push("top_event_hits".to_owned());
    header
}

pub fn stats_record(row: &StatsRow, goal_ids: &[String]) -> Vec<String> {
    let mut record = match &row.subject {
        Subject::Campaign { campaign_id, messages } => vec![text_cell(campaign_id), messages.to_string()],
        Subject::Message { msg_hash, campaign_id, channel, registered: _ } => {
            vec![text_cell(msg_hash), text_cell(campaign_id), channel.map(|c| c.as_str().to_owned()).unwrap_or_default()]
        }
    };
    let touches = row.touches;
    record.extend([
        touches.sent.to_string(),
        touches.delivered.to_string(),
        touches.opened.to_string(),
        touches.clicked.to_string(),
        rate_text(touches.open_rate, touches.delivered),
        rate_text(touches.click_rate, touches.delivered),
        touches.held_out.to_string(),
    ]);
    for goal_id in goal_ids {
        let cell = row.goal(goal_id);
        record.extend([
            cell.conversions.to_string(),
            value_text(cell.value_micros),
            rate_text(cell.conversion_rate, touches.opened),
            average_text(cell.average_check, cell.conversions),
        ]);
    }
    record.push(hits_text(row));
    record
}

pub fn render_stats(report: &StatsReport) -> Result<String, CsvError> {
    let goal_ids = report.goal_ids();
    let records = report.rows.iter().map(|row| stats_record(row, &goal_ids));
    write_csv(stats_header(report.kind, &goal_ids), records)
}

const GOAL_HEADER: [&str; 9] = [
    "goal_id",
    "explicit_conversions",
    "explicit_value",
    "last_touch_conversions",
    "last_touch_value",
    "unattributed_conversions",
    "unattributed_value",
    "total_conversions",
    "total_value",
];

pub fn goal_record(row: &GoalRow) -> Vec<String> {
    let mut record = vec![text_cell(&row.goal_id)];
    for Tally { conversions, value_micros } in [row.explicit, row.last_touch, row.unattributed, row.total()] {
        record.extend([conversions.to_string(), value_text(value_micros)]);
    }
    record
}

pub fn render_goals(rows: &[GoalRow]) -> Result<String, CsvError> {
    write_csv(GOAL_HEADER.map(str::to_owned).to_vec(), rows.iter().map(goal_record))
}

fn write_csv(header: Vec<String>, records: impl Iterator<Item = Vec<String>>) -> Result<String, CsvError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(&header)?;
    for record in records {
        writer.write_record(&record)?;
    }
    let bytes = writer.into_inner().map_err(|err| CsvError::Buffer(err.to_string()))?;
    String::from_utf8(bytes).map_err(|err| CsvError::Buffer(err.to_string()))
}

#[cfg(test)]
mod tests {
    use crate::rows::fixtures::*;
    use crate::rows::goal_rows;
    use super::*;

    #[test]
    fn campaign_csv_has_a_header_and_one_row_per_campaign_with_rates() {
        let report = StatsReport::from_campaigns(campaign_list()).unwrap();
        let text = render_stats(&report).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "campaign_id,messages,sent,delivered,opened,clicked,open_rate,click_rate,held_out,\
             orders_conversions,orders_value,orders_conversion_rate,orders_average_check,\
             checkin_conversions,checkin_value,checkin_conversion_rate,checkin_average_check,top_event_hits"
        );
        assert_eq!(
            lines[1],
            "spring,2,100,80,20,5,0.2500,0.0625,0,4,5000,0.2000,1250.00,1,12.5,0.0500,12.50,\"{\"\"view\"\":7,\"\"checkin\"\":2}\""
        );
        assert_eq!(lines[2], "summer,1,10,0,0,0,,,0,0,0,,,0,0,,,", "rates over nothing are empty");
        assert_eq!(lines.len(), 3, "no totals row in csv");
    }

    #[test]
    fn message_csv_names_campaign_and_channel() {
        let report = StatsReport::from_messages(message_list()).unwrap();
        let text = render_stats(&report).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].starts_with("msg_hash,campaign_id,channel,sent,"), "{}", lines[0]);
        assert_eq!(lines[1], "m1,spring,PUSH,50,40,10,2,0.2500,0.0500,0,3,100,0.3000,33.33,\"{\"\"view\"\":3}\"");
        assert_eq!(lines[2], "m9,,,0,0,0,0,,,0,0,0,,,\"{\"\"view\"\":1}\"");
    }

    #[test]
    fn a_goal_missing_from_a_row_reads_as_zero() {
        let mut list = campaign_list();
        list.campaigns[1].goals.truncate(1);
        let report = StatsReport::from_campaigns(list).unwrap();
        let text = render_stats(&report).unwrap();
        assert_eq!(text.lines().nth(2), Some("summer,1,10,0,0,0,,,0,0,0,,,0,0,,,"));
    }

    #[test]
    fn fields_with_commas_are_quoted() {
        let mut list = campaign_list();
        list.campaigns[0].campaign_id = "spring, 2025".into();
        let report = StatsReport::from_campaigns(list).unwrap();
        assert!(render_stats(&report).unwrap().lines().nth(1).unwrap().starts_with("\"spring, 2025\",2,"));
    }

    #[test]
    fn client_text_never_runs_as_a_formula_and_hits_read_back_exactly() {
        let mut list = campaign_list();
        list.campaigns[0].campaign_id = "=HYPERLINK(\"http://evil\",\"x\")".into();
        let report = StatsReport::from_campaigns(list).unwrap();
        let text = render_stats(&report).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let row = reader.records().next().unwrap().unwrap();
        assert_eq!(&row[0], "'=HYPERLINK(\"http://evil\",\"x\")");
        let hits: serde_json::Value = serde_json::from_str(&row[row.len() - 1]).unwrap();
        assert_eq!(hits, serde_json::json!({"view": 7, "checkin": 2}));
        for (cell, safe) in [("+1", "'+1"), ("-x", "'-x"), ("@sum", "'@sum"), ("\tx", "'\tx"), ("plain", "plain"), ("", "")] {
            assert_eq!(text_cell(cell), safe);
        }
    }

    #[test]
    fn goal_csv_splits_by_rule_with_a_total() {
        let text = render_goals(&goal_rows(goal_kpis()).unwrap()).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], GOAL_HEADER.join(","));
        assert_eq!(lines[1], "orders,2,250.5,3,100,5,0.25,10,350.75");
        assert_eq!(lines[2], "checkin,0,0,0,0,4,0,4,0");
    }
}
