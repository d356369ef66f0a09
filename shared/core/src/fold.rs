//! Attribution as a fold: `(state, new records, config) -> (state', deltas)`, applied once
//! per commit window over in-memory state, with no store reads. It gives the conversions
//! and credit `services/attribution`'s engine gives and rests on the same rules:
//! [`attribution::credit`], [`goals::order_conversion`], [`goals::event_conversion`].
//!
//! Two kinds of keyed state, folded in this order within a window:
//! - [`OrderState`] per `(tenant, order_id)`: [`fold_order`] turns new status records into
//!   [`FactChange`]s (one per ORDER goal whose conversion changed); [`refold_order`] does it
//!   for every goal after a config change. An order converts for the customer of its
//!   qualifying record, so a change may move a fact between customers:
//!   [`FactChange::by_customer`] splits it. App events need no state: [`event_facts`].
//! - [`CustomerState`] per `(tenant, customer_id)`: touches and credited conversions in
//!   [`Segment`]s by UTC month, so that a commit rewrites only the months a window changed
//!   ([`CustomerDelta::dirty_segments`]). [`fold_customer`] adds touches and facts;
//!   [`recredit_messages`] follows messages registered late; [`recredit_all`] follows a
//!   config change.
//!
//! [`conversion_deltas`] turns conversion changes into rollup deltas (old negated, new added),
//! which a caller sums per bucket. Tested against the reference by
//! `tests/fold_matches_reference.rs`.
//!
//! Records must be deduplicated before the fold (docs/behaviour/records-and-config.md: the first arrival of an
//! `event_id` stands). Folding the same record twice is harmless (a touch or status record
//! already held is skipped, an unchanged fact emits nothing), so a window replayed after a
//! crash onto state committed with it changes nothing.

use crate::attribution::{self, Conversion, ConversionFact, Credit, Messages, Rule};
use crate::config::{GoalKind, TenantConfig};
use crate::goals;
use crate::models;
use crate::model::{AppEvent, Millis, OrderRecord, Touch};
use crate::rollup::{self, Cell, Granularity, Tally};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// `(goal_id, key)`: one conversion per key and goal (`key` an `order_id` or an event's `event_id`).
pub type ConversionKey = (String, String);

/// The segment (UTC month start) that a time belongs to.
pub fn segment_of(ts: Millis) -> Millis {
    Granularity::Month.bucket(ts)
}

/// The first and last segment starts holding times in `[from, to]`, for range reads of a
/// customer's months: times beyond ±2^50 ms (about 35,000 years, where month arithmetic
/// would overflow) read to the end.
pub fn segments_between(from: Millis, to: Millis) -> (Millis, Millis) {
    const FAR: Millis = 1 << 50;
    let first = if from < -FAR { Millis::MIN } else { segment_of(from.min(FAR)) };
    let last = if to > FAR { Millis::MAX } else { segment_of(to.max(-FAR)) };
    (first, last)
}

// ---------------------------------------------------------------------------------------
// Orders

/// One order's status records and the fact each ORDER goal gave when last folded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderState {
    /// Every accepted status record, sorted by `(ts, event_id)`. All are kept: a late
    /// record may be the earliest qualifying one, and a config change may qualify others.
    pub records: Vec<OrderRecord>,
    /// By goal id: what was emitted, so a change is emitted against exactly that (and a
    /// deleted goal's fact can be withdrawn).
    pub facts: BTreeMap<String, ConversionFact>,
}

/// A conversion fact that appeared, changed or went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactChange {
    pub goal_id: String,
    pub key: String,
    pub old: Option<ConversionFact>,
    pub new: Option<ConversionFact>,
}

impl FactChange {
    /// The part of the change each customer folds: one entry when `old` and `new` belong to
    /// the same customer, else the removal for the old customer and the addition for the new.
    pub fn by_customer(self) -> Vec<(String, FactChange)> {
        let FactChange { goal_id, key, old, new } = self;
        match (old, new) {
            (Some(old), Some(new)) if old.customer_id != new.customer_id => vec![
                (old.customer_id.clone(), FactChange { goal_id: goal_id.clone(), key: key.clone(), old: Some(old), new: None }),
                (new.customer_id.clone(), FactChange { goal_id, key, old: None, new: Some(new) }),
            ],
            (old, new) => match old.as_ref().or(new.as_ref()).map(|fact| fact.customer_id.clone()) {
                Some(customer_id) => vec![(customer_id, FactChange { goal_id, key, old, new })],
                None => Vec::new(),
            },
        }
    }

    fn customer_id(&self) -> Option<&str> {
        self.new.as_ref().or(self.old.as_ref()).map(|fact| fact.customer_id.as_str())
    }
}

fn by_time(a: &OrderRecord, b: &OrderRecord) -> std::cmp::Ordering {
    (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id))
}

/// Adds an order's new status records and returns the facts that changed. Only goals that
/// one of the new records qualifies for are evaluated: a record that qualifies for none
/// cannot change which one is earliest.
pub fn fold_order(state: &mut OrderState, new: &[OrderRecord], config: &TenantConfig) -> Vec<FactChange> {
    let mut added = Vec::new();
    for record in new {
        debug_assert!(state.records.first().is_none_or(|r| r.order_id == record.order_id), "one state per order");
        // Already held: a replayed window.
        if state.records.iter().any(|held| held.event_id == record.event_id) {
            continue;
        }
        let at = state.records.partition_point(|held| by_time(held, record).is_lt());
        state.records.insert(at, record.clone());
        added.push(record);
    }
    let goals = goals::order_goals(config)
        .filter(|goal| added.iter().any(|record| goals::order_record_qualifies(goal, &config.currency, record)));
    let goal_ids: Vec<String> = goals.map(|goal| goal.id.clone()).collect();
    refresh_order(state, config, goal_ids)
}

