//! The conformance suite against the CQL backend, each check in a fresh keyspace, plus the
//! crash and concurrency cases only a cluster backend has.
//!
//! The node(s) come from `TOUCHSTONE_CASSANDRA_NODES` or `TOUCHSTONE_SCYLLA_NODES`
//! (comma-separated `host:port`). `make test` starts a Cassandra 5 node and sets the first;
//! by hand, `deploy/cassandra/start.sh` starts one. Without either variable every test here
//! fails, saying so: none passes without having run against a node.

#![allow(clippy::cloned_ref_to_slice_refs)] // `[x.clone()]` reads better in assertions.

use std::collections::BTreeMap;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use touchstone_core::attribution::{Conversion, ConversionFact, Credit};
use touchstone_core::badge_stats::{BadgeTally, day_of};
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::{CustomerState, OrderState, Segment, segment_of};
use touchstone_core::model::{BadgeAction, BadgeEvent, BadgeSource, Channel, Message, Millis, OrderRecord, Record, Touch, TouchKind};
use touchstone_core::rollup::{CampaignCell, CampaignCells, Cell, Cells, DAY_MS, Granularity, HOUR_MS, Tally};
use touchstone_store::{
    BadgeFeedEntry, BadgeStatDelta, CustomerMonths, Exposure, FeedChange, FeedPosition, HoldingChange, StatLevel,
    AttributionCommit, AttributionState, BadgeRowChange, BadgeStore, CampaignDelta, CellKinds, ConversionChange, CqlOptions, CqlStore, IngestLog, IngestOutcome,
    FoldWrites, LogEntry, LogPayload, OrderStateWrite, PendingDelta, RecordReads, ReportReads, RollupDelta, SegmentWrite, SetAside, StoreError, UnregisteredMark,
    log_shard,
};

/// The configured nodes. Panics when there are none: a test that cannot reach a node fails.
fn cql_nodes() -> Vec<String> {
    let configured = ["TOUCHSTONE_CASSANDRA_NODES", "TOUCHSTONE_SCYLLA_NODES"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|value| !value.trim().is_empty()));
    let Some(nodes) = configured else {
        panic!(
            "no CQL node: run `make test`, which starts Cassandra 5, or set TOUCHSTONE_CASSANDRA_NODES=host:port \
             (e.g. after deploy/cassandra/start.sh) or TOUCHSTONE_SCYLLA_NODES=host:port"
        )
    };
    nodes.split(',').map(|node| node.trim().to_owned()).collect()
}

/// A keyspace no other test, run or process uses.
fn fresh_keyspace() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    format!("touchstone_test_{secs}_{}_{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn options(nodes: Vec<String>, keyspace: &str, lanes: u32) -> CqlOptions {
    CqlOptions { intent_timeout: Duration::from_secs(1), lanes, ..CqlOptions::new(nodes, keyspace) }
}

/// A store on a keyspace of its own.
struct Fixture {
    store: CqlStore,
    nodes: Vec<String>,
    keyspace: String,
    lanes: u32,
}

impl Fixture {
    /// A fresh keyspace on the configured node(s), one lane a shard (the suite's checks
    /// commit lane 0 alone, as a worker on such a store does); panics without a node
    /// ([`cql_nodes`]).
    async fn new() -> Fixture {
        Fixture::with_lanes(1).await
    }

    async fn with_lanes(lanes: u32) -> Fixture {
        let nodes = cql_nodes();
        let keyspace = fresh_keyspace();
        let options = options(nodes.clone(), &keyspace, lanes);
        CqlStore::migrate(&options).await.expect("creating the keyspace");
        let store = CqlStore::connect(options).await.expect("connecting to the CQL node");
        Fixture { store, nodes, keyspace, lanes }
    }

    /// Another store (another process, as far as the backend can tell) on the same keyspace.
    async fn another(&self) -> CqlStore {
        CqlStore::connect(options(self.nodes.clone(), &self.keyspace, self.lanes)).await.expect("connecting again")
    }
}

