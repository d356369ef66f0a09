//! [`BadgeStore`] on CQL: a tenant's badge book in one row, saved by compare-and-set on its
//! version with its `RederiveBadges` entry (as configs are with theirs). A customer's badge
//! partition (stored badge events once a commit processed them, and derived entries), its
//! activity and its holdings are rows of its tenant's slot partition (`layout::slot`): a
//! timeline page is a slice of it, and attribution reads many customers at once.

use super::timed;
use super::layout::{ACTIVITY_BADGE, ACTIVITY_EVENT, ACTIVITY_ORDER, decode, seq_value, slot};
use super::{CqlStore, Inner};
use crate::support::{StoredPayload, encode};
use crate::{BadgeFeedEntry, BadgeInputs, BadgeRows, BadgeStore, FeedChange, FeedPosition, LogMark, Result, StatLevel, StoreError};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashMap};
use touchstone_core::badge_stats::{BadgeTally, Interval};
use touchstone_core::badges::BadgeBook;
use touchstone_core::model::{BadgeEvent, Millis, Record};

#[async_trait]
impl BadgeStore for CqlStore {
    async fn badge_book(&self, tenant: &str) -> Result<BadgeBook> {
        timed("badge_book", async { self.inner.badge_book(tenant).await }).await
    }

    async fn save_badge_book(&self, book: &BadgeBook) -> Result<LogMark> {
        timed("save_badge_book", async { self.inner.save_badge_book(book).await }).await
    }

    async fn customer_badge_events(&self, tenant: &str, customer_id: &str) -> Result<Vec<BadgeEvent>> {
        timed("customer_badge_events", async { self.inner.customer_badge_events(tenant, customer_id).await }).await
    }

    async fn customer_badge_rows(&self, tenant: &str, customer_id: &str, rows: &BadgeRows) -> Result<Vec<BadgeEvent>> {
        timed("customer_badge_rows", async { self.inner.customer_badge_rows(tenant, customer_id, rows).await }).await
    }

    async fn tenant_badge_customers(&self, tenant: &str) -> Result<Vec<String>> {
        timed("tenant_badge_customers", async {
            let rows: Vec<(String,)> = self.inner.rows(&self.inner.statements.select_badge_customers, (tenant,)).await?;
            Ok(rows.into_iter().map(|(customer_id,)| customer_id).collect())
        })
        .await
    }

    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>> {
        timed("customer_activity", async { self.inner.customer_activity(tenant, customer_id).await }).await
    }

    async fn customer_holdings(&self, tenant: &str, customer_id: &str) -> Result<BTreeMap<String, Vec<Interval>>> {
        timed("customer_holdings", async {
            let mut holdings = self.inner.holdings_of(&[(tenant, customer_id)]).await?;
            Ok(holdings.remove(&(tenant, customer_id)).unwrap_or_default())
        })
        .await
    }

    /// The badge partitions as committed (rows of the activity table), activity and
    /// holdings: one read per slot partition and up to
    /// [`IDS_PER_READ`](super::layout::IDS_PER_READ) customers for each table, not one per
    /// customer.
    async fn badge_inputs_many(&self, customers: &[(String, String, bool)]) -> Result<Vec<BadgeInputs>> {
        timed("badge_inputs_many", async {
            let inner = &self.inner;
            let every: Vec<(&str, &str)> = customers.iter().map(|(t, c, _)| (t.as_str(), c.as_str())).collect();
            let (activity, holdings) = tokio::try_join!(inner.activity_of(&every), inner.holdings_of(&every))?;
            Ok(customers
                .iter()
                .map(|(tenant, customer_id, with_activity)| {
                    let key = (tenant.as_str(), customer_id.as_str());
                    // Looked up, not taken: a customer may be asked for twice.
                    let (mut events, mut counted) = (Vec::new(), Vec::new());
                    for record in activity.get(&key).into_iter().flatten() {
                        match record {
                            Record::Badge(event) => events.push(event.clone()),
                            record if *with_activity => counted.push(record.clone()),
                            _ => {}
                        }
                    }
                    events.sort_by(touchstone_core::badges::newest_first);
                    BadgeInputs { events, activity: counted, holdings: holdings.get(&key).cloned().unwrap_or_default() }
                })
                .collect())
        })
        .await
    }

