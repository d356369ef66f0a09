//! Flow control between ingestion and attribution: a call that leaves its log shards more
//! than [`Backlog::limit`] records ahead of attribution is answered once attribution has
//! caught up to the limit. Its records are stored (durable) before it waits, so waiting
//! delays only the reply: a client sending as fast as it can is slowed to what attribution
//! keeps up with, and reports stay fresh (attribution lag is bounded by the limit) instead
//! of falling minutes behind under a bulk load.
//!
//! Workers may run in this process or in others. A reply waits only while attribution is
//! seen moving (a lane of a shard committed within [`Backlog::stalled`]), and at
//! most [`Backlog::max_wait`]: ingestion needs no worker to store records, so a stopped or
//! failing worker must not stop it. Positions are read at most once a [`Backlog::poll`]
//! per shard, whatever the number of calls waiting, so that waiting costs the store a few
//! reads a second, not a read per call.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use touchstone_store::{IngestLog, LogPositions};

#[derive(Debug, Clone)]
pub struct Backlog {
    /// Records logged but not yet attributed, summed over the shards a call wrote to, above
    /// which the call's reply waits.
    pub limit: u64,
    /// The longest a reply waits.
    pub max_wait: Duration,
    /// How often the shards' positions are read while replies wait.
    pub poll: Duration,
    /// How long a shard's processed position may stand still, with records waiting, before
    /// replies stop waiting for it.
    pub stalled: Duration,
    /// Each shard's positions as last read, shared by the calls of this process.
    seen: Arc<Mutex<HashMap<u32, Seen>>>,
}

/// A shard's positions as last read.
#[derive(Debug, Clone, Copy)]
struct Seen {
    head: u64,
    processed: u64,
    /// The lanes' positions in all ([`LogPositions::progress`]).
    progress: u64,
    read_at: Instant,
    /// When a lane's processed position last changed (or was first read).
    moved_at: Instant,
}

impl Backlog {
    /// A few seconds of attribution on two cores. Steps then still find large batches
    /// waiting (what a step costs grows with the keys it touches, not its records: on 1M
    /// records, 100,000 cost 6% of the records/s to final reports and bounded the lag once
    /// input stops to 2.4 s; 30,000 bounded it to 0.5 s but cost 27%).
    pub const DEFAULT_LIMIT: u64 = 100_000;
    /// The same for an ingest process whose workers run elsewhere, on a store across the
    /// network, where attribution is slower (9-15k records/s on two cores shared with
    /// Cassandra): on 207k records, 100,000 bounded the lag once input stops to 3-6 s,
    /// 50,000 to 1.7-4.5 s, at 0.20 CQL requests a record instead of 0.15.
    pub const REMOTE_DEFAULT_LIMIT: u64 = 50_000;
    /// How long a reply waits at most.
    pub const MAX_WAIT: Duration = Duration::from_secs(5);
    /// Longer than a step takes: a worker between two commits is not taken for gone.
    pub const STALLED: Duration = Duration::from_secs(3);
    /// Positions read every 10 ms: for a store in this process, where a read is cheap.
    pub const LOCAL_POLL: Duration = Duration::from_millis(10);
    /// Positions read every 100 ms: for a store across the network (two requests a shard).
    pub const REMOTE_POLL: Duration = Duration::from_millis(100);

    pub fn within(limit: u64, poll: Duration) -> Backlog {
        Backlog { limit, max_wait: Backlog::MAX_WAIT, poll, stalled: Backlog::STALLED, seen: Arc::default() }
    }

    /// Returns once `shards` hold at most `limit` unattributed records, or once attribution
    /// stands still ([`Backlog::stalled`]), or after `max_wait`, or at once when a position
    /// cannot be read (the records are stored: holding the reply is only a courtesy to
    /// attribution).
    pub async fn hold(&self, log: &Arc<dyn IngestLog>, shards: &BTreeSet<u32>) {
        let started = Instant::now();
        loop {
            let (mut behind, mut moving) = (0u64, false);
            for &shard in shards {
                match self.positions(log, shard).await {
                    Ok(seen) => {
                        let waiting = seen.head.saturating_sub(seen.processed);
                        behind += waiting;
                        moving |= waiting > 0 && seen.moved_at.elapsed() < self.stalled;
                    }
                    Err(error) => {
                        tracing::debug!(shard, %error, "backlog not readable; replying");
                        return;
                    }
                }
            }
            if behind <= self.limit {
                return;
            }
            if !moving {
                tracing::debug!(behind, "attribution is not moving; replying");
                return;
            }
            if started.elapsed() >= self.max_wait {
                tracing::debug!(behind, "attribution still behind after the longest wait; replying");
                return;
            }
            tokio::time::sleep(self.poll).await;
        }
    }