/// Evaluates every ORDER goal of an order again after a config change (a goal created or
/// deleted, the currency changed), and withdraws the facts of goals that are gone.
pub fn refold_order(state: &mut OrderState, config: &TenantConfig) -> Vec<FactChange> {
    let goal_ids: BTreeSet<String> =
        goals::order_goals(config).map(|goal| goal.id.clone()).chain(state.facts.keys().cloned()).collect();
    refresh_order(state, config, goal_ids)
}

fn refresh_order(state: &mut OrderState, config: &TenantConfig, goal_ids: impl IntoIterator<Item = String>) -> Vec<FactChange> {
    let mut changes = Vec::new();
    for goal_id in goal_ids {
        let fresh = config
            .goal(&goal_id)
            .filter(|goal| matches!(goal.kind, GoalKind::Order { .. }))
            .and_then(|goal| goals::order_conversion(config, goal, &state.records));
        let old = match &fresh {
            Some(fact) => state.facts.insert(goal_id.clone(), fact.clone()),
            None => state.facts.remove(&goal_id),
        };
        if old != fresh {
            let key = fresh.as_ref().or(old.as_ref()).map(|fact| fact.key.clone()).unwrap_or_default();
            changes.push(FactChange { goal_id, key, old, new: fresh });
        }
    }
    changes
}

/// The facts an app event adds: one per EVENT goal of its name. Events are not kept in any
/// state (each converts by itself), so an EVENT goal created later is filled by replaying
/// the log's events through this (see [`changed_event_goals`]).
pub fn event_facts(config: &TenantConfig, event: &AppEvent) -> Vec<FactChange> {
    goals::event_goals(config, &event.name)
        .filter_map(|goal| goals::event_conversion(goal, event))
        .map(|fact| FactChange { goal_id: fact.goal_id.clone(), key: fact.key.clone(), old: None, new: Some(fact) })
        .collect()
}

/// The goals whose EVENT conversions must be rebuilt after a config change from `old` to
/// `new`: those EVENT in either config and not saved identically in both (created, deleted,
/// or an id deleted and saved again with another definition). Customer state keeps no
/// events, so [`recredit_all`] drops their conversions and the caller replays the log's
/// events through [`event_facts`] for those of them that `new` has.
pub fn changed_event_goals(old: &TenantConfig, new: &TenantConfig) -> BTreeSet<String> {
    old.goals
        .iter()
        .chain(&new.goals)
        .filter(|goal| matches!(goal.kind, GoalKind::Event { .. }))
        .filter(|goal| old.goal(&goal.id) != new.goal(&goal.id))
        .map(|goal| goal.id.clone())
        .collect()
}

// ---------------------------------------------------------------------------------------
// Customers

/// What crediting reads besides the customer's own state.
#[derive(Debug, Clone, Copy)]
pub struct FoldContext<'a> {
    pub config: &'a TenantConfig,
    /// Every registered message the customer's touches and facts name (more is fine).
    pub messages: &'a Messages,
}

/// One customer's touches and credited conversions, by UTC month.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomerState {
    /// By month start ([`segment_of`]). A month with neither touches nor conversions is
    /// removed (and reported dirty, so a store deletes it).
    pub segments: BTreeMap<Millis, Segment>,
}

/// One UTC month of a customer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    /// Every touch with its `ts` in the month, sorted by `(ts, event_id)`. Touches are never
    /// dropped: a late conversion or a longer window may need any of them.
    pub touches: Vec<Touch>,
    /// The conversions whose fact's `ts` is in the month. Stored as a list: each one's key
    /// is in its fact, so a map would store it twice (and JSON has no tuple keys).
    #[serde(with = "listed_by_key")]
    pub conversions: BTreeMap<ConversionKey, Conversion>,
}

mod listed_by_key {
    use super::{key_of, ConversionKey};
    use crate::attribution::Conversion;
    use serde::{Deserialize, Deserializer, Serializer};
    use std::collections::BTreeMap;

    pub fn serialize<S: Serializer>(conversions: &BTreeMap<ConversionKey, Conversion>, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(conversions.values())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<BTreeMap<ConversionKey, Conversion>, D::Error> {
        let list = Vec::<Conversion>::deserialize(deserializer)?;
        Ok(list.into_iter().map(|conversion| (key_of(&conversion.fact), conversion)).collect())
    }
}

impl Segment {
    /// The touches with `from <= ts <= to`, a slice of the sorted list.
    fn touches_between(&self, from: Millis, to: Millis) -> &[Touch] {
        let start = self.touches.partition_point(|touch| touch.ts < from);
        let end = self.touches.partition_point(|touch| touch.ts <= to);
        &self.touches[start..end.max(start)]
    }

    fn is_empty(&self) -> bool {
        self.touches.is_empty() && self.conversions.is_empty()
    }
}

/// A conversion row that appeared, changed (credit, or fact) or went away.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConversionChange {
    pub old: Option<Conversion>,
    pub new: Option<Conversion>,
}

