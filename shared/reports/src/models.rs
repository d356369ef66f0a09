//! `touchstone report models`: every attribution model side by side per campaign and goal,
//! as the JSON of docs/behaviour/reports.md (`conversions` a number of up to 6 decimals) or a table.

use crate::rows::{ReplyError, StatsKind, Units, ValueUnit, decimal_json, decimal_micros};
use crate::table::{Align, Table, value_cell};
use touchstone_core::currency::group_thousands;
use serde_json::{Map, Value, json};
use touchstone_core::models::Model;
use touchstone_proto::convert::model_from_pb;
use touchstone_proto::v1 as pb;

/// A model of the wire as reports name it (`last_touch`, `time_decay`, …); `unknown` for a
/// value this build does not know.
pub fn model_name(model: i32) -> &'static str {
    model_from_pb(model).map_or("unknown", Model::as_str)
}

/// Parts per million as a JSON number with up to 6 decimals (`2.333333`, `1`).
pub fn ppm_number(ppm: u64) -> Value {
    let text = format!("{}.{:06}", ppm / 1_000_000, ppm % 1_000_000);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// `[{"campaign_id", "goal_id", "models": {"<model>": {"conversions", "value"}}}, …]`.
pub fn models_json(report: &pb::ModelReport) -> Value {
    Value::Array(
        report
            .rows
            .iter()
            .map(|row| {
                let models: Map<String, Value> = row
                    .models
                    .iter()
                    .map(|figures| (model_name(figures.model).to_owned(), json!({"conversions": ppm_number(figures.conversions_ppm), "value": decimal_json(figures.value.as_ref())})))
                    .collect();
                json!({"campaign_id": row.campaign_id, "goal_id": row.goal_id, "models": models})
            })
            .collect(),
    )
}

/// Per goal, the campaigns (or messages) by model twice: conversions (to two decimals; JSON
/// keeps six), then value (money in major units for an ORDER goal). One wide row per
/// campaign would not fit a terminal.
pub fn models_table(report: &pb::ModelReport) -> Result<String, ReplyError> {
    let units = Units::from_pb(report.units.clone());
    let models: Vec<i32> = report.rows.first().map(|row| row.models.iter().map(|figures| figures.model).collect()).unwrap_or_default();
    let by_message = report.rows.first().is_some_and(|row| row.campaign_id.is_empty() && !row.msg_hash.is_empty());
    let mut goals: Vec<&str> = Vec::new();
    for row in &report.rows {
        if !goals.contains(&row.goal_id.as_str()) {
            goals.push(&row.goal_id);
        }
    }
    let columns = || {
        let subject = if by_message { "MESSAGE" } else { "CAMPAIGN" };
        let titles = models.iter().map(|&model| (model_name(model).replace('_', " ").to_uppercase(), Align::Right));
        std::iter::once((subject.to_owned(), Align::Left)).chain(titles).collect::<Vec<_>>()
    };
    let mut text = String::new();
    for goal_id in goals {
        let unit = units.of(goal_id);
        let (mut conversions, mut values) = (Table::new(columns()), Table::new(columns()));
        for row in report.rows.iter().filter(|row| row.goal_id == goal_id) {
            let subject = if by_message { &row.msg_hash } else { &row.campaign_id };
            let mut counts = vec![subject.clone()];
            let mut amounts = vec![subject.clone()];
            for figures in &row.models {
                counts.push(ppm_text(figures.conversions_ppm));
                let micros = decimal_micros(figures.value.as_ref(), || format!("{subject} {goal_id} value"))?;
                amounts.push(value_cell(micros, unit));
            }
            conversions.push(counts);
            values.push(amounts);
        }
        let value = if matches!(unit, ValueUnit::Money(_)) { "revenue" } else { "value" };
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(&format!("{goal_id}: conversions by model\n{}\n{goal_id}: {value} by model\n{}", conversions.render(), values.render()));
    }
    Ok(text)
}

/// Parts per million as a count people read: whole, or to two decimals (`20.58`).
fn ppm_text(ppm: u64) -> String {
    if ppm.is_multiple_of(1_000_000) {
        return group_thousands(u128::from(ppm / 1_000_000));
    }
    let hundredths = (ppm + 5_000) / 10_000;
    format!("{}.{:02}", group_thousands(u128::from(hundredths / 100)), hundredths % 100)
}

/// A campaign or message report's JSON (`stats`) with each goal's conversions and value
/// replaced by their credit under `model`; a campaign or message credited under it but
/// without activity in the range gets a row of zero counters. Rows by id.
pub fn under_model(stats: Value, credit: &pb::ModelReport, model: &str, by_message: bool) -> Value {
    let kind = if by_message { StatsKind::Messages } else { StatsKind::Campaigns };
    let id_key = kind.id_key();
    let mut credited: std::collections::BTreeMap<(String, String), &pb::ModelFigures> = std::collections::BTreeMap::new();
    for row in &credit.rows {
        let id = if by_message { &row.msg_hash } else { &row.campaign_id };
        if let Some(figures) = row.models.iter().find(|figures| model_name(figures.model) == model) {
            credited.insert((id.clone(), row.goal_id.clone()), figures);
        }
    }
    let mut rows: std::collections::BTreeMap<String, Value> = match stats {
        Value::Array(rows) => rows.into_iter().map(|row| (row[id_key].as_str().unwrap_or_default().to_owned(), row)).collect(),
        _ => Default::default(),
    };
    let mut goal_ids: std::collections::BTreeSet<String> =
        rows.values().flat_map(|row| row["goals"].as_object().map(|goals| goals.keys().cloned().collect::<Vec<_>>()).unwrap_or_default()).collect();
    for ((id, goal_id), figures) in &credited {
        goal_ids.insert(goal_id.clone());
        if figures.conversions_ppm > 0 {
            rows.entry(id.clone()).or_insert_with(|| super::json::empty_stats_row_json(kind, id));
        }
    }
    for (id, row) in &mut rows {
        let goals: Map<String, Value> = goal_ids
            .iter()
            .map(|goal_id| {
                let figures = credited.get(&(id.clone(), goal_id.clone()));
                let conversions = figures.map_or(json!(0), |figures| ppm_number(figures.conversions_ppm));
                let credited_value = figures.map_or(json!(0), |figures| decimal_json(figures.value.as_ref()));
                (goal_id.clone(), json!({"conversions": conversions, "value": credited_value}))
            })
            .collect();
        row["goals"] = Value::Object(goals);
    }
    Value::Array(rows.into_values().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_carry_every_model_with_decimal_conversions() {
        let figures = |model: pb::AttributionModel, ppm: u64, value: &str| pb::ModelFigures {
            model: model as i32,
            conversions_ppm: ppm,
            value: Some(pb::Decimal { value: value.into() }),
        };
        let report = pb::ModelReport {
            rows: vec![pb::ModelRow {
                campaign_id: "spring".into(),
                msg_hash: String::new(),
                goal_id: "orders".into(),
                models: vec![figures(pb::AttributionModel::LastTouch, 2_000_000, "300"), figures(pb::AttributionModel::Linear, 2_333_333, "12.5")],
            }],
            units: None,
        };
        assert_eq!(
            models_json(&report),
            json!([{"campaign_id": "spring", "goal_id": "orders", "models": {
                "last_touch": {"conversions": 2, "value": 300}, "linear": {"conversions": 2.333333, "value": 12.5}}}])
        );
        let table = models_table(&report).unwrap();
        assert!(table.contains("orders: conversions by model") && table.contains("LINEAR") && table.contains("2.33"), "{table}");
        assert!(table.contains("orders: value by model") && table.contains("12.5"), "no units: plain values\n{table}");
        let orders = pb::Goal { id: "orders".into(), kind: pb::GoalKind::Order.into(), ..Default::default() };
        let units = Some(pb::ReportUnits { currency: "USD".into(), goals: vec![orders] });
        let table = models_table(&pb::ModelReport { units, ..report }).unwrap();
        assert!(table.contains("orders: revenue by model") && table.contains("3.00 USD") && table.contains("0.13 USD"), "{table}");
        assert_eq!(ppm_text(20_583_333), "20.58");
        assert_eq!(ppm_text(1_234_000_000), "1,234");
    }
}
