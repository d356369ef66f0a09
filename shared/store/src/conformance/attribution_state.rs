//! Checks of [`AttributionState`](crate::AttributionState): the engine's reads, and its
//! commit: conversions moving every index, the processed position, the fence, and the
//! entries a step sets aside.

use super::{
    T0, aside, campaign_delta, campaigns, cells, change, commit_conversions, commit_logged, conversion, delta, event, head, order, pending,
    pending_delta, sorted, split_conversion, tenant, tenant_log, touch,
};
use crate::{
    AttributionCommit, CellKinds, CustomerMonths, Exposure, FoldWrites, LogEntry, LogPayload, OrderStateWrite, Result, SegmentWrite, SetAside, Store, StoreError,
    UnregisteredMark, log_shard,
};
use std::collections::BTreeMap;
use touchstone_core::attribution::{Conversion, Credit, Rule};
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::{CustomerState, OrderState, Segment, segment_of};
use touchstone_core::model::{Millis, Record, TouchKind};
use touchstone_core::rollup::{CampaignCell, Cell, Cells, DAY_MS, Granularity, HOUR_MS, Tally};

pub async fn tenant_orders_returns_every_status_record(store: &dyn Store) -> Result<()> {
    let t = tenant("orders");
    let sibling = format!("{t}x");
    let o1 = vec![
        order(&t, "r1", "o1", "CREATED", T0 + 10),
        order(&t, "r2", "o1", "PAID", T0),
        order(&t, "r3", "o1", "REFUNDED", T0), // the same ts as r2
    ];
    let o10 = order(&t, "r4", "o10", "PLACED", T0);
    let mut records: Vec<Record> = o1.iter().cloned().map(Record::Order).collect();
    records.push(Record::Order(o10.clone()));
    records.push(Record::Order(order(&sibling, "r5", "o1", "PLACED", T0)));
    let (before, before_sibling) = (head(store, &t).await?, head(store, &sibling).await?);
    store.ingest(records).await?;
    commit_logged(store, &t, before).await?;
    commit_logged(store, &sibling, before_sibling).await?;

    let mut all = o1;
    all.push(o10);
    assert_eq!(sorted(store.tenant_orders(&t).await?), all);
    assert_eq!(store.tenant_orders(&sibling).await?.len(), 1);
    Ok(())
}

pub async fn tenant_events_named_matches_the_name_exactly(store: &dyn Store) -> Result<()> {
    let t = tenant("events_named");
    let other = tenant("events_named_other");
    let checkins = vec![event(&t, "a", "checkin", T0), event(&t, "b", "checkin", T0 - 90 * DAY_MS)];
    let mut records: Vec<Record> = checkins.iter().cloned().map(Record::Event).collect();
    records.extend([
        Record::Event(event(&t, "c", "checkin2", T0)),
        Record::Event(event(&t, "d", "check", T0)),
        Record::Event(event(&other, "a", "checkin", T0)),
    ]);
    let before = head(store, &t).await?;
    store.ingest(records).await?;
    commit_logged(store, &t, before).await?;

    assert_eq!(sorted(store.tenant_events_named(&t, "checkin").await?), checkins);
    assert!(store.tenant_events_named(&t, "view").await?.is_empty());
    Ok(())
}

pub async fn conversion_upsert_moves_every_index(store: &dyn Store) -> Result<()> {
    let t = tenant("conversion_upsert");
    let old = conversion(&t, "orders", "o1", "c1", T0 + 2 * HOUR_MS, Some("m1"));
    let same_key_other_goal = conversion(&t, "checkin", "o1", "c1", T0 + 2 * HOUR_MS, None);
    commit_conversions(store, &t, vec![change(None, Some(&old)), change(None, Some(&same_key_other_goal))]).await?;

    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(old.clone()));
    assert_eq!(store.conversions_between(&t, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS).await?.len(), 2);

    // Re-credited and moved to another month and hour.
    let moved = split_conversion(&t, "orders", "o1", "c1", T0 + 40 * DAY_MS + 5);
    commit_conversions(store, &t, vec![change(Some(&old), Some(&moved))]).await?;
    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(moved.clone()));
    assert_eq!(store.conversions_between(&t, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS).await?, [same_key_other_goal.clone()]);
    assert_eq!(store.conversions_between(&t, moved.fact.ts, moved.fact.ts + 1).await?, [moved.clone()]);
    assert_eq!(sorted(store.tenant_conversions(&t).await?), [same_key_other_goal.clone(), moved.clone()]);

    // Re-credited in place: old and new rows share every key, and the new one must stay.
    let recredited = Conversion { credit: Credit::unattributed(), split: None, ..moved.clone() };
    commit_conversions(store, &t, vec![change(Some(&moved), Some(&recredited))]).await?;
    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(recredited.clone()));
    assert_eq!(store.conversions_between(&t, moved.fact.ts, moved.fact.ts + 1).await?, [recredited.clone()]);
    assert_eq!(sorted(store.tenant_conversions(&t).await?), [same_key_other_goal, recredited]);
    Ok(())
}

