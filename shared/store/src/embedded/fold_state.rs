//! The fold's state on fjall (part of [`AttributionState`](crate::AttributionState)):
//! customers' months in `customer_states`, orders in `order_states`, the index of messages
//! not registered when a customer named them in `unregistered_messages`, and the config
//! each tenant was folded under in `meta`. Written only by commits, under the shard's lock.

use super::ingest_log::LogAppender;
use super::key::{Key, read_str, read_time};
use super::layout::{EXPOSURES_INDEXED, FOLD_STATE_BUILT, MODELS_SPLIT, Table, exposure_partition, customer_state_partition, folded_config_key, order_state_key, unregistered_partition};
use super::{Tables, Writes, backend, checked};
use crate::support::encode_segment;
use crate::{FoldWrites, LogPayload, Result, StoreError, log_shard};
use std::collections::{BTreeMap, BTreeSet};
use touchstone_core::config::{GoalKind, TenantConfig};
use touchstone_core::fold::{CustomerState, OrderState, segment_of, segments_between};
use touchstone_core::model::{Millis, Touch};

impl Tables {
    /// The customer's months from `from`'s to `to`'s: one range scan.
    pub(super) fn customer_months(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<CustomerState> {
        let mut state = CustomerState::default();
        if from > to {
            return Ok(state);
        }
        let (first, last) = segments_between(from, to);
        let partition = customer_state_partition(tenant, customer_id);
        let start = partition.clone().time(first).into_vec();
        let end = partition.time(last).into_vec();
        for guard in self.read(Table::CustomerStates).range(checked(&start)?.to_vec()..=checked(&end)?.to_vec()) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let month = key.len().checked_sub(8).and_then(|at| read_time(&key[at..])).map(|(month, _)| month);
            let month = month.ok_or_else(|| corrupt("customer state"))?;
            state.segments.insert(month, self.decode_segment(&value)?);
        }
        Ok(state)
    }

    pub(super) fn order_state(&self, tenant: &str, order_id: &str) -> Result<OrderState> {
        Ok(self.get(Table::OrderStates, order_state_key(tenant, order_id).as_bytes())?.unwrap_or_default())
    }

