//! Badges (docs/behaviour/badges.md): definitions and the rules for changing them, rule earns,
//! derived expiries, the timeline, holding by replay, the trophy case and progress.
//!
//! Everything here is derived from what is stored: a customer's badge events and the app
//! events and order records the rules count. Rule earns and expiries are computed when read,
//! so they are exactly what the rules give over everything ingested so far, whatever order
//! records arrived in, and a rule can never earn twice: there is one derived earn per
//! customer and rule, never a stored copy to double.

use crate::model::{BadgeAction, BadgeEvent, BadgeSource, Millis, Record};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::BTreeMap;

/// How many badges a tenant may define: enough for any loyalty programme, few enough that
/// a trophy case is one small read.
pub const MAX_BADGES: usize = 500;
/// Order statuses a rule counts (docs/behaviour/badges.md).
pub const COUNTED_ORDER_STATUSES: [&str; 3] = ["PLACED", "PAID", "DELIVERED"];
/// Prefix of a derived rule earn's event id: `rule:<badge_id>`.
pub const RULE_EARN_PREFIX: &str = "rule:";
/// Prefix of a derived expiry's event id: `expiry:<event_id of the earn>`.
pub const EXPIRY_PREFIX: &str = "expiry:";

/// What a rule counts and how far it must get.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RuleKind {
    /// App events named `event_name`.
    EventCount { event_name: String, count: u64 },
    /// Orders, each once at its earliest counted status record.
    OrderCount { count: u64 },
    /// The sum of those orders' amounts, in minor units of the tenant currency.
    Spend { amount_minor: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeRule {
    pub kind: RuleKind,
    /// Only records with `t - period_ms <= ts <= t` count towards an earn at `t`.
    pub period_ms: Option<Millis>,
}

impl BadgeRule {
    /// `count` or `amount_minor`: what a progress bar fills up to.
    pub fn target(&self) -> i64 {
        match &self.kind {
            RuleKind::EventCount { count, .. } | RuleKind::OrderCount { count } => i64::try_from(*count).unwrap_or(i64::MAX),
            RuleKind::Spend { amount_minor } => *amount_minor,
        }
    }

    pub fn kind_name(&self) -> &'static str {
        match self.kind {
            RuleKind::EventCount { .. } => "EVENT_COUNT",
            RuleKind::OrderCount { .. } => "ORDER_COUNT",
            RuleKind::Spend { .. } => "SPEND",
        }
    }
}

/// A badge as marketing defines it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeDefinition {
    pub id: String,
    pub name: String,
    pub description: String,
    /// Text: what earns it.
    pub criteria: String,
    pub icon_url: String,
    /// Lower shows first.
    pub rank: i64,
    pub benefits: Vec<String>,
    /// An inactive badge is not issued by its rule; holders keep it.
    pub active: bool,
    /// A badge earned at `t` expires at `t + validity_ms`.
    pub validity_ms: Option<Millis>,
    /// It expires then for every holder.
    pub expires_at: Option<Millis>,
    pub rule: Option<BadgeRule>,
    /// Whether the rule counts records from before it was saved.
    pub retro: bool,
    /// Server time the rule was first saved; set by [`BadgeBook::save`].
    pub rule_saved_at: Option<Millis>,
    /// Server time the badge was last deactivated, while it is inactive; set by
    /// [`BadgeBook::save`]. The rule issues no earn dated at or after it.
    pub inactive_since: Option<Millis>,
}

impl BadgeDefinition {
    /// A definition with only the required text; the rest at their defaults.
    pub fn new(id: &str, name: &str) -> BadgeDefinition {
        BadgeDefinition {
            id: id.to_owned(),
            name: name.to_owned(),
            description: String::new(),
            criteria: String::new(),
            icon_url: String::new(),
            rank: 0,
            benefits: Vec::new(),
            active: true,
            validity_ms: None,
            expires_at: None,
            rule: None,
            retro: false,
            rule_saved_at: None,
            inactive_since: None,
        }
    }

