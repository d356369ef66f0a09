//! [`AttributionState`] on fjall: the engine's reads, and its commit as one batch under its
//! shard's commit lock (the remaining counters, pending and badge ones, are read-modify-write;
//! rollup counters go through `rollup_overlay.rs`).

use super::badges::StoredFeedEntry;
use super::ingest_log::StoredSetAside;
use super::key::{read_time, Key};
use super::layout::{
    ACTIVITY_EVENT, ACTIVITY_ORDER, PROCESSED, Table, activity_key, badge_key, badge_stats_partition, feed_key, holding_key, conversion_keys, counter_key, log_key, pending_key, pending_partition,
};
use super::{EmbeddedStore, Tables, Writes, backend, decode};
use super::rollup_overlay::RollupDeltas;
use crate::support::{decode_campaign_cells, encode_conversion, lock};
use crate::{AttributionCommit, AttributionState, BadgeRowChange, CellKinds, CustomerMonths, LOG_SHARDS, Lane, Result, StatLevel, StoreError, log_shard};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use touchstone_core::attribution::Conversion;
use touchstone_core::badge_stats::BadgeTally;
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::{CustomerState, OrderState};
use touchstone_core::model::{AppEvent, Millis, OrderRecord, Record};
use touchstone_core::rollup::{CampaignCell, CampaignCells, Granularity, Tally};

#[async_trait]
impl AttributionState for EmbeddedStore {
    async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        let tenant = tenant.to_owned();
        self.blocking("tenant_orders", move |tables| tables.tenant_orders(&tenant)).await
    }

    async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        let tenant = tenant.to_owned();
        let name = name.to_owned();
        self.blocking("tenant_events_named", move |tables| tables.tenant_events_named(&tenant, &name)).await
    }

    async fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>> {
        let tenant = tenant.to_owned();
        self.blocking("tenant_conversions", move |tables| tables.tenant_conversions(&tenant)).await
    }

    async fn pending_counters(&self, tenant: &str, lane: u32, msg_hash: &str) -> Result<Vec<(Millis, CampaignCell, Tally)>> {
        one_lane(lane)?;
        let tenant = tenant.to_owned();
        let msg_hash = msg_hash.to_owned();
        self.blocking("pending_counters", move |tables| tables.pending_counters(&tenant, &msg_hash)).await
    }

    async fn customer_months(&self, spans: &[CustomerMonths]) -> Result<Vec<CustomerState>> {
        let spans = spans.to_vec();
        self.blocking("customer_months", move |tables| {
            spans.iter().map(|s| tables.customer_months(&s.tenant, &s.customer_id, s.from, s.to)).collect()
        })
        .await
    }

    async fn order_states(&self, lane: u32, orders: &[(String, String)]) -> Result<Vec<OrderState>> {
        one_lane(lane)?;
        let orders = orders.to_vec();
        self.blocking("order_states", move |tables| orders.iter().map(|(tenant, order_id)| tables.order_state(tenant, order_id)).collect())
            .await
    }

    async fn tenant_customer_states(&self, tenant: &str) -> Result<Vec<(String, CustomerState)>> {
        let tenant = tenant.to_owned();
        self.blocking("tenant_customer_states", move |tables| tables.tenant_customer_states(&tenant)).await
    }

    async fn tenant_order_states(&self, tenant: &str, lane: u32) -> Result<Vec<(String, OrderState)>> {
        one_lane(lane)?;
        let tenant = tenant.to_owned();
        self.blocking("tenant_order_states", move |tables| tables.tenant_order_states(&tenant)).await
    }

    async fn unregistered_customers(&self, tenant: &str, msg_hash: &str) -> Result<Vec<String>> {
        let tenant = tenant.to_owned();
        let msg_hash = msg_hash.to_owned();
        self.blocking("unregistered_customers", move |tables| tables.unregistered_customers(&tenant, &msg_hash)).await
    }

    async fn folded_config(&self, tenant: &str, lane: u32) -> Result<Option<TenantConfig>> {
        one_lane(lane)?;
        let tenant = tenant.to_owned();
        self.blocking("folded_config", move |tables| tables.folded_config(&tenant)).await
    }

    async fn resume_lane(&self, lane: Lane) -> Result<u64> {
        one_lane(lane.index)?;
        // Commits are atomic here: the committed position is the applied one.
        self.blocking("resume_lane", move |tables| tables.counter(PROCESSED, lane.shard)).await
    }

    async fn commit_attribution(&self, commit: AttributionCommit) -> Result<()> {
        self.blocking("commit_attribution", move |tables| tables.commit_attribution(commit)).await
    }

    async fn settle(&self) -> Result<()> {
        self.blocking("settle", |tables| tables.fold_every_overlay()).await
    }
}

