//! [`RecordReads`] on fjall: point reads and per-customer range scans, the batched ones in
//! one blocking call (a thread hop per single read would cost more than the read).

use super::key::Key;
use super::layout::{CUSTOMER_BUCKET_MS, Table, time_range};
use super::{EmbeddedStore, Tables};
use crate::{ConversionKey, CustomerSpan, RecordReads, Result};
use async_trait::async_trait;
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::model::{Millis, Touch};

#[async_trait]
impl RecordReads for EmbeddedStore {
    async fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let tenant = tenant.to_owned();
        let msg_hashes = msg_hashes.to_vec();
        self.blocking("messages", move |tables| tables.messages(&tenant, &msg_hashes)).await
    }

    async fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let tenant = tenant.to_owned();
        let customer_id = customer_id.to_owned();
        self.blocking("customer_touches", move |tables| tables.customer_touches(&tenant, &customer_id, from, to)).await
    }

    async fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        let tenant = tenant.to_owned();
        let goal_id = goal_id.to_owned();
        let key = key.to_owned();
        self.blocking("conversion", move |tables| tables.conversion(&tenant, &goal_id, &key)).await
    }

    async fn customer_touches_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Touch>>> {
        let spans = spans.to_vec();
        self.blocking("customer_touches_many", move |tables| tables.customer_touches_many(&spans)).await
    }

    async fn conversions_many(&self, keys: &[ConversionKey]) -> Result<Vec<Option<Conversion>>> {
        let keys = keys.to_vec();
        self.blocking("conversions_many", move |tables| keys.iter().map(|k| tables.conversion(&k.tenant, &k.goal_id, &k.key)).collect())
            .await
    }
}

impl Tables {
    fn messages(&self, tenant: &str, msg_hashes: &[String]) -> Result<Messages> {
        let mut messages = Messages::new();
        for msg_hash in msg_hashes {
            if messages.contains_key(msg_hash) {
                continue;
            }
            let key = Key::new().str(tenant).str(msg_hash);
            if let Some(message) = self.registered_messages.get(key.as_bytes()) {
                messages.insert(msg_hash.clone(), message);
                continue;
            }
            if let Some(message) = self.get(Table::Messages, key.as_bytes())? {
                self.registered_messages.insert(key.into_vec(), &message);
                messages.insert(msg_hash.clone(), message);
            }
        }
        Ok(messages)
    }

    fn customer_touches(&self, tenant: &str, customer_id: &str, from: Millis, to: Millis) -> Result<Vec<Touch>> {
        let partition = Key::new().str(tenant).str(customer_id);
        self.scan(Table::TouchesByCustomer, time_range(&partition, Some(CUSTOMER_BUCKET_MS), from, to.checked_add(1)))
    }

    /// One scan per customer over the union of their overlapping spans, rather than one per
    /// span: attribution asks for the touches before each of a customer's conversions, and
    /// those spans mostly overlap.
    fn customer_touches_many(&self, spans: &[CustomerSpan]) -> Result<Vec<Vec<Touch>>> {
        let mut order: Vec<usize> = (0..spans.len()).collect();
        order.sort_unstable_by(|&a, &b| {
            let (a, b) = (&spans[a], &spans[b]);
            (&a.tenant, &a.customer_id, a.from).cmp(&(&b.tenant, &b.customer_id, b.from))
        });
        let mut results = vec![Vec::new(); spans.len()];
        let mut rest = &order[..];
        while let Some((&first, _)) = rest.split_first() {
            // The spans of one customer that chain into one overlapping run.
            let head = &spans[first];
            let mut to = head.to;
            let mut len = 1;
            while let Some(&next) = rest.get(len) {
                let span = &spans[next];
                if span.tenant != head.tenant || span.customer_id != head.customer_id || span.from > to {
                    break;
                }
                to = to.max(span.to);
                len += 1;
            }
            let (group, after) = rest.split_at(len);
            rest = after;
            let touches = self.customer_touches(&head.tenant, &head.customer_id, head.from, to)?;
            if let [only] = *group {
                results[only] = touches;
                continue;
            }
            for &index in group {
                let span = &spans[index];
                results[index] = touches.iter().filter(|t| span.from <= t.ts && t.ts <= span.to).cloned().collect();
            }
        }
        Ok(results)
    }


    fn conversion(&self, tenant: &str, goal_id: &str, key: &str) -> Result<Option<Conversion>> {
        self.get(Table::Conversions, Key::new().str(tenant).str(goal_id).str(key).as_bytes())
    }

}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::model::{Record, TouchKind};

    #[test]
    fn merged_touch_scans_equal_single_scans() {
        let dir = tempfile::tempdir().unwrap();
        let tables = EmbeddedStore::open(dir.path()).unwrap().tables;
        let touch = |i: i64, customer: &str| {
            Record::Touch(Touch {
                tenant: "t".into(),
                event_id: format!("e{i}"),
                msg_hash: "m".into(),
                customer_id: customer.into(),
                kind: TouchKind::ALL[1],
                ts: 1_000 * i,
            })
        };
        tables.ingest((0..40).map(|i| touch(i, ["a", "b"][i as usize % 2])).collect(), None).unwrap();
        let span = |customer: &str, from: Millis, to: Millis| CustomerSpan { tenant: "t".into(), customer_id: customer.into(), from, to };
        let spans = [
            span("a", 5_000, 20_000),
            span("b", 0, 3_000),
            span("a", 10_000, 30_000),
            span("a", 30_000, 30_000),
            span("a", 9_000, 4_000),
            span("b", 2_000, 39_000),
            span("a", 31_000, 35_000),
            span("c", 0, 40_000),
            span("a", 5_000, 20_000),
        ];
        let merged = tables.customer_touches_many(&spans).unwrap();
        for (span, got) in spans.iter().zip(merged) {
            assert_eq!(got, tables.customer_touches("t", &span.customer_id, span.from, span.to).unwrap(), "{span:?}");
        }
    }
}