    /// When a badge earned at `earned_at` expires: the earlier of its validity and the
    /// badge's own end, if either is set.
    pub fn expiry_of(&self, earned_at: Millis) -> Option<Millis> {
        let by_validity = self.validity_ms.map(|validity| earned_at.saturating_add(validity));
        match (by_validity, self.expires_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// What a badge definition change was refused for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadgeError {
    #[error("invalid badge: {0}")]
    Invalid(String),
    #[error("badge {0:?} is already saved with a different rule; a saved rule cannot be changed")]
    RuleChanged(String),
    #[error("badge {0:?} does not exist")]
    NotFound(String),
    #[error("tenant already has {MAX_BADGES} badges")]
    TooMany,
}

/// Whether a save created the badge or updated a saved one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadgeSaved {
    Created,
    Updated,
}

/// A tenant's badge definitions, changed by compare-and-set on `version` like its config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadgeBook {
    pub tenant: String,
    /// In creation order.
    pub badges: Vec<BadgeDefinition>,
    /// Bumped on every change; 0: nothing saved.
    pub version: u64,
}

impl BadgeBook {
    pub fn empty(tenant: &str) -> BadgeBook {
        BadgeBook { tenant: tenant.to_owned(), badges: Vec::new(), version: 0 }
    }

    pub fn get(&self, badge_id: &str) -> Option<&BadgeDefinition> {
        self.badges.iter().find(|b| b.id == badge_id)
    }

    /// Saves a definition at server time `now`. A saved badge keeps its rule (saving it
    /// again with the same rule and `retro` is an update of everything else; another rule
    /// is refused) and the time that rule was saved.
    pub fn save(&mut self, mut badge: BadgeDefinition, now: Millis) -> Result<BadgeSaved, BadgeError> {
        validate(&badge)?;
        match self.badges.iter_mut().find(|b| b.id == badge.id) {
            Some(saved) => {
                // A badge without a rule may be given one; a saved rule stays as it is.
                let rule_changed = saved.rule.is_some() && (saved.rule != badge.rule || saved.retro != badge.retro);
                if rule_changed {
                    return Err(BadgeError::RuleChanged(badge.id));
                }
                badge.rule_saved_at = match saved.rule {
                    Some(_) => saved.rule_saved_at,
                    None => badge.rule.as_ref().map(|_| now),
                };
                badge.inactive_since = match (saved.active, badge.active) {
                    (_, true) => None,
                    (true, false) => Some(now),
                    (false, false) => saved.inactive_since,
                };
                *saved = badge;
                Ok(BadgeSaved::Updated)
            }
            None => {
                if self.badges.len() >= MAX_BADGES {
                    return Err(BadgeError::TooMany);
                }
                badge.rule_saved_at = badge.rule.as_ref().map(|_| now);
                // Created inactive: its rule has issued nothing, not even retro earns.
                badge.inactive_since = (!badge.active).then_some(Millis::MIN);
                self.badges.push(badge);
                Ok(BadgeSaved::Created)
            }
        }
    }

    /// Turns a badge's issuing by rule off (holders keep it) or back on.
    pub fn set_active(&mut self, badge_id: &str, active: bool, now: Millis) -> Result<(), BadgeError> {
        let mut badge = self.get(badge_id).cloned().ok_or_else(|| BadgeError::NotFound(badge_id.to_owned()))?;
        badge.active = active;
        self.save(badge, now).map(|_| ())
    }
}

fn validate(badge: &BadgeDefinition) -> Result<(), BadgeError> {
    let invalid = |message: String| Err(BadgeError::Invalid(message));
    let id_ok = !badge.id.is_empty()
        && badge.id.len() <= 64
        && badge.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !id_ok {
        return invalid(format!("id {:?} must be 1-64 characters of letters, digits, '_', '-' or '.'", badge.id));
    }
    if badge.name.trim().is_empty() {
        return invalid(format!("badge {:?} needs a name", badge.id));
    }
    if badge.validity_ms.is_some_and(|v| v <= 0) {
        return invalid(format!("badge {:?}: validity_ms must be positive", badge.id));
    }
    let Some(rule) = &badge.rule else { return Ok(()) };
    if rule.period_ms.is_some_and(|p| p <= 0) {
        return invalid(format!("badge {:?}: rule period_ms must be positive", badge.id));
    }
    match &rule.kind {
        RuleKind::EventCount { event_name, .. } if event_name.is_empty() => {
            invalid(format!("badge {:?}: an EVENT_COUNT rule needs an event_name", badge.id))
        }
        RuleKind::EventCount { count: 0, .. } | RuleKind::OrderCount { count: 0 } => {
            invalid(format!("badge {:?}: a rule's count must be at least 1", badge.id))
        }
        RuleKind::Spend { amount_minor } if *amount_minor <= 0 => {
            invalid(format!("badge {:?}: a SPEND rule's amount_minor must be positive", badge.id))
        }
        RuleKind::EventCount { .. } | RuleKind::OrderCount { .. } | RuleKind::Spend { .. } => Ok(()),
    }
}

