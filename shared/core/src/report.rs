//! Report rows from summed counters (SPEC section 5): per message, per campaign, per goal.
//! The query service sums [`Cells`] over a range and calls these; derived rates live here
//! too so every front end computes them the same way.

use crate::attribution::{Messages, Rule};
use crate::config::TenantConfig;
use crate::model::{Message, TouchKind};
use crate::rollup::{Cell, Cells, Tally};
use std::collections::BTreeMap;

/// What happened to one message, or to all messages of a campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Activity {
    pub sent: i64,
    pub delivered: i64,
    pub opened: i64,
    pub clicked: i64,
    pub event_hits: BTreeMap<String, i64>,
    /// Conversions credited (explicitly or by last touch), for every goal of the tenant.
    pub goals: BTreeMap<String, Tally>,
}

impl Activity {
    fn for_goals(config: &TenantConfig) -> Activity {
        Activity {
            goals: config.goals.iter().map(|g| (g.id.clone(), Tally::default())).collect(),
            ..Activity::default()
        }
    }

    fn merge(&mut self, other: &Activity) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.opened += other.opened;
        self.clicked += other.clicked;
        for (name, hits) in &other.event_hits {
            *self.event_hits.entry(name.clone()).or_default() += hits;
        }
        for (goal, tally) in &other.goals {
            self.goals.entry(goal.clone()).or_default().add(*tally);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.sent == 0
            && self.delivered == 0
            && self.opened == 0
            && self.clicked == 0
            && self.event_hits.values().all(|&n| n == 0)
            && self.goals.values().all(Tally::is_zero)
    }

    /// Event names, most hits first, then by name.
    pub fn top_event_hits(&self) -> Vec<(&str, i64)> {
        let mut hits: Vec<(&str, i64)> =
            self.event_hits.iter().filter(|(_, n)| **n != 0).map(|(name, n)| (name.as_str(), *n)).collect();
        hits.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        hits
    }
}

/// An exact value as a JSON number: an integer when whole, else the nearest float.
/// The SPEC section 8 JSON writes `"value": x` this way everywhere.
pub fn value_json(micros: i128) -> serde_json::Value {
    serde_json::from_str(&crate::model::format_micros(micros)).unwrap_or(serde_json::Value::Null)
}

/// `numerator / denominator`, 0 when the denominator is 0.
pub fn rate(numerator: f64, denominator: f64) -> f64 {
    if denominator == 0.0 { 0.0 } else { numerator / denominator }
}

/// Per message with any activity, by `msg_hash`.
pub fn message_activity(cells: &Cells, config: &TenantConfig) -> BTreeMap<String, Activity> {
    let mut rows: BTreeMap<String, Activity> = BTreeMap::new();
    fn row<'a>(rows: &'a mut BTreeMap<String, Activity>, msg_hash: &str, config: &TenantConfig) -> &'a mut Activity {
        rows.entry(msg_hash.to_owned()).or_insert_with(|| Activity::for_goals(config))
    }
    for (cell, tally) in &cells.0 {
        match cell {
            Cell::Touch { msg_hash, kind } => {
                let row = row(&mut rows, msg_hash, config);
                let counter = match kind {
                    TouchKind::Sent => &mut row.sent,
                    TouchKind::Delivered => &mut row.delivered,
                    TouchKind::Opened => &mut row.opened,
                    TouchKind::Clicked => &mut row.clicked,
                };
                *counter += tally.count;
            }
            Cell::EventHit { msg_hash, name } => {
                *row(&mut rows, msg_hash, config).event_hits.entry(name.clone()).or_default() += tally.count;
            }
            Cell::Conversion { goal_id, rule: Rule::Explicit | Rule::LastTouch, msg_hash } => {
                // Conversions of a goal deleted since are not reported.
                if config.goal(goal_id).is_some() {
                    row(&mut rows, msg_hash, config).goals.entry(goal_id.clone()).or_default().add(*tally);
                }
            }
            Cell::Conversion { rule: Rule::Unattributed, .. } => {}
        }
    }
    rows.retain(|_, activity| !activity.is_empty());
    rows
}

