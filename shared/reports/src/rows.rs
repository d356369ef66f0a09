//! Report replies checked and turned into plain rows, so that the json, csv and table
//! writers share one reading of the wire types (exact decimals parsed once, unset
//! sub-messages read as zeros).

use touchstone_core::model::{Channel, format_micros, parse_micros};
use touchstone_proto::convert::channel_from_pb;
use touchstone_proto::v1 as pb;

/// A reply the client cannot read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplyError {
    #[error("the server sent {what} = {value:?}, which is not a decimal number")]
    BadDecimal { what: String, value: String },
}

/// An exact decimal in millionths. Unset or empty means 0 (as for `google.type.Decimal`).
pub fn decimal_micros(decimal: Option<&pb::Decimal>, what: impl FnOnce() -> String) -> Result<i128, ReplyError> {
    let Some(pb::Decimal { value }) = decimal else { return Ok(0) };
    if value.is_empty() {
        return Ok(0);
    }
    parse_micros(value).ok_or_else(|| ReplyError::BadDecimal { what: what(), value: value.clone() })
}

/// Values as the other reports write them: decimals of minor units as JSON numbers.
pub fn decimal_json(value: Option<&pb::Decimal>) -> serde_json::Value {
    let text = value.map(|decimal| decimal.value.as_str()).unwrap_or("0");
    serde_json::from_str(text).unwrap_or(serde_json::Value::Null)
}

/// An exact value as text: "12.5", "100".
pub fn value_text(micros: i128) -> String {
    format_micros(micros)
}

/// A derived figure (rate, average check), or none when its denominator is 0: a rate over
/// nothing is unknown, not 0%.
pub fn derived(value: f64, denominator: u64) -> Option<f64> {
    (denominator != 0).then_some(value)
}

/// The most hit event names a report shows (docs/behaviour/reports.md: the product shows the top 5).
pub const TOP_EVENT_HITS: usize = 5;

/// How a goal's values read: money of the tenant's currency (ORDER goals: minor units) or
/// plain numbers (EVENT goals: the events' values, which are no money).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueUnit<'a> {
    Money(&'a str),
    Plain,
}

/// What a report's values are in, from the reply's `ReportUnits`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Units {
    /// The tenant's currency; empty when the server did not say (one older than
    /// `ReportUnits`), and then every value is shown as a plain number, as stored.
    pub currency: String,
    /// The tenant's goals in its order, the default first, each with whether its values are
    /// money (an ORDER goal).
    pub goals: Vec<(String, bool)>,
}

impl Units {
    pub fn from_pb(units: Option<pb::ReportUnits>) -> Units {
        let pb::ReportUnits { currency, goals } = units.unwrap_or_default();
        let goals = goals.into_iter().map(|goal| {
            let money = goal.kind() == pb::GoalKind::Order;
            (goal.id, money)
        });
        Units { currency, goals: goals.collect() }
    }

    /// The tenant's default goal: the first of its config (`orders`).
    pub fn default_goal(&self) -> Option<&str> {
        self.goals.first().map(|(id, _)| id.as_str())
    }

    /// How `goal_id`'s values read; a goal the server did not describe is a plain number.
    pub fn of(&self, goal_id: &str) -> ValueUnit<'_> {
        let money = self.goals.iter().any(|(id, money)| id == goal_id && *money);
        if money && !self.currency.is_empty() { ValueUnit::Money(&self.currency) } else { ValueUnit::Plain }
    }
}

/// Which report a [`StatsReport`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatsKind {
    Campaigns,
    Messages,
}

