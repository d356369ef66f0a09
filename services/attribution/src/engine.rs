//! One attribution step: read a batch of the ingest log, work out which conversions it can
//! have changed, evaluate those again from the stored records, and commit the differences
//! (conversion rows and rollup deltas) together with the new log position.
//!
//! Why this is exact:
//! - Every conversion is a function of the stored records and the tenant config (SPEC
//!   section 4). A step re-evaluates from what is stored *now*, so records that arrive
//!   meanwhile only make it more up to date; their own log entries come later and mark what
//!   they affect again.
//! - Each record can only change the conversions listed in [`Dirty`]: a touch, the
//!   conversions of its customer within the longest window after it; a message, the
//!   conversions naming it explicitly and those its touches may explain; an order status
//!   record, its order; an app event, itself. A config change appends a `Recompute` entry,
//!   which re-evaluates the whole tenant.
//! - Touch and event-hit counters come from log entries only, and the commit that adds them
//!   also moves the position past those entries, so a crash redoes a step whole or not at all.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use touchstone_core::attribution::{self, Conversion, ConversionFact};
use touchstone_core::config::{GoalKind, TenantConfig};
use touchstone_core::goals;
use touchstone_core::model::{Millis, Record, Touch};
use touchstone_core::rollup::{self, Cell, Granularity, Tally};
use touchstone_store::{AttributionCommit, ConversionChange, LogEntry, LogPayload, RollupDelta, Store};

/// Log entries read and committed per step: large enough to amortise the commit, small
/// enough to keep one step's memory and latency modest.
pub const DEFAULT_BATCH: usize = 2_000;

/// A conversion, by tenant, goal and key (order id or event id).
type ConversionKey = (String, String, String);

/// What one step must evaluate again.
#[derive(Default)]
struct Dirty {
    /// Tenants whose whole history is evaluated again.
    recompute: BTreeSet<String>,
    /// Orders whose conversions (one per ORDER goal) are evaluated again.
    orders: BTreeSet<(String, String)>,
    /// Fresh conversion facts of app events (EVENT goals), evaluated from the record itself.
    event_facts: BTreeMap<ConversionKey, ConversionFact>,
    /// Stored conversions whose fact stands but whose credit may change.
    recredit: BTreeSet<ConversionKey>,
}

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub shard: u32,
    /// The shard's log position now processed.
    pub processed: u64,
    pub entries: usize,
    pub conversions_changed: usize,
}

/// Processes up to `batch` entries of one log shard after its processed position. `None`
/// when there was nothing to do. [`StoreError::Fenced`](touchstone_store::StoreError::Fenced)
/// when another worker committed the shard meanwhile: the step is then discarded.
pub async fn step(store: &dyn Store, shard: u32, batch: usize) -> touchstone_store::Result<Option<StepOutcome>> {
    let after = store.log_status(shard).await?.processed;
    let entries = store.read_log(shard, after, batch).await?;
    if entries.is_empty() {
        return Ok(None);
    }
    process(store, shard, after, entries).await.map(Some)
}

/// One step over a non-empty batch (a span only when there is work, so an idle worker's
/// polling does not flood the traces).
#[tracing::instrument(name = "attribution_step", skip_all, fields(shard = shard, entries = entries.len()))]
async fn process(store: &dyn Store, shard: u32, after: u64, entries: Vec<LogEntry>) -> touchstone_store::Result<StepOutcome> {
    let processed = entries.last().map_or(after, |last| last.seq);

    let mut configs = Configs::default();
    let mut dirty = Dirty::default();
    let mut deltas = Deltas::default();
    for entry in &entries {
        mark(store, &mut configs, &mut dirty, &mut deltas, entry).await?;
    }
    let changes = evaluate(store, &mut configs, dirty).await?;
    for change in &changes {
        if let Some(old) = &change.old {
            let (cell, tally) = rollup::conversion_cell(old);
            deltas.add(&old.fact.tenant, old.fact.ts, cell, tally.negated());
        }
        if let Some(new) = &change.new {
            let (cell, tally) = rollup::conversion_cell(new);
            deltas.add(&new.fact.tenant, new.fact.ts, cell, tally);
        }
    }
    let outcome = StepOutcome { shard, processed, entries: entries.len(), conversions_changed: changes.len() };
    let commit = AttributionCommit { shard, after, processed, conversions: changes, rollups: deltas.into_vec() };
    store.commit_attribution(commit).await?;
    Ok(outcome)
}

