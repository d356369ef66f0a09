//! The conformance suite: what every [`Store`] backend must do, checked through the trait
//! alone. Each check is a `pub async fn(&dyn Store) -> Result<()>` that panics on a broken
//! contract; [`conformance_suite!`](crate::conformance_suite) turns them into one
//! `#[tokio::test]` each:
//!
//! ```ignore
//! touchstone_store::conformance_suite!(embedded, async { Fixture::new() });
//! ```
//!
//! The constructor is an async expression whose output derefs to the store (a `Box<dyn
//! Store>`, an `Arc<S>`, or a struct that also keeps a temporary folder alive). It runs once
//! per check. A backend that cannot pass a check yet lists the checks it runs instead
//! (`conformance_suite!(name, make, [check, …])`) and declares each one it leaves out as an
//! `#[ignore = "why"]` test of its own, so that no gap is silent.
//!
//! Every check makes up its own tenants (unique per call, also across runs) and reads only
//! their log entries. Commits move a log shard's processed position and are fenced by it, so
//! each check needs a backend instance (or keyspace) of its own. Durability across a restart
//! is backend-specific and tested by each backend itself.

#![allow(clippy::cloned_ref_to_slice_refs)] // `[x.clone()]` reads better in assertions.

use crate::{
    AttributionCommit, ConversionChange, IngestOutcome, LOG_SHARDS, LogEntry, LogMark, LogPayload, Result, RollupDelta,
    Store, StoreError, log_shard,
};
use crate::support::now_millis;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use touchstone_core::attribution::{Conversion, ConversionFact, Credit, Rule};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{
    AppEvent, BadgeAction, BadgeEvent, BadgeSource, Channel, Message, Millis, OrderRecord, Record, Touch, TouchKind,
};
use touchstone_core::rollup::{Cell, Cells, DAY_MS, Granularity, HOUR_MS, Tally};

use IngestOutcome::{Accepted, Duplicate};

/// Runs every check as its own `#[tokio::test]` in a module named `$backend`; with a list,
/// only the checks listed. See the [module docs](crate::conformance).
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, $make:expr) => {
        $crate::conformance_suite!($backend, $make, [
            dedup_first_arrival_stands,
            dedup_within_one_batch,
            dedup_is_per_tenant_and_keys_do_not_collide,
            messages_dedup_by_msg_hash,
            every_record_kind_is_logged_as_ingested,
            log_order_head_and_paging,
            recompute_entries_are_appended,
            config_defaults_and_compare_and_set,
            tenants_lists_each_tenant_once,
            customer_touches_are_inclusive_across_bucket_edges,
            message_touches_returns_every_touch_of_the_message,
            order_records_and_tenant_orders,
            tenant_events_named_matches_the_name_exactly,
            between_reads_are_half_open_across_hour_and_day_edges,
            conversion_upsert_moves_every_index,
            conversion_removal_clears_every_index,
            rollup_deltas_sum_in_hour_and_day_buckets,
            rollups_cancelling_to_zero_are_absent,
            commit_moves_processed_forward_and_trims_log,
            stale_commits_are_fenced,
            draining_the_log_reaches_the_head_past_duplicates,
            log_shards_have_their_own_positions,
            leases_are_exclusive_and_lapse,
            live_workers_are_listed_until_they_lapse,
            many_rows_are_all_returned,
            reads_of_unknown_things_are_empty,
            batched_reads_equal_single_reads_in_input_order,
        ]);
    };
    ($backend:ident, $make:expr, [$($check:ident),+ $(,)?]) => {
        mod $backend {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test]
                async fn $check() -> $crate::Result<()> {
                    let fixture = $make.await;
                    $crate::conformance::$check(&*fixture).await
                }
            )+
        }
    };
}

/// 2024-01-01T00:00:00Z: an hour, day, month and year edge at once.
const T0: Millis = 1_704_067_200_000;

