//! Checks of [`BadgeStore`](crate::BadgeStore): the badge book's compare-and-set, and a
//! customer's badge events and activity, readable once ingested.

use super::{T0, event, order, tenant};
use crate::{IngestOutcome, Result, Store, StoreError};
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

pub async fn badge_book_defaults_and_compare_and_set(store: &dyn Store) -> Result<()> {
    let t = tenant("badge_book");
    assert_eq!(store.badge_book(&t).await?, BadgeBook::empty(&t));
    let conflict = |result: Result<()>| matches!(result, Err(StoreError::Conflict { tenant }) if tenant == t);
    let mut book = BadgeBook::empty(&t);
    assert!(conflict(store.save_badge_book(&book).await), "version 0 can never be saved");

    book.version = 1;
    book.save(BadgeDefinition::new("regular", "Regular"), T0).expect("a valid badge");
    store.save_badge_book(&book).await?;
    assert_eq!(store.badge_book(&t).await?, book);

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
    store.ingest(records).await?;
    // A retry with another reason changes nothing: the first arrival stands.
    let mut retry = first.clone();
    retry.reason = Some("changed".into());
    assert_eq!(store.ingest(vec![Record::Badge(retry)]).await?, vec![IngestOutcome::Duplicate]);

    let c1 = store.customer_badge_events(&t, "c1").await?;
    let ids: Vec<&str> = c1.iter().map(|e| e.event_id.as_str()).collect();
    assert_eq!(ids, ["b5", "b3", "b2", "b1"]);
    first.reason = Some("attended the launch".into());
    assert_eq!(c1.last(), Some(&first), "every field round-trips");
    assert_eq!(store.customer_badge_events(&t, "c2").await?.len(), 1);
    assert!(store.customer_badge_events(&t, "c3").await?.is_empty());
    assert!(store.customer_badge_events(&tenant("badge_events_other"), "c1").await?.is_empty());
    Ok(())
}

pub async fn customer_activity_holds_the_customers_events_and_orders(store: &dyn Store) -> Result<()> {
    let t = tenant("activity");
    let mut other_customer = event(&t, "e3", "checkin", T0 + 2);
    other_customer.customer_id = "c2".into();
    let records = vec![
        Record::Event(event(&t, "e1", "checkin", T0)),
        Record::Event(event(&t, "e2", "view", T0 + 1)),
        Record::Event(other_customer.clone()),
        Record::Order(order(&t, "o1", "A", "PLACED", T0 + 3)),
        Record::Order(order(&t, "o2", "A", "PAID", T0 + 4)),
        Record::Touch(super::touch(&t, "t1", "m1", "c1", T0)),
        Record::Badge(badge_event(&t, "b1", "c1", "regular", T0)),
    ];
    store.ingest(records.clone()).await?;
    let mut got = store.customer_activity(&t, "c1").await?;
    got.sort_by(|a, b| a.id().cmp(b.id()));
    let want: Vec<Record> =
        records.into_iter().filter(|r| matches!(r, Record::Event(e) if e.customer_id == "c1") || matches!(r, Record::Order(_))).collect();
    assert_eq!(got, want, "the customer's events and orders, nothing else");
    assert_eq!(store.customer_activity(&t, "c2").await?, vec![Record::Event(other_customer)]);
    assert!(store.customer_activity(&t, "c3").await?.is_empty());
    Ok(())
}
