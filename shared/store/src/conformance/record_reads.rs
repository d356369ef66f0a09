//! Checks of [`RecordReads`](crate::RecordReads): a customer's touches across bucket edges,
//! and the batched reads against the single ones.

use super::{T0, change, commit_conversions, conversion, ids, order, sorted, tenant, touch};
use crate::{Result, Store};
use touchstone_core::attribution::Conversion;
use touchstone_core::model::{Millis, OrderRecord, Record, Touch};
use touchstone_core::rollup::{DAY_MS, HOUR_MS};

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