/// A tenant name no other check, run or test process uses.
fn tenant(check: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    format!("{check}-{nanos:x}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn touch(tenant: &str, event_id: &str, msg_hash: &str, customer_id: &str, ts: Millis) -> Touch {
    Touch {
        tenant: tenant.into(),
        event_id: event_id.into(),
        msg_hash: msg_hash.into(),
        customer_id: customer_id.into(),
        kind: TouchKind::Opened,
        ts,
    }
}

fn event(tenant: &str, event_id: &str, name: &str, ts: Millis) -> AppEvent {
    AppEvent {
        tenant: tenant.into(),
        event_id: event_id.into(),
        customer_id: "c1".into(),
        name: name.into(),
        ts,
        value_micros: Some(2_500_000),
        msg_hash: Some("m1".into()),
    }
}

fn order(tenant: &str, event_id: &str, order_id: &str, status: &str, ts: Millis) -> OrderRecord {
    OrderRecord {
        tenant: tenant.into(),
        event_id: event_id.into(),
        order_id: order_id.into(),
        customer_id: "c1".into(),
        status: status.into(),
        amount_minor: 1999,
        currency: "USD".into(),
        categories: vec!["shoes".into()],
        channel: "web".into(),
        ts,
        msg_hash: None,
    }
}

fn message(tenant: &str, msg_hash: &str, campaign_id: &str) -> Message {
    Message {
        tenant: tenant.into(),
        msg_hash: msg_hash.into(),
        campaign_id: campaign_id.into(),
        channel: Channel::Push,
        tags: vec!["promo".into()],
        sent_at: T0,
    }
}

fn conversion(tenant: &str, goal_id: &str, key: &str, customer_id: &str, ts: Millis, explicit: Option<&str>) -> Conversion {
    let credit = match explicit {
        Some(msg_hash) => Credit { rule: Rule::Explicit, msg_hash: Some(msg_hash.into()), touch_event_id: None },
        None => Credit::unattributed(),
    };
    Conversion {
        fact: ConversionFact {
            tenant: tenant.into(),
            goal_id: goal_id.into(),
            key: key.into(),
            customer_id: customer_id.into(),
            ts,
            value_micros: 19_990_000,
            source_event_id: format!("src-{key}"),
            explicit_msg_hash: explicit.map(str::to_owned),
        },
        credit,
    }
}

fn change(old: Option<&Conversion>, new: Option<&Conversion>) -> ConversionChange {
    ConversionChange { old: old.cloned(), new: new.cloned() }
}

/// Commits conversion changes and rollup deltas of `tenant` without moving its shard's
/// processed position.
async fn commit_in_place(
    store: &dyn Store,
    tenant: &str,
    conversions: Vec<ConversionChange>,
    rollups: Vec<RollupDelta>,
) -> Result<()> {
    let shard = log_shard(tenant);
    let processed = store.log_status(shard).await?.processed;
    store.commit_attribution(AttributionCommit { shard, after: processed, processed, conversions, rollups }).await
}

async fn commit_conversions(store: &dyn Store, tenant: &str, conversions: Vec<ConversionChange>) -> Result<()> {
    commit_in_place(store, tenant, conversions, Vec::new()).await
}

/// The head of the tenant's log shard.
async fn head(store: &dyn Store, tenant: &str) -> Result<u64> {
    Ok(store.log_status(log_shard(tenant)).await?.head)
}

fn delta(tenant: &str, hour: Millis, cell: &Cell, count: i64, value_micros: i128) -> RollupDelta {
    RollupDelta { tenant: tenant.into(), hour, cell: cell.clone(), tally: Tally { count, value_micros } }
}

fn cells(entries: &[(&Cell, i64, i128)]) -> Cells {
    let mut cells = Cells::default();
    for &(cell, count, value_micros) in entries {
        cells.add(cell.clone(), Tally { count, value_micros });
    }
    cells
}

/// Rows compared as sets: reads return "any order".
trait Row: Clone {
    fn id(&self) -> String;
}

impl Row for Touch {
    fn id(&self) -> String {
        self.event_id.clone()
    }
}

impl Row for AppEvent {
    fn id(&self) -> String {
        self.event_id.clone()
    }
}

impl Row for OrderRecord {
    fn id(&self) -> String {
        self.event_id.clone()
    }
}

impl Row for Conversion {
    fn id(&self) -> String {
        format!("{}/{}", self.fact.goal_id, self.fact.key)
    }
}

fn sorted<T: Row>(mut rows: Vec<T>) -> Vec<T> {
    rows.sort_by_key(Row::id);
    rows
}

fn ids<T: Row>(rows: &[T]) -> Vec<String> {
    let mut ids: Vec<String> = rows.iter().map(Row::id).collect();
    ids.sort();
    ids
}

fn payload_tenant(entry: &LogEntry) -> Option<&str> {
    match &entry.payload {
        LogPayload::Record(record) => Some(record.tenant()),
        LogPayload::Recompute { tenant } => Some(tenant),
        LogPayload::Nothing => None,
    }
}

/// The log entries of `tenant` after position `after`, read in pages of 100.
async fn tenant_log(store: &dyn Store, tenant: &str, after: u64) -> Result<Vec<LogEntry>> {
    let mut entries = Vec::new();
    let mut position = after;
    loop {
        let page = store.read_log(log_shard(tenant), position, 100).await?;
        let Some(last) = page.last() else {
            return Ok(entries);
        };
        assert!(page.len() <= 100, "read_log returned {} entries for limit 100", page.len());
        assert!(page.first().is_some_and(|first| first.seq > position), "read_log({position}) returned an entry at or before it");
        assert!(page.windows(2).all(|pair| pair[0].seq < pair[1].seq), "read_log out of order");
        position = last.seq;
        entries.extend(page.into_iter().filter(|entry| payload_tenant(entry) == Some(tenant)));
    }
}

fn records(entries: &[LogEntry]) -> Vec<LogPayload> {
    entries.iter().map(|entry| entry.payload.clone()).collect()
}

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

    assert_eq!(store.customer_touches(&t, "c1", Millis::MIN, Millis::MAX).await?, [first.clone()]);
    assert_eq!(store.message_touches(&t, "m1").await?, [first.clone()]);
    assert!(store.message_touches(&t, "m2").await?.is_empty(), "the duplicate was stored");
    assert!(store.order_records(&t, "o1").await?.is_empty(), "the duplicate order was stored");
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
    assert_eq!(sorted(store.customer_touches(&t, "c1", T0 - 10, T0 + 10).await?), [a.clone(), b.clone()]);
    let log = tenant_log(store, &t, before).await?;
    assert_eq!(records(&log), [LogPayload::Record(Record::Touch(a)), LogPayload::Record(Record::Touch(b))]);
    assert!(log.iter().all(|entry| entry.seq <= head), "an entry of the call lies past the head it returned ({head})");
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

    let outcomes = store
        .ingest(vec![Record::Touch(in_t1.clone()), Record::Touch(in_t2.clone()), Record::Message(same_name_message.clone())])
        .await?;
    assert_eq!(outcomes, [Accepted, Accepted, Accepted]);
    assert_eq!(store.customer_touches(&t1, "bc", Millis::MIN, Millis::MAX).await?, [in_t1.clone()]);
    assert_eq!(store.customer_touches(&t2, "c", Millis::MIN, Millis::MAX).await?, [in_t2.clone()]);
    assert!(store.customer_touches(&t1, "b", Millis::MIN, Millis::MAX).await?.is_empty());
    assert_eq!(store.message_touches(&t1, "m1").await?, [in_t1]);
    assert_eq!(store.message_touches(&t2, "m1").await?, [in_t2]);
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

pub async fn config_defaults_and_compare_and_set(store: &dyn Store) -> Result<()> {
    let t = tenant("config_cas");
    assert_eq!(store.tenant_config(&t).await?, TenantConfig::defaults(&t));

    let conflict = |result: Result<LogMark>| matches!(result, Err(StoreError::Conflict { tenant }) if tenant == t);
    let mut config = TenantConfig::defaults(&t);
    assert!(conflict(store.save_tenant_config(&config).await), "version 0 can never be saved");
    config.version = 2;
    assert!(conflict(store.save_tenant_config(&config).await), "version 2 with nothing saved");

    config.version = 1;
    config.set_excluded_tags(vec!["transactional".into()]);
    let mark = store.save_tenant_config(&config).await?;
    assert_eq!(mark.shard, log_shard(&t));
    assert_eq!(store.tenant_config(&t).await?, config);
    let log = store.read_log(mark.shard, mark.seq - 1, 1).await?;
    assert_eq!(log.first().map(|e| (e.seq, e.payload.clone())), Some((mark.seq, LogPayload::Recompute { tenant: t.clone() })));

    let mut stale = TenantConfig::defaults(&t);
    stale.version = 1;
    assert!(conflict(store.save_tenant_config(&stale).await), "a second save of version 1 must lose");
    assert_eq!(store.tenant_config(&t).await?, config, "a lost save changed the config");

    config.version = 2;
    config.currency = "EUR".into();
    let second = store.save_tenant_config(&config).await?;
    assert!(second.seq > mark.seq);
    assert_eq!(store.tenant_config(&t).await?, config);
    assert!(store.tenants().await?.contains(&t));
    Ok(())
}

pub async fn tenants_lists_each_tenant_once(store: &dyn Store) -> Result<()> {
    let ingesting = tenant("tenants_ingesting");
    let configured = tenant("tenants_configured");
    let records = (0..3).map(|i| Record::Touch(touch(&ingesting, &format!("e{i}"), "m1", "c1", T0))).collect();
    store.ingest(records).await?;
    store.ingest(vec![Record::Touch(touch(&ingesting, "e3", "m1", "c1", T0))]).await?;
    store.save_tenant_config(&TenantConfig { version: 1, ..TenantConfig::defaults(&configured) }).await?;

    let tenants = store.tenants().await?;
    for wanted in [&ingesting, &configured] {
        assert_eq!(tenants.iter().filter(|t| *t == wanted).count(), 1, "{wanted} in {tenants:?}");
    }
    Ok(())
}

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
    let mut records = Vec::new();
    for (i, &edge) in edges().iter().enumerate() {
        for (label, ts) in [("before", edge - 1), ("at", edge), ("after", edge + 1)] {
            let mine = touch(&t, &format!("{i}-{label}"), "m1", "c1", ts);
            ours.push(mine.clone());
            records.push(Record::Touch(mine));
            // Customers whose ids extend or are a prefix of "c1" stay apart.
            records.push(Record::Touch(touch(&t, &format!("{i}-{label}-c10"), "m1", "c10", ts)));
            records.push(Record::Touch(touch(&t, &format!("{i}-{label}-c"), "m1", "c", ts)));
        }
    }
    store.ingest(records).await?;

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

pub async fn message_touches_returns_every_touch_of_the_message(store: &dyn Store) -> Result<()> {
    let t = tenant("message_touches");
    let other = tenant("message_touches_other");
    let ours = vec![
        touch(&t, "a", "m", "c1", T0),
        touch(&t, "b", "m", "c2", T0 - 400 * DAY_MS),
        touch(&t, "c", "m", "c3", T0 + 400 * DAY_MS),
        Touch { kind: TouchKind::Delivered, ..touch(&t, "d", "m", "c1", T0) },
    ];
    let mut records: Vec<Record> = ours.iter().cloned().map(Record::Touch).collect();
    records.push(Record::Touch(touch(&t, "e", "m2", "c1", T0)));
    records.push(Record::Touch(touch(&other, "a", "m", "c1", T0)));
    store.ingest(records).await?;

    assert_eq!(sorted(store.message_touches(&t, "m").await?), ours);
    assert!(store.message_touches(&t, "").await?.is_empty());
    Ok(())
}

pub async fn order_records_and_tenant_orders(store: &dyn Store) -> Result<()> {
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
    store.ingest(records).await?;

    assert_eq!(sorted(store.order_records(&t, "o1").await?), o1);
    assert_eq!(store.order_records(&t, "o10").await?, [o10.clone()]);
    assert!(store.order_records(&t, "o").await?.is_empty());
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
    store.ingest(records).await?;

    assert_eq!(sorted(store.tenant_events_named(&t, "checkin").await?), checkins);
    assert!(store.tenant_events_named(&t, "view").await?.is_empty());
    Ok(())
}

pub async fn between_reads_are_half_open_across_hour_and_day_edges(store: &dyn Store) -> Result<()> {
    let t = tenant("between");
    let other = tenant("between_other");
    let day = T0 + 5 * DAY_MS;
    let hour = day + 3 * HOUR_MS;
    let times = [("d-1", day - 1), ("d", day), ("d+1", day + 1), ("h-1", hour - 1), ("h", hour), ("h+1", hour + 1)];

    let mut records = Vec::new();
    let mut changes = Vec::new();
    for (id, ts) in times {
        records.push(Record::Touch(touch(&t, id, "m1", "c1", ts)));
        // Event ids differ from the touches': one event_id per tenant, whatever the kind.
        records.push(Record::Event(event(&t, &format!("event-{id}"), "view", ts)));
        changes.push(change(None, Some(&conversion(&t, "orders", id, "c1", ts, None))));
    }
    records.push(Record::Touch(touch(&other, "d", "m1", "c1", day)));
    records.push(Record::Event(event(&other, "d", "view", day)));
    store.ingest(records).await?;
    commit_conversions(store, &t, changes).await?;

    let cases: [(Millis, Millis, &[&str]); 7] = [
        (day, hour, &["d", "d+1", "h-1"]),
        (day - 1, day, &["d-1"]),
        (hour, hour + 1, &["h"]),
        (day - DAY_MS, day + DAY_MS, &["d", "d+1", "d-1", "h", "h+1", "h-1"]),
        (day, day, &[]),
        (hour, day, &[]),
        (day + 2, hour - 1, &[]),
    ];
    for (from, to, want) in cases {
        let touches = ids(&store.touches_between(&t, from, to).await?);
        let without = |prefix: &str, ids: Vec<String>| -> Vec<String> {
            ids.iter().map(|id| id.trim_start_matches(prefix).to_owned()).collect()
        };
        let events = without("event-", ids(&store.events_between(&t, from, to).await?));
        let conversions = without("orders/", ids(&store.conversions_between(&t, from, to).await?));
        assert_eq!(touches, want, "touches_between [{from}, {to})");
        assert_eq!(events, want, "events_between [{from}, {to})");
        assert_eq!(conversions, want, "conversions_between [{from}, {to})");
    }
    Ok(())
}

pub async fn conversion_upsert_moves_every_index(store: &dyn Store) -> Result<()> {
    let t = tenant("conversion_upsert");
    let old = conversion(&t, "orders", "o1", "c1", T0 + 2 * HOUR_MS, Some("m1"));
    let same_key_other_goal = conversion(&t, "checkin", "o1", "c1", T0 + 2 * HOUR_MS, None);
    commit_conversions(store, &t, vec![change(None, Some(&old)), change(None, Some(&same_key_other_goal))]).await?;

    let (old_from, old_to) = (old.fact.ts, old.fact.ts);
    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(old.clone()));
    assert_eq!(sorted(store.customer_conversions(&t, "c1", old_from, old_to).await?), [same_key_other_goal.clone(), old.clone()]);
    assert_eq!(store.explicit_conversions(&t, "m1").await?, [old.clone()]);
    assert_eq!(store.conversions_between(&t, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS).await?.len(), 2);

    // Re-credited and moved to another month, hour and explicit message.
    let moved = conversion(&t, "orders", "o1", "c1", T0 + 40 * DAY_MS + 5, Some("m2"));
    commit_conversions(store, &t, vec![change(Some(&old), Some(&moved))]).await?;
    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(moved.clone()));
    assert_eq!(store.customer_conversions(&t, "c1", old_from, old_to).await?, [same_key_other_goal.clone()], "old index row left behind");
    assert_eq!(store.customer_conversions(&t, "c1", moved.fact.ts, moved.fact.ts).await?, [moved.clone()]);
    assert_eq!(store.conversions_between(&t, T0 + 2 * HOUR_MS, T0 + 3 * HOUR_MS).await?, [same_key_other_goal.clone()]);
    assert_eq!(store.conversions_between(&t, moved.fact.ts, moved.fact.ts + 1).await?, [moved.clone()]);
    assert!(store.explicit_conversions(&t, "m1").await?.is_empty(), "old explicit index row left behind");
    assert_eq!(store.explicit_conversions(&t, "m2").await?, [moved.clone()]);
    assert_eq!(sorted(store.tenant_conversions(&t).await?), [same_key_other_goal.clone(), moved.clone()]);

    // Re-credited in place: old and new rows share every key, and the new one must stay.
    let recredited = Conversion { credit: Credit::unattributed(), ..moved.clone() };
    commit_conversions(store, &t, vec![change(Some(&moved), Some(&recredited))]).await?;
    assert_eq!(store.conversion(&t, "orders", "o1").await?, Some(recredited.clone()));
    assert_eq!(store.customer_conversions(&t, "c1", moved.fact.ts, moved.fact.ts).await?, [recredited.clone()]);
    assert_eq!(store.conversions_between(&t, moved.fact.ts, moved.fact.ts + 1).await?, [recredited.clone()]);
    assert_eq!(store.explicit_conversions(&t, "m2").await?, [recredited.clone()]);
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
    assert_eq!(store.customer_conversions(&t, "c1", T0 - DAY_MS, T0 + DAY_MS).await?, [kept.clone()]);
    assert_eq!(store.conversions_between(&t, T0 - DAY_MS, T0 + DAY_MS).await?, [kept.clone()]);
    assert_eq!(store.explicit_conversions(&t, "m1").await?, [kept.clone()]);
    assert_eq!(store.tenant_conversions(&t).await?, [kept]);
    Ok(())
}

