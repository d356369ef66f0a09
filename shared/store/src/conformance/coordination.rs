//! Checks of [`Coordination`](crate::Coordination): shard leases and worker membership, both
//! lapsing after their ttl.

use super::tenant;
use crate::{Result, Store};
use std::time::Duration;

pub async fn leases_are_exclusive_and_lapse(store: &dyn Store) -> Result<()> {
    let (a, b) = (tenant("lease-a"), tenant("lease-b"));
    let ttl = Duration::from_secs(2);
    assert!(store.acquire_lease(3, &a, ttl).await?, "a free lease");
    assert!(!store.acquire_lease(3, &b, ttl).await?, "a held lease went to another owner");
    assert!(store.acquire_lease(3, &a, ttl).await?, "the holder could not renew");
    assert!(store.acquire_lease(4, &b, ttl).await?, "leases are per shard");
    store.release_lease(3, &b).await?;
    assert!(!store.acquire_lease(3, &b, ttl).await?, "someone else's release freed the lease");
    store.release_lease(3, &a).await?;
    assert!(store.acquire_lease(3, &b, ttl).await?, "a released lease stayed taken");

    // b stops renewing shard 4: after the ttl, a takes it over.
    assert!(!store.acquire_lease(4, &a, ttl).await?);
    tokio::time::sleep(ttl + Duration::from_millis(1_500)).await;
    assert!(store.acquire_lease(4, &a, ttl).await?, "a lapsed lease was not taken over");
    assert!(!store.acquire_lease(4, &b, ttl).await?, "the old holder came back over the new one");
    Ok(())
}

pub async fn live_workers_are_listed_until_they_lapse(store: &dyn Store) -> Result<()> {
    let (a, b) = (tenant("worker-a"), tenant("worker-b"));
    let mut both = vec![a.clone(), b.clone()];
    both.sort();
    assert_eq!(store.live_workers(&a, Duration::from_secs(60)).await?, [a.clone()]);
    assert_eq!(store.live_workers(&b, Duration::from_secs(2)).await?, both);
    assert_eq!(store.live_workers(&a, Duration::from_secs(60)).await?, both, "listed once each");
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(store.live_workers(&a, Duration::from_secs(60)).await?, [a], "a lapsed worker is still listed");
    Ok(())
}
