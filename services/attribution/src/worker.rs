//! The attribution worker: holds leases on a share of the lanes of the log shards
//! ([`Lane`], by number) and runs
//! [`engine::step`] on each until it is drained, then sleeps until woken (in-process
//! ingestion notifies it) or a poll interval passes (ingestion in another process does not).
//!
//! Several workers (processes) split the lanes through leases in the store. Each sizes its
//! share as `ceil(lanes / live workers)`, takes free lanes up to it, gives back any above
//! it, and renews what it holds. A worker that dies stops renewing; its leases lapse after
//! [`WorkerOptions::lease_ttl`] and the others take its lanes over. A worker that loses a
//! lease while it works cannot do harm: its commit is fenced by the lane's processed
//! position ([`StoreError::Fenced`]) and discarded.
//!
//! No entry can stall its lane. When a step fails with an error that retrying cannot help
//! (or panics), the worker goes on with that lane one entry per step, up to where the failed
//! step would have reached: the entries before the bad one are processed as usual, and an
//! entry whose step fails [`SET_ASIDE_AFTER`] times in a row, alone, is set aside
//! ([`engine::set_aside_next`]): kept with the reason, counted in its shard's status, and
//! passed over. Transient failures (storage unavailable) are only retried.

use crate::{AttributionStore, engine};
use futures_util::StreamExt;
use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, watch};
use touchstone_store::{Coordination, LOG_SHARDS, Lane, StoreError};

/// How often an idle worker looks at the log without being woken.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long to wait after a failed step before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);
/// Steps of different lanes run at once: a step waits on the store (disk on the embedded
/// store, round trips on a cluster) and computes in between, so a few at once keep the cores
/// and the connection busy. Each lane still has at most one step at a time.
const CONCURRENT_STEPS: usize = 4;
/// How long a worker has had nothing to process before it lets the store settle
/// ([`touchstone_store::AttributionState::settle`]): long enough that a pause between two
/// ingest calls of a bulk load does not count, short enough that reports read an idle store
/// as settled about a second after input stops.
const SETTLE_AFTER: Duration = Duration::from_secs(1);
/// Failed steps of one entry alone, in a row, after which it is set aside.
pub const SET_ASIDE_AFTER: u32 = 3;

#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Names this worker in leases; unique among live workers.
    pub id: String,
    /// Log entries per step.
    pub batch: usize,
    /// How long a lease (and this worker's liveness mark) lasts without renewal: how soon a
    /// dead worker's lanes are taken over. Renewed every third of it, apart from the steps.
    pub lease_ttl: Duration,
}

impl WorkerOptions {
    pub fn new(id: impl Into<String>) -> WorkerOptions {
        WorkerOptions { id: id.into(), batch: engine::DEFAULT_BATCH, lease_ttl: Duration::from_secs(10) }
    }
}

pub struct Worker {
    store: Arc<dyn AttributionStore>,
    wake: Arc<Notify>,
    options: WorkerOptions,
    /// Lanes stepped one entry at a time after a step failed on them.
    isolating: Mutex<HashMap<u32, Isolation>>,
}

/// A lane whose step failed for good: stepped one entry at a time up to `until` (where the
/// failed step would have reached), so the bad entry is found and the rest processed.
#[derive(Debug, Clone, Copy)]
struct Isolation {
    until: u64,
    /// Failed one-entry steps in a row.
    failures: u32,
}

/// How a step ended, as the isolation rule sees it.
enum Failure {
    /// Retrying later may help (storage unavailable): nothing is counted.
    Transient(StoreError),
    /// Retrying will not help: counted towards setting the entry aside.
    Permanent { error: StoreError, reason: String },
}

/// The lanes (numbers) whose leases this worker holds: renewed by the lease keeper on its own
/// schedule, so a long step cannot make them lapse; read by the stepping loop.
type Held = Arc<Mutex<BTreeSet<u32>>>;

impl Worker {
    pub fn new(store: Arc<dyn AttributionStore>, wake: Arc<Notify>, options: WorkerOptions) -> Worker {
        Worker { store, wake, options, isolating: Mutex::default() }
    }