pub async fn rollup_deltas_sum_in_hour_and_day_buckets(store: &dyn Store) -> Result<()> {
    let t = tenant("rollups_sum");
    let day = T0 + 10 * DAY_MS;
    let (h1, h2, next_day_h1) = (day + HOUR_MS, day + 5 * HOUR_MS, day + DAY_MS + HOUR_MS);
    let opened = Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened };
    let converted = Cell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch, msg_hash: "m1".into() };
    let first = vec![
        delta(&t, h1, &opened, 1, 0),
        delta(&t, h2, &opened, 2, 0),
        delta(&t, h1, &converted, 1, 500),
        delta(&t, next_day_h1, &opened, 4, 0),
    ];
    commit_in_place(store, &t, Vec::new(), first).await?;
    commit_in_place(store, &t, Vec::new(), vec![delta(&t, h1, &opened, 10, 0)]).await?;

    let hours = |from, to| store.rollups(&t, Granularity::Hour, from, to);
    let days = |from, to| store.rollups(&t, Granularity::Day, from, to);
    assert_eq!(hours(h1, h1 + HOUR_MS).await?, cells(&[(&opened, 11, 0), (&converted, 1, 500)]));
    assert_eq!(hours(h2, h2 + HOUR_MS).await?, cells(&[(&opened, 2, 0)]));
    assert_eq!(hours(h1 + 1, h2 + 1).await?, cells(&[(&opened, 2, 0)]), "buckets starting in [from, to)");
    assert_eq!(hours(h1, h2).await?, cells(&[(&opened, 11, 0), (&converted, 1, 500)]), "the bucket at `to` is out");
    assert_eq!(hours(day, day + DAY_MS).await?, cells(&[(&opened, 13, 0), (&converted, 1, 500)]));
    assert_eq!(days(day, day + DAY_MS).await?, cells(&[(&opened, 13, 0), (&converted, 1, 500)]));
    assert_eq!(days(day, day + 2 * DAY_MS).await?, cells(&[(&opened, 17, 0), (&converted, 1, 500)]));
    assert_eq!(days(day + 1, day + DAY_MS + 1).await?, cells(&[(&opened, 4, 0)]));
    assert_eq!(days(day, day).await?, Cells::default());
    assert_eq!(store.rollups(&tenant("rollups_sum_other"), Granularity::Day, day, day + DAY_MS).await?, Cells::default());
    Ok(())
}

