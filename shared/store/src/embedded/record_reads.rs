//! [`RecordReads`] on fjall: registered messages (through the cache of registered ones),
//! a customer's touches from their fold state, a conversion by its key.

use super::key::Key;
use super::layout::Table;
use super::{EmbeddedStore, Tables};
use crate::{RecordReads, Result};
use async_trait::async_trait;
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::model::{Millis, Touch};

#[async_trait]
impl RecordReads for EmbeddedStore {
    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let tenant = tenant.to_owned();
        let msg_hashes = msg_hashes.to_vec();
        self.blocking("messages", move |tables| tables.messages(&tenant, &msg_hashes)).await
    }

    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let tenant = tenant.to_owned();
        let customer_id = customer_id.to_owned();
        self.blocking("customer_touches", move |tables| tables.customer_touches(&tenant, &customer_id, from, to)).await
    }

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        let tenant = tenant.to_owned();
        let goal_id = goal_id.to_owned();
        let key = key.to_owned();
        self.blocking("conversion", move |tables| tables.conversion(&tenant, &goal_id, &key)).await
    }
}

impl Tables {
    pub(super) fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let mut messages = Messages::new();
        for msg_hash in msg_hashes {
            if messages.contains_key(msg_hash) {
                continue;
            }
            let key = Key::new().str(tenant).str(msg_hash);
            if let Some(message) = self.registered_messages.get(key.as_bytes()) {
                messages.insert(msg_hash.clone(), message);
                continue;
            }
            if let Some(message) = self.get(Table::Messages, key.as_bytes())? {
                self.registered_messages.insert(key.into_vec(), &message);
                messages.insert(msg_hash.clone(), message);
            }
        }
        Ok(messages)
    }

    /// The touches of the customer's months from `from`'s to `to`'s, those in the span.
    fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let state = self.customer_months(tenant, customer_id, from, to)?;
        Ok(state.touches().filter(|touch| from <= touch.ts && touch.ts <= to).cloned().collect())
    }

    fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        let bytes = self.get_bytes(Table::Conversions, Key::new().str(tenant).str(goal_id).str(key).as_bytes())?;
        bytes.map(|bytes| crate::support::decode_conversion(Table::Conversions.name(), &bytes)).transpose()
    }
}
