//! A worker with nothing to process lets the store settle: on the embedded store, the
//! rollup deltas its commits held in memory are folded into their rows.

mod common;

use common::{T0, paid};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use touchstone_attribution::{Worker, WorkerOptions};
use touchstone_store::{EmbeddedStore, IngestLog, LOG_SHARDS};

fn writes(store: &EmbeddedStore, table: &str) -> u64 {
    store.usage().into_iter().find(|usage| usage.table == table).map_or(0, |usage| usage.writes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_gets_the_rollup_deltas_folded_into_their_rows() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    store.ingest(vec![paid("acme", "o1", T0), paid("acme", "o2", T0)]).await.unwrap();

    let (stop, stopped) = watch::channel(false);
    let running = tokio::spawn(Worker::new(Arc::new(store.clone()), Arc::new(Notify::new()), WorkerOptions::new("w")).run(stopped));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mut drained = true;
        for shard in 0..LOG_SHARDS {
            let status = store.log_status(shard).await.unwrap();
            drained &= status.processed == status.head;
        }
        if drained {
            break;
        }
        assert!(Instant::now() < deadline, "the log did not drain");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(writes(&store, "rollup_journal") > 0, "the commit journaled its rollup deltas");
    // Far below the overlays' budget, only settling folds them.
    while writes(&store, "campaign_rollups") == 0 {
        assert!(Instant::now() < deadline, "the idle worker never got the deltas folded");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();
}