/// Cells that sum to zero are left out of [`Store::rollups`], not returned as zeros.
pub async fn rollups_cancelling_to_zero_are_absent(store: &dyn Store) -> Result<()> {
    let t = tenant("rollups_zero");
    let day = T0 + 20 * DAY_MS;
    let (h1, h2) = (day + HOUR_MS, day + 2 * HOUR_MS);
    let opened = Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened };
    let converted = Cell::Conversion { goal_id: "orders".into(), rule: Rule::Explicit, msg_hash: "m1".into() };
    let first = vec![delta(&t, h1, &opened, 1, 0), delta(&t, h2, &opened, -1, 0), delta(&t, h1, &converted, 1, 7)];
    commit_in_place(store, &t, Vec::new(), first).await?;
    commit_in_place(store, &t, Vec::new(), vec![delta(&t, h1, &converted, -1, -7)]).await?;

    let hours = |from, to| store.rollups(&t, Granularity::Hour, from, to);
    assert_eq!(hours(h1, h1 + HOUR_MS).await?, cells(&[(&opened, 1, 0)]), "a retracted conversion left a cell");
    assert_eq!(hours(h2, h2 + HOUR_MS).await?, cells(&[(&opened, -1, 0)]));
    assert_eq!(hours(day, day + DAY_MS).await?, Cells::default(), "hours cancelling each other");
    assert_eq!(store.rollups(&t, Granularity::Day, day, day + DAY_MS).await?, Cells::default(), "a day row summing to zero");
    Ok(())
}

