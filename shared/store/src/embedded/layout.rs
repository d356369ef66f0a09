//! The tables of the embedded store and how their keys are laid out. Keys are built with
//! [`Key`]: length-prefixed strings, times big-endian with the sign bit flipped, so
//! components never run into each other and times sort numerically, negative before
//! positive. In an ordered key-value store the time bucket is redundant (it is a function of
//! `ts`, so one range scan crosses buckets), but keeping it makes both backends agree on
//! what a partition is.
//!
//! | keyspace | key | value | read by |
//! |---|---|---|---|
//! | `dedup` | tenant, namespace (`m` message, `e` event_id), id | empty | `ingest` |
//! | `messages` | tenant, msg_hash | `Message` | `messages` |
//! | `messages_by_time` | tenant, hour, sent_at, msg_hash | `Message` | `messages_sent_between` |
//! | `touches_by_time` | tenant, hour, ts, event_id | `Touch` | `touches_between` |
//! | `events_by_time` | tenant, hour, ts, event_id | `AppEvent` | `events_between` |
//! | `events_by_name` | tenant, name, ts, event_id | `AppEvent`: no longer written (the log holds every event); read with the log for stores made before it was kept | `tenant_events_named` |
//! | `orders` | tenant, order_id, ts, event_id | `OrderRecord`: no longer written, read as `events_by_name` | `tenant_orders` |
//! | `badges` | tenant, customer, ts and event_id both descending (`Key::time_desc`, `Key::str_desc`: newest first) | `BadgeEvent`, stored (ingest) or derived (commits) | `customer_badge_events`, `customer_badge_rows` |
//! | `badge_customers` | tenant, customer | empty | `tenant_badge_customers` |
//! | `activity_by_customer` | tenant, customer, kind (`e` event, `o` order), ts, event_id | `AppEvent` or `OrderRecord` (those badge rules count, written by commits) | `customer_activity` |
//! | `badge_books` | tenant | `BadgeBook` | `badge_book`, `save_badge_book` |
//! | `badge_stats` | tenant, badge_id, level (`d` day, `i` instant), time | `BadgeTally` | `badge_stats` |
//! | `badge_holdings` | tenant, customer, badge_id | holding intervals | `customer_holdings` |
//! | `badge_feed` | tenant, seq (u64), index (u32) | change (`a`/`r`) and `BadgeEvent` | `badge_feed`, `badge_feed_end` |
//! | `configs` | tenant | `TenantConfig` | `tenant_config`, `save_tenant_config` |
//! | `tenants` | tenant | empty (written with the tenant's first log entry) | `tenants`, `tenant_exists` |
//! | `log_chunks` | shard (u32), seq (u64) of the chunk's first entry | appended_at, trace, entry count, then each entry's payload: every entry one call appended to the shard | `read_log`, `log_status` |
//! | `meta` | `log_head` or `processed`, shard; `tenant_rollups_filled`, `fold_state_built`, `models_split`, `exposures_indexed`; `folded_config`, tenant | u64; empty; `TenantConfig` | `ingest`, `log_status`, `commit_attribution`, `folded_config` |
//! | `conversions` | tenant, goal_id, key | `Conversion` | `conversion`, `tenant_conversions` |
//! | `conversions_by_time` | tenant, hour, ts, goal_id, key | `Conversion` | `conversions_between` |
//! | `rollups` | tenant, granularity (`h`/`d`), bucket start, cell (postcard) | `Tally` | `rollups` |
//! | `campaign_rollups` | tenant, granularity (`h`/`d`/`m`), bucket start, campaign_id | every cell of the campaign, conversions in a segment of their own (`support::encode_campaign_cells`) | `campaign_rollups`, `campaign_rollup_buckets` of one campaign |
//! | `tenant_rollups` | tenant, granularity (`h`/`d`/`m`), bucket start | the bucket's `campaign_rollups` rows summed, encoded like them | `campaign_rollup_buckets` of every campaign |
//! | `rollup_journal` | shard (u32), seq (u64) | the summed `rollups`, `campaign_rollups` and `tenant_rollups` deltas of one commit, not yet folded into their rows (`rollup_overlay.rs`) | when the store is opened |
//! | `pending_counters` | tenant, msg_hash, hour, cell (postcard) | `Tally` | `pending_counters` |
//! | `set_aside` | shard (u32), seq (u64) | the entry, why, when | `set_aside`, `log_status` |
//! | `customer_states` | tenant, customer, month start | the customer's `Segment` of that month (the fold's state) | `customer_months`, `tenant_customer_states`, `customer_touches` |
//! | `order_states` | tenant, order_id | `OrderState` | `order_states`, `tenant_order_states` |
//! | `unregistered_messages` | tenant, msg_hash, customer | empty: the customer's state names the message, not registered when folded | `unregistered_customers` |
//! | `campaign_exposures` | tenant, campaign_id, customer | empty: the customer has a `SENT` or `HELD_OUT` touch of a registered message of the campaign | `exposed_customer_states` |

