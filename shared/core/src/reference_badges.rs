//! A brute-force reference evaluation of docs/behaviour/badges.md (badges) for one customer, that
//! tests compare [`crate::badges`] against.
//!
//! Written from the rules in docs/behaviour/badges.md, apart from the engine: only the public types of
//! [`crate::badges`] are reused (as inputs and outputs), never its functions. Everything is
//! recomputed by literal scans, quadratic or worse on purpose: every candidate record
//! recounts every record the rule would count at it, every order is looked up again in
//! the whole activity for its earliest counted status record, holding is a replay from
//! scratch per badge.
//!
//! Where those rules are silent, this follows the choices the engine documents:
//! - a derived expiry has the earn's `source` and the reason `"validity ended"`; every
//!   `EARNED` entry (stored or rule) of a badge with `validity_ms` and/or `expires_at` gets
//!   one, at the earlier of `earn ts + validity_ms` and `expires_at`, once that is `<= now`,
//!   unless another entry of the badge comes after the earn and before that expiry;
//! - an inactive badge issues no rule earn dated at or after its `inactive_since`;
//! - `rule_saved_at == None` means the rule counts every record;
//! - a held badge without a definition shows its id as its name and ranks last
//!   (`i64::MAX`);
//! - rule earn reasons: `"<count> <event_name> events"`, `"<count> orders"` (singular for 1),
//!   `"spent <sum at the earn> of <amount>"`, money in major units with the currency
//!   (`spent 534.98 USD of 500.00 USD`).

use crate::badges::{
    BadgeDefinition, Progress, RuleKind, TimelineEntry, TrophyCase, TrophyHeld, TrophyLocked,
};
use crate::model::{BadgeAction, BadgeEvent, BadgeSource, Millis, Record};

/// A record a rule counts: where it sits in time and what it adds.
#[derive(Debug, Clone)]
struct Unit {
    ts: Millis,
    event_id: String,
    /// 1 for counts, the order's amount for spend.
    weight: i128,
}

/// `(ts, event_id)` of `a` is at or before that of `b`.
fn at_or_before(a_ts: Millis, a_id: &str, b_ts: Millis, b_id: &str) -> bool {
    a_ts < b_ts || (a_ts == b_ts && a_id <= b_id)
}

/// Every record of the activity that has an `event_id`, as `(ts, event_id)`.
fn all_positions(activity: &[Record]) -> Vec<(Millis, String)> {
    let mut positions: Vec<(Millis, String)> = Vec::new();
    for record in activity {
        let position = match record {
            Record::Message(_) => continue,
            Record::Touch(t) => (t.ts, t.event_id.clone()),
            Record::Event(e) => (e.ts, e.event_id.clone()),
            Record::Order(o) => (o.ts, o.event_id.clone()),
            Record::Badge(b) => (b.ts, b.event_id.clone()),
        };
        positions.push(position);
    }
    // Oldest first, by ts, then event_id: a plain insertion sort.
    let mut sorted: Vec<(Millis, String)> = Vec::new();
    for position in positions {
        let at = sorted
            .iter()
            .position(|other| !at_or_before(other.0, &other.1, position.0, &position.1))
            .unwrap_or(sorted.len());
        sorted.insert(at, position);
    }
    sorted
}

fn counts_status(status: &str) -> bool {
    status == "PLACED" || status == "PAID" || status == "DELIVERED"
}

/// What the rule of `badge` counts, before any time filter: app events of its name, or
/// each order once at its earliest (ts, then event_id) status record that is PLACED, PAID
/// or DELIVERED in `currency`.
fn units(kind: &RuleKind, currency: &str, activity: &[Record]) -> Vec<Unit> {
    let mut units = Vec::new();
    match kind {
        RuleKind::EventCount { event_name, .. } => {
            for record in activity {
                if let Record::Event(e) = record
                    && e.name == *event_name
                {
                    units.push(Unit { ts: e.ts, event_id: e.event_id.clone(), weight: 1 });
                }
            }
        }
        RuleKind::OrderCount { .. } | RuleKind::Spend { .. } => {
            let mut order_ids: Vec<String> = Vec::new();
            for record in activity {
                if let Record::Order(o) = record
                    && !order_ids.contains(&o.order_id)
                {
                    order_ids.push(o.order_id.clone());
                }
            }
            for order_id in order_ids {
                let mut earliest: Option<(Millis, String, i64)> = None;
                for record in activity {
                    let Record::Order(o) = record else { continue };
                    if o.order_id != order_id || !counts_status(&o.status) || o.currency != currency {
                        continue;
                    }
                    let earlier = match &earliest {
                        None => true,
                        Some((ts, id, _)) => at_or_before(o.ts, &o.event_id, *ts, id),
                    };
                    if earlier {
                        earliest = Some((o.ts, o.event_id.clone(), o.amount_minor));
                    }
                }
                if let Some((ts, event_id, amount)) = earliest {
                    let weight = match kind {
                        RuleKind::Spend { .. } => i128::from(amount),
                        _ => 1,
                    };
                    units.push(Unit { ts, event_id, weight });
                }
            }
        }
    }
    units
}

