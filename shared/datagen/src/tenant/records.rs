//! The single records the other parts build from: a touch (or the touches up to a
//! connecting one), an app event with or without a value, and an order as its status
//! records (categories, channels, coupons, equal-ms PLACED/PAID at the till).

use super::{pick_weighted, TenantGen, SECOND};
use crate::profiles::{EventSpec, ValueKind, DAY, HOUR, MINUTE};
use rand::seq::index;
use rand::Rng;
use touchstone_core::model::{AppEvent, Micros, Millis, OrderRecord, Record, Touch, TouchKind};

impl TenantGen<'_> {
    pub(super) fn touch(&mut self, customer: &str, m: usize, kind: TouchKind, ts: Millis) {
        let touch = Touch {
            tenant: self.tenant.clone(),
            event_id: self.event_id(),
            msg_hash: self.sent[m].message.msg_hash.clone(),
            customer_id: customer.to_owned(),
            kind,
            ts,
        };
        self.records.push(Record::Touch(touch));
    }

    /// Touches up to and including the connecting one at exactly `t` (earlier steps a little
    /// before), for message `m` of a customer.
    pub(super) fn connecting_touch(&mut self, customer: &str, m: usize, t: Millis) {
        let connect_on = self.config.setting(self.sent[m].message.channel).connect_on;
        let steps: Vec<TouchKind> = TouchKind::ALL.iter().copied().take_while(|k| *k != connect_on).collect();
        let mut ts = t;
        let mut earlier = Vec::new();
        for kind in steps.into_iter().rev() {
            ts -= self.rng.random_range(SECOND..10 * MINUTE);
            earlier.push((kind, ts));
        }
        for (kind, ts) in earlier.into_iter().rev() {
            self.touch(customer, m, kind, ts);
        }
        self.touch(customer, m, connect_on, t);
    }

    pub(super) fn event(&mut self, customer: &str, spec: EventSpec, ts: Millis, msg_hash: Option<String>) {
        let value_micros = self.rng.random_bool(spec.value_share).then(|| self.value(spec.value)).flatten();
        let event = AppEvent {
            tenant: self.tenant.clone(),
            event_id: self.event_id(),
            customer_id: customer.to_owned(),
            name: spec.name.to_owned(),
            ts,
            value_micros,
            msg_hash,
        };
        self.records.push(Record::Event(event));
    }

    fn value(&mut self, kind: ValueKind) -> Option<Micros> {
        Some(match kind {
            ValueKind::None => return None,
            // Half seconds from 10 s to 2 h; now and then exactly 12.5.
            ValueKind::Seconds if self.rng.random_bool(0.03) => 12_500_000,
            ValueKind::Seconds => self.rng.random_range(20..14_400) * 500_000,
            ValueKind::Money => (self.rng.random_range(1..250) * 100 + 99) * 10_000,
            ValueKind::Rating => self.rng.random_range(1..=5) * 1_000_000,
            ValueKind::Minutes => self.rng.random_range(40..480) * 250_000,
        })
    }

    /// The tenant currency, or now and then a foreign one (which never counts).
    pub(super) fn currency(&mut self) -> String {
        if self.rng.random_bool(0.05) {
            self.choose(self.profile.foreign_currencies).to_owned()
        } else {
            self.config.currency.clone()
        }
    }

    /// The statuses an order goes through, by where it was placed.
    pub(super) fn order_path(&mut self) -> &'static [&'static str] {
        const PATHS: &[(&[&str], u32)] = &[
            (&["CREATED", "PLACED", "PAID", "DELIVERED"], 50),
            (&["CREATED", "PLACED", "CANCELLED"], 10),
            (&["CREATED", "PLACED", "PAID", "DELIVERED", "REFUNDED"], 8),
            (&["PLACED", "PAID"], 10),
            (&["CREATED", "CANCELLED"], 7),
            (&["PAID"], 5),
            (&["CREATED"], 5),
            (&["PLACED", "PAID", "DELIVERED"], 5),
        ];
        pick_weighted(&mut self.rng, PATHS, |(_, w)| *w).0
    }

    /// One order's status records, starting at `start`. An explicit `msg_hash` is on every
    /// record, only on the first, or only on the last.
    pub(super) fn order(&mut self, customer: &str, start: Millis, path: &[&str], currency: String, explicit: Option<String>) {
        let channel = pick_weighted(&mut self.rng, self.profile.order_channels, |(_, w)| *w).0;
        // At the till an order is placed and paid in one go.
        let path = if channel == "pos" && path.len() > 1 { &["PLACED", "PAID"][..] } else { path };
        self.next_order += 1;
        let order_id = format!("{}-{}", self.profile.order_prefix, self.next_order);
        let categories = self.categories();
        let (low, high) = self.profile.amount_minor;
        // Prices end in .99; now and then a free order (a conversion worth 0).
        let mut amount = self.rng.random_range(low / 100..=high / 100) * 100 + 99;
        if self.rng.random_bool(0.01) {
            amount = 0;
        }
        let hash_on = match self.rng.random_range(0..10) {
            0..7 => HashOn::All,
            7..9 => HashOn::First,
            _ => HashOn::Last,
        };
        let mut ts = start;
        for (step, status) in path.iter().enumerate() {
            if step > 0 {
                ts += self.status_gap(path[step - 1], status, channel);
            }
            if *status == "PAID" && amount > 0 && self.rng.random_bool(0.08) {
                // A coupon applied at payment: the paid amount differs from the placed one.
                amount -= self.rng.random_range(1..=amount / 5 + 1).min(amount);
            }
            let carries = match hash_on {
                HashOn::All => true,
                HashOn::First => step == 0,
                HashOn::Last => step == path.len() - 1,
            };
            let record = OrderRecord {
                tenant: self.tenant.clone(),
                event_id: self.event_id(),
                order_id: order_id.clone(),
                customer_id: customer.to_owned(),
                status: (*status).to_owned(),
                amount_minor: amount,
                currency: currency.clone(),
                categories: categories.clone(),
                channel: channel.to_owned(),
                ts,
                msg_hash: explicit.clone().filter(|_| carries),
            };
            self.records.push(Record::Order(record));
        }
    }

    fn status_gap(&mut self, from: &str, to: &str, channel: &str) -> Millis {
        match (from, to) {
            ("CREATED", "PLACED") => self.rng.random_range(20 * SECOND..30 * MINUTE),
            // Same ms at the till: two qualifying records tie on ts, event_id decides.
            ("PLACED", "PAID") if channel == "pos" && self.rng.random_bool(0.6) => 0,
            ("PLACED", "PAID") => self.rng.random_range(0..2 * HOUR),
            ("PAID", "DELIVERED") => self.rng.random_range(DAY..6 * DAY),
            (_, "CANCELLED") => self.rng.random_range(5 * MINUTE..2 * DAY),
            (_, "REFUNDED") => self.rng.random_range(DAY..20 * DAY),
            _ => self.rng.random_range(SECOND..HOUR),
        }
    }

    fn categories(&mut self) -> Vec<String> {
        let all = self.profile.categories;
        let count = match self.rng.random_range(0..100) {
            0..5 => 0,
            5..75 => 1,
            _ => 2,
        };
        let mut picked: Vec<String> =
            index::sample(&mut self.rng, all.len(), count).into_iter().map(|i| all[i].to_owned()).collect();
        picked.sort();
        picked
    }
}

#[derive(Clone, Copy)]
enum HashOn {
    All,
    First,
    Last,
}
