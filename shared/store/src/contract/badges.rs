//! [`BadgeStore`]: badge definitions, a customer's badge partition, and what badge rules
//! count.

use super::concurrently;
use crate::{LogMark, Result};
use async_trait::async_trait;
use std::collections::{BTreeMap, HashSet};
use touchstone_core::badge_stats::{BadgeTally, Interval};
use touchstone_core::badges::BadgeBook;
use touchstone_core::model::{BadgeEvent, Millis, Record};

/// Rows [`BadgeStore::customer_badge_latest`] reads at a time where it pages.
const LATEST_PAGE_ROWS: usize = 1_000;

/// Which rows of a badge partition a page read wants, newest first.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadgeRows {
    /// Only rows strictly after this `(ts, event_id)` in newest-first order (a cursor).
    pub before: Option<(Millis, String)>,
    /// Only rows with `ts >= from`.
    pub from: Option<Millis>,
    /// Only rows with `ts < to`.
    pub to: Option<Millis>,
    /// At most this many rows.
    pub limit: usize,
}

/// What attribution reads of a customer to derive their badge entries again.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BadgeInputs {
    /// The customer's badge partition as committed, newest first: its derived entries, and
    /// its stored badge events whose log entries a commit processed
    /// ([`AttributionCommit::records`](crate::AttributionCommit::records)). A backend may give
    /// stored events not processed yet too: a step adds its own badge events either way.
    pub events: Vec<BadgeEvent>,
    /// What the rules count, when asked for.
    pub activity: Vec<Record>,
    /// Holding intervals by badge, as the last commit set them.
    pub holdings: BTreeMap<String, Vec<Interval>>,
}

/// The level of a badge counter row: a UTC day (the row's time is the day's first ms) or
/// an instant (the exact ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatLevel {
    Day,
    Instant,
}

impl StatLevel {
    /// The row time of `ts` at this level.
    pub fn bucket(self, ts: Millis) -> Millis {
        match self {
            StatLevel::Day => touchstone_core::badge_stats::day_of(ts),
            StatLevel::Instant => ts,
        }
    }
}

/// Where an entry sits in a tenant's badge feed: the log position of the step that wrote
/// it (of the badge event itself, for a stored one), then its place in that step (derived
/// entries: the step's lane times 2^24, plus their place).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedPosition {
    pub seq: u64,
    pub index: u32,
}

/// What a feed entry says happened to a timeline entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedChange {
    /// The entry is on the timeline (new, or rewritten: the same `event_id` replaces it).
    Added,
    /// The entry left the timeline (a rule earn that moved to another time).
    Removed,
}

/// One entry of a tenant's badge feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeFeedEntry {
    pub position: FeedPosition,
    pub change: FeedChange,
    pub event: BadgeEvent,
}

