//! The fold's state on CQL (part of [`AttributionState`](crate::AttributionState)):
//! `customer_states` (a row per customer and month), `order_states`,
//! `unregistered_messages`, `campaign_exposures` and `folded_configs`. A commit carries the
//! rows encoded in its step body ([`StoredFold`]); applying the step writes them at the
//! step's timestamp.

use super::layout::{CUSTOMER_SLOTS, Partitions, decode, lane_value, slot};
use super::{Inner, Write, all};
use crate::support::{decode_segment, encode, encode_segment};
use crate::{CustomerMonths, FoldWrites, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashMap};
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::{CustomerState, OrderState, segments_between};
use touchstone_core::model::{Millis, Touch};

/// A commit's [`FoldWrites`] as its step body stores them, values encoded.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(super) struct StoredFold {
    /// `(tenant, customer_id, month, segment)`; no segment: delete the month's row.
    segments: Vec<(String, String, Millis, Option<Vec<u8>>)>,
    /// `(tenant, order_id, state)`.
    orders: Vec<(String, String, Vec<u8>)>,
    /// `(tenant, msg_hash, customer_id)`, none of a message registered by the same step.
    unregistered: Vec<(String, String, String)>,
    /// `(tenant, msg_hash, customer_id)` of marks removed.
    unmarked: Vec<(String, String, String)>,
    /// `(tenant, campaign_id, customer_id)`.
    exposures: Vec<(String, String, String)>,
    /// `(tenant, config)`.
    folded_configs: Vec<(String, Vec<u8>)>,
}

impl StoredFold {
    pub(super) fn of(fold: FoldWrites) -> Result<StoredFold> {
        let registered: BTreeSet<(String, String)> = fold.registered.into_iter().collect();
        let mut segments = Vec::with_capacity(fold.segments.len());
        for write in fold.segments {
            let segment = write.segment.as_ref().map(encode_segment).transpose()?;
            segments.push((write.tenant, write.customer_id, write.month, segment));
        }
        let orders = fold.orders.into_iter().map(|w| Ok((w.tenant, w.order_id, encode(&w.state)?))).collect::<Result<_>>()?;
        let unregistered = fold
            .unregistered
            .into_iter()
            .filter(|mark| !registered.contains(&(mark.tenant.clone(), mark.msg_hash.clone())))
            .map(|mark| (mark.tenant, mark.msg_hash, mark.customer_id))
            .collect();
        let folded_configs = fold.folded_configs.iter().map(|config| Ok((config.tenant.clone(), encode(config)?))).collect::<Result<_>>()?;
        let exposures = fold.exposures.into_iter().map(|e| (e.tenant, e.campaign_id, e.customer_id)).collect();
        let unmarked = fold.unmarked.into_iter().map(|mark| (mark.tenant, mark.msg_hash, mark.customer_id)).collect();
        Ok(StoredFold { segments, orders, unregistered, unmarked, folded_configs, exposures })
    }
}

// The reads.
impl Inner {
    /// The customer's months holding times in `[from, to]`: one partition slice.
    pub(super) async fn customer_months(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<CustomerState> {
        let mut state = CustomerState::default();
        if from > to {
            return Ok(state);
        }
        let (first, last) = segments_between(from, to);
        let values = (tenant, slot(customer_id), customer_id, first, last);
        let rows: Vec<(i64, Vec<u8>)> = self.rows(&self.statements.select_customer_months, values).await?;
        for (month, segment) in rows {
            state.segments.insert(month, decode_segment("customer state", &segment)?);
        }
        Ok(state)
    }

    /// The customer's folded touches with `from <= ts <= to`.
    pub(super) async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let state = self.customer_months(tenant, customer_id, from, to).await?;
        Ok(state.touches().filter(|touch| from <= touch.ts && touch.ts <= to).cloned().collect())
    }