/// One record a rule counts: an app event (value 1) or an order at its earliest counted
/// status record (value: that record's amount).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    pub ts: Millis,
    pub event_id: String,
    pub value: i64,
}

/// The records `rule` counts among a customer's `activity` (app events and order status
/// records; anything else is ignored), sorted by `ts`, then `event_id`. Orders count once,
/// at their earliest record (by `ts`, then `event_id`) with a counted status in `currency`.
pub fn counted(rule: &BadgeRule, currency: &str, activity: &[Record]) -> Vec<Counted> {
    let mut items: Vec<Counted> = match &rule.kind {
        RuleKind::EventCount { event_name, .. } => activity
            .iter()
            .filter_map(|record| match record {
                Record::Event(e) if &e.name == event_name => Some(Counted { ts: e.ts, event_id: e.event_id.clone(), value: 1 }),
                _ => None,
            })
            .collect(),
        RuleKind::OrderCount { .. } | RuleKind::Spend { .. } => {
            let mut first: BTreeMap<&str, Counted> = BTreeMap::new();
            for record in activity {
                let Record::Order(o) = record else { continue };
                if o.currency != currency || !COUNTED_ORDER_STATUSES.contains(&o.status.as_str()) {
                    continue;
                }
                let candidate = Counted { ts: o.ts, event_id: o.event_id.clone(), value: o.amount_minor };
                match first.get(o.order_id.as_str()) {
                    Some(held) if order_of(held, &candidate) != Ordering::Greater => {}
                    _ => {
                        first.insert(&o.order_id, candidate);
                    }
                }
            }
            first.into_values().collect()
        }
    };
    items.sort_by(order_of);
    items
}

fn order_of(a: &Counted, b: &Counted) -> Ordering {
    (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id))
}

/// What a counted item adds: one for counts, its value for spend.
fn weight(rule: &BadgeRule, item: &Counted) -> i64 {
    match rule.kind {
        RuleKind::EventCount { .. } | RuleKind::OrderCount { .. } => 1,
        RuleKind::Spend { .. } => item.value,
    }
}

/// A rule's earn for one customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleEarn {
    pub ts: Millis,
    /// The record at which the rule was met.
    pub by_event_id: String,
    pub source: BadgeSource,
    pub reason: String,
}

/// When `badge`'s rule is met by a customer's `activity`: at the first counted record at
/// which the counted records up to it (within `period_ms` before it) reach the target.
/// Without `retro`, records before the rule was saved do not count; with it, an earn dated
/// before the save is a `RETRO_EARN`. An inactive badge issues no earn dated at or after
/// its deactivation.
pub fn rule_earn(badge: &BadgeDefinition, currency: &str, activity: &[Record]) -> Option<RuleEarn> {
    let rule = badge.rule.as_ref()?;
    let saved_at = badge.rule_saved_at.unwrap_or(Millis::MIN);
    let items: Vec<Counted> =
        counted(rule, currency, activity).into_iter().filter(|item| badge.retro || item.ts >= saved_at).collect();
    let target = rule.target();
    // i128: a sum of i64 amounts cannot overflow it.
    let target = i128::from(target);
    let mut sum: i128 = 0;
    let mut oldest = 0;
    for item in &items {
        sum += i128::from(weight(rule, item));
        if let Some(period) = rule.period_ms {
            while items[oldest].ts < item.ts.saturating_sub(period) {
                sum -= i128::from(weight(rule, &items[oldest]));
                oldest += 1;
            }
        }
        if sum < target {
            continue;
        }
        if badge.inactive_since.is_some_and(|since| item.ts >= since) {
            return None;
        }
        let source = if item.ts < saved_at { BadgeSource::RetroEarn } else { BadgeSource::Rule };
        let reason = match &rule.kind {
            RuleKind::EventCount { event_name, count: 1 } => format!("1 {event_name} event"),
            RuleKind::EventCount { event_name, count } => format!("{count} {event_name} events"),
            RuleKind::OrderCount { count: 1 } => "1 order".to_owned(),
            RuleKind::OrderCount { count } => format!("{count} orders"),
            // Money as people read it, in the tenant's currency (`spent 534.98 USD of 500.00 USD`).
            RuleKind::Spend { amount_minor } => {
                let money = |minor: i128| crate::currency::format_money(minor * 1_000_000, currency);
                format!("spent {} of {}", money(sum), money(i128::from(*amount_minor)))
            }
        };
        return Some(RuleEarn { ts: item.ts, by_event_id: item.event_id.clone(), source, reason });
    }
    None
}

