//! [`BadgeStore`]: badge definitions, and what a customer's badge timeline and trophy case
//! are computed from.

use crate::Result;
use async_trait::async_trait;
use touchstone_core::badges::BadgeBook;
use touchstone_core::model::{BadgeEvent, Record};

/// Badge definitions and a customer's badge reads.
///
/// - **Definitions** are one [`BadgeBook`] per tenant, saved by compare-and-set on its
///   version like a tenant config. A save appends nothing to the log: rule earns are derived
///   when read (`touchstone_core::badges`), so a new or changed badge needs no recompute.
/// - **Readable**: a badge event, app event or order record is returned by the reads below
///   once the ingest call that accepted it returned.
#[async_trait]
pub trait BadgeStore: Send + Sync + 'static {
    /// The tenant's badge definitions, or an empty book (version 0) when none are saved.
    async fn badge_book(&self, tenant: &str) -> Result<BadgeBook>;

    /// Saves `book` if the stored version is `book.version - 1` (0: none saved).
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) when it differs.
    async fn save_badge_book(&self, book: &BadgeBook) -> Result<()>;

    /// The customer's stored badge events (every source), newest first (`ts`, then
    /// `event_id`, descending): one range read of one partition.
    async fn customer_badge_events(&self, tenant: &str, customer_id: &str) -> Result<Vec<BadgeEvent>>;

    /// The customer's app events and order status records, in any order: what badge rules
    /// count.
    async fn customer_activity(&self, tenant: &str, customer_id: &str) -> Result<Vec<Record>>;
}
