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
use futures_util::StreamExt;
use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use touchstone_store::{LOG_SHARDS, Store, StoreError};

/// How often an idle worker looks at the log without being woken.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long to wait after a failed step before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Steps of different shards run at once: a step waits on the store (disk on the embedded
/// store, round trips on a cluster) and computes in between, so a few at once keep the cores
/// and the connection busy. Each shard still has at most one step at a time.
const CONCURRENT_STEPS: usize = 4;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Names this worker in leases; unique among live workers.
    pub id: String,
    /// Log entries per step.
    pub batch: usize,
    /// How long a lease (and this worker's liveness mark) lasts without renewal: how soon a
    /// dead worker's shards are taken over. Renewed every third of it, apart from the steps.
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
}

/// The shards whose leases this worker holds: renewed by the lease keeper on its own
/// schedule, so a long step cannot make them lapse; read by the stepping loop.
type Held = Arc<Mutex<BTreeSet<u32>>>;

impl Worker {
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>, options: WorkerOptions) -> Worker {
        Worker { store, wake, options }
    }

    /// Processes the log until `shutdown` turns true, then gives its leases back. A step is
    /// all or nothing, so stopping between steps (or being killed within one) loses nothing.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = %self.options.id, "attribution worker started");
        let held: Held = Arc::default();
        let keeper = tokio::spawn(keep_leases(self.store.clone(), self.options.clone(), held.clone(), shutdown.clone()));
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match self.round(&held).await {
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
        let _ = keeper.await;
        tracing::info!(worker = %self.options.id, "attribution worker stopped");
    }

    /// One step on each held shard, [`CONCURRENT_STEPS`] at a time, each on its own task so
    /// their computing spreads over the cores. `true` when any step did work (so there may
    /// be more right away).
    async fn round(&self, held: &Held) -> touchstone_store::Result<bool> {
        let shards = lock(held).clone();
        let steps = shards.into_iter().map(|shard| {
            let (store, batch) = (self.store.clone(), self.options.batch);
            async move {
                let step = tokio::spawn(async move { engine::step(store.as_ref(), shard, batch).await });
                let outcome = step.await.unwrap_or_else(|err| Err(StoreError::Backend(format!("attribution step panicked: {err}"))));
                (shard, outcome)
            }
        });
        let outcomes: Vec<_> = futures_util::stream::iter(steps).buffer_unordered(CONCURRENT_STEPS).collect().await;
        let mut worked = false;
        let mut failure = None;
        for (shard, outcome) in outcomes {
            match outcome {
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
                    // Our lease lapsed and another worker moved on: its commit stands.
                    tracing::warn!(shard, "another worker committed this shard; step discarded");
                }
                // The other shards' steps stand; the failed one is redone next round.
                Err(err) => failure = Some(err),
            }
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(worked),
        }
    }
}

/// Renews this worker's leases every third of their ttl and moves towards its fair share
/// of the shards, until shutdown; then gives them back.
async fn keep_leases(store: Arc<dyn Store>, options: WorkerOptions, held: Held, mut shutdown: watch::Receiver<bool>) {
    let mut every = tokio::time::interval(options.lease_ttl / 3);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = every.tick() => {}
            _ = shutdown.changed() => break,
        }
        if *shutdown.borrow() {
            break;
        }
        if let Err(err) = balance_leases(store.as_ref(), &options, &held).await {
            tracing::warn!(error = %err, "renewing leases failed; retrying");
        }
    }
    let shards = std::mem::take(&mut *lock(&held));
    for shard in shards {
        if let Err(err) = store.release_lease(shard, &options.id).await {
            tracing::warn!(shard, error = %err, "could not release a lease; it will lapse");
        }
    }
}

/// Renews held leases and moves towards this worker's fair share of the shards:
/// `ceil(shards / live workers)`.
async fn balance_leases(store: &dyn Store, options: &WorkerOptions, held: &Held) -> touchstone_store::Result<()> {
    let (id, ttl) = (options.id.as_str(), options.lease_ttl);
    let live = store.live_workers(id, ttl).await?;
    let share = (LOG_SHARDS as usize).div_ceil(live.len().max(1));

    let mut holding = lock(held).clone();
    for shard in holding.clone() {
        if !store.acquire_lease(shard, id, ttl).await? {
            tracing::warn!(shard, "lease lost to another worker");
            holding.remove(&shard);
        }
    }
    while holding.len() > share {
        let Some(shard) = holding.pop_last() else { break };
        store.release_lease(shard, id).await?;
        tracing::info!(shard, share, "lease given back to balance the workers");
    }
    // Start the search at this worker's place among the live ones, so workers that start
    // together mostly try different shards.
    let place = live.iter().position(|worker| worker == id).unwrap_or(0);
    let start = (place * share) as u32;
    for offset in 0..LOG_SHARDS {
        if holding.len() >= share {
            break;
        }
        let shard = (start + offset) % LOG_SHARDS;
        if !holding.contains(&shard) && store.acquire_lease(shard, id, ttl).await? {
            tracing::info!(shard, "lease taken");
            holding.insert(shard);
        }
    }
    *lock(held) = holding;
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The set is replaced whole; a panic elsewhere leaves nothing half-done.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
