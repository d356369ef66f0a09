//! [`BadgeStore`] on fjall: a tenant's badge book in one row, saved under the log writer's
//! lock (which makes the version check atomic, as for configs); a customer's badge events
//! and activity are prefix scans of one partition each.

use super::key::Key;
use super::layout::{ACTIVITY_EVENT, ACTIVITY_ORDER, Table, activity_partition};
use super::{EmbeddedStore, Tables, Writes};
use crate::support::lock;
use crate::{BadgeStore, Result, StoreError};
use async_trait::async_trait;
use touchstone_core::badges::BadgeBook;
use touchstone_core::model::{AppEvent, BadgeEvent, OrderRecord, Record};

#[async_trait]
impl BadgeStore for EmbeddedStore {
    async fn badge_book(&self, tenant: &str) -> Result<BadgeBook> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.badge_book(&tenant)).await
    }

    async fn save_badge_book(&self, book: &BadgeBook) -> Result<()> {
        let book = book.clone();
        self.blocking(move |tables| tables.save_badge_book(&book)).await
    }

    async fn customer_badge_events(&self, tenant: &str, customer_id: &str) -> Result<Vec<BadgeEvent>> {
        let partition = Key::new().str(tenant).str(customer_id);
        self.blocking(move |tables| {
            let mut events: Vec<BadgeEvent> = tables.scan_prefix(Table::Badges, partition)?;
            // Keys sort by time, then event id: oldest first.
            events.reverse();
            Ok(events)
        })
        .await
    }

    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>> {
        let (tenant, customer_id) = (tenant.to_owned(), customer_id.to_owned());
        self.blocking(move |tables| {
            let events: Vec<AppEvent> = tables.scan_prefix(Table::ActivityByCustomer, activity_partition(&tenant, &customer_id, ACTIVITY_EVENT))?;
            let orders: Vec<OrderRecord> =
                tables.scan_prefix(Table::ActivityByCustomer, activity_partition(&tenant, &customer_id, ACTIVITY_ORDER))?;
            Ok(events.into_iter().map(Record::Event).chain(orders.into_iter().map(Record::Order)).collect())
        })
        .await
    }
}

impl Tables {
    fn badge_book(&self, tenant: &str) -> Result<BadgeBook> {
        let stored = self.get(Table::BadgeBooks, Key::new().str(tenant).as_bytes())?;
        Ok(stored.unwrap_or_else(|| BadgeBook::empty(tenant)))
    }

    fn save_badge_book(&self, book: &BadgeBook) -> Result<()> {
        let _turn = lock(&self.log_writer);
        let key = Key::new().str(&book.tenant).into_vec();
        let stored = self.get::<BadgeBook>(Table::BadgeBooks, &key)?.map_or(0, |b| b.version);
        // Version 0 is "never saved": no save can expect a stored version below it.
        if book.version.checked_sub(1) != Some(stored) {
            return Err(StoreError::Conflict { tenant: book.tenant.clone() });
        }
        let mut writes = Writes::default();
        writes.put(Table::BadgeBooks, key, book)?;
        self.apply(writes)
    }
}
