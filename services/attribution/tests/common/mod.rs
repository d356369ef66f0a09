//! What the worker tests share.

use touchstone_core::model::{Millis, OrderRecord, Record};

/// 2026-01-01T00:00Z.
pub const T0: Millis = 1_767_225_600_000;

/// Order `order_id` of customer "c1" of `tenant` paid at `ts`: 10.00 USD, a conversion of
/// the default goal.
pub fn paid(tenant: &str, order_id: &str, ts: Millis) -> Record {
    Record::Order(OrderRecord {
        tenant: tenant.into(),
        event_id: format!("{order_id}-paid"),
        order_id: order_id.into(),
        customer_id: "c1".into(),
        status: "PAID".into(),
        amount_minor: 1_000,
        currency: "USD".into(),
        categories: vec![],
        channel: "app".into(),
        ts,
        msg_hash: None,
    })
}
