//! A step's attribution as a fold (`touchstone_core::fold`): the step's records, grouped by
//! tenant, order and customer, folded into the stored order and customer states, giving the
//! conversion rows that changed and the state to write back, all committed with the step.
//!
//! Per tenant, in this order:
//! 1. A `Recompute` entry (a config change) loads every order and customer state of the
//!    tenant: orders are evaluated again ([`fold::refold_order`]), every conversion is
//!    credited again ([`fold::recredit_all`], first, so that it cannot drop the new facts),
//!    and the EVENT goals the change created or redefined are filled from the tenant's app
//!    events ([`fold::changed_event_goals`] against the config the state was folded under).
//! 2. Order status records are folded into their order's state ([`fold::fold_order`]); the
//!    facts that change go to their customers, with those of app events.
//! 3. A registered message re-credits the customers marked under it
//!    ([`fold::recredit_messages`]), and its marks are removed.
//! 4. Each customer concerned is folded once ([`fold::fold_customer`]) with every
//!    registered message its state and new records name. Only the months within the
//!    longest channel window of the customer's new records are read and written: a touch
//!    changes credit at most a window after it, a conversion is credited from at most a
//!    window before it.
//!
//! 5. Each customer's exposures to campaigns (`SENT` and `HELD_OUT` touches of their
//!    registered messages) are indexed for lift ([`Exposure`]).
//!
//! With several lanes a shard ([`Lanes`]), a step folds the customers of its lane only, and
//! every lane folds every order into its own copy of the order's state: the facts each copy
//! gives are the same, and each lane takes those of its customers.
//!
//! Folding a record again is harmless (a held touch or status record is skipped, an
//! unchanged conversion is no change), so a step redone after a crash, or records that a
//! recompute's reads saw before their own log entries, change nothing twice.

use crate::AttributionStore;
use crate::engine::Lanes;
use std::collections::{BTreeMap, BTreeSet};
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::config::{GoalKind, TenantConfig};
use touchstone_core::fold::{self, CustomerDelta, CustomerState, FactChange, FoldContext, OrderState};
use touchstone_core::lift;
use touchstone_core::model::{AppEvent, Message, Millis, OrderRecord, Record, Touch};
use touchstone_store::{ConversionChange, CustomerMonths, Exposure, FoldWrites, LogEntry, LogPayload, OrderStateWrite, Result, SegmentWrite, UnregisteredMark};

/// What a step's fold gives: the conversion rows that changed (one change per conversion)
/// and the state to write.
#[derive(Debug, Default)]
pub struct StepFold {
    pub conversions: Vec<ConversionChange>,
    pub writes: FoldWrites,
}

/// A tenant's records of one step.
#[derive(Default)]
struct TenantBatch<'a> {
    recompute: bool,
    touches: BTreeMap<&'a str, Vec<Touch>>,
    orders: BTreeMap<&'a str, Vec<OrderRecord>>,
    events: Vec<&'a AppEvent>,
    messages: Vec<&'a Message>,
}

/// Folds a step's entries in its lane. `config_of` gives each tenant's config (loaded at
/// the step's start).
pub async fn fold_step<'c>(
    store: &dyn AttributionStore,
    entries: &[LogEntry],
    lanes: Lanes,
    config_of: impl Fn(&str) -> Result<&'c TenantConfig>,
) -> Result<StepFold> {
    let mut tenants: BTreeMap<&str, TenantBatch<'_>> = BTreeMap::new();
    for entry in entries {
        match &entry.payload {
            LogPayload::Recompute { tenant } => tenants.entry(tenant).or_default().recompute = true,
            LogPayload::Record(record) => {
                let batch = tenants.entry(record.tenant()).or_default();
                match record {
                    Record::Touch(touch) if lanes.owns(&touch.customer_id) => batch.touches.entry(&touch.customer_id).or_default().push(touch.clone()),
                    Record::Touch(_) => {}
                    Record::Order(order) => batch.orders.entry(&order.order_id).or_default().push(order.clone()),
                    Record::Event(event) if lanes.owns(&event.customer_id) => batch.events.push(event),
                    Record::Event(_) => {}
                    Record::Message(message) => batch.messages.push(message),
                    // Badges play no part in attribution: `badges::derive` follows them.
                    Record::Badge(_) => {}
                }
            }
            LogPayload::RederiveBadges { .. } | LogPayload::Nothing => {}
        }
    }
    let mut out = StepFold::default();
    for (tenant, batch) in tenants {
        fold_tenant(store, tenant, config_of(tenant)?, batch, lanes, &mut out).await?;
    }
    Ok(out)
}

/// One customer's part of a step.
#[derive(Default)]
struct CustomerWork {
    state: Option<CustomerState>,
    touches: Vec<Touch>,
    facts: Vec<FactChange>,
    /// Messages registered now that the customer's state named unregistered.
    registered: BTreeSet<String>,
}

