//! Checks of [`BadgeStore`](crate::BadgeStore): the badge book's compare-and-set and the
//! `RederiveBadges` entry it appends, a customer's badge partition (stored events from
//! ingest, derived rows from commits, pages between bounds) and activity.

use super::{T0, commit_logged, event, order, tenant, tenant_log};
use crate::{
    AttributionCommit, BadgeFeedEntry, BadgeRowChange, BadgeRows, BadgeStatDelta, FeedChange, FeedPosition, HoldingChange, IngestOutcome, LogMark,
    LogPayload, Result, StatLevel, Store, StoreError, log_shard,
};
use touchstone_core::badge_stats::BadgeTally;
use touchstone_core::badges::{BadgeBook, BadgeDefinition};
use touchstone_core::model::{BadgeAction, BadgeEvent, BadgeSource, Record};

fn badge_event(tenant: &str, event_id: &str, customer_id: &str, badge_id: &str, ts: i64) -> BadgeEvent {
    BadgeEvent {
        tenant: tenant.into(),
        event_id: event_id.into(),
        customer_id: customer_id.into(),
        badge_id: badge_id.into(),
        action: BadgeAction::Earned,
        ts,
        source: BadgeSource::BulkImport,
        reason: Some("attended the launch".into()),
    }
}

/// Ingests `records` of `tenant` and commits them as the step that processes them would:
/// stored badge events are readable once committed.
async fn ingest_committed(store: &dyn Store, tenant: &str, records: Vec<Record>) -> Result<Vec<IngestOutcome>> {
    let before = store.log_status(log_shard(tenant)).await?.head;
    let outcomes = store.ingest(records).await?;
    commit_logged(store, tenant, before).await?;
    Ok(outcomes)
}

pub async fn badge_book_defaults_and_compare_and_set(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_book");
    assert_eq!(store.badge_book(&t).await?, BadgeBook::empty(&t));
    let conflict = |result: Result<LogMark>| matches!(result, Err(StoreError::Conflict { tenant }) if tenant == t);
    let mut book = BadgeBook::empty(&t);
    assert!(conflict(store.save_badge_book(&book).await), "version 0 can never be saved");

    book.version = 1;
    book.save(BadgeDefinition::new("regular", "Regular"), T0).expect("a valid badge");
    let mark = store.save_badge_book(&book).await?;
    assert_eq!(mark.shard, log_shard(&t));
    assert_eq!(store.badge_book(&t).await?, book);
    let log = store.read_log(mark.shard, mark.seq - 1, 1).await?;
    assert_eq!(log.first().map(|e| (e.seq, e.payload.clone())), Some((mark.seq, LogPayload::RederiveBadges { tenant: t.clone() })));

    let mut stale = BadgeBook::empty(&t);
    stale.version = 1;
    assert!(conflict(store.save_badge_book(&stale).await), "a second save of version 1 must lose");
    assert_eq!(store.badge_book(&t).await?, book, "a lost save changed the book");

    book.version = 2;
    book.set_active("regular", false, T0 + 1).expect("saved above");
    store.save_badge_book(&book).await?;
    assert_eq!(store.badge_book(&t).await?, book);
    assert!(store.badge_book(&tenant("badge_book_other")).await?.badges.is_empty());
    Ok(())
}