/// Drops the keyspace, so that a run's keyspaces do not pile up in the node's memory. From a
/// thread of its own, with a session of its own: the test's runtime is the one dropping us.
impl Drop for Fixture {
    fn drop(&mut self) {
        let (nodes, keyspace) = (self.nodes.clone(), self.keyspace.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let session = scylla::client::session_builder::SessionBuilder::new()
                    .known_nodes(&nodes)
                    .build()
                    .await
                    .map_err(|e| e.to_string())?;
                session.query_unpaged(format!("DROP KEYSPACE IF EXISTS {keyspace}"), ()).await.map_err(|e| e.to_string())?;
                Ok::<_, String>(())
            })
        })
        .join();
        if let Ok(Err(error)) | Err(error) = dropped.map_err(|_| "the thread panicked".to_owned()) {
            eprintln!("could not drop test keyspace {}: {error}", self.keyspace);
        }
    }
}

/// Commits the records of `tenant` among `entries` in place, as a worker's step passes them
/// on: the reads by time show records once committed.
async fn commit_records(store: &CqlStore, tenant: &str, entries: &[LogEntry]) -> touchstone_store::Result<()> {
    let records = entries
        .iter()
        .filter_map(|entry| match &entry.payload {
            LogPayload::Record(record) if record.tenant() == tenant => Some(record.clone()),
            _ => None,
        })
        .collect();
    let shard = log_shard(tenant);
    let processed = store.resume_shard(shard).await?;
    store.commit_attribution(AttributionCommit { shard, after: processed, processed, records, ..Default::default() }).await
}

impl Deref for Fixture {
    type Target = CqlStore;

    fn deref(&self) -> &CqlStore {
        &self.store
    }
}

touchstone_store::conformance_suite!(cql, async { Fixture::new().await });

/// The lanes of a keyspace are those it was made with: a process configured otherwise
/// uses them (a customer's lane, order copies and positions depend on them).
#[tokio::test]
async fn a_keyspace_keeps_the_lanes_it_was_made_with() {
    use touchstone_store::Coordination;
    let fixture = Fixture::with_lanes(3).await;
    assert_eq!(fixture.lanes(), 3);
    let other = CqlStore::connect(options(fixture.nodes.clone(), &fixture.keyspace, 1)).await.expect("connecting again");
    assert_eq!(other.lanes(), 3, "a process changed the keyspace's lanes");
}

/// The lanes check with the lanes a deployment has.
#[tokio::test]
async fn lanes_of_a_shard_keep_their_own_positions_and_state() -> touchstone_store::Result<()> {
    let fixture = Fixture::with_lanes(touchstone_store::cql::DEFAULT_LANES).await;
    touchstone_store::conformance::lanes_keep_their_own_positions_and_state(&*fixture).await
}

/// Declared, not silently skipped: this backend's commits still trim the log rows they
/// process (its reads of the log rely on it), until it moves onto the chunk log.
#[tokio::test]
#[ignore = "the CQL backend trims processed log rows until it moves onto the chunk log"]
async fn commits_keep_the_log_as_the_archive() -> touchstone_store::Result<()> {
    touchstone_store::conformance::commits_keep_the_log_as_the_archive(&*Fixture::new().await).await
}

const T0: Millis = 1_704_067_200_000;

fn unique(name: &str) -> String {
    format!("{name}-{}", fresh_keyspace())
}

fn touch(tenant: &str, event_id: &str, ts: Millis) -> Touch {
    Touch {
        tenant: tenant.into(),
        event_id: event_id.into(),
        msg_hash: "m1".into(),
        customer_id: "c1".into(),
        kind: TouchKind::Opened,
        ts,
    }
}

fn conversion(tenant: &str, key: &str, ts: Millis) -> Conversion {
    Conversion {
        split: None,
        fact: ConversionFact {
            tenant: tenant.into(),
            goal_id: "orders".into(),
            key: key.into(),
            customer_id: "c1".into(),
            ts,
            value_micros: 5_000_000,
            source_event_id: format!("src-{key}"),
            explicit_msg_hash: None,
        },
        credit: Credit::unattributed(),
    }
}