/// What one fold of a customer changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerDelta {
    /// Only rows that differ, each conversion at most once.
    pub conversions: Vec<ConversionChange>,
    /// The month starts whose [`Segment`] changed (or was removed): what a store rewrites.
    pub dirty_segments: BTreeSet<Millis>,
    /// The `msg_hash`es of the folded touches and facts that are not registered: a store
    /// indexes the customer under them, to call [`recredit_messages`] on registration.
    pub unregistered_messages: BTreeSet<String>,
}

impl CustomerState {
    pub fn touches(&self) -> impl Iterator<Item = &Touch> {
        self.segments.values().flat_map(|segment| &segment.touches)
    }

    pub fn conversions(&self) -> impl Iterator<Item = &Conversion> {
        self.segments.values().flat_map(|segment| segment.conversions.values())
    }

    /// Every `msg_hash` the state names (touched or explicit): a store rebuilding its index
    /// of unregistered messages keeps those not registered.
    pub fn referenced_messages(&self) -> BTreeSet<&str> {
        let touched = self.touches().map(|touch| touch.msg_hash.as_str());
        let explicit = self.conversions().filter_map(|c| c.fact.explicit_msg_hash.as_deref());
        touched.chain(explicit).collect()
    }

    /// The stored conversion of `key`, looked for in the months of the given times (those
    /// of the facts a change names: a conversion lives in its fact's month).
    fn find(&self, key: &ConversionKey, hints: impl IntoIterator<Item = Millis>) -> Option<&Conversion> {
        hints.into_iter().find_map(|ts| self.segments.get(&segment_of(ts))?.conversions.get(key))
    }

    /// The conversions with `from <= ts <= to`.
    fn conversions_between(&self, from: Millis, to: Millis) -> impl Iterator<Item = &Conversion> {
        self.segments
            .range(segment_of(from)..=segment_of(to))
            .flat_map(|(_, segment)| segment.conversions.values())
            .filter(move |c| from <= c.fact.ts && c.fact.ts <= to)
    }

    /// docs/behaviour/attribution.md for one fact, over the touches of at most the longest window before
    /// it. Months are tried latest first, each with [`attribution::credit`]: a winner in a
    /// later month is later than any touch of an earlier one, so the first credit found is
    /// the one over all of them.
    fn credit(&self, fact: &ConversionFact, ctx: FoldContext<'_>) -> Credit {
        let from = fact.ts.saturating_sub(ctx.config.max_window_ms());
        let mut last = None;
        for (_, segment) in self.segments.range(segment_of(from)..=segment_of(fact.ts)).rev() {
            let credit = attribution::credit(fact, segment.touches_between(from, fact.ts), ctx.messages, ctx.config);
            if credit.rule != Rule::Unattributed {
                return credit;
            }
            last = Some(credit);
        }
        // No month in reach: only an explicit msg_hash can credit it.
        last.unwrap_or_else(|| attribution::credit(fact, &[], ctx.messages, ctx.config))
    }

    /// `fact` credited: the crediting rules' credit and, when last touch chose among two or more
    /// candidates, the other models' split.
    fn credited(&self, fact: ConversionFact, ctx: FoldContext<'_>) -> Conversion {
        let credit = self.credit(&fact, ctx);
        let split = if credit.rule == Rule::LastTouch {
            let from = fact.ts.saturating_sub(ctx.config.max_window_ms());
            let months = self.segments.range(segment_of(from)..=segment_of(fact.ts));
            models::model_split(&fact, months.flat_map(|(_, segment)| segment.touches_between(from, fact.ts)), ctx.messages, ctx.config)
        } else {
            None
        };
        debug_assert!(split.as_ref().is_none_or(|split| split.messages.last() == credit.msg_hash.as_ref()), "last touch is the split's last");
        Conversion { fact, credit, split }
    }

    /// Adds a touch; false when it is already held (a replayed window).
    fn insert_touch(&mut self, touch: &Touch, dirty: &mut BTreeSet<Millis>) -> bool {
        let month = segment_of(touch.ts);
        let touches = &mut self.segments.entry(month).or_default().touches;
        match touches.binary_search_by(|held| (held.ts, &held.event_id).cmp(&(touch.ts, &touch.event_id))) {
            Ok(_) => false,
            Err(at) => {
                touches.insert(at, touch.clone());
                dirty.insert(month);
                true
            }
        }
    }

    /// Replaces the stored row `old` (exactly as stored) by `new`.
    fn replace(&mut self, old: Option<&Conversion>, new: Option<&Conversion>, dirty: &mut BTreeSet<Millis>) {
        if let Some(old) = old {
            let month = segment_of(old.fact.ts);
            if let Some(segment) = self.segments.get_mut(&month) {
                let removed = segment.conversions.remove(&key_of(&old.fact));
                debug_assert!(removed.as_ref() == Some(old), "the row replaced is the one stored");
                if segment.is_empty() {
                    self.segments.remove(&month);
                }
            }
            dirty.insert(month);
        }
        if let Some(new) = new {
            let month = segment_of(new.fact.ts);
            self.segments.entry(month).or_default().conversions.insert(key_of(&new.fact), new.clone());
            dirty.insert(month);
        }
    }