pub async fn customer_badge_events_are_newest_first_per_customer(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_events");
    let mut first = badge_event(&t, "b1", "c1", "regular", T0);
    let records = vec![
        Record::Badge(first.clone()),
        Record::Badge(badge_event(&t, "b3", "c1", "vip", T0 + 5)),
        // Equal times: event id descending.
        Record::Badge(badge_event(&t, "b2", "c1", "regular", T0 + 5)),
        Record::Badge(badge_event(&t, "b4", "c2", "regular", T0 + 1)),
        // A year later, far past any time bucket.
        Record::Badge(badge_event(&t, "b5", "c1", "vip", T0 + 366 * 86_400_000)),
    ];
    ingest_committed(store, &t, records).await?;
    // A retry with another reason changes nothing: the first arrival stands.
    let mut retry = first.clone();
    retry.reason = Some("changed".into());
    assert_eq!(store.ingest(vec![Record::Badge(retry)]).await?, vec![IngestOutcome::Duplicate]);

    let c1 = store.customer_badge_events(&t, "c1").await?;
    let ids: Vec<&str> = c1.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["b5", "b3", "b2", "b1"]);
    let mut customers = store.tenant_badge_customers(&t).await?;
    customers.sort();
    assert_eq!(customers, ["c1", "c2"]);
    first.reason = Some("attended the launch".into());
    assert_eq!(c1.last(), Some(&first), "every field round-trips");
    assert_eq!(store.customer_badge_events(&t, "c2").await?.len(), 1);
    assert!(store.customer_badge_events(&t, "c3").await?.is_empty());
    assert!(store.customer_badge_events(&tenant("badge_events_other"), "c1").await?.is_empty());
    Ok(())
}

pub async fn customer_activity_holds_the_customers_events_and_orders(store: &dyn Store) -> Result<()> {
    let t = tenant("activity");
    let shard = log_shard(&t);
    let before = store.log_status(shard).await?.head;
    let mut other_customer = event(&t, "e3", "checkin", T0 + 2);
    other_customer.customer_id = "c2".into();
    let counted = vec![
        Record::Event(event(&t, "e1", "checkin", T0)),
        Record::Event(other_customer.clone()),
        Record::Order(order(&t, "o1", "A", "PLACED", T0 + 3)),
        Record::Order(order(&t, "o2", "A", "PAID", T0 + 4)),
    ];
    store.ingest(counted.clone()).await?;
    assert!(store.customer_activity(&t, "c1").await?.is_empty(), "ingest indexes no activity: commits do");
    let seq = tenant_log(store, &t, before).await?.last().map(|e| e.seq).expect("the records' entries");
    let after = store.resume_shard(shard).await?;
    // Indexed twice (a rederive after a step that indexed them): harmless.
    let activity = counted.iter().chain(&counted[..1]).cloned().collect();
    store.commit_attribution(AttributionCommit { shard, after, processed: seq, activity, ..AttributionCommit::default() }).await?;

    let mut got = store.customer_activity(&t, "c1").await?;
    got.sort_by(|a, b| a.id().cmp(b.id()));
    let want: Vec<Record> = counted.iter().filter(|r| !matches!(r, Record::Event(e) if e.customer_id == "c2")).cloned().collect();
    assert_eq!(got, want, "the customer's events and orders, nothing else");
    assert_eq!(store.customer_activity(&t, "c2").await?, vec![Record::Event(other_customer)]);
    assert!(store.customer_activity(&t, "c3").await?.is_empty());
    Ok(())
}