fn opened() -> Cell {
    Cell::Touch { msg_hash: "m1".into(), kind: TouchKind::Opened }
}

fn one_opened(tenant: &str) -> RollupDelta {
    RollupDelta { tenant: tenant.into(), hour: T0, cell: opened(), tally: Tally { count: 1, value_micros: 250 } }
}

fn campaign_opened(tenant: &str, campaign_id: &str, hour: Millis) -> CampaignDelta {
    let cell = CampaignCell::Touch { kind: TouchKind::Opened };
    let tally = Tally { count: 1, value_micros: 250 };
    CampaignDelta { tenant: tenant.into(), campaign_id: campaign_id.into(), hour, cell, tally }
}

fn pending_opened(tenant: &str, msg_hash: &str, hour: Millis) -> PendingDelta {
    let cell = CampaignCell::Touch { kind: TouchKind::Opened };
    PendingDelta { tenant: tenant.into(), msg_hash: msg_hash.into(), hour, cell, tally: Tally { count: 1, value_micros: 250 } }
}

/// The campaign counters of every campaign in the bucket of `granularity` holding `T0`.
async fn campaign_cells(
    store: &dyn ReportReads,
    tenant: &str,
    granularity: Granularity,
) -> touchstone_store::Result<BTreeMap<String, CampaignCells>> {
    let bucket = granularity.bucket(T0);
    store.campaign_rollups(tenant, None, CellKinds::All, granularity, bucket, granularity.next(bucket)).await
}

/// `{campaign_id: opened × count}`.
fn opened_in(campaign_id: &str, count: i64) -> BTreeMap<String, CampaignCells> {
    let mut cells = CampaignCells::default();
    cells.add(CampaignCell::Touch { kind: TouchKind::Opened }, Tally { count, value_micros: 250 * i128::from(count) });
    BTreeMap::from([(campaign_id.to_owned(), cells)])
}

async fn hour_cells(store: &dyn ReportReads, tenant: &str) -> touchstone_store::Result<Cells> {
    store.rollups(tenant, Granularity::Hour, T0, T0 + HOUR_MS).await
}

fn cells(count: i64, value_micros: i128) -> Cells {
    let mut cells = Cells::default();
    cells.add(opened(), Tally { count, value_micros });
    cells
}

/// Ingests one touch and reads it back from the log: `(shard, after, entry seq)`.
async fn one_logged_touch(store: &dyn IngestLog, tenant: &str) -> touchstone_store::Result<(u32, u64, u64)> {
    let shard = log_shard(tenant);
    store.ingest(vec![Record::Touch(touch(tenant, "e1", T0))]).await?;
    let after = store.log_status(shard).await?.processed;
    let entries = store.read_log(shard, after, 10).await?;
    let last = entries.last().expect("the ingested touch is in the log").seq;
    Ok((shard, after, last))
}

#[tokio::test]
async fn a_step_applied_again_leaves_rollups_exact() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let t = unique("again");
    let (shard, after, last) = one_logged_touch(&*fixture, &t).await?;
    let step = AttributionCommit {
        shard,
        after,
        processed: last,
        rollups: vec![one_opened(&t)],
        campaign_rollups: vec![campaign_opened(&t, "spring", T0)],
        pending: vec![pending_opened(&t, "m9", T0)],
        ..Default::default()
    };
    fixture.commit_attribution(step).await?;

    // A second process knows nothing of the step, so it applies it again before reading.
    let other = fixture.another().await;
    assert_eq!(other.log_status(shard).await?.processed, last);
    assert!(other.read_log(shard, last, 10).await?.is_empty());
    assert_eq!(hour_cells(&other, &t).await?, cells(1, 250), "the step counted twice");
    assert_eq!(store_day(&other, &t).await?, cells(1, 250));
    for granularity in Granularity::ALL {
        assert_eq!(campaign_cells(&other, &t, granularity).await?, opened_in("spring", 1), "{granularity:?}");
    }
    let opened = CampaignCell::Touch { kind: TouchKind::Opened };
    assert_eq!(other.pending_counters(&t, 0, "m9").await?, [(T0, opened, Tally { count: 1, value_micros: 250 })]);
    Ok(())
}

