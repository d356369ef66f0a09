//! Checks of [`IngestLog`](crate::IngestLog): dedup, the log's order, positions and paging,
//! recompute entries, draining, and the list of set-aside entries.

use super::{T0, aside, commit_logged, event, head, message, now_millis, order, pending, records, sorted, tenant, tenant_log, touch};
use crate::{AttributionCommit, IngestOutcome, LOG_SHARDS, LogPayload, Result, SetAside, Store, TraceParent, log_shard};
use touchstone_core::model::{BadgeAction, BadgeEvent, BadgeSource, Channel, Message, OrderRecord, Record, Touch};
use touchstone_core::rollup::HOUR_MS;

use IngestOutcome::{Accepted, Duplicate};

pub async fn dedup_first_arrival_stands(store: &dyn Store) -> Result<()> {
    let t = tenant("dedup_first");
    let first = touch(&t, "e1", "m1", "c1", T0);
    let retry = Touch { msg_hash: "m2".into(), ts: T0 + 5, ..first.clone() };
    let before = head(store, &t).await?;

    let outcomes = store.ingest(vec![Record::Touch(first.clone())]).await?;
    assert_eq!(outcomes, [Accepted]);
    let after = head(store, &t).await?;
    assert!(after > before, "head {after} did not move past {before}");
    // An event_id is accepted once per tenant whatever the record's kind.
    let same_id_order = order(&t, "e1", "o1", "PLACED", T0);
    let outcomes = store.ingest(vec![Record::Touch(retry), Record::Order(same_id_order)]).await?;
    assert_eq!(outcomes, [Duplicate, Duplicate]);

    commit_logged(store, &t, before).await?;
    assert_eq!(store.touches_between(&t, T0 - HOUR_MS, T0 + HOUR_MS).await?, [first.clone()], "the duplicate was stored");
    assert!(store.tenant_orders(&t).await?.is_empty(), "the duplicate order was stored");
    assert_eq!(records(&tenant_log(store, &t, before).await?), [LogPayload::Record(Record::Touch(first))]);
    Ok(())
}

pub async fn dedup_within_one_batch(store: &dyn Store) -> Result<()> {
    let t = tenant("dedup_batch");
    let a = touch(&t, "a", "m1", "c1", T0);
    let a_again = Touch { ts: T0 + 1, ..a.clone() };
    let b = touch(&t, "b", "m1", "c1", T0 + 2);
    let before = head(store, &t).await?;

    let batch = vec![Record::Touch(a.clone()), Record::Touch(a_again), Record::Touch(b.clone())];
    let outcomes = store.ingest(batch).await?;
    assert_eq!(outcomes, [Accepted, Duplicate, Accepted]);
    let head = head(store, &t).await?;
    commit_logged(store, &t, before).await?;
    assert_eq!(sorted(store.touches_between(&t, T0 - 10, T0 + 10).await?), [a.clone(), b.clone()]);
    let log = tenant_log(store, &t, before).await?;
    assert_eq!(records(&log), [LogPayload::Record(Record::Touch(a)), LogPayload::Record(Record::Touch(b))]);
    assert!(log.iter().all(|entry| entry.seq <= head), "an entry of the call lies past the head it returned ({head})");
    Ok(())
}

/// A call far larger than one dedup read: a backend that checks ids in groups must check
/// every group.
pub async fn dedup_of_a_large_call(store: &dyn Store) -> Result<()> {
    let t = tenant("dedup_large");
    let id = |i: usize| format!("large-{i}");
    let first: Vec<Record> = (0..2_000).map(|i| Record::Touch(touch(&t, &id(i), "m1", "c1", T0 + i as i64))).collect();
    assert!(store.ingest(first).await?.iter().all(|outcome| *outcome == Accepted));
    // Every earlier id again (some with another time), 500 new ones between them.
    let again: Vec<Record> = (0..2_500).map(|i| Record::Touch(touch(&t, &id((i * 7) % 2_500), "m1", "c2", T0 + 9))).collect();
    let outcomes = store.ingest(again).await?;
    for (i, outcome) in outcomes.iter().enumerate() {
        let expected = if (i * 7) % 2_500 < 2_000 { Duplicate } else { Accepted };
        assert_eq!(*outcome, expected, "record {i} (id {})", id((i * 7) % 2_500));
    }
    Ok(())
}

