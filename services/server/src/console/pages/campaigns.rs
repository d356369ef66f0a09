//! The console's pages: the campaigns table (and its CSV), one campaign's page with its charts, models and lift panel.

use super::*;
use super::models::model_table;

/// A campaign row's value for sorting by `key`.
fn sort_key(row: &CampaignRow, key: &str) -> Result<f64, String> {
    let number = |figure: &Figure| figure.raw.parse::<f64>().unwrap_or(0.0);
    Ok(match key {
        "messages" => number(&row.messages),
        "sent" => number(&row.sent),
        "delivered" => number(&row.delivered),
        "opened" => number(&row.opened),
        "clicked" => number(&row.clicked),
        "conversion_rate" => number(&row.conversion_rate),
        other => {
            let cell = |prefix: &str| other.strip_prefix(prefix).and_then(|goal| row.goals.iter().find(|g| g.goal_id == goal));
            if let Some(goal) = cell("conversions:") {
                number(&goal.conversions)
            } else if let Some(goal) = cell("value:") {
                number(&goal.value)
            } else {
                return Err(row.campaign_id.clone());
            }
        }
    })
}

pub async fn campaigns(State(console): State<Arc<Console>>, Path(tenant): Path<String>, Query(params): Query<Params>, headers: HeaderMap) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "campaigns", &params).await?;
    let range = nav.range.pb();
    let list = console.query.list_campaigns(call(pb::ListCampaignsRequest { tenant: tenant.clone(), range }, &caller)).await?.into_inner();
    let config = console.config(&tenant).await?;
    let money = money_goals(&config);
    let currency = config.currency.clone();
    let default_goal = config.goals.first().map(|goal| goal.id.clone()).unwrap_or_default();
    let goal_ids: Vec<String> = config.goals.iter().map(|goal| goal.id.clone()).collect();
    let totals = list.totals.unwrap_or_default();
    let revenue = decimal(totals.revenue.as_ref());
    let totals = TotalsView {
        campaigns: Figure::count(totals.campaigns),
        purchases: Figure::count(totals.purchases),
        average_check: Figure { text: format_money((totals.average_check * 1e6) as i128, &currency), raw: totals.average_check.to_string() },
        revenue: Figure::value(&revenue, &currency, true),
    };
    let mut rows: Vec<CampaignRow> = list
        .campaigns
        .into_iter()
        .map(|campaign| {
            let counts = touches(campaign.touches.as_ref());
            let goals: Vec<GoalCells> = goal_ids
                .iter()
                .map(|goal_id| {
                    let result = goal_result(&campaign.goals, goal_id);
                    GoalCells {
                        goal_id: goal_id.clone(),
                        conversions: Figure::count(result.map_or(0, |r| r.conversions)),
                        value: Figure::value(&decimal(result.and_then(|r| r.value.as_ref())), &currency, money[goal_id]),
                    }
                })
                .collect();
            let default_conversions = goal_result(&campaign.goals, &default_goal).map_or(0, |r| r.conversions);
            CampaignRow {
                href: format!("/t/{}/campaigns/{}?{}", encode(&tenant), encode(&campaign.campaign_id), nav.range.query),
                campaign_id: campaign.campaign_id,
                messages: Figure::count(u64::from(campaign.messages)),
                sent: Figure::count(counts.sent),
                delivered: Figure::count(counts.delivered),
                opened: Figure::count(counts.opened),
                clicked: Figure::count(counts.clicked),
                conversion_rate: Figure::percent(default_conversions as f64, counts.opened as f64),
                goals,
            }
        })
        .collect();

    let sort = params.sort.clone().unwrap_or_else(|| format!("value:{default_goal}"));
    let descending = params.dir.as_deref() != Some("asc");
    rows.sort_by(|a, b| {
        let order = match (sort_key(a, &sort), sort_key(b, &sort)) {
            (Ok(x), Ok(y)) => x.total_cmp(&y),
            (Err(x), Err(y)) => x.cmp(&y),
            _ => std::cmp::Ordering::Equal,
        };
        let order = if descending { order.reverse() } else { order };
        order.then_with(|| a.campaign_id.cmp(&b.campaign_id))
    });
    let mut columns: Vec<(String, String, bool)> = vec![
        ("campaign".into(), "Campaign".into(), false),
        ("messages".into(), "Messages".into(), true),
        ("sent".into(), "Sent".into(), true),
        ("delivered".into(), "Delivered".into(), true),
        ("opened".into(), "Opened".into(), true),
        ("clicked".into(), "Clicked".into(), true),
        ("conversion_rate".into(), format!("Conv. rate ({default_goal})"), true),
    ];
    for goal_id in &goal_ids {
        columns.push((format!("conversions:{goal_id}"), format!("{goal_id} conv."), true));
        columns.push((format!("value:{goal_id}"), format!("{goal_id} {}", if money[goal_id] { "revenue" } else { "value" }), true));
    }
    let columns = columns
        .into_iter()
        .map(|(key, title, numeric)| {
            let sorted = key == sort;
            let dir = if sorted && descending { "asc" } else { "desc" };
            SortColumn {
                href: format!("/t/{}/campaigns?{}&sort={}&dir={dir}", encode(&tenant), nav.range.query, encode(&key)),
                arrow: if !sorted { "" } else if descending { " ↓" } else { " ↑" },
                key,
                title,
                numeric,
            }
        })
        .collect();
    Ok(html(&CampaignsPage { nav, currency, totals, rows, columns }).into_response())
}