impl CustomerWork {
    /// The times of the customer's new records: their touches and the facts that change
    /// (as they were and as they are).
    fn span(&self) -> Option<(Millis, Millis)> {
        let facts = self.facts.iter().flat_map(|change| change.old.iter().chain(&change.new)).map(|fact| fact.ts);
        let times = self.touches.iter().map(|touch| touch.ts).chain(facts);
        times.fold(None, |span, ts| Some(span.map_or((ts, ts), |(from, to): (Millis, Millis)| (from.min(ts), to.max(ts)))))
    }
}

async fn fold_tenant(
    store: &dyn AttributionStore,
    tenant: &str,
    config: &TenantConfig,
    batch: TenantBatch<'_>,
    lanes: Lanes,
    out: &mut StepFold,
) -> Result<()> {
    let mut customers: BTreeMap<String, CustomerWork> = BTreeMap::new();
    let mut orders: BTreeMap<String, OrderState> = BTreeMap::new();
    let mut changed_orders: BTreeSet<String> = BTreeSet::new();
    let mut facts: Vec<FactChange> = Vec::new();

    // 1. A config change: every state of the tenant.
    let folded = store.folded_config(tenant, lanes.index).await?;
    let mut dropped_goals = BTreeSet::new();
    if batch.recompute {
        let before = folded.unwrap_or_else(|| TenantConfig { goals: Vec::new(), ..TenantConfig::defaults(tenant) });
        dropped_goals = fold::changed_event_goals(&before, config);
        for (order_id, mut state) in store.tenant_order_states(tenant, lanes.index).await? {
            let changes = fold::refold_order(&mut state, config);
            if !changes.is_empty() {
                changed_orders.insert(order_id.clone());
            }
            facts.extend(changes);
            orders.insert(order_id, state);
        }
        for (customer_id, state) in store.tenant_customer_states(tenant).await? {
            if lanes.owns(&customer_id) {
                customers.entry(customer_id).or_default().state = Some(state);
            }
        }
        for goal in config.goals.iter().filter(|goal| dropped_goals.contains(&goal.id)) {
            if let GoalKind::Event { event_name } = &goal.kind {
                for event in store.tenant_events_named(tenant, event_name).await? {
                    facts.extend(fold::event_facts(config, &event).into_iter().filter(|change| change.goal_id == goal.id));
                }
            }
        }
        out.writes.folded_configs.push(config.clone());
    } else if folded.is_none() {
        out.writes.folded_configs.push(config.clone());
    }

    // 2. Orders and app events.
    let unloaded: Vec<(String, String)> =
        batch.orders.keys().filter(|id| !orders.contains_key(**id)).map(|id| (tenant.to_owned(), (*id).to_owned())).collect();
    for ((_, order_id), state) in unloaded.iter().zip(store.order_states(lanes.index, &unloaded).await?) {
        orders.insert(order_id.clone(), state);
    }
    for (order_id, records) in &batch.orders {
        let Some(state) = orders.get_mut(*order_id) else { continue };
        let held = state.records.len();
        facts.extend(fold::fold_order(state, records, config));
        if state.records.len() != held {
            changed_orders.insert((*order_id).to_owned());
        }
    }
    for order_id in changed_orders {
        if let Some(state) = orders.remove(&order_id) {
            out.writes.orders.push(OrderStateWrite { tenant: tenant.to_owned(), order_id, state });
        }
    }
    for event in &batch.events {
        facts.extend(fold::event_facts(config, event));
    }
    for (customer_id, change) in facts.into_iter().flat_map(FactChange::by_customer) {
        if lanes.owns(&customer_id) {
            customers.entry(customer_id).or_default().facts.push(change);
        }
    }
    for (customer_id, touches) in batch.touches {
        customers.entry(customer_id.to_owned()).or_default().touches = touches;
    }

    // 3. Messages registered now.
    for message in &batch.messages {
        for customer_id in store.unregistered_customers(tenant, &message.msg_hash).await? {
            // Other lanes' marks are theirs to take when they process the registration.
            if !lanes.owns(&customer_id) {
                continue;
            }
            let mark = UnregisteredMark { tenant: tenant.to_owned(), msg_hash: message.msg_hash.clone(), customer_id: customer_id.clone() };
            out.writes.unmarked.push(mark);
            customers.entry(customer_id).or_default().registered.insert(message.msg_hash.clone());
        }
        out.writes.registered.push((tenant.to_owned(), message.msg_hash.clone()));
    }

    // 4. Every customer concerned, with the messages they name. A customer's new records
    //    read and change only the months within the longest window of them; a registration
    //    re-credits wherever the message's touches are, so it reads every month.
    let window = config.max_window_ms();
    let spans: Vec<CustomerMonths> = customers
        .iter()
        .filter(|(_, work)| work.state.is_none())
        .map(|(customer_id, work)| match work.span() {
            Some((from, to)) if work.registered.is_empty() => CustomerMonths {
                tenant: tenant.to_owned(),
                customer_id: customer_id.clone(),
                from: from.saturating_sub(window),
                to: to.saturating_add(window),
            },
            _ => CustomerMonths::whole(tenant, customer_id),
        })
        .collect();
    for (state, span) in store.customer_months(&spans).await?.into_iter().zip(spans) {
        if let Some(work) = customers.get_mut(&span.customer_id) {
            work.state = Some(state);
        }
    }
    let messages = named_messages(store, tenant, &customers, &batch.messages).await?;
    let ctx = FoldContext { config, messages: &messages };
    let mut conversions: BTreeMap<(String, String), (Option<Conversion>, Option<Conversion>)> = BTreeMap::new();
    let mut exposures: BTreeSet<Exposure> = BTreeSet::new();
    for (customer_id, work) in customers {
        let mut state = work.state.unwrap_or_default();
        let mut deltas = Vec::new();
        if batch.recompute {
            deltas.push(fold::recredit_all(&mut state, &dropped_goals, ctx));
        }
        if !work.registered.is_empty() {
            deltas.push(fold::recredit_messages(&mut state, &work.registered, ctx));
        }
        deltas.push(fold::fold_customer(&mut state, &work.touches, &work.facts, ctx));
        let delta = merged(deltas);
        // The campaigns the customer's lift counts them in: through the new touches, the
        // touches of messages registered now, and on a recompute every touch (which
        // indexes a store folded before exposures were kept).
        let touches: Vec<&Touch> = if batch.recompute {
            state.touches().collect()
        } else {
            state.touches().filter(|touch| work.registered.contains(&touch.msg_hash)).chain(&work.touches).collect()
        };
        for campaign_id in lift::exposed_campaigns(touches, &messages) {
            exposures.insert(Exposure { tenant: tenant.to_owned(), campaign_id: campaign_id.to_owned(), customer_id: customer_id.clone() });
        }
        // The state is done with: its changed months move into the writes, uncopied.
        for month in delta.dirty_segments {
            let segment = state.segments.remove(&month);
            out.writes.segments.push(SegmentWrite { tenant: tenant.to_owned(), customer_id: customer_id.clone(), month, segment });
        }
        for msg_hash in delta.unregistered_messages {
            out.writes.unregistered.push(UnregisteredMark { tenant: tenant.to_owned(), msg_hash, customer_id: customer_id.clone() });
        }
        // A conversion moving between customers (an order's qualifying record changed) is
        // one stored row: its removal and its addition meet here.
        for change in delta.conversions {
            let fact = change.old.as_ref().or(change.new.as_ref()).map(|c| &c.fact);
            let Some(fact) = fact else { continue };
            let slot = conversions.entry((fact.goal_id.clone(), fact.key.clone())).or_default();
            if change.old.is_some() {
                slot.0 = change.old;
            }
            if change.new.is_some() {
                slot.1 = change.new;
            }
        }
    }
    out.conversions.extend(conversions.into_values().filter(|(old, new)| old != new).map(|(old, new)| ConversionChange { old, new }));
    out.writes.exposures.extend(exposures);
    Ok(())
}