async fn store_day(store: &dyn ReportReads, tenant: &str) -> touchstone_store::Result<Cells> {
    store.rollups(tenant, Granularity::Day, Granularity::Day.bucket(T0), Granularity::Day.bucket(T0) + 24 * HOUR_MS).await
}

#[tokio::test]
async fn a_crash_between_commit_and_apply_loses_nothing() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let t = unique("crash");
    let (shard, after, last) = one_logged_touch(&*fixture, &t).await?;
    let converted = conversion(&t, "o1", T0 + 5);
    let rule_earn = BadgeEvent {
        tenant: t.clone(),
        event_id: "rule:regular".into(),
        customer_id: "c1".into(),
        badge_id: "regular".into(),
        action: BadgeAction::Earned,
        ts: T0 + 5,
        source: BadgeSource::Rule,
        reason: Some("3 orders".into()),
    };
    let counted = OrderRecord {
        tenant: t.clone(),
        event_id: "o1-placed".into(),
        order_id: "o1".into(),
        customer_id: "c1".into(),
        status: "PLACED".into(),
        amount_minor: 250,
        currency: "USD".into(),
        categories: Vec::new(),
        channel: "web".into(),
        ts: T0 + 5,
        msg_hash: None,
    };
    let earned_one = BadgeTally { earned: 1, holds_from: 1, ..BadgeTally::default() };
    let segment = Segment { touches: Vec::new(), conversions: BTreeMap::from([(("orders".to_owned(), "o1".to_owned()), converted.clone())]) };
    let order_state = OrderState { records: vec![counted.clone()], facts: BTreeMap::from([("orders".to_owned(), converted.fact.clone())]) };
    let step = AttributionCommit {
        shard,
        lane: 0,
        after,
        processed: last,
        conversions: vec![ConversionChange { old: None, new: Some(converted.clone()) }],
        rollups: vec![one_opened(&t)],
        campaign_rollups: vec![campaign_opened(&t, "spring", T0)],
        pending: vec![pending_opened(&t, "m9", T0)],
        badge_rows: vec![BadgeRowChange::Put(rule_earn.clone())],
        activity: vec![Record::Order(counted.clone())],
        badge_stats: vec![BadgeStatDelta { tenant: t.clone(), badge_id: "regular".into(), ts: T0 + 5, tally: earned_one }],
        holdings: vec![HoldingChange { tenant: t.clone(), customer_id: "c1".into(), badge_id: "regular".into(), intervals: vec![(T0 + 5, Millis::MAX)] }],
        badge_feed: vec![BadgeFeedEntry { position: FeedPosition { seq: last, index: 1 }, change: FeedChange::Added, event: rule_earn.clone() }],
        set_aside: Vec::new(),
        fold: FoldWrites {
            segments: vec![SegmentWrite { tenant: t.clone(), customer_id: "c1".into(), month: segment_of(T0), segment: Some(segment.clone()) }],
            orders: vec![OrderStateWrite { tenant: t.clone(), order_id: "o1".into(), state: order_state.clone() }],
            unregistered: vec![UnregisteredMark { tenant: t.clone(), msg_hash: "m9".into(), customer_id: "c1".into() }],
            registered: Vec::new(),
            unmarked: Vec::new(),
            folded_configs: vec![TenantConfig::defaults(&t)],
            exposures: vec![Exposure { tenant: t.clone(), campaign_id: "spring".into(), customer_id: "c1".into() }],
        },
        records: vec![Record::Order(counted.clone())],
    };
    fixture.commit_without_applying(step).await?;
    assert_eq!(fixture.conversion(&t, "orders", "o1").await?, None, "the test hook applied the step");

    // The first store is not used again, as if its process had died. A status call reports
    // what is readable and applies nothing.
    let restarted = fixture.another().await;
    assert_eq!(restarted.log_status(shard).await?.processed, after, "status reported a step not applied");
    assert_eq!(restarted.conversion(&t, "orders", "o1").await?, None, "a status call applied the step");
    // Resuming the shard, as the next worker does, applies it.
    assert_eq!(restarted.resume_shard(shard).await?, last);
    assert!(restarted.read_log(shard, last, 10).await?.is_empty());
    assert_eq!(restarted.conversion(&t, "orders", "o1").await?, Some(converted.clone()));
    assert_eq!(restarted.conversions_between(&t, T0, T0 + HOUR_MS).await?, [converted]);
    assert_eq!(hour_cells(&restarted, &t).await?, cells(1, 250));
    assert_eq!(campaign_cells(&restarted, &t, Granularity::Month).await?, opened_in("spring", 1));
    assert_eq!(restarted.pending_counters(&t, 0, "m9").await?.len(), 1);
    assert_eq!(restarted.customer_badge_events(&t, "c1").await?, [rule_earn.clone()]);
    assert_eq!(restarted.badge_stats(&t, "regular", StatLevel::Day, T0 - DAY_MS, T0 + DAY_MS).await?, [(day_of(T0), earned_one)]);
    assert_eq!(restarted.customer_holdings(&t, "c1").await?.len(), 1);
    assert_eq!(restarted.badge_feed(&t, None, 10).await?.into_iter().map(|e| e.event).collect::<Vec<_>>(), [rule_earn]);
    assert_eq!(restarted.tenant_orders(&t).await?, [counted.clone()]);
    assert_eq!(restarted.customer_activity(&t, "c1").await?, [Record::Order(counted)]);
    assert_eq!(restarted.customer_months(&[CustomerMonths::whole(&t, "c1")]).await?, [CustomerState { segments: BTreeMap::from([(segment_of(T0), segment)]) }]);
    assert_eq!(restarted.order_states(0, &[(t.clone(), "o1".into())]).await?, [order_state]);
    assert_eq!(restarted.unregistered_customers(&t, "m9").await?, ["c1"]);
    assert_eq!(restarted.exposed_customer_states(&t, "spring").await?.len(), 1);
    assert_eq!(restarted.folded_config(&t, 0).await?, Some(TenantConfig::defaults(&t)));
    let status = restarted.log_status(shard).await?;
    assert_eq!((status.processed, status.oldest_pending_at), (last, None), "the log was not trimmed");
    // And the next commit builds on the re-applied step.
    let next = AttributionCommit {
        shard,
        after: last,
        processed: last,
        rollups: vec![one_opened(&t)],
        campaign_rollups: vec![campaign_opened(&t, "spring", T0)],
        ..Default::default()
    };
    restarted.commit_attribution(next).await?;
    assert_eq!(hour_cells(&restarted, &t).await?, cells(2, 500));
    assert_eq!(campaign_cells(&restarted, &t, Granularity::Day).await?, opened_in("spring", 2));
    Ok(())
}