/// Tenant configs, read once per step.
#[derive(Default)]
struct Configs(HashMap<String, TenantConfig>);

impl Configs {
    async fn get(&mut self, store: &dyn Store, tenant: &str) -> touchstone_store::Result<&TenantConfig> {
        if !self.0.contains_key(tenant) {
            let config = store.tenant_config(tenant).await?;
            self.0.insert(tenant.to_owned(), config);
        }
        Ok(&self.0[tenant])
    }
}

/// Rollup deltas summed per (tenant, hour, cell).
#[derive(Default)]
struct Deltas(HashMap<(String, Millis, Cell), Tally>);

impl Deltas {
    fn add(&mut self, tenant: &str, ts: Millis, cell: Cell, tally: Tally) {
        let hour = Granularity::Hour.bucket(ts);
        self.0.entry((tenant.to_owned(), hour, cell)).or_default().add(tally);
    }

    fn into_vec(self) -> Vec<RollupDelta> {
        self.0
            .into_iter()
            .filter(|(_, tally)| !tally.is_zero())
            .map(|((tenant, hour, cell), tally)| RollupDelta { tenant, hour, cell, tally })
            .collect()
    }
}

fn key_of(fact: &ConversionFact) -> ConversionKey {
    (fact.tenant.clone(), fact.goal_id.clone(), fact.key.clone())
}

/// Counts what the entry adds by itself and marks what it may change.
async fn mark(
    store: &dyn Store,
    configs: &mut Configs,
    dirty: &mut Dirty,
    deltas: &mut Deltas,
    entry: &LogEntry,
) -> touchstone_store::Result<()> {
    let record = match &entry.payload {
        LogPayload::Recompute { tenant } => {
            dirty.recompute.insert(tenant.clone());
            return Ok(());
        }
        LogPayload::Nothing => return Ok(()),
        LogPayload::Record(record) => record,
    };
    let tenant = record.tenant();
    match record {
        Record::Touch(touch) => {
            deltas.add(tenant, touch.ts, rollup::touch_cell(touch), Tally::ONE);
            recredit_after_touch(store, configs, dirty, touch).await?;
        }
        Record::Event(event) => {
            if let Some(cell) = rollup::event_cell(event) {
                deltas.add(tenant, event.ts, cell, Tally::ONE);
            }
            let config = configs.get(store, tenant).await?;
            for goal in goals::event_goals(config, &event.name) {
                if let Some(fact) = goals::event_conversion(goal, event) {
                    dirty.event_facts.insert(key_of(&fact), fact);
                }
            }
        }
        Record::Order(order) => {
            dirty.orders.insert((tenant.to_owned(), order.order_id.clone()));
        }
        Record::Message(message) => {
            for conversion in store.explicit_conversions(tenant, &message.msg_hash).await? {
                dirty.recredit.insert(key_of(&conversion.fact));
            }
            // One read per customer, from their first touch of the message to the longest
            // window after their last: a message sent to many customers has many touches.
            let mut spans: HashMap<String, (Millis, Millis)> = HashMap::new();
            for touch in store.message_touches(tenant, &message.msg_hash).await? {
                let span = spans.entry(touch.customer_id).or_insert((touch.ts, touch.ts));
                *span = (span.0.min(touch.ts), span.1.max(touch.ts));
            }
            let window = configs.get(store, tenant).await?.max_window_ms();
            for (customer_id, (first, last)) in spans {
                for conversion in store.customer_conversions(tenant, &customer_id, first, last.saturating_add(window)).await? {
                    dirty.recredit.insert(key_of(&conversion.fact));
                }
            }
        }
        // Badges play no part in attribution.
        Record::Badge(_) => {}
    }
    Ok(())
}