/// More customers than one read names, in every partition a backend may group them by:
/// each gets its own activity, holdings and badge events, whichever read brought them.
pub async fn badge_inputs_of_many_customers(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_inputs_many");
    let shard = log_shard(&t);
    let customers: Vec<String> = (0..1_700).map(|i| format!("c{i}")).collect();
    let mut activity = Vec::new();
    let mut holdings = Vec::new();
    for (i, customer_id) in customers.iter().enumerate() {
        let mut checkin = event(&t, &format!("e{i}"), "checkin", T0 + i as i64);
        checkin.customer_id = customer_id.clone();
        activity.push(Record::Event(checkin));
        let intervals = vec![(T0 + i as i64, T0 + 1_000_000)];
        holdings.push(HoldingChange { tenant: t.clone(), customer_id: customer_id.clone(), badge_id: "vip".into(), intervals });
    }
    // c7's stored badge event, committed by the step that processes its entry; c9's derived
    // entries, one of them removed by a later step.
    let b1 = badge_event(&t, "b1", "c7", "vip", T0);
    store.ingest(vec![Record::Badge(b1.clone())]).await?;
    let after = store.resume_shard(shard).await?;
    let processed = store.log_status(shard).await?.head;
    let derived = |event_id: &str, ts: i64| BadgeEvent { source: BadgeSource::Rule, ..badge_event(&t, event_id, "c9", "vip", ts) };
    let (earn, expiry) = (derived("rule:vip", T0 + 5), derived("expiry:x", T0 + 9));
    let badge_rows = vec![BadgeRowChange::Put(earn.clone()), BadgeRowChange::Put(expiry.clone())];
    let records = vec![Record::Badge(b1)];
    let step = AttributionCommit { shard, after, processed, activity, holdings, badge_rows, records, ..AttributionCommit::default() };
    store.commit_attribution(step).await?;
    let removed = |row: &BadgeEvent| BadgeRowChange::Delete { tenant: t.clone(), customer_id: "c9".into(), ts: row.ts, event_id: row.event_id.clone() };
    let later = derived("rule:vip", T0 + 7);
    let badge_rows = vec![removed(&earn), removed(&expiry), BadgeRowChange::Put(later.clone())];
    store.commit_attribution(AttributionCommit { shard, after: processed, processed, badge_rows, ..AttributionCommit::default() }).await?;

    // Every third customer asked with activity, one twice, one unknown.
    let mut asked: Vec<(String, String, bool)> = customers.iter().enumerate().map(|(i, c)| (t.clone(), c.clone(), i % 3 == 0)).collect();
    asked.push((t.clone(), "c3".into(), true));
    asked.push((t.clone(), "nobody".into(), true));
    let inputs = store.badge_inputs_many(&asked).await?;
    assert_eq!(inputs.len(), asked.len());
    for ((_, customer_id, with_activity), got) in asked.iter().zip(&inputs) {
        let Some(i) = customer_id.strip_prefix('c').and_then(|n| n.parse::<i64>().ok()) else {
            assert_eq!((got.activity.len(), got.holdings.len(), got.events.len()), (0, 0, 0), "{customer_id}");
            continue;
        };
        let ids: Vec<&str> = got.activity.iter().map(|r| r.id()).collect();
        assert_eq!(ids, if *with_activity { vec![format!("e{i}")] } else { vec![] }, "{customer_id}");
        let held: Vec<(&String, &Vec<(i64, i64)>)> = got.holdings.iter().collect();
        assert_eq!(held, [(&"vip".to_owned(), &vec![(T0 + i, T0 + 1_000_000)])], "{customer_id}");
        let events: Vec<(&str, i64)> = got.events.iter().map(|e| (e.event_id.as_str(), e.ts)).collect();
        let want = match i {
            7 => vec![("b1", T0)],
            // The earn moved to a later time, the expiry is gone.
            9 => vec![("rule:vip", T0 + 7)],
            _ => vec![],
        };
        assert_eq!(events, want, "{customer_id}");
        if i == 9 {
            assert_eq!(got.events, [later.clone()]);
        }
    }
    Ok(())
}

pub async fn badge_rows_page_newest_first_between_bounds(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_rows");
    // Equal times with ids of different lengths: event ids order as strings ("b10" < "b9").
    let ids = ["b9", "b10", "a", "zz", "b1"];
    let records = ids.iter().map(|id| Record::Badge(badge_event(&t, id, "c1", "vip", T0 + 1))).chain([
        Record::Badge(badge_event(&t, "early", "c1", "vip", T0)),
        Record::Badge(badge_event(&t, "late", "c1", "vip", T0 + 2)),
    ]);
    ingest_committed(store, &t, records.collect()).await?;
    let t = &t;
    let page = |rows: BadgeRows| async move {
        let found = store.customer_badge_rows(t, "c1", &rows).await?;
        Ok::<Vec<String>, StoreError>(found.into_iter().map(|e| e.event_id).collect())
    };
    let all = || BadgeRows { limit: 100, ..BadgeRows::default() };
    assert_eq!(page(all()).await?, ["late", "zz", "b9", "b10", "b1", "a", "early"]);
    assert_eq!(page(BadgeRows { limit: 3, ..all() }).await?, ["late", "zz", "b9"]);
    let after_b9 = BadgeRows { before: Some((T0 + 1, "b9".into())), limit: 3, ..all() };
    assert_eq!(page(after_b9).await?, ["b10", "b1", "a"]);
    assert_eq!(page(BadgeRows { from: Some(T0 + 1), to: Some(T0 + 2), ..all() }).await?, ["zz", "b9", "b10", "b1", "a"]);
    let bounded = BadgeRows { before: Some((T0 + 1, "b10".into())), from: Some(T0 + 1), ..all() };
    assert_eq!(page(bounded).await?, ["b1", "a"]);
    assert!(page(BadgeRows { from: Some(T0 + 3), ..all() }).await?.is_empty());
    assert!(page(BadgeRows { before: Some((T0, "early".into())), ..all() }).await?.is_empty());
    assert!(page(BadgeRows { limit: 0, ..all() }).await?.is_empty());
    Ok(())
}