pub async fn dedup_is_per_tenant_and_keys_do_not_collide(store: &dyn Store) -> Result<()> {
    let base = tenant("dedup_tenants");
    // ("…a", "bc") and ("…ab", "c") concatenate to the same bytes; they must stay apart.
    let (t1, t2) = (format!("{base}a"), format!("{base}ab"));
    let in_t1 = touch(&t1, "e1", "m1", "bc", T0);
    let in_t2 = touch(&t2, "e1", "m1", "c", T0);
    // A msg_hash equal to an event_id of the same tenant: different namespaces.
    let same_name_message = message(&t1, "e1", "camp");
    let (before_t1, before_t2) = (head(store, &t1).await?, head(store, &t2).await?);

    let outcomes = store
        .ingest(vec![Record::Touch(in_t1.clone()), Record::Touch(in_t2.clone()), Record::Message(same_name_message.clone())])
        .await?;
    assert_eq!(outcomes, [Accepted, Accepted, Accepted]);
    commit_logged(store, &t1, before_t1).await?;
    commit_logged(store, &t2, before_t2).await?;
    assert_eq!(store.touches_between(&t1, T0 - HOUR_MS, T0 + HOUR_MS).await?, [in_t1]);
    assert_eq!(store.touches_between(&t2, T0 - HOUR_MS, T0 + HOUR_MS).await?, [in_t2]);
    let found = store.messages(&t1, &["e1".to_owned()]).await?;
    assert_eq!(found.get("e1"), Some(&same_name_message));
    Ok(())
}

pub async fn messages_dedup_by_msg_hash(store: &dyn Store) -> Result<()> {
    let t = tenant("messages_dedup");
    let other = tenant("messages_dedup_other");
    let first = message(&t, "m1", "spring");
    let second = Message { campaign_id: "summer".into(), channel: Channel::Email, ..first.clone() };
    let elsewhere = message(&other, "m1", "winter");

    let outcomes = store.ingest(vec![Record::Message(first.clone()), Record::Message(second)]).await?;
    assert_eq!(outcomes, [Accepted, Duplicate]);
    let outcomes = store.ingest(vec![Record::Message(elsewhere.clone())]).await?;
    assert_eq!(outcomes, [Accepted], "the same msg_hash in another tenant is its own message");

    let asked = ["m1", "m2", "m1"].map(str::to_owned);
    let found = store.messages(&t, &asked).await?;
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found.get("m1"), Some(&first));
    assert_eq!(store.messages(&other, &asked).await?.get("m1"), Some(&elsewhere));
    assert!(store.messages(&t, &[]).await?.is_empty());
    Ok(())
}

pub async fn every_record_kind_is_logged_as_ingested(store: &dyn Store) -> Result<()> {
    let t = tenant("record_kinds");
    let mut plain_event = event(&t, "e2", "view", T0);
    plain_event.value_micros = None;
    plain_event.msg_hash = None;
    let badge = BadgeEvent {
        tenant: t.clone(),
        event_id: "e5".into(),
        customer_id: "c1".into(),
        badge_id: "gold".into(),
        action: BadgeAction::Earned,
        ts: T0,
        source: BadgeSource::Rule,
        reason: Some("10 check-ins".into()),
    };
    let ingested = vec![
        Record::Message(message(&t, "m1", "")),
        Record::Touch(touch(&t, "e1", "m1", "c1", T0)),
        Record::Event(event(&t, "e3", "checkin", T0)),
        Record::Event(plain_event),
        Record::Order(OrderRecord { msg_hash: Some("m1".into()), ..order(&t, "e4", "o1", "PAID", T0) }),
        Record::Badge(badge.clone()),
    ];
    let before = head(store, &t).await?;
    let outcomes = store.ingest(ingested.clone()).await?;
    assert_eq!(outcomes, [Accepted; 6]);
    let logged = tenant_log(store, &t, before).await?;
    assert_eq!(records(&logged), ingested.into_iter().map(LogPayload::Record).collect::<Vec<_>>());
    let outcomes = store.ingest(vec![Record::Badge(BadgeEvent { badge_id: "silver".into(), ..badge })]).await?;
    assert_eq!(outcomes, [Duplicate], "badge events dedup by event_id too");
    Ok(())
}

