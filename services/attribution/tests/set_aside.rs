//! A log entry the worker cannot process is set aside (kept, counted, listed with its
//! reason) and neither the rest of its shard nor any other shard stalls behind it.

mod common;

use common::{T0, paid};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};
use touchstone_attribution::{Worker, WorkerOptions};
use touchstone_store::{EmbeddedStore, IngestLog, LOG_SHARDS, LogPayload, RecordReads, log_shard};

/// A 70 KB tenant name in the same log shard as `tenant`: its recompute reaches the worker
/// (as if written past the edge, by an older version), and no store can key on it.
fn poison_tenant_beside(tenant: &str) -> String {
    let base = "p".repeat(70_000);
    (0..)
        .map(|i| format!("{base}{i}"))
        .find(|name| log_shard(name) == log_shard(tenant))
        .expect("some suffix lands in the shard")
}

async fn drained(store: &EmbeddedStore) -> bool {
    for shard in 0..LOG_SHARDS {
        let status = store.log_status(shard).await.unwrap();
        if status.processed < status.head {
            return false;
        }
    }
    true
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entry_that_always_fails_is_set_aside_and_the_shards_move_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path()).unwrap();
    let (tenant, other) = ("acme", (0..).map(|i| format!("other{i}")).find(|t| log_shard(t) != log_shard("acme")).unwrap());
    let poison = poison_tenant_beside(tenant);

    store.ingest(vec![paid(tenant, "before", T0)]).await.unwrap();
    let poisoned = store.append_recompute(&poison).await.unwrap();
    store.ingest(vec![paid(tenant, "after", T0 + 1_000), paid(&other, "elsewhere", T0)]).await.unwrap();

    let (stop, stopped) = watch::channel(false);
    let worker = Worker::new(Arc::new(store.clone()), Arc::new(Notify::new()), WorkerOptions::new("w"));
    let running = tokio::spawn(worker.run(stopped));
    let deadline = Instant::now() + Duration::from_secs(60);
    while !drained(&store).await {
        assert!(Instant::now() < deadline, "the log did not drain past the bad entry");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop.send(true).unwrap();
    running.await.unwrap();

    // Everything around the bad entry, in its shard and in another, was processed.
    for (tenant, order_id) in [(tenant, "before"), (tenant, "after"), (other.as_str(), "elsewhere")] {
        assert!(store.conversion(tenant, "orders", order_id).await.unwrap().is_some(), "{tenant} {order_id}");
    }
    // The bad entry is kept, counted and listed with why.
    let shard = log_shard(tenant);
    assert_eq!(store.log_status(shard).await.unwrap().set_aside, 1);
    let set_aside = store.set_aside(shard, 10).await.unwrap();
    assert_eq!(set_aside.len(), 1);
    assert_eq!(set_aside[0].entry.seq, poisoned.seq);
    assert_eq!(set_aside[0].entry.payload, LogPayload::Recompute { tenant: poison });
    assert!(set_aside[0].reason.contains("key of"), "{}", set_aside[0].reason);
    for other_shard in (0..LOG_SHARDS).filter(|&s| s != shard) {
        assert_eq!(store.log_status(other_shard).await.unwrap().set_aside, 0);
    }
}
