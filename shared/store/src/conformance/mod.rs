//! The conformance suite: what every [`Store`] backend must do, checked through the traits
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
//!
//! The checks live beside the role whose contract they hold, as `contract/` does: one file
//! per role ([`IngestLog`](crate::IngestLog) in `ingest_log.rs`, and so on), re-exported
//! here, where the macro finds them. This file keeps the macro, the fixtures the checks
//! share, and the checks of what holds for every role (`contract/mod.rs`).

#![allow(clippy::cloned_ref_to_slice_refs)] // `[x.clone()]` reads better in assertions.

mod attribution_state;
mod badges;
mod config_store;
mod coordination;
mod ingest_log;
mod record_reads;
mod report_reads;

pub use attribution_state::{
    commit_moves_processed_forward, commit_with_set_aside_entries_processes_the_rest, commits_keep_the_log_as_the_archive,
    conversion_removal_clears_every_index, conversion_upsert_moves_every_index, fenced_commits_set_nothing_aside, fold_state_follows_commits, fold_state_of_many_customers, many_conversions_in_one_commit,
    tenant_orders_returns_every_status_record,
    set_aside_outside_the_step_is_refused, stale_commits_are_fenced, tenant_events_named_matches_the_name_exactly,
};
pub use badges::{
    badge_book_defaults_and_compare_and_set, badge_counters_holdings_and_feed_follow_commits, badge_inputs_of_many_customers,
    badge_rows_page_newest_first_between_bounds,
    commits_write_and_remove_derived_badge_rows, customer_activity_holds_the_customers_events_and_orders,
    customer_badge_events_are_newest_first_per_customer, customer_badge_latest_is_each_badges_newest_entry_up_to_a_time,
};
pub use config_store::{config_defaults_and_compare_and_set, tenants_exist_from_their_first_write};
pub use coordination::{lanes_keep_their_own_positions_and_state, leases_are_exclusive_and_lapse, live_workers_are_listed_until_they_lapse};
pub use ingest_log::{
    dedup_first_arrival_stands, dedup_is_per_tenant_and_keys_do_not_collide, dedup_of_a_large_call, dedup_within_one_batch,
    draining_the_log_reaches_the_head_past_duplicates, every_record_kind_is_logged_as_ingested, log_entries_carry_the_trace_of_their_ingest_call,
    log_order_head_and_paging, log_shards_have_their_own_positions, messages_dedup_by_msg_hash,
    recompute_entries_are_appended, set_aside_list_is_per_shard_and_honours_the_limit,
};
pub use record_reads::customer_touches_are_inclusive_across_bucket_edges;
pub use report_reads::{
    between_reads_are_half_open_across_hour_and_day_edges, campaign_rollup_buckets_sum_every_campaign_per_bucket, campaign_rollups_cancelling_to_zero_are_absent,
    campaign_rollups_sum_by_campaign_in_hour_day_and_month_buckets, messages_sent_between_is_half_open,
    pending_counters_sum_per_hour_and_cell_until_moved, rollup_deltas_sum_in_hour_and_day_buckets,
    rollups_cancelling_to_zero_are_absent,
};

use crate::{
    AttributionCommit, CampaignDelta, ConversionChange, IngestOutcome, LogEntry, LogPayload, PendingDelta, Result, RollupDelta,
    SetAside, Store, log_shard,
};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use touchstone_core::attribution::{Conversion, ConversionFact, Credit, Rule};
use touchstone_core::model::{AppEvent, Channel, Message, Millis, OrderRecord, Record, Touch, TouchKind};
use touchstone_core::rollup::{CampaignCell, CampaignCells, Cell, Cells, DAY_MS, Granularity, Tally};

use IngestOutcome::Accepted;

