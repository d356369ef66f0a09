//! The console's pages: the goals page: every goal's KPIs by rule and its credited campaigns.

use super::*;

fn tally_figures(tally: Option<&pb::Tally>, currency: &str, money: bool) -> (Figure, Figure) {
    let tally = tally.cloned().unwrap_or_default();
    (Figure::count(tally.conversions), Figure::value(&decimal(tally.value.as_ref()), currency, money))
}

pub async fn goals(State(console): State<Arc<Console>>, Path(tenant): Path<String>, Query(params): Query<Params>, headers: HeaderMap) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "goals", &params).await?;
    let range = nav.range.pb();
    let kpis = console.query.get_goal_kpis(call(pb::GoalKpisRequest { tenant: tenant.clone(), range, goal_id: None, model: 0 }, &caller)).await?.into_inner();
    let config = console.config(&tenant).await?;
    let money = money_goals(&config);
    let currency = &config.currency;
    let time_zone = params.tz.clone().filter(|tz| !tz.is_empty()).unwrap_or_else(|| "UTC".to_owned());
    let series_goal = params.goal.clone().or_else(|| config.goals.first().map(|goal| goal.id.clone())).unwrap_or_default();
    let goals = kpis
        .goals
        .into_iter()
        .map(|goal| {
            let is_money = money.get(&goal.goal_id).copied().unwrap_or(false);
            GoalView {
                kind: if is_money { "orders" } else { "events" },
                explicit: tally_figures(goal.explicit.as_ref(), currency, is_money),
                last_touch: tally_figures(goal.last_touch.as_ref(), currency, is_money),
                unattributed: tally_figures(goal.unattributed.as_ref(), currency, is_money),
                campaigns: goal
                    .campaigns
                    .iter()
                    .map(|c| {
                        let (conversions, value) = tally_figures(c.tally.as_ref(), currency, is_money);
                        (c.campaign_id.clone(), conversions, value)
                    })
                    .collect(),
                no_campaign: tally_figures(goal.no_campaign.as_ref(), currency, is_money),
                series_href: format!("/t/{}/goals?{}&tz={}&goal={}", encode(&tenant), nav.range.query, encode(&time_zone), encode(&goal.goal_id)),
                goal_id: goal.goal_id,
            }
        })
        .collect();
    // The daily series in the chosen time zone: local days covering the range (an "all
    // time" page: the last days a series covers, from the first holding data).
    let (series_range, cut) = nav.range.series();
    let request = pb::GoalSeriesRequest { tenant: tenant.clone(), goal_id: series_goal.clone(), range: series_range, time_zone: time_zone.clone() };
    let (series, series_rows) = match console.query.get_goal_series(call(request, &caller)).await {
        Ok(reply) => {
            let mut points = reply.into_inner().points;
            if cut {
                let converted = |tally: Option<&pb::Tally>| tally.is_some_and(|tally| tally.conversions != 0);
                from_first_with_data(&mut points, |p| converted(p.explicit.as_ref()) || converted(p.last_touch.as_ref()) || converted(p.unattributed.as_ref()));
            }
            let dates: Vec<String> = points.iter().map(|p| p.date.clone()).collect();
            let line = |pick: fn(&pb::GoalSeriesPoint) -> Option<&pb::Tally>| -> Vec<f64> {
                points.iter().map(|p| pick(p).map_or(0, |t| t.conversions) as f64).collect()
            };
            let lines = [
                Series { name: "explicit", values: line(|p| p.explicit.as_ref()), color: chart::BLUE_LINE },
                Series { name: "last touch", values: line(|p| p.last_touch.as_ref()), color: chart::GREEN_LINE },
                Series { name: "unattributed", values: line(|p| p.unattributed.as_ref()), color: chart::GREY_LINE },
            ];
            let svg = chart::daily(chart::WIDE, &dates, &lines, &|v| format!("{v:.0}"));
            let rows = points
                .iter()
                .map(|p| SeriesRow {
                    date: p.date.clone(),
                    explicit: Figure::count(p.explicit.as_ref().map_or(0, |t| t.conversions)),
                    last_touch: Figure::count(p.last_touch.as_ref().map_or(0, |t| t.conversions)),
                    unattributed: Figure::count(p.unattributed.as_ref().map_or(0, |t| t.conversions)),
                })
                .collect();
            let title = if cut {
                format!("Conversions of {series_goal} per day ({time_zone}; the last {} days of the range)", touchstone_core::report::MAX_SERIES_DAYS)
            } else {
                format!("Conversions of {series_goal} per day ({time_zone})")
            };
            (Some(ChartView { title, svg }), rows)
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => return Err(PageError::BadRequest(status.message().to_owned())),
        Err(status) => return Err(status.into()),
    };
    Ok(html(&GoalsPage { nav, time_zone, goals, series_goal, series, series_rows }).into_response())
}