use super::key::{self, Key};
use crate::support::encode;
use crate::{FeedPosition, LOG_SHARDS, Result, StatLevel, StoreError};
use std::ops::Bound;
use touchstone_core::attribution::Conversion;
use touchstone_core::model::Millis;
use touchstone_core::rollup::{CampaignCell, Cell, Granularity, HOUR_MS};

/// Bucket of the per-tenant time tables: reports scan raw rows only for the edges of a
/// range that whole hours do not cover, so an hour bucket keeps those scans small.
pub(super) const TIME_BUCKET_MS: Millis = HOUR_MS;

/// Names of the per-shard counters in `meta`.
pub(super) const LOG_HEAD: &[u8] = b"log_head";
pub(super) const PROCESSED: &[u8] = b"processed";
/// Key in `meta` of the mark that `tenant_rollups` holds every campaign row (stores made
/// before that table are filled once when opened).
pub(super) const TENANT_ROLLUPS_FILLED: &[u8] = b"tenant_rollups_filled";
/// Key in `meta` of the mark that the fold's state was built (stores made before it get it
/// built once from their record tables when opened).
pub(super) const FOLD_STATE_BUILT: &[u8] = b"fold_state_built";
/// Set once every tenant folded before conversions kept their model split has had a
/// recompute appended (which splits them).
pub(super) const MODELS_SPLIT: &[u8] = b"models_split";
/// Set once every tenant folded before `campaign_exposures` was kept has had a recompute
/// appended (which writes every customer's exposures).
pub(super) const EXPOSURES_INDEXED: &[u8] = b"exposures_indexed";

/// The tables, one fjall keyspace each; see the module docs for their keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum Table {
    Dedup,
    Messages,
    TouchesByTime,
    EventsByTime,
    EventsByName,
    Orders,
    Badges,
    Configs,
    Log,
    Meta,
    Conversions,
    ConversionsByTime,
    Rollups,
    SetAside,
    MessagesByTime,
    CampaignRollups,
    PendingCounters,
    ActivityByCustomer,
    BadgeBooks,
    BadgeCustomers,
    Tenants,
    BadgeStats,
    BadgeHoldings,
    BadgeFeed,
    TenantRollups,
    CustomerStates,
    OrderStates,
    UnregisteredMessages,
    CampaignExposures,
    RollupJournal,
}