    /// Every customer's state of the tenant: one scan, rows in key order, so each
    /// customer's months come together.
    pub(super) fn tenant_customer_states(&self, tenant: &str) -> Result<Vec<(String, CustomerState)>> {
        let prefix = Key::new().str(tenant);
        let mut states: Vec<(String, CustomerState)> = Vec::new();
        for guard in self.read(Table::CustomerStates).prefix(checked(prefix.as_bytes())?) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let rest = key.get(prefix.as_bytes().len()..).ok_or_else(|| corrupt("customer state"))?;
            let (customer_id, rest) = read_str(rest).ok_or_else(|| corrupt("customer state"))?;
            let (month, _) = read_time(rest).ok_or_else(|| corrupt("customer state"))?;
            let segment = self.decode_segment(&value)?;
            match states.last_mut() {
                Some((last, state)) if last == customer_id => {
                    state.segments.insert(month, segment);
                }
                _ => {
                    let mut state = CustomerState::default();
                    state.segments.insert(month, segment);
                    states.push((customer_id.to_owned(), state));
                }
            }
        }
        Ok(states)
    }

    pub(super) fn tenant_order_states(&self, tenant: &str) -> Result<Vec<(String, OrderState)>> {
        let prefix = Key::new().str(tenant);
        let mut states = Vec::new();
        for guard in self.read(Table::OrderStates).prefix(checked(prefix.as_bytes())?) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let rest = key.get(prefix.as_bytes().len()..).ok_or_else(|| corrupt("order state"))?;
            let (order_id, _) = read_str(rest).ok_or_else(|| corrupt("order state"))?;
            states.push((order_id.to_owned(), self.decode_read(Table::OrderStates, &value)?));
        }
        Ok(states)
    }

    pub(super) fn unregistered_customers(&self, tenant: &str, msg_hash: &str) -> Result<Vec<String>> {
        let partition = unregistered_partition(tenant, msg_hash);
        let mut customers = Vec::new();
        for guard in self.read(Table::UnregisteredMessages).prefix(checked(partition.as_bytes())?) {
            let key = guard.key().map_err(backend)?;
            let rest = key.get(partition.as_bytes().len()..).ok_or_else(|| corrupt("unregistered message mark"))?;
            let (customer_id, _) = read_str(rest).ok_or_else(|| corrupt("unregistered message mark"))?;
            customers.push(customer_id.to_owned());
        }
        Ok(customers)
    }

    pub(super) fn folded_config(&self, tenant: &str) -> Result<Option<TenantConfig>> {
        self.get_config(Table::Meta, &folded_config_key(tenant))
    }

    /// Adds a commit's fold writes to its batch. Marks of a message the same commit
    /// registers are left out; the stored ones are removed.
    pub(super) fn write_fold(&self, writes: &mut Writes, fold: &FoldWrites) -> Result<()> {
        for write in &fold.segments {
            let key = customer_state_partition(&write.tenant, &write.customer_id).time(write.month).into_vec();
            match &write.segment {
                Some(segment) => writes.put_raw(Table::CustomerStates, key, encode_segment(segment)?),
                None => writes.delete(Table::CustomerStates, key),
            }
        }
        for write in &fold.orders {
            writes.put(Table::OrderStates, order_state_key(&write.tenant, &write.order_id).into_vec(), &write.state)?;
        }
        let registered: BTreeSet<(&str, &str)> = fold.registered.iter().map(|(t, h)| (t.as_str(), h.as_str())).collect();
        for mark in &fold.unregistered {
            if !registered.contains(&(mark.tenant.as_str(), mark.msg_hash.as_str())) {
                let key = unregistered_partition(&mark.tenant, &mark.msg_hash).str(&mark.customer_id).into_vec();
                writes.put_raw(Table::UnregisteredMessages, key, Vec::new());
            }
        }
        for mark in &fold.unmarked {
            writes.delete(Table::UnregisteredMessages, unregistered_partition(&mark.tenant, &mark.msg_hash).str(&mark.customer_id).into_vec());
        }
        for config in &fold.folded_configs {
            writes.put(Table::Meta, folded_config_key(&config.tenant), config)?;
        }
        for exposure in &fold.exposures {
            let key = exposure_partition(&exposure.tenant, &exposure.campaign_id).str(&exposure.customer_id).into_vec();
            writes.put_raw(Table::CampaignExposures, key, Vec::new());
        }
        Ok(())
    }

    /// The customers exposed to a campaign, each with their whole state.
    pub(super) fn exposed_customer_states(&self, tenant: &str, campaign_id: &str) -> Result<Vec<(String, CustomerState)>> {
        let partition = exposure_partition(tenant, campaign_id);
        let prefix = partition.as_bytes().len();
        let mut customers = Vec::new();
        for guard in self.read(Table::CampaignExposures).prefix(checked(partition.as_bytes())?) {
            let key = guard.key().map_err(backend)?;
            let (customer_id, _) = key.get(prefix..).and_then(read_str).ok_or_else(|| corrupt("campaign exposure"))?;
            customers.push(customer_id.to_owned());
        }
        customers.into_iter().map(|customer_id| Ok((customer_id.clone(), self.customer_months(tenant, &customer_id, Millis::MIN, Millis::MAX)?))).collect()
    }
}