    /// Each span's months, in input order: one read per partition and up to
    /// [`IDS_PER_READ`](super::layout::IDS_PER_READ) of its customers (all their months, each
    /// customer's kept to its span), not one per customer.
    pub(super) async fn customers_months(&self, spans: &[CustomerMonths]) -> Result<Vec<CustomerState>> {
        let asked: Vec<(&str, &str)> = spans.iter().filter(|span| span.from <= span.to).map(|span| (span.tenant.as_str(), span.customer_id.as_str())).collect();
        // Each customer's months as stored: (month, encoded segment).
        type StoredMonths = Vec<(Millis, Vec<u8>)>;
        let mut months: HashMap<(&str, &str), StoredMonths> = HashMap::new();
        for (tenant, ids, rows) in self.rows_by_slot::<(String, i64, Vec<u8>)>(&self.statements.select_customers_months, &asked).await? {
            for (customer_id, month, segment) in rows {
                if let Some(&customer_id) = ids.get(customer_id.as_str()) {
                    months.entry((tenant, customer_id)).or_default().push((month, segment));
                }
            }
        }
        spans
            .iter()
            .map(|span| {
                let mut state = CustomerState::default();
                if span.from <= span.to {
                    let (first, last) = segments_between(span.from, span.to);
                    for (month, segment) in months.get(&(span.tenant.as_str(), span.customer_id.as_str())).into_iter().flatten() {
                        if first <= *month && *month <= last {
                            state.segments.insert(*month, decode_segment("customer state", segment)?);
                        }
                    }
                }
                Ok(state)
            })
            .collect()
    }

    /// Each order's state in the lane, in input order: one read per partition and up to
    /// [`IDS_PER_READ`](super::layout::IDS_PER_READ) of its orders.
    pub(super) async fn order_states(&self, lane: u32, orders: &[(String, String)]) -> Result<Vec<OrderState>> {
        let asked: Vec<(&str, &str)> = orders.iter().map(|(tenant, order_id)| (tenant.as_str(), order_id.as_str())).collect();
        let mut found: HashMap<(&str, &str), Vec<u8>> = HashMap::new();
        let statement = &self.statements.select_order_states_in;
        for (tenant, ids, rows) in self.rows_by_slot_in::<(String, Vec<u8>)>(statement, Some(lane_value(lane)), &asked).await? {
            for (order_id, state) in rows {
                if let Some(&order_id) = ids.get(order_id.as_str()) {
                    found.insert((tenant, order_id), state);
                }
            }
        }
        asked
            .iter()
            .map(|key| match found.get(key) {
                Some(state) => decode("order state", state),
                None => Ok(OrderState::default()),
            })
            .collect()
    }

    pub(super) async fn tenant_customer_states(&self, tenant: &str) -> Result<Vec<(String, CustomerState)>> {
        let reads = (0..CUSTOMER_SLOTS).map(|slot| self.rows::<(String, i64, Vec<u8>)>(&self.statements.select_customer_states_of_slot, (tenant, slot)));
        let mut states: Vec<(String, CustomerState)> = Vec::new();
        // Rows come by customer within a partition: each customer's months together.
        for (customer_id, month, segment) in all(reads).await?.into_iter().flatten() {
            let segment = decode_segment("customer state", &segment)?;
            match states.last_mut() {
                Some((last, state)) if *last == customer_id => {
                    state.segments.insert(month, segment);
                }
                _ => {
                    let mut state = CustomerState::default();
                    state.segments.insert(month, segment);
                    states.push((customer_id, state));
                }
            }
        }
        Ok(states)
    }

    pub(super) async fn tenant_order_states(&self, tenant: &str, lane: u32) -> Result<Vec<(String, OrderState)>> {
        let statement = &self.statements.select_order_states_of_slot;
        let reads = (0..CUSTOMER_SLOTS).map(|slot| self.rows::<(String, Vec<u8>)>(statement, (tenant, slot, lane_value(lane))));
        all(reads).await?.into_iter().flatten().map(|(order_id, state)| Ok((order_id, decode("order state", &state)?))).collect()
    }