    /// Delta rows (one per step and time) summed per time.
    async fn badge_stats(&self, tenant: &str, badge_id: &str, level: StatLevel, from: Millis, to: Millis) -> Result<Vec<(Millis, BadgeTally)>> {
        timed("badge_stats", async {
            if from >= to {
                return Ok(Vec::new());
            }
            let values = (tenant, badge_id, level_code(level), from, to);
            let rows: Vec<(i64, Vec<u8>)> = self.inner.rows(&self.inner.statements.select_badge_stat_deltas, values).await?;
            let mut sums: BTreeMap<Millis, BadgeTally> = BTreeMap::new();
            for (ts, tally) in rows {
                sums.entry(ts).or_default().add(decode("badge tally", &tally)?);
            }
            Ok(sums.into_iter().filter(|(_, tally)| !tally.is_zero()).collect())
        })
        .await
    }

    async fn badge_feed(&self, tenant: &str, after: Option<FeedPosition>, limit: usize) -> Result<Vec<BadgeFeedEntry>> {
        timed("badge_feed", async {
            let (seq, index) = match after {
                Some(after) => (seq_value(after.seq), index_value(after.index)),
                None => (i64::MIN, i32::MIN),
            };
            let limit = i32::try_from(limit).unwrap_or(i32::MAX);
            let rows: Vec<(i64, i32, String, Vec<u8>)> = self.inner.rows(&self.inner.statements.select_badge_feed_after, (tenant, seq, index, limit)).await?;
            let settled = self.inner.feed_settled(tenant).await?;
            rows.into_iter()
                .take_while(|(seq, ..)| settled.is_none_or(|settled| u64::try_from(*seq).is_ok_and(|seq| seq <= settled)))
                .map(|(seq, index, change, event)| {
                    let change = match change.as_str() {
                        "a" => FeedChange::Added,
                        "r" => FeedChange::Removed,
                        other => return Err(StoreError::Corrupt(format!("badge feed change {other:?}"))),
                    };
                    Ok(BadgeFeedEntry { position: feed_position(seq, index)?, change, event: decode("badge feed event", &event)? })
                })
                .collect()
        })
        .await
    }

    async fn badge_feed_end(&self, tenant: &str) -> Result<Option<FeedPosition>> {
        timed("badge_feed_end", async {
            let row: Option<(i64, i32)> = self.inner.row(&self.inner.statements.select_badge_feed_end, (tenant,)).await?;
            let end = row.map(|(seq, index)| feed_position(seq, index)).transpose()?;
            let settled = self.inner.feed_settled(tenant).await?;
            Ok(match (end, settled) {
                (Some(end), Some(settled)) if end.seq > settled => Some(FeedPosition { seq: settled, index: u32::MAX }),
                (end, _) => end,
            })
        })
        .await
    }
}

/// The `level` column of `badge_stat_deltas`.
pub(super) fn level_code(level: StatLevel) -> &'static str {
    match level {
        StatLevel::Day => "d",
        StatLevel::Instant => "i",
    }
}

/// The `idx` column of `badge_feed`: u32 stored in an int, order kept.
pub(super) fn index_value(index: u32) -> i32 {
    (index ^ 0x8000_0000) as i32
}

fn feed_position(seq: i64, index: i32) -> Result<FeedPosition> {
    let seq = u64::try_from(seq).map_err(|_| StoreError::Corrupt(format!("badge feed seq {seq}")))?;
    Ok(FeedPosition { seq, index: (index as u32) ^ 0x8000_0000 })
}

impl Inner {
    /// With lanes, the position up to which a tenant's feed is complete: every lane of its
    /// shard has processed it, so no commit adds an entry at or before it (lanes commit out
    /// of log order). `None` with one lane, whose commits come in log order.
    async fn feed_settled(&self, tenant: &str) -> Result<Option<u64>> {
        if self.options.lanes == 1 {
            return Ok(None);
        }
        self.applied_position(crate::log_shard(tenant)).await.map(Some)
    }

    async fn badge_book(&self, tenant: &str) -> Result<BadgeBook> {
        let stored: Option<(Option<Vec<u8>>,)> = self.row(&self.statements.select_badge_book, (tenant,)).await?;
        match stored {
            Some((Some(book),)) => decode("badge book", &book),
            _ => Ok(BadgeBook::empty(tenant)),
        }
    }

