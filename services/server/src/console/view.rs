//! What the templates show: each page's figures, already formatted (money in major units
//! with the currency's decimals, counts grouped, times in UTC), beside the exact value a
//! test or a script can read (`data-raw`). Templates are in `services/touchstone/templates`.

use askama::Template;
use axum::response::Html;
use touchstone_core::currency::{format_money, group_thousands};
use touchstone_core::model::parse_micros;
use touchstone_proto::v1 as pb;

/// Renders a page; a template error (a bug) becomes a plain message, never a panic.
pub fn html<T: Template>(page: &T) -> Html<String> {
    Html(page.render().unwrap_or_else(|err| {
        tracing::error!(error = %err, "console template failed");
        "<!doctype html><title>touchstone</title><p>This page could not be rendered; the server log says why.</p>".to_owned()
    }))
}

/// A figure: what is shown and the exact value behind it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub text: String,
    pub raw: String,
}

impl Figure {
    pub fn count(count: u64) -> Figure {
        Figure { text: group_thousands(u128::from(count)), raw: count.to_string() }
    }

    /// A value of the API (a decimal of minor units for money): money when `money`, else
    /// the plain number (an event goal's values).
    pub fn value(decimal: &str, currency: &str, money: bool) -> Figure {
        let micros = parse_micros(decimal).unwrap_or(0);
        let text = if money { format_money(micros, currency) } else { plain(micros) };
        Figure { text, raw: if decimal.is_empty() { "0".to_owned() } else { decimal.to_owned() } }
    }

    /// A ratio as a percentage with one decimal ("–" when undefined).
    pub fn percent(numerator: f64, denominator: f64) -> Figure {
        if denominator <= 0.0 {
            return Figure { text: "–".to_owned(), raw: String::new() };
        }
        let ratio = numerator / denominator;
        Figure { text: format!("{:.1}%", ratio * 100.0), raw: format!("{ratio}") }
    }
}

/// A plain decimal with grouped thousands, at most 2 decimals.
pub fn plain(micros: i128) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let abs = micros.unsigned_abs();
    let hundredths = (abs + 5_000) / 10_000;
    let (whole, fraction) = (hundredths / 100, hundredths % 100);
    if fraction == 0 { format!("{sign}{}", group_thousands(whole)) } else { format!("{sign}{}.{fraction:02}", group_thousands(whole)) }
}

/// Epoch ms as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map(|t| t.format("%Y-%m-%d %H:%M:%S UTC").to_string()).unwrap_or_else(|| ms.to_string())
}

/// The range a page shows, as the picker's dates (the `to` day included).
#[derive(Debug, Clone)]
pub struct RangeView {
    pub from: String,
    pub to: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// `from=...&to=...`, for links that keep the range.
    pub query: String,
    /// The days in words: `2 Feb – 3 Mar 2026`.
    pub label: String,
    /// No dates were asked for: the last days holding the tenant's data.
    pub defaulted: bool,
}

impl RangeView {
    /// The range as a query's `TimeRange`.
    pub fn pb(&self) -> Option<pb::TimeRange> {
        Some(pb::TimeRange { from_ms: Some(self.from_ms), to_ms: Some(self.to_ms) })
    }