pub async fn conversion_removal_clears_every_index(store: &dyn Store) -> Result<()> {
    let t = tenant("conversion_removal");
    let gone = conversion(&t, "orders", "o1", "c1", T0, Some("m1"));
    let kept = conversion(&t, "orders", "o2", "c1", T0 + 1, Some("m1"));
    commit_conversions(store, &t, vec![change(None, Some(&gone)), change(None, Some(&kept))]).await?;
    commit_conversions(store, &t, vec![change(Some(&gone), None)]).await?;

    assert_eq!(store.conversion(&t, "orders", "o1").await?, None);
    assert_eq!(store.conversion(&t, "orders", "o2").await?, Some(kept.clone()));
    assert_eq!(store.conversions_between(&t, T0 - DAY_MS, T0 + DAY_MS).await?, [kept.clone()]);
    assert_eq!(store.tenant_conversions(&t).await?, [kept]);
    Ok(())
}

/// One commit storing and one removing more conversions than a batch holds, most of them in
/// one hour: each is found by its key and by time, and none is left after the removal.
pub async fn many_conversions_in_one_commit(store: &dyn Store) -> Result<()> {
    let t = tenant("many_conversions");
    let all: Vec<Conversion> = (0..3_000).map(|i| conversion(&t, "orders", &format!("o{i}"), &format!("c{}", i % 40), T0 + i % 7, Some("m1"))).collect();
    commit_conversions(store, &t, all.iter().map(|c| change(None, Some(c))).collect()).await?;
    for i in [0, 1, 999, 1_000, 2_999] {
        assert_eq!(store.conversion(&t, "orders", &format!("o{i}")).await?.as_ref(), Some(&all[i]), "o{i}");
    }
    assert_eq!(store.conversions_between(&t, T0, T0 + 7).await?.len(), all.len());
    assert_eq!(store.tenant_conversions(&t).await?.len(), all.len());

    commit_conversions(store, &t, all.iter().map(|c| change(Some(c), None)).collect()).await?;
    assert_eq!(store.conversion(&t, "orders", "o2999").await?, None);
    assert!(store.conversions_between(&t, T0, T0 + 7).await?.is_empty());
    assert!(store.tenant_conversions(&t).await?.is_empty());
    Ok(())
}