pub async fn commit_moves_processed_forward_and_trims_log(store: &dyn Store) -> Result<()> {
    let t = tenant("commit_processed");
    let shard = log_shard(&t);
    let before = head(store, &t).await?;
    let records = (0..3).map(|i| Record::Touch(touch(&t, &format!("e{i}"), "m1", "c1", T0))).collect();
    store.ingest(records).await?;
    let seqs: Vec<u64> = tenant_log(store, &t, before).await?.iter().map(|entry| entry.seq).collect();
    let [_, s2, s3] = seqs[..] else { panic!("expected 3 log entries, got {seqs:?}") };
    let start = store.log_status(shard).await?.processed;
    let step = |after, processed| AttributionCommit { shard, after, processed, ..AttributionCommit::default() };

    store.commit_attribution(step(start, s2)).await?;
    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, s2);
    assert!(store.read_log(shard, 0, 1000).await?.iter().all(|entry| entry.seq > s2), "entries up to processed remain");
    let pending = store.read_log(shard, s2, 1).await?;
    assert_eq!(status.oldest_pending_at, pending.first().map(|entry| entry.appended_at));
    assert_eq!(tenant_log(store, &t, before).await?.iter().map(|e| e.seq).collect::<Vec<_>>(), [s3]);

    store.commit_attribution(step(s2, s3)).await?;
    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, s3);
    assert!(status.head >= s3, "the head fell back to {} after trimming", status.head);
    assert!(tenant_log(store, &t, before).await?.is_empty());
    if status.head == s3 {
        assert_eq!(status.oldest_pending_at, None);
    }
    store.ingest(vec![Record::Touch(touch(&t, "e3", "m1", "c1", T0))]).await?;
    let head = head(store, &t).await?;
    let appended: Vec<u64> = tenant_log(store, &t, 0).await?.iter().map(|e| e.seq).collect();
    assert!(matches!(appended[..], [seq] if seq > s3 && seq <= head), "appended at {appended:?} after trimming up to {s3}");
    Ok(())
}

