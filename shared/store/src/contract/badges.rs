//! [`BadgeStore`]: badge definitions, a customer's badge partition, and what badge rules
//! count.

use super::record_reads::concurrently;
use crate::{LogMark, Result};
use async_trait::async_trait;
use touchstone_core::badges::BadgeBook;
use touchstone_core::model::{BadgeEvent, Millis, Record};

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

/// Badge definitions and a customer's badge partition.
///
/// - **Definitions** are one [`BadgeBook`] per tenant, saved by compare-and-set on its
///   version like a tenant config; a save appends a `RederiveBadges` entry for the tenant in
///   the same atomic write, so attribution derives every customer's entries again.
/// - **A customer's badge partition** holds the stored badge events (written by ingest)
///   and the derived entries (rule earns, expiries: written by attribution commits), newest
///   first (`ts`, then `event_id`, descending), so a timeline page is one range read.
/// - **A customer's activity** holds the app events and order status records some badge
///   rule counts (or counted when it was indexed), written by attribution commits.
/// - **Readable**: a stored badge event once the ingest call that accepted it returned;
///   derived entries and activity once the attribution step that processed the records
///   they come from committed.
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

    /// Every customer of the tenant with a stored badge event, any order (for rederives).
    async fn tenant_badge_customers(&self, tenant: &str) -> Result<Vec<String>>;

    /// [`customer_badge_events`](Self::customer_badge_events) and
    /// [`customer_activity`](Self::customer_activity) of each `(tenant, customer_id)`, the
    /// activity only where `with_activity` says.
    async fn badge_inputs_many(&self, customers: &[(String, String, bool)]) -> Result<Vec<(Vec<BadgeEvent>, Vec<Record>)>> {
        concurrently(
            customers
                .iter()
                .map(|(tenant, customer_id, with_activity)| async move {
                    let events = self.customer_badge_events(tenant, customer_id).await?;
                    let activity = if *with_activity { self.customer_activity(tenant, customer_id).await? } else { Vec::new() };
                    Ok((events, activity))
                })
                .collect(),
        )
        .await
    }

    /// The customer's app events and order status records that badge rules count, as
    /// attribution commits indexed them, in any order.
    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>>;
}