pub async fn commits_write_and_remove_derived_badge_rows(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_commit");
    let shard = log_shard(&t);
    let before = store.log_status(shard).await?.head;
    let s1 = badge_event(&t, "s1", "c1", "vip", T0);
    store.ingest(vec![Record::Badge(s1.clone())]).await?;
    let seq = tenant_log(store, &t, before).await?.last().map(|e| e.seq).expect("the badge event's entry");
    let after = store.resume_shard(shard).await?;
    let mut earn = badge_event(&t, "rule:regular", "c1", "regular", T0 + 5);
    earn.source = BadgeSource::RetroEarn;
    let expiry = BadgeEvent { event_id: "expiry:s1".into(), action: BadgeAction::Expired, ts: T0 + 9, ..badge_event(&t, "x", "c1", "vip", 0) };
    let commit = AttributionCommit {
        shard,
        after,
        processed: seq,
        badge_rows: vec![BadgeRowChange::Put(earn.clone()), BadgeRowChange::Put(expiry.clone())],
        records: vec![Record::Badge(s1)],
        ..AttributionCommit::default()
    };
    store.commit_attribution(commit).await?;
    let rows = store.customer_badge_events(&t, "c1").await?;
    assert_eq!(rows.iter().map(|e| e.event_id.as_str()).collect::<Vec<_>>(), ["expiry:s1", "rule:regular", "s1"]);
    assert_eq!(rows[1], earn, "a derived row round-trips");

    // The earn moves earlier and the expiry goes: one delete and one put per row.
    let after = store.resume_shard(shard).await?;
    let mut moved = earn.clone();
    moved.ts = T0 + 1;
    let commit = AttributionCommit {
        shard,
        after,
        processed: after,
        badge_rows: vec![
            BadgeRowChange::Delete { tenant: t.clone(), customer_id: "c1".into(), ts: earn.ts, event_id: earn.event_id.clone() },
            BadgeRowChange::Put(moved.clone()),
            BadgeRowChange::Delete { tenant: t.clone(), customer_id: "c1".into(), ts: expiry.ts, event_id: expiry.event_id.clone() },
        ],
        ..AttributionCommit::default()
    };
    store.commit_attribution(commit).await?;
    let rows = store.customer_badge_events(&t, "c1").await?;
    assert_eq!(rows.iter().map(|e| (e.event_id.as_str(), e.ts)).collect::<Vec<_>>(), [("rule:regular", T0 + 1), ("s1", T0)]);
    Ok(())
}