/// Two workers that read the same entries cannot both commit them: the second commit
/// names a processed position that is no longer the stored one.
pub async fn stale_commits_are_fenced(store: &dyn Store) -> Result<()> {
    let t = tenant("fenced");
    let shard = log_shard(&t);
    let opened = Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened };
    store.ingest(vec![Record::Touch(touch(&t, "e1", "m1", "c1", T0))]).await?;
    let start = store.log_status(shard).await?.processed;
    let entries = store.read_log(shard, start, 10).await?;
    let last = entries.last().map_or(start, |entry| entry.seq);
    assert!(last > start, "the ingested touch is not in the log");
    let step = AttributionCommit {
        shard,
        after: start,
        processed: last,
        conversions: Vec::new(),
        rollups: vec![delta(&t, T0, &opened, 1, 0)],
    };

    store.commit_attribution(step.clone()).await?;
    let second = store.commit_attribution(step.clone()).await;
    assert!(matches!(second, Err(StoreError::Fenced { shard: s }) if s == shard), "a repeated commit applied: {second:?}");
    let ahead = AttributionCommit { after: last + 1, processed: last + 1, ..step };
    assert!(matches!(store.commit_attribution(ahead).await, Err(StoreError::Fenced { .. })), "a commit from the future applied");

    assert_eq!(store.log_status(shard).await?.processed, last);
    let hour = Granularity::Hour.bucket(T0);
    assert_eq!(store.rollups(&t, Granularity::Hour, hour, hour + HOUR_MS).await?, cells(&[(&opened, 1, 0)]), "fenced commits wrote");
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
    drain(store, shard).await?;
    assert_eq!(store.ingest(records).await?, [Duplicate; 3]);
    drain(store, shard).await?;
    let status = store.log_status(shard).await?;
    assert_eq!(status.processed, status.head, "positions left behind after draining");
    assert_eq!(status.oldest_pending_at, None);
    Ok(())
}

