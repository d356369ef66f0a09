//! `touchstone report lift`: a campaign's lift as the JSON object of docs/behaviour/reports.md (every
//! key present, a figure that cannot be computed `null`) or a table a marketer reads.

use crate::rows::Units;
use crate::table::approximate_value;
use serde_json::{Value, json};
use touchstone_proto::v1 as pb;

/// `{"campaign_id", "goal_id", "n_t", …, "enough_data"}`.
pub fn lift_json(report: &pb::LiftReport) -> Value {
    let pb::LiftReport {
        campaign_id,
        goal_id,
        n_t,
        converted_t,
        n_c,
        converted_c,
        contaminated,
        r_t,
        r_c,
        diff,
        diff_low,
        diff_high,
        lift,
        p_value,
        incremental_conversions,
        value_per_customer_t,
        value_per_customer_c,
        value_diff,
        value_diff_low,
        value_diff_high,
        enough_data,
        units: _,
    } = report;
    json!({
        "campaign_id": campaign_id,
        "goal_id": goal_id,
        "n_t": n_t,
        "converted_t": converted_t,
        "n_c": n_c,
        "converted_c": converted_c,
        "contaminated": contaminated,
        "r_t": r_t,
        "r_c": r_c,
        "diff": diff,
        "diff_low": diff_low,
        "diff_high": diff_high,
        "lift": lift,
        "p_value": p_value,
        "incremental_conversions": incremental_conversions,
        "value_per_customer_t": value_per_customer_t,
        "value_per_customer_c": value_per_customer_c,
        "value_diff": value_diff,
        "value_diff_low": value_diff_low,
        "value_diff_high": value_diff_high,
        "enough_data": enough_data,
    })
}

/// The groups side by side, the difference with its interval, and the warning when the
/// data are too few for the interval to mean much. Values are money in major units for an
/// ORDER goal, as people read them (JSON keeps minor units).
pub fn lift_table(report: &pb::LiftReport) -> String {
    let units = Units::from_pb(report.units.clone());
    let unit = units.of(&report.goal_id);
    let percent = |rate: Option<f64>| rate.map_or_else(|| "-".to_owned(), |rate| format!("{:.2}%", rate * 100.0));
    let number = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |value| format!("{value:.2}"));
    let value = |value: Option<f64>| value.map_or_else(|| "-".to_owned(), |value| approximate_value(value, unit));
    let interval = |low: Option<f64>, high: Option<f64>, show: &dyn Fn(Option<f64>) -> String| match (low, high) {
        (Some(_), Some(_)) => format!("[{}, {}]", show(low), show(high)),
        _ => "-".to_owned(),
    };
    let mut lines = vec![
        format!("campaign {}, goal {}", report.campaign_id, report.goal_id),
        format!("{:<24} {:>14} {:>14}", "", "treatment", "control"),
        format!("{:<24} {:>14} {:>14}", "customers", report.n_t, report.n_c),
        format!("{:<24} {:>14} {:>14}", "converted", report.converted_t, report.converted_c),
        format!("{:<24} {:>14} {:>14}", "conversion rate", percent(report.r_t), percent(report.r_c)),
        format!("{:<24} {:>14} {:>14}", "value per customer", value(report.value_per_customer_t), value(report.value_per_customer_c)),
        String::new(),
        format!("{:<24} {} {}", "difference in rate", percent(report.diff), interval(report.diff_low, report.diff_high, &percent)),
        format!("{:<24} {}", "relative lift", percent(report.lift)),
        format!("{:<24} {}", "p-value", report.p_value.map_or_else(|| "-".to_owned(), |p| format!("{p:.4}"))),
        format!("{:<24} {}", "incremental conversions", number(report.incremental_conversions)),
        format!("{:<24} {} {}", "difference in value", value(report.value_diff), interval(report.value_diff_low, report.value_diff_high, &value)),
        format!("{:<24} {}", "in both groups (left out)", report.contaminated),
    ];
    if !report.enough_data {
        lines.push(String::new());
        lines.push("warning: not enough data for these intervals to be reliable".to_owned());
        lines.push("(they need 1,000 customers in control and 10 of each outcome in each group)".to_owned());
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_is_present_and_what_cannot_be_computed_is_null() {
        let report = pb::LiftReport {
            campaign_id: "spring".into(),
            goal_id: "orders".into(),
            n_t: 2,
            converted_t: 1,
            r_t: Some(0.5),
            value_per_customer_t: Some(50.0),
            ..Default::default()
        };
        let value = lift_json(&report);
        let keys: Vec<&str> = value.as_object().unwrap().keys().map(String::as_str).collect();
        let mut expected = vec![
            "campaign_id", "goal_id", "n_t", "converted_t", "n_c", "converted_c", "contaminated", "r_t", "r_c", "diff", "diff_low",
            "diff_high", "lift", "p_value", "incremental_conversions", "value_per_customer_t", "value_per_customer_c", "value_diff",
            "value_diff_low", "value_diff_high", "enough_data",
        ];
        expected.sort_unstable();
        assert_eq!(keys, expected);
        assert_eq!(value["r_t"], json!(0.5));
        assert_eq!(value["r_c"], Value::Null);
        assert_eq!(value["n_c"], json!(0));
        assert_eq!(value["enough_data"], json!(false));
        let table = lift_table(&report);
        assert!(table.contains("50.00%") && table.contains("warning: not enough data"), "{table}");
        assert!(table.contains("50.00") && !table.contains("USD"), "no units: values as they are\n{table}");
        // An ORDER goal's values are money in major units.
        let orders = pb::Goal { id: "orders".into(), kind: pb::GoalKind::Order.into(), ..Default::default() };
        let units = Some(pb::ReportUnits { currency: "USD".into(), goals: vec![orders] });
        let table = lift_table(&pb::LiftReport { value_per_customer_t: Some(417_851.0), units, ..report });
        assert!(table.contains("4,178.51 USD"), "{table}");
        assert!(table.lines().all(|line| line.chars().count() <= 120), "{table}");
    }
}