impl StatsKind {
    /// The JSON key and CSV column of the row id (docs/behaviour/reports.md).
    pub fn id_key(self) -> &'static str {
        match self {
            StatsKind::Campaigns => "campaign_id",
            StatsKind::Messages => "msg_hash",
        }
    }
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Touches {
    pub sent: u64,
    pub delivered: u64,
    pub opened: u64,
    pub clicked: u64,
    /// Customers held out of the message (its control group).
    pub held_out: u64,
    pub open_rate: f64,
    pub click_rate: f64,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct GoalCell {
    pub goal_id: String,
    pub conversions: u64,
    pub value_micros: i128,
    pub conversion_rate: f64,
    pub average_check: f64,
}

/// What a row is about, with the columns only that kind has.
#[derive(Debug, Clone, PartialEq)]
pub enum Subject {
    Campaign { campaign_id: String, messages: u32 },
    Message { msg_hash: String, campaign_id: String, channel: Option<Channel>, registered: bool },
}

/// One campaign or message.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub subject: Subject,
    pub touches: Touches,
    /// Most hits first, then by name.
    pub event_hits: Vec<(String, u64)>,
    /// In the server's order (the tenant's goal order).
    pub goals: Vec<GoalCell>,
}

impl StatsRow {
    pub fn id(&self) -> &str {
        match &self.subject {
            Subject::Campaign { campaign_id, .. } => campaign_id,
            Subject::Message { msg_hash, .. } => msg_hash,
        }
    }

    /// The row's result for a goal; zeros when the server left the goal out.
    pub fn goal(&self, goal_id: &str) -> GoalCell {
        self.goals
            .iter()
            .find(|cell| cell.goal_id == goal_id)
            .cloned()
            .unwrap_or_else(|| GoalCell { goal_id: goal_id.to_owned(), ..GoalCell::default() })
    }
}

/// Totals over a campaign list: the default goal credited to campaigns.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub campaigns: u64,
    pub purchases: u64,
    pub revenue_micros: i128,
    pub average_check: f64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StatsReport {
    pub kind: StatsKind,
    pub rows: Vec<StatsRow>,
    /// Campaign lists only.
    pub totals: Option<Totals>,
    pub units: Units,
}

impl StatsReport {
    /// The goals any row reports, in order of first appearance: the columns of csv and table.
    pub fn goal_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = Vec::new();
        for cell in self.rows.iter().flat_map(|row| &row.goals) {
            if !ids.contains(&cell.goal_id) {
                ids.push(cell.goal_id.clone());
            }
        }
        ids
    }

    /// The tenant's default goal, whose figures the table shows by default: the first of
    /// its config, or (from a server that does not say) the first goal the rows report.
    pub fn default_goal(&self) -> Option<String> {
        self.units.default_goal().map(str::to_owned).or_else(|| self.goal_ids().into_iter().next())
    }

    pub fn from_campaigns(list: pb::CampaignList) -> Result<StatsReport, ReplyError> {
        let pb::CampaignList { campaigns, totals, units } = list;
        let rows = campaigns.into_iter().map(campaign_row).collect::<Result<_, _>>()?;
        let totals = totals.map(totals_from_pb).transpose()?;
        Ok(StatsReport {
            kind: StatsKind::Campaigns,
            rows,
            totals: Some(totals.unwrap_or_default()),
            units: Units::from_pb(units),
        })
    }

    pub fn from_messages(list: pb::MessageStatsList) -> Result<StatsReport, ReplyError> {
        let pb::MessageStatsList { messages, units } = list;
        let rows = messages.into_iter().map(message_row).collect::<Result<_, _>>()?;
        Ok(StatsReport { kind: StatsKind::Messages, rows, totals: None, units: Units::from_pb(units) })
    }
}

fn campaign_row(stats: pb::CampaignStats) -> Result<StatsRow, ReplyError> {
    let pb::CampaignStats { campaign_id, messages, touches, event_hits, goals } = stats;
    let goals = goal_cells(&campaign_id, goals)?;
    Ok(StatsRow {
        subject: Subject::Campaign { campaign_id, messages },
        touches: touches_from_pb(touches),
        event_hits: hits_from_pb(event_hits),
        goals,
    })
}

fn message_row(stats: pb::MessageStats) -> Result<StatsRow, ReplyError> {
    let pb::MessageStats { msg_hash, campaign_id, channel, registered, touches, event_hits, goals } = stats;
    let goals = goal_cells(&msg_hash, goals)?;
    Ok(StatsRow {
        // An unregistered message has no channel yet; an unknown one is shown as none.
        subject: Subject::Message {
            msg_hash,
            campaign_id,
            channel: channel_from_pb("channel", channel).ok(),
            registered,
        },
        touches: touches_from_pb(touches),
        event_hits: hits_from_pb(event_hits),
        goals,
    })
}

