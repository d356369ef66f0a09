//! [`Coordination`] for the embedded store: in memory, since one process opens a folder at
//! a time and its workers are the only ones there are.

use super::EmbeddedStore;
use crate::support::lock;
use crate::{Coordination, Result};
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Shard leases and live workers of this process.
#[derive(Default)]
pub(super) struct Leases {
    /// Per shard: owner and expiry.
    leases: Mutex<HashMap<u32, (String, Instant)>>,
    /// Live workers and when each lapses.
    workers: Mutex<HashMap<String, Instant>>,
}

#[async_trait]
impl Coordination for EmbeddedStore {
    async fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> Result<bool> {
        Ok(self.leases.acquire_lease(shard, owner, ttl))
    }

    async fn release_lease(&self, shard: u32, owner: &str) -> Result<()> {
        self.leases.release_lease(shard, owner);
        Ok(())
    }

    async fn live_workers(&self, worker: &str, ttl: Duration) -> Result<Vec<String>> {
        Ok(self.leases.live_workers(worker, ttl))
    }
}

impl Leases {
    fn acquire_lease(&self, shard: u32, owner: &str, ttl: Duration) -> bool {
        let now = Instant::now();
        let mut leases = lock(&self.leases);
        match leases.get(&shard) {
            Some((holder, until)) if holder != owner && *until > now => false,
            _ => {
                leases.insert(shard, (owner.to_owned(), now + ttl));
                true
            }
        }
    }

    fn release_lease(&self, shard: u32, owner: &str) {
        let mut leases = lock(&self.leases);
        if leases.get(&shard).is_some_and(|(holder, _)| holder == owner) {
            leases.remove(&shard);
        }
    }

    fn live_workers(&self, worker: &str, ttl: Duration) -> Vec<String> {
        let now = Instant::now();
        let mut workers = lock(&self.workers);
        workers.insert(worker.to_owned(), now + ttl);
        workers.retain(|_, until| *until > now);
        let mut live: Vec<String> = workers.keys().cloned().collect();
        live.sort();
        live
    }
}
