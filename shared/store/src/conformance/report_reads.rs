//! Checks of [`ReportReads`](crate::ReportReads): the half-open range reads, and rollup
//! counters (per message, per campaign, pending by message) summed by hour, day and month.

use super::{
    T0, campaign_delta, campaigns, cells, change, commit_campaign_counters, commit_conversions, commit_in_place, commit_logged, conversion,
    delta, event, head, ids, message, pending_delta, tenant, touch,
};
use crate::{CellKinds, Result, Store};
use std::collections::BTreeMap;
use touchstone_core::attribution::Rule;
use touchstone_core::model::{Message, Millis, Record, TouchKind};
use touchstone_core::rollup::{CampaignCell, CampaignCells, Cell, Cells, DAY_MS, Granularity, HOUR_MS, Tally};

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
    let (before, before_other) = (head(store, &t).await?, head(store, &other).await?);
    store.ingest(records).await?;
    commit_logged(store, &t, before).await?;
    commit_logged(store, &other, before_other).await?;
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

/// Campaign counters land in the hour, day and UTC month of their delta, summed per
/// campaign; one campaign can be read alone.
pub async fn campaign_rollups_sum_by_campaign_in_hour_day_and_month_buckets(store: &dyn Store) -> Result<()> {
    let t = tenant("campaign_rollups");
    // T0 is 1 January; h3 is in February.
    let (h1, h2, h3) = (T0 + 30 * DAY_MS + HOUR_MS, T0 + 30 * DAY_MS + 5 * HOUR_MS, T0 + 31 * DAY_MS + HOUR_MS);
    let (january, february, march) = (T0, T0 + 31 * DAY_MS, T0 + 60 * DAY_MS);
    assert_eq!(Granularity::Month.bucket(h3), february);
    let opened = CampaignCell::Touch { kind: TouchKind::Opened };
    let sent = CampaignCell::Message;
    let converted = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch };
    let unattributed = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::Unattributed };
    let first = vec![
        campaign_delta(&t, "c1", h1, &opened, 1, 0),
        campaign_delta(&t, "c1", h2, &opened, 2, 0),
        campaign_delta(&t, "c1", h1, &converted, 1, 500),
        campaign_delta(&t, "c2", h1, &sent, 1, 0),
        campaign_delta(&t, "", h2, &unattributed, 3, 900),
        campaign_delta(&t, "c1", h3, &opened, 4, 0),
    ];
    commit_campaign_counters(store, &t, first, Vec::new()).await?;
    commit_campaign_counters(store, &t, vec![campaign_delta(&t, "c1", h1, &opened, 10, 0)], Vec::new()).await?;

    let read = |campaign: Option<&'static str>, granularity, from, to| store.campaign_rollups(&t, campaign, CellKinds::All, granularity, from, to);
    let january_all =
        campaigns(&[("c1", &opened, 13, 0), ("c1", &converted, 1, 500), ("c2", &sent, 1, 0), ("", &unattributed, 3, 900)]);
    assert_eq!(read(None, Granularity::Month, january, february).await?, january_all);
    assert_eq!(read(None, Granularity::Day, h1 - HOUR_MS, h1 - HOUR_MS + DAY_MS).await?, january_all, "the day of h1 and h2");
    assert_eq!(read(None, Granularity::Hour, h1 + 1, h2).await?, BTreeMap::new(), "buckets starting in [from, to)");
    let h1_only = campaigns(&[("c1", &opened, 11, 0), ("c1", &converted, 1, 500), ("c2", &sent, 1, 0)]);
    assert_eq!(read(None, Granularity::Hour, h1, h2).await?, h1_only, "the bucket at `to` is out");
    assert_eq!(read(Some("c1"), Granularity::Hour, h1, h1 + 1).await?, campaigns(&[("c1", &opened, 11, 0), ("c1", &converted, 1, 500)]));
    assert_eq!(read(Some(""), Granularity::Month, january, march).await?, campaigns(&[("", &unattributed, 3, 900)]), "no campaign");
    let year = read(Some("c1"), Granularity::Month, january, march).await?;
    assert_eq!(year, campaigns(&[("c1", &opened, 17, 0), ("c1", &converted, 1, 500)]), "January and February");
    assert_eq!(read(Some("c3"), Granularity::Month, january, march).await?, BTreeMap::new());
    assert_eq!(read(None, Granularity::Month, march, march + 31 * DAY_MS).await?, BTreeMap::new());
    let conversions = store.campaign_rollups(&t, None, CellKinds::Conversions, Granularity::Month, january, march).await?;
    assert_eq!(conversions, campaigns(&[("c1", &converted, 1, 500), ("", &unattributed, 3, 900)]), "conversion cells alone");
    let other = store.campaign_rollups(&tenant("campaign_rollups_other"), None, CellKinds::All, Granularity::Month, january, march).await?;
    assert_eq!(other, BTreeMap::new());
    Ok(())
}

