//! The fold's state on fjall (part of [`AttributionState`](crate::AttributionState)):
//! customers' months in `customer_states`, orders in `order_states`, the index of messages
//! not registered when a customer named them in `unregistered_messages`, and the config
//! each tenant was folded under in `meta`. Written only by commits, under the shard's lock.

use super::key::{Key, read_str, read_time};
use super::layout::{Table, customer_state_partition, folded_config_key, order_state_key, unregistered_partition};
use super::{Tables, Writes, backend, checked};
use crate::{FoldWrites, Result, StoreError};
use std::collections::BTreeSet;
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::{CustomerState, OrderState, Segment};

impl Tables {
    pub(super) fn customer_state(&self, tenant: &str, customer_id: &str) -> Result<CustomerState> {
        let partition = customer_state_partition(tenant, customer_id);
        let mut state = CustomerState::default();
        for guard in self.read(Table::CustomerStates).prefix(checked(partition.as_bytes())?) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let (month, _) = key.get(partition.as_bytes().len()..).and_then(read_time).ok_or_else(|| corrupt("customer state"))?;
            state.segments.insert(month, self.decode_read::<Segment>(Table::CustomerStates, &value)?);
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
            let segment: Segment = self.decode_read(Table::CustomerStates, &value)?;
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
        self.get(Table::Meta, &folded_config_key(tenant))
    }

    /// Adds a commit's fold writes to its batch. Marks of a message the same commit
    /// registers are left out; the stored ones are removed.
    pub(super) fn write_fold(&self, writes: &mut Writes, fold: &FoldWrites) -> Result<()> {
        for write in &fold.segments {
            let key = customer_state_partition(&write.tenant, &write.customer_id).time(write.month).into_vec();
            match &write.segment {
                Some(segment) => writes.put(Table::CustomerStates, key, segment)?,
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
        for (tenant, msg_hash) in registered {
            let partition = unregistered_partition(tenant, msg_hash);
            for guard in self.read(Table::UnregisteredMessages).prefix(checked(partition.as_bytes())?) {
                writes.delete(Table::UnregisteredMessages, guard.key().map_err(backend)?.to_vec());
            }
        }
        for config in &fold.folded_configs {
            writes.put(Table::Meta, folded_config_key(&config.tenant), config)?;
        }
        Ok(())
    }
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Corrupt(format!("{what} key too short"))
}
