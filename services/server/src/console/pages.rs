//! The console's pages: each decodes its parameters, calls the query service as an RPC
//! would (with the caller's key), and shapes the reply for its template.

use super::chart::{self, Mark, Series};
use touchstone_reports::models::model_name;
use super::view::*;
use super::range::date;
use super::params::Params;
use super::{Console, PageError};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect, Response};
use std::collections::HashMap;
use std::sync::Arc;
use touchstone_attribution::AttributionApi;
use touchstone_core::badges::RuleKind;
use touchstone_core::config::{GoalKind, TenantConfig};
use touchstone_core::currency::{format_money, minor_units};
use touchstone_proto::auth::Principal;
use touchstone_proto::convert::{badge_action_from_pb, badge_source_from_pb, channel_from_pb, touch_kind_from_pb};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_server::AttributionService as _;
use touchstone_proto::v1::query_service_server::QueryService as _;

type Page = Result<Response, PageError>;

/// Timeline entries on a member-care page.
const TIMELINE_PAGE: u32 = 50;

/// A request to the query service as the caller.
fn call<T>(message: T, caller: &Option<Principal>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(principal) = caller {
        request.extensions_mut().insert(principal.clone());
    }
    request
}

fn encode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

impl Console {
    async fn nav(&self, tenant: &str, page: &'static str, params: &Params) -> Result<TenantNav, PageError> {
        Ok(TenantNav { tenant: tenant.to_owned(), page, range: self.range(tenant, params).await? })
    }

    async fn config(&self, tenant: &str) -> Result<TenantConfig, PageError> {
        Ok(self.configs.tenant_config(tenant).await?)
    }
}

/// Whether a goal's values are money (orders) or plain numbers (event values).
fn money_goals(config: &TenantConfig) -> HashMap<String, bool> {
    config.goals.iter().map(|goal| (goal.id.clone(), matches!(goal.kind, GoalKind::Order { .. }))).collect()
}

fn touches(counts: Option<&pb::TouchCounts>) -> pb::TouchCounts {
    counts.cloned().unwrap_or_default()
}

fn decimal(value: Option<&pb::Decimal>) -> String {
    value.map(|decimal| decimal.value.clone()).unwrap_or_default()
}

fn goal_result<'a>(goals: &'a [pb::GoalResult], goal_id: &str) -> Option<&'a pb::GoalResult> {
    goals.iter().find(|goal| goal.goal_id == goal_id)
}

fn value_f64(decimal: &str) -> f64 {
    decimal.parse().unwrap_or(0.0)
}

pub async fn index(State(console): State<Arc<Console>>, headers: HeaderMap) -> Page {
    let caller = console.caller(&headers)?;
    let tenants: Vec<String> = console
        .configs
        .tenants()
        .await?
        .into_iter()
        .filter(|tenant| caller.as_ref().is_none_or(|principal| principal.may_touch(tenant)))
        .collect();
    let status = AttributionApi::get_status(&console.status, call(pb::GetStatusRequest {}, &caller)).await?.into_inner();
    let shards = status
        .shards
        .into_iter()
        .map(|shard| ShardView {
            shard: shard.shard,
            head: Figure::count(shard.head),
            processed: Figure::count(shard.processed),
            pending: Figure::count(shard.head.saturating_sub(shard.processed)),
            lag: lag_text(shard.lag_ms),
            set_aside: Figure::count(shard.set_aside),
            recent: shard
                .recently_set_aside
                .into_iter()
                .map(|entry| SetAsideView { seq: entry.seq, entry: entry.entry, reason: entry.reason, at: time(entry.set_aside_at_ms) })
                .collect(),
        })
        .collect();
    let lag = lag_text(status.lag_ms);
    let page = IndexPage { tenants, pending: Figure::count(status.pending), lag, set_aside: Figure::count(status.set_aside), shards };
    Ok(html(&page).into_response())
}