    /// Credits each target's fact (none: the conversion goes away) and writes the rows
    /// that differ from the stored ones. Credits read only touches, so the order of the
    /// targets does not matter.
    fn settle(&mut self, targets: BTreeMap<ConversionKey, Target>, ctx: FoldContext<'_>, delta: &mut CustomerDelta) {
        for (_, Target { stored, fact }) in targets {
            let new = fact.map(|fact| self.credited(fact, ctx));
            if new != stored {
                self.replace(stored.as_ref(), new.as_ref(), &mut delta.dirty_segments);
                delta.conversions.push(ConversionChange { old: stored, new });
            }
        }
        self.debug_check();
    }

    /// Adds every stored conversion with `from <= ts <= to` (not already a target) to be
    /// credited again.
    fn recredit_between(&self, from: Millis, to: Millis, targets: &mut BTreeMap<ConversionKey, Target>) {
        for conversion in self.conversions_between(from, to) {
            targets.entry(key_of(&conversion.fact)).or_insert_with(|| Target::recredit(conversion));
        }
    }

    fn debug_check(&self) {
        if cfg!(debug_assertions) {
            for (month, segment) in &self.segments {
                debug_assert!(!segment.is_empty(), "empty months are removed");
                debug_assert!(segment.touches.is_sorted_by_key(|t| (t.ts, &t.event_id)), "touches sorted");
                debug_assert!(segment.touches.iter().all(|t| segment_of(t.ts) == *month), "touch in its month");
                debug_assert!(
                    segment.conversions.iter().all(|(key, c)| segment_of(c.fact.ts) == *month && *key == key_of(&c.fact)),
                    "conversion in its fact's month, under its key"
                );
            }
        }
    }
}

fn key_of(fact: &ConversionFact) -> ConversionKey {
    (fact.goal_id.clone(), fact.key.clone())
}

/// One conversion to settle: the row stored before the fold, and its fact now.
struct Target {
    stored: Option<Conversion>,
    fact: Option<ConversionFact>,
}

impl Target {
    fn recredit(conversion: &Conversion) -> Target {
        Target { stored: Some(conversion.clone()), fact: Some(conversion.fact.clone()) }
    }
}

/// How long after `touch` a conversion may be credited to it now: its channel's window,
/// or `None` when it cannot be credited at all (message not registered or excluded, or not
/// the channel's `connect_on`). Such a touch changes no credit until its message is
/// registered ([`recredit_messages`]) or the config changes ([`recredit_all`]).
fn reach(touch: &Touch, ctx: FoldContext<'_>) -> Option<Millis> {
    let message = ctx.messages.get(&touch.msg_hash)?;
    let setting = ctx.config.setting(message.channel);
    (!ctx.config.is_excluded(&message.tags) && touch.kind == setting.connect_on).then_some(setting.window_ms)
}

/// Folds a customer's new touches and fact changes (the customer's part of each:
/// [`FactChange::by_customer`]). A new touch re-credits the customer's conversions at most
/// its channel's window after it; a new or changed fact is credited from the state's
/// touches. Several changes of one conversion in a call apply in order.
pub fn fold_customer(state: &mut CustomerState, touches: &[Touch], facts: &[FactChange], ctx: FoldContext<'_>) -> CustomerDelta {
    let mut delta = CustomerDelta::default();
    let customer = touches.first().map(|t| t.customer_id.as_str()).or_else(|| facts.first().and_then(FactChange::customer_id));
    debug_assert!(touches.iter().all(|t| Some(t.customer_id.as_str()) == customer), "one customer per fold");
    debug_assert!(facts.iter().all(|f| f.customer_id() == customer), "one customer per fold");

    let mut targets: BTreeMap<ConversionKey, Target> = BTreeMap::new();
    for change in facts {
        debug_assert!(change.old.as_ref().is_none_or(|f| (&f.goal_id, &f.key) == (&change.goal_id, &change.key)));
        debug_assert!(change.new.as_ref().is_none_or(|f| (&f.goal_id, &f.key) == (&change.goal_id, &change.key)));
        let key = (change.goal_id.clone(), change.key.clone());
        let hints = change.old.iter().chain(&change.new).map(|fact| fact.ts);
        let stored = state.find(&key, hints).cloned();
        let target = targets.entry(key).or_insert(Target { stored, fact: None });
        target.fact.clone_from(&change.new);
        if let Some(msg_hash) = change.new.as_ref().and_then(|fact| fact.explicit_msg_hash.as_ref())
            && !ctx.messages.contains_key(msg_hash)
        {
            delta.unregistered_messages.insert(msg_hash.clone());
        }
    }

    let mut spans: Vec<(Millis, Millis)> = Vec::new();
    for touch in touches {
        if !ctx.messages.contains_key(&touch.msg_hash) {
            delta.unregistered_messages.insert(touch.msg_hash.clone());
        }
        if state.insert_touch(touch, &mut delta.dirty_segments)
            && let Some(window) = reach(touch, ctx)
        {
            spans.push((touch.ts, touch.ts.saturating_add(window)));
        }
    }
    for (from, to) in merge(spans) {
        state.recredit_between(from, to, &mut targets);
    }
    state.settle(targets, ctx, &mut delta);
    delta
}