#[tokio::test]
async fn entries_set_aside_by_a_step_never_applied_are_kept() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let t = unique("aside");
    let (shard, after, last) = one_logged_touch(&*fixture, &t).await?;
    let entry = fixture.read_log(shard, after, 10).await?.into_iter().find(|entry| entry.seq == last).expect("the logged touch");
    let aside = SetAside { entry, reason: "touch: no such message".into(), set_aside_at: T0 + 7 };
    let step = AttributionCommit { shard, after, processed: last, set_aside: vec![aside.clone()], ..Default::default() };
    fixture.commit_without_applying(step).await?;

    // The first store is not used again, as if its process had died. Status calls apply
    // nothing; the next worker to resume the shard applies the step, set-aside entries
    // included.
    let restarted = fixture.another().await;
    let status = restarted.log_status(shard).await?;
    assert_eq!((status.processed, status.set_aside), (after, 0), "a status call applied the step");
    assert!(restarted.set_aside(shard, 10).await?.is_empty());
    assert_eq!(restarted.resume_shard(shard).await?, last);
    let status = restarted.log_status(shard).await?;
    assert_eq!((status.processed, status.set_aside), (last, 1), "the set-aside entry was lost");
    assert_eq!(restarted.set_aside(shard, 10).await?, [aside.clone()]);
    assert!(restarted.read_log(shard, last, 10).await?.is_empty());
    // A third process applies the same step once more: still one entry, unchanged.
    let third = fixture.another().await;
    assert_eq!(third.resume_shard(shard).await?, last);
    assert_eq!(third.set_aside(shard, 10).await?, [aside]);
    assert_eq!(third.log_status(shard).await?.set_aside, 1, "the step set its entry aside twice");
    Ok(())
}