/// Fold state: months written and removed per customer, orders, the marks of unregistered
/// messages (cleared by a registration, also one in the same commit), folded configs, and
/// the tenant-wide reads of recomputes.
pub async fn fold_state_follows_commits(store: &dyn Store) -> Result<()> {
    let t = tenant("fold_state");
    let shard = log_shard(&t);
    let month = |months: i64| T0 + months * 31 * DAY_MS;
    let touched = |event_id: &str, ts| Segment { touches: vec![touch(&t, event_id, "m1", "c1", ts)], conversions: BTreeMap::new() };
    let converted = split_conversion(&t, "orders", "o1", "c1", month(1));
    let with_conversion = Segment { touches: Vec::new(), conversions: BTreeMap::from([(("orders".to_owned(), "o1".to_owned()), converted.clone())]) };
    let order_state = OrderState { records: vec![order(&t, "o1-placed", "o1", "PLACED", month(1))], facts: BTreeMap::new() };
    let segment = |customer_id: &str, at: Millis, segment: Option<Segment>| SegmentWrite {
        tenant: t.clone(),
        customer_id: customer_id.into(),
        month: segment_of(at),
        segment,
    };
    let mark = |msg_hash: &str, customer_id: &str| UnregisteredMark { tenant: t.clone(), msg_hash: msg_hash.into(), customer_id: customer_id.into() };
    let exposure = |campaign_id: &str, customer_id: &str| Exposure { tenant: t.clone(), campaign_id: campaign_id.into(), customer_id: customer_id.into() };
    let commit = |fold: FoldWrites| async move {
        let processed = store.resume_shard(shard).await?;
        store.commit_attribution(AttributionCommit { shard, after: processed, processed, fold, ..AttributionCommit::default() }).await
    };
    let customers = [CustomerMonths::whole(&t, "c1"), CustomerMonths::whole(&t, "c2"), CustomerMonths::whole(&t, "nobody")];

    assert_eq!(store.folded_config(&t, 0).await?, None);
    commit(FoldWrites {
        segments: vec![segment("c1", T0, Some(touched("e1", T0))), segment("c1", month(1), Some(with_conversion.clone())), segment("c2", T0, Some(touched("e2", T0)))],
        orders: vec![OrderStateWrite { tenant: t.clone(), order_id: "o1".into(), state: order_state.clone() }],
        unregistered: vec![mark("m1", "c1"), mark("m1", "c2"), mark("m2", "c1")],
        registered: Vec::new(),
        unmarked: Vec::new(),
        folded_configs: vec![TenantConfig::defaults(&t)],
        exposures: vec![exposure("spring", "c1"), exposure("spring", "c2"), exposure("summer", "c2")],
    })
    .await?;
    let c1 = CustomerState { segments: BTreeMap::from([(segment_of(T0), touched("e1", T0)), (segment_of(month(1)), with_conversion)]) };
    let c2 = CustomerState { segments: BTreeMap::from([(segment_of(T0), touched("e2", T0))]) };
    assert_eq!(store.customer_months(&customers).await?, [c1.clone(), c2.clone(), CustomerState::default()]);
    let span = |customer_id: &str, from: Millis, to: Millis| CustomerMonths { tenant: t.clone(), customer_id: customer_id.into(), from, to };
    let months = |state: &CustomerState, wanted: &[Millis]| CustomerState {
        segments: state.segments.iter().filter(|(m, _)| wanted.contains(m)).map(|(m, s)| (*m, s.clone())).collect(),
    };
    let spans = [span("c1", T0, T0), span("c1", month(1), month(1) + 5), span("c1", Millis::MIN, Millis::MAX), span("c1", T0 + 1, T0), span("c2", month(1), month(2))];
    let got = store.customer_months(&spans).await?;
    let want = [
        months(&c1, &[segment_of(T0)]),
        months(&c1, &[segment_of(month(1))]),
        c1.clone(),
        CustomerState::default(),
        CustomerState::default(),
    ];
    assert_eq!(got, want, "months by span, in input order");
    let mut all = store.tenant_customer_states(&t).await?;
    all.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(all, [("c1".to_owned(), c1.clone()), ("c2".to_owned(), c2.clone())]);
    // Exposed customers with their whole states, per campaign; an exposure written again
    // (a step redone, a recompute) changes nothing.
    commit(FoldWrites { exposures: vec![exposure("spring", "c1")], ..FoldWrites::default() }).await?;
    let mut spring = crate::ReportReads::exposed_customer_states(store, &t, "spring").await?;
    spring.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(spring, all, "both customers, their whole states");
    let summer = crate::ReportReads::exposed_customer_states(store, &t, "summer").await?;
    assert_eq!(summer, [("c2".to_owned(), c2.clone())]);
    assert!(crate::ReportReads::exposed_customer_states(store, &t, "autumn").await?.is_empty());
    assert_eq!(store.order_states(0, &[(t.clone(), "o1".into()), (t.clone(), "o2".into())]).await?, [order_state.clone(), OrderState::default()]);
    assert_eq!(store.tenant_order_states(&t, 0).await?, [("o1".to_owned(), order_state)]);
    let mut marked = store.unregistered_customers(&t, "m1").await?;
    marked.sort();
    assert_eq!(marked, ["c1", "c2"]);
    assert_eq!(store.folded_config(&t, 0).await?, Some(TenantConfig::defaults(&t)));

    // A month removed, m1 registered (the marks it re-credited go, and one under it in the
    // same commit is not written), a newer folded config.
    let mut newer = TenantConfig::defaults(&t);
    newer.version = 2;
    commit(FoldWrites {
        segments: vec![segment("c1", T0, None)],
        unregistered: vec![mark("m1", "c3"), mark("m3", "c2")],
        registered: vec![(t.clone(), "m1".into())],
        unmarked: vec![mark("m1", "c1"), mark("m1", "c2")],
        folded_configs: vec![newer.clone()],
        ..FoldWrites::default()
    })
    .await?;
    let c1 = CustomerState { segments: c1.segments.into_iter().filter(|(m, _)| *m != segment_of(T0)).collect() };
    assert_eq!(store.customer_months(&customers).await?, [c1, c2, CustomerState::default()]);
    assert_eq!(store.unregistered_customers(&t, "m1").await?, Vec::<String>::new());
    assert_eq!(store.unregistered_customers(&t, "m2").await?, ["c1"]);
    assert_eq!(store.unregistered_customers(&t, "m3").await?, ["c2"]);
    assert_eq!(store.folded_config(&t, 0).await?, Some(newer));
    Ok(())
}

