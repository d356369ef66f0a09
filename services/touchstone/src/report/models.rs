//! `touchstone report models`: every attribution model side by side per campaign and goal,
//! as SPEC section 8's JSON (`conversions` a number of up to 6 decimals) or a table.

use super::table::{Align, Table};
use serde_json::{Map, Value, json};
use touchstone_proto::v1 as pb;

/// A model as reports name it: `last_touch`, `time_decay`, …
pub fn model_name(model: i32) -> String {
    super::explain::name(pb::AttributionModel::try_from(model).map(|m| m.as_str_name()), "ATTRIBUTION_MODEL_").to_lowercase()
}

/// Parts per million as a JSON number with up to 6 decimals (`2.333333`, `1`).
pub fn ppm_number(ppm: u64) -> Value {
    let text = format!("{}.{:06}", ppm / 1_000_000, ppm % 1_000_000);
    let text = text.trim_end_matches('0').trim_end_matches('.');
    serde_json::from_str(text).unwrap_or(Value::Null)
}

/// Values as the other reports write them: the decimal as a JSON number.
fn value(value: Option<&pb::Decimal>) -> Value {
    serde_json::from_str(value.map_or("0", |decimal| decimal.value.as_str())).unwrap_or(Value::Null)
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
                    .map(|figures| (model_name(figures.model), json!({"conversions": ppm_number(figures.conversions_ppm), "value": value(figures.value.as_ref())})))
                    .collect();
                json!({"campaign_id": row.campaign_id, "goal_id": row.goal_id, "models": models})
            })
            .collect(),
    )
}

/// A row per campaign and goal, each model's conversions and value in a column pair.
pub fn models_table(report: &pb::ModelReport) -> String {
    let names: Vec<String> = report.rows.first().map(|row| row.models.iter().map(|f| model_name(f.model)).collect()).unwrap_or_default();
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
            cells.push(value(figures.value.as_ref()).to_string());
        }
        table.push(cells);
    }
    table.render()
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