impl Tables {
    /// From the log (the archive), and from the `orders` rows of a store made before the
    /// log was kept (no longer written), each record once.
    pub(super) fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>> {
        let legacy: Vec<OrderRecord> = self.scan_prefix(Table::Orders, Key::new().str(tenant))?;
        let mut seen: HashSet<String> = legacy.iter().map(|order| order.event_id.clone()).collect();
        let logged = self.tenant_records(tenant, |record| matches!(record, Record::Order(order) if !seen.contains(&order.event_id)))?;
        let mut orders = legacy;
        orders.extend(logged.into_iter().filter_map(|record| match record {
            Record::Order(order) if seen.insert(order.event_id.clone()) => Some(order),
            _ => None,
        }));
        Ok(orders)
    }

    /// As [`Self::tenant_orders`], with the legacy `events_by_name` rows.
    fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>> {
        let legacy: Vec<AppEvent> = self.scan_prefix(Table::EventsByName, Key::new().str(tenant).str(name))?;
        let mut seen: HashSet<String> = legacy.iter().map(|event| event.event_id.clone()).collect();
        let logged = self.tenant_records(tenant, |record| matches!(record, Record::Event(event) if event.name == name))?;
        let mut events = legacy;
        events.extend(logged.into_iter().filter_map(|record| match record {
            Record::Event(event) if seen.insert(event.event_id.clone()) => Some(event),
            _ => None,
        }));
        Ok(events)
    }


    fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>> {
        self.scan_conversions_prefix(Key::new().str(tenant))
    }


