//! The JSON output of docs/behaviour/reports.md, exactly: campaign and message rows with touches,
//! event hits and per-goal conversions; goal rows with the split by rule. Values are JSON
//! numbers written from the exact decimal (`12.5`, `100`). Keys come out sorted
//! (serde_json's map without `preserve_order`), which keeps the output deterministic.

use crate::rows::{GoalRow, StatsKind, StatsReport, StatsRow, Subject, Tally, Touches};
use serde_json::{Map, Value, json};
use touchstone_core::report::value_json;

/// `[{"campaign_id" | "msg_hash", "sent", …, "event_hits": {…}, "goals": {…}}, …]`.
pub fn stats_json(report: &StatsReport) -> Value {
    Value::Array(report.rows.iter().map(|row| stats_row_json(report.kind, row)).collect())
}

/// The row of a campaign or message with no activity: zero counters, no event hits, no goals.
pub fn empty_stats_row_json(kind: StatsKind, id: &str) -> Value {
    let subject = match kind {
        StatsKind::Campaigns => Subject::Campaign { campaign_id: id.to_owned(), messages: 0 },
        StatsKind::Messages => Subject::Message { msg_hash: id.to_owned(), campaign_id: String::new(), channel: None, registered: false },
    };
    stats_row_json(kind, &StatsRow { subject, touches: Touches::default(), event_hits: Vec::new(), goals: Vec::new() })
}

fn stats_row_json(kind: StatsKind, row: &StatsRow) -> Value {
    let event_hits: Map<String, Value> =
        row.event_hits.iter().map(|(name, hits)| (name.clone(), json!(hits))).collect();
    let goals: Map<String, Value> = row
        .goals
        .iter()
        .map(|cell| {
            let tally = Tally { conversions: cell.conversions, value_micros: cell.value_micros };
            (cell.goal_id.clone(), tally_json(tally))
        })
        .collect();
    let mut object = Map::new();
    object.insert(kind.id_key().to_owned(), json!(row.id()));
    object.insert("sent".to_owned(), json!(row.touches.sent));
    object.insert("delivered".to_owned(), json!(row.touches.delivered));
    object.insert("opened".to_owned(), json!(row.touches.opened));
    object.insert("clicked".to_owned(), json!(row.touches.clicked));
    object.insert("event_hits".to_owned(), Value::Object(event_hits));
    object.insert("goals".to_owned(), Value::Object(goals));
    Value::Object(object)
}

/// `[{"goal_id", "explicit": {…}, "last_touch": {…}, "unattributed": {…}}, …]`.
pub fn goals_json(rows: &[GoalRow]) -> Value {
    Value::Array(
        rows.iter()
            .map(|row| {
                json!({
                    "goal_id": row.goal_id,
                    "explicit": tally_json(row.explicit),
                    "last_touch": tally_json(row.last_touch),
                    "unattributed": tally_json(row.unattributed),
                })
            })
            .collect(),
    )
}

fn tally_json(tally: Tally) -> Value {
    json!({"conversions": tally.conversions, "value": value_json(tally.value_micros)})
}

/// Pretty-printed, with a final newline.
pub fn render(value: &Value) -> Result<String, serde_json::Error> {
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use crate::rows::fixtures::*;
    use crate::rows::goal_rows;
    use super::*;

    #[test]
    fn campaign_rows_have_exactly_the_spec_shape() {
        let report = StatsReport::from_campaigns(campaign_list()).unwrap();
        let expected = json!([
            {"campaign_id": "spring", "sent": 100, "delivered": 80, "opened": 20, "clicked": 5,
             "event_hits": {"view": 7, "checkin": 2},
             "goals": {"orders": {"conversions": 4, "value": 5000}, "checkin": {"conversions": 1, "value": 12.5}}},
            {"campaign_id": "summer", "sent": 10, "delivered": 0, "opened": 0, "clicked": 0,
             "event_hits": {},
             "goals": {"orders": {"conversions": 0, "value": 0}, "checkin": {"conversions": 0, "value": 0}}},
        ]);
        assert_eq!(stats_json(&report), expected);
    }

    #[test]
    fn values_print_as_integers_when_whole_and_exact_decimals_otherwise() {
        let report = StatsReport::from_campaigns(campaign_list()).unwrap();
        let text = render(&stats_json(&report)).unwrap();
        assert!(text.contains(r#""value": 5000"#), "{text}");
        assert!(text.contains(r#""value": 12.5"#), "{text}");
        assert!(!text.contains("5000.0"), "{text}");
        assert!(text.ends_with("]\n"));
    }

    #[test]
    fn message_rows_are_keyed_by_msg_hash_and_carry_no_extra_fields() {
        let report = StatsReport::from_messages(message_list()).unwrap();
        let value = stats_json(&report);
        let first = value[0].as_object().unwrap();
        let keys: Vec<&str> = first.keys().map(String::as_str).collect();
        assert_eq!(keys, ["clicked", "delivered", "event_hits", "goals", "msg_hash", "opened", "sent"]);
        assert_eq!(value[0]["msg_hash"], "m1");
        assert_eq!(value[1]["msg_hash"], "m9");
        assert_eq!(value[0]["goals"]["orders"], json!({"conversions": 3, "value": 100}));
    }

    #[test]
    fn goal_rows_have_exactly_the_spec_shape() {
        let rows = goal_rows(goal_kpis()).unwrap();
        let expected = json!([
            {"goal_id": "orders", "explicit": {"conversions": 2, "value": 250.5},
             "last_touch": {"conversions": 3, "value": 100}, "unattributed": {"conversions": 5, "value": 0.25}},
            {"goal_id": "checkin", "explicit": {"conversions": 0, "value": 0},
             "last_touch": {"conversions": 0, "value": 0}, "unattributed": {"conversions": 4, "value": 0}},
        ]);
        assert_eq!(goals_json(&rows), expected);
    }

    #[test]
    fn an_empty_report_is_an_empty_array() {
        let report = StatsReport { kind: StatsKind::Messages, rows: vec![], totals: None, units: Default::default() };
        assert_eq!(render(&stats_json(&report)).unwrap(), "[]\n");
    }
}