fn lag_text(lag_ms: i64) -> String {
    if lag_ms == 0 { "caught up".to_owned() } else { format!("{:.1} s", lag_ms as f64 / 1000.0) }
}

pub async fn tenant_home(Path(tenant): Path<String>) -> Redirect {
    Redirect::to(&format!("/t/{}/campaigns", encode(&tenant)))
}

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

    // The daily chart: what GetCampaignStats gives each day.
    let revenue_money = money.get(&default_goal).copied().unwrap_or(true);
    let mut dates = Vec::new();
    let mut days = Vec::new();
    let (mut sent, mut opened, mut clicked, mut conversions, mut revenue) = (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (day, stats) in console.query.campaign_days(caller.as_ref(), &tenant, &campaign_id, nav.range.from_ms, nav.range.to_ms).await? {
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
    // Each goal's credit of this campaign under every model.
    let request = pb::ModelReportRequest {
        tenant: tenant.clone(),
        range: nav.range.pb(),
        goal_id: None,
        by_message: false,
    };
    let report = console.query.get_model_report(call(request, &caller)).await?.into_inner();
    let goal_rows = report.rows.into_iter().filter(|row| row.campaign_id == campaign_id).map(|row| (row.goal_id.clone(), row)).collect();
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
        messages,
        models,
        model_rows,
        models_svg,
        lift,
    };
    Ok(html(&page).into_response())
}

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
    // The daily series in the chosen time zone: local days covering the range.
    let request = pb::GoalSeriesRequest { tenant: tenant.clone(), goal_id: series_goal.clone(), range, time_zone: time_zone.clone() };
    let (series, series_rows) = match console.query.get_goal_series(call(request, &caller)).await {
        Ok(reply) => {
            let points = reply.into_inner().points;
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
            (Some(ChartView { title: format!("Conversions of {series_goal} per day ({time_zone})"), svg }), rows)
        }
        Err(status) if status.code() == tonic::Code::InvalidArgument => return Err(PageError::BadRequest(status.message().to_owned())),
        Err(status) => return Err(status.into()),
    };
    Ok(html(&GoalsPage { nav, time_zone, goals, series_goal, series, series_rows }).into_response())
}

fn rule_name(rule: i32) -> String {
    enum_name(pb::AttributionRule::try_from(rule).map(|rule| rule.as_str_name()), "ATTRIBUTION_RULE_").replace('_', " ")
}

/// A proto enum value's name without its prefix, lower case (`CANDIDATE_VERDICT_WON`: "won").
fn enum_name<E>(name: Result<&'static str, E>, prefix: &str) -> String {
    touchstone_reports::explain::name(name, prefix).to_lowercase()
}

/// A touch kind as the SPEC names it, lower case ("opened").
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

/// The tenant's goals for a goal picker, and the one asked for (the default goal first).
fn goal_choice(config: &TenantConfig, params: &Params) -> (Vec<String>, String) {
    let goals: Vec<String> = config.goals.iter().map(|goal| goal.id.clone()).collect();
    let goal_id = params.goal.clone().or_else(|| goals.first().cloned()).unwrap_or_default();
    (goals, goal_id)
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
    };
    let report = console.query.get_model_report(call(request, &caller)).await?.into_inner();
    let rows: Vec<(String, pb::ModelRow)> = report.rows.into_iter().map(|row| (row.campaign_id.clone(), row)).collect();
    let (models, rows, chart_svg) = model_table(rows, |_| money, &config.currency);
    Ok(html(&ModelsPage { nav, goals, goal_id, models, rows, chart_svg }).into_response())
}