/// Badge definitions and a customer's badge partition.
///
/// - **Definitions** are one [`BadgeBook`] per tenant, saved by compare-and-set on its
///   version like a tenant config; a save appends a `RederiveBadges` entry for the tenant in
///   the same atomic write, so attribution derives every customer's entries again.
/// - **A customer's badge partition** holds the stored badge events and the derived
///   entries (rule earns, expiries: written by attribution commits), newest
///   first (`ts`, then `event_id`, descending), so a timeline page is one range read.
/// - **A customer's activity** holds the app events and order status records some badge
///   rule counts (or counted when it was indexed), written by attribution commits.
/// - **Counters** per badge, by UTC day and by instant, and each customer's **holding
///   intervals**, written by attribution commits (`badge_stats`, `holdings`).
/// - **A tenant's feed**: the timeline changes of all its customers by position
///   (`badge_feed`), for following a tenant's badges as they happen. A read returns the
///   entries up to where every lane of the tenant's shard has committed (lanes commit out
///   of log order), so a follower never passes a position a later commit writes at.
/// - **Readable**: a stored badge event once the attribution step that processed its log
///   entry committed it ([`AttributionCommit::records`](crate::AttributionCommit::records));
///   a backend may make it readable earlier (the embedded one, when the ingest call that
///   accepted it returned). Derived entries and activity once the attribution step that
///   processed the records they come from committed.
#[async_trait]
pub trait BadgeStore: Send + Sync + 'static {
    /// The tenant's badge definitions, or an empty book (version 0) when none are saved.
    async fn badge_book(&self, tenant: &str) -> Result<BadgeBook>;

    /// Saves `book` if the stored version is `book.version - 1` (0: none saved), and
    /// appends a `RederiveBadges` entry for the tenant; returns its position.
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) when the version differs.
    async fn save_badge_book(&self, book: &BadgeBook) -> Result<LogMark>;

    /// The customer's whole badge partition, newest first: one range read.
    async fn customer_badge_events(&self, tenant: &str, customer_id: &str) -> Result<Vec<BadgeEvent>>;

    /// Rows of the customer's badge partition, newest first, as `rows` says: one range
    /// read of one partition.
    async fn customer_badge_rows(&self, tenant: &str, customer_id: &str, rows: &BadgeRows) -> Result<Vec<BadgeEvent>>;

    /// Each badge's newest entry in the customer's partition with `ts <= at` (newest by
    /// `ts`, then `event_id`), any order: what the customer holds at `at` follows from these
    /// alone, since an entry decides its badge until the next one. A newest-first scan of
    /// the partition up to `at` keeping the first row of each badge, in pages; a backend
    /// may read it more cheaply.
    async fn customer_badge_latest(&self, tenant: &str, customer_id: &str, at: Millis) -> Result<Vec<BadgeEvent>> {
        let mut rows = BadgeRows { to: at.checked_add(1), limit: LATEST_PAGE_ROWS, ..BadgeRows::default() };
        let mut seen: HashSet<String> = HashSet::new();
        let mut latest = Vec::new();
        loop {
            let page = self.customer_badge_rows(tenant, customer_id, &rows).await?;
            let exhausted = page.len() < rows.limit;
            rows.before = page.last().map(|row| (row.ts, row.event_id.clone()));
            for row in page {
                if !seen.contains(&row.badge_id) {
                    seen.insert(row.badge_id.clone());
                    latest.push(row);
                }
            }
            if exhausted {
                return Ok(latest);
            }
        }
    }

    /// Every customer of the tenant with a stored badge event, any order (for rederives).
    async fn tenant_badge_customers(&self, tenant: &str) -> Result<Vec<String>>;

    /// What attribution reads of each `(tenant, customer_id)` to derive it again: its badge
    /// partition, holdings and, where `with_activity` says, activity.
    async fn badge_inputs_many(&self, customers: &[(String, String, bool)]) -> Result<Vec<BadgeInputs>> {
        concurrently(
            customers
                .iter()
                .map(|(tenant, customer_id, with_activity)| async move {
                    let events = self.customer_badge_events(tenant, customer_id).await?;
                    let activity = if *with_activity { self.customer_activity(tenant, customer_id).await? } else { Vec::new() };
                    let holdings = self.customer_holdings(tenant, customer_id).await?;
                    Ok(BadgeInputs { events, activity, holdings })
                })
                .collect(),
        )
        .await
    }

    /// The customer's holding intervals by badge, as the last commit set them.
    async fn customer_holdings(&self, tenant: &str, customer_id: &str) -> Result<BTreeMap<String, Vec<Interval>>>;

    /// A badge's counter rows of `level` with `from <= time < to`, summed per time,
    /// oldest first: one range read.
    async fn badge_stats(&self, tenant: &str, badge_id: &str, level: StatLevel, from: Millis, to: Millis) -> Result<Vec<(Millis, BadgeTally)>>;

    /// The tenant's feed entries after `after` (from the first with none), oldest first, at
    /// most `limit`.
    async fn badge_feed(&self, tenant: &str, after: Option<FeedPosition>, limit: usize) -> Result<Vec<BadgeFeedEntry>>;

    /// The position of the tenant's newest feed entry, if it has one.
    async fn badge_feed_end(&self, tenant: &str) -> Result<Option<FeedPosition>>;

    /// The customer's app events and order status records that badge rules count, as
    /// attribution commits indexed them, in any order.
    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>>;
}