    fn pending_counters(&self, tenant: &str, msg_hash: &str) -> Result<Vec<(Millis, CampaignCell, Tally)>> {
        let partition = pending_partition(tenant, msg_hash);
        let mut counters = Vec::new();
        for guard in self.read(Table::PendingCounters).prefix(super::checked(partition.as_bytes())?) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let (hour, cell) = key
                .get(partition.as_bytes().len()..)
                .and_then(read_time)
                .ok_or_else(|| StoreError::Corrupt("pending counter key too short".to_owned()))?;
            counters.push((hour, decode(Table::PendingCounters, cell)?, decode(Table::PendingCounters, &value)?));
        }
        Ok(counters)
    }

    fn commit_attribution(&self, commit: AttributionCommit) -> Result<()> {
        one_lane(commit.lane)?;
        let shard = commit.shard;
        let committer = self
            .committers
            .get(shard as usize)
            .ok_or_else(|| StoreError::Backend(format!("commit of log shard {shard}, of {LOG_SHARDS}")))?;
        check_tenants_of_shard(&commit)?;
        let _turn = lock(committer);
        let processed = self.counter(PROCESSED, shard)?;
        if processed != commit.after {
            return Err(StoreError::Fenced { shard });
        }
        if commit.processed < commit.after {
            return Err(StoreError::Backend(format!(
                "commit of shard {shard} moves the processed position back from {} to {}",
                commit.after, commit.processed
            )));
        }
        let mut writes = Writes::default();
        for change in &commit.conversions {
            // Removing first and writing second: where old and new share a key, the new
            // row replaces the removal in `writes`.
            if let Some(old) = &change.old {
                for (table, key) in conversion_keys(old) {
                    writes.delete(table, key);
                }
            }
            if let Some(new) = &change.new {
                let row = encode_conversion(new)?;
                for (table, key) in conversion_keys(new) {
                    writes.put_raw(table, key, row.clone());
                }
            }
        }

        // Counter rows are not read here: the deltas, summed per row, go to the rollup
        // journal and overlay (`rollup_overlay.rs`), folded into the rows many commits at once.
        let rollups = RollupDeltas::of_commit(&commit)?;

        let mut pending_sums: BTreeMap<Vec<u8>, Tally> = BTreeMap::new();
        for delta in &commit.pending {
            let key = pending_key(&delta.tenant, &delta.msg_hash, Granularity::Hour.bucket(delta.hour), &delta.cell)?;
            pending_sums.entry(key).or_default().add(delta.tally);
        }
        self.add_tallies(&mut writes, Table::PendingCounters, pending_sums)?;

        for change in &commit.badge_rows {
            match change {
                BadgeRowChange::Put(row) => writes.put(Table::Badges, badge_key(&row.tenant, &row.customer_id, row.ts, &row.event_id), row)?,
                BadgeRowChange::Delete { tenant, customer_id, ts, event_id } => {
                    writes.delete(Table::Badges, badge_key(tenant, customer_id, *ts, event_id));
                }
            }
        }

        for record in &commit.activity {
            match record {
                Record::Event(e) => writes.put(Table::ActivityByCustomer, activity_key(&e.tenant, &e.customer_id, ACTIVITY_EVENT, e.ts, &e.event_id), e)?,
                Record::Order(o) => writes.put(Table::ActivityByCustomer, activity_key(&o.tenant, &o.customer_id, ACTIVITY_ORDER, o.ts, &o.event_id), o)?,
                Record::Message(_) | Record::Touch(_) | Record::Badge(_) => {
                    return Err(StoreError::Backend(format!("a {} is no badge activity", crate::support::record_kind(record))));
                }
            }
        }

        // Badge counters at both levels, folded into the stored rows.
        let mut stat_sums: BTreeMap<Vec<u8>, BadgeTally> = BTreeMap::new();
        for delta in &commit.badge_stats {
            for level in [StatLevel::Day, StatLevel::Instant] {
                let key = badge_stats_partition(&delta.tenant, &delta.badge_id, level).time(level.bucket(delta.ts)).into_vec();
                stat_sums.entry(key).or_default().add(delta.tally);
            }
        }
        for (key, delta) in stat_sums {
            let mut tally: BadgeTally = self.get(Table::BadgeStats, &key)?.unwrap_or_default();
            tally.add(delta);
            if tally.is_zero() {
                writes.delete(Table::BadgeStats, key);
            } else {
                writes.put(Table::BadgeStats, key, &tally)?;
            }
        }
        for holding in &commit.holdings {
            let key = holding_key(&holding.tenant, &holding.customer_id, &holding.badge_id).into_vec();
            if holding.intervals.is_empty() {
                writes.delete(Table::BadgeHoldings, key);
            } else {
                writes.put(Table::BadgeHoldings, key, &holding.intervals)?;
            }
        }
        for entry in &commit.badge_feed {
            writes.put(Table::BadgeFeed, feed_key(&entry.event.tenant, entry.position), &StoredFeedEntry::of(entry))?;
        }

        self.write_fold(&mut writes, &commit.fold)?;

        for set_aside in &commit.set_aside {
            let seq = set_aside.entry.seq;
            if seq <= commit.after || seq > commit.processed {
                return Err(StoreError::Backend(format!("entry {seq} set aside outside the step's ({}, {}]", commit.after, commit.processed)));
            }
            writes.put(Table::SetAside, log_key(shard, seq).to_vec(), &StoredSetAside::of(set_aside))?;
        }

        if commit.processed > processed {
            // `processed` may be past the stored head for a moment: fjall's plain reads see a
            // write batch while it is being applied, so a step can read the log entries of an
            // ingest call whose head row is not applied yet. Those entries are already
            // journaled (a batch is journaled before it is applied), so they are durable.
            // The log itself is kept: it is the archive.
            writes.put_raw(Table::Meta, counter_key(PROCESSED, shard), commit.processed.to_be_bytes().to_vec());
        }
        self.apply_with_rollups(shard, writes, rollups)
    }
}

impl Tables {
    /// Adds each delta to the stored tally of its key (read-modify-write, under the
    /// shard's commit lock); a tally summing to zero is deleted.
    pub(super) fn add_tallies(&self, writes: &mut Writes, table: Table, deltas: impl IntoIterator<Item = (Vec<u8>, Tally)>) -> Result<()> {
        for (key, delta) in deltas {
            let mut tally: Tally = self.get(table, &key)?.unwrap_or_default();
            tally.add(delta);
            if tally.is_zero() {
                writes.delete(table, key);
            } else {
                writes.put(table, key, &tally)?;
            }
        }
        Ok(())
    }