/// Commits (empty) steps over everything `read_log` returns until it returns nothing.
async fn drain(store: &dyn Store, shard: u32) -> Result<()> {
    loop {
        let after = store.log_status(shard).await?.processed;
        let Some(last) = store.read_log(shard, after, 100).await?.last().map(|entry| entry.seq) else {
            return Ok(());
        };
        store.commit_attribution(AttributionCommit { shard, after, processed: last, ..AttributionCommit::default() }).await?;
    }
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

pub async fn many_rows_are_all_returned(store: &dyn Store) -> Result<()> {
    const ROWS: i64 = 5_000;
    let t = tenant("many_rows");
    let spacing = 60 * DAY_MS / ROWS; // across hours, days and months
    let before = head(store, &t).await?;
    let all: Vec<Record> = (0..ROWS).map(|i| Record::Touch(touch(&t, &format!("e{i:05}"), "m1", "c1", T0 + i * spacing))).collect();
    for chunk in all.chunks(1_000) {
        let outcomes = store.ingest(chunk.to_vec()).await?;
        assert!(outcomes.iter().all(|o| *o == Accepted));
    }
    let want: Vec<String> = (0..ROWS).map(|i| format!("e{i:05}")).collect();
    assert_eq!(ids(&store.customer_touches(&t, "c1", Millis::MIN, Millis::MAX).await?), want);
    assert_eq!(ids(&store.message_touches(&t, "m1").await?), want);
    assert_eq!(ids(&store.touches_between(&t, T0, T0 + 60 * DAY_MS).await?), want);
    assert_eq!(tenant_log(store, &t, before).await?.len(), want.len());
    Ok(())
}

pub async fn reads_of_unknown_things_are_empty(store: &dyn Store) -> Result<()> {
    let t = tenant("unknown");
    let before = head(store, &t).await?;
    let outcomes = store.ingest(Vec::new()).await?;
    assert!(outcomes.is_empty());
    assert_eq!(head(store, &t).await?, before);
    assert!(!store.tenants().await?.contains(&t));
    assert!(store.messages(&t, &["m1".to_owned()]).await?.is_empty());
    assert!(store.customer_touches(&t, "c1", Millis::MIN, Millis::MAX).await?.is_empty());
    assert!(store.message_touches(&t, "m1").await?.is_empty());
    assert!(store.order_records(&t, "o1").await?.is_empty());
    assert!(store.tenant_orders(&t).await?.is_empty());
    assert!(store.tenant_events_named(&t, "view").await?.is_empty());
    assert_eq!(store.conversion(&t, "orders", "o1").await?, None);
    assert!(store.customer_conversions(&t, "c1", Millis::MIN, Millis::MAX).await?.is_empty());
    assert!(store.explicit_conversions(&t, "m1").await?.is_empty());
    assert!(store.tenant_conversions(&t).await?.is_empty());
    assert_eq!(store.rollups(&t, Granularity::Hour, Millis::MIN, Millis::MAX).await?, Cells::default());
    assert!(store.touches_between(&t, Millis::MIN, Millis::MAX).await?.is_empty());
    assert!(store.events_between(&t, Millis::MIN, Millis::MAX).await?.is_empty());
    assert!(store.conversions_between(&t, Millis::MIN, Millis::MAX).await?.is_empty());
    Ok(())
}


/// The batched reads the attribution engine uses return, per input and in input order,
/// exactly what the single reads return: also for repeated, empty and unknown inputs.
pub async fn batched_reads_equal_single_reads_in_input_order(store: &dyn Store) -> Result<()> {
    use crate::{ConversionKey, CustomerSpan};
    let t = tenant("batched_reads");
    let mut records = Vec::new();
    for i in 0..30 {
        let customer = format!("c{}", i % 4);
        records.push(Record::Touch(touch(&t, &format!("t{i}"), "m1", &customer, T0 + i * HOUR_MS)));
        records.push(Record::Order(OrderRecord { customer_id: customer, ..order(&t, &format!("r{i}"), &format!("o{}", i % 5), "PAID", T0 + i) }));
    }
    store.ingest(records).await?;
    let conversions: Vec<Conversion> =
        (0..6).map(|i| conversion(&t, "orders", &format!("o{i}"), &format!("c{}", i % 4), T0 + i * HOUR_MS, None)).collect();
    commit_conversions(store, &t, conversions.iter().map(|c| change(None, Some(c))).collect()).await?;

    let span = |customer: &str, from: Millis, to: Millis| CustomerSpan { tenant: t.clone(), customer_id: customer.into(), from, to };
    let spans = vec![
        span("c1", T0, T0 + 10 * HOUR_MS),
        span("c0", T0 - DAY_MS, T0 + DAY_MS),
        span("c1", T0, T0 + 10 * HOUR_MS),
        span("nobody", T0, T0 + DAY_MS),
        span("c2", T0 + 5 * HOUR_MS, T0 + 2 * HOUR_MS),
        span("c3", Millis::MIN, Millis::MAX),
    ];
    let touches = store.customer_touches_many(&spans).await?;
    let found = store.customer_conversions_many(&spans).await?;
    assert_eq!((touches.len(), found.len()), (spans.len(), spans.len()));
    for (i, s) in spans.iter().enumerate() {
        assert_eq!(sorted(touches[i].clone()), sorted(store.customer_touches(&t, &s.customer_id, s.from, s.to).await?), "touches of {s:?}");
        assert_eq!(sorted(found[i].clone()), sorted(store.customer_conversions(&t, &s.customer_id, s.from, s.to).await?), "conversions of {s:?}");
    }
    assert!(!touches[0].is_empty() && !found[1].is_empty(), "the fixture reads something");

    let orders: Vec<(String, String)> = ["o3", "o0", "nope", "o3"].iter().map(|o| (t.clone(), o.to_string())).collect();
    let records = store.order_records_many(&orders).await?;
    assert_eq!(records.len(), orders.len());
    for ((tenant, order_id), got) in orders.iter().zip(records) {
        assert_eq!(sorted(got), sorted(store.order_records(tenant, order_id).await?), "order {order_id}");
    }

    let key = |goal_id: &str, key: &str| ConversionKey { tenant: t.clone(), goal_id: goal_id.into(), key: key.into() };
    let keys = vec![key("orders", "o5"), key("orders", "o9"), key("checkin", "o1"), key("orders", "o0")];
    let got = store.conversions_many(&keys).await?;
    assert_eq!(got, vec![Some(conversions[5].clone()), None, None, Some(conversions[0].clone())]);
    assert!(store.customer_touches_many(&[]).await?.is_empty());
    Ok(())
}