impl Table {
    /// Every table, in discriminant order, so that `ALL[t as usize] == t`.
    pub(super) const ALL: [Table; 30] = [
        Table::Dedup,
        Table::Messages,
        Table::TouchesByTime,
        Table::EventsByTime,
        Table::EventsByName,
        Table::Orders,
        Table::Badges,
        Table::Configs,
        Table::Log,
        Table::Meta,
        Table::Conversions,
        Table::ConversionsByTime,
        Table::Rollups,
        Table::SetAside,
        Table::MessagesByTime,
        Table::CampaignRollups,
        Table::PendingCounters,
        Table::ActivityByCustomer,
        Table::BadgeBooks,
        Table::BadgeCustomers,
        Table::Tenants,
        Table::BadgeStats,
        Table::BadgeHoldings,
        Table::BadgeFeed,
        Table::TenantRollups,
        Table::CustomerStates,
        Table::OrderStates,
        Table::UnregisteredMessages,
        Table::CampaignExposures,
        Table::RollupJournal,
    ];

    /// Keyspaces of tables a store no longer has: deleted when a store is opened.
    pub(super) const RETIRED: [&'static str; 4] = ["touches_by_customer", "touches_by_message", "conversions_by_customer", "conversions_by_explicit"];

    pub(super) fn name(self) -> &'static str {
        match self {
            Table::Dedup => "dedup",
            Table::Messages => "messages",
            Table::TouchesByTime => "touches_by_time",
            Table::EventsByTime => "events_by_time",
            Table::EventsByName => "events_by_name",
            Table::Orders => "orders",
            Table::Badges => "badges",
            Table::Configs => "configs",
            Table::Log => "log_chunks",
            Table::Meta => "meta",
            Table::Conversions => "conversions",
            Table::ConversionsByTime => "conversions_by_time",
            Table::Rollups => "rollups",
            Table::SetAside => "set_aside",
            Table::MessagesByTime => "messages_by_time",
            Table::CampaignRollups => "campaign_rollups",
            Table::PendingCounters => "pending_counters",
            Table::ActivityByCustomer => "activity_by_customer",
            Table::BadgeBooks => "badge_books",
            Table::BadgeCustomers => "badge_customers",
            Table::Tenants => "tenants",
            Table::BadgeStats => "badge_stats",
            Table::BadgeHoldings => "badge_holdings",
            Table::BadgeFeed => "badge_feed",
            Table::TenantRollups => "tenant_rollups",
            Table::CustomerStates => "customer_states",
            Table::OrderStates => "order_states",
            Table::UnregisteredMessages => "unregistered_messages",
            Table::CampaignExposures => "campaign_exposures",
            Table::RollupJournal => "rollup_journal",
        }
    }
}

/// The conversion's row and its index rows, which all hold a copy of it.
pub(super) fn conversion_keys(conversion: &Conversion) -> [(Table, Vec<u8>); 2] {
    let fact = &conversion.fact;
    let id = |key: Key| key.str(&fact.goal_id).str(&fact.key).into_vec();
    [
        (Table::Conversions, id(Key::new().str(&fact.tenant))),
        (Table::ConversionsByTime, id(time_key(Key::new().str(&fact.tenant), Some(TIME_BUCKET_MS), fact.ts))),
    ]
}

pub(super) fn rollup_key(tenant: &str, granularity: Granularity, bucket: Millis, cell: &Cell) -> Result<Vec<u8>> {
    let key = Key::new().str(tenant).tag(granularity_tag(granularity)).time(bucket);
    Ok(key.bytes(&encode(cell)?).into_vec())
}

/// A campaign's row: one row holds all its counters for a bucket, so a report over every
/// campaign reads a row per campaign and bucket, however many cells each has.
pub(super) fn campaign_rollup_key(tenant: &str, granularity: Granularity, bucket: Millis, campaign_id: &str) -> Vec<u8> {
    campaign_rollup_partition(tenant, granularity).time(bucket).str(campaign_id).into_vec()
}

pub(super) fn campaign_rollup_partition(tenant: &str, granularity: Granularity) -> Key {
    Key::new().str(tenant).tag(granularity_tag(granularity))
}