#[tokio::test]
async fn intents_left_by_a_crashed_ingest_are_finished_together_after_the_timeout() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let t = unique("intent");
    let shard = log_shard(&t);
    let (first, second) = (touch(&t, "e1", T0), touch(&t, "e2", T0 + 1));
    let mark = fixture.append_intent_only(Record::Touch(first.clone())).await?.expect("a first arrival");
    let next = fixture.append_intent_only(Record::Touch(second.clone())).await?.expect("a first arrival");
    assert_eq!(next.seq, mark.seq + 1);
    // Committed: a copy is a duplicate already, though the rows are not written yet.
    assert_eq!(fixture.ingest(vec![Record::Touch(first.clone())]).await?, [IngestOutcome::Duplicate]);
    assert!(fixture.touches_between(&t, T0, T0 + 2).await?.is_empty(), "an intent's rows were written");
    let after = mark.seq - 1;

    assert!(fixture.read_log(shard, after, 10).await?.is_empty(), "read past an intent within its timeout");
    assert!(fixture.log_status(shard).await?.oldest_pending_at.is_some(), "an intent is pending");
    tokio::time::sleep(Duration::from_millis(1_200)).await;

    // Both timed out together: one read finishes both.
    let entries = fixture.read_log(shard, after, 10).await?;
    let logged: Vec<(u64, LogPayload)> = entries.iter().map(|e| (e.seq, e.payload.clone())).collect();
    assert_eq!(
        logged,
        [(mark.seq, LogPayload::Record(Record::Touch(first))), (next.seq, LogPayload::Record(Record::Touch(second)))]
    );
    commit_records(&fixture, &t, &entries).await?;
    assert_eq!(fixture.touches_between(&t, T0, T0 + 2).await?.len(), 2, "the finished entries' records are indexed once committed");
    Ok(())
}

/// An ingest process that dies after writing dedup marks and log rows but before its commit
/// holds the shard until its lease lapses; then nothing it wrote counts, though its rows sit
/// at the very positions the next process fills.
#[tokio::test]
async fn an_append_that_crashed_before_its_commit_never_counts() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let t = unique("uncommitted");
    let shard = log_shard(&t);
    let (a, b, c) = (touch(&t, "a", T0), touch(&t, "b", T0 + 1), touch(&t, "c", T0 + 2));
    let before = fixture.log_status(shard).await?.head;
    fixture.append_uncommitted(vec![Record::Touch(a.clone()), Record::Touch(b.clone())]).await?;
    assert_eq!(fixture.log_status(shard).await?.head, before, "an uncommitted append moved the head");
    assert!(fixture.read_log(shard, before, 10).await?.is_empty());

    // Another process waits for the lease to lapse, then takes the shard over.
    let other = fixture.another().await;
    let (c, a) = (Record::Touch(c), Record::Touch(a));
    assert_eq!(other.ingest(vec![c.clone(), a.clone()]).await?, [IngestOutcome::Accepted, IngestOutcome::Accepted]);
    let entries = other.read_log(shard, before, 10).await?;
    let logged: Vec<(u64, LogPayload)> = entries.iter().map(|e| (e.seq, e.payload.clone())).collect();
    assert_eq!(logged, [(before + 1, LogPayload::Record(c)), (before + 2, LogPayload::Record(a.clone()))]);

    // b's mark was written in the abandoned epoch: b is still a first arrival.
    let b = Record::Touch(b);
    assert_eq!(other.ingest(vec![b.clone(), a]).await?, [IngestOutcome::Accepted, IngestOutcome::Duplicate]);
    assert_eq!(other.read_log(shard, before + 2, 10).await?.iter().map(|e| e.payload.clone()).collect::<Vec<_>>(), [LogPayload::Record(b)]);
    commit_records(&other, &t, &other.read_log(shard, before, 10).await?).await?;
    assert_eq!(other.touches_between(&t, T0, T0 + 3).await?.len(), 3);
    // The crashed process's store, were it alive, appends again after taking the shard back.
    assert_eq!(fixture.ingest(vec![Record::Touch(touch(&t, "d", T0))]).await?, [IngestOutcome::Accepted]);
    assert_eq!(fixture.log_status(shard).await?.head, before + 4);
    Ok(())
}