impl Tables {
    /// Builds the fold's state once for a store made before it (a new store just gets the
    /// mark): each tenant's customers from `touches_by_time` and `conversions`, its
    /// orders (`tenant_orders`) with the facts of their stored conversions, the marks of the
    /// messages not registered, and its config as the folded one. Records ingested but not
    /// yet attributed are in those tables already, so each tenant with state also gets a
    /// `Recompute` entry: it credits everything again once the log before it is folded.
    /// One batch per tenant (a store's whole state need not fit in memory at once), the mark
    /// last: a build cut short is done again from the start (the same rows, one more
    /// recompute).
    pub(super) fn build_fold_state(&self) -> Result<()> {
        if self.read(Table::Meta).get(FOLD_STATE_BUILT).map_err(backend)?.is_some() {
            return Ok(());
        }
        for tenant in self.tenants()? {
            let mut writes = Writes::default();
            let mut log = LogAppender::new(None);
            let config = self.tenant_config(&tenant)?;
            let prefix = Key::new().str(&tenant);
            let mut customers: BTreeMap<String, CustomerState> = BTreeMap::new();
            for touch in self.scan_prefix::<Touch>(Table::TouchesByTime, prefix.clone())? {
                let state = customers.entry(touch.customer_id.clone()).or_default();
                let touches = &mut state.segments.entry(segment_of(touch.ts)).or_default().touches;
                touches.push(touch);
            }
            let mut orders: BTreeMap<String, OrderState> = BTreeMap::new();
            for record in self.tenant_orders(&tenant)? {
                orders.entry(record.order_id.clone()).or_default().records.push(record);
            }
            for conversion in self.scan_conversions_prefix(prefix.clone())? {
                let fact = &conversion.fact;
                if let Some(order) = orders.get_mut(&fact.key)
                    && matches!(config.goal(&fact.goal_id).map(|goal| &goal.kind), Some(GoalKind::Order { .. }))
                {
                    order.facts.insert(fact.goal_id.clone(), fact.clone());
                }
                let state = customers.entry(fact.customer_id.clone()).or_default();
                let segment = state.segments.entry(segment_of(fact.ts)).or_default();
                segment.conversions.insert((fact.goal_id.clone(), fact.key.clone()), conversion);
            }
            if customers.is_empty() && orders.is_empty() {
                continue;
            }
            let mut registered: BTreeMap<String, bool> = BTreeMap::new();
            for (customer_id, mut state) in customers {
                for segment in state.segments.values_mut() {
                    segment.touches.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
                }
                for msg_hash in state.referenced_messages() {
                    let is_registered = match registered.get(msg_hash) {
                        Some(known) => *known,
                        None => *registered.entry(msg_hash.to_owned()).or_insert(self.is_registered(&tenant, msg_hash)?),
                    };
                    if !is_registered {
                        let key = unregistered_partition(&tenant, msg_hash).str(&customer_id).into_vec();
                        writes.put_raw(Table::UnregisteredMessages, key, Vec::new());
                    }
                }
                for (month, segment) in &state.segments {
                    writes.put_raw(Table::CustomerStates, customer_state_partition(&tenant, &customer_id).time(*month).into_vec(), encode_segment(segment)?);
                }
            }
            for (order_id, mut state) in orders {
                state.records.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
                writes.put(Table::OrderStates, order_state_key(&tenant, &order_id).into_vec(), &state)?;
            }
            writes.put(Table::Meta, folded_config_key(&tenant), &config)?;
            log.append(self, log_shard(&tenant), LogPayload::Recompute { tenant: tenant.clone() }, &mut writes)?;
            log.finish(&mut writes)?;
            self.apply(writes)?;
            tracing::info!(%tenant, "fold state built from the record tables, once; a recompute follows");
        }
        let mut mark = Writes::default();
        mark.put_raw(Table::Meta, FOLD_STATE_BUILT.to_vec(), Vec::new());
        // The recomputes just appended split every conversion and index every exposure too.
        mark.put_raw(Table::Meta, MODELS_SPLIT.to_vec(), Vec::new());
        mark.put_raw(Table::Meta, EXPOSURES_INDEXED.to_vec(), Vec::new());
        self.apply(mark)
    }

    /// Once per `mark`, for a store folded before what the mark names was kept: a
    /// `Recompute` entry for every tenant with folded state, which folds every customer
    /// again and writes what was missing (model splits and their counters; campaign
    /// exposures). The entries and the mark in one batch; several marks missing at one
    /// open share one recompute.
    pub(super) fn recompute_once(&self, marks: &[(&[u8], &str)]) -> Result<()> {
        let mut missing = Vec::new();
        for (mark, why) in marks {
            if self.read(Table::Meta).get(mark).map_err(backend)?.is_none() {
                missing.push((*mark, *why));
            }
        }
        if missing.is_empty() {
            return Ok(());
        }
        let mut writes = Writes::default();
        let mut log = LogAppender::new(None);
        for tenant in self.tenants()? {
            if self.folded_config(&tenant)?.is_some() {
                log.append(self, log_shard(&tenant), LogPayload::Recompute { tenant: tenant.clone() }, &mut writes)?;
                let why: Vec<&str> = missing.iter().map(|(_, why)| *why).collect();
                tracing::info!(%tenant, why = why.join("; "), "a recompute follows, once");
            }
        }
        log.finish(&mut writes)?;
        for (mark, _) in missing {
            writes.put_raw(Table::Meta, mark.to_vec(), Vec::new());
        }
        self.apply(writes)
    }

    fn is_registered(&self, tenant: &str, msg_hash: &str) -> Result<bool> {
        self.read(Table::Messages).contains_key(checked(Key::new().str(tenant).str(msg_hash).as_bytes())?).map_err(backend)
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} key too short"))
}

#[cfg(test)]
mod tests {
    use super::super::EmbeddedStore;
    use super::super::tests::{order, touch};
    use super::*;
    use crate::{AttributionCommit, AttributionState, ConversionChange, CustomerMonths, IngestLog};
    use touchstone_core::attribution::{Conversion, ConversionFact, Credit, Rule};
    use touchstone_core::model::{Channel, Message, Record};