    /// The stored cells (of `kinds`) of a row of `campaign_rollups` or `tenant_rollups`;
    /// none when there is no row.
    pub(super) fn cells_row(&self, table: Table, key: &[u8], kinds: CellKinds) -> Result<CampaignCells> {
        let mut cells = CampaignCells::default();
        if let Some(bytes) = self.get_bytes(table, key)? {
            for (cell, tally) in decode_campaign_cells(&bytes, kinds)? {
                cells.add(cell, tally);
            }
        }
        Ok(cells)
    }
}

/// Every row of a commit must be of a tenant of its shard: that is what lets commits of
/// different shards run side by side (see `Tables::committers`).
fn check_tenants_of_shard(commit: &AttributionCommit) -> Result<()> {
    let conversions = commit.conversions.iter().flat_map(|change| change.old.iter().chain(&change.new)).map(|c| c.fact.tenant.as_str());
    let tenants = conversions
        .chain(commit.rollups.iter().map(|delta| delta.tenant.as_str()))
        .chain(commit.campaign_rollups.iter().map(|delta| delta.tenant.as_str()))
        .chain(commit.pending.iter().map(|delta| delta.tenant.as_str()))
        .chain(commit.badge_rows.iter().map(BadgeRowChange::tenant))
        .chain(commit.activity.iter().map(Record::tenant))
        .chain(commit.badge_stats.iter().map(|delta| delta.tenant.as_str()))
        .chain(commit.holdings.iter().map(|holding| holding.tenant.as_str()))
        .chain(commit.badge_feed.iter().map(|entry| entry.event.tenant.as_str()))
        .chain(commit.fold.segments.iter().map(|write| write.tenant.as_str()))
        .chain(commit.fold.orders.iter().map(|write| write.tenant.as_str()))
        .chain(commit.fold.unregistered.iter().map(|mark| mark.tenant.as_str()))
        .chain(commit.fold.registered.iter().map(|(tenant, _)| tenant.as_str()))
        .chain(commit.fold.folded_configs.iter().map(|config| config.tenant.as_str()));
    let mut checked: Option<&str> = None;
    for tenant in tenants {
        if checked == Some(tenant) {
            continue;
        }
        if log_shard(tenant) != commit.shard {
            return Err(StoreError::Backend(format!("a commit of log shard {} holds rows of tenant {tenant:?}, of another shard", commit.shard)));
        }
        checked = Some(tenant);
    }
    Ok(())
}

/// The embedded store is one process's: its shards have one lane each (several would only
/// split one process's work), so anything of another lane is a caller's mistake.
fn one_lane(lane: u32) -> Result<()> {
    match lane {
        0 => Ok(()),
        _ => Err(StoreError::Backend(format!("lane {lane} of a store of one lane a shard"))),
    }
}

#[cfg(test)]
mod tests {
    use super::super::EmbeddedStore;
    use super::super::tests::order;
    use super::*;
    use crate::IngestLog;

    /// Orders come from the log; a store made before the log was kept also has `orders`
    /// rows (of records its log no longer holds, or holds too): each record once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn tenant_orders_are_the_logs_and_the_legacy_rows_each_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        let at = 1_767_225_600_000;
        store.ingest(vec![Record::Order(order("logged", at)), Record::Order(order("both", at))]).await.unwrap();
        let mut writes = Writes::default();
        for legacy in [order("legacy", at), order("both", at)] {
            let key = Key::new().str("t").str("o1").time(legacy.ts).str(&legacy.event_id).into_vec();
            writes.put(Table::Orders, key, &legacy).unwrap();
        }
        store.tables.apply(writes).unwrap();
        let mut ids: Vec<String> = store.tenant_orders("t").await.unwrap().into_iter().map(|order| order.event_id).collect();
        ids.sort();
        assert_eq!(ids, ["both", "legacy", "logged"]);
        assert!(store.tenant_orders("u").await.unwrap().is_empty());
    }
}