#[tokio::test]
async fn two_stores_ingesting_the_same_records_accept_each_once() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let other = fixture.another().await;
    let t = unique("race");
    let records: Vec<Record> = (0..200).map(|i| Record::Touch(touch(&t, &format!("e{i}"), T0 + i))).collect();
    let before = fixture.log_status(log_shard(&t)).await?.processed;

    let (first, second) = tokio::join!(fixture.ingest(records.clone()), other.ingest(records.clone()));
    let (first, second) = (first?, second?);
    for (i, pair) in first.iter().zip(&second).enumerate() {
        let accepted = [pair.0, pair.1].iter().filter(|o| **o == &IngestOutcome::Accepted).count();
        assert_eq!(accepted, 1, "record {i}: {pair:?}");
    }
    let entries = fixture.read_log(log_shard(&t), before, 1_000).await?;
    commit_records(&fixture, &t, &entries).await?;
    assert_eq!(fixture.touches_between(&t, T0, T0 + 1_001).await?.len(), 200);
    let mut ids: Vec<&str> = entries
        .iter()
        .filter_map(|entry| match &entry.payload {
            LogPayload::Record(record) if record.tenant() == t => Some(record.id()),
            _ => None,
        })
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 200, "each record once in the log");
    let records = entries.iter().filter(|entry| matches!(entry.payload, LogPayload::Record(_))).count();
    assert_eq!(records, 200, "a duplicate became an entry");
    assert_eq!(entries.len(), 200, "a duplicate took a log position");
    Ok(())
}

#[tokio::test]
async fn two_commits_from_the_same_position_one_is_fenced() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let other = fixture.another().await;
    let t = unique("fence");
    let (shard, after, last) = one_logged_touch(&*fixture, &t).await?;
    assert_eq!(other.log_status(shard).await?.processed, after);
    let step = AttributionCommit { shard, after, processed: last, rollups: vec![one_opened(&t)], ..Default::default() };

    let (first, second) = tokio::join!(fixture.commit_attribution(step.clone()), other.commit_attribution(step));
    let fenced = [&first, &second].iter().filter(|r| matches!(r, Err(StoreError::Fenced { shard: s }) if *s == shard)).count();
    assert_eq!(fenced, 1, "{first:?} / {second:?}");
    assert!(first.is_ok() || second.is_ok());
    assert_eq!(hour_cells(&*fixture, &t).await?, cells(1, 250));
    Ok(())
}