/// Many customers and orders in one commit and one read: a backend that reads them in
/// groups must return every one, each its own, in input order.
pub async fn fold_state_of_many_customers(store: &dyn Store) -> Result<()> {
    // Over a hundred a partition on a backend with 16 partitions a tenant.
    const N: usize = 2_500;
    let t = tenant("fold_many");
    let shard = log_shard(&t);
    let customer = |i: usize| format!("c{i}");
    let state_of = |i: usize| Segment { touches: vec![touch(&t, &format!("e{i}"), "m1", &customer(i), T0 + i as i64)], conversions: BTreeMap::new() };
    let order_of = |i: usize| OrderState { records: vec![order(&t, &format!("p{i}"), &format!("o{i}"), "PLACED", T0 + i as i64)], facts: BTreeMap::new() };
    let fold = FoldWrites {
        segments: (0..N).map(|i| SegmentWrite { tenant: t.clone(), customer_id: customer(i), month: segment_of(T0), segment: Some(state_of(i)) }).collect(),
        orders: (0..N).map(|i| OrderStateWrite { tenant: t.clone(), order_id: format!("o{i}"), state: order_of(i) }).collect(),
        ..FoldWrites::default()
    };
    let processed = store.resume_shard(shard).await?;
    store.commit_attribution(AttributionCommit { shard, after: processed, processed, fold, ..AttributionCommit::default() }).await?;
    // Every customer, one of them twice with another span, one unknown; in reverse order.
    let mut spans: Vec<CustomerMonths> = (0..N).rev().map(|i| CustomerMonths::whole(&t, &customer(i))).collect();
    spans.push(CustomerMonths { tenant: t.clone(), customer_id: customer(7), from: T0 + 31 * DAY_MS, to: T0 + 62 * DAY_MS });
    spans.push(CustomerMonths::whole(&t, "nobody"));
    let got = store.customer_months(&spans).await?;
    for (i, state) in (0..N).rev().zip(&got) {
        assert_eq!(state.segments, BTreeMap::from([(segment_of(T0), state_of(i))]), "customer {i}");
    }
    assert_eq!(got[N..], [CustomerState::default(), CustomerState::default()]);
    let orders: Vec<(String, String)> = (0..=N).rev().map(|i| (t.clone(), format!("o{i}"))).collect();
    let got = store.order_states(0, &orders).await?;
    assert_eq!(got[0], OrderState::default(), "the last order was never written");
    for (i, state) in (0..N).rev().zip(&got[1..]) {
        assert_eq!(*state, order_of(i), "order {i}");
    }
    Ok(())
}

