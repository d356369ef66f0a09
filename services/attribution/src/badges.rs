//! Badge entries derived in an attribution step: each rule's earn and every earn's expiry
//! (`touchstone_core::badges::derived`), written into the customer's badge partition beside
//! the stored badge events, so that a timeline page is one range read.
//!
//! The step also indexes, per customer, the app events and orders the tenant's rules count
//! (their activity), in the same commit: ingest writes no such row, and a tenant without
//! rules pays nothing. When the definitions change, the `RederiveBadges` entry indexes the
//! tenant's past records of what the rules now count.
//!
//! Per-badge counters (earned, revoked, expired, holding intervals) and the tenant's feed
//! follow in the same commit (`touchstone_core::badge_stats`): a stored badge event counts
//! once, when the step that processes its log entry commits; a derived entry counts when a
//! commit writes it and uncounts when one removes it; a customer's holding intervals are
//! derived again with their entries and the difference to the stored ones moves the
//! counters.
//!
//! Why this is exact, as attribution is: a customer's derived entries are a function of
//! their stored badge events, their app events and orders, the tenant's badge definitions
//! and currency. A step derives again, from what is stored now and its own records, the
//! entries of every customer one of its entries can have changed, and commits the
//! difference with its log position:
//! - a badge event: its customer (expiries follow the customer's own entries);
//! - an app event a rule counts, an order status record when a rule counts orders: its
//!   customer;
//! - `RederiveBadges` (the definitions changed): every customer of the tenant with badge
//!   events or counted activity; `Recompute` (the config, so maybe the currency, changed):
//!   every customer with orders, when a rule counts orders.

use crate::AttributionStore;
use crate::engine::Lanes;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use touchstone_core::badge_stats::{self, StatChanges};
use touchstone_core::badges::{self, BadgeBook, RuleKind};
use touchstone_core::model::{BadgeEvent, Millis, Record};
use touchstone_store::{BadgeFeedEntry, BadgeRowChange, BadgeStatDelta, FeedChange, FeedPosition, HoldingChange, LogEntry, LogPayload};

/// What a tenant's rules count, for telling which records concern them.
struct Rules {
    book: BadgeBook,
    event_names: BTreeSet<String>,
    counts_orders: bool,
}

impl Rules {
    fn of(book: BadgeBook) -> Rules {
        let mut event_names = BTreeSet::new();
        let mut counts_orders = false;
        for rule in book.badges.iter().filter_map(|badge| badge.rule.as_ref()) {
            match &rule.kind {
                RuleKind::EventCount { event_name, .. } => {
                    event_names.insert(event_name.clone());
                }
                RuleKind::OrderCount { .. } | RuleKind::Spend { .. } => counts_orders = true,
            }
        }
        Rules { book, event_names, counts_orders }
    }

    fn has_rules(&self) -> bool {
        self.counts_orders || !self.event_names.is_empty()
    }
}

/// What a step writes for badges: derived rows, activity to index, counter deltas,
/// holdings and feed entries.
#[derive(Default)]
pub struct BadgeWrites {
    pub rows: Vec<BadgeRowChange>,
    pub activity: Vec<Record>,
    pub stats: Vec<BadgeStatDelta>,
    pub holdings: Vec<HoldingChange>,
    pub feed: Vec<BadgeFeedEntry>,
}

/// Counter deltas and feed entries by tenant, as a step collects them.
#[derive(Default)]
struct Follow {
    stats: BTreeMap<String, StatChanges>,
    feed: Vec<BadgeFeedEntry>,
}

impl Follow {
    fn stats(&mut self, tenant: &str) -> &mut StatChanges {
        self.stats.entry(tenant.to_owned()).or_default()
    }

    fn into_writes(self, mut writes: BadgeWrites) -> BadgeWrites {
        for (tenant, changes) in self.stats {
            writes.stats.extend(changes.into_deltas().map(|(badge_id, ts, tally)| BadgeStatDelta { tenant: tenant.clone(), badge_id, ts, tally }));
        }
        writes.feed = self.feed;
        writes
    }
}