fn touches_from_pb(touches: Option<pb::TouchCounts>) -> Touches {
    let pb::TouchCounts { sent, delivered, opened, clicked, open_rate, click_rate, held_out } = touches.unwrap_or_default();
    Touches { sent, delivered, opened, clicked, held_out, open_rate, click_rate }
}

fn hits_from_pb(hits: Vec<pb::EventHitCount>) -> Vec<(String, u64)> {
    let mut hits: Vec<(String, u64)> = hits.into_iter().map(|pb::EventHitCount { name, hits }| (name, hits)).collect();
    hits.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    hits
}

fn goal_cells(row_id: &str, goals: Vec<pb::GoalResult>) -> Result<Vec<GoalCell>, ReplyError> {
    goals
        .into_iter()
        .map(|pb::GoalResult { goal_id, conversions, value, conversion_rate, average_check }| {
            let value_micros = decimal_micros(value.as_ref(), || format!("{row_id} goal {goal_id} value"))?;
            Ok(GoalCell { goal_id, conversions, value_micros, conversion_rate, average_check })
        })
        .collect()
}

fn totals_from_pb(totals: pb::CampaignTotals) -> Result<Totals, ReplyError> {
    let pb::CampaignTotals { campaigns, purchases, revenue, average_check } = totals;
    let revenue_micros = decimal_micros(revenue.as_ref(), || "totals revenue".to_owned())?;
    Ok(Totals { campaigns, purchases, revenue_micros, average_check })
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub conversions: u64,
    pub value_micros: i128,
}

impl Tally {
    pub fn plus(self, other: Tally) -> Tally {
        Tally {
            conversions: self.conversions.saturating_add(other.conversions),
            value_micros: self.value_micros + other.value_micros,
        }
    }
}

/// One goal's KPIs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoalRow {
    pub goal_id: String,
    pub explicit: Tally,
    pub last_touch: Tally,
    pub unattributed: Tally,
    /// Most conversions first, then by campaign id.
    pub campaigns: Vec<(String, Tally)>,
    pub no_campaign: Tally,
}

impl GoalRow {
    pub fn total(&self) -> Tally {
        self.explicit.plus(self.last_touch).plus(self.unattributed)
    }
}

/// The goal rows and what their values are in.
pub fn goal_report(reply: pb::GoalKpisReply) -> Result<(Vec<GoalRow>, Units), ReplyError> {
    // Under last touch (the CLI asks no other model): contributions in whole conversions.
    let pb::GoalKpisReply { goals, units, model: _ } = reply;
    Ok((goals.into_iter().map(goal_row).collect::<Result<_, _>>()?, Units::from_pb(units)))
}

#[cfg(test)]
pub fn goal_rows(reply: pb::GoalKpisReply) -> Result<Vec<GoalRow>, ReplyError> {
    goal_report(reply).map(|(rows, _)| rows)
}

fn goal_row(kpis: pb::GoalKpis) -> Result<GoalRow, ReplyError> {
    let pb::GoalKpis { goal_id, explicit, last_touch, unattributed, campaigns, no_campaign, no_campaign_ppm: _ } = kpis;
    let tally = |tally: Option<pb::Tally>, what: &str| tally_from_pb(tally, || format!("goal {goal_id} {what} value"));
    let mut by_campaign = campaigns
        .into_iter()
        .map(|pb::CampaignContribution { campaign_id, tally: contribution, conversions_ppm: _ }| {
            let contribution = tally(contribution, &format!("campaign {campaign_id}"))?;
            Ok((campaign_id, contribution))
        })
        .collect::<Result<Vec<_>, ReplyError>>()?;
    by_campaign.sort_by(|a, b| b.1.conversions.cmp(&a.1.conversions).then_with(|| a.0.cmp(&b.0)));
    Ok(GoalRow {
        explicit: tally(explicit, "explicit")?,
        last_touch: tally(last_touch, "last_touch")?,
        unattributed: tally(unattributed, "unattributed")?,
        no_campaign: tally(no_campaign, "no_campaign")?,
        campaigns: by_campaign,
        goal_id,
    })
}