/// The key of the tenant's row that a [`campaign_rollup_key`] counts under: the campaign key
/// without the campaign. That row holds every campaign's row of the bucket summed, so that
/// a daily series of a tenant reads a row per day rather than one per campaign and day.
pub(super) fn tenant_rollup_key_of(campaign_key: &[u8]) -> Result<&[u8]> {
    let corrupt = || StoreError::Corrupt("campaign rollup key too short".to_owned());
    let (_tenant, rest) = key::read_str(campaign_key).ok_or_else(corrupt)?;
    // The granularity tag and the bucket start follow the tenant.
    campaign_key.get(..campaign_key.len() - rest.len() + 1 + 8).ok_or_else(corrupt)
}

pub(super) fn pending_key(tenant: &str, msg_hash: &str, hour: Millis, cell: &CampaignCell) -> Result<Vec<u8>> {
    Ok(pending_partition(tenant, msg_hash).time(hour).bytes(&encode(cell)?).into_vec())
}

pub(super) fn pending_partition(tenant: &str, msg_hash: &str) -> Key {
    Key::new().str(tenant).str(msg_hash)
}

/// A customer's badge partition.
pub(super) fn badge_partition(tenant: &str, customer_id: &str) -> Key {
    Key::new().str(tenant).str(customer_id)
}

/// A row of a badge partition, in timeline order: newest first (`ts`, then `event_id`,
/// both descending), so that a page is a forward scan from its cursor (fjall iterates
/// forwards several times faster than backwards, most of all in memtables).
pub(super) fn badge_key(tenant: &str, customer_id: &str, ts: Millis, event_id: &str) -> Vec<u8> {
    badge_time(tenant, customer_id, ts).str_desc(event_id).into_vec()
}

/// Every row of the badge partition at `ts` starts with this.
pub(super) fn badge_time(tenant: &str, customer_id: &str, ts: Millis) -> Key {
    badge_partition(tenant, customer_id).time_desc(ts)
}

/// A customer's partition of `activity_by_customer` for one kind of record: `e` app
/// events, `o` order status records.
pub(super) fn activity_partition(tenant: &str, customer_id: &str, kind: u8) -> Key {
    Key::new().str(tenant).str(customer_id).tag(kind)
}

/// A row of `activity_by_customer`.
pub(super) fn activity_key(tenant: &str, customer_id: &str, kind: u8, ts: Millis, event_id: &str) -> Vec<u8> {
    time_key(activity_partition(tenant, customer_id, kind), None, ts).str(event_id).into_vec()
}

/// A badge's counter rows of one level.
pub(super) fn badge_stats_partition(tenant: &str, badge_id: &str, level: StatLevel) -> Key {
    let tag = match level {
        StatLevel::Day => b'd',
        StatLevel::Instant => b'i',
    };
    Key::new().str(tenant).str(badge_id).tag(tag)
}

/// A customer's holding intervals of a badge.
pub(super) fn holding_key(tenant: &str, customer_id: &str, badge_id: &str) -> Key {
    Key::new().str(tenant).str(customer_id).str(badge_id)
}

/// A row of a tenant's badge feed.
pub(super) fn feed_key(tenant: &str, position: FeedPosition) -> Vec<u8> {
    Key::new().str(tenant).bytes(&position.seq.to_be_bytes()).bytes(&position.index.to_be_bytes()).into_vec()
}

pub(super) const ACTIVITY_EVENT: u8 = b'e';
pub(super) const ACTIVITY_ORDER: u8 = b'o';

pub(super) fn granularity_tag(granularity: Granularity) -> u8 {
    match granularity {
        Granularity::Hour => b'h',
        Granularity::Day => b'd',
        Granularity::Month => b'm',
    }
}

/// A customer's months in `customer_states`; each row adds the month's start.
pub(super) fn customer_state_partition(tenant: &str, customer_id: &str) -> Key {
    Key::new().str(tenant).str(customer_id)
}

pub(super) fn order_state_key(tenant: &str, order_id: &str) -> Key {
    Key::new().str(tenant).str(order_id)
}

