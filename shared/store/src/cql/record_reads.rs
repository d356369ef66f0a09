//! [`RecordReads`] on CQL: registered messages read by slot partition (each once a process), a
//! customer's touches from their fold state's months (`fold_state.rs`), a conversion by its
//! key.

use super::timed;
use super::layout::{message, slot};
use super::{CqlStore, Inner};
use crate::support::{decode_conversion, lock};
use crate::{RecordReads, Result};
use async_trait::async_trait;
use std::collections::HashSet;
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::model::{Message, Millis, Touch};

/// `msg_hash, campaign_id, channel, tags, sent_at` of a `messages` row.
type MessageRow = (String, String, String, Option<Vec<String>>, i64);

/// How many registered messages a process keeps (cleared when full).
const REGISTERED_CACHED: usize = 100_000;

#[async_trait]
impl RecordReads for CqlStore {
    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        timed("messages", async { self.inner.messages(tenant, msg_hashes).await }).await
    }

    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        timed("customer_touches", async { self.inner.customer_touches(tenant, customer_id, from, to).await }).await
    }

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        timed("conversion", async { self.inner.conversion(tenant, goal_id, key).await }).await
    }
}

impl Inner {
    /// The messages this process has not read registered before: one read per slot
    /// partition and up to [`IDS_PER_READ`](super::layout::IDS_PER_READ) of them.
    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let wanted: HashSet<&String> = msg_hashes.iter().collect();
        let mut found = Messages::new();
        let mut unknown = Vec::new();
        {
            let registered = lock(&self.registered);
            let known = registered.get(tenant);
            for msg_hash in wanted {
                match known.and_then(|messages| messages.get(msg_hash)) {
                    Some(message) => {
                        found.insert(msg_hash.clone(), message.clone());
                    }
                    None => unknown.push(msg_hash),
                }
            }
        }
        let ids: Vec<(&str, &str)> = unknown.into_iter().map(|msg_hash| (tenant, msg_hash.as_str())).collect();
        let mut read: Vec<(String, Message)> = Vec::new();
        for (_, _, rows) in self.rows_by_slot::<MessageRow>(&self.statements.select_messages, &ids).await? {
            for (msg_hash, campaign_id, channel, tags, sent_at) in rows {
                read.push((msg_hash.clone(), message(tenant, msg_hash, campaign_id, &channel, tags, sent_at)?));
            }
        }
        if read.is_empty() {
            return Ok(found);
        }
        let mut registered = lock(&self.registered);
        if registered.values().map(Messages::len).sum::<usize>() + read.len() > REGISTERED_CACHED {
            registered.clear();
        }
        let known = registered.entry(tenant.to_owned()).or_default();
        for (msg_hash, message) in read {
            known.insert(msg_hash.clone(), message.clone());
            found.insert(msg_hash, message);
        }
        Ok(found)
    }

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        let row: Option<(Vec<u8>,)> = self.row(&self.statements.select_conversion, (tenant, slot(key), goal_id, key)).await?;
        row.map(|(body,)| decode_conversion("conversion", &body)).transpose()
    }
}
