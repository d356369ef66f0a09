//! [`BadgeStore`] on fjall: a tenant's badge book in one row, saved with its
//! `RederiveBadges` entry in one batch under the log writer's lock (which makes the version
//! check atomic, as for configs); a customer's badge partition and activity are range scans.

use super::ingest_log::LogAppender;
use super::key::{self, Key};
use super::layout::{
    ACTIVITY_EVENT, ACTIVITY_ORDER, Table, badge_key, badge_partition, badge_stats_partition, badge_time, feed_key,
};
use super::{EmbeddedStore, Tables, Writes, backend, decode};
use crate::support::lock;
use crate::{
    BadgeFeedEntry, BadgeInputs, BadgeRows, BadgeStore, FeedChange, FeedPosition, LogMark, LogPayload, Result, StatLevel, StoreError, log_shard,
};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::ops::Bound;
use touchstone_core::badge_stats::{BadgeTally, Interval};
use touchstone_core::badges::BadgeBook;
use touchstone_core::model::{AppEvent, BadgeEvent, Millis, OrderRecord, Record};

#[async_trait]
impl BadgeStore for EmbeddedStore {
    async fn badge_book(&self, tenant: &str) -> Result<BadgeBook> {
        let tenant = tenant.to_owned();
        self.blocking("badge_book", move |tables| tables.badge_book(&tenant)).await
    }

    async fn save_badge_book(&self, book: &BadgeBook) -> Result<LogMark> {
        let book = book.clone();
        self.blocking("save_badge_book", move |tables| tables.save_badge_book(&book)).await
    }

    async fn customer_badge_events(&self, tenant: &str, customer_id: &str) -> Result<Vec<BadgeEvent>> {
        let rows = BadgeRows { limit: usize::MAX, ..BadgeRows::default() };
        self.customer_badge_rows(tenant, customer_id, &rows).await
    }

    async fn customer_badge_rows(&self, tenant: &str, customer_id: &str, rows: &BadgeRows) -> Result<Vec<BadgeEvent>> {
        let (tenant, customer_id, rows) = (tenant.to_owned(), customer_id.to_owned(), rows.clone());
        self.blocking("customer_badge_rows", move |tables| tables.badge_rows(&tenant, &customer_id, &rows)).await
    }

    async fn customer_badge_latest(&self, tenant: &str, customer_id: &str, at: Millis) -> Result<Vec<BadgeEvent>> {
        let (tenant, customer_id) = (tenant.to_owned(), customer_id.to_owned());
        self.blocking("customer_badge_latest", move |tables| tables.badge_latest(&tenant, &customer_id, at)).await
    }

    async fn tenant_badge_customers(&self, tenant: &str) -> Result<Vec<String>> {
        let tenant = tenant.to_owned();
        self.blocking("tenant_badge_customers", move |tables| tables.badge_customers(&tenant)).await
    }

    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>> {
        let (tenant, customer_id) = (tenant.to_owned(), customer_id.to_owned());
        self.blocking("customer_activity", move |tables| tables.activity(&tenant, &customer_id)).await
    }

    async fn badge_inputs_many(&self, customers: &[(String, String, bool)]) -> Result<Vec<BadgeInputs>> {
        let customers = customers.to_vec();
        self.blocking("badge_inputs_many", move |tables| {
            let everything = BadgeRows { limit: usize::MAX, ..BadgeRows::default() };
            customers
                .iter()
                .map(|(tenant, customer_id, with_activity)| {
                    let events = tables.badge_rows(tenant, customer_id, &everything)?;
                    let activity = if *with_activity { tables.activity(tenant, customer_id)? } else { Vec::new() };
                    let holdings = tables.holdings(tenant, customer_id)?;
                    Ok(BadgeInputs { events, activity, holdings })
                })
                .collect()
        })
        .await
    }