    /// Processes the log until `shutdown` turns true, then gives its leases back. A step is
    /// all or nothing, so stopping between steps (or being killed within one) loses nothing.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!(worker = %self.options.id, "attribution worker started");
        let held: Held = Arc::default();
        let coordination: Arc<dyn Coordination> = self.store.clone();
        let keeper = tokio::spawn(keep_leases(coordination, self.options.clone(), held.clone(), shutdown.clone()));
        // When the worker last did work, until the store has settled after it.
        let mut unsettled_since = Some(std::time::Instant::now());
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match self.round(&held).await {
                Ok(true) => {
                    unsettled_since = Some(std::time::Instant::now());
                    continue;
                }
                Ok(false) => {
                    if unsettled_since.is_some_and(|since| since.elapsed() >= SETTLE_AFTER) {
                        match self.store.settle().await {
                            Ok(()) => unsettled_since = None,
                            Err(err) => tracing::warn!(error = %err, "settling the store failed; trying again when idle"),
                        }
                    }
                    POLL_INTERVAL
                }
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

    /// One step on each held lane, [`CONCURRENT_STEPS`] at a time, each on its own task so
    /// their computing spreads over the cores. `true` when any step did work (so there may
    /// be more right away).
    async fn round(&self, held: &Held) -> touchstone_store::Result<bool> {
        let lanes = lock(held).clone();
        let steps = lanes.into_iter().map(|lane| {
            let isolated = lock(&self.isolating).contains_key(&lane);
            let batch = if isolated { 1 } else { self.options.batch };
            let store = self.store.clone();
            async move {
                let started = std::time::Instant::now();
                let step = tokio::spawn(async move { engine::step(store.as_ref(), Lane::from_number(lane), batch).await });
                let outcome = match step.await {
                    Ok(Ok(outcome)) => Ok(outcome),
                    Ok(Err(error)) if error.is_transient() => Err(Failure::Transient(error)),
                    Ok(Err(error)) => Err(Failure::Permanent { reason: error.to_string(), error }),
                    Err(panic) => {
                        tracing::error!(lane, error = %panic, "attribution step panicked");
                        let reason = "attribution panicked on it (the worker's log has the details)".to_owned();
                        Err(Failure::Permanent { error: StoreError::Backend("attribution step panicked".to_owned()), reason })
                    }
                };
                metrics::histogram!("touchstone_attribution_step_seconds").record(started.elapsed().as_secs_f64());
                (lane, isolated, outcome)
            }
        });
        let outcomes: Vec<_> = futures_util::stream::iter(steps).buffer_unordered(CONCURRENT_STEPS).collect().await;
        let mut worked = false;
        let mut failure = None;
        for (lane, isolated, outcome) in outcomes {
            match outcome {
                Ok(Some(outcome)) => {
                    worked = true;
                    self.stepped(lane, outcome.processed);
                    let (shard, index) = (outcome.lane.shard.to_string(), outcome.lane.index.to_string());
                    metrics::counter!("touchstone_attribution_steps_total", "shard" => shard, "lane" => index).increment(1);
                    metrics::counter!("touchstone_attribution_entries_total").increment(outcome.entries as u64);
                    tracing::debug!(
                        lane,
                        processed = outcome.processed,
                        entries = outcome.entries,
                        conversions_changed = outcome.conversions_changed,
                        "attribution step committed"
                    );
                }
                Ok(None) => {
                    lock(&self.isolating).remove(&lane);
                }
                Err(Failure::Transient(StoreError::Fenced { .. })) => {
                    // Our lease lapsed and another worker moved on: its commit stands.
                    tracing::warn!(lane, "another worker committed this lane; step discarded");
                }
                // The other lanes' steps stand; the failed one is redone next round.
                Err(Failure::Transient(error)) => failure = Some(error),
                Err(Failure::Permanent { error, reason }) => {
                    match self.failed_for_good(lane, isolated, reason).await {
                        Ok(true) => worked = true,
                        Ok(false) => {}
                        Err(error) => tracing::warn!(lane, %error, "could not set a log entry aside; retrying"),
                    }
                    failure = Some(error);
                }
            }
        }
        match failure {
            Some(err) => Err(err),
            None => Ok(worked),
        }
    }

    /// A step of `lane` committed up to `processed`: isolation ends once past its end.
    fn stepped(&self, lane: u32, processed: u64) {
        let mut isolating = lock(&self.isolating);
        if let Some(isolation) = isolating.get_mut(&lane) {
            isolation.failures = 0;
            if processed >= isolation.until {
                isolating.remove(&lane);
                tracing::info!(lane, "lane back to whole batches");
            }
        }
    }

    /// A step of `lane` failed with an error retrying cannot help. A whole batch: go on one
    /// entry at a time. One entry, [`SET_ASIDE_AFTER`] times in a row: set it aside.
    /// `true` when an entry was set aside.
    async fn failed_for_good(&self, lane: u32, isolated: bool, reason: String) -> touchstone_store::Result<bool> {
        if !isolated {
            let processed = self.store.resume_lane(Lane::from_number(lane)).await?;
            let until = processed + self.options.batch as u64;
            tracing::warn!(lane, processed, until, %reason, "attribution step failed; going on one entry at a time");
            lock(&self.isolating).insert(lane, Isolation { until, failures: 0 });
            return Ok(false);
        }
        let failures = {
            let mut isolating = lock(&self.isolating);
            let isolation = isolating.entry(lane).or_insert(Isolation { until: 0, failures: 0 });
            isolation.failures += 1;
            isolation.failures
        };
        if failures < SET_ASIDE_AFTER {
            return Ok(false);
        }
        let seq = engine::set_aside_next(self.store.as_ref(), Lane::from_number(lane), reason).await?;
        if let Some(seq) = seq {
            self.stepped(lane, seq);
        }
        Ok(seq.is_some())
    }
}

/// Renews this worker's leases every third of their ttl and moves towards its fair share
/// of the lanes, until shutdown; then gives them back.
async fn keep_leases(store: Arc<dyn Coordination>, options: WorkerOptions, held: Held, mut shutdown: watch::Receiver<bool>) {
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
    let lanes = std::mem::take(&mut *lock(&held));
    for lane in lanes {
        if let Err(err) = store.release_lease(lane, &options.id).await {
            tracing::warn!(lane, error = %err, "could not release a lease; it will lapse");
        }
    }
}

/// Renews held leases and moves towards this worker's fair share of the lanes:
/// `ceil(lanes / live workers)`.
async fn balance_leases(store: &dyn Coordination, options: &WorkerOptions, held: &Held) -> touchstone_store::Result<()> {
    let (id, ttl) = (options.id.as_str(), options.lease_ttl);
    let live = store.live_workers(id, ttl).await?;
    let count = LOG_SHARDS * store.lanes();
    let share = (count as usize).div_ceil(live.len().max(1));

    let mut holding = lock(held).clone();
    for lane in holding.clone() {
        if !store.acquire_lease(lane, id, ttl).await? {
            tracing::warn!(lane, "lease lost to another worker");
            holding.remove(&lane);
        }
    }
    while holding.len() > share {
        let Some(lane) = holding.pop_last() else { break };
        store.release_lease(lane, id).await?;
        tracing::info!(lane, share, "lease given back to balance the workers");
    }
    // Start the search at this worker's place among the live ones, so workers that start
    // together mostly try different lanes.
    let place = live.iter().position(|worker| worker == id).unwrap_or(0);
    let start = (place * share) as u32;
    for offset in 0..count {
        if holding.len() >= share {
            break;
        }
        let lane = (start + offset) % count;
        if !holding.contains(&lane) && store.acquire_lease(lane, id, ttl).await? {
            tracing::info!(lane, "lease taken");
            holding.insert(lane);
        }
    }
    *lock(held) = holding;
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The set is replaced whole; a panic elsewhere leaves nothing half-done.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
