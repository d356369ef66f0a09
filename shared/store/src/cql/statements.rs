//! Every CQL statement the backend runs, prepared once at connect.
//!
//! Prepared statements are what make requests token-aware: the driver's default load
//! balancing computes each request's partition token from the bound key values and sends it
//! to a replica that owns the partition, so no request takes an extra coordinator hop.

use super::errors::cql_error;
use crate::Result;
use scylla::client::session::Session;
use scylla::statement::prepared::PreparedStatement;
use scylla::statement::{Consistency, SerialConsistency};

/// Rows per page of every paged read.
pub(super) const PAGE_SIZE: i32 = 5_000;

/// How a statement is run.
#[derive(Clone, Copy)]
enum Kind {
    /// A plain upsert or delete of fixed values: running it twice is running it once, so the
    /// retry policy may retry it after a timeout.
    Write,
    /// A read, paged.
    Read,
    /// A read at the serial consistency: it sees (and completes) every compare-and-set that
    /// started before it.
    SerialRead,
    /// A compare-and-set (LWT). Marked idempotent too: every caller reads a "not applied"
    /// answer that shows its own earlier attempt as what it is (its own dedup position, its
    /// own step id) or treats it as lost and retries with new values, so a driver retry after
    /// an unknown outcome never turns into a wrong answer.
    Lwt,
}

