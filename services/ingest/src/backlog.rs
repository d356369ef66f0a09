//! Flow control between ingestion and an attribution worker of the same process: a call
//! that leaves its log shards more than [`Backlog::limit`] records ahead of attribution is
//! answered once attribution has caught up to the limit. Its records are stored (durable)
//! before it waits, so waiting delays only the reply: a client sending as fast as it can
//! is slowed to what attribution keeps up with, and reports stay fresh (attribution lag is
//! bounded by the limit) instead of falling minutes behind under a bulk load.
//!
//! The wait is bounded by [`Backlog::max_wait`]: a worker that is stopped or failing must
//! not stop ingestion, which needs no worker to store records.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};
use touchstone_store::IngestLog;

/// How often a held call looks at the shards' positions.
const POLL: Duration = Duration::from_millis(10);

#[derive(Debug, Clone, Copy)]
pub struct Backlog {
    /// Records logged but not yet attributed, summed over the shards a call wrote to, above
    /// which the call's reply waits.
    pub limit: u64,
    /// The longest a reply waits.
    pub max_wait: Duration,
}

impl Backlog {
    /// A few seconds of attribution on two cores. Steps then still find large batches
    /// waiting (what a step costs grows with the keys it touches, not its records: on 1M
    /// records, 100,000 cost 6% of the records/s to final reports and bounded the lag once
    /// input stops to 2.4 s; 30,000 bounded it to 0.5 s but cost 27%).
    pub const DEFAULT_LIMIT: u64 = 100_000;
    /// How long a reply waits at most.
    pub const MAX_WAIT: Duration = Duration::from_secs(5);

    pub fn within(limit: u64) -> Backlog {
        Backlog { limit, max_wait: Backlog::MAX_WAIT }
    }

    /// Returns once `shards` hold at most `limit` unattributed records, or after `max_wait`,
    /// or at once when a position cannot be read (the records are stored: holding the reply
    /// is only a courtesy to attribution).
    pub async fn hold(&self, log: &Arc<dyn IngestLog>, shards: &BTreeSet<u32>) {
        let started = Instant::now();
        loop {
            let mut behind = 0u64;
            for &shard in shards {
                match log.log_status(shard).await {
                    Ok(status) => behind += status.head.saturating_sub(status.processed),
                    Err(error) => {
                        tracing::debug!(shard, %error, "backlog not readable; replying");
                        return;
                    }
                }
            }
            if behind <= self.limit {
                return;
            }
            if started.elapsed() >= self.max_wait {
                tracing::debug!(behind, "attribution still behind after the longest wait; replying");
                return;
            }
            tokio::time::sleep(POLL).await;
        }
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
        Backlog { limit: 10, max_wait: Duration::from_secs(30) }.hold(&log, &t).await;
        assert!(started.elapsed() < quick, "within the limit: no wait");

        let other = (0..).map(|i| format!("u{i}")).find(|tenant| log_shard(tenant) != log_shard("t")).unwrap();
        let started = Instant::now();
        Backlog { limit: 0, max_wait: Duration::from_secs(30) }.hold(&log, &BTreeSet::from([log_shard(&other)])).await;
        assert!(started.elapsed() < quick, "another shard's backlog holds no one up");

        let max_wait = Duration::from_millis(300);
        let started = Instant::now();
        Backlog { limit: 9, max_wait }.hold(&log, &t).await;
        let waited = started.elapsed();
        assert!(waited >= max_wait && waited < max_wait + quick, "over the limit: waited {waited:?}");
    }
}
