//! `touchstone report models`: every attribution model side by side per campaign and goal,
//! as SPEC section 8's JSON (`conversions` a number of up to 6 decimals) or a table.

use super::explain::decimal;
use super::rows::StatsKind;
use super::table::{Align, Table};
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
                    .map(|figures| (model_name(figures.model).to_owned(), json!({"conversions": ppm_number(figures.conversions_ppm), "value": decimal(figures.value.as_ref())})))
                    .collect();
                json!({"campaign_id": row.campaign_id, "goal_id": row.goal_id, "models": models})
            })
            .collect(),
    )
}

/// A row per campaign and goal, each model's conversions and value in a column pair.
pub fn models_table(report: &pb::ModelReport) -> String {
    let names: Vec<String> = report.rows.first().map(|row| row.models.iter().map(|f| model_name(f.model).to_owned()).collect()).unwrap_or_default();
    let mut columns = vec![("campaign".to_owned(), Align::Left), ("goal".to_owned(), Align::Left)];
    for name in &names {
        columns.push((format!("{name} conv."), Align::Right));
        columns.push((format!("{name} value"), Align::Right));
    }
    let mut table = Table::new(columns);
    for row in &report.rows {
        let mut cells = vec![row.campaign_id.clone(), row.goal_id.clone()];
        for figures in &row.models {
            cells.push(ppm_number(figures.conversions_ppm).to_string());
            cells.push(decimal(figures.value.as_ref()).to_string());
        }
        table.push(cells);
    }
    table.render()
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
                let credited_value = figures.map_or(json!(0), |figures| decimal(figures.value.as_ref()));
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
        };
        assert_eq!(
            models_json(&report),
            json!([{"campaign_id": "spring", "goal_id": "orders", "models": {
                "last_touch": {"conversions": 2, "value": 300}, "linear": {"conversions": 2.333333, "value": 12.5}}}])
        );
        let table = models_table(&report);
        assert!(table.contains("linear conv.") && table.contains("2.333333"), "{table}");
    }
}