pub async fn customer_badge_latest_is_each_badges_newest_entry_up_to_a_time(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_latest");
    let shard = log_shard(&t);
    let before = store.log_status(shard).await?.head;
    let mut revoked = badge_event(&t, "s3", "c1", "vip", T0 + 20);
    revoked.action = BadgeAction::Revoked;
    let mut records = vec![
        Record::Badge(badge_event(&t, "s1", "c1", "vip", T0)),
        // Equal times: the greater event id is the newer.
        Record::Badge(badge_event(&t, "s2a", "c1", "vip", T0 + 10)),
        Record::Badge(badge_event(&t, "s2b", "c1", "vip", T0 + 10)),
        Record::Badge(revoked.clone()),
        Record::Badge(badge_event(&t, "u1", "c1", "undefined", T0 + 3)),
        Record::Badge(badge_event(&t, "o1", "c2", "vip", T0 + 15)),
    ];
    // A history longer than a page of the backends that read it in pages.
    records.extend((0..2_500).map(|i| Record::Badge(badge_event(&t, &format!("old{i:04}"), "c1", "regular", T0 - 10_000 + i))));
    ingest_committed(store, &t, records).await?;
    // A derived row (from a commit) counts as a stored one does.
    let seq = tenant_log(store, &t, before).await?.last().map(|e| e.seq).expect("the badge events' entries");
    let after = store.resume_shard(shard).await?;
    let mut earn = badge_event(&t, "rule:regular", "c1", "regular", T0 + 5);
    earn.source = BadgeSource::RetroEarn;
    let commit = AttributionCommit { shard, after, processed: seq, badge_rows: vec![BadgeRowChange::Put(earn.clone())], ..AttributionCommit::default() };
    store.commit_attribution(commit).await?;

    let latest = |at: i64| {
        let t = &t;
        async move {
            let mut rows: Vec<(String, String)> =
                store.customer_badge_latest(t, "c1", at).await?.into_iter().map(|row| (row.badge_id, row.event_id)).collect();
            rows.sort();
            Result::Ok(rows)
        }
    };
    let pairs = |pairs: &[(&str, &str)]| pairs.iter().map(|(b, e)| (b.to_string(), e.to_string())).collect::<Vec<_>>();
    assert_eq!(latest(T0 + 20).await?, pairs(&[("regular", "rule:regular"), ("undefined", "u1"), ("vip", "s3")]));
    assert_eq!(latest(T0 + 19).await?, pairs(&[("regular", "rule:regular"), ("undefined", "u1"), ("vip", "s2b")]));
    assert_eq!(latest(T0 + 4).await?, pairs(&[("regular", "old2499"), ("undefined", "u1"), ("vip", "s1")]));
    assert_eq!(latest(T0 - 10_000).await?, pairs(&[("regular", "old0000")]));
    assert!(latest(T0 - 10_001).await?.is_empty());
    assert_eq!(latest(i64::MAX).await?, latest(T0 + 20).await?);
    let whole = store.customer_badge_latest(&t, "c1", T0 + 20).await?;
    assert_eq!(whole.iter().find(|row| row.event_id == "s3"), Some(&revoked), "every field round-trips");
    assert!(store.customer_badge_latest(&t, "c3", i64::MAX).await?.is_empty());
    Ok(())
}