pub async fn log_order_head_and_paging(store: &dyn Store) -> Result<()> {
    let t = tenant("log_order");
    let all: Vec<Record> = (0..5).map(|i| Record::Touch(touch(&t, &format!("e{i}"), "m1", "c1", T0 - i))).collect();
    let before = head(store, &t).await?;
    let clock_before = now_millis();

    store.ingest(all[..3].to_vec()).await?;
    let first_head = head(store, &t).await?;
    store.ingest(all[3..].to_vec()).await?;
    let second_head = head(store, &t).await?;
    let clock_after = now_millis();
    assert!(first_head >= before + 3 && second_head >= first_head + 2, "heads {before} → {first_head} → {second_head}");

    let log = tenant_log(store, &t, before).await?;
    assert_eq!(records(&log), all.iter().cloned().map(LogPayload::Record).collect::<Vec<_>>(), "input order");
    assert!(log.iter().all(|entry| entry.seq > before && entry.seq <= second_head));
    // The store's clock may be another machine's: allow a minute of skew.
    for entry in &log {
        assert!((clock_before - 60_000..=clock_after + 60_000).contains(&entry.appended_at), "appended_at {}", entry.appended_at);
    }
    assert!(head(store, &t).await? >= second_head);

    // Paging by hand: `after` is exclusive, `limit` caps the page.
    let shard = log_shard(&t);
    let first_seq = log[0].seq;
    let page = store.read_log(shard, first_seq - 1, 2).await?;
    assert_eq!(page.len(), 2);
    assert_eq!(page[0], log[0]);
    assert!(page[1].seq > first_seq);
    let next = store.read_log(shard, page[1].seq, 1).await?;
    assert_eq!(next.len(), 1);
    assert!(next[0].seq > page[1].seq);
    assert!(store.read_log(shard, before, 0).await?.is_empty(), "limit 0");
    let last_seq = log[4].seq;
    assert!(tenant_log(store, &t, last_seq).await?.is_empty(), "entries after the last one of this tenant");
    Ok(())
}

/// Each entry carries the trace of the call that appended it, and only that call's.
pub async fn log_entries_carry_the_trace_of_their_ingest_call(store: &dyn Store) -> Result<()> {
    let t = tenant("traced");
    let before = head(store, &t).await?;
    let traced = TraceParent::new([0xab; 16], [0xcd; 8], 1);
    let first = Record::Touch(touch(&t, "e1", "m1", "c1", T0));
    let outcomes = store.ingest_traced(vec![first.clone(), Record::Touch(touch(&t, "e2", "m1", "c1", T0 + 1))], traced).await?;
    assert_eq!(outcomes, [Accepted, Accepted]);
    // A retry under another trace changes nothing; an untraced call's entries have none.
    let other = TraceParent::new([0x11; 16], [0x22; 8], 0);
    assert_eq!(store.ingest_traced(vec![first], other).await?, [Duplicate]);
    store.ingest(vec![Record::Touch(touch(&t, "e3", "m1", "c1", T0 + 2))]).await?;
    store.append_recompute(&t).await?;
    let traces: Vec<Option<TraceParent>> = tenant_log(store, &t, before).await?.into_iter().map(|entry| entry.trace).collect();
    assert_eq!(traces, [traced, traced, None, None]);
    Ok(())
}

pub async fn recompute_entries_are_appended(store: &dyn Store) -> Result<()> {
    let t = tenant("recompute");
    let first = store.append_recompute(&t).await?;
    let second = store.append_recompute(&t).await?;
    assert_eq!((first.shard, second.shard), (log_shard(&t), log_shard(&t)));
    assert!(second.seq > first.seq, "positions {first:?}, {second:?}");
    let log = tenant_log(store, &t, first.seq - 1).await?;
    let expected = LogPayload::Recompute { tenant: t.clone() };
    assert_eq!(
        log.iter().map(|e| (e.seq, e.payload.clone())).collect::<Vec<_>>(),
        [(first.seq, expected.clone()), (second.seq, expected)]
    );
    Ok(())
}

/// Positions count per shard: appending to one shard leaves the others' heads alone.
pub async fn log_shards_have_their_own_positions(store: &dyn Store) -> Result<()> {
    let base = tenant("shards");
    let t1 = format!("{base}-a");
    let t2 = (0..).map(|i| format!("{base}-b{i}")).find(|t| log_shard(t) != log_shard(&t1)).expect("some other shard");
    assert!((0..LOG_SHARDS).contains(&log_shard(&t1)));
    let other_before = head(store, &t2).await?;
    let before = head(store, &t1).await?;
    store.ingest((0..3).map(|i| Record::Touch(touch(&t1, &format!("e{i}"), "m1", "c1", T0))).collect()).await?;
    assert_eq!(head(store, &t1).await?, before + 3, "three records, three positions");
    assert_eq!(head(store, &t2).await?, other_before, "another shard's head moved");
    assert!(tenant_log(store, &t1, before).await?.iter().all(|entry| entry.seq > before && entry.seq <= before + 3));
    assert!(tenant_log(store, &t2, 0).await?.is_empty());
    Ok(())
}