/// The same counters summed over campaigns (or of one campaign), bucket by bucket, oldest
/// first; a bucket left with no cells is absent.
pub async fn campaign_rollup_buckets_sum_every_campaign_per_bucket(store: &dyn Store) -> Result<()> {
    let t = tenant("campaign_rollup_buckets");
    let (h1, h2, h3) = (T0 + 30 * DAY_MS + HOUR_MS, T0 + 30 * DAY_MS + 5 * HOUR_MS, T0 + 31 * DAY_MS + HOUR_MS);
    let (h4, march) = (T0 + 32 * DAY_MS, T0 + 60 * DAY_MS);
    let opened = CampaignCell::Touch { kind: TouchKind::Opened };
    let converted = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::LastTouch };
    let unattributed = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::Unattributed };
    let first = vec![
        campaign_delta(&t, "c1", h1, &opened, 1, 0),
        campaign_delta(&t, "c1", h1, &converted, 1, 500),
        campaign_delta(&t, "c2", h1, &converted, 2, 70),
        campaign_delta(&t, "", h2, &unattributed, 3, 900),
        campaign_delta(&t, "c1", h3, &opened, 4, 0),
        campaign_delta(&t, "c1", h4, &converted, 1, 5),
    ];
    commit_campaign_counters(store, &t, first, Vec::new()).await?;
    // The conversion at h4 is retracted: its buckets are left with nothing.
    commit_campaign_counters(store, &t, vec![campaign_delta(&t, "c1", h4, &converted, -1, -5)], Vec::new()).await?;

    let total = |by_campaign: BTreeMap<String, CampaignCells>| {
        let mut sum = CampaignCells::default();
        by_campaign.into_values().for_each(|cells| sum.merge(cells));
        sum
    };
    let read = |kinds, granularity, from, to| store.campaign_rollup_buckets(&t, None, kinds, granularity, from, to);
    let day = |ms: Millis| Granularity::Day.bucket(ms);
    let days = read(CellKinds::All, Granularity::Day, T0, march).await?;
    let expected = vec![
        (day(h1), total(campaigns(&[("c1", &opened, 1, 0), ("c1", &converted, 3, 570), ("", &unattributed, 3, 900)]))),
        (day(h3), total(campaigns(&[("c1", &opened, 4, 0)]))),
    ];
    assert_eq!(days, expected);
    // Each bucket is what campaign_rollups gives for it alone, summed over campaigns.
    for (bucket, cells) in &days {
        assert_eq!(&total(store.campaign_rollups(&t, None, CellKinds::All, Granularity::Day, *bucket, bucket + DAY_MS).await?), cells);
    }
    let hours = read(CellKinds::Conversions, Granularity::Hour, h1, h3 + HOUR_MS).await?;
    let expected = vec![(h1, total(campaigns(&[("c1", &converted, 3, 570)]))), (h2, total(campaigns(&[("", &unattributed, 3, 900)])))];
    assert_eq!(hours, expected, "conversion cells alone; h3 holds none");
    assert_eq!(read(CellKinds::All, Granularity::Hour, h1 + 1, h2).await?, vec![], "buckets starting in [from, to)");
    assert_eq!(read(CellKinds::All, Granularity::Hour, h2, h3).await?.len(), 1, "the bucket at `to` is out");
    let months = read(CellKinds::All, Granularity::Month, T0, march).await?;
    assert_eq!(months.iter().map(|(bucket, _)| *bucket).collect::<Vec<_>>(), [T0, T0 + 31 * DAY_MS]);
    assert_eq!(store.campaign_rollup_buckets(&tenant("campaign_rollup_buckets_other"), None, CellKinds::All, Granularity::Day, T0, march).await?, vec![]);

    // One campaign's buckets: its own rows alone, each what campaign_rollups gives for the
    // bucket; the no-campaign row is the campaign "".
    let of = |campaign: &'static str, kinds, granularity, from, to| store.campaign_rollup_buckets(&t, Some(campaign), kinds, granularity, from, to);
    let c1 = |entries: &[(&CampaignCell, i64, i128)]| {
        let entries: Vec<_> = entries.iter().map(|&(cell, count, value)| ("c1", cell, count, value)).collect();
        campaigns(&entries).remove("c1").unwrap_or_default()
    };
    let c1_days = of("c1", CellKinds::All, Granularity::Day, T0, march).await?;
    assert_eq!(c1_days, vec![(day(h1), c1(&[(&opened, 1, 0), (&converted, 1, 500)])), (day(h3), c1(&[(&opened, 4, 0)]))], "c1's days; h4's retracted");
    for (bucket, cells) in &c1_days {
        let alone = store.campaign_rollups(&t, Some("c1"), CellKinds::All, Granularity::Day, *bucket, bucket + DAY_MS).await?;
        assert_eq!(alone.get("c1"), Some(cells));
    }
    assert_eq!(of("c1", CellKinds::Conversions, Granularity::Day, T0, march).await?, vec![(day(h1), c1(&[(&converted, 1, 500)]))]);
    // Over more hours than a store may read one by one (60 days of them): the same rows.
    let c1_hours = of("c1", CellKinds::All, Granularity::Hour, T0, march).await?;
    assert_eq!(c1_hours, vec![(h1, c1(&[(&opened, 1, 0), (&converted, 1, 500)])), (h3, c1(&[(&opened, 4, 0)]))]);
    let none = of("", CellKinds::All, Granularity::Day, T0, march).await?;
    assert_eq!(none, vec![(day(h2), campaigns(&[("", &unattributed, 3, 900)]).remove("").unwrap_or_default())]);
    assert_eq!(of("c2", CellKinds::All, Granularity::Hour, h1, h1 + HOUR_MS).await?.len(), 1);
    assert_eq!(of("c2", CellKinds::All, Granularity::Hour, h1 + 1, h2).await?, vec![], "buckets starting in [from, to)");
    assert_eq!(of("c3", CellKinds::All, Granularity::Day, T0, march).await?, vec![], "a campaign with no rows");
    Ok(())
}

