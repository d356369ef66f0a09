//! [`Coordination`] on CQL: shard leases by compare-and-set with the lease's TTL, and live
//! workers as rows that expire with the TTL their worker asked for.

use super::timed;
use super::CqlStore;
use super::layout::{shard_value, ttl_seconds};
use crate::{Coordination, Result};
use async_trait::async_trait;
use std::time::Duration;

/// The `live_workers` partition of the attribution workers.
const POOL: &str = "attribution";

#[async_trait]
impl Coordination for CqlStore {
    fn lanes(&self) -> u32 {
        self.inner.options.lanes
    }

    async fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> Result<bool> {
        timed("acquire_lease", async {
            let s = &self.inner.statements;
            let (shard, ttl) = (shard_value(shard), ttl_seconds(ttl));
            let taken = self.inner.lwt(&s.insert_lease_if_absent, (shard, owner, ttl)).await?;
            if taken.applied {
                return Ok(true);
            }
            if taken.text("owner") != Some(owner) {
                return Ok(false);
            }
            Ok(self.inner.lwt(&s.renew_lease_if_owner, (ttl, owner, shard, owner)).await?.applied)
        })
        .await
    }

    async fn release_lease(&self, shard: u32, owner: &str) -> Result<()> {
        timed("release_lease", async {
            self.inner.lwt(&self.inner.statements.delete_lease_if_owner, (shard_value(shard), owner)).await?;
            Ok(())
        })
        .await
    }

    async fn live_workers(&self, worker: &str, ttl: Duration) -> Result<Vec<String>> {
        timed("live_workers", async {
            let s = &self.inner.statements;
            self.inner.run(&s.insert_live_worker, (POOL, worker, ttl_seconds(ttl))).await?;
            let mut live: Vec<(String,)> = self.inner.rows(&s.select_live_workers, (POOL,)).await?;
            live.sort();
            Ok(live.into_iter().map(|(worker,)| worker).collect())
        })
        .await
    }
}
