//! The attribution worker: runs [`engine::step`] until the log is drained, then sleeps until
//! woken (in-process ingestion notifies it) or a poll interval passes (ingestion in another
//! process does not).

use crate::engine;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{Notify, watch};
use touchstone_store::Store;

/// How often an idle worker looks at the log without being woken.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// How long to wait after a failed step before trying again.
const RETRY_AFTER: Duration = Duration::from_secs(1);

pub struct Worker {
    store: Arc<dyn Store>,
    wake: Arc<Notify>,
    batch: usize,
}

impl Worker {
    pub fn new(store: Arc<dyn Store>, wake: Arc<Notify>) -> Worker {
        Worker { store, wake, batch: engine::DEFAULT_BATCH }
    }

    /// Processes the log until `shutdown` turns true. A step is all or nothing, so stopping
    /// between steps (or being killed within one) loses nothing.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        tracing::info!("attribution worker started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let pause = match engine::step(self.store.as_ref(), self.batch).await {
                Ok(Some(outcome)) => {
                    tracing::debug!(
                        processed = outcome.processed,
                        entries = outcome.entries,
                        conversions_changed = outcome.conversions_changed,
                        "attribution step committed"
                    );
                    continue;
                }
                Ok(None) => POLL_INTERVAL,
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
        tracing::info!("attribution worker stopped");
    }
}
