//! The console's pages: one conversion explained: the rule, the time line of candidate touches, every model's split.

use super::*;

fn rule_name(rule: i32) -> String {
    enum_name(pb::AttributionRule::try_from(rule).map(|rule| rule.as_str_name()), "ATTRIBUTION_RULE_").replace('_', " ")
}

/// A proto enum value's name without its prefix, lower case (`CANDIDATE_VERDICT_WON`: "won").
fn enum_name<E>(name: Result<&'static str, E>, prefix: &str) -> String {
    touchstone_reports::explain::name(name, prefix).to_lowercase()
}

/// A touch kind as the behaviour docs name it, lower case ("opened").
fn touch_name(touch: i32) -> String {
    touch_kind_from_pb("touch", touch).map_or_else(|_| "unknown".to_owned(), |kind| kind.as_str().to_lowercase())
}

pub async fn explain(State(console): State<Arc<Console>>, Path(tenant): Path<String>, Query(params): Query<Params>, headers: HeaderMap) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "explain", &params).await?;
    let config = console.config(&tenant).await?;
    let money = money_goals(&config);
    let (goals, goal_id) = goal_choice(&config, &params);
    let key = params.key.clone().unwrap_or_default();
    let (mut result, mut problem) = (None, None);
    if !key.is_empty() {
        let request = pb::ExplainConversionRequest { tenant: tenant.clone(), goal_id: goal_id.clone(), conversion_key: key.clone() };
        match console.query.explain_conversion(call(request, &caller)).await {
            Ok(reply) => {
                let e = reply.into_inner();
                let marks: Vec<Mark> = e
                    .candidates
                    .iter()
                    .map(|c| Mark {
                        ts: c.ts,
                        label: format!("{} {}", touch_name(c.touch), c.msg_hash.chars().take(10).collect::<String>()),
                        highlighted: c.verdict == pb::CandidateVerdict::Won as i32,
                    })
                    .collect();
                let is_money = money.get(&e.goal_id).copied().unwrap_or(false);
                let models = model_share_views(&e.models, &config.currency, is_money);
                result = Some(ExplainView {
                    customer_id: e.customer_id.clone(),
                    ts: time(e.ts),
                    value: Figure::value(&decimal(e.value.as_ref()), &config.currency, is_money),
                    rule: rule_name(e.rule),
                    decision: e.decision.clone(),
                    credited_msg_hash: e.credited_msg_hash.clone(),
                    credited_campaign_id: e.credited_campaign_id.clone(),
                    explicit_msg_hash: e.explicit_msg_hash.clone().unwrap_or_default(),
                    explicit_status: e.explicit_status.clone(),
                    timeline_svg: chart::timeline(&marks, e.ts),
                    candidates: e
                        .candidates
                        .into_iter()
                        .map(|c| CandidateView {
                            ts: time(c.ts),
                            ts_ms: c.ts,
                            event_id: c.event_id,
                            msg_hash: c.msg_hash,
                            touch: touch_name(c.touch),
                            verdict: enum_name(pb::CandidateVerdict::try_from(c.verdict).map(|v| v.as_str_name()), "CANDIDATE_VERDICT_"),
                            reason: c.reason,
                        })
                        .collect(),
                    models,
                });
            }
            Err(status) if status.code() == tonic::Code::NotFound || status.code() == tonic::Code::InvalidArgument => {
                problem = Some(status.message().to_owned());
            }
            Err(status) => return Err(status.into()),
        }
    }
    Ok(html(&ExplainPage { nav, goals, goal_id, key, result, problem }).into_response())
}

/// Each model's shares as rows; a model with none reads "unattributed".
fn model_share_views(models: &[pb::ModelCredit], currency: &str, money: bool) -> Vec<ModelShareView> {
    let mut rows = Vec::new();
    for credit in models {
        let model = model_name(credit.model).to_owned();
        if credit.shares.is_empty() {
            let none = Figure { text: "–".into(), raw: "0".into() };
            rows.push(ModelShareView { model: model.clone(), msg_hash: String::new(), campaign_id: String::new(), share: none.clone(), value: none });
        }
        for share in &credit.shares {
            rows.push(ModelShareView {
                model: model.clone(),
                msg_hash: share.msg_hash.clone(),
                campaign_id: share.campaign_id.clone(),
                share: Figure { text: format!("{:.4}%", f64::from(share.ppm) / 10_000.0), raw: share.ppm.to_string() },
                value: Figure::value(&decimal(share.value.as_ref()), currency, money),
            });
        }
    }
    rows
}