pub async fn commit_moves_processed_forward(store: &dyn Store) -> Result<()> {
    let t = tenant("commit_processed");
    let shard = log_shard(&t);
    let before = head(store, &t).await?;
    let records = (0..3).map(|i| Record::Touch(touch(&t, &format!("e{i}"), "m1", "c1", T0))).collect();
    store.ingest(records).await?;
    let seqs: Vec<u64> = tenant_log(store, &t, before).await?.iter().map(|entry| entry.seq).collect();
    let [_, s2, s3] = seqs[..] else { panic!("expected 3 log entries, got {seqs:?}") };
    let start = store.resume_shard(shard).await?;
    let step = |after, processed| AttributionCommit { shard, after, processed, ..AttributionCommit::default() };

    store.commit_attribution(step(start, s2)).await?;
    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, s2);
    let pending = store.read_log(shard, s2, 1).await?;
    assert_eq!(status.oldest_pending_at, pending.first().map(|entry| entry.appended_at));
    assert_eq!(tenant_log(store, &t, status.processed).await?.iter().map(|e| e.seq).collect::<Vec<_>>(), [s3]);

    store.commit_attribution(step(s2, s3)).await?;
    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, s3);
    assert!(status.head >= s3, "the head fell back to {} after the commit", status.head);
    assert!(tenant_log(store, &t, status.processed).await?.is_empty());
    if status.head == s3 {
        assert_eq!(status.oldest_pending_at, None);
    }
    store.ingest(vec![Record::Touch(touch(&t, "e3", "m1", "c1", T0))]).await?;
    let head = head(store, &t).await?;
    let appended: Vec<u64> = tenant_log(store, &t, s3).await?.iter().map(|e| e.seq).collect();
    assert!(matches!(appended[..], [seq] if seq > s3 && seq <= head), "appended at {appended:?} after processing up to {s3}");
    Ok(())
}

/// The log is the archive: committing entries leaves them readable, in order, for the
/// replays that recomputes do. (Backends that trim processed entries declare this check
/// left out.)
pub async fn commits_keep_the_log_as_the_archive(store: &dyn Store) -> Result<()> {
    let t = tenant("log_archive");
    let shard = log_shard(&t);
    let before = head(store, &t).await?;
    let records: Vec<Record> = (0..3).map(|i| Record::Touch(touch(&t, &format!("e{i}"), "m1", "c1", T0 + i))).collect();
    store.ingest(records.clone()).await?;
    let entries = tenant_log(store, &t, before).await?;
    let last = entries.last().map_or(before, |entry| entry.seq);
    let start = store.resume_shard(shard).await?;
    store.commit_attribution(AttributionCommit { shard, after: start, processed: last, ..AttributionCommit::default() }).await?;
    assert_eq!(store.log_status(shard).await?.processed, last);
    let kept = tenant_log(store, &t, before).await?;
    assert_eq!(kept, entries, "every committed entry is still in the log");
    let payloads: Vec<LogPayload> = records.into_iter().map(LogPayload::Record).collect();
    assert_eq!(kept.into_iter().map(|entry| entry.payload).collect::<Vec<_>>(), payloads);
    Ok(())
}

/// Two workers that read the same entries cannot both commit them: the second commit
/// names a processed position that is no longer the stored one.
pub async fn stale_commits_are_fenced(store: &dyn Store) -> Result<()> {
    let t = tenant("fenced");
    let shard = log_shard(&t);
    let opened = Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened };
    store.ingest(vec![Record::Touch(touch(&t, "e1", "m1", "c1", T0))]).await?;
    let start = store.resume_shard(shard).await?;
    let entries = store.read_log(shard, start, 10).await?;
    let last = entries.last().map_or(start, |entry| entry.seq);
    assert!(last > start, "the ingested touch is not in the log");
    let campaign_opened = CampaignCell::Touch { kind: TouchKind::Opened };
    let step = AttributionCommit {
        shard,
        after: start,
        processed: last,
        rollups: vec![delta(&t, T0, &opened, 1, 0)],
        campaign_rollups: vec![campaign_delta(&t, "c1", T0, &campaign_opened, 1, 0)],
        pending: vec![pending_delta(&t, "m2", T0, &campaign_opened, 1)],
        ..AttributionCommit::default()
    };

    store.commit_attribution(step.clone()).await?;
    let second = store.commit_attribution(step.clone()).await;
    assert!(matches!(second, Err(StoreError::Fenced { shard: s }) if s == shard), "a repeated commit applied: {second:?}");
    let ahead = AttributionCommit { after: last + 1, processed: last + 1, ..step };
    assert!(matches!(store.commit_attribution(ahead).await, Err(StoreError::Fenced { .. })), "a commit from the future applied");

    assert_eq!(store.log_status(shard).await?.processed, last);
    let hour = Granularity::Hour.bucket(T0);
    assert_eq!(store.rollups(&t, Granularity::Hour, hour, hour + HOUR_MS).await?, cells(&[(&opened, 1, 0)]), "fenced commits wrote");
    let month = Granularity::Month.bucket(T0);
    let by_campaign = store.campaign_rollups(&t, None, CellKinds::All, Granularity::Month, month, month + 1).await?;
    assert_eq!(by_campaign, campaigns(&[("c1", &campaign_opened, 1, 0)]), "fenced commits wrote campaign counters");
    assert_eq!(store.pending_counters(&t, 0, "m2").await?, vec![(hour, campaign_opened, Tally::ONE)], "fenced commits wrote");
    Ok(())
}