pub async fn badge_counters_holdings_and_feed_follow_commits(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_follow");
    let shard = log_shard(&t);
    let day = touchstone_core::badge_stats::DAY_MS;
    let tally = |earned: i64, holds_from: i64, holds_to: i64| BadgeTally { earned, holds_from, holds_to, ..BadgeTally::default() };
    let feed_entry = |seq: u64, index: u32, change: FeedChange, event: &BadgeEvent| BadgeFeedEntry {
        position: FeedPosition { seq, index },
        change,
        event: event.clone(),
    };
    assert_eq!(store.badge_feed_end(&t).await?, None);
    assert_eq!(store.badge_feed(&t, None, 10).await?, vec![]);

    let earn = badge_event(&t, "e1", "c1", "vip", T0 + 10);
    let after = store.resume_shard(shard).await?;
    let first = after + 7;
    let commit = AttributionCommit {
        shard,
        after,
        processed: after,
        badge_stats: vec![
            BadgeStatDelta { tenant: t.clone(), badge_id: "vip".into(), ts: T0 + 10, tally: tally(1, 1, 0) },
            BadgeStatDelta { tenant: t.clone(), badge_id: "vip".into(), ts: T0 + day + 3, tally: tally(0, 0, 1) },
            BadgeStatDelta { tenant: t.clone(), badge_id: "vip".into(), ts: T0 + 20, tally: tally(1, 1, 0) },
            BadgeStatDelta { tenant: t.clone(), badge_id: "other".into(), ts: T0 + 10, tally: tally(5, 0, 0) },
        ],
        holdings: vec![HoldingChange {
            tenant: t.clone(),
            customer_id: "c1".into(),
            badge_id: "vip".into(),
            intervals: vec![(T0 + 10, T0 + day + 3)],
        }],
        badge_feed: vec![feed_entry(first, 0, FeedChange::Added, &earn), feed_entry(first, 1, FeedChange::Removed, &earn)],
        ..AttributionCommit::default()
    };
    store.commit_attribution(commit).await?;

    // Counters at both levels, summed per time, half-open.
    assert_eq!(store.badge_stats(&t, "vip", StatLevel::Day, T0 - day, T0 + 2 * day).await?, vec![(T0, tally(2, 2, 0)), (T0 + day, tally(0, 0, 1))]);
    assert_eq!(store.badge_stats(&t, "vip", StatLevel::Instant, T0, T0 + 20).await?, vec![(T0 + 10, tally(1, 1, 0))]);
    assert_eq!(store.badge_stats(&t, "vip", StatLevel::Instant, T0 + 11, T0 + day + 4).await?, vec![(T0 + 20, tally(1, 1, 0)), (T0 + day + 3, tally(0, 0, 1))]);
    assert_eq!(store.badge_stats(&t, "vip", StatLevel::Instant, T0 + 20, T0 + 20).await?, vec![]);
    assert_eq!(store.customer_holdings(&t, "c1").await?.into_iter().collect::<Vec<_>>(), vec![("vip".to_owned(), vec![(T0 + 10, T0 + day + 3)])]);

    // A later commit's deltas add up, cancelling to nothing; empty intervals delete.
    let after = store.resume_shard(shard).await?;
    let commit = AttributionCommit {
        shard,
        after,
        processed: after,
        badge_stats: vec![BadgeStatDelta { tenant: t.clone(), badge_id: "vip".into(), ts: T0 + 20, tally: tally(-1, -1, 0) }],
        holdings: vec![HoldingChange { tenant: t.clone(), customer_id: "c1".into(), badge_id: "vip".into(), intervals: vec![] }],
        badge_feed: vec![feed_entry(after + 9, 1, FeedChange::Added, &earn)],
        ..AttributionCommit::default()
    };
    store.commit_attribution(commit).await?;
    assert_eq!(store.badge_stats(&t, "vip", StatLevel::Instant, T0, T0 + day).await?, vec![(T0 + 10, tally(1, 1, 0))]);
    assert_eq!(store.badge_stats(&t, "vip", StatLevel::Day, T0, T0 + day).await?, vec![(T0, tally(1, 1, 0))]);
    assert!(store.customer_holdings(&t, "c1").await?.is_empty());

    // The feed, in position order, from a position on.
    let feed = store.badge_feed(&t, None, 10).await?;
    let positions: Vec<(u64, u32, FeedChange)> = feed.iter().map(|e| (e.position.seq, e.position.index, e.change)).collect();
    assert_eq!(positions, [(first, 0, FeedChange::Added), (first, 1, FeedChange::Removed), (after + 9, 1, FeedChange::Added)]);
    assert_eq!(feed[0].event, earn, "a feed entry round-trips");
    assert_eq!(store.badge_feed(&t, Some(feed[0].position), 10).await?, feed[1..].to_vec());
    assert_eq!(store.badge_feed(&t, Some(feed[0].position), 1).await?, feed[1..2].to_vec());
    assert_eq!(store.badge_feed(&t, Some(feed[2].position), 10).await?, vec![]);
    assert_eq!(store.badge_feed_end(&t).await?, Some(feed[2].position));
    assert_eq!(store.badge_feed_end(&tenant("badge_follow_other")).await?, None);
    Ok(())
}
