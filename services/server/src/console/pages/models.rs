//! The console's pages: every attribution model side by side, per campaign and goal.

use super::*;

/// Every attribution model side by side for a goal (the default first): each campaign's
/// conversions and value under each, as bars and a table.
pub async fn models(State(console): State<Arc<Console>>, Path(tenant): Path<String>, Query(params): Query<Params>, headers: HeaderMap) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "models", &params).await?;
    let config = console.config(&tenant).await?;
    let (goals, goal_id) = goal_choice(&config, &params);
    let money = money_goals(&config).get(&goal_id).copied().unwrap_or(false);
    let request = pb::ModelReportRequest {
        tenant: tenant.clone(),
        range: nav.range.pb(),
        goal_id: Some(goal_id.clone()),
        by_message: false,
        campaign_id: None,
    };
    let report = console.query.get_model_report(call(request, &caller)).await?.into_inner();
    let rows: Vec<(String, pb::ModelRow)> = report.rows.into_iter().map(|row| (row.campaign_id.clone(), row)).collect();
    let (models, rows, chart_svg) = model_table(rows, |_| money, &config.currency);
    Ok(html(&ModelsPage { nav, goals, goal_id, models, rows, chart_svg }).into_response())
}

/// Rows of a model report, each under its id, as a table (conversions and value under
/// each model) and grouped bars; `money` says which goals' values are money.
pub(super) fn model_table(rows: Vec<(String, pb::ModelRow)>, money: impl Fn(&str) -> bool, currency: &str) -> (Vec<String>, Vec<ModelsRow>, String) {
    let models: Vec<String> = rows.first().map(|(_, row)| row.models.iter().map(|f| model_name(f.model).to_owned()).collect()).unwrap_or_default();
    let mut bars = Vec::new();
    let rows = rows
        .into_iter()
        .map(|(id, row)| {
            bars.push((id.clone(), row.models.iter().map(|f| f.conversions_ppm as f64 / 1e6).collect::<Vec<f64>>()));
            let money = money(&row.goal_id);
            let cells = row
                .models
                .iter()
                .map(|f| {
                    let conversions = f.conversions_ppm as f64 / 1e6;
                    (
                        Figure { text: format!("{conversions:.2}"), raw: conversions.to_string() },
                        Figure::value(&decimal(f.value.as_ref()), currency, money),
                    )
                })
                .collect();
            ModelsRow { id, cells }
        })
        .collect();
    let chart_svg = chart::grouped_bars(&bars, &models);
    (models, rows, chart_svg)
}