/// Sorts spans and merges those that overlap, so each conversion is looked at once.
fn merge(mut spans: Vec<(Millis, Millis)>) -> Vec<(Millis, Millis)> {
    spans.sort_unstable();
    let mut merged: Vec<(Millis, Millis)> = Vec::with_capacity(spans.len());
    for (from, to) in spans {
        match merged.last_mut() {
            Some(last) if from <= last.1 => last.1 = last.1.max(to),
            _ => merged.push((from, to)),
        }
    }
    merged
}

/// Messages registered late (now in `ctx.messages`): re-credits the conversions that name
/// one of them explicitly, and those a touch of one of them could now explain.
pub fn recredit_messages(state: &mut CustomerState, msg_hashes: &BTreeSet<String>, ctx: FoldContext<'_>) -> CustomerDelta {
    let mut delta = CustomerDelta::default();
    let mut targets: BTreeMap<ConversionKey, Target> = BTreeMap::new();
    for conversion in state.conversions() {
        if conversion.fact.explicit_msg_hash.as_ref().is_some_and(|h| msg_hashes.contains(h)) {
            targets.insert(key_of(&conversion.fact), Target::recredit(conversion));
        }
    }
    let spans = state
        .touches()
        .filter(|touch| msg_hashes.contains(&touch.msg_hash))
        .filter_map(|touch| Some((touch.ts, touch.ts.saturating_add(reach(touch, ctx)?))))
        .collect();
    for (from, to) in merge(spans) {
        state.recredit_between(from, to, &mut targets);
    }
    state.settle(targets, ctx, &mut delta);
    delta
}

/// After a config change (settings, excluded tags, currency, goals): re-credits every
/// conversion, and removes those of goals no longer in the config or in `dropped_goals`
/// ([`changed_event_goals`]). Call it before folding the new facts of the change (from
/// [`refold_order`], and from replaying events for the new EVENT goals), which it would
/// otherwise drop.
pub fn recredit_all(state: &mut CustomerState, dropped_goals: &BTreeSet<String>, ctx: FoldContext<'_>) -> CustomerDelta {
    let mut delta = CustomerDelta::default();
    let targets = state
        .conversions()
        .map(|conversion| {
            let goal_id = &conversion.fact.goal_id;
            let kept = ctx.config.goal(goal_id).is_some() && !dropped_goals.contains(goal_id);
            (key_of(&conversion.fact), Target { stored: Some(conversion.clone()), fact: kept.then(|| conversion.fact.clone()) })
        })
        .collect();
    state.settle(targets, ctx, &mut delta);
    delta
}