/// Per campaign: registered messages with a campaign, summed. Returns the number of
/// messages with activity beside each campaign's activity.
pub fn campaign_activity(
    per_message: &BTreeMap<String, Activity>,
    messages: &Messages,
    config: &TenantConfig,
) -> BTreeMap<String, (u32, Activity)> {
    let mut rows: BTreeMap<String, (u32, Activity)> = BTreeMap::new();
    for (msg_hash, activity) in per_message {
        let Some(Message { campaign_id, .. }) = messages.get(msg_hash) else { continue };
        if campaign_id.is_empty() {
            continue;
        }
        let (count, total) = rows.entry(campaign_id.clone()).or_insert_with(|| (0, Activity::for_goals(config)));
        *count += 1;
        total.merge(activity);
    }
    rows
}

/// Goal KPIs over some range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GoalKpi {
    pub goal_id: String,
    pub explicit: Tally,
    pub last_touch: Tally,
    pub unattributed: Tally,
    pub campaigns: BTreeMap<String, Tally>,
    /// Credited to messages of no campaign (or not registered, which cannot happen for a credit).
    pub no_campaign: Tally,
}

/// KPIs for every goal of the tenant, in config order.
pub fn goal_kpis(cells: &Cells, messages: &Messages, config: &TenantConfig) -> Vec<GoalKpi> {
    let mut kpis: Vec<GoalKpi> =
        config.goals.iter().map(|g| GoalKpi { goal_id: g.id.clone(), ..GoalKpi::default() }).collect();
    for (cell, tally) in &cells.0 {
        let Cell::Conversion { goal_id, rule, msg_hash } = cell else { continue };
        let Some(kpi) = kpis.iter_mut().find(|k| &k.goal_id == goal_id) else { continue };
        match rule {
            Rule::Explicit => kpi.explicit.add(*tally),
            Rule::LastTouch => kpi.last_touch.add(*tally),
            Rule::Unattributed => {
                kpi.unattributed.add(*tally);
                continue;
            }
        }
        match messages.get(msg_hash).map(|m| m.campaign_id.as_str()) {
            Some(campaign_id) if !campaign_id.is_empty() => {
                kpi.campaigns.entry(campaign_id.to_owned()).or_default().add(*tally)
            }
            Some(_) | None => kpi.no_campaign.add(*tally),
        }
    }
    for kpi in &mut kpis {
        kpi.campaigns.retain(|_, tally| !tally.is_zero());
    }
    kpis
}