    async fn customer_holdings(&self, tenant: &str, customer_id: &str) -> Result<BTreeMap<String, Vec<Interval>>> {
        let (tenant, customer_id) = (tenant.to_owned(), customer_id.to_owned());
        self.blocking("customer_holdings", move |tables| tables.holdings(&tenant, &customer_id)).await
    }

    async fn badge_stats(&self, tenant: &str, badge_id: &str, level: StatLevel, from: Millis, to: Millis) -> Result<Vec<(Millis, BadgeTally)>> {
        let (tenant, badge_id) = (tenant.to_owned(), badge_id.to_owned());
        self.blocking("badge_stats", move |tables| tables.badge_stats(&tenant, &badge_id, level, from, to)).await
    }

    async fn badge_feed(&self, tenant: &str, after: Option<FeedPosition>, limit: usize) -> Result<Vec<BadgeFeedEntry>> {
        let tenant = tenant.to_owned();
        self.blocking("badge_feed", move |tables| tables.badge_feed(&tenant, after, limit)).await
    }

    async fn badge_feed_end(&self, tenant: &str) -> Result<Option<FeedPosition>> {
        let tenant = tenant.to_owned();
        self.blocking("badge_feed_end", move |tables| tables.badge_feed_end(&tenant)).await
    }
}

/// The leading fields of a stored [`BadgeEvent`] (postcard writes fields in order), up to
/// its badge, borrowed from the value.
#[derive(Deserialize)]
struct BadgeRowBadge<'a> {
    _tenant: &'a str,
    _event_id: &'a str,
    _customer_id: &'a str,
    badge_id: &'a str,
}

/// A feed row's value: the change (`a` added, `r` removed) and the timeline entry.
#[derive(Serialize, Deserialize)]
pub(super) struct StoredFeedEntry {
    pub(super) change: u8,
    pub(super) event: BadgeEvent,
}

impl StoredFeedEntry {
    pub(super) fn of(entry: &BadgeFeedEntry) -> StoredFeedEntry {
        let change = match entry.change {
            FeedChange::Added => b'a',
            FeedChange::Removed => b'r',
        };
        StoredFeedEntry { change, event: entry.event.clone() }
    }

    fn into_entry(self, position: FeedPosition) -> Result<BadgeFeedEntry> {
        let change = match self.change {
            b'a' => FeedChange::Added,
            b'r' => FeedChange::Removed,
            other => return Err(StoreError::Corrupt(format!("badge feed change {other}"))),
        };
        Ok(BadgeFeedEntry { position, change, event: self.event })
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
        let mut log = LogAppender::new(None);
        let payload = LogPayload::RederiveBadges { tenant: book.tenant.clone() };
        let mark = log.append(self, log_shard(&book.tenant), payload, &mut writes)?;
        log.finish(&mut writes)?;
        self.apply(writes)?;
        Ok(mark)
    }

    /// Newest first: a forward scan between the bounds `rows` sets (the partition is laid
    /// out newest first).
    fn badge_rows(&self, tenant: &str, customer_id: &str, rows: &BadgeRows) -> Result<Vec<BadgeEvent>> {
        let partition = badge_partition(tenant, customer_id);
        // Rows with ts < to start after every row at `to`; the cursor's row is excluded.
        let mut lower = Bound::Included(partition.as_bytes().to_vec());
        if let Some(to) = rows.to {
            let Some(after_to) = key::prefix_end(badge_time(tenant, customer_id, to).as_bytes()) else { return Ok(Vec::new()) };
            lower = higher_lower_bound(lower, Bound::Included(after_to));
        }
        if let Some((ts, event_id)) = &rows.before {
            lower = higher_lower_bound(lower, Bound::Excluded(badge_key(tenant, customer_id, *ts, event_id)));
        }
        // Rows with ts >= from end with the last row at `from`.
        let upper = match rows.from {
            Some(from) => key::prefix_end(badge_time(tenant, customer_id, from).as_bytes()),
            None => key::prefix_end(partition.as_bytes()),
        };
        let upper = upper.map_or(Bound::Unbounded, Bound::Excluded);
        if let (Bound::Included(low) | Bound::Excluded(low), Bound::Excluded(high)) = (&lower, &upper)
            && low >= high
        {
            return Ok(Vec::new());
        }
        super::checked(partition.as_bytes())?;
        self.read(Table::Badges)
            .range((lower, upper))
            .take(rows.limit)
            .map(|guard| self.decode_read(Table::Badges, &guard.value().map_err(backend)?))
            .collect()
    }