/// Rows of a model report, each under its id, as a table (conversions and value under
/// each model) and grouped bars; `money` says which goals' values are money.
fn model_table(rows: Vec<(String, pb::ModelRow)>, money: impl Fn(&str) -> bool, currency: &str) -> (Vec<String>, Vec<ModelsRow>, String) {
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

pub async fn members(State(console): State<Arc<Console>>, Path(tenant): Path<String>, Query(params): Query<Params>, headers: HeaderMap) -> Page {
    let caller = console.caller_for(&headers, &tenant)?;
    let nav = console.nav(&tenant, "members", &params).await?;
    let customer_id = params.customer.clone().unwrap_or_default();
    let mut page = MembersPage { nav, customer_id: customer_id.clone(), held: Vec::new(), locked: Vec::new(), timeline: Vec::new(), next_page: None, looked_up: false, no_data: false };
    if customer_id.is_empty() {
        return Ok(html(&page).into_response());
    }
    page.looked_up = true;
    let case = console.query.get_trophy_case(call(pb::TrophyCaseRequest { tenant: tenant.clone(), customer_id: customer_id.clone() }, &caller)).await?.into_inner();
    let book = console.badges.badge_book(&tenant).await?;
    let currency = console.config(&tenant).await?.currency;
    let icon = |badge_id: &str| book.get(badge_id).map(|badge| badge.icon_url.clone()).unwrap_or_default();
    let no_progress = case.locked.iter().all(|badge| badge.progress.as_ref().is_none_or(|p| p.current == 0));
    page.held = case
        .held
        .into_iter()
        .map(|badge| HeldView {
            icon_url: icon(&badge.badge_id),
            earned_at: time(badge.earned_at),
            expires_at: badge.expires_at.map_or_else(|| "does not expire".to_owned(), |at| format!("expires {}", time(at))),
            badge_id: badge.badge_id,
            name: badge.name,
            rank: badge.rank,
        })
        .collect();
    page.locked = case
        .locked
        .into_iter()
        .map(|badge| {
            // A spend rule counts minor units of the tenant's currency.
            let spend = book.get(&badge.badge_id).and_then(|b| b.rule.as_ref()).is_some_and(|rule| matches!(rule.kind, RuleKind::Spend { .. }));
            let amount = |minor: i64| if spend { format_money(i128::from(minor) * 1_000_000, &currency) } else { minor.to_string() };
            let (progress, percent) = match badge.progress {
                Some(p) if p.target > 0 => (format!("{} of {}", amount(p.current), amount(p.target)), (p.current.clamp(0, p.target) * 100 / p.target)),
                _ => (String::new(), 0),
            };
            LockedView { icon_url: icon(&badge.badge_id), badge_id: badge.badge_id, name: badge.name, rank: badge.rank, criteria: badge.criteria, progress, percent }
        })
        .collect();
    let request = pb::BadgeTimelineRequest {
        tenant: tenant.clone(),
        customer_id: customer_id.clone(),
        badge_id: None,
        range: None,
        page_size: TIMELINE_PAGE,
        page_token: params.page.clone().unwrap_or_default(),
    };
    let timeline = console.query.get_badge_timeline(call(request, &caller)).await?.into_inner();
    page.timeline = timeline
        .entries
        .into_iter()
        .map(|entry| TimelineView {
            ts: time(entry.ts),
            ts_ms: entry.ts,
            // The SPEC's names, as the CLI's timeline prints them.
            action: badge_action_from_pb(entry.action).map_or("UNKNOWN", |action| action.as_str()).to_owned(),
            source: badge_source_from_pb(entry.source).map_or("UNKNOWN", |source| source.as_str()).to_owned(),
            reason: entry.reason.unwrap_or_default(),
            event_id: entry.event_id,
            badge_id: entry.badge_id,
        })
        .collect();
    // A later page of the timeline is not the whole history: only the first says "nothing".
    let first_page = params.page.as_deref().is_none_or(str::is_empty);
    page.no_data = first_page && page.held.is_empty() && page.timeline.is_empty() && no_progress;
    if !timeline.next_page_token.is_empty() {
        page.next_page = Some(format!(
            "/t/{}/members?customer={}&page={}&{}",
            encode(&tenant),
            encode(&customer_id),
            encode(&timeline.next_page_token),
            page.nav.range.query
        ));
    }
    Ok(html(&page).into_response())
}