/// Marks the conversions a touch could explain: its customer's, at most the longest
/// window after it.
async fn recredit_after_touch(
    store: &dyn Store,
    configs: &mut Configs,
    dirty: &mut Dirty,
    touch: &Touch,
) -> touchstone_store::Result<()> {
    let window = configs.get(store, &touch.tenant).await?.max_window_ms();
    let until = touch.ts.saturating_add(window);
    for conversion in store.customer_conversions(&touch.tenant, &touch.customer_id, touch.ts, until).await? {
        dirty.recredit.insert(key_of(&conversion.fact));
    }
    Ok(())
}

/// Evaluates everything marked and returns the rows that differ from what is stored.
async fn evaluate(
    store: &dyn Store,
    configs: &mut Configs,
    dirty: Dirty,
) -> touchstone_store::Result<Vec<ConversionChange>> {
    // (stored, freshly evaluated fact or None when the conversion no longer exists)
    let mut candidates: BTreeMap<ConversionKey, (Option<Conversion>, Option<ConversionFact>)> = BTreeMap::new();

    for tenant in &dirty.recompute {
        let config = configs.get(store, tenant).await?.clone();
        for stored in store.tenant_conversions(tenant).await? {
            candidates.insert(key_of(&stored.fact), (Some(stored), None));
        }
        for fact in tenant_facts(store, &config).await? {
            let key = key_of(&fact);
            candidates.entry(key).or_insert((None, None)).1 = Some(fact);
        }
    }
    let untouched = |key: &ConversionKey| !dirty.recompute.contains(&key.0);

    for (tenant, order_id) in dirty.orders.iter().filter(|(tenant, _)| !dirty.recompute.contains(tenant)) {
        let config = configs.get(store, tenant).await?.clone();
        let records = store.order_records(tenant, order_id).await?;
        for goal in goals::order_goals(&config) {
            let key = (tenant.clone(), goal.id.clone(), order_id.clone());
            let stored = store.conversion(tenant, &goal.id, order_id).await?;
            let fact = goals::order_conversion(&config, goal, &records);
            candidates.insert(key, (stored, fact));
        }
    }
    for (key, fact) in dirty.event_facts.into_iter().filter(|(key, _)| untouched(key)) {
        let stored = store.conversion(&key.0, &key.1, &key.2).await?;
        candidates.insert(key, (stored, Some(fact)));
    }
    for key in dirty.recredit.into_iter().filter(|key| untouched(key)) {
        if candidates.contains_key(&key) {
            continue;
        }
        if let Some(stored) = store.conversion(&key.0, &key.1, &key.2).await? {
            let fact = stored.fact.clone();
            candidates.insert(key, (Some(stored), Some(fact)));
        }
    }

    let mut changes = Vec::new();
    for (_, (old, fact)) in candidates {
        let new = match fact {
            Some(fact) => {
                let config = configs.get(store, &fact.tenant).await?.clone();
                let credit = credit(store, &config, &fact).await?;
                Some(Conversion { fact, credit })
            }
            None => None,
        };
        if old != new {
            changes.push(ConversionChange { old, new });
        }
    }
    Ok(changes)
}

/// Every conversion fact of a tenant, from all its order records and goal-named events.
async fn tenant_facts(store: &dyn Store, config: &TenantConfig) -> touchstone_store::Result<Vec<ConversionFact>> {
    let mut facts = Vec::new();
    if goals::order_goals(config).next().is_some() {
        let mut by_order: HashMap<String, Vec<_>> = HashMap::new();
        for record in store.tenant_orders(&config.tenant).await? {
            by_order.entry(record.order_id.clone()).or_default().push(record);
        }
        for records in by_order.values() {
            for goal in goals::order_goals(config) {
                facts.extend(goals::order_conversion(config, goal, records));
            }
        }
    }
    for goal in &config.goals {
        if let GoalKind::Event { event_name } = &goal.kind {
            for event in store.tenant_events_named(&config.tenant, event_name).await? {
                facts.extend(goals::event_conversion(goal, &event));
            }
        }
    }
    Ok(facts)
}

/// Credits one conversion from the customer's stored touches and the messages they name.
async fn credit(store: &dyn Store, config: &TenantConfig, fact: &ConversionFact) -> touchstone_store::Result<attribution::Credit> {
    let (touches, messages) = touchstone_store::credit_inputs(store, config, fact).await?;
    Ok(attribution::credit(fact, &touches, &messages, config))
}