    /// One forward scan from `at` down: a row's badge is read in place (no copy) and only
    /// each badge's first row is decoded whole, so a long history costs little more than
    /// its keys and values passing by.
    fn badge_latest(&self, tenant: &str, customer_id: &str, at: Millis) -> Result<Vec<BadgeEvent>> {
        let partition = badge_partition(tenant, customer_id);
        let lower = match at.checked_add(1) {
            Some(to) => match key::prefix_end(badge_time(tenant, customer_id, to).as_bytes()) {
                Some(after_to) => after_to,
                None => return Ok(Vec::new()),
            },
            None => partition.as_bytes().to_vec(),
        };
        let upper = key::prefix_end(super::checked(partition.as_bytes())?).map_or(Bound::Unbounded, Bound::Excluded);
        let mut seen: HashSet<String> = HashSet::new();
        let mut latest = Vec::new();
        for guard in self.read(Table::Badges).range((Bound::Included(lower), upper)) {
            let value = guard.value().map_err(backend)?;
            self.usage.read_bytes(Table::Badges, value.len());
            let row: BadgeRowBadge =
                postcard::from_bytes(&value).map_err(|e| StoreError::Corrupt(format!("undecodable value in badges: {e}")))?;
            if !seen.contains(row.badge_id) {
                seen.insert(row.badge_id.to_owned());
                latest.push(decode(Table::Badges, &value)?);
            }
        }
        Ok(latest)
    }

    fn badge_customers(&self, tenant: &str) -> Result<Vec<String>> {
        let prefix = Key::new().str(tenant);
        let skip = prefix.as_bytes().len();
        self.read(Table::BadgeCustomers)
            .prefix(super::checked(prefix.as_bytes())?)
            .map(|guard| {
                let key = guard.key().map_err(backend)?;
                let (customer, _) = key::read_str(&key[skip..]).ok_or_else(|| StoreError::Corrupt("badge customer key".to_owned()))?;
                Ok(customer.to_owned())
            })
            .collect()
    }

    fn holdings(&self, tenant: &str, customer_id: &str) -> Result<BTreeMap<String, Vec<Interval>>> {
        let partition = Key::new().str(tenant).str(customer_id);
        let skip = partition.as_bytes().len();
        self.read(Table::BadgeHoldings)
            .prefix(super::checked(partition.as_bytes())?)
            .map(|guard| {
                let (key, value) = guard.into_inner().map_err(backend)?;
                self.usage.read_bytes(Table::BadgeHoldings, key.len() + value.len());
                let (badge_id, _) = key::read_str(&key[skip..]).ok_or_else(|| StoreError::Corrupt("badge holding key".to_owned()))?;
                Ok((badge_id.to_owned(), decode(Table::BadgeHoldings, &value)?))
            })
            .collect()
    }

