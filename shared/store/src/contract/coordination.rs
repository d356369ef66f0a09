//! [`Coordination`]: how attribution workers split the log shards between them.

use crate::{LOG_SHARDS, Result};
use async_trait::async_trait;
use std::time::Duration;

/// A lane of a log shard: the part of the shard's attribution that one worker does at a
/// time. Every lane reads the whole shard; it folds the customers of its own
/// ([`customer_lane`]) and keeps its own copy of what customers share (order states, the
/// config folded under, pending counters), so that the lanes of one tenant's shard need
/// nothing from each other and any number of workers share a tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Lane {
    pub shard: u32,
    /// `0..lanes`.
    pub index: u32,
}

impl Lane {
    /// The number leases and progress are kept under: lane 0 of a shard is numbered as the
    /// shard, so a store of one lane a shard numbers its shards as they are.
    pub fn number(self) -> u32 {
        self.shard + LOG_SHARDS * self.index
    }

    pub fn from_number(number: u32) -> Lane {
        Lane { shard: number % LOG_SHARDS, index: number / LOG_SHARDS }
    }

    /// Every lane of a store with `lanes` lanes a shard, by number.
    pub fn all(lanes: u32) -> impl Iterator<Item = Lane> {
        (0..LOG_SHARDS * lanes.max(1)).map(Lane::from_number)
    }
}

/// The lane index of a customer, of `lanes`: FNV-1a of the id, as the CQL backend's slot
/// partitions, so that with a number of lanes dividing the slots a lane's customers fill
/// whole slots. Part of the stored format, with the number of lanes.
pub fn customer_lane(customer_id: &str, lanes: u32) -> u32 {
    crate::contract::fnv1a(customer_id) % lanes.max(1)
}

/// Shard leases and worker membership.
///
/// - **Lanes**: each log shard's attribution is split into [`Coordination::lanes`] lanes;
///   workers lease lanes (by [`Lane::number`]), so one tenant's work spreads over as many
///   workers as its shard has lanes.
/// - **Leases**: at most one owner holds a lane's lease at a time; it lapses `ttl` after
///   the last renewal, so a dead worker's lanes are taken over.
/// - Leases are advisory: what keeps two workers from both committing a lane's entries is
///   the fence on the commit ([`AttributionState::commit_attribution`](crate::AttributionState::commit_attribution)).
#[async_trait]
pub trait Coordination: Send + Sync + 'static {
    /// How many lanes each log shard has: fixed for a store (part of its stored format).
    fn lanes(&self) -> u32 {
        1
    }

    /// Takes the lease of the lane numbered `lane` ([`Lane::number`]) for `owner`, or renews
    /// it if `owner` holds it, until `ttl` from now. `false` when another owner holds it.
    async fn acquire_lease(&self, lane: u32, owner: &str, ttl: Duration) -> Result<bool>;

    /// Gives up `owner`'s lease of the lane numbered `lane` (nothing when someone else holds it).
    async fn release_lease(&self, lane: u32, owner: &str) -> Result<()>;

    /// Marks `worker` alive for `ttl` and returns every live worker, sorted: workers size
    /// their share of the lanes by it.
    async fn live_workers(&self, worker: &str, ttl: Duration) -> Result<Vec<String>>;
}