macro_rules! statements {
    ($($(#[$doc:meta])* $name:ident: $kind:ident => $cql:literal,)+) => {
        pub(super) struct Statements {
            $($(#[$doc])* pub $name: PreparedStatement,)+
        }

        impl Statements {
            pub(super) async fn prepare(session: &Session, keyspace: &str, serial: SerialConsistency) -> Result<Statements> {
                Ok(Statements {
                    $($name: prepare(session, keyspace, serial, $cql, Kind::$kind).await?,)+
                })
            }
        }
    };
}

async fn prepare(session: &Session, keyspace: &str, serial: SerialConsistency, cql: &str, kind: Kind) -> Result<PreparedStatement> {
    let text = cql.replace("{ks}", keyspace);
    let mut statement = session.prepare(text).await.map_err(cql_error)?;
    statement.set_is_idempotent(true);
    match kind {
        Kind::Write | Kind::Lwt => {}
        Kind::Read => statement.set_page_size(PAGE_SIZE),
        Kind::SerialRead => {
            statement.set_page_size(PAGE_SIZE);
            statement.set_consistency(match serial {
                SerialConsistency::Serial => Consistency::Serial,
                SerialConsistency::LocalSerial => Consistency::LocalSerial,
            });
        }
    }
    Ok(statement)
}

statements! {
    // ---- records, written once per accepted record ----
    insert_message: Write => "INSERT INTO {ks}.messages (tenant, slot, msg_hash, campaign_id, channel, tags, sent_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
    insert_message_by_time: Write => "INSERT INTO {ks}.messages_by_time (tenant, hour, shard, sent_at, msg_hash, campaign_id, channel, tags) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    insert_badge_customer: Write => "INSERT INTO {ks}.badge_customers (tenant, customer_id) VALUES (?, ?)",
    insert_records_part: Write => "INSERT INTO {ks}.records_by_day (tenant, day, hour, kind, step, part, records) VALUES (?, ?, ?, ?, ?, ?, ?)",
    insert_activity: Write => "INSERT INTO {ks}.activity_by_customer (tenant, slot, customer_id, kind, ts, event_id, record) VALUES (?, ?, ?, ?, ?, ?, ?)",
    insert_bucket: Write => "INSERT INTO {ks}.buckets (tenant, table_name, key, bucket) VALUES (?, ?, ?, ?) USING TTL ?",

    // ---- record reads ----
    select_messages: Read => "SELECT msg_hash, campaign_id, channel, tags, sent_at FROM {ks}.messages WHERE tenant = ? AND slot = ? AND msg_hash IN ?",
    select_messages_by_time: Read => "SELECT sent_at, msg_hash, campaign_id, channel, tags FROM {ks}.messages_by_time WHERE tenant = ? AND hour = ? AND shard = ? AND sent_at >= ? AND sent_at < ?",
    select_buckets: Read => "SELECT bucket FROM {ks}.buckets WHERE tenant = ? AND table_name = ? AND key = ? AND bucket >= ? AND bucket <= ?",

    // ---- conversions: written with the timestamp of their step ----
    insert_conversion: Write => "INSERT INTO {ks}.conversions (tenant, slot, goal_id, key, customer_id, conversion) VALUES (?, ?, ?, ?, ?, ?)",
    delete_conversion: Write => "DELETE FROM {ks}.conversions WHERE tenant = ? AND slot = ? AND goal_id = ? AND key = ? AND customer_id = ?",
    insert_conversion_by_time: Write => "INSERT INTO {ks}.conversions_by_time (tenant, day, shard, ts, goal_id, key, customer_id, conversion) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    delete_conversion_by_time: Write => "DELETE FROM {ks}.conversions_by_time WHERE tenant = ? AND day = ? AND shard = ? AND ts = ? AND goal_id = ? AND key = ? AND customer_id = ?",
    select_conversion: Read => "SELECT conversion FROM {ks}.conversions WHERE tenant = ? AND slot = ? AND goal_id = ? AND key = ?",
    select_conversions_by_time: Read => "SELECT conversion FROM {ks}.conversions_by_time WHERE tenant = ? AND day = ? AND shard = ? AND ts >= ? AND ts < ?",

    // ---- rollups: delta rows keyed by their step, written with the step's timestamp ----
    insert_rollup_delta: Write => "INSERT INTO {ks}.rollup_deltas (tenant, granularity, span, bucket, cell, step, count, value_micros) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
    select_rollup_deltas: Read => "SELECT bucket, cell, count, value_micros FROM {ks}.rollup_deltas WHERE tenant = ? AND granularity = ? AND span = ? AND bucket >= ? AND bucket <= ?",
    insert_campaign_rollup_delta: Write => "INSERT INTO {ks}.campaign_rollup_deltas (tenant, granularity, span, bucket, campaign_id, step, cells) VALUES (?, ?, ?, ?, ?, ?, ?)",
    select_campaign_rollup_deltas: Read => "SELECT bucket, campaign_id, cells FROM {ks}.campaign_rollup_deltas WHERE tenant = ? AND granularity = ? AND span = ?",
    select_campaign_rollup_deltas_of: Read => "SELECT bucket, campaign_id, cells FROM {ks}.campaign_rollup_deltas WHERE tenant = ? AND granularity = ? AND span = ? AND campaign_id = ? AND bucket >= ? AND bucket <= ?",
    insert_pending_delta: Write => "INSERT INTO {ks}.pending_deltas (tenant, slot, msg_hash, lane, hour, step, cells) VALUES (?, ?, ?, ?, ?, ?, ?)",
    select_pending_deltas: Read => "SELECT hour, cells FROM {ks}.pending_deltas WHERE tenant = ? AND slot = ? AND msg_hash = ? AND lane = ?",

    // ---- badges ----
    select_badge_partition: Read => "SELECT record FROM {ks}.activity_by_customer WHERE tenant = ? AND slot = ? AND customer_id = ? AND kind = 'b' ORDER BY customer_id DESC, kind DESC, ts DESC, event_id DESC",
    select_badge_page: Read => "SELECT record FROM {ks}.activity_by_customer WHERE tenant = ? AND slot = ? AND (customer_id, kind, ts, event_id) >= (?, 'b', ?, ?) AND (customer_id, kind, ts, event_id) < (?, 'b', ?, ?) ORDER BY customer_id DESC, kind DESC, ts DESC, event_id DESC LIMIT ?",
    select_badge_customers: Read => "SELECT customer_id FROM {ks}.badge_customers WHERE tenant = ?",
    insert_tenant: Write => "INSERT INTO {ks}.tenants (bucket, tenant) VALUES (0, ?)",
    select_tenants: Read => "SELECT tenant FROM {ks}.tenants WHERE bucket = 0",
    select_tenant: Read => "SELECT tenant FROM {ks}.tenants WHERE bucket = 0 AND tenant = ?",
    select_records_of_hour: Read => "SELECT records FROM {ks}.records_by_day WHERE tenant = ? AND day = ? AND hour = ? AND kind = ?",
    delete_activity: Write => "DELETE FROM {ks}.activity_by_customer WHERE tenant = ? AND slot = ? AND customer_id = ? AND kind = ? AND ts = ? AND event_id = ?",
    select_activity: Read => "SELECT customer_id, kind, record FROM {ks}.activity_by_customer WHERE tenant = ? AND slot = ? AND customer_id IN ?",
    insert_badge_stat_delta: Write => "INSERT INTO {ks}.badge_stat_deltas (tenant, badge_id, level, ts, step, tally) VALUES (?, ?, ?, ?, ?, ?)",
    select_badge_stat_deltas: Read => "SELECT ts, tally FROM {ks}.badge_stat_deltas WHERE tenant = ? AND badge_id = ? AND level = ? AND ts >= ? AND ts < ?",
    insert_badge_holding: Write => "INSERT INTO {ks}.badge_holdings (tenant, slot, customer_id, badge_id, intervals) VALUES (?, ?, ?, ?, ?)",
    delete_badge_holding: Write => "DELETE FROM {ks}.badge_holdings WHERE tenant = ? AND slot = ? AND customer_id = ? AND badge_id = ?",
    select_badge_holdings: Read => "SELECT customer_id, badge_id, intervals FROM {ks}.badge_holdings WHERE tenant = ? AND slot = ? AND customer_id IN ?",
    insert_badge_feed: Write => "INSERT INTO {ks}.badge_feed (tenant, seq, idx, change, event) VALUES (?, ?, ?, ?, ?)",
    select_badge_feed_after: Read => "SELECT seq, idx, change, event FROM {ks}.badge_feed WHERE tenant = ? AND (seq, idx) > (?, ?) LIMIT ?",
    select_badge_feed_end: Read => "SELECT seq, idx FROM {ks}.badge_feed WHERE tenant = ? ORDER BY seq DESC, idx DESC LIMIT 1",
    select_badge_book: Read => "SELECT book FROM {ks}.badge_books WHERE tenant = ?",
    insert_badge_book_if_absent: Lwt => "INSERT INTO {ks}.badge_books (tenant, version, book) VALUES (?, ?, ?) IF NOT EXISTS",
    update_badge_book_if_version: Lwt => "UPDATE {ks}.badge_books SET version = ?, book = ? WHERE tenant = ? IF version = ?",

    // ---- configs ----
    select_config: Read => "SELECT version, config FROM {ks}.configs WHERE tenant = ?",
    insert_config_if_absent: Lwt => "INSERT INTO {ks}.configs (tenant, version, config) VALUES (?, ?, ?) IF NOT EXISTS",
    update_config_if_version: Lwt => "UPDATE {ks}.configs SET version = ?, config = ? WHERE tenant = ? IF version = ?",

    // ---- dedup and the ingest log ----
    select_dedup_marks: Read => "SELECT id, epoch FROM {ks}.dedup_marks WHERE tenant = ? AND bucket = ? AND namespace = ? AND id IN ?",
    insert_dedup_mark: Write => "INSERT INTO {ks}.dedup_marks (tenant, bucket, namespace, id, epoch, shard, seq) VALUES (?, ?, ?, ?, ?, ?, ?)",
    init_setting: Lwt => "INSERT INTO {ks}.store_settings (name, value) VALUES (?, ?) IF NOT EXISTS",
    init_log_shard: Lwt => "INSERT INTO {ks}.log_shards (shard, head, epoch) VALUES (?, 0, 0) IF NOT EXISTS",
    select_log_shard: Read => "SELECT head, epoch, owner, lease_until, abandoned FROM {ks}.log_shards WHERE shard = ?",
    select_log_head: Read => "SELECT head FROM {ks}.log_shards WHERE shard = ? LIMIT 1",
    take_free_log_shard: Lwt => "UPDATE {ks}.log_shards SET epoch = ?, owner = ?, lease_until = ? WHERE shard = ? IF epoch = ? AND owner = null",
    /// Batched with `insert_abandoned_epoch`: a conditional batch on the shard's partition.
    take_held_log_shard: Lwt => "UPDATE {ks}.log_shards SET epoch = ?, owner = ?, lease_until = ? WHERE shard = ? IF epoch = ? AND owner = ?",
    insert_abandoned_epoch: Write => "INSERT INTO {ks}.log_shards (shard, abandoned) VALUES (?, ?) USING TTL ?",
    release_log_shard: Lwt => "UPDATE {ks}.log_shards SET owner = null WHERE shard = ? IF epoch = ? AND owner = ?",
    commit_log_shard: Lwt => "UPDATE {ks}.log_shards SET head = ?, owner = null WHERE shard = ? IF epoch = ? AND owner = ?",
    insert_log_intent: Write => "INSERT INTO {ks}.log_entries (shard, chunk, seq, epoch, appended_at, payload) VALUES (?, ?, ?, ?, ?, ?)",
    insert_log_accepted: Write => "INSERT INTO {ks}.log_entries (shard, chunk, seq, epoch, appended_at, payload, outcome) VALUES (?, ?, ?, ?, ?, ?, 'accepted')",
    update_log_outcome_if_unset: Lwt => "UPDATE {ks}.log_entries SET outcome = ? WHERE shard = ? AND chunk = ? AND seq = ? AND epoch = ? IF outcome = null",
    update_log_outcome: Write => "UPDATE {ks}.log_entries SET outcome = ? WHERE shard = ? AND chunk = ? AND seq = ? AND epoch = ?",
    select_log_rows: Read => "SELECT seq, epoch, appended_at, outcome, payload FROM {ks}.log_entries WHERE shard = ? AND chunk = ? AND seq > ? AND seq <= ?",
    delete_log_range: Write => "DELETE FROM {ks}.log_entries WHERE shard = ? AND chunk = ? AND seq > ? AND seq <= ?",
    delete_log_chunk: Write => "DELETE FROM {ks}.log_entries WHERE shard = ? AND chunk = ?",

    // ---- attribution progress and steps ----
    init_progress: Lwt => "INSERT INTO {ks}.shard_progress (shard, processed, step_id, step_timestamp, step_parts) VALUES (?, 0, 0, 0, 0) IF NOT EXISTS",
    select_progress_serial: SerialRead => "SELECT processed, step_id, step_timestamp, step_parts FROM {ks}.shard_progress WHERE shard = ?",
    update_progress_if: Lwt => "UPDATE {ks}.shard_progress SET processed = ?, step_id = ?, step_timestamp = ?, step_parts = ? WHERE shard = ? IF processed = ? AND step_id = ?",
    select_progress_of_lanes: Read => "SELECT processed, step_id, applied_step, applied_processed FROM {ks}.shard_progress WHERE shard IN ?",
    mark_step_applied: Write => "UPDATE {ks}.shard_progress SET applied_step = ?, applied_processed = ? WHERE shard = ?",
    insert_step_part: Write => "INSERT INTO {ks}.shard_steps (shard, step_id, part, body) VALUES (?, ?, ?, ?)",
    select_step_parts: Read => "SELECT part, body FROM {ks}.shard_steps WHERE shard = ? AND step_id = ?",
    delete_step: Write => "DELETE FROM {ks}.shard_steps WHERE shard = ? AND step_id = ?",

    // ---- set-aside entries: written with the timestamp of their step, newest position first ----
    insert_set_aside: Write => "INSERT INTO {ks}.set_aside (shard, seq, appended_at, set_aside_at, payload, reason) VALUES (?, ?, ?, ?, ?, ?)",
    select_set_aside: Read => "SELECT seq, appended_at, set_aside_at, payload, reason FROM {ks}.set_aside WHERE shard = ? LIMIT ?",
    count_set_aside: Read => "SELECT COUNT(*) FROM {ks}.set_aside WHERE shard = ?",

    // ---- the fold's state: written with the timestamp of their step ----
    select_customer_months: Read => "SELECT month, segment FROM {ks}.customer_states WHERE tenant = ? AND slot = ? AND customer_id = ? AND month >= ? AND month <= ?",
    /// Every month of the customers: an `IN` followed by a slice of the next clustering
    /// column is Cassandra 2.2's, not known to be accepted by every ScyllaDB release.
    select_customers_months: Read => "SELECT customer_id, month, segment FROM {ks}.customer_states WHERE tenant = ? AND slot = ? AND customer_id IN ?",
    select_customer_states_of_slot: Read => "SELECT customer_id, month, segment FROM {ks}.customer_states WHERE tenant = ? AND slot = ?",
    insert_customer_segment: Write => "INSERT INTO {ks}.customer_states (tenant, slot, customer_id, month, segment) VALUES (?, ?, ?, ?, ?)",
    delete_customer_segment: Write => "DELETE FROM {ks}.customer_states WHERE tenant = ? AND slot = ? AND customer_id = ? AND month = ?",
    select_order_states_in: Read => "SELECT order_id, state FROM {ks}.order_states WHERE tenant = ? AND slot = ? AND lane = ? AND order_id IN ?",
    select_order_states_of_slot: Read => "SELECT order_id, state FROM {ks}.order_states WHERE tenant = ? AND slot = ? AND lane = ?",
    insert_order_state: Write => "INSERT INTO {ks}.order_states (tenant, slot, lane, order_id, state) VALUES (?, ?, ?, ?, ?)",
    select_unregistered: Read => "SELECT customer_id FROM {ks}.unregistered_messages WHERE tenant = ? AND slot = ? AND msg_hash = ?",
    insert_unregistered: Write => "INSERT INTO {ks}.unregistered_messages (tenant, slot, msg_hash, customer_id) VALUES (?, ?, ?, ?)",
    delete_unregistered: Write => "DELETE FROM {ks}.unregistered_messages WHERE tenant = ? AND slot = ? AND msg_hash = ? AND customer_id = ?",
    select_exposed: Read => "SELECT customer_id FROM {ks}.campaign_exposures WHERE tenant = ? AND campaign_id = ?",
    insert_exposure: Write => "INSERT INTO {ks}.campaign_exposures (tenant, campaign_id, customer_id) VALUES (?, ?, ?)",
    select_folded_config: Read => "SELECT config FROM {ks}.folded_configs WHERE tenant = ? AND lane = ?",
    insert_folded_config: Write => "INSERT INTO {ks}.folded_configs (tenant, lane, config) VALUES (?, ?, ?)",

    // ---- workers ----
    insert_lease_if_absent: Lwt => "INSERT INTO {ks}.worker_leases (shard, owner) VALUES (?, ?) IF NOT EXISTS USING TTL ?",
    renew_lease_if_owner: Lwt => "UPDATE {ks}.worker_leases USING TTL ? SET owner = ? WHERE shard = ? IF owner = ?",
    delete_lease_if_owner: Lwt => "DELETE FROM {ks}.worker_leases WHERE shard = ? IF owner = ?",
    insert_live_worker: Write => "INSERT INTO {ks}.live_workers (pool, worker) VALUES (?, ?) USING TTL ?",
    select_live_workers: Read => "SELECT worker FROM {ks}.live_workers WHERE pool = ?",
}