/// The campaign list as CSV, exactly as `touchstone report campaigns --format csv` writes it.
pub async fn campaigns_csv(State(console): State<Arc<Console>>, Path(tenant): Path<String>, Query(params): Query<Params>, headers: HeaderMap) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let range = console.range(&tenant, &params).await?;
    let request = pb::ListCampaignsRequest { tenant: tenant.clone(), range: range.pb() };
    let list = console.query.list_campaigns(call(request, &caller)).await?.into_inner();
    let report = touchstone_reports::rows::StatsReport::from_campaigns(list).map_err(|err| PageError::Unavailable(err.to_string()))?;
    let csv = touchstone_reports::export::render_stats(&report).map_err(|err| PageError::Unavailable(err.to_string()))?;
    let disposition = format!("attachment; filename=\"{}-campaigns-{}-{}.csv\"", tenant.replace(['"', '/', '\\'], "_"), range.from, range.to);
    Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()), (header::CONTENT_DISPOSITION, disposition)], csv).into_response())
}

pub async fn campaign(
    State(console): State<Arc<Console>>,
    Path((tenant, campaign_id)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "campaigns", &params).await?;
    let config = console.config(&tenant).await?;
    let money = money_goals(&config);
    let currency = config.currency.clone();
    let default_goal = config.goals.first().map(|goal| goal.id.clone()).unwrap_or_default();
    let request = pb::CampaignStatsRequest {
        tenant: tenant.clone(),
        campaign_id: campaign_id.clone(),
        range: nav.range.pb(),
    };
    let whole = console.query.get_campaign_stats(call(request, &caller)).await?.into_inner();
    let counts = touches(whole.touches.as_ref());
    let default = goal_result(&whole.goals, &default_goal);

    // The daily charts: the campaign's series, each day what GetCampaignStats gives for it.
    // An "all time" page charts the last days a series covers, from the first holding data.
    let (series_range, cut) = nav.range.series();
    let request = pb::CampaignSeriesRequest { tenant: tenant.clone(), campaign_id: campaign_id.clone(), range: series_range, time_zone: String::new() };
    let mut points = console.query.get_campaign_series(call(request, &caller)).await?.into_inner().points;
    let days_note = if cut {
        from_first_with_data(&mut points, |point| point.stats.as_ref().is_some_and(|stats| !quiet(stats)));
        Some(format!("Days charted: the last {} days of the range, from the first holding data.", touchstone_core::report::MAX_SERIES_DAYS))
    } else {
        None
    };
    let revenue_money = money.get(&default_goal).copied().unwrap_or(true);
    let mut dates = Vec::new();
    let mut days = Vec::new();
    let (mut sent, mut opened, mut clicked, mut conversions, mut revenue) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for point in points {
        let (day, stats) = (point.from_ms, point.stats.unwrap_or_default());
        let counts = touches(stats.touches.as_ref());
        let goal = goal_result(&stats.goals, &default_goal);
        dates.push(date(day).to_string());
        days.push(DayRow {
            date: date(day).to_string(),
            day_ms: day,
            sent: Figure::count(counts.sent),
            opened: Figure::count(counts.opened),
            clicked: Figure::count(counts.clicked),
            conversions: Figure::count(goal.map_or(0, |g| g.conversions)),
            revenue: Figure::value(&decimal(goal.and_then(|g| g.value.as_ref())), &currency, revenue_money),
        });
        sent.push(counts.sent as f64);
        opened.push(counts.opened as f64);
        clicked.push(counts.clicked as f64);
        conversions.push(goal.map_or(0, |g| g.conversions) as f64);
        revenue.push(value_f64(&decimal(goal.and_then(|g| g.value.as_ref()))));
    }
    let count_label = |v: f64| format!("{v:.0}");
    // The axis in plain numbers, major units: the currency is in the chart's title, so
    // labels stay short.
    let minor_per_major = if revenue_money { 10f64.powi(minor_units(&currency).flatten().map_or(0, i32::from)) } else { 1.0 };
    let revenue_label = |v: f64| plain((v / minor_per_major * 1e6) as i128);
    let charts = vec![
        ChartView {
            title: "Touches per day".into(),
            svg: chart::daily(
                chart::SMALL,
                &dates,
                &[
                    Series { name: "sent", values: sent, color: chart::GREY_LINE },
                    Series { name: "opened", values: opened, color: chart::BLUE_LINE },
                    Series { name: "clicked", values: clicked, color: chart::ORANGE_LINE },
                ],
                &count_label,
            ),
        },
        ChartView {
            title: format!("Conversions per day ({default_goal})"),
            svg: chart::daily(chart::SMALL, &dates, &[Series { name: "conversions", values: conversions, color: chart::GREEN_LINE }], &count_label),
        },
        ChartView {
            title: if revenue_money { format!("Revenue per day ({default_goal}, {currency})") } else { format!("Revenue per day ({default_goal})") },
            svg: chart::daily(chart::SMALL, &dates, &[Series { name: "revenue", values: revenue, color: chart::BLUE_LINE }], &revenue_label),
        },
    ];

    let request = pb::ListMessageStatsRequest {
        tenant: tenant.clone(),
        range: nav.range.pb(),
        campaign_id: Some(campaign_id.clone()),
    };
    let list = console.query.list_message_stats(call(request, &caller)).await?.into_inner();
    let messages = list
        .messages
        .into_iter()
        .map(|message| {
            let counts = touches(message.touches.as_ref());
            let goal = goal_result(&message.goals, &default_goal);
            MessageRow {
                channel: channel_from_pb("channel", message.channel).map(|c| c.as_str().to_lowercase()).unwrap_or_default(),
                msg_hash: message.msg_hash,
                sent: Figure::count(counts.sent),
                delivered: Figure::count(counts.delivered),
                opened: Figure::count(counts.opened),
                clicked: Figure::count(counts.clicked),
                conversions: Figure::count(goal.map_or(0, |g| g.conversions)),
                value: Figure::value(&decimal(goal.and_then(|g| g.value.as_ref())), &currency, revenue_money),
                top_hits: message.event_hits.into_iter().take(5).map(|hit| (hit.name, Figure::count(hit.hits))).collect(),
            }
        })
        .collect();
    // Each goal's credit of this campaign under every model (its counters alone are read).
    let request = pb::ModelReportRequest {
        tenant: tenant.clone(),
        range: nav.range.pb(),
        goal_id: None,
        by_message: false,
        campaign_id: Some(campaign_id.clone()),
    };
    let report = console.query.get_model_report(call(request, &caller)).await?.into_inner();
    let goal_rows = report.rows.into_iter().map(|row| (row.goal_id.clone(), row)).collect();
    let (models, model_rows, models_svg) = model_table(goal_rows, |goal| money.get(goal).copied().unwrap_or(false), &currency);
    let lift = lift_panel(&console, &caller, &tenant, &campaign_id, &default_goal, &nav.range, &config).await?;
    let page = CampaignPage {
        nav,
        campaign_id,
        sent: Figure::count(counts.sent),
        opened: Figure::count(counts.opened),
        clicked: Figure::count(counts.clicked),
        conversions: Figure::count(default.map_or(0, |g| g.conversions)),
        revenue: Figure::value(&decimal(default.and_then(|g| g.value.as_ref())), &currency, revenue_money),
        default_goal,
        charts,
        days,
        days_note,
        messages,
        models,
        model_rows,
        models_svg,
        lift,
    };
    Ok(html(&page).into_response())
}