/// Campaign cells summing to zero are left out, and a campaign left with none is too.
pub async fn campaign_rollups_cancelling_to_zero_are_absent(store: &dyn Store) -> Result<()> {
    let t = tenant("campaign_rollups_zero");
    let h1 = T0 + 40 * DAY_MS + HOUR_MS;
    let opened = CampaignCell::Touch { kind: TouchKind::Opened };
    let converted = CampaignCell::Conversion { goal_id: "orders".into(), rule: Rule::Explicit };
    let first = vec![campaign_delta(&t, "c1", h1, &opened, 1, 0), campaign_delta(&t, "c2", h1, &converted, 1, 7)];
    commit_campaign_counters(store, &t, first, Vec::new()).await?;
    commit_campaign_counters(store, &t, vec![campaign_delta(&t, "c2", h1, &converted, -1, -7)], Vec::new()).await?;
    for granularity in Granularity::ALL {
        let from = granularity.bucket(h1);
        let read = store.campaign_rollups(&t, None, CellKinds::All, granularity, from, granularity.next(from)).await?;
        assert_eq!(read, campaigns(&[("c1", &opened, 1, 0)]), "{granularity:?}: a retracted conversion left its campaign");
    }
    Ok(())
}

/// Pending counters of a message sum per hour and cell; negated deltas (a registration
/// moving them to the campaign) leave nothing.
pub async fn pending_counters_sum_per_hour_and_cell_until_moved(store: &dyn Store) -> Result<()> {
    let t = tenant("pending");
    let (h1, h2) = (T0 + HOUR_MS, T0 + DAY_MS + 7 * HOUR_MS);
    let opened = CampaignCell::Touch { kind: TouchKind::Opened };
    let viewed = CampaignCell::EventHit { name: "view".into() };
    let first = vec![pending_delta(&t, "m1", h1, &opened, 1), pending_delta(&t, "m1", h2, &viewed, 2), pending_delta(&t, "m2", h1, &opened, 5)];
    commit_campaign_counters(store, &t, Vec::new(), first).await?;
    commit_campaign_counters(store, &t, Vec::new(), vec![pending_delta(&t, "m1", h1, &opened, 3)]).await?;

    let sorted = |mut counters: Vec<(Millis, CampaignCell, Tally)>| {
        counters.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        counters
    };
    let m1 = sorted(store.pending_counters(&t, 0, "m1").await?);
    assert_eq!(m1, vec![(h1, opened.clone(), Tally { count: 4, value_micros: 0 }), (h2, viewed.clone(), Tally { count: 2, value_micros: 0 })]);
    let moved = vec![pending_delta(&t, "m1", h1, &opened, -4), pending_delta(&t, "m1", h2, &viewed, -2)];
    commit_campaign_counters(store, &t, Vec::new(), moved).await?;
    assert_eq!(store.pending_counters(&t, 0, "m1").await?, vec![], "moved counters remain");
    assert_eq!(store.pending_counters(&t, 0, "m2").await?, vec![(h1, opened, Tally { count: 5, value_micros: 0 })]);
    assert_eq!(store.pending_counters(&tenant("pending_other"), 0, "m1").await?, vec![]);
    Ok(())
}