/// The folds of one customer in a step as one: each conversion's first stored row and last
/// row, dirty months and unregistered messages together.
fn merged(deltas: Vec<CustomerDelta>) -> CustomerDelta {
    let mut merged = CustomerDelta::default();
    let mut rows: Vec<ConversionChange> = Vec::new();
    for delta in deltas {
        merged.dirty_segments.extend(delta.dirty_segments);
        merged.unregistered_messages.extend(delta.unregistered_messages);
        for change in delta.conversions {
            let key = |c: &ConversionChange| c.old.as_ref().or(c.new.as_ref()).map(|c| (c.fact.goal_id.clone(), c.fact.key.clone()));
            match rows.iter_mut().find(|row| key(row) == key(&change)) {
                Some(row) => row.new = change.new,
                None => rows.push(change),
            }
        }
    }
    merged.conversions = rows.into_iter().filter(|row| row.old != row.new).collect();
    merged
}

/// The registered messages among those the customers' states and new records name, and the
/// messages the step registers (their rows are stored before their log entries).
async fn named_messages(
    store: &dyn AttributionStore,
    tenant: &str,
    customers: &BTreeMap<String, CustomerWork>,
    registered: &[&Message],
) -> Result<Messages> {
    let mut hashes: BTreeSet<&str> = BTreeSet::new();
    for work in customers.values() {
        if let Some(state) = &work.state {
            hashes.extend(state.referenced_messages());
        }
        hashes.extend(work.touches.iter().map(|touch| touch.msg_hash.as_str()));
        hashes.extend(work.facts.iter().filter_map(|change| change.new.as_ref()?.explicit_msg_hash.as_deref()));
    }
    let hashes: Vec<String> = hashes.into_iter().map(str::to_owned).collect();
    let mut messages = store.messages(tenant, &hashes).await?;
    for message in registered {
        messages.entry(message.msg_hash.clone()).or_insert_with(|| (*message).clone());
    }
    Ok(messages)
}