    /// The part of the range a daily chart covers: all of it, or its last
    /// [`MAX_SERIES_DAYS`](touchstone_core::report::MAX_SERIES_DAYS) days when it is longer
    /// (an "all time" page), which a series is limited to; and whether it was cut so.
    pub fn series(&self) -> (Option<pb::TimeRange>, bool) {
        let longest = touchstone_core::report::MAX_SERIES_DAYS * touchstone_core::rollup::DAY_MS;
        let cut = self.to_ms - self.from_ms > longest;
        let from_ms = if cut { self.to_ms - longest } else { self.from_ms };
        (Some(pb::TimeRange { from_ms: Some(from_ms), to_ms: Some(self.to_ms) }), cut)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
pub struct ErrorPage {
    pub status: u16,
    pub message: String,
}

#[derive(Template)]
#[template(path = "index.html")]
pub struct IndexPage {
    pub tenants: Vec<String>,
    pub pending: Figure,
    pub lag: String,
    pub set_aside: Figure,
    pub shards: Vec<ShardView>,
}

pub struct ShardView {
    pub shard: u32,
    pub head: Figure,
    pub processed: Figure,
    pub pending: Figure,
    pub lag: String,
    pub set_aside: Figure,
    pub recent: Vec<SetAsideView>,
}

pub struct SetAsideView {
    pub seq: u64,
    pub entry: String,
    pub reason: String,
    pub at: String,
}

/// The tenant's pages share their navigation.
pub struct TenantNav {
    pub tenant: String,
    pub page: &'static str,
    pub range: RangeView,
}

#[derive(Template)]
#[template(path = "campaigns.html")]
pub struct CampaignsPage {
    pub nav: TenantNav,
    pub currency: String,
    pub totals: TotalsView,
    pub rows: Vec<CampaignRow>,
    /// Sort links: column key, title, the link, and the arrow shown when sorted by it.
    pub columns: Vec<SortColumn>,
}

pub struct TotalsView {
    pub campaigns: Figure,
    pub purchases: Figure,
    pub average_check: Figure,
    pub revenue: Figure,
}

pub struct SortColumn {
    pub key: String,
    pub title: String,
    pub href: String,
    pub arrow: &'static str,
    pub numeric: bool,
}

pub struct CampaignRow {
    pub campaign_id: String,
    pub href: String,
    pub messages: Figure,
    pub sent: Figure,
    pub delivered: Figure,
    pub opened: Figure,
    pub clicked: Figure,
    pub conversion_rate: Figure,
    pub goals: Vec<GoalCells>,
}

pub struct GoalCells {
    pub goal_id: String,
    pub conversions: Figure,
    pub value: Figure,
}

#[derive(Template)]
#[template(path = "campaign.html")]
pub struct CampaignPage {
    pub nav: TenantNav,
    pub campaign_id: String,
    pub default_goal: String,
    pub sent: Figure,
    pub opened: Figure,
    pub clicked: Figure,
    pub conversions: Figure,
    pub revenue: Figure,
    pub charts: Vec<ChartView>,
    pub days: Vec<DayRow>,
    /// What the charts leave out of the range, if anything.
    pub days_note: Option<String>,
    pub messages: Vec<MessageRow>,
    /// The models, as reports name them, and each goal's credit of the campaign under them.
    pub models: Vec<String>,
    pub model_rows: Vec<ModelsRow>,
    /// Each goal's conversions under every model, as bars.
    pub models_svg: String,
    /// The lift for the default goal.
    pub lift: LiftPanel,
}

/// A campaign's figures of one UTC day (what its charts draw).
pub struct DayRow {
    pub date: String,
    pub day_ms: i64,
    pub sent: Figure,
    pub opened: Figure,
    pub clicked: Figure,
    pub conversions: Figure,
    pub revenue: Figure,
}

pub struct ChartView {
    pub title: String,
    pub svg: String,
}

pub struct MessageRow {
    pub msg_hash: String,
    pub channel: String,
    pub sent: Figure,
    pub delivered: Figure,
    pub opened: Figure,
    pub clicked: Figure,
    pub conversions: Figure,
    pub value: Figure,
    pub top_hits: Vec<(String, Figure)>,
}

#[derive(Template)]
#[template(path = "goals.html")]
pub struct GoalsPage {
    pub nav: TenantNav,
    pub time_zone: String,
    pub goals: Vec<GoalView>,
    pub series_goal: String,
    pub series: Option<ChartView>,
    pub series_rows: Vec<SeriesRow>,
}

pub struct GoalView {
    pub goal_id: String,
    pub kind: &'static str,
    pub explicit: (Figure, Figure),
    pub last_touch: (Figure, Figure),
    pub unattributed: (Figure, Figure),
    pub campaigns: Vec<(String, Figure, Figure)>,
    pub no_campaign: (Figure, Figure),
    pub series_href: String,
}

pub struct SeriesRow {
    pub date: String,
    pub explicit: Figure,
    pub last_touch: Figure,
    pub unattributed: Figure,
}

#[derive(Template)]
#[template(path = "explain.html")]
pub struct ExplainPage {
    pub nav: TenantNav,
    pub goals: Vec<String>,
    pub goal_id: String,
    pub key: String,
    pub result: Option<ExplainView>,
    pub problem: Option<String>,
}

pub struct ExplainView {
    pub customer_id: String,
    pub ts: String,
    pub value: Figure,
    pub rule: String,
    pub decision: String,
    pub credited_msg_hash: String,
    pub credited_campaign_id: String,
    pub explicit_msg_hash: String,
    pub explicit_status: String,
    pub timeline_svg: String,
    pub candidates: Vec<CandidateView>,
    /// Every model's split, model by model (an unattributed model: one row, no message).
    pub models: Vec<ModelShareView>,
}

/// One message's part of a conversion under one model.
pub struct ModelShareView {
    pub model: String,
    pub msg_hash: String,
    pub campaign_id: String,
    /// The share as a percentage, and its parts per million as the raw figure.
    pub share: Figure,
    pub value: Figure,
}

#[derive(Template)]
#[template(path = "models.html")]
pub struct ModelsPage {
    pub nav: TenantNav,
    pub goals: Vec<String>,
    pub goal_id: String,
    /// The models, as reports name them, in the columns' order.
    pub models: Vec<String>,
    pub rows: Vec<ModelsRow>,
    /// Each campaign's conversions under every model, as bars.
    pub chart_svg: String,
}

/// Conversions and value under each model, in the page's `models` order, of a campaign
/// (models page) or of a goal (a campaign's page): `id` is which.
pub struct ModelsRow {
    pub id: String,
    pub cells: Vec<(Figure, Figure)>,
}

#[derive(Template)]
#[template(path = "lift.html")]
pub struct LiftPage {
    pub nav: TenantNav,
    pub campaign_id: String,
    pub goals: Vec<String>,
    pub goal_id: String,
    pub lift: LiftPanel,
}

/// A campaign's lift for a goal, as its own page and the campaign's page show it.
pub struct LiftPanel {
    pub n_t: Figure,
    pub n_c: Figure,
    /// The figures beside each other: (key of the report's JSON, label, text, raw).
    pub figures: Vec<LiftFigure>,
    /// The difference in conversion rate with its 95% interval, drawn.
    pub interval_svg: String,
    pub enough_data: bool,
}

pub struct LiftFigure {
    pub key: &'static str,
    pub label: &'static str,
    pub figure: Figure,
}

pub struct CandidateView {
    pub ts: String,
    pub ts_ms: i64,
    pub event_id: String,
    pub msg_hash: String,
    pub touch: String,
    pub verdict: String,
    pub reason: String,
}

#[derive(Template)]
#[template(path = "members.html")]
pub struct MembersPage {
    pub nav: TenantNav,
    pub customer_id: String,
    pub held: Vec<HeldView>,
    pub locked: Vec<LockedView>,
    pub timeline: Vec<TimelineView>,
    pub next_page: Option<String>,
    pub looked_up: bool,
    /// Nothing held, no timeline entry and no progress towards any badge: said in words.
    pub no_data: bool,
}

pub struct HeldView {
    pub badge_id: String,
    pub name: String,
    pub icon_url: String,
    pub rank: i64,
    pub earned_at: String,
    pub expires_at: String,
}

impl HeldView {
    /// The rank as shown: a held badge with no definition has none (the trophy case sorts
    /// it last with `i64::MAX`).
    pub fn rank_text(&self) -> String {
        if self.rank == i64::MAX { "—".to_owned() } else { self.rank.to_string() }
    }
}

pub struct LockedView {
    pub badge_id: String,
    pub name: String,
    pub icon_url: String,
    pub rank: i64,
    pub criteria: String,
    pub progress: String,
    /// 0-100, for the progress bar.
    pub percent: i64,
}

pub struct TimelineView {
    pub event_id: String,
    pub badge_id: String,
    pub action: String,
    pub ts: String,
    pub ts_ms: i64,
    pub source: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_show_money_by_currency_and_plain_values_otherwise() {
        assert_eq!(Figure::value("2350927", "USD", true), Figure { text: "23,509.27 USD".into(), raw: "2350927".into() });
        assert_eq!(Figure::value("1500", "JPY", true).text, "1,500 JPY");
        assert_eq!(Figure::value("1234", "KWD", true).text, "1.234 KWD");
        assert_eq!(Figure::value("1234.5", "USD", false).text, "1,234.50");
        assert_eq!(Figure::value("", "USD", true), Figure { text: "0.00 USD".into(), raw: "0".into() });
        assert_eq!(Figure::count(1_234_567).text, "1,234,567");
        assert_eq!(Figure::percent(1.0, 4.0).text, "25.0%");
        assert_eq!(Figure::percent(1.0, 0.0).text, "–");
    }

    #[test]
    fn a_held_badge_without_a_definition_shows_no_rank() {
        let range = RangeView {
            from: "2026-01-01".into(),
            to: "2026-01-30".into(),
            from_ms: 0,
            to_ms: 0,
            query: String::new(),
            label: String::new(),
            defaulted: true,
        };
        let held = |badge_id: &str, rank: i64| HeldView {
            badge_id: badge_id.into(),
            name: badge_id.into(),
            icon_url: String::new(),
            rank,
            earned_at: String::new(),
            expires_at: String::new(),
        };
        let page = MembersPage {
            nav: TenantNav { tenant: "acme".into(), page: "members", range },
            customer_id: "c1".into(),
            // The trophy case ranks a badge it has no definition of last, at i64::MAX.
            held: vec![held("first_order", 2), held("retired_badge", i64::MAX)],
            locked: Vec::new(),
            timeline: Vec::new(),
            next_page: None,
            looked_up: true,
            no_data: false,
        };
        let html = page.render().unwrap();
        assert!(html.contains("rank 2<") && html.contains("rank —<"), "{html}");
        assert!(!html.contains(&format!("rank {}", i64::MAX)), "{html}");
    }
}
