//! [`RecordReads`]: the reads that crediting (and explaining) a conversion needs.

use crate::{ConversionKey, CustomerSpan, Result};
use async_trait::async_trait;
use futures_util::{StreamExt, TryStreamExt};
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::model::{Millis, Touch};

/// How many single reads the default batched reads keep in flight: enough to hide a
/// network round trip, few enough not to flood a cluster from one worker.
pub const READ_CONCURRENCY: usize = 64;

/// Registered messages, a customer's touches, stored conversions: shared by the attribution
/// engine and `ExplainConversion`, so both see the same candidates.
///
/// The batched reads return one result per input, in input order. The defaults run the
/// single reads, [`READ_CONCURRENCY`] at a time; a backend with local reads does them in
/// one go.
#[async_trait]
pub trait RecordReads: Send + Sync + 'static {
    /// The registered messages among `msg_hashes`.
    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages>;

    /// The customer's touches with `from <= ts <= to` (inclusive), any order.
    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>>;

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>>;

    async fn customer_touches_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Touch>>> {
        concurrently(spans.iter().map(|s| self.customer_touches(&s.tenant, &s.customer_id, s.from, s.to)).collect()).await
    }

    async fn conversions_many(&self, keys: &[ConversionKey]) -> Result<Vec<Option<Conversion>>> {
        concurrently(keys.iter().map(|k| self.conversion(&k.tenant, &k.goal_id, &k.key)).collect()).await
    }
}

/// Runs the reads, [`READ_CONCURRENCY`] at a time, results in input order. The futures are
/// made up front (they do nothing until polled): a closure inside the stream would trip
/// the `Send` check of `async_trait` methods (rust-lang/rust#64552).
pub(crate) async fn concurrently<T, Fut>(reads: Vec<Fut>) -> Result<Vec<T>>
where
    Fut: std::future::Future<Output = Result<T>>,
{
    futures_util::stream::iter(reads).buffered(READ_CONCURRENCY).try_collect().await
}