fn target_of(kind: &RuleKind) -> i128 {
    match kind {
        RuleKind::EventCount { count, .. } | RuleKind::OrderCount { count } => i128::from(*count),
        RuleKind::Spend { amount_minor } => i128::from(*amount_minor),
    }
}

/// Whether the rule counts a record at `ts` at all: from the save on without `retro`.
fn counts_at_all(badge: &BadgeDefinition, ts: Millis) -> bool {
    badge.retro || badge.rule_saved_at.is_none_or(|saved| ts >= saved)
}

/// The rule earn of `badge`: `(ts, source, reason)`.
fn rule_earn(badge: &BadgeDefinition, currency: &str, activity: &[Record]) -> Option<(Millis, BadgeSource, String)> {
    let rule = badge.rule.as_ref()?;
    let units = units(&rule.kind, currency, activity);
    let target = target_of(&rule.kind);
    // Every record is a candidate, oldest first; the first at which the counted records up
    // to it (within period_ms before it) reach the target is the earn.
    for (ts, event_id) in all_positions(activity) {
        let mut sum: i128 = 0;
        for unit in &units {
            let up_to = at_or_before(unit.ts, &unit.event_id, ts, &event_id);
            let in_period = rule.period_ms.is_none_or(|period| ts - period <= unit.ts && unit.ts <= ts);
            if up_to && in_period && counts_at_all(badge, unit.ts) {
                sum += unit.weight;
            }
        }
        if sum < target {
            continue;
        }
        // Met here. Once per customer, ever: a later meeting never earns.
        if badge.inactive_since.is_some_and(|since| ts >= since) {
            return None;
        }
        let source = match badge.rule_saved_at {
            Some(saved) if ts < saved => BadgeSource::RetroEarn,
            _ => BadgeSource::Rule,
        };
        let reason = match &rule.kind {
            RuleKind::EventCount { event_name, count } if *count == 1 => format!("1 {event_name} event"),
            RuleKind::EventCount { event_name, count } => format!("{count} {event_name} events"),
            RuleKind::OrderCount { count } if *count == 1 => "1 order".to_owned(),
            RuleKind::OrderCount { count } => format!("{count} orders"),
            // Money as people read it, in the tenant's currency (`spent 534.98 USD of 500.00 USD`).
            RuleKind::Spend { amount_minor } => {
                let money = |minor: i128| crate::currency::format_money(minor * 1_000_000, currency);
                format!("spent {} of {}", money(sum), money(i128::from(*amount_minor)))
            }
        };
        return Some((ts, source, reason));
    }
    None
}

fn definition<'a>(badges: &'a [BadgeDefinition], badge_id: &str) -> Option<&'a BadgeDefinition> {
    badges.iter().find(|b| b.id == badge_id)
}

/// When an earn at `earned_at` of `badge_id` expires, if it does.
fn expiry(badges: &[BadgeDefinition], badge_id: &str, earned_at: Millis) -> Option<Millis> {
    let badge = definition(badges, badge_id)?;
    let mut candidates: Vec<Millis> = Vec::new();
    if let Some(validity) = badge.validity_ms {
        candidates.push(earned_at + validity);
    }
    if let Some(at) = badge.expires_at {
        candidates.push(at);
    }
    candidates.into_iter().min()
}

/// A customer's whole timeline at `now`, newest first (ts descending, then event_id
/// descending): `stored` badge events, one rule earn per badge (`rule:<badge_id>`) and the
/// passed expiries (`expiry:<earn event_id>`).
pub fn timeline(
    badges: &[BadgeDefinition],
    currency: &str,
    stored: &[BadgeEvent],
    activity: &[Record],
    now: Millis,
) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> = Vec::new();
    for event in stored {
        entries.push(TimelineEntry {
            event_id: event.event_id.clone(),
            badge_id: event.badge_id.clone(),
            action: event.action,
            ts: event.ts,
            source: event.source,
            reason: event.reason.clone(),
        });
    }
    for badge in badges {
        if let Some((ts, source, reason)) = rule_earn(badge, currency, activity) {
            entries.push(TimelineEntry {
                event_id: format!("rule:{}", badge.id),
                badge_id: badge.id.clone(),
                action: BadgeAction::Earned,
                ts,
                source,
                reason: Some(reason),
            });
        }
    }
    let mut expiries = Vec::new();
    for earn in &entries {
        if earn.action != BadgeAction::Earned {
            continue;
        }
        let Some(at) = expiry(badges, &earn.badge_id, earn.ts) else { continue };
        let expiry_id = format!("expiry:{}", earn.event_id);
        // Another entry of the badge after the earn and before its expiry decides instead.
        let superseded = entries.iter().any(|other| {
            other.badge_id == earn.badge_id
                && !at_or_before(other.ts, &other.event_id, earn.ts, &earn.event_id)
                && !at_or_before(at, &expiry_id, other.ts, &other.event_id)
        });
        if at <= now && !superseded {
            expiries.push(TimelineEntry {
                event_id: format!("expiry:{}", earn.event_id),
                badge_id: earn.badge_id.clone(),
                action: BadgeAction::Expired,
                ts: at,
                source: earn.source,
                reason: Some("validity ended".to_owned()),
            });
        }
    }
    entries.extend(expiries);
    // Newest first: a selection sort picking the greatest (ts, event_id) each time.
    let mut sorted = Vec::new();
    while !entries.is_empty() {
        let mut best = 0;
        for (i, entry) in entries.iter().enumerate() {
            let current = &entries[best];
            if !at_or_before(entry.ts, &entry.event_id, current.ts, &current.event_id) {
                best = i;
            }
        }
        sorted.push(entries.remove(best));
    }
    sorted
}