/// Runs every check as its own `#[tokio::test]` in a module named `$backend`; with a list,
/// only the checks listed. See the [module docs](crate::conformance).
#[macro_export]
macro_rules! conformance_suite {
    ($backend:ident, $make:expr) => {
        $crate::conformance_suite!($backend, $make, [
            // IngestLog
            dedup_first_arrival_stands,
            dedup_within_one_batch,
            dedup_of_a_large_call,
            dedup_is_per_tenant_and_keys_do_not_collide,
            messages_dedup_by_msg_hash,
            every_record_kind_is_logged_as_ingested,
            log_order_head_and_paging,
            recompute_entries_are_appended,
            log_entries_carry_the_trace_of_their_ingest_call,
            log_shards_have_their_own_positions,
            draining_the_log_reaches_the_head_past_duplicates,
            set_aside_list_is_per_shard_and_honours_the_limit,
            // ConfigStore
            config_defaults_and_compare_and_set,
            tenants_exist_from_their_first_write,
            // Coordination
            leases_are_exclusive_and_lapse,
            live_workers_are_listed_until_they_lapse,
            lanes_keep_their_own_positions_and_state,
            // RecordReads
            customer_touches_are_inclusive_across_bucket_edges,
            // AttributionState
            tenant_orders_returns_every_status_record,
            tenant_events_named_matches_the_name_exactly,
            conversion_upsert_moves_every_index,
            conversion_removal_clears_every_index,
            many_conversions_in_one_commit,
            fold_state_follows_commits,
            fold_state_of_many_customers,
            commit_moves_processed_forward,
            stale_commits_are_fenced,
            commit_with_set_aside_entries_processes_the_rest,
            fenced_commits_set_nothing_aside,
            set_aside_outside_the_step_is_refused,
            // ReportReads
            between_reads_are_half_open_across_hour_and_day_edges,
            rollup_deltas_sum_in_hour_and_day_buckets,
            rollups_cancelling_to_zero_are_absent,
            campaign_rollups_sum_by_campaign_in_hour_day_and_month_buckets,
            campaign_rollups_cancelling_to_zero_are_absent,
            campaign_rollup_buckets_sum_every_campaign_per_bucket,
            pending_counters_sum_per_hour_and_cell_until_moved,
            messages_sent_between_is_half_open,
            // BadgeStore
            badge_book_defaults_and_compare_and_set,
            customer_badge_events_are_newest_first_per_customer,
            customer_activity_holds_the_customers_events_and_orders,
            badge_rows_page_newest_first_between_bounds,
            commits_write_and_remove_derived_badge_rows,
            customer_badge_latest_is_each_badges_newest_entry_up_to_a_time,
            badge_counters_holdings_and_feed_follow_commits,
            badge_inputs_of_many_customers,
            // Every role
            many_rows_are_all_returned,
            reads_of_unknown_things_are_empty,
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

/// `conversion` credited by last touch to m2 with m1 before it: every model's split kept
/// with it, as the fold keeps it.
fn split_conversion(tenant: &str, goal_id: &str, key: &str, customer_id: &str, ts: Millis) -> Conversion {
    let mut converted = conversion(tenant, goal_id, key, customer_id, ts, None);
    converted.credit = Credit { rule: Rule::LastTouch, msg_hash: Some("m2".into()), touch_event_id: Some("e2".into()) };
    let (ppm, micros) = (500_000, converted.fact.value_micros / 2);
    let parts = vec![vec![(1_000_000, 2 * micros), (0, 0)], vec![(ppm, micros), (ppm, micros)], vec![(ppm, micros), (ppm, micros)], vec![(499_000, micros), (501_000, micros)]];
    converted.split = Some(touchstone_core::models::ModelSplit { messages: vec!["m1".into(), "m2".into()], parts });
    converted
}

fn conversion(tenant: &str, goal_id: &str, key: &str, customer_id: &str, ts: Millis, explicit: Option<&str>) -> Conversion {
    let credit = match explicit {
        Some(msg_hash) => Credit { rule: Rule::Explicit, msg_hash: Some(msg_hash.into()), touch_event_id: None },
        None => Credit::unattributed(),
    };
    Conversion {
        split: None,
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
    let processed = store.resume_shard(shard).await?;
    let step = AttributionCommit { shard, after: processed, processed, conversions, rollups, ..AttributionCommit::default() };
    store.commit_attribution(step).await
}

/// Commits, without moving the shard's processed position, the records `tenant`'s log
/// holds after `before`, as a worker's step passes them on: the reads by time
/// (`touches_between`, `tenant_orders`, ...) return records once committed.
async fn commit_logged(store: &dyn Store, tenant: &str, before: u64) -> Result<()> {
    let records = tenant_log(store, tenant, before)
        .await?
        .into_iter()
        .filter_map(|entry| match entry.payload {
            LogPayload::Record(record) => Some(record),
            _ => None,
        })
        .collect();
    let shard = log_shard(tenant);
    let processed = store.resume_shard(shard).await?;
    store.commit_attribution(AttributionCommit { shard, after: processed, processed, records, ..AttributionCommit::default() }).await
}

/// Commits campaign and pending counter deltas of `tenant` without moving its shard's
/// processed position.
async fn commit_campaign_counters(
    store: &dyn Store,
    tenant: &str,
    campaign_rollups: Vec<CampaignDelta>,
    pending: Vec<PendingDelta>,
) -> Result<()> {
    let shard = log_shard(tenant);
    let processed = store.resume_shard(shard).await?;
    let step = AttributionCommit { shard, after: processed, processed, campaign_rollups, pending, ..AttributionCommit::default() };
    store.commit_attribution(step).await
}

fn campaign_delta(tenant: &str, campaign_id: &str, hour: Millis, cell: &CampaignCell, count: i64, value_micros: i128) -> CampaignDelta {
    let tally = Tally { count, value_micros };
    CampaignDelta { tenant: tenant.into(), campaign_id: campaign_id.into(), hour, cell: cell.clone(), tally }
}

fn pending_delta(tenant: &str, msg_hash: &str, hour: Millis, cell: &CampaignCell, count: i64) -> PendingDelta {
    let tally = Tally { count, value_micros: 0 };
    PendingDelta { tenant: tenant.into(), msg_hash: msg_hash.into(), hour, cell: cell.clone(), tally }
}

/// Campaign counters by campaign id, as [`ReportReads::campaign_rollups`] returns them.
fn campaigns(entries: &[(&str, &CampaignCell, i64, i128)]) -> BTreeMap<String, CampaignCells> {
    let mut by_campaign: BTreeMap<String, CampaignCells> = BTreeMap::new();
    for &(campaign_id, cell, count, value_micros) in entries {
        by_campaign.entry(campaign_id.to_owned()).or_default().add(cell.clone(), Tally { count, value_micros });
    }
    by_campaign
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
    entry.payload.tenant()
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

/// The shard's processed position and every log entry after it, read in pages of 100.
async fn pending(store: &dyn Store, shard: u32) -> Result<(u64, Vec<LogEntry>)> {
    let processed = store.resume_shard(shard).await?;
    let mut entries: Vec<LogEntry> = Vec::new();
    loop {
        let after = entries.last().map_or(processed, |entry| entry.seq);
        let page = store.read_log(shard, after, 100).await?;
        if page.is_empty() {
            return Ok((processed, entries));
        }
        entries.extend(page);
    }
}

/// `entry` set aside by a worker at `set_aside_at`.
fn aside(entry: &LogEntry, reason: &str, set_aside_at: Millis) -> SetAside {
    SetAside { entry: entry.clone(), reason: reason.into(), set_aside_at }
}

/// The test's clock, to bound the store's.
fn now_millis() -> Millis {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    Millis::try_from(since_epoch.as_millis()).unwrap_or(Millis::MAX)
}

// What holds for every role (`contract/mod.rs`): reads return every matching row, and
// "not found" is an empty result.

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
    commit_logged(store, &t, before).await?;
    let want: Vec<String> = (0..ROWS).map(|i| format!("e{i:05}")).collect();
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
    assert!(store.messages(&t, &["m1".to_owned()]).await?.is_empty());
    assert!(store.customer_touches(&t, "c1", Millis::MIN, Millis::MAX).await?.is_empty());
    assert!(store.tenant_orders(&t).await?.is_empty());
    assert!(store.tenant_events_named(&t, "view").await?.is_empty());
    assert_eq!(store.conversion(&t, "orders", "o1").await?, None);
    assert!(store.tenant_conversions(&t).await?.is_empty());
    assert_eq!(store.customer_months(&[crate::CustomerMonths::whole(&t, "c1")]).await?, [touchstone_core::fold::CustomerState::default()]);
    assert_eq!(store.order_states(0, &[(t.clone(), "o1".to_owned())]).await?, [touchstone_core::fold::OrderState::default()]);
    assert!(store.tenant_customer_states(&t).await?.is_empty());
    assert!(store.tenant_order_states(&t, 0).await?.is_empty());
    assert!(store.unregistered_customers(&t, "m1").await?.is_empty());
    assert_eq!(store.folded_config(&t, 0).await?, None);
    assert_eq!(store.rollups(&t, Granularity::Hour, Millis::MIN, Millis::MAX).await?, Cells::default());
    assert!(store.touches_between(&t, Millis::MIN, Millis::MAX).await?.is_empty());
    assert!(store.events_between(&t, Millis::MIN, Millis::MAX).await?.is_empty());
    assert!(store.conversions_between(&t, Millis::MIN, Millis::MAX).await?.is_empty());
    Ok(())
}