/// What a step writes for badges. `entries` are those of the step's lane (records of its
/// customers); `processed` is the step's last log position (derived entries' feed positions
/// come after it); `currency` gives each tenant's currency (from the configs the step
/// loaded).
pub async fn derive(
    store: &dyn AttributionStore,
    entries: &[&LogEntry],
    processed: u64,
    lanes: Lanes,
    currency: impl Fn(&str) -> touchstone_store::Result<String>,
) -> touchstone_store::Result<BadgeWrites> {
    // Stored badge events count and reach the feed when their entry is processed, whether
    // or not the tenant defines badges.
    let mut follow = Follow::default();
    for entry in entries {
        if let LogPayload::Record(Record::Badge(b)) = &entry.payload {
            follow.stats(&b.tenant).entry(&b.badge_id, b.action, b.ts, 1);
            let position = FeedPosition { seq: entry.seq, index: 0 };
            follow.feed.push(BadgeFeedEntry { position, change: FeedChange::Added, event: b.clone() });
        }
    }
    let writes = derive_rows(store, entries, processed, lanes, currency, &mut follow).await?;
    Ok(follow.into_writes(writes))
}

async fn derive_rows(
    store: &dyn AttributionStore,
    entries: &[&LogEntry],
    processed: u64,
    lanes: Lanes,
    currency: impl Fn(&str) -> touchstone_store::Result<String>,
    follow: &mut Follow,
) -> touchstone_store::Result<BadgeWrites> {
    let tenants: BTreeSet<&str> = entries.iter().filter_map(|entry| entry.payload.tenant()).collect();
    let mut rules: HashMap<&str, Rules> = HashMap::new();
    for tenant in tenants {
        let book = store.badge_book(tenant).await?;
        // Books only grow: a tenant without badges has no derived rows to keep up.
        if !book.badges.is_empty() {
            rules.insert(tenant, Rules::of(book));
        }
    }
    if rules.is_empty() {
        return Ok(BadgeWrites::default());
    }

    let mut customers: BTreeSet<(String, String)> = BTreeSet::new();
    // Counted records of this step and, after a definition change, of the tenant's past,
    // by (tenant, event_id): indexed by this commit, so added to what the index holds.
    let mut counted: BTreeMap<(String, String), Record> = BTreeMap::new();
    // The step's own badge events by customer: a backend's inputs may hold only those
    // already committed.
    let mut stored_of: HashMap<(&str, &str), Vec<&BadgeEvent>> = HashMap::new();
    // Tenant-wide work, once per tenant however many entries ask for it.
    let (mut rederive, mut recompute) = (BTreeSet::new(), BTreeSet::new());
    for entry in entries {
        let Some(tenant_rules) = entry.payload.tenant().and_then(|tenant| rules.get(tenant)) else { continue };
        match &entry.payload {
            LogPayload::Record(Record::Badge(b)) => {
                customers.insert((b.tenant.clone(), b.customer_id.clone()));
                stored_of.entry((&b.tenant, &b.customer_id)).or_default().push(b);
            }
            LogPayload::Record(record @ Record::Event(e)) if tenant_rules.event_names.contains(&e.name) => {
                customers.insert((e.tenant.clone(), e.customer_id.clone()));
                counted.insert((e.tenant.clone(), e.event_id.clone()), record.clone());
            }
            LogPayload::Record(record @ Record::Order(o)) if tenant_rules.counts_orders => {
                customers.insert((o.tenant.clone(), o.customer_id.clone()));
                counted.insert((o.tenant.clone(), o.event_id.clone()), record.clone());
            }
            LogPayload::Record(_) | LogPayload::Nothing => {}
            LogPayload::Recompute { tenant } => {
                recompute.insert(tenant.as_str());
            }
            LogPayload::RederiveBadges { tenant } => {
                rederive.insert(tenant.as_str());
            }
        }
    }
    for tenant in rederive {
        let tenant_rules = &rules[tenant];
        for customer in store.tenant_badge_customers(tenant).await?.into_iter().filter(|customer| lanes.owns(customer)) {
            customers.insert((tenant.to_owned(), customer));
        }
        let mut past: Vec<Record> = Vec::new();
        for name in &tenant_rules.event_names {
            past.extend(store.tenant_events_named(tenant, name).await?.into_iter().map(Record::Event));
        }
        if tenant_rules.counts_orders {
            past.extend(store.tenant_orders(tenant).await?.into_iter().map(Record::Order));
        }
        for record in past {
            let Some(customer) = activity_customer(&record).filter(|customer| lanes.owns(customer)) else { continue };
            customers.insert((tenant.to_owned(), customer.to_owned()));
            counted.insert((tenant.to_owned(), record.id().to_owned()), record);
        }
    }
    for tenant in recompute {
        // The currency may have changed: order rules count again.
        if rules[tenant].counts_orders {
            let orders = store.tenant_orders(tenant).await?.into_iter().filter(|o| lanes.owns(&o.customer_id));
            customers.extend(orders.map(|o| (o.tenant, o.customer_id)));
        }
    }
    if customers.is_empty() {
        return Ok(BadgeWrites::default());
    }
    let counted: Vec<Record> = counted.into_values().collect();
    let mut counted_of: HashMap<(&str, &str), Vec<&Record>> = HashMap::new();
    for record in &counted {
        if let Some(customer) = activity_customer(record) {
            counted_of.entry((record.tenant(), customer)).or_default().push(record);
        }
    }

    let wanted: Vec<(String, String, bool)> = customers
        .into_iter()
        .map(|(tenant, customer)| {
            let with_activity = rules[tenant.as_str()].has_rules();
            (tenant, customer, with_activity)
        })
        .collect();
    let inputs = store.badge_inputs_many(&wanted).await?;
    let mut currencies: HashMap<&str, String> = HashMap::new();
    let mut writes = BadgeWrites::default();
    // Feed positions of derived changes: after every entry of the step, apart from other
    // lanes' (which may end their steps at the same position).
    let mut next_index = (lanes.index << 24) + 1;
    for ((tenant, customer_id, _), input) in wanted.iter().zip(inputs) {
        let (mut rows, mut activity) = (input.events, input.activity);
        if let Some(stored) = stored_of.get(&(tenant.as_str(), customer_id.as_str())) {
            let known: BTreeSet<&str> = rows.iter().map(|row| row.event_id.as_str()).collect();
            let new: Vec<BadgeEvent> = stored.iter().filter(|b| !known.contains(b.event_id.as_str())).map(|b| (*b).clone()).collect();
            if !new.is_empty() {
                rows.extend(new);
                rows.sort_by(badges::newest_first);
            }
        }
        if let Some(records) = counted_of.get(&(tenant.as_str(), customer_id.as_str())) {
            let indexed: BTreeSet<&str> = activity.iter().map(Record::id).collect();
            let new: Vec<Record> = records.iter().filter(|r| !indexed.contains(r.id())).map(|r| (*r).clone()).collect();
            activity.extend(new);
        }
        if !currencies.contains_key(tenant.as_str()) {
            currencies.insert(tenant, currency(tenant)?);
        }
        let currency = &currencies[tenant.as_str()];
        let book = &rules[tenant.as_str()].book;
        let want = badges::derived(&book.badges, currency, &rows, &activity);

        // Holdings from the stored events and the derived entries as they will be.
        let mut entries: Vec<badges::TimelineEntry> =
            rows.iter().filter(|row| !badges::is_derived_id(&row.event_id)).map(badges::TimelineEntry::from_event).collect();
        entries.extend(want.iter().cloned());
        let holdings = badge_stats::holdings(&book.badges, &entries);
        let stats = follow.stats(tenant);
        let no_intervals = Vec::new();
        for badge_id in input.holdings.keys().chain(holdings.keys()).collect::<BTreeSet<_>>() {
            let old = input.holdings.get(badge_id).unwrap_or(&no_intervals);
            let new = holdings.get(badge_id).unwrap_or(&no_intervals);
            if old != new {
                stats.holding(badge_id, old, new);
                writes.holdings.push(HoldingChange {
                    tenant: tenant.clone(),
                    customer_id: customer_id.clone(),
                    badge_id: badge_id.clone(),
                    intervals: new.clone(),
                });
            }
        }

        // Each change moves the counters from the row it replaces or removes to the row it
        // writes, and reaches the feed after every entry of the step.
        let stored = derived_rows(&rows);
        let changes = differences(tenant, customer_id, &stored, want);
        let stats = follow.stats.entry(tenant.clone()).or_default();
        for change in &changes {
            let old = stored.get(&row_key(change));
            if let Some(old) = old {
                stats.entry(&old.badge_id, old.action, old.ts, -1);
            }
            let (change, event) = match change {
                BadgeRowChange::Put(row) => {
                    stats.entry(&row.badge_id, row.action, row.ts, 1);
                    (FeedChange::Added, row.clone())
                }
                BadgeRowChange::Delete { .. } => {
                    let Some(old) = old else { continue };
                    (FeedChange::Removed, (*old).clone())
                }
            };
            follow.feed.push(BadgeFeedEntry { position: FeedPosition { seq: processed, index: next_index }, change, event });
            next_index += 1;
        }
        writes.rows.extend(changes);
    }
    writes.activity = counted;
    Ok(writes)
}

