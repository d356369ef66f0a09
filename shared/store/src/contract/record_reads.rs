//! [`RecordReads`]: the reads that explaining a conversion needs.

use crate::Result;
use async_trait::async_trait;
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::model::{Millis, Touch};

/// Registered messages, a customer's touches as attributed, stored conversions: what
/// `ExplainConversion` reads, so it sees the candidates the conversion was credited from.
#[async_trait]
pub trait RecordReads: Send + Sync + 'static {
    /// The registered messages among `msg_hashes`.
    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages>;

    /// The customer's touches with `from <= ts <= to` (inclusive), any order, as attribution
    /// has folded them (from the customer's fold state, committed with the step that folded
    /// them): what the customer's conversions were credited from.
    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>>;

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>>;
}