/// The rollup deltas of conversion changes, as `(tenant, ts, cell, tally)`: each old row's
/// cell at its time negated, each new row's added. Summed per bucket by the caller.
pub fn conversion_deltas(changes: &[ConversionChange]) -> impl Iterator<Item = (&str, Millis, Cell, Tally)> + '_ {
    changes.iter().flat_map(|change| {
        let old = change.old.as_ref().map(|c| (c, true));
        let new = change.new.as_ref().map(|c| (c, false));
        old.into_iter().chain(new).flat_map(|(c, negated)| {
            rollup::conversion_cells(c).map(move |(cell, tally)| (c.fact.tenant.as_str(), c.fact.ts, cell, if negated { tally.negated() } else { tally }))
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::attribution::fixtures::{self, HOUR, config, touch};
    use crate::config::Goal;
    use crate::model::{Channel, Message, TouchKind, MICROS_PER_UNIT};
    use crate::models::Model;

    /// 2026-01-31T00:00Z: a month ends a day later.
    const T0: Millis = 1_769_817_600_000;
    const FEB: Millis = T0 + 24 * HOUR;

    fn message(hash: &str, channel: Channel, tags: &[&str]) -> Message {
        fixtures::message(hash, channel, tags, T0 - 100 * HOUR)
    }

    fn messages() -> Messages {
        fixtures::messages(T0 - 100 * HOUR)
    }

    fn opened(id: &str, msg: &str, ts: Millis) -> Touch {
        touch(id, msg, TouchKind::Opened, ts)
    }

    fn order(id: &str, customer: &str, status: &str, ts: Millis, msg: Option<&str>) -> OrderRecord {
        OrderRecord {
            tenant: "t".into(),
            event_id: id.into(),
            order_id: "o1".into(),
            customer_id: customer.into(),
            status: status.into(),
            amount_minor: 700,
            currency: "USD".into(),
            categories: vec![],
            channel: "app".into(),
            ts,
            msg_hash: msg.map(str::to_owned),
        }
    }

    /// A customer with one state, folded window by window like a worker would.
    struct Harness {
        config: TenantConfig,
        messages: Messages,
        order: OrderState,
        customers: BTreeMap<String, CustomerState>,
    }

    impl Harness {
        fn new() -> Harness {
            Harness { config: config(), messages: messages(), order: OrderState::default(), customers: BTreeMap::new() }
        }

        fn ctx(&self) -> FoldContext<'_> {
            FoldContext { config: &self.config, messages: &self.messages }
        }

        fn customer(&self, customer: &str) -> CustomerState {
            self.customers.get(customer).cloned().unwrap_or_default()
        }

        /// Folds one window of touches and order records; the deltas per customer.
        fn window(&mut self, touches: &[Touch], orders: &[OrderRecord]) -> BTreeMap<String, CustomerDelta> {
            let mut facts: BTreeMap<String, Vec<FactChange>> = BTreeMap::new();
            for change in fold_order(&mut self.order, orders, &self.config) {
                for (customer, part) in change.by_customer() {
                    facts.entry(customer).or_default().push(part);
                }
            }
            let mut customers: BTreeSet<String> = facts.keys().cloned().collect();
            customers.extend(touches.iter().map(|t| t.customer_id.clone()));
            let mut deltas = BTreeMap::new();
            for customer in customers {
                let mine: Vec<Touch> = touches.iter().filter(|t| t.customer_id == customer).cloned().collect();
                let mut state = self.customer(&customer);
                let ctx = FoldContext { config: &self.config, messages: &self.messages };
                let delta = fold_customer(&mut state, &mine, facts.get(&customer).map_or(&[][..], Vec::as_slice), ctx);
                self.customers.insert(customer.clone(), state);
                deltas.insert(customer, delta);
            }
            deltas
        }

        /// The credited (rule, msg_hash) of the order for the default goal, and its customer.
        fn credited(&self) -> Option<(String, Rule, Option<String>)> {
            let mut found = self.customers.iter().flat_map(|(customer, state)| state.conversions().map(move |c| (customer, c)));
            let (customer, conversion) = found.next()?;
            assert!(found.next().is_none(), "one conversion");
            Some((customer.clone(), conversion.credit.rule, conversion.credit.msg_hash.clone()))
        }
    }

    fn credit_of(h: &Harness) -> (Rule, Option<String>) {
        let (_, rule, msg) = h.credited().expect("a conversion");
        (rule, msg)
    }

    #[test]
    fn segments_between_bounds_months_and_reads_to_the_end_far_out() {
        assert_eq!(segments_between(T0, FEB + 5), (segment_of(T0), FEB));
        assert_eq!(segments_between(Millis::MIN, T0), (Millis::MIN, segment_of(T0)));
        assert_eq!(segments_between(T0, Millis::MAX), (segment_of(T0), Millis::MAX));
        assert_eq!(segments_between(-1, 0), (segment_of(-1), 0), "the epoch's edge");
    }

    #[test]
    fn an_explicit_msg_hash_wins_over_any_touch() {
        let mut h = Harness::new();
        h.window(&[opened("a", "push2", T0)], &[order("r1", "c", "PAID", T0 + 1, Some("push"))]);
        assert_eq!(credit_of(&h), (Rule::Explicit, Some("push".into())));
    }

    #[test]
    fn the_last_qualifying_touch_wins_and_ties_go_to_the_greater_event_id() {
        let mut h = Harness::new();
        h.window(&[opened("z", "push", T0), opened("a", "push2", T0 + 5)], &[order("r1", "c", "PAID", T0 + 10, None)]);
        assert_eq!(credit_of(&h), (Rule::LastTouch, Some("push2".into())));
        // A late touch at the same ms with a greater event_id takes it; a smaller one does not.
        h.window(&[opened("0", "push", T0 + 5)], &[]);
        assert_eq!(credit_of(&h), (Rule::LastTouch, Some("push2".into())));
        let delta = h.window(&[opened("b", "push", T0 + 5)], &[]);
        assert_eq!(credit_of(&h), (Rule::LastTouch, Some("push".into())));
        assert_eq!(delta["c"].conversions.len(), 1, "only the row that changed");
    }

    #[test]
    fn window_ends_are_inclusive() {
        for (gap, expected) in [(0, Rule::LastTouch), (24 * HOUR, Rule::LastTouch), (24 * HOUR + 1, Rule::Unattributed)] {
            let mut h = Harness::new();
            h.window(&[opened("a", "push", T0 - 24 * HOUR)], &[order("r1", "c", "PAID", T0 - 24 * HOUR + gap, None)]);
            assert_eq!(credit_of(&h).0, expected, "gap {gap}");
            // The same with the touch arriving after the conversion.
            let mut late = Harness::new();
            late.window(&[], &[order("r1", "c", "PAID", T0 - 24 * HOUR + gap, None)]);
            late.window(&[opened("a", "push", T0 - 24 * HOUR)], &[]);
            assert_eq!(credit_of(&late).0, expected, "late touch, gap {gap}");
        }
    }

    #[test]
    fn excluded_and_unregistered_messages_and_other_touch_kinds_are_never_credited() {
        let mut h = Harness::new();
        let touches = [opened("a", "reset", T0 + 5), opened("b", "nobody", T0 + 6), touch("c", "push", TouchKind::Delivered, T0 + 7)];
        let deltas = h.window(&touches, &[order("r1", "c", "PAID", T0 + 10, Some("reset"))]);
        assert_eq!(credit_of(&h), (Rule::Unattributed, None));
        assert_eq!(deltas["c"].unregistered_messages, BTreeSet::from(["nobody".to_owned()]));
    }

    #[test]
    fn a_touch_after_the_conversion_does_not_count() {
        let mut h = Harness::new();
        h.window(&[], &[order("r1", "c", "PAID", T0, None)]);
        let deltas = h.window(&[opened("a", "push", T0 + 1)], &[]);
        assert_eq!(credit_of(&h), (Rule::Unattributed, None));
        assert!(deltas["c"].conversions.is_empty());
    }

    #[test]
    fn a_late_touch_moves_the_credit_and_the_rollups_follow() {
        let mut h = Harness::new();
        let first = h.window(&[opened("a", "push", T0)], &[order("r1", "c", "PAID", T0 + HOUR, None)]);
        let second = h.window(&[opened("b", "push2", T0 + 1)], &[]);
        assert_eq!(credit_of(&h), (Rule::LastTouch, Some("push2".into())));
        let mut sums: BTreeMap<Cell, Tally> = BTreeMap::new();
        for delta in [&first["c"], &second["c"]] {
            for (_, ts, cell, tally) in conversion_deltas(&delta.conversions) {
                assert_eq!(ts, T0 + HOUR);
                sums.entry(cell).or_default().add(tally);
            }
        }
        sums.retain(|_, tally| !tally.is_zero());
        // Last touch moved to push2; first touch (like every other model) splits it with
        // push, whose touch is now the first of two candidates.
        let cell = Cell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch, msg_hash: "push2".into() };
        let shift = |msg_hash: &str| Cell::ModelShift { goal_id: "orders".into(), model: Model::FirstTouch, msg_hash: msg_hash.into() };
        let whole = Tally { count: 1_000_000, value_micros: 700 * i128::from(MICROS_PER_UNIT) };
        let last_touch = sums.iter().filter(|(cell, _)| matches!(cell, Cell::Conversion { .. }));
        assert_eq!(last_touch.collect::<Vec<_>>(), vec![(&cell, &Tally::of(700 * MICROS_PER_UNIT))]);
        assert_eq!((sums[&shift("push")], sums[&shift("push2")]), (whole, whole.negated()));
    }

    #[test]
    fn a_message_registered_late_takes_the_credit_it_explains() {
        let mut h = Harness::new();
        h.messages.remove("push");
        let deltas = h.window(&[opened("a", "push", T0)], &[order("r1", "c", "PAID", T0 + 1, None)]);
        assert_eq!(credit_of(&h), (Rule::Unattributed, None));
        assert!(deltas["c"].unregistered_messages.contains("push"));
        assert!(h.customer("c").referenced_messages().contains("push"));
        h.messages = messages();
        let mut state = h.customer("c");
        let delta = recredit_messages(&mut state, &BTreeSet::from(["push".to_owned()]), h.ctx());
        h.customers.insert("c".into(), state);
        assert_eq!(delta.conversions.len(), 1);
        assert_eq!(credit_of(&h), (Rule::LastTouch, Some("push".into())));
    }

    #[test]
    fn an_explicit_message_registered_late_takes_the_credit() {
        let mut h = Harness::new();
        h.messages.remove("push2");
        h.window(&[opened("a", "push", T0)], &[order("r1", "c", "PAID", T0 + 1, Some("push2"))]);
        assert_eq!(credit_of(&h), (Rule::LastTouch, Some("push".into())));
        assert_eq!(h.customer("c").referenced_messages(), BTreeSet::from(["push", "push2"]));
        h.messages = messages();
        let mut state = h.customer("c");
        recredit_messages(&mut state, &BTreeSet::from(["push2".to_owned()]), h.ctx());
        h.customers.insert("c".into(), state);
        assert_eq!(credit_of(&h), (Rule::Explicit, Some("push2".into())));
    }

    #[test]
    fn an_order_whose_qualifying_record_changes_customer_moves_its_conversion() {
        let mut h = Harness::new();
        h.window(&[opened("a", "push", T0)], &[order("r2", "c", "PAID", T0 + 10, None)]);
        assert_eq!(h.credited().map(|c| c.0), Some("c".into()));
        // An earlier qualifying record of another customer arrives.
        let deltas = h.window(&[], &[order("r1", "d", "PLACED", T0 + 5, None)]);
        assert_eq!(h.credited(), Some(("d".into(), Rule::Unattributed, None)));
        assert_eq!(deltas["c"].conversions.len(), 1);
        assert!(deltas["c"].conversions[0].new.is_none());
        assert!(deltas["d"].conversions[0].old.is_none());
    }

    #[test]
    fn refunds_and_cancellations_change_nothing() {
        let mut h = Harness::new();
        h.window(&[opened("a", "push", T0)], &[order("r1", "c", "PAID", T0 + 10, None)]);
        let before = h.customer("c");
        let deltas = h.window(&[], &[order("r2", "c", "REFUNDED", T0 + 1, None), order("r3", "c", "CANCELLED", T0 + 2, None)]);
        assert!(deltas.is_empty(), "no fact changed, so no customer is folded");
        assert_eq!(h.customer("c"), before);
        assert_eq!(h.order.records.len(), 3, "the records are kept");
    }

    #[test]
    fn other_currencies_do_not_convert_until_the_tenant_currency_changes() {
        let mut h = Harness::new();
        let mut euro = order("r1", "c", "PAID", T0, None);
        euro.currency = "EUR".into();
        assert!(fold_order(&mut h.order, &[euro], &h.config).is_empty());
        h.config.set_currency("EUR").unwrap();
        let changes = refold_order(&mut h.order, &h.config);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].new.as_ref().map(|f| f.source_event_id.as_str()), Some("r1"));
        h.config.set_currency("USD").unwrap();
        let changes = refold_order(&mut h.order, &h.config);
        assert!(changes[0].new.is_none() && changes[0].old.is_some());
    }

    #[test]
    fn a_config_change_recredits_and_drops_deleted_goals() {
        let mut h = Harness::new();
        let old = h.config.clone();
        h.config.save_goal(Goal { id: "checkin".into(), kind: GoalKind::Event { event_name: "checkin".into() } }).unwrap();
        let event = AppEvent {
            tenant: "t".into(),
            event_id: "e1".into(),
            customer_id: "c".into(),
            name: "checkin".into(),
            ts: T0 + 1,
            value_micros: Some(3),
            msg_hash: None,
        };
        assert_eq!(changed_event_goals(&old, &h.config), BTreeSet::from(["checkin".to_owned()]));
        let facts = event_facts(&h.config, &event);
        let mut state = CustomerState::default();
        fold_customer(&mut state, &[opened("a", "push", T0)], &facts, h.ctx());
        assert_eq!(state.conversions().map(|c| c.credit.rule).collect::<Vec<_>>(), vec![Rule::LastTouch]);
        // Excluding the message's tag re-credits; deleting the goal drops the conversion.
        let mut tagged = h.messages.clone();
        tagged.insert("push".into(), message("push", Channel::Push, &["transactional"]));
        let delta = recredit_all(&mut state, &BTreeSet::new(), FoldContext { config: &h.config, messages: &tagged });
        assert_eq!(delta.conversions[0].new.as_ref().map(|c| c.credit.rule), Some(Rule::Unattributed));
        h.config.delete_goal("checkin").unwrap();
        let delta = recredit_all(&mut state, &BTreeSet::new(), h.ctx());
        assert!(delta.conversions[0].new.is_none());
        assert_eq!(state.conversions().count(), 0);
    }

    #[test]
    fn a_window_within_one_month_rewrites_only_that_month() {
        let mut h = Harness::new();
        // January: a touch and a conversion; February: a touch and a conversion.
        h.window(&[opened("a", "push", T0), opened("b", "push", FEB + HOUR)], &[order("r1", "c", "PAID", T0 + HOUR, None)]);
        let mut other = order("s1", "c", "PAID", FEB + 2 * HOUR, None);
        other.order_id = "o2".into();
        let mut o2 = OrderState::default();
        let facts = fold_order(&mut o2, &[other], &h.config);
        let mut state = h.customer("c");
        let delta = fold_customer(&mut state, &[], &facts, h.ctx());
        assert_eq!(delta.dirty_segments, BTreeSet::from([FEB]));
        assert_eq!(state.segments.keys().copied().collect::<Vec<_>>(), vec![segment_of(T0), FEB]);
        // A February touch that explains nothing dirties February only; a late January
        // touch re-crediting a January conversion, January only.
        let delta = fold_customer(&mut state, &[opened("c", "push2", FEB + 3 * HOUR)], &[], h.ctx());
        assert_eq!((delta.dirty_segments, delta.conversions.len()), (BTreeSet::from([FEB]), 0));
        let delta = fold_customer(&mut state, &[opened("d", "push2", T0 + 1)], &[], h.ctx());
        assert_eq!((delta.dirty_segments, delta.conversions.len()), (BTreeSet::from([segment_of(T0)]), 1));
        // A January touch whose window reaches into February but changes nothing there:
        // January only (a touch older than push2's latest one changes no model's split).
        let delta = fold_customer(&mut state, &[opened("e", "push2", T0)], &[], h.ctx());
        assert_eq!((delta.dirty_segments, delta.conversions.len()), (BTreeSet::from([segment_of(T0)]), 0));
        // One that re-credits a February conversion: both.
        let mut early = order("x1", "c", "PAID", FEB + HOUR / 2, None);
        early.order_id = "o3".into();
        let facts = fold_order(&mut OrderState::default(), &[early], &h.config);
        fold_customer(&mut state, &[], &facts, h.ctx());
        let delta = fold_customer(&mut state, &[opened("f", "push", FEB - 1)], &[], h.ctx());
        assert_eq!((delta.dirty_segments, delta.conversions.len()), (BTreeSet::from([segment_of(T0), FEB]), 1));
        assert_eq!(delta.conversions[0].new.as_ref().and_then(|c| c.credit.touch_event_id.as_deref()), Some("f"));
        // Folding the same touches again changes nothing.
        let again = fold_customer(&mut state, &[opened("e", "push2", T0), opened("a", "push", T0)], &[], h.ctx());
        assert_eq!(again, CustomerDelta::default());
    }

    #[test]
    fn states_round_trip_through_serde() {
        let mut h = Harness::new();
        h.window(&[opened("a", "push", T0), opened("b", "mail", FEB)], &[order("r1", "c", "PAID", T0 + 1, Some("push2"))]);
        let state = h.customer("c");
        assert_eq!(state.segments.len(), 2);
        let text = serde_json::to_string(&state).unwrap();
        assert_eq!(serde_json::from_str::<CustomerState>(&text).unwrap(), state);
        let text = serde_json::to_string(&h.order).unwrap();
        assert_eq!(serde_json::from_str::<OrderState>(&text).unwrap(), h.order);
    }

    #[test]
    fn a_conversion_moving_months_leaves_no_empty_segment() {
        let mut h = Harness::new();
        h.window(&[], &[order("r2", "c", "PAID", FEB + HOUR, None)]);
        let deltas = h.window(&[], &[order("r1", "c", "PAID", T0, None)]);
        assert_eq!(deltas["c"].dirty_segments, BTreeSet::from([segment_of(T0), FEB]));
        assert_eq!(h.customer("c").segments.keys().copied().collect::<Vec<_>>(), vec![segment_of(T0)]);
    }
}