/// How far a customer is towards a rule at `now`: what the rule counts over the records it
/// would count at `now` (within `period_ms` before now; from the rule's save on without
/// `retro`), and its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Progress {
    pub current: i64,
    pub target: i64,
}

pub fn progress(badge: &BadgeDefinition, currency: &str, activity: &[Record], now: Millis) -> Option<Progress> {
    let rule = badge.rule.as_ref()?;
    let saved_at = badge.rule_saved_at.unwrap_or(Millis::MIN);
    let since = rule.period_ms.map_or(Millis::MIN, |period| now.saturating_sub(period));
    let current = counted(rule, currency, activity)
        .iter()
        .filter(|item| item.ts <= now && item.ts >= since && (badge.retro || item.ts >= saved_at))
        .map(|item| weight(rule, item))
        .fold(0i64, i64::saturating_add);
    Some(Progress { current, target: rule.target() })
}

/// One entry of a customer's badge timeline, stored or derived.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimelineEntry {
    pub event_id: String,
    pub badge_id: String,
    pub action: BadgeAction,
    pub ts: Millis,
    pub source: BadgeSource,
    pub reason: Option<String>,
}

impl TimelineEntry {
    pub fn from_event(event: &BadgeEvent) -> TimelineEntry {
        TimelineEntry {
            event_id: event.event_id.clone(),
            badge_id: event.badge_id.clone(),
            action: event.action,
            ts: event.ts,
            source: event.source,
            reason: event.reason.clone(),
        }
    }

    /// The entry as a row of `customer_id`'s badge partition.
    pub fn into_event(self, tenant: &str, customer_id: &str) -> BadgeEvent {
        let TimelineEntry { event_id, badge_id, action, ts, source, reason } = self;
        BadgeEvent { tenant: tenant.to_owned(), event_id, customer_id: customer_id.to_owned(), badge_id, action, ts, source, reason }
    }

    /// Newest first: `ts` descending, then `event_id` descending.
    pub fn newest_first(a: &TimelineEntry, b: &TimelineEntry) -> Ordering {
        (b.ts, &b.event_id).cmp(&(a.ts, &a.event_id))
    }
}

/// The order of a customer's badge partition and timeline, as [`TimelineEntry::newest_first`]:
/// `ts` descending, then `event_id` descending.
pub fn newest_first(a: &BadgeEvent, b: &BadgeEvent) -> Ordering {
    (b.ts, &b.event_id).cmp(&(a.ts, &a.event_id))
}

/// Whether an event id names a derived entry (a rule earn or an expiry), which attribution
/// writes, rather than a stored badge event (ingest refuses such ids).
pub fn is_derived_id(event_id: &str) -> bool {
    event_id.starts_with(RULE_EARN_PREFIX) || event_id.starts_with(EXPIRY_PREFIX)
}

/// Whether a timeline shows `entry` at `now`: an expiry only once its time has passed.
pub fn is_visible(entry_event_id: &str, ts: Millis, now: Millis) -> bool {
    !entry_event_id.starts_with(EXPIRY_PREFIX) || ts <= now
}