/// A step that could not process some of its entries sets them aside in its commit: the
/// processed position moves past them, they are counted and listed exactly as they were
/// read, and the step's other entries are applied as usual.
pub async fn commit_with_set_aside_entries_processes_the_rest(store: &dyn Store) -> Result<()> {
    let t = tenant("set_aside_commit");
    let shard = log_shard(&t);
    let counted_before = store.log_status(shard).await?.set_aside;
    let records = vec![
        Record::Touch(touch(&t, "e1", "m1", "c1", T0)),
        Record::Order(order(&t, "e2", "o1", "PAID", T0 + 1)),
        Record::Order(order(&t, "e3", "o2", "PAID", T0 + 2)),
    ];
    store.ingest(records).await?;
    store.append_recompute(&t).await?;
    store.ingest(vec![Record::Touch(touch(&t, "e4", "m1", "c1", T0 + 3))]).await?;
    let (start, entries) = pending(store, shard).await?;
    let [_, bad_order, _, recompute, last] = &entries[..] else { panic!("expected 5 log entries, got {entries:?}") };
    assert_eq!(recompute.payload, LogPayload::Recompute { tenant: t.clone() });

    let opened = Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened };
    let converted = Cell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch, msg_hash: "m1".into() };
    let credit = Credit { rule: Rule::LastTouch, msg_hash: Some("m1".into()), touch_event_id: Some("e1".into()) };
    let o2 = Conversion { credit, ..conversion(&t, "orders", "o2", "c1", T0 + 2, None) };
    let set_aside = vec![
        aside(bad_order, "order o1: amount overflows the rollup", T0 + DAY_MS),
        aside(recompute, "recompute: goal \"orders\" names no event — failed 5 times alone", T0 + DAY_MS + 1),
    ];
    let step = AttributionCommit {
        shard,
        after: start,
        processed: last.seq,
        conversions: vec![change(None, Some(&o2))],
        rollups: vec![delta(&t, T0, &opened, 2, 0), delta(&t, T0, &converted, 1, 19_990_000)],
        set_aside: set_aside.clone(),
        ..AttributionCommit::default()
    };
    store.commit_attribution(step).await?;

    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, last.seq, "set-aside entries held the processed position back");
    assert_eq!(status.set_aside, counted_before + 2);
    let newest_first: Vec<SetAside> = set_aside.into_iter().rev().collect();
    assert_eq!(store.set_aside(shard, 2).await?, newest_first, "the entries set aside, highest position first");
    assert!(store.read_log(shard, status.processed, 1000).await?.iter().all(|entry| entry.seq > last.seq), "read on after the processed position");
    assert_eq!(store.conversion(&t, "orders", "o2").await?, Some(o2), "the step's conversion");
    let hour = Granularity::Hour.bucket(T0);
    let rollups = store.rollups(&t, Granularity::Hour, hour, hour + HOUR_MS).await?;
    assert_eq!(rollups, cells(&[(&opened, 2, 0), (&converted, 1, 19_990_000)]), "the step's rollups");
    Ok(())
}

