//! The attribution worker: holds leases on a share of the log shards and runs
//! [`engine::step`] on each until it is drained, then sleeps until woken (in-process
//! ingestion notifies it) or a poll interval passes (ingestion in another process does not).
//!
//! Several workers (processes) split the shards through leases in the store. Each sizes its
//! share as `ceil(shards / live workers)`, takes free shards up to it, gives back any above
//! it, and renews what it holds. A worker that dies stops renewing; its leases lapse after
//! [`WorkerOptions::lease_ttl`] and the others take its shards over. A worker that loses a
//! lease while it works cannot do harm: its commit is fenced by the shard's processed
//! position ([`StoreError::Fenced`]) and discarded.

use crate::engine;
use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use touchstone_store::{LOG_SHARDS, Store, StoreError};

/// How often an idle worker looks at the log without being woken.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long to wait after a failed step before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Names this worker in leases; unique among live workers.
    pub id: String,
    /// Log entries per step.
    pub batch: usize,
    /// How long a lease (and this worker's liveness mark) lasts without renewal: how soon a
    /// dead worker's shards are taken over. Renewed every third of it.
    pub lease_ttl: Duration,
}

impl WorkerOptions {
    pub fn new(id: impl Into<String>) -> WorkerOptions {
        WorkerOptions { id: id.into(), batch: engine::DEFAULT_BATCH, lease_ttl: Duration::from_secs(10) }
    }
}

pub struct Worker {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    options: WorkerOptions,
    /// The shards whose leases this worker holds.
    held: BTreeSet<u32>,
    /// When the leases were last renewed.
    renewed_at: Option<Instant>,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>, options: WorkerOptions) -> Worker {
        Worker { store, wake, options, held: BTreeSet::new(), renewed_at: None }
    }

    /// Processes the log until `shutdown` turns true, then gives its leases back. A step is
    /// all or nothing, so stopping between steps (or being killed within one) loses nothing.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = %self.options.id, "attribution worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match self.round().await {
                Ok(true) => continue,
                Ok(false) => POLL_INTERVAL,
                Err(err) => {
                    tracing::warn!(error = %err, transient = err.is_transient(), "attribution step failed; retrying");
                    RETRY_AFTER
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.changed() => {}
            }
        }
        for shard in std::mem::take(&mut self.held) {
            if let Err(err) = self.store.release_lease(shard, &self.options.id).await {
                tracing::warn!(shard, error = %err, "could not release a lease; it will lapse");
            }
        }
        tracing::info!(worker = %self.options.id, "attribution worker stopped");
    }

    /// Renews leases when due, then one step on each held shard. `true` when any step did
    /// work (so there may be more right away).
    async fn round(&mut self) -> touchstone_store::Result<bool> {
        let renew_every = self.options.lease_ttl / 3;
        if self.renewed_at.is_none_or(|at| at.elapsed() >= renew_every) {
            self.balance_leases().await?;
            self.renewed_at = Some(Instant::now());
        }
        let mut worked = false;
        for shard in self.held.clone() {
            match engine::step(self.store.as_ref(), shard, self.options.batch).await {
                Ok(Some(outcome)) => {
                    worked = true;
                    tracing::debug!(
                        shard,
                        processed = outcome.processed,
                        entries = outcome.entries,
                        conversions_changed = outcome.conversions_changed,
                        "attribution step committed"
                    );
                }
                Ok(None) => {}
                Err(StoreError::Fenced { shard }) => {
                    tracing::warn!(shard, "another worker committed this shard; giving it up");
                    self.held.remove(&shard);
                    // Renew at once: the lease may have lapsed for the others too.
                    self.renewed_at = None;
                }
                Err(err) => return Err(err),
            }
        }
        Ok(worked)
    }

    /// Renews held leases and moves towards this worker's fair share of the shards.
    async fn balance_leases(&mut self) -> touchstone_store::Result<()> {
        let ttl = self.options.lease_ttl;
        let id = self.options.id.clone();
        let live = self.store.live_workers(&id, ttl).await?;
        let share = (LOG_SHARDS as usize).div_ceil(live.len().max(1));

        for shard in self.held.clone() {
            if !self.store.acquire_lease(shard, &id, ttl).await? {
                tracing::warn!(shard, "lease lost to another worker");
                self.held.remove(&shard);
            }
        }
        while self.held.len() > share {
            let Some(shard) = self.held.pop_last() else { break };
            self.store.release_lease(shard, &id).await?;
            tracing::info!(shard, share, "lease given back to balance the workers");
        }
        // Start the search at this worker's place among the live ones, so workers that
        // start together mostly try different shards.
        let place = live.iter().position(|worker| *worker == id).unwrap_or(0);
        let start = (place * share) as u32;
        for offset in 0..LOG_SHARDS {
            if self.held.len() >= share {
                break;
            }
            let shard = (start + offset) % LOG_SHARDS;
            if !self.held.contains(&shard) && self.store.acquire_lease(shard, &id, ttl).await? {
                tracing::info!(shard, "lease taken");
                self.held.insert(shard);
            }
        }
        Ok(())
    }
}