/// The `(ts, event_id)` of the row a change writes or removes.
fn row_key(change: &BadgeRowChange) -> (Millis, &str) {
    match change {
        BadgeRowChange::Put(row) => (row.ts, row.event_id.as_str()),
        BadgeRowChange::Delete { ts, event_id, .. } => (*ts, event_id.as_str()),
    }
}

/// The customer of a record rules can count: an app event's or an order's.
fn activity_customer(record: &Record) -> Option<&str> {
    match record {
        Record::Event(e) => Some(&e.customer_id),
        Record::Order(o) => Some(&o.customer_id),
        Record::Message(_) | Record::Touch(_) | Record::Badge(_) => None,
    }
}

/// The derived rows of a customer's badge partition, by `(ts, event_id)`.
fn derived_rows(rows: &[BadgeEvent]) -> BTreeMap<(Millis, &str), &BadgeEvent> {
    rows.iter().filter(|row| badges::is_derived_id(&row.event_id)).map(|row| ((row.ts, row.event_id.as_str()), row)).collect()
}

/// The changes that turn the customer's derived rows as stored (`have`, [`derived_rows`])
/// into `want`.
fn differences(
    tenant: &str,
    customer_id: &str,
    have: &BTreeMap<(Millis, &str), &BadgeEvent>,
    want: Vec<badges::TimelineEntry>,
) -> Vec<BadgeRowChange> {
    let want: Vec<BadgeEvent> = want.into_iter().map(|entry| entry.into_event(tenant, customer_id)).collect();
    let wanted: BTreeSet<(Millis, &str)> = want.iter().map(|row| (row.ts, row.event_id.as_str())).collect();
    let mut changes: Vec<BadgeRowChange> = have
        .iter()
        .filter(|(key, _)| !wanted.contains(*key))
        .map(|((ts, event_id), _)| BadgeRowChange::Delete {
            tenant: tenant.to_owned(),
            customer_id: customer_id.to_owned(),
            ts: *ts,
            event_id: (*event_id).to_owned(),
        })
        .collect();
    for row in &want {
        if have.get(&(row.ts, row.event_id.as_str())).is_none_or(|stored| *stored != row) {
            changes.push(BadgeRowChange::Put(row.clone()));
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::model::{BadgeAction, BadgeSource};

    fn row(event_id: &str, ts: Millis) -> BadgeEvent {
        BadgeEvent {
            tenant: "t".into(),
            event_id: event_id.into(),
            customer_id: "c".into(),
            badge_id: "b".into(),
            action: BadgeAction::Earned,
            ts,
            source: BadgeSource::Rule,
            reason: None,
        }
    }

    #[test]
    fn only_derived_rows_that_differ_change() {
        let stored = row("e1", 1);
        let kept = row("rule:b", 5);
        let moved = row("rule:c", 7);
        let gone = row("expiry:e1", 9);
        let rows = [stored.clone(), kept.clone(), moved.clone(), gone.clone()];
        let mut moved_later = moved.clone();
        moved_later.ts = 8;
        let mut reworded = kept.clone();
        reworded.reason = Some("3 orders".into());
        let want = [reworded.clone(), moved_later.clone()].map(|e| badges::TimelineEntry::from_event(&e)).to_vec();
        let changes = differences("t", "c", &derived_rows(&rows), want);
        assert_eq!(
            changes,
            vec![
                BadgeRowChange::Delete { tenant: "t".into(), customer_id: "c".into(), ts: 7, event_id: "rule:c".into() },
                BadgeRowChange::Delete { tenant: "t".into(), customer_id: "c".into(), ts: 9, event_id: "expiry:e1".into() },
                BadgeRowChange::Put(reworded),
                BadgeRowChange::Put(moved_later),
            ]
        );
        // Nothing to do when the stored rows are what is wanted; stored events never change.
        let want = [kept.clone()].map(|e| badges::TimelineEntry::from_event(&e)).to_vec();
        assert_eq!(differences("t", "c", &derived_rows(&[stored, kept]), want), vec![]);
    }
}