/// Whether `badge_id` is held at `now` by replaying `entries` (any order), and if so its
/// earn time and expiry.
fn holding(badges: &[BadgeDefinition], entries: &[TimelineEntry], badge_id: &str, now: Millis) -> Option<(Millis, Option<Millis>)> {
    let mut mine: Vec<&TimelineEntry> = entries.iter().filter(|e| e.badge_id == badge_id && e.ts <= now).collect();
    // Oldest first (bubble sort).
    for i in 0..mine.len() {
        for j in 0..mine.len() - 1 - i {
            if !at_or_before(mine[j].ts, &mine[j].event_id, mine[j + 1].ts, &mine[j + 1].event_id) {
                mine.swap(j, j + 1);
            }
        }
    }
    let mut state: Option<(Millis, Option<Millis>)> = None;
    for entry in mine {
        state = match entry.action {
            BadgeAction::Earned => Some((entry.ts, expiry(badges, badge_id, entry.ts))),
            BadgeAction::Revoked | BadgeAction::Expired => None,
        };
    }
    state.filter(|(_, expires)| expires.is_none_or(|at| at > now))
}

/// What the rule of `badge` counts at `now`, and its target.
fn progress(badge: &BadgeDefinition, currency: &str, activity: &[Record], now: Millis) -> Option<Progress> {
    let rule = badge.rule.as_ref()?;
    let mut current: i128 = 0;
    for unit in units(&rule.kind, currency, activity) {
        let in_period = unit.ts <= now && rule.period_ms.is_none_or(|period| now - period <= unit.ts);
        if in_period && counts_at_all(badge, unit.ts) {
            current += unit.weight;
        }
    }
    let clamp = |v: i128| i64::try_from(v).unwrap_or(i64::MAX);
    Some(Progress { current: clamp(current), target: clamp(target_of(&rule.kind)) })
}

fn by_rank_then_id(a: (i64, &str), b: (i64, &str)) -> std::cmp::Ordering {
    a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1))
}

/// The trophy case at `now`: badges held (by replaying the reference timeline) and active
/// badges not held, each by rank, then id.
pub fn trophy_case(
    badges: &[BadgeDefinition],
    currency: &str,
    stored: &[BadgeEvent],
    activity: &[Record],
    now: Millis,
) -> TrophyCase {
    let entries = timeline(badges, currency, stored, activity, now);
    let mut ids: Vec<String> = Vec::new();
    for entry in &entries {
        if !ids.contains(&entry.badge_id) {
            ids.push(entry.badge_id.clone());
        }
    }
    let mut held = Vec::new();
    for id in &ids {
        if let Some((earned_at, expires_at)) = holding(badges, &entries, id, now) {
            let badge = definition(badges, id);
            held.push(TrophyHeld {
                badge_id: id.clone(),
                name: badge.map_or_else(|| id.clone(), |b| b.name.clone()),
                rank: badge.map_or(i64::MAX, |b| b.rank),
                earned_at,
                expires_at,
            });
        }
    }
    held.sort_by(|a, b| by_rank_then_id((a.rank, &a.badge_id), (b.rank, &b.badge_id)));
    let mut locked = Vec::new();
    for badge in badges {
        if !badge.active || held.iter().any(|h| h.badge_id == badge.id) {
            continue;
        }
        locked.push(TrophyLocked {
            badge_id: badge.id.clone(),
            name: badge.name.clone(),
            rank: badge.rank,
            criteria: badge.criteria.clone(),
            progress: progress(badge, currency, activity, now),
        });
    }
    locked.sort_by(|a, b| by_rank_then_id((a.rank, &a.badge_id), (b.rank, &b.badge_id)));
    TrophyCase { held, locked }
}

/// The entries of a newest-first timeline a filter keeps: one badge or all, `from <= ts < to`.
pub fn filtered(entries: &[TimelineEntry], badge_id: Option<&str>, from: Option<Millis>, to: Option<Millis>) -> Vec<TimelineEntry> {
    entries
        .iter()
        .filter(|e| badge_id.is_none_or(|id| e.badge_id == id))
        .filter(|e| from.is_none_or(|from| from <= e.ts))
        .filter(|e| to.is_none_or(|to| e.ts < to))
        .cloned()
        .collect()
}