/// A campaign's lift against its control group for any goal (the default first); the
/// campaign page shows the default goal's.
pub async fn campaign_lift(
    State(console): State<Arc<Console>>,
    Path((tenant, campaign_id)): Path<(String, String)>,
    Query(params): Query<Params>,
    headers: HeaderMap,
) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "campaigns", &params).await?;
    let config = console.config(&tenant).await?;
    let (goals, goal_id) = goal_choice(&config, &params);
    let lift = lift_panel(&console, &caller, &tenant, &campaign_id, &goal_id, &nav.range, &config).await?;
    let page = LiftPage { nav, campaign_id, goals, goal_id, lift };
    Ok(html(&page).into_response())
}

/// A campaign's lift for a goal over the page's range, as figures, the interval drawn, and
/// whether the data are enough.
async fn lift_panel(
    console: &Console,
    caller: &Option<Principal>,
    tenant: &str,
    campaign_id: &str,
    goal_id: &str,
    range: &RangeView,
    config: &TenantConfig,
) -> Result<LiftPanel, PageError> {
    let money = money_goals(config).get(goal_id).copied().unwrap_or(false);
    let request = pb::LiftRequest {
        tenant: tenant.to_owned(),
        campaign_id: campaign_id.to_owned(),
        goal_id: Some(goal_id.to_owned()),
        range: range.pb(),
    };
    let lift = console.query.get_lift(call(request, caller)).await?.into_inner();
    let percent = |value: Option<f64>| match value {
        Some(value) => Figure { text: format!("{:.2}%", value * 100.0), raw: value.to_string() },
        None => Figure { text: "–".into(), raw: "null".into() },
    };
    let number = |value: Option<f64>| match value {
        Some(value) => Figure { text: format!("{value:.2}"), raw: value.to_string() },
        None => Figure { text: "–".into(), raw: "null".into() },
    };
    // Values per customer: minor units for an ORDER goal, shown as money.
    let value = |value: Option<f64>| match value {
        Some(value) if money => Figure { text: format_money((value * 1e6).round() as i128, &config.currency), raw: value.to_string() },
        other => number(other),
    };
    let count = |count: u64| Figure::count(count);
    let figures = vec![
        LiftFigure { key: "converted_t", label: "Converted, treatment", figure: count(lift.converted_t) },
        LiftFigure { key: "converted_c", label: "Converted, control", figure: count(lift.converted_c) },
        LiftFigure { key: "r_t", label: "Conversion rate, treatment", figure: percent(lift.r_t) },
        LiftFigure { key: "r_c", label: "Conversion rate, control", figure: percent(lift.r_c) },
        LiftFigure { key: "diff", label: "Difference", figure: percent(lift.diff) },
        LiftFigure { key: "diff_low", label: "95% interval, low", figure: percent(lift.diff_low) },
        LiftFigure { key: "diff_high", label: "95% interval, high", figure: percent(lift.diff_high) },
        LiftFigure { key: "lift", label: "Relative lift", figure: percent(lift.lift) },
        LiftFigure { key: "p_value", label: "p-value", figure: number(lift.p_value) },
        LiftFigure { key: "incremental_conversions", label: "Incremental conversions", figure: number(lift.incremental_conversions) },
        LiftFigure { key: "value_per_customer_t", label: "Value per customer, treatment", figure: value(lift.value_per_customer_t) },
        LiftFigure { key: "value_per_customer_c", label: "Value per customer, control", figure: value(lift.value_per_customer_c) },
        LiftFigure { key: "value_diff", label: "Difference in value", figure: value(lift.value_diff) },
        LiftFigure { key: "value_diff_low", label: "95% interval, low", figure: value(lift.value_diff_low) },
        LiftFigure { key: "value_diff_high", label: "95% interval, high", figure: value(lift.value_diff_high) },
        LiftFigure { key: "contaminated", label: "In both groups (left out)", figure: count(lift.contaminated) },
    ];
    Ok(LiftPanel {
        n_t: count(lift.n_t),
        n_c: count(lift.n_c),
        figures,
        interval_svg: chart::interval(lift.diff, lift.diff_low, lift.diff_high),
        enough_data: lift.enough_data,
    })
}

/// A day with nothing of the campaign: no message sent, no touch, no event hit, no conversion.
fn quiet(stats: &pb::CampaignStats) -> bool {
    let counts = touches(stats.touches.as_ref());
    stats.messages == 0
        && counts.sent + counts.delivered + counts.opened + counts.clicked == 0
        && stats.event_hits.iter().all(|hit| hit.hits == 0)
        && stats.goals.iter().all(|goal| goal.conversions == 0)
}