/// A worker that lost its shard sets nothing aside: its commit is fenced as a whole.
pub async fn fenced_commits_set_nothing_aside(store: &dyn Store) -> Result<()> {
    let t = tenant("set_aside_fenced");
    let shard = log_shard(&t);
    store.ingest(vec![Record::Order(order(&t, "e1", "o1", "PAID", T0)), Record::Order(order(&t, "e2", "o2", "PAID", T0))]).await?;
    let (start, entries) = pending(store, shard).await?;
    let [first, second] = &entries[..] else { panic!("expected 2 log entries, got {entries:?}") };
    let counted_before = store.log_status(shard).await?.set_aside;
    let listed_before = store.set_aside(shard, 100).await?;

    // The worker that took the shard over commits first: it credits o1.
    let o1 = conversion(&t, "orders", "o1", "c1", T0, None);
    let winner = AttributionCommit {
        shard,
        after: start,
        processed: second.seq,
        conversions: vec![change(None, Some(&o1))],
        ..AttributionCommit::default()
    };
    store.commit_attribution(winner).await?;
    // The one that lost the lease read the same entries: it set o1 aside and credited o2.
    let o2 = conversion(&t, "orders", "o2", "c1", T0, None);
    let stale = AttributionCommit {
        shard,
        after: start,
        processed: second.seq,
        conversions: vec![change(None, Some(&o2))],
        set_aside: vec![aside(first, "order o1: unknown currency", T0)],
        ..AttributionCommit::default()
    };
    let fenced = store.commit_attribution(stale).await;
    assert!(matches!(fenced, Err(StoreError::Fenced { shard: s }) if s == shard), "a stale commit applied: {fenced:?}");

    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, second.seq);
    assert_eq!(status.set_aside, counted_before, "a fenced commit counted set-aside entries");
    assert_eq!(store.set_aside(shard, 100).await?, listed_before, "a fenced commit set entries aside");
    assert_eq!(store.conversion(&t, "orders", "o2").await?, None, "a fenced commit wrote its conversion");
    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(o1));
    Ok(())
}

/// A commit sets aside only entries of its own step, `(after, processed]`: one that names
/// another position is refused with an error, and applies nothing.
pub async fn set_aside_outside_the_step_is_refused(store: &dyn Store) -> Result<()> {
    let t = tenant("set_aside_outside");
    let shard = log_shard(&t);
    let opened = Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened };
    store.ingest((0..3).map(|i| Record::Touch(touch(&t, &format!("e{i}"), "m1", "c1", T0))).collect()).await?;
    let (start, entries) = pending(store, shard).await?;
    let [s1, s2, s3] = &entries[..] else { panic!("expected 3 log entries, got {entries:?}") };
    store.commit_attribution(AttributionCommit { shard, after: start, processed: s1.seq, ..AttributionCommit::default() }).await?;
    let status_before = store.log_status(shard).await?;
    let listed_before = store.set_aside(shard, 100).await?;

    let step = |after: u64, processed: u64, entry: &LogEntry| AttributionCommit {
        shard,
        after,
        processed,
        rollups: vec![delta(&t, T0, &opened, 1, 0)],
        set_aside: vec![aside(entry, "touch: no such message", T0)],
        ..AttributionCommit::default()
    };
    let outside = [
        ("the step's `after` (processed before)", step(s1.seq, s2.seq, s1)),
        ("past the step's `processed`", step(s1.seq, s2.seq, s3)),
        ("a step that consumed no entries", step(s1.seq, s1.seq, s2)),
    ];
    for (case, commit) in outside {
        let refused = store.commit_attribution(commit).await;
        assert!(refused.is_err(), "an entry set aside at {case} was accepted");
        assert_eq!(store.log_status(shard).await?, status_before, "a refused commit ({case}) changed the shard's status");
        assert_eq!(store.set_aside(shard, 100).await?, listed_before, "a refused commit ({case}) set entries aside");
    }
    let hour = Granularity::Hour.bucket(T0);
    let rollups = || store.rollups(&t, Granularity::Hour, hour, hour + HOUR_MS);
    assert_eq!(rollups().await?, Cells::default(), "a refused commit wrote its rollups");

    // The same step, setting aside an entry of its own, applies.
    store.commit_attribution(step(s1.seq, s3.seq, s2)).await?;
    let status = store.log_status(shard).await?;
    assert_eq!((status.processed, status.set_aside), (s3.seq, status_before.set_aside + 1));
    assert_eq!(store.set_aside(shard, 1).await?, [aside(s2, "touch: no such message", T0)]);
    assert_eq!(rollups().await?, cells(&[(&opened, 1, 0)]));
    Ok(())
}
