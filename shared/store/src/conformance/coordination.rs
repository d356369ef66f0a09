//! Checks of [`Coordination`](crate::Coordination): lane leases and worker membership, both
//! lapsing after their ttl, and what keeps the lanes of one shard apart.

use super::{T0, conversion, head, order, pending_delta, tenant, touch};
use crate::{
    AttributionCommit, BadgeFeedEntry, ConversionChange, FeedChange, FeedPosition, FoldWrites, Lane, OrderStateWrite, Result, Store, StoreError,
    UnregisteredMark, log_shard,
};
use std::collections::BTreeMap;
use std::time::Duration;
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::OrderState;
use touchstone_core::model::{BadgeAction, BadgeEvent, BadgeSource, Record, TouchKind};
use touchstone_core::rollup::{CampaignCell, Granularity, Tally};

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

/// Lanes of one shard ([`Lane`]): each has its own processed position and fence, the shard's
/// is the lowest of them; what two lanes could both write is kept apart (conversion rows by
/// customer, order copies, folded configs and pending counters by lane, marks removed by
/// customer); the badge feed shows an entry once every lane has passed its position. On a
/// store of one lane: lane 0 is the shard, and no other lane commits.
pub async fn lanes_keep_their_own_positions_and_state(store: &dyn Store) -> Result<()> {
    let t = tenant("lanes");
    let shard = log_shard(&t);
    let lane = |index| Lane { shard, index };
    let touches = ["e1", "e2", "e3"].map(|id| Record::Touch(touch(&t, id, "m1", "ca", T0)));
    store.ingest(touches.to_vec()).await?;
    let last = head(store, &t).await?;
    if store.lanes() < 2 {
        assert_eq!(store.resume_lane(lane(0)).await?, store.resume_shard(shard).await?);
        let other = AttributionCommit { shard, lane: 1, after: 0, processed: last, ..AttributionCommit::default() };
        assert!(store.commit_attribution(other).await.is_err(), "a commit of a lane the store does not have applied");
        return Ok(());
    }

    // Lanes 2.. pass everything; lane 1 passes everything with its own state; lane 0 stops
    // one short.
    for index in 2..store.lanes() {
        let after = store.resume_lane(lane(index)).await?;
        store.commit_attribution(AttributionCommit { shard, lane: index, after, processed: last, ..AttributionCommit::default() }).await?;
    }
    let (in_a, in_b) = (conversion(&t, "orders", "o1", "ca", T0, None), conversion(&t, "orders", "o1", "cb", T0 + 1, None));
    let state = |status: &str| OrderState { records: vec![order(&t, status, "o1", status, T0)], facts: BTreeMap::new() };
    let order_write = |status: &str| OrderStateWrite { tenant: t.clone(), order_id: "o1".into(), state: state(status) };
    let mark = |customer_id: &str| UnregisteredMark { tenant: t.clone(), msg_hash: "m9".into(), customer_id: customer_id.into() };
    let opened = CampaignCell::Touch { kind: TouchKind::Opened };
    let config = TenantConfig { currency: "EUR".into(), ..TenantConfig::defaults(&t) };
    let earn = BadgeEvent {
        tenant: t.clone(),
        event_id: "rule:regular:cb".into(),
        customer_id: "cb".into(),
        badge_id: "regular".into(),
        action: BadgeAction::Earned,
        ts: T0,
        source: BadgeSource::Rule,
        reason: None,
    };
    let feed_entry = BadgeFeedEntry { position: FeedPosition { seq: last, index: (1 << 24) + 1 }, change: FeedChange::Added, event: earn };
    let lane_1 = AttributionCommit {
        shard,
        lane: 1,
        after: store.resume_lane(lane(1)).await?,
        processed: last,
        conversions: vec![ConversionChange { old: None, new: Some(in_b.clone()) }],
        pending: vec![pending_delta(&t, "m1", T0, &opened, 2)],
        badge_feed: vec![feed_entry.clone()],
        fold: FoldWrites {
            orders: vec![order_write("PAID")],
            unregistered: vec![mark("cb")],
            folded_configs: vec![config.clone()],
            ..FoldWrites::default()
        },
        ..AttributionCommit::default()
    };
    store.commit_attribution(lane_1.clone()).await?;
    let after = store.resume_lane(lane(0)).await?;
    let lane_0 = AttributionCommit {
        shard,
        lane: 0,
        after,
        processed: last - 1,
        conversions: vec![ConversionChange { old: None, new: Some(in_a.clone()) }],
        pending: vec![pending_delta(&t, "m1", T0, &opened, 1)],
        fold: FoldWrites { orders: vec![order_write("PLACED")], unregistered: vec![mark("ca")], ..FoldWrites::default() },
        ..AttributionCommit::default()
    };
    store.commit_attribution(lane_0).await?;

    assert_eq!(store.log_status(shard).await?.processed, last - 1, "the shard is where its lowest lane is");
    assert_eq!(store.resume_lane(lane(1)).await?, last);
    let rest = store.read_log(shard, last - 1, 10).await?;
    assert_eq!(rest.iter().map(|entry| entry.seq).collect::<Vec<_>>(), [last], "lane 0's next entry went from the log");
    assert!(matches!(store.commit_attribution(lane_1).await, Err(StoreError::Fenced { .. })), "a repeated commit of lane 1 applied");
    assert_eq!(store.badge_feed(&t, None, 10).await?, [], "the feed showed a position lane 0 has not passed");
    assert!(store.badge_feed_end(&t).await?.is_none_or(|end| end < feed_entry.position), "the feed's end passed an unsettled entry");
    // The conversion moves from lane 0's customer to lane 1's: both rows until lane 0 removes its own.
    assert_eq!(store.conversions_between(&t, T0, T0 + 2).await?.len(), 2);

    let lane_0 = AttributionCommit {
        shard,
        lane: 0,
        after: last - 1,
        processed: last,
        conversions: vec![ConversionChange { old: Some(in_a), new: None }],
        fold: FoldWrites { unmarked: vec![mark("ca")], ..FoldWrites::default() },
        ..AttributionCommit::default()
    };
    store.commit_attribution(lane_0).await?;
    assert_eq!(store.log_status(shard).await?.processed, last);
    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(in_b.clone()), "lane 0's removal took lane 1's row");
    assert_eq!(store.conversions_between(&t, T0, T0 + 2).await?, [in_b]);
    let o1 = [(t.clone(), "o1".to_owned())];
    assert_eq!(store.order_states(0, &o1).await?, [state("PLACED")]);
    assert_eq!(store.order_states(1, &o1).await?, [state("PAID")]);
    assert_eq!(store.tenant_order_states(&t, 1).await?, [("o1".to_owned(), state("PAID"))]);
    assert_eq!(store.folded_config(&t, 0).await?, None);
    assert_eq!(store.folded_config(&t, 1).await?, Some(config));
    let hour = Granularity::Hour.bucket(T0);
    assert_eq!(store.pending_counters(&t, 0, "m1").await?, [(hour, opened.clone(), Tally::ONE)]);
    assert_eq!(store.pending_counters(&t, 1, "m1").await?, [(hour, opened, Tally { count: 2, value_micros: 0 })]);
    assert_eq!(store.unregistered_customers(&t, "m9").await?, ["cb"], "lane 0's removal took lane 1's mark");
    assert_eq!(store.badge_feed(&t, None, 10).await?, [feed_entry.clone()]);
    assert_eq!(store.badge_feed_end(&t).await?, Some(feed_entry.position));
    Ok(())
}