    /// Rows of one badge and level in `[from, to)`, one per time (commits fold deltas in).
    fn badge_stats(&self, tenant: &str, badge_id: &str, level: StatLevel, from: Millis, to: Millis) -> Result<Vec<(Millis, BadgeTally)>> {
        if from >= to {
            return Ok(Vec::new());
        }
        let partition = badge_stats_partition(tenant, badge_id, level);
        let skip = partition.as_bytes().len();
        let lower = super::checked(partition.clone().time(from).as_bytes())?.to_vec();
        let upper = partition.time(to).into_vec();
        self.read(Table::BadgeStats)
            .range(lower..upper)
            .map(|guard| {
                let (key, value) = guard.into_inner().map_err(backend)?;
                self.usage.read_bytes(Table::BadgeStats, key.len() + value.len());
                let (ts, _) = key::read_time(&key[skip..]).ok_or_else(|| StoreError::Corrupt("badge stats key".to_owned()))?;
                Ok((ts, decode(Table::BadgeStats, &value)?))
            })
            .collect()
    }

    fn badge_feed(&self, tenant: &str, after: Option<FeedPosition>, limit: usize) -> Result<Vec<BadgeFeedEntry>> {
        let partition = Key::new().str(tenant);
        let skip = partition.as_bytes().len();
        let lower = match after {
            // Just past `after`: the key of the next index.
            Some(after) => {
                let mut key = feed_key(tenant, after);
                key.push(0);
                Bound::Included(key)
            }
            None => Bound::Included(partition.as_bytes().to_vec()),
        };
        let upper = key::prefix_end(super::checked(partition.as_bytes())?).map_or(Bound::Unbounded, Bound::Excluded);
        self.read(Table::BadgeFeed)
            .range((lower, upper))
            .take(limit)
            .map(|guard| {
                let (key, value) = guard.into_inner().map_err(backend)?;
                self.usage.read_bytes(Table::BadgeFeed, key.len() + value.len());
                let position = feed_position(&key[skip..])?;
                decode::<StoredFeedEntry>(Table::BadgeFeed, &value)?.into_entry(position)
            })
            .collect()
    }

    fn badge_feed_end(&self, tenant: &str) -> Result<Option<FeedPosition>> {
        let partition = Key::new().str(tenant);
        let skip = partition.as_bytes().len();
        match self.read(Table::BadgeFeed).prefix(super::checked(partition.as_bytes())?).next_back() {
            Some(guard) => Ok(Some(feed_position(&guard.key().map_err(backend)?[skip..])?)),
            None => Ok(None),
        }
    }

    /// One scan of the customer's rows of both kinds (events sort before orders): a scan's
    /// set-up costs more than its rows.
    fn activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>> {
        let customer = Key::new().str(tenant).str(customer_id);
        let kind_at = customer.as_bytes().len();
        let mut records = Vec::new();
        for guard in self.read(Table::ActivityByCustomer).prefix(super::checked(customer.as_bytes())?) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            records.push(match key.get(kind_at) {
                Some(&ACTIVITY_EVENT) => Record::Event(self.decode_read::<AppEvent>(Table::ActivityByCustomer, &value)?),
                Some(&ACTIVITY_ORDER) => Record::Order(self.decode_read::<OrderRecord>(Table::ActivityByCustomer, &value)?),
                _ => return Err(StoreError::Corrupt("activity row of no known kind".to_owned())),
            });
        }
        Ok(records)
    }
}

/// The tighter of two lower bounds.
fn higher_lower_bound(a: Bound<Vec<u8>>, b: Bound<Vec<u8>>) -> Bound<Vec<u8>> {
    match (&a, &b) {
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            if y > x || (y == x && matches!(b, Bound::Excluded(_))) { b } else { a }
        }
        (Bound::Unbounded, _) => b,
        (_, Bound::Unbounded) => a,
    }
}

/// The position a feed key ends with.
fn feed_position(bytes: &[u8]) -> Result<FeedPosition> {
    let corrupt = || StoreError::Corrupt("badge feed key".to_owned());
    let seq = bytes.get(..8).and_then(|b| b.try_into().ok()).map(u64::from_be_bytes).ok_or_else(corrupt)?;
    let index = bytes.get(8..12).and_then(|b| b.try_into().ok()).map(u32::from_be_bytes).ok_or_else(corrupt)?;
    Ok(FeedPosition { seq, index })
}