/// A step with more rows per partition than one batch takes (by count, and by bytes: long
/// event names) is written whole, and summed exactly once when applied again.
#[tokio::test]
async fn a_large_step_is_written_in_bounded_batches_and_summed_once() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let t = unique("large");
    let (shard, after, last) = one_logged_touch(&*fixture, &t).await?;
    let long_name = "n".repeat(400);
    let hit = CampaignCell::EventHit { name: long_name.clone() };
    // 250 campaigns in one hour bucket: 250 rows of over 400 bytes in one partition per level.
    let campaign_rollups: Vec<CampaignDelta> = (0..250)
        .map(|i| CampaignDelta {
            tenant: t.clone(),
            campaign_id: format!("c{i:03}"),
            hour: T0,
            cell: hit.clone(),
            tally: Tally { count: i + 1, value_micros: 0 },
        })
        .collect();
    // One message pending over 150 hours: 150 rows in its one partition.
    let pending: Vec<PendingDelta> = (0..150).map(|i| pending_opened(&t, "m9", T0 + i * HOUR_MS)).collect();
    let step = AttributionCommit { shard, after, processed: last, campaign_rollups, pending, ..Default::default() };
    fixture.commit_attribution(step).await?;

    let other = fixture.another().await;
    for store in [&fixture.store, &other] {
        for granularity in Granularity::ALL {
            let all = campaign_cells(store, &t, granularity).await?;
            assert_eq!(all.len(), 250, "{granularity:?}");
            let mut c042 = CampaignCells::default();
            c042.add(hit.clone(), Tally { count: 43, value_micros: 0 });
            assert_eq!(all.get("c042"), Some(&c042), "{granularity:?}");
            let bucket = granularity.bucket(T0);
            let one = store.campaign_rollups(&t, Some("c042"), CellKinds::All, granularity, bucket, granularity.next(bucket)).await?;
            assert_eq!(one, BTreeMap::from([("c042".to_owned(), c042)]), "{granularity:?}");
        }
        let pending = store.pending_counters(&t, 0, "m9").await?;
        assert_eq!(pending.len(), 150);
        assert!(pending.iter().all(|(_, _, tally)| *tally == Tally { count: 1, value_micros: 250 }), "{pending:?}");
    }
    Ok(())
}

/// Messages of one hour spread over its shard partitions; every one is read back, and a
/// range of many hours (listed in `buckets`) is exact too.
#[tokio::test]
async fn messages_sent_between_reads_every_shard_of_every_hour() -> touchstone_store::Result<()> {
    let fixture = Fixture::new().await;
    let t = unique("sent");
    let message = |i: i64, sent_at: Millis| Message {
        tenant: t.clone(),
        msg_hash: format!("m{i}"),
        campaign_id: if i % 2 == 0 { "spring".into() } else { String::new() },
        channel: Channel::Push,
        tags: if i % 3 == 0 { vec!["vip".into()] } else { Vec::new() },
        sent_at,
    };
    // 40 in the first hour, then one every 7 hours for 30 days.
    let mut messages: Vec<Message> = (0..40).map(|i| message(i, T0 + i * 1_000)).collect();
    messages.extend((0..103).map(|i| message(100 + i, T0 + HOUR_MS + i * 7 * HOUR_MS)));
    let records = messages.iter().cloned().map(Record::Message).collect();
    assert!(fixture.ingest(records).await?.iter().all(|outcome| *outcome == IngestOutcome::Accepted));

    let sorted = |mut found: Vec<Message>| {
        found.sort_by(|a, b| (a.sent_at, &a.msg_hash).cmp(&(b.sent_at, &b.msg_hash)));
        found
    };
    let between = |from: Millis, to: Millis| {
        messages.iter().filter(|m| from <= m.sent_at && m.sent_at < to).cloned().collect::<Vec<_>>()
    };
    for (from, to) in [
        (T0, T0 + HOUR_MS),
        (T0 + 1_000, T0 + 39_000),
        (T0 - DAY_MS, T0 + 3 * DAY_MS),
        (T0 + HOUR_MS, T0 + HOUR_MS + 7 * HOUR_MS),
        (Millis::MIN, Millis::MAX),
        (T0 + HOUR_MS, T0 + HOUR_MS),
    ] {
        let found = sorted(fixture.messages_sent_between(&t, from, to).await?);
        assert_eq!(found, between(from, to), "[{from}, {to})");
    }
    assert_eq!(fixture.messages_sent_between(&t, Millis::MIN, Millis::MAX).await?.len(), 143);
    Ok(())
}