/// The derived entries of a customer, whatever the time: each rule's earn
/// (`rule:<badge_id>`), and an expiry (`expiry:<earn's event_id>`) for every earn, stored or
/// derived, whose badge expires. An earn followed by another entry of its badge before its
/// expiry (revoked, expired or earned again) does not expire: the later entry decides from
/// then on, so an old earn's expiry never ends a newer earn. `stored` holds the customer's
/// stored badge events (derived ids are skipped). Attribution writes these entries beside
/// the stored ones, so that a timeline page is one range read.
pub fn derived(badges: &[BadgeDefinition], currency: &str, stored: &[BadgeEvent], activity: &[Record]) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> =
        stored.iter().filter(|event| !is_derived_id(&event.event_id)).map(TimelineEntry::from_event).collect();
    let first_derived = entries.len();
    for badge in badges {
        if let Some(earn) = rule_earn(badge, currency, activity) {
            entries.push(TimelineEntry {
                event_id: format!("{RULE_EARN_PREFIX}{}", badge.id),
                badge_id: badge.id.clone(),
                action: BadgeAction::Earned,
                ts: earn.ts,
                source: earn.source,
                reason: Some(earn.reason),
            });
        }
    }
    let by_id: BTreeMap<&str, &BadgeDefinition> = badges.iter().map(|b| (b.id.as_str(), b)).collect();
    // Each badge's entries oldest first, to find what follows an earn.
    let mut by_badge: BTreeMap<&str, Vec<&TimelineEntry>> = BTreeMap::new();
    for entry in &entries {
        by_badge.entry(&entry.badge_id).or_default().push(entry);
    }
    let mut expiries = Vec::new();
    for (badge_id, mut oldest_first) in by_badge {
        let Some(badge) = by_id.get(badge_id) else { continue };
        oldest_first.sort_by(|a, b| TimelineEntry::newest_first(b, a));
        for (at, earn) in oldest_first.iter().enumerate() {
            if earn.action != BadgeAction::Earned {
                continue;
            }
            let Some(expires) = badge.expiry_of(earn.ts) else { continue };
            let expiry = TimelineEntry {
                event_id: format!("{EXPIRY_PREFIX}{}", earn.event_id),
                badge_id: earn.badge_id.clone(),
                action: BadgeAction::Expired,
                ts: expires,
                source: earn.source,
                reason: Some("validity ended".to_owned()),
            };
            let superseded = oldest_first.get(at + 1).is_some_and(|next| (next.ts, &next.event_id) < (expiry.ts, &expiry.event_id));
            if !superseded {
                expiries.push(expiry);
            }
        }
    }
    let mut derived = entries.split_off(first_derived);
    derived.extend(expiries);
    derived.sort_by(TimelineEntry::newest_first);
    derived
}

/// A customer's whole badge timeline at `now`, newest first: the stored badge events and
/// the [`derived`] entries visible at `now` ([`is_visible`]).
pub fn timeline(
    badges: &[BadgeDefinition],
    currency: &str,
    stored: &[BadgeEvent],
    activity: &[Record],
    now: Millis,
) -> Vec<TimelineEntry> {
    let mut entries: Vec<TimelineEntry> =
        stored.iter().filter(|event| !is_derived_id(&event.event_id)).map(TimelineEntry::from_event).collect();
    let derived = derived(badges, currency, stored, activity);
    entries.extend(derived.into_iter().filter(|entry| is_visible(&entry.event_id, entry.ts, now)));
    entries.sort_by(TimelineEntry::newest_first);
    entries
}

/// A customer's timeline at `now` from their badge partition as stored: stored events and
/// the derived entries attribution wrote, the expiries only once passed. Newest first when
/// `rows` is (the store returns the partition so).
pub fn visible_timeline(rows: &[BadgeEvent], now: Millis) -> Vec<TimelineEntry> {
    rows.iter().filter(|row| is_visible(&row.event_id, row.ts, now)).map(TimelineEntry::from_event).collect()
}

/// A badge a customer holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Held {
    pub badge_id: String,
    pub earned_at: Millis,
    pub expires_at: Option<Millis>,
}

/// Which badges a customer holds at `now`, replaying each badge's entries oldest first:
/// `EARNED` holds it with that earn's expiry, `REVOKED` and `EXPIRED` release it; it is
/// held if it is held after the last entry at or before `now` and has not expired by then.
/// `entries` is a timeline ([`timeline`]); badges are looked up for their expiry.
pub fn held_now(badges: &[BadgeDefinition], entries: &[TimelineEntry], now: Millis) -> Vec<Held> {
    let by_id: BTreeMap<&str, &BadgeDefinition> = badges.iter().map(|b| (b.id.as_str(), b)).collect();
    let mut oldest_first: Vec<&TimelineEntry> = entries.iter().filter(|entry| entry.ts <= now).collect();
    oldest_first.sort_by(|a, b| TimelineEntry::newest_first(b, a));
    let mut state: BTreeMap<&str, Option<Held>> = BTreeMap::new();
    for entry in oldest_first {
        let holding = match entry.action {
            BadgeAction::Earned => Some(Held {
                badge_id: entry.badge_id.clone(),
                earned_at: entry.ts,
                expires_at: by_id.get(entry.badge_id.as_str()).and_then(|b| b.expiry_of(entry.ts)),
            }),
            BadgeAction::Revoked | BadgeAction::Expired => None,
        };
        state.insert(&entry.badge_id, holding);
    }
    state.into_values().flatten().filter(|held| held.expires_at.is_none_or(|at| at > now)).collect()
}