    /// A store made before the fold's state (records and conversion rows, no state, no
    /// mark) has it built when opened, once, with a `Recompute` entry after its log.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fold_state_is_built_once_from_the_record_tables() {
        let dir = tempfile::tempdir().unwrap();
        let at = 1_767_225_600_000;
        let message = Record::Message(Message {
            tenant: "t".into(),
            msg_hash: "m".into(),
            campaign_id: "c1".into(),
            channel: Channel::Push,
            tags: Vec::new(),
            sent_at: at - 1_000,
        });
        let unregistered = match touch(3) {
            Record::Touch(touch) => Record::Touch(Touch { msg_hash: "m2".into(), ..touch }),
            _ => unreachable!(),
        };
        let order = order("o1-paid", at + 10);
        let fact = ConversionFact {
            tenant: "t".into(),
            goal_id: "orders".into(),
            key: "o1".into(),
            customer_id: "c".into(),
            ts: at + 10,
            value_micros: 10_000_000,
            source_event_id: "o1-paid".into(),
            explicit_msg_hash: None,
        };
        let credit = Credit { rule: Rule::LastTouch, msg_hash: Some("m".into()), touch_event_id: Some("e2".into()) };
        let conversion = Conversion { fact: fact.clone(), credit, split: None };
        let shard = log_shard("t");
        let head = {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let records = vec![message, touch(1), touch(2), unregistered, Record::Order(order.clone())];
            store.ingest(records).await.unwrap();
            let change = ConversionChange { old: None, new: Some(conversion.clone()) };
            store.commit_attribution(AttributionCommit { shard, conversions: vec![change], ..AttributionCommit::default() }).await.unwrap();
            assert_eq!(store.customer_months(&[CustomerMonths::whole("t", "c")]).await.unwrap(), vec![CustomerState::default()]);
            // Back to how an older store was left: the mark gone (there is no state).
            let mut writes = Writes::default();
            writes.delete(Table::Meta, FOLD_STATE_BUILT.to_vec());
            store.tables.apply(writes).unwrap();
            store.read_log(shard, 0, 100).await.unwrap().last().unwrap().seq
        };

        let store = EmbeddedStore::open(dir.path()).unwrap();
        let [state] = <[CustomerState; 1]>::try_from(store.customer_months(&[CustomerMonths::whole("t", "c")]).await.unwrap()).unwrap();
        let touches: Vec<&str> = state.touches().map(|touch| touch.event_id.as_str()).collect();
        assert_eq!(touches, ["e1", "e2", "e3"], "every touch, in time order");
        assert_eq!(state.conversions().collect::<Vec<_>>(), [&conversion]);
        let [order_state] = <[OrderState; 1]>::try_from(store.order_states(0, &[("t".into(), "o1".into())]).await.unwrap()).unwrap();
        assert_eq!(order_state.records, [order]);
        assert_eq!(order_state.facts, BTreeMap::from([("orders".to_owned(), fact)]));
        assert_eq!(store.unregistered_customers("t", "m2").await.unwrap(), ["c"]);
        assert!(store.unregistered_customers("t", "m").await.unwrap().is_empty(), "m is registered");
        assert_eq!(store.folded_config("t", 0).await.unwrap(), Some(TenantConfig::defaults("t")));
        let appended = store.read_log(shard, head, 10).await.unwrap();
        assert_eq!(appended.len(), 1);
        assert_eq!(appended[0].payload, LogPayload::Recompute { tenant: "t".into() });

        // Once: opened again, nothing is built or appended.
        drop(store);
        let store = EmbeddedStore::open(dir.path()).unwrap();
        assert_eq!(store.read_log(shard, head, 10).await.unwrap().len(), 1);

        // A store folded before conversions kept their split and before exposures were
        // indexed: one recompute more, once, for both.
        let mut writes = Writes::default();
        writes.delete(Table::Meta, MODELS_SPLIT.to_vec());
        writes.delete(Table::Meta, EXPOSURES_INDEXED.to_vec());
        store.tables.apply(writes).unwrap();
        drop(store);
        for _ in 0..2 {
            let store = EmbeddedStore::open(dir.path()).unwrap();
            let appended = store.read_log(shard, head, 10).await.unwrap();
            assert_eq!(appended.iter().map(|entry| &entry.payload).collect::<Vec<_>>(), [&LogPayload::Recompute { tenant: "t".into() }; 2]);
        }
    }
}
