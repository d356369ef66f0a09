//! [`RecordReads`] on CQL: registered messages by point reads (each once a process), a
//! customer's touches from their fold state's months (`fold_state.rs`), a conversion by its
//! key.

use super::timed;
use super::layout::{message, slot};
use super::{CqlStore, Inner, all};
use crate::support::{decode_conversion, lock};
use crate::{RecordReads, Result};
use async_trait::async_trait;
use std::collections::HashSet;
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::model::{Message, Millis, Touch};

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
    /// Point reads of the messages this process has not read registered before.
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
        let reads = unknown.into_iter().map(|msg_hash| async move {
            let row: Option<(String, String, Option<Vec<String>>, i64)> =
                self.row(&self.statements.select_message, (tenant, msg_hash)).await?;
            let Some((campaign_id, channel, tags, sent_at)) = row else { return Ok(None) };
            let message = message(tenant, msg_hash.clone(), campaign_id, &channel, tags, sent_at)?;
            Ok(Some((msg_hash.clone(), message)))
        });
        let read: Vec<(String, Message)> = all(reads).await?.into_iter().flatten().collect();
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
