//! [`Coordination`]: how attribution workers split the log shards between them.

use crate::Result;
use async_trait::async_trait;
use std::time::Duration;

/// Shard leases and worker membership.
///
/// - **Leases**: at most one owner holds a shard's lease at a time; it lapses `ttl` after
///   the last renewal, so a dead worker's shards are taken over.
/// - Leases are advisory: what keeps two workers from both committing a shard's entries is
///   the fence on the commit ([`AttributionState::commit_attribution`](crate::AttributionState::commit_attribution)).
#[async_trait]
pub trait Coordination: Send + Sync + 'static {
    /// Takes the lease of `shard` for `owner`, or renews it if `owner` holds it, until `ttl`
    /// from now. `false` when another owner holds it.
    async fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> Result<bool>;

    /// Gives up `owner`'s lease of `shard` (nothing when someone else holds it).
    async fn release_lease(&self, shard: u32, owner: &str) -> Result<()>;

    /// Marks `worker` alive for `ttl` and returns every live worker, sorted: workers size
    /// their share of the shards by it.
    async fn live_workers(&self, worker: &str, ttl: Duration) -> Result<Vec<String>>;
}
