//! [`BadgeStore`] on fjall: a tenant's badge book in one row, saved with its
//! `RederiveBadges` entry in one batch under the log writer's lock (which makes the version
//! check atomic, as for configs); a customer's badge partition and activity are range scans.

use super::ingest_log::LogAppender;
use super::key::{self, Key};
use super::layout::{ACTIVITY_EVENT, ACTIVITY_ORDER, Table, activity_partition, badge_key, badge_partition, time_key};
use super::{EmbeddedStore, Tables, Writes, backend, decode};
use crate::support::lock;
use crate::{BadgeRows, BadgeStore, LogMark, LogPayload, Result, StoreError, log_shard};
use async_trait::async_trait;
use std::ops::Bound;
use touchstone_core::badges::BadgeBook;
use touchstone_core::model::{AppEvent, BadgeEvent, OrderRecord, Record};

#[async_trait]
impl BadgeStore for EmbeddedStore {
    async fn badge_book(&self, tenant: &str) -> Result<BadgeBook> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.badge_book(&tenant)).await
    }

    async fn save_badge_book(&self, book: &BadgeBook) -> Result<LogMark> {
        let book = book.clone();
        self.blocking(move |tables| tables.save_badge_book(&book)).await
    }

    async fn customer_badge_events(&self, tenant: &str, customer_id: &str) -> Result<Vec<BadgeEvent>> {
        let rows = BadgeRows { limit: usize::MAX, ..BadgeRows::default() };
        self.customer_badge_rows(tenant, customer_id, &rows).await
    }

    async fn customer_badge_rows(&self, tenant: &str, customer_id: &str, rows: &BadgeRows) -> Result<Vec<BadgeEvent>> {
        let (tenant, customer_id, rows) = (tenant.to_owned(), customer_id.to_owned(), rows.clone());
        self.blocking(move |tables| tables.badge_rows(&tenant, &customer_id, &rows)).await
    }

    async fn tenant_badge_customers(&self, tenant: &str) -> Result<Vec<String>> {
        let tenant = tenant.to_owned();
        self.blocking(move |tables| tables.badge_customers(&tenant)).await
    }

    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>> {
        let (tenant, customer_id) = (tenant.to_owned(), customer_id.to_owned());
        self.blocking(move |tables| tables.activity(&tenant, &customer_id)).await
    }

    async fn badge_inputs_many(&self, customers: &[(String, String, bool)]) -> Result<Vec<(Vec<BadgeEvent>, Vec<Record>)>> {
        let customers = customers.to_vec();
        self.blocking(move |tables| {
            let everything = BadgeRows { limit: usize::MAX, ..BadgeRows::default() };
            customers
                .iter()
                .map(|(tenant, customer_id, with_activity)| {
                    let events = tables.badge_rows(tenant, customer_id, &everything)?;
                    let activity = if *with_activity { tables.activity(tenant, customer_id)? } else { Vec::new() };
                    Ok((events, activity))
                })
                .collect()
        })
        .await
    }
}

impl Tables {
    fn badge_book(&self, tenant: &str) -> Result<BadgeBook> {
        let stored = self.get(Table::BadgeBooks, Key::new().str(tenant).as_bytes())?;
        Ok(stored.unwrap_or_else(|| BadgeBook::empty(tenant)))
    }

    fn save_badge_book(&self, book: &BadgeBook) -> Result<LogMark> {
        let _turn = lock(&self.log_writer);
        let key = Key::new().str(&book.tenant).into_vec();
        let stored = self.get::<BadgeBook>(Table::BadgeBooks, &key)?.map_or(0, |b| b.version);
        // Version 0 is "never saved": no save can expect a stored version below it.
        if book.version.checked_sub(1) != Some(stored) {
            return Err(StoreError::Conflict { tenant: book.tenant.clone() });
        }
        let mut writes = Writes::default();
        writes.put(Table::BadgeBooks, key, book)?;
        let mut log = LogAppender::new();
        let payload = LogPayload::RederiveBadges { tenant: book.tenant.clone() };
        let mark = log.append(self, log_shard(&book.tenant), payload, &mut writes)?;
        log.finish(&mut writes);
        self.apply(writes)?;
        Ok(mark)
    }

    /// Newest first: a reverse scan between the bounds `rows` sets.
    fn badge_rows(&self, tenant: &str, customer_id: &str, rows: &BadgeRows) -> Result<Vec<BadgeEvent>> {
        let partition = badge_partition(tenant, customer_id);
        let lower = match rows.from {
            Some(from) => time_key(partition.clone(), None, from).into_vec(),
            None => partition.as_bytes().to_vec(),
        };
        let mut upper = key::prefix_end(partition.as_bytes());
        if let Some(to) = rows.to {
            upper = Some(time_key(partition.clone(), None, to).into_vec());
        }
        if let Some((ts, event_id)) = &rows.before {
            let before = badge_key(tenant, customer_id, *ts, event_id);
            upper = Some(upper.map_or(before.clone(), |upper| upper.min(before)));
        }
        let upper = upper.map_or(Bound::Unbounded, Bound::Excluded);
        if let Bound::Excluded(upper) = &upper
            && *upper <= lower
        {
            return Ok(Vec::new());
        }
        super::checked(&lower)?;
        self.table(Table::Badges)
            .range((Bound::Included(lower), upper))
            .rev()
            .take(rows.limit)
            .map(|guard| decode(Table::Badges, &guard.value().map_err(backend)?))
            .collect()
    }

    fn badge_customers(&self, tenant: &str) -> Result<Vec<String>> {
        let prefix = Key::new().str(tenant);
        let skip = prefix.as_bytes().len();
        self.table(Table::BadgeCustomers)
            .prefix(super::checked(prefix.as_bytes())?)
            .map(|guard| {
                let key = guard.key().map_err(backend)?;
                let (customer, _) = key::read_str(&key[skip..]).ok_or_else(|| StoreError::Corrupt("badge customer key".to_owned()))?;
                Ok(customer.to_owned())
            })
            .collect()
    }

    fn activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>> {
        let events: Vec<AppEvent> = self.scan_prefix(Table::ActivityByCustomer, activity_partition(tenant, customer_id, ACTIVITY_EVENT))?;
        let orders: Vec<OrderRecord> = self.scan_prefix(Table::ActivityByCustomer, activity_partition(tenant, customer_id, ACTIVITY_ORDER))?;
        Ok(events.into_iter().map(Record::Event).chain(orders.into_iter().map(Record::Order)).collect())
    }
}