/// The customers marked under a message in `unregistered_messages`; each row adds one.
pub(super) fn unregistered_partition(tenant: &str, msg_hash: &str) -> Key {
    Key::new().str(tenant).str(msg_hash)
}

pub(super) fn exposure_partition(tenant: &str, campaign_id: &str) -> Key {
    Key::new().str(tenant).str(campaign_id)
}

/// The key in `meta` of the config a tenant's state was last folded under.
pub(super) fn folded_config_key(tenant: &str) -> Vec<u8> {
    Key::new().bytes(b"folded_config/").str(tenant).into_vec()
}

/// The key of a per-shard counter in `meta`: its name, then the shard.
pub(super) fn counter_key(name: &[u8], shard: u32) -> Vec<u8> {
    debug_assert!(shard < LOG_SHARDS);
    [name, b"/", &shard.to_be_bytes()].concat()
}

/// The key of a log chunk (of its first entry) or a set-aside entry: shard, then position, both big-endian so they sort numerically.
pub(super) fn log_key(shard: u32, seq: u64) -> [u8; 12] {
    let mut key = [0; 12];
    key[..4].copy_from_slice(&shard.to_be_bytes());
    key[4..].copy_from_slice(&seq.to_be_bytes());
    key
}

/// `partition`, then (in bucketed tables) the bucket of `ts`, then `ts`.
pub(super) fn time_key(partition: Key, bucket_ms: Option<Millis>, ts: Millis) -> Key {
    match bucket_ms {
        // Saturating: the bucket of a time near `Millis::MIN` would start below it.
        Some(bucket_ms) => partition.time(ts.saturating_sub(ts.rem_euclid(bucket_ms))).time(ts),
        None => partition.time(ts),
    }
}

pub(super) type KeyRange = (Bound<Vec<u8>>, Bound<Vec<u8>>);

/// The keys of rows in `partition`, laid out as [`time_key`] writes them, with
/// `from <= ts < to`; `to = None` means no upper end (an inclusive end at `Millis::MAX`).
pub(super) fn time_range(partition: &Key, bucket_ms: Option<Millis>, from: Millis, to: Option<Millis>) -> KeyRange {
    let lower = Bound::Included(time_key(partition.clone(), bucket_ms, from).into_vec());
    let upper = match to {
        Some(to) => Bound::Excluded(time_key(partition.clone(), bucket_ms, to).into_vec()),
        None => key::prefix_end(partition.as_bytes()).map_or(Bound::Unbounded, Bound::Excluded),
    };
    (lower, upper)
}

/// Whether a range holds no key; fjall is not asked about inverted ranges.
pub(super) fn range_is_empty(range: &KeyRange) -> bool {
    match range {
        (Bound::Included(lower), Bound::Excluded(upper)) => lower >= upper,
        _ => false,
    }
}

/// Both ends of `range`, if fjall takes them.
pub(super) fn check_range(range: &KeyRange) -> Result<()> {
    for bound in [&range.0, &range.1] {
        if let Bound::Included(key) | Bound::Excluded(key) = bound {
            super::checked(key)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_campaign_rows_tenant_key_is_its_key_without_the_campaign() {
        let bucket = 1_767_225_600_000;
        let campaign_key = campaign_rollup_key("acme", Granularity::Day, bucket, "spring-sale");
        let tenant_key = campaign_rollup_partition("acme", Granularity::Day).time(bucket).into_vec();
        assert_eq!(tenant_rollup_key_of(&campaign_key).unwrap(), &tenant_key[..]);
        // The row of no campaign counts under the same key.
        assert_eq!(tenant_rollup_key_of(&campaign_rollup_key("acme", Granularity::Day, bucket, "")).unwrap(), &tenant_key[..]);
        assert!(matches!(tenant_rollup_key_of(&tenant_key[..tenant_key.len() - 1]), Err(StoreError::Corrupt(_))), "a key cut short");
        assert!(matches!(tenant_rollup_key_of(b"\0\0"), Err(StoreError::Corrupt(_))));
    }
}
