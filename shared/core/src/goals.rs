//! Goal matching (docs/behaviour/records-and-config.md and attribution.md): which records convert for which goal, at what time
//! and value. An ORDER goal converts once per order, at its earliest qualifying status record;
//! an EVENT goal once per event with its name.

use crate::attribution::ConversionFact;
use crate::config::{Goal, GoalKind, TenantConfig};
use crate::model::{AppEvent, OrderRecord, MICROS_PER_UNIT};

fn shares_any(wanted: &[String], have: &[String]) -> bool {
    wanted.is_empty() || wanted.iter().any(|w| have.contains(w))
}

/// Whether one status record qualifies for an ORDER goal in the tenant's currency.
pub fn order_record_qualifies(goal: &Goal, currency: &str, record: &OrderRecord) -> bool {
    let GoalKind::Order { statuses, categories, order_channels } = &goal.kind else {
        return false;
    };
    record.currency == currency
        && statuses.contains(&record.status)
        && shares_any(categories, &record.categories)
        && (order_channels.is_empty() || order_channels.contains(&record.channel))
}

/// The conversion of one order for one ORDER goal: its earliest qualifying status record
/// (by `ts`, then `event_id`), or none. `records` are all status records of the order.
pub fn order_conversion(config: &TenantConfig, goal: &Goal, records: &[OrderRecord]) -> Option<ConversionFact> {
    let first = records
        .iter()
        .filter(|record| order_record_qualifies(goal, &config.currency, record))
        .min_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)))?;
    Some(ConversionFact {
        tenant: first.tenant.clone(),
        goal_id: goal.id.clone(),
        key: first.order_id.clone(),
        customer_id: first.customer_id.clone(),
        ts: first.ts,
        // Validation bounds amount_minor to 1e12, so this cannot overflow.
        value_micros: first.amount_minor * MICROS_PER_UNIT,
        source_event_id: first.event_id.clone(),
        explicit_msg_hash: first.msg_hash.clone(),
    })
}

/// The conversion of an app event for an EVENT goal, if its name matches.
pub fn event_conversion(goal: &Goal, event: &AppEvent) -> Option<ConversionFact> {
    let GoalKind::Event { event_name } = &goal.kind else {
        return None;
    };
    (event.name == *event_name).then(|| ConversionFact {
        tenant: event.tenant.clone(),
        goal_id: goal.id.clone(),
        key: event.event_id.clone(),
        customer_id: event.customer_id.clone(),
        ts: event.ts,
        value_micros: event.value_micros.unwrap_or(0),
        source_event_id: event.event_id.clone(),
        explicit_msg_hash: event.msg_hash.clone(),
    })
}

pub fn order_goals(config: &TenantConfig) -> impl Iterator<Item = &Goal> {
    config.goals.iter().filter(|g| matches!(g.kind, GoalKind::Order { .. }))
}

pub fn event_goals<'a>(config: &'a TenantConfig, name: &'a str) -> impl Iterator<Item = &'a Goal> {
    config.goals.iter().filter(move |g| matches!(&g.kind, GoalKind::Event { event_name } if event_name == name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_GOAL_ID;

    fn record(event_id: &str, status: &str, ts: i64, amount: i64) -> OrderRecord {
        OrderRecord {
            tenant: "t".into(),
            event_id: event_id.into(),
            order_id: "o1".into(),
            customer_id: "c".into(),
            status: status.into(),
            amount_minor: amount,
            currency: "USD".into(),
            categories: vec!["shoes".into()],
            channel: "app".into(),
            ts,
            msg_hash: None,
        }
    }

    fn orders_goal() -> Goal {
        Goal::default_orders()
    }

    fn convert(records: &[OrderRecord]) -> Option<(i64, String, i64)> {
        order_conversion(&TenantConfig::defaults("t"), &orders_goal(), records)
            .map(|f| (f.ts, f.source_event_id, f.value_micros))
    }

    #[test]
    fn earliest_qualifying_status_converts_whatever_the_arrival_order() {
        let records = vec![record("r3", "DELIVERED", 30, 900), record("r1", "CREATED", 10, 1000), record("r2", "PAID", 20, 1000)];
        assert_eq!(convert(&records), Some((20, "r2".into(), 1000 * MICROS_PER_UNIT)));
        let mut reversed = records.clone();
        reversed.reverse();
        assert_eq!(convert(&reversed), convert(&records));
    }

    #[test]
    fn refunds_and_cancellations_never_convert_or_subtract() {
        assert_eq!(convert(&[record("r1", "REFUNDED", 10, 5), record("r2", "CANCELLED", 11, 5)]), None);
        assert_eq!(convert(&[record("r1", "PAID", 10, 5), record("r2", "REFUNDED", 11, 5)]), Some((10, "r1".into(), 5 * MICROS_PER_UNIT)));
    }

    #[test]
    fn equal_times_pick_the_smaller_event_id() {
        assert_eq!(convert(&[record("b", "PAID", 10, 1), record("a", "PLACED", 10, 2)]).map(|c| c.1), Some("a".into()));
    }

    #[test]
    fn other_currencies_do_not_count() {
        let mut euro = record("r1", "PAID", 10, 5);
        euro.currency = "EUR".into();
        assert_eq!(convert(&[euro.clone()]), None);
        assert_eq!(convert(&[euro, record("r2", "DELIVERED", 20, 7)]).map(|c| c.1), Some("r2".into()));
    }

    #[test]
    fn categories_and_channels_filter_when_set() {
        let config = TenantConfig::defaults("t");
        let goal = Goal {
            id: "shoes-web".into(),
            kind: GoalKind::Order {
                statuses: vec!["PAID".into()],
                categories: vec!["shoes".into(), "bags".into()],
                order_channels: vec!["web".into()],
            },
        };
        let mut web = record("r1", "PAID", 1, 1);
        web.channel = "web".into();
        assert!(order_conversion(&config, &goal, std::slice::from_ref(&web)).is_some());
        let app = record("r2", "PAID", 1, 1);
        assert!(order_conversion(&config, &goal, &[app]).is_none());
        let mut hats = web.clone();
        hats.categories = vec!["hats".into()];
        assert!(order_conversion(&config, &goal, &[hats]).is_none());
        assert_eq!(goal.id, "shoes-web");
        assert_ne!(goal.id, DEFAULT_GOAL_ID);
    }

    #[test]
    fn the_qualifying_records_msg_hash_is_the_explicit_one() {
        let mut paid = record("r2", "PAID", 20, 1);
        paid.msg_hash = Some("m2".into());
        let mut created = record("r1", "CREATED", 10, 1);
        created.msg_hash = Some("m1".into());
        let fact = order_conversion(&TenantConfig::defaults("t"), &orders_goal(), &[created, paid]).unwrap();
        assert_eq!(fact.explicit_msg_hash.as_deref(), Some("m2"));
    }

    #[test]
    fn event_goals_match_by_name_with_value_or_zero() {
        let goal = Goal { id: "watch".into(), kind: GoalKind::Event { event_name: "watch".into() } };
        let event = AppEvent {
            tenant: "t".into(),
            event_id: "e1".into(),
            customer_id: "c".into(),
            name: "watch".into(),
            ts: 5,
            value_micros: None,
            msg_hash: None,
        };
        assert_eq!(event_conversion(&goal, &event).map(|f| f.value_micros), Some(0));
        let other = AppEvent { name: "view".into(), ..event };
        assert!(event_conversion(&goal, &other).is_none());
    }
}