    async fn save_badge_book(&self, book: &BadgeBook) -> Result<LogMark> {
        let s = &self.statements;
        let conflict = || StoreError::Conflict { tenant: book.tenant.clone() };
        // Version 0 is "never saved": no save can expect a stored version below it.
        let expected = book.version.checked_sub(1).ok_or_else(conflict)?;
        let version = i64::try_from(book.version).map_err(|_| conflict())?;
        let body = encode(book)?;
        let save = async {
            if expected == 0 {
                self.lwt(&s.insert_badge_book_if_absent, (&book.tenant, version, &body)).await
            } else {
                self.lwt(&s.update_badge_book_if_version, (version, &body, &book.tenant, seq_value(expected))).await
            }
        };
        self.save_with_entry(&book.tenant, StoredPayload::RederiveBadges { tenant: book.tenant.clone() }, save).await
    }

    /// The customer's `ACTIVITY_BADGE` rows, newest first: one slice of their slot partition.
    async fn customer_badge_events(&self, tenant: &str, customer_id: &str) -> Result<Vec<BadgeEvent>> {
        let values = (tenant, slot(customer_id), customer_id);
        let rows: Vec<(Vec<u8>,)> = self.rows(&self.statements.select_badge_partition, values).await?;
        rows.iter().map(|(row,)| decode("badge partition row", row)).collect()
    }

    /// One range read of the customer's rows in their slot partition, newest first. Both
    /// bounds are on the whole clustering key, `(customer_id, kind, ts, event_id)`: single-
    /// and multi-column bounds are not mixed.
    async fn customer_badge_rows(&self, tenant: &str, customer_id: &str, rows: &BadgeRows) -> Result<Vec<BadgeEvent>> {
        let lower = (rows.from.unwrap_or(Millis::MIN), "");
        let mut upper = (rows.to.unwrap_or(Millis::MAX), "");
        if let Some((ts, event_id)) = &rows.before
            && (*ts, event_id.as_str()) < upper
        {
            upper = (*ts, event_id.as_str());
        }
        if upper <= lower || rows.limit == 0 {
            return Ok(Vec::new());
        }
        let limit = i32::try_from(rows.limit).unwrap_or(i32::MAX);
        let values = (tenant, slot(customer_id), customer_id, lower.0, lower.1, customer_id, upper.0, upper.1, limit);
        let found: Vec<(Vec<u8>,)> = self.rows(&self.statements.select_badge_page, values).await?;
        found.iter().map(|(row,)| decode("badge partition row", row)).collect()
    }
}

/// Customers by `(tenant, customer_id)`.
type ByCustomer<'a, T> = HashMap<(&'a str, &'a str), T>;

impl Inner {
    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>> {
        let mut activity = self.activity_of(&[(tenant, customer_id)]).await?;
        let mut records = activity.remove(&(tenant, customer_id)).unwrap_or_default();
        records.retain(|record| !matches!(record, Record::Badge(_)));
        Ok(records)
    }

    /// Each customer's activity and committed badge partition rows (`Record::Badge`): only
    /// customers with some are in the map.
    async fn activity_of<'a>(&self, customers: &[(&'a str, &'a str)]) -> Result<ByCustomer<'a, Vec<Record>>> {
        let mut activity: ByCustomer<'a, Vec<Record>> = HashMap::new();
        for (tenant, asked, rows) in self.rows_by_slot::<(String, String, Vec<u8>)>(&self.statements.select_activity, customers).await? {
            for (customer_id, kind, record) in rows {
                let record = match kind.as_str() {
                    ACTIVITY_EVENT => Record::Event(decode("app event", &record)?),
                    ACTIVITY_ORDER => Record::Order(decode("order record", &record)?),
                    ACTIVITY_BADGE => Record::Badge(decode("badge partition row", &record)?),
                    other => return Err(StoreError::Corrupt(format!("activity row of unknown kind {other:?}"))),
                };
                if let Some(&customer_id) = asked.get(customer_id.as_str()) {
                    activity.entry((tenant, customer_id)).or_default().push(record);
                }
            }
        }
        Ok(activity)
    }

    /// Each customer's holding intervals by badge (only customers with some are in the map).
    async fn holdings_of<'a>(&self, customers: &[(&'a str, &'a str)]) -> Result<ByCustomer<'a, BTreeMap<String, Vec<Interval>>>> {
        let mut holdings: ByCustomer<'a, BTreeMap<String, Vec<Interval>>> = HashMap::new();
        for (tenant, asked, rows) in self.rows_by_slot::<(String, String, Vec<u8>)>(&self.statements.select_badge_holdings, customers).await? {
            for (customer_id, badge_id, intervals) in rows {
                if let Some(&customer_id) = asked.get(customer_id.as_str()) {
                    holdings.entry((tenant, customer_id)).or_default().insert(badge_id, decode("holding intervals", &intervals)?);
                }
            }
        }
        Ok(holdings)
    }
}