    /// The customers exposed to a campaign, each with their whole state (read together).
    pub(super) async fn exposed_customer_states(&self, tenant: &str, campaign_id: &str) -> Result<Vec<(String, CustomerState)>> {
        let rows: Vec<(String,)> = self.rows(&self.statements.select_exposed, (tenant, campaign_id)).await?;
        let spans: Vec<CustomerMonths> = rows.iter().map(|(customer_id,)| CustomerMonths::whole(tenant, customer_id)).collect();
        let states = self.customers_months(&spans).await?;
        Ok(rows.into_iter().map(|(customer_id,)| customer_id).zip(states).collect())
    }

    pub(super) async fn unregistered_customers(&self, tenant: &str, msg_hash: &str) -> Result<Vec<String>> {
        let rows: Vec<(String,)> = self.rows(&self.statements.select_unregistered, (tenant, slot(msg_hash), msg_hash)).await?;
        Ok(rows.into_iter().map(|(customer_id,)| customer_id).collect())
    }

    pub(super) async fn folded_config(&self, tenant: &str, lane: u32) -> Result<Option<TenantConfig>> {
        let row: Option<(Vec<u8>,)> = self.row(&self.statements.select_folded_config, (tenant, lane_value(lane))).await?;
        row.map(|(config,)| crate::support::decode_config("folded config", &config)).transpose()
    }

    /// The writes of a step's fold state in `lane`, at the step's timestamp. Rows of one
    /// partition go in batches (a step's customers share a tenant's 16 state partitions),
    /// so a step costs requests per partition, not per customer.
    pub(super) fn fold_writes<'a>(&'a self, fold: &'a StoredFold, lane: u32, timestamp: i64) -> Vec<Write<'a>> {
        let lane = lane_value(lane);
        let s = &self.statements;
        let mut writes: Vec<Write<'a>> = Vec::new();
        let mut segments = Partitions::default();
        for (tenant, customer_id, month, segment) in &fold.segments {
            let slot = slot(customer_id);
            match segment {
                Some(segment) => segments.add((tenant, slot), (tenant, slot, customer_id, *month, segment), customer_id.len() + segment.len() + 24),
                None => writes.push(Box::pin(self.run_at(&s.delete_customer_segment, timestamp, (tenant, slot, customer_id, *month)))),
            }
        }
        writes.extend(segments.batches(self, &s.insert_customer_segment, Some(timestamp)));
        let mut orders = Partitions::default();
        for (tenant, order_id, state) in &fold.orders {
            let slot = slot(order_id);
            orders.add((tenant, slot), (tenant, slot, lane, order_id, state), order_id.len() + state.len() + 16);
        }
        writes.extend(orders.batches(self, &s.insert_order_state, Some(timestamp)));
        // Marks, and their removal, in batches per slot partition.
        let (mut unregistered, mut unmarked) = (Partitions::default(), Partitions::default());
        for (tenant, msg_hash, customer_id) in &fold.unregistered {
            let slot = slot(msg_hash);
            unregistered.add((tenant, slot), (tenant, slot, msg_hash, customer_id), msg_hash.len() + customer_id.len() + 16);
        }
        writes.extend(unregistered.batches(self, &s.insert_unregistered, Some(timestamp)));
        for (tenant, msg_hash, customer_id) in &fold.unmarked {
            let slot = slot(msg_hash);
            unmarked.add((tenant, slot), (tenant, slot, msg_hash, customer_id), msg_hash.len() + customer_id.len() + 16);
        }
        writes.extend(unmarked.batches(self, &s.delete_unregistered, Some(timestamp)));
        for (tenant, config) in &fold.folded_configs {
            writes.push(Box::pin(self.run_at(&s.insert_folded_config, timestamp, (tenant, lane, config))));
        }
        let mut exposures = Partitions::default();
        for (tenant, campaign_id, customer_id) in &fold.exposures {
            exposures.add((tenant, campaign_id), (tenant, campaign_id, customer_id), customer_id.len() + 8);
        }
        writes.extend(exposures.batches(self, &s.insert_exposure, Some(timestamp)));
        writes
    }
}