fn tally_from_pb(tally: Option<pb::Tally>, what: impl FnOnce() -> String) -> Result<Tally, ReplyError> {
    let pb::Tally { conversions, value } = tally.unwrap_or_default();
    Ok(Tally { conversions, value_micros: decimal_micros(value.as_ref(), what)? })
}

#[cfg(test)]
pub mod fixtures {
    //! Hand-built replies shared by the writers' tests.
    use super::*;

    pub fn decimal(value: &str) -> Option<pb::Decimal> {
        Some(pb::Decimal { value: value.into() })
    }

    pub fn goal(
        goal_id: &str,
        conversions: u64,
        value: &str,
        conversion_rate: f64,
        average_check: f64,
    ) -> pb::GoalResult {
        pb::GoalResult { goal_id: goal_id.into(), conversions, value: decimal(value), conversion_rate, average_check }
    }

    pub fn touches(sent: u64, delivered: u64, opened: u64, clicked: u64) -> Option<pb::TouchCounts> {
        let rate = |n: u64| if delivered == 0 { 0.0 } else { n as f64 / delivered as f64 };
        Some(pb::TouchCounts { sent, delivered, opened, clicked, open_rate: rate(opened), click_rate: rate(clicked), held_out: 0 })
    }

    /// A tenant in `currency` with the default goal `orders` (ORDER) and `checkin` (EVENT).
    pub fn units(currency: &str) -> Option<pb::ReportUnits> {
        let goal = |id: &str, kind: pb::GoalKind| pb::Goal { id: id.into(), kind: kind.into(), ..pb::Goal::default() };
        Some(pb::ReportUnits {
            currency: currency.into(),
            goals: vec![goal("orders", pb::GoalKind::Order), goal("checkin", pb::GoalKind::Event)],
        })
    }

    pub fn hit(name: &str, hits: u64) -> pb::EventHitCount {
        pb::EventHitCount { name: name.into(), hits }
    }

    pub fn campaign_list() -> pb::CampaignList {
        pb::CampaignList {
            campaigns: vec![
                pb::CampaignStats {
                    campaign_id: "spring".into(),
                    messages: 2,
                    touches: touches(100, 80, 20, 5),
                    event_hits: vec![hit("view", 7), hit("checkin", 2)],
                    goals: vec![goal("orders", 4, "5000", 0.2, 1250.0), goal("checkin", 1, "12.5", 0.05, 12.5)],
                },
                pb::CampaignStats {
                    campaign_id: "summer".into(),
                    messages: 1,
                    touches: touches(10, 0, 0, 0),
                    event_hits: vec![],
                    goals: vec![goal("orders", 0, "0", 0.0, 0.0), goal("checkin", 0, "0", 0.0, 0.0)],
                },
            ],
            totals: Some(pb::CampaignTotals {
                campaigns: 2,
                purchases: 4,
                revenue: decimal("5000"),
                average_check: 1250.0,
            }),
            units: units("USD"),
        }
    }

    pub fn message_list() -> pb::MessageStatsList {
        pb::MessageStatsList {
            messages: vec![
                pb::MessageStats {
                    msg_hash: "m1".into(),
                    campaign_id: "spring".into(),
                    channel: pb::Channel::Push.into(),
                    registered: true,
                    touches: touches(50, 40, 10, 2),
                    event_hits: vec![hit("view", 3)],
                    goals: vec![goal("orders", 3, "100", 0.3, 33.333333333333336)],
                },
                pb::MessageStats {
                    msg_hash: "m9".into(),
                    campaign_id: String::new(),
                    channel: pb::Channel::Unspecified.into(),
                    registered: false,
                    touches: touches(0, 0, 0, 0),
                    event_hits: vec![hit("view", 1)],
                    goals: vec![goal("orders", 0, "0", 0.0, 0.0)],
                },
            ],
            units: units("USD"),
        }
    }

    pub fn tally(conversions: u64, value: &str) -> Option<pb::Tally> {
        Some(pb::Tally { conversions, value: decimal(value) })
    }

