//! Checks of [`RecordReads`](crate::RecordReads): a customer's folded touches across month
//! and bucket edges.

use super::{T0, ids, sorted, tenant, touch};
use crate::{AttributionCommit, FoldWrites, Result, SegmentWrite, Store, log_shard};
use std::collections::BTreeMap;
use touchstone_core::fold::{Segment, segment_of};
use touchstone_core::model::{Millis, Touch};
use touchstone_core::rollup::{DAY_MS, HOUR_MS};

/// Bucket edges of every size a backend is likely to partition by, near `T0`, and the epoch.
fn edges() -> Vec<Millis> {
    let ceil_to = |ts: Millis, step: Millis| -((-ts).div_euclid(step) * step);
    let mut edges: Vec<Millis> = [HOUR_MS, DAY_MS, 7 * DAY_MS, 30 * DAY_MS, 1 << 32]
        .iter()
        .map(|&size| ceil_to(T0 + 12_345, size))
        .collect();
    edges.extend([0, T0, 1_706_745_600_000]); // the epoch (sign edge), and two month starts
    edges.sort_unstable();
    edges.dedup();
    edges
}

pub async fn customer_touches_are_inclusive_across_bucket_edges(store: &dyn Store) -> Result<()> {
    let t = tenant("customer_touches");
    let mut ours = Vec::new();
    let mut months: BTreeMap<(String, Millis), Segment> = BTreeMap::new();
    for (i, &edge) in edges().iter().enumerate() {
        for (label, ts) in [("before", edge - 1), ("at", edge), ("after", edge + 1)] {
            let mine = touch(&t, &format!("{i}-{label}"), "m1", "c1", ts);
            ours.push(mine.clone());
            // Customers whose ids extend or are a prefix of "c1" stay apart.
            let others = [touch(&t, &format!("{i}-{label}-c10"), "m1", "c10", ts), touch(&t, &format!("{i}-{label}-c"), "m1", "c", ts)];
            for touch in std::iter::once(mine).chain(others) {
                months.entry((touch.customer_id.clone(), segment_of(ts))).or_default().touches.push(touch);
            }
        }
    }
    let segments = months
        .into_iter()
        .map(|((customer_id, month), mut segment)| {
            segment.touches.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
            SegmentWrite { tenant: t.clone(), customer_id, month, segment: Some(segment) }
        })
        .collect();
    let shard = log_shard(&t);
    let processed = store.resume_shard(shard).await?;
    let fold = FoldWrites { segments, ..FoldWrites::default() };
    store.commit_attribution(AttributionCommit { shard, after: processed, processed, fold, ..AttributionCommit::default() }).await?;

    for (i, &edge) in edges().iter().enumerate() {
        let read = |from: Millis, to: Millis| store.customer_touches(&t, "c1", from, to);
        assert_eq!(ids(&read(edge, edge).await?), [format!("{i}-at")], "[edge, edge] at {edge}");
        assert_eq!(ids(&read(edge - 1, edge).await?), [format!("{i}-at"), format!("{i}-before")], "ending on the edge at {edge}");
        assert_eq!(ids(&read(edge, edge + 1).await?), [format!("{i}-after"), format!("{i}-at")], "starting on the edge at {edge}");
        assert_eq!(read(edge - 1, edge + 1).await?.len(), 3, "around {edge}");
        assert!(read(edge + 1, edge - 1).await?.is_empty(), "an inverted range at {edge}");
    }
    assert_eq!(sorted(store.customer_touches(&t, "c1", Millis::MIN, Millis::MAX).await?), sorted(ours.clone()));
    let within_year: Vec<Touch> = ours.iter().filter(|touch| touch.ts >= T0 - 1).cloned().collect();
    assert_eq!(ids(&store.customer_touches(&t, "c1", T0 - 1, T0 + 366 * DAY_MS).await?), ids(&within_year));
    Ok(())
}
