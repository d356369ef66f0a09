//! Checks of [`ReportReads`](crate::ReportReads): the half-open range reads, and rollup
//! counters summed by hour and day.

use super::{T0, cells, change, commit_conversions, commit_in_place, conversion, delta, event, ids, tenant, touch};
use crate::{Result, Store};
use touchstone_core::attribution::Rule;
use touchstone_core::model::{Millis, Record, TouchKind};
use touchstone_core::rollup::{Cell, Cells, DAY_MS, Granularity, HOUR_MS};

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