/// A badge in the trophy case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrophyHeld {
    pub badge_id: String,
    /// The badge's name, or its id when it has no definition (a badge issued before it was
    /// defined, or migrated from another system).
    pub name: String,
    pub rank: i64,
    pub earned_at: Millis,
    pub expires_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrophyLocked {
    pub badge_id: String,
    pub name: String,
    pub rank: i64,
    pub criteria: String,
    /// For a badge with a rule.
    pub progress: Option<Progress>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrophyCase {
    pub held: Vec<TrophyHeld>,
    pub locked: Vec<TrophyLocked>,
}

/// The badges a customer holds at `now` and the active ones it does not (locked, with
/// progress towards a rule), each by `rank`, then `id`. Undefined badges rank last.
pub fn trophy_case(badges: &[BadgeDefinition], currency: &str, entries: &[TimelineEntry], activity: &[Record], now: Millis) -> TrophyCase {
    let held = held_now(badges, entries, now);
    let mut held_rows: Vec<TrophyHeld> = held
        .iter()
        .map(|h| {
            let badge = badges.iter().find(|b| b.id == h.badge_id);
            TrophyHeld {
                badge_id: h.badge_id.clone(),
                name: badge.map_or_else(|| h.badge_id.clone(), |b| b.name.clone()),
                rank: badge.map_or(i64::MAX, |b| b.rank),
                earned_at: h.earned_at,
                expires_at: h.expires_at,
            }
        })
        .collect();
    held_rows.sort_by(|a, b| (a.rank, &a.badge_id).cmp(&(b.rank, &b.badge_id)));
    let mut locked: Vec<TrophyLocked> = badges
        .iter()
        .filter(|b| b.active && !held.iter().any(|h| h.badge_id == b.id))
        .map(|b| TrophyLocked {
            badge_id: b.id.clone(),
            name: b.name.clone(),
            rank: b.rank,
            criteria: b.criteria.clone(),
            progress: progress(b, currency, activity, now),
        })
        .collect();
    locked.sort_by(|a, b| (a.rank, &a.badge_id).cmp(&(b.rank, &b.badge_id)));
    TrophyCase { held: held_rows, locked }
}

/// Which entries of a timeline a query wants: one badge or all, `from <= ts < to`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimelineFilter {
    pub badge_id: Option<String>,
    pub from: Option<Millis>,
    pub to: Option<Millis>,
}

impl TimelineFilter {
    pub fn keeps(&self, entry: &TimelineEntry) -> bool {
        self.badge_id.as_ref().is_none_or(|id| *id == entry.badge_id)
            && self.from.is_none_or(|from| entry.ts >= from)
            && self.to.is_none_or(|to| entry.ts < to)
    }
}

/// Where a timeline page ends: the last entry's `ts` and `event_id`. The next page starts
/// strictly after it, newest first, so entries added meanwhile never repeat or shift a page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimelineCursor {
    pub ts: Millis,
    pub event_id: String,
}

impl TimelineCursor {
    /// Opaque to clients: the position as hex, so nobody is tempted to build one.
    pub fn encode(&self) -> String {
        let text = format!("{}:{}", self.ts, self.event_id);
        text.bytes().map(|b| format!("{b:02x}")).collect()
    }

    pub fn decode(cursor: &str) -> Option<TimelineCursor> {
        if !cursor.len().is_multiple_of(2) {
            return None;
        }
        let bytes: Option<Vec<u8>> =
            (0..cursor.len()).step_by(2).map(|i| cursor.get(i..i + 2).and_then(|h| u8::from_str_radix(h, 16).ok())).collect();
        let text = String::from_utf8(bytes?).ok()?;
        let (ts, event_id) = text.split_once(':')?;
        Some(TimelineCursor { ts: ts.parse().ok()?, event_id: event_id.to_owned() })
    }

    fn is_after(&self, entry: &TimelineEntry) -> bool {
        (entry.ts, entry.event_id.as_str()) < (self.ts, self.event_id.as_str())
    }
}

/// One page of a timeline (newest first) after `cursor`, and the cursor of the next page
/// when more entries follow.
pub fn page<'a>(
    entries: &'a [TimelineEntry],
    filter: &TimelineFilter,
    cursor: Option<&TimelineCursor>,
    size: usize,
) -> (Vec<&'a TimelineEntry>, Option<TimelineCursor>) {
    let mut rest = entries.iter().filter(|e| filter.keeps(e)).filter(|e| cursor.is_none_or(|c| c.is_after(e)));
    let page: Vec<&TimelineEntry> = rest.by_ref().take(size.max(1)).collect();
    let next = match (rest.next(), page.last()) {
        (Some(_), Some(last)) => Some(TimelineCursor { ts: last.ts, event_id: last.event_id.clone() }),
        _ => None,
    };
    (page, next)
}