/// The `msg_hash`es whose registration a report needs to see.
pub fn referenced_messages(cells: &Cells) -> Vec<String> {
    let mut hashes: Vec<String> = cells
        .0
        .keys()
        .map(|cell| match cell {
            Cell::Touch { msg_hash, .. } | Cell::EventHit { msg_hash, .. } | Cell::Conversion { msg_hash, .. } => {
                msg_hash.clone()
            }
        })
        .filter(|hash| !hash.is_empty())
        .collect();
    hashes.sort();
    hashes.dedup();
    hashes
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Goal, GoalKind};
    use crate::model::Channel;

    fn config() -> TenantConfig {
        let mut config = TenantConfig::defaults("t");
        config.save_goal(Goal { id: "checkin".into(), kind: GoalKind::Event { event_name: "checkin".into() } }).unwrap();
        config
    }

    fn messages() -> Messages {
        [("m1", "c1"), ("m2", "c1"), ("m3", "")]
            .into_iter()
            .map(|(hash, campaign)| {
                (hash.to_owned(), Message {
                    tenant: "t".into(),
                    msg_hash: hash.into(),
                    campaign_id: campaign.into(),
                    channel: Channel::Push,
                    tags: vec![],
                    sent_at: 0,
                })
            })
            .collect()
    }

    fn cells() -> Cells {
        let mut cells = Cells::default();
        let touch = |msg: &str, kind| Cell::Touch { msg_hash: msg.into(), kind };
        let conv = |goal: &str, rule, msg: &str| Cell::Conversion { goal_id: goal.into(), rule, msg_hash: msg.into() };
        cells.add(touch("m1", TouchKind::Delivered), Tally { count: 10, value_micros: 0 });
        cells.add(touch("m1", TouchKind::Opened), Tally { count: 4, value_micros: 0 });
        cells.add(touch("m2", TouchKind::Opened), Tally { count: 1, value_micros: 0 });
        cells.add(touch("ghost", TouchKind::Sent), Tally { count: 3, value_micros: 0 });
        cells.add(Cell::EventHit { msg_hash: "m1".into(), name: "view".into() }, Tally { count: 2, value_micros: 0 });
        cells.add(conv("orders", Rule::Explicit, "m1"), Tally { count: 1, value_micros: 5 });
        cells.add(conv("orders", Rule::LastTouch, "m2"), Tally { count: 2, value_micros: 7 });
        cells.add(conv("orders", Rule::LastTouch, "m3"), Tally { count: 1, value_micros: 1 });
        cells.add(conv("orders", Rule::Unattributed, ""), Tally { count: 9, value_micros: 90 });
        cells.add(conv("deleted-goal", Rule::LastTouch, "m1"), Tally { count: 1, value_micros: 1 });
        cells.add(conv("checkin", Rule::LastTouch, "m2"), Tally { count: 0, value_micros: 0 });
        cells
    }

    #[test]
    fn message_rows_sum_touches_hits_and_credited_goals() {
        let rows = message_activity(&cells(), &config());
        assert_eq!(rows.keys().collect::<Vec<_>>(), vec!["ghost", "m1", "m2", "m3"]);
        let m1 = &rows["m1"];
        assert_eq!((m1.delivered, m1.opened), (10, 4));
        assert_eq!(m1.event_hits["view"], 2);
        assert_eq!(m1.goals["orders"], Tally { count: 1, value_micros: 5 });
        assert_eq!(m1.goals["checkin"], Tally::default(), "every goal is listed");
        assert!(!m1.goals.contains_key("deleted-goal"));
    }

    #[test]
    fn campaign_rows_group_registered_messages_and_skip_campaignless_ones() {
        let per_message = message_activity(&cells(), &config());
        let campaigns = campaign_activity(&per_message, &messages(), &config());
        assert_eq!(campaigns.keys().collect::<Vec<_>>(), vec!["c1"]);
        let (count, c1) = &campaigns["c1"];
        assert_eq!(*count, 2);
        assert_eq!(c1.opened, 5);
        assert_eq!(c1.goals["orders"], Tally { count: 3, value_micros: 12 });
    }

    #[test]
    fn goal_kpis_split_by_rule_and_campaign() {
        let kpis = goal_kpis(&cells(), &messages(), &config());
        assert_eq!(kpis.len(), 2);
        let orders = &kpis[0];
        assert_eq!(orders.explicit, Tally { count: 1, value_micros: 5 });
        assert_eq!(orders.last_touch, Tally { count: 3, value_micros: 8 });
        assert_eq!(orders.unattributed, Tally { count: 9, value_micros: 90 });
        assert_eq!(orders.campaigns["c1"], Tally { count: 3, value_micros: 12 });
        assert_eq!(orders.no_campaign, Tally { count: 1, value_micros: 1 });
        assert!(kpis[1].campaigns.is_empty());
    }

    #[test]
    fn values_are_json_numbers_integers_when_whole() {
        assert_eq!(value_json(12_000_000).to_string(), "12");
        assert_eq!(value_json(12_500_000).to_string(), "12.5");
        assert_eq!(value_json(-1).as_f64(), Some(-0.000001));
    }

    #[test]
    fn rates_are_zero_rather_than_nan() {
        assert_eq!(rate(1.0, 0.0), 0.0);
        assert_eq!(rate(1.0, 4.0), 0.25);
    }

    #[test]
    fn top_event_hits_are_ordered_by_hits_then_name() {
        let activity = Activity {
            event_hits: BTreeMap::from([("b".into(), 2), ("a".into(), 2), ("c".into(), 5), ("z".into(), 0)]),
            ..Activity::default()
        };
        assert_eq!(activity.top_event_hits(), vec![("c", 5), ("a", 2), ("b", 2)]);
    }
}