    pub fn goal_kpis() -> pb::GoalKpisReply {
        pb::GoalKpisReply {
            goals: vec![
                pb::GoalKpis {
                    goal_id: "orders".into(),
                    explicit: tally(2, "250.5"),
                    last_touch: tally(3, "100"),
                    unattributed: tally(5, "0.25"),
                    campaigns: vec![
                        pb::CampaignContribution { campaign_id: "a".into(), tally: tally(1, "50"), conversions_ppm: 1_000_000 },
                        pb::CampaignContribution { campaign_id: "b".into(), tally: tally(3, "200.5"), conversions_ppm: 3_000_000 },
                    ],
                    no_campaign: tally(1, "100"),
                    no_campaign_ppm: 1_000_000,
                },
                pb::GoalKpis {
                    goal_id: "checkin".into(),
                    explicit: tally(0, "0"),
                    last_touch: None,
                    unattributed: tally(4, "0"),
                    campaigns: vec![],
                    no_campaign: tally(0, "0"),
                    no_campaign_ppm: 0,
                },
            ],
            units: units("USD"),
            model: pb::AttributionModel::LastTouch.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::*;
    use super::*;

    #[test]
    fn decimals_are_read_exactly_and_unset_means_zero() {
        assert_eq!(decimal_micros(decimal("12.5").as_ref(), String::new), Ok(12_500_000));
        assert_eq!(decimal_micros(None, String::new), Ok(0));
        assert_eq!(decimal_micros(decimal("").as_ref(), String::new), Ok(0));
        let err = decimal_micros(decimal("1e3").as_ref(), || "x value".into()).unwrap_err();
        assert_eq!(err.to_string(), r#"the server sent x value = "1e3", which is not a decimal number"#);
    }

    #[test]
    fn a_bad_decimal_in_a_row_names_the_row_and_goal() {
        let mut list = campaign_list();
        list.campaigns[0].goals[1].value = decimal("twelve");
        let err = StatsReport::from_campaigns(list).unwrap_err();
        assert!(err.to_string().contains("spring goal checkin value"), "{err}");
    }

    #[test]
    fn campaign_rows_keep_the_server_order_and_goal_columns_follow_first_appearance() {
        let report = StatsReport::from_campaigns(campaign_list()).unwrap();
        assert_eq!(report.rows.iter().map(StatsRow::id).collect::<Vec<_>>(), ["spring", "summer"]);
        assert_eq!(report.goal_ids(), ["orders", "checkin"]);
        assert_eq!(report.totals.unwrap().revenue_micros, 5_000_000_000);
        assert_eq!(report.rows[0].goal("nope"), GoalCell { goal_id: "nope".into(), ..GoalCell::default() });
    }

    #[test]
    fn unregistered_messages_have_no_channel_and_unset_touches_read_as_zero() {
        let mut list = message_list();
        list.messages[1].touches = None;
        let report = StatsReport::from_messages(list).unwrap();
        assert!(matches!(&report.rows[0].subject, Subject::Message { channel: Some(Channel::Push), .. }));
        assert!(matches!(&report.rows[1].subject, Subject::Message { channel: None, registered: false, .. }));
        assert_eq!(report.rows[1].touches, Touches::default());
        assert_eq!(report.totals, None);
    }

    #[test]
    fn event_hits_are_ordered_by_hits_then_name() {
        let hits = hits_from_pb(vec![hit("b", 2), hit("a", 2), hit("c", 9)]);
        assert_eq!(hits, [("c".to_owned(), 9), ("a".to_owned(), 2), ("b".to_owned(), 2)]);
    }

    #[test]
    fn goal_rows_sum_totals_and_order_campaigns_by_conversions() {
        let rows = goal_rows(goal_kpis()).unwrap();
        let orders = &rows[0];
        assert_eq!(orders.total(), Tally { conversions: 10, value_micros: 350_750_000 });
        assert_eq!(orders.campaigns.iter().map(|(id, _)| id.as_str()).collect::<Vec<_>>(), ["b", "a"]);
        assert_eq!(rows[1].last_touch, Tally::default(), "an unset tally is zero");
    }
}