/// Committing whatever `read_log` returns, until it returns nothing, brings the processed
/// position up to the head, also when the last positions hold only duplicates: otherwise a
/// `--wait` for the head would never end.
pub async fn draining_the_log_reaches_the_head_past_duplicates(store: &dyn Store) -> Result<()> {
    let t = tenant("drain");
    let shard = log_shard(&t);
    let records: Vec<Record> = (0..3).map(|i| Record::Touch(touch(&t, &format!("e{i}"), "m1", "c1", T0))).collect();
    store.ingest(records.clone()).await?;
    // The positions alone, as flow control reads them, agree with the status.
    let status = store.log_status(shard).await?;
    assert!(status.processed < status.head);
    let positions = store.log_positions(shard).await?;
    assert_eq!((positions.head, positions.processed), (status.head, status.processed));
    drain(store, shard).await?;
    assert_eq!(store.ingest(records).await?, [Duplicate; 3]);
    drain(store, shard).await?;
    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, status.head, "positions left behind after draining");
    assert_eq!(status.oldest_pending_at, None);
    let positions = store.log_positions(shard).await?;
    assert_eq!((positions.head, positions.processed), (status.head, status.processed));
    Ok(())
}

/// Commits (empty) steps over everything `read_log` returns until it returns nothing.
async fn drain(store: &dyn Store, shard: u32) -> Result<()> {
    loop {
        let after = store.resume_shard(shard).await?;
        let Some(last) = store.read_log(shard, after, 100).await?.last().map(|entry| entry.seq) else {
            return Ok(());
        };
        store.commit_attribution(AttributionCommit { shard, after, processed: last, ..AttributionCommit::default() }).await?;
    }
}

/// `set_aside` lists a shard's set-aside entries, the highest position first and at most
/// `limit` of them; `log_status` counts every entry the shard ever set aside. A shard that
/// set nothing aside counts and lists none.
pub async fn set_aside_list_is_per_shard_and_honours_the_limit(store: &dyn Store) -> Result<()> {
    let t = tenant("set_aside_list");
    let shard = log_shard(&t);
    assert_eq!(store.log_status(shard).await?.set_aside, 0, "a new shard counts set-aside entries");
    assert!(store.set_aside(shard, 100).await?.is_empty(), "a new shard lists set-aside entries");
    store.ingest((0..5).map(|i| Record::Touch(touch(&t, &format!("e{i}"), "m1", "c1", T0))).collect()).await?;
    assert_eq!(store.log_status(shard).await?.set_aside, 0, "pending entries counted as set aside");
    assert!(store.set_aside(shard, 100).await?.is_empty(), "pending entries listed as set aside");

    let (start, entries) = pending(store, shard).await?;
    let [e0, _, e2, e3, e4] = &entries[..] else { panic!("expected 5 log entries, got {entries:?}") };
    let (a0, a2, a3) = (aside(e0, "first", T0), aside(e2, "second", T0 + 1), aside(e3, "third", T0 + 2));
    let step = |after: u64, processed: u64, set_aside: Vec<SetAside>| AttributionCommit {
        shard,
        after,
        processed,
        set_aside,
        ..AttributionCommit::default()
    };
    store.commit_attribution(step(start, e2.seq, vec![a0.clone(), a2.clone()])).await?;
    assert_eq!(store.log_status(shard).await?.set_aside, 2);
    store.commit_attribution(step(e2.seq, e4.seq, vec![a3.clone()])).await?;
    let status = store.log_status(shard).await?;
    assert_eq!((status.processed, status.set_aside), (e4.seq, 3), "counted over every commit");

    let newest_first = vec![a3, a2, a0];
    assert_eq!(store.set_aside(shard, 100).await?, newest_first);
    assert_eq!(store.set_aside(shard, 3).await?, newest_first);
    assert_eq!(store.set_aside(shard, 2).await?, newest_first[..2], "limit 2");
    assert_eq!(store.set_aside(shard, 1).await?, newest_first[..1], "limit 1");
    assert!(store.set_aside(shard, 0).await?.is_empty(), "limit 0");

    for other in (0..LOG_SHARDS).filter(|&other| other != shard) {
        assert_eq!(store.log_status(other).await?.set_aside, 0, "shard {other} counts what shard {shard} set aside");
        assert!(store.set_aside(other, 100).await?.is_empty(), "shard {other} lists what shard {shard} set aside");
    }
    Ok(())
}