    /// The shard's positions, read again when the last reading is a poll old.
    async fn positions(&self, log: &Arc<dyn IngestLog>, shard: u32) -> touchstone_store::Result<Seen> {
        let fresh = |seen: &Seen| seen.read_at.elapsed() < self.poll;
        if let Some(seen) = self.seen().get(&shard).copied().filter(fresh) {
            return Ok(seen);
        }
        let LogPositions { head, processed, progress } = log.log_positions(shard).await?;
        let now = Instant::now();
        let mut seen = self.seen();
        let entry = seen.entry(shard).or_insert(Seen { head, processed, progress, read_at: now, moved_at: now });
        if progress != entry.progress {
            entry.moved_at = now;
        }
        (entry.head, entry.processed, entry.progress, entry.read_at) = (head, processed, progress, now);
        Ok(*entry)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, HashMap<u32, Seen>> {
        // The map holds plain readings: one left by a panicking holder is still good.
        self.seen.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::model::{Record, Touch, TouchKind};
    use touchstone_store::{EmbeddedStore, log_shard};

    fn touches(tenant: &str, n: usize) -> Vec<Record> {
        (0..n)
            .map(|i| {
                let (tenant, event_id) = (tenant.to_owned(), format!("e{i}"));
                Record::Touch(Touch { tenant, event_id, msg_hash: "m".into(), customer_id: "c".into(), kind: TouchKind::Sent, ts: 1_767_225_600_000 })
            })
            .collect()
    }

    fn backlog() -> Backlog {
        Backlog::within(0, Backlog::LOCAL_POLL)
    }

    /// No worker runs here, so the records stay unattributed: a reply within the limit goes
    /// at once, one over it waits its longest, and another tenant's shard is not held up.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_waits_while_its_shards_are_behind_but_never_longer_than_max_wait() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        store.ingest_traced(touches("t", 10), None).await.unwrap();
        let log: Arc<dyn IngestLog> = store;
        let quick = Duration::from_secs(2);

        let started = Instant::now();
        let t = BTreeSet::from([log_shard("t")]);
        Backlog { limit: 10, max_wait: Duration::from_secs(30), ..backlog() }.hold(&log, &t).await;
        assert!(started.elapsed() < quick, "within the limit: no wait");

        let other = (0..).map(|i| format!("u{i}")).find(|tenant| log_shard(tenant) != log_shard("t")).unwrap();
        let started = Instant::now();
        Backlog { limit: 0, max_wait: Duration::from_secs(30), ..backlog() }.hold(&log, &BTreeSet::from([log_shard(&other)])).await;
        assert!(started.elapsed() < quick, "another shard's backlog holds no one up");

        let max_wait = Duration::from_millis(300);
        let started = Instant::now();
        Backlog { limit: 9, max_wait, ..backlog() }.hold(&log, &t).await;
        let waited = started.elapsed();
        assert!(waited >= max_wait && waited < max_wait + quick, "over the limit: waited {waited:?}");
    }

    /// The shard stands still: the first reply over the limit waits until it has stood
    /// still `stalled` (it may be between two steps), the next ones not at all.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn replies_stop_waiting_once_attribution_stands_still() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        store.ingest_traced(touches("t", 10), None).await.unwrap();
        let log: Arc<dyn IngestLog> = store;
        let stalled = Duration::from_millis(300);
        let backlog = Backlog { max_wait: Duration::from_secs(30), stalled, ..backlog() };
        let t = BTreeSet::from([log_shard("t")]);

        let started = Instant::now();
        backlog.hold(&log, &t).await;
        let waited = started.elapsed();
        assert!(waited >= stalled && waited < Duration::from_secs(5), "first reply waited {waited:?}");
        let started = Instant::now();
        backlog.hold(&log, &t).await;
        assert!(started.elapsed() < stalled, "attribution stood still, yet the next reply waited");
    }

    /// A worker commits an entry every 20 ms: the reply goes once at most `limit` entries
    /// wait, not before.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reply_waits_for_a_moving_worker_down_to_the_limit() {
        use touchstone_store::{AttributionCommit, AttributionState};
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path()).unwrap());
        store.ingest_traced(touches("t", 20), None).await.unwrap();
        let shard = log_shard("t");
        let worker = {
            let store = store.clone();
            tokio::spawn(async move {
                loop {
                    let after = store.resume_shard(shard).await.unwrap();
                    let Some(entry) = store.read_log(shard, after, 1).await.unwrap().pop() else { return };
                    store.commit_attribution(AttributionCommit { shard, after, processed: entry.seq, ..AttributionCommit::default() }).await.unwrap();
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            })
        };
        let log: Arc<dyn IngestLog> = store.clone();
        Backlog { limit: 5, max_wait: Duration::from_secs(30), ..backlog() }.hold(&log, &BTreeSet::from([shard])).await;
        let LogPositions { head, processed, .. } = log.log_positions(shard).await.unwrap();
        assert!(head - processed <= 5, "replied with {} waiting", head - processed);
        assert!(processed >= 10, "replied before attribution caught up: {processed} processed");
        worker.await.unwrap();
    }
}