/// Registered messages are found by `sent_at`, half-open, across hour edges.
pub async fn messages_sent_between_is_half_open(store: &dyn Store) -> Result<()> {
    let t = tenant("messages_sent");
    let hour = T0 + 3 * HOUR_MS;
    let sent = |msg_hash: &str, sent_at: Millis| Message { sent_at, ..message(&t, msg_hash, "c1") };
    let messages = [sent("h-1", hour - 1), sent("h", hour), sent("h+1", hour + 1), sent("later", hour + 2 * HOUR_MS)];
    store.ingest(messages.iter().cloned().map(Record::Message).collect()).await?;
    store.ingest(vec![Record::Message(message(&tenant("messages_sent_other"), "h", "c1"))]).await?;
    let cases: [(Millis, Millis, &[&str]); 5] = [
        (hour - 1, hour + 1, &["h", "h-1"]),
        (hour, hour + 1, &["h"]),
        (hour - HOUR_MS, hour + 3 * HOUR_MS, &["h", "h+1", "h-1", "later"]),
        (hour, hour, &[]),
        (hour + 2, hour + 2 * HOUR_MS, &[]),
    ];
    for (from, to, want) in cases {
        let mut found = store.messages_sent_between(&t, from, to).await?;
        found.sort_by(|a, b| a.msg_hash.cmp(&b.msg_hash));
        let hashes: Vec<&str> = found.iter().map(|m| m.msg_hash.as_str()).collect();
        assert_eq!(hashes, want, "messages_sent_between [{from}, {to})");
        for message in &found {
            assert_eq!(Some(message), messages.iter().find(|m| m.msg_hash == message.msg_hash), "the message as registered");
        }
    }
    Ok(())
}
