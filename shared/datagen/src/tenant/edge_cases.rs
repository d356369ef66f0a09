//! The cases that must be present however the dice fall: conversions exactly at the
//! window's end and 1 ms past it, at the touch's very ms, equal-ts connecting touches of two
//! messages, explicit `msg_hash` of excluded and unregistered messages, foreign-currency
//! orders, every EVENT goal converting, and a PAID stamped before its PLACED.

use super::{pick_weighted, TenantGen, SECOND};
use crate::profiles::{EventSpec, DAY, MINUTE};
use rand::Rng;
use touchstone_core::config::GoalKind;
use touchstone_core::model::{Millis, Record};

impl TenantGen<'_> {
    /// The cases that must be present however the dice fall, `k` of each kind.
    pub(super) fn edge_cases(&mut self, k: usize) {
        let creditable = self.creditable();
        let excluded: Vec<usize> = self.sent_where(|s| s.registered && s.excluded);
        let unregistered: Vec<usize> = self.sent_where(|s| !s.registered);
        debug_assert!(creditable.len() >= 2 && !excluded.is_empty() && !unregistered.is_empty());

        for turn in 0..k {
            // A conversion exactly at the window's end (credited), and one 1 ms past it
            // (not credited: the customer has no other touch).
            for past_end in [0, 1] {
                let customer = self.fresh_customer();
                let m = self.choose(&creditable);
                let window = self.config.setting(self.sent[m].message.channel).window_ms;
                let t = self.random_ts(self.days_before_end(20));
                self.connecting_touch(&customer, m, t);
                self.edge_conversion(&customer, t + window + past_end, turn + past_end as usize);
            }
            // Two connecting touches of two messages at the same ms: the greater event_id wins.
            let customer = self.fresh_customer();
            let (first, second) = self.two_distinct(&creditable);
            let window = [first, second]
                .iter()
                .map(|&m| self.config.setting(self.sent[m].message.channel).window_ms)
                .min()
                .expect("two messages");
            let t = self.random_ts(self.days_before_end(20));
            self.connecting_touch(&customer, first, t);
            self.connecting_touch(&customer, second, t);
            let delay = self.rng.random_range(0..=window / 3);
            self.edge_conversion(&customer, t + delay, turn);

            // Explicit msg_hash of an excluded and of an unregistered message: neither is
            // credited, attribution falls through to last touch.
            for messages in [&excluded, &unregistered] {
                let m = self.choose(messages);
                let msg_hash = Some(self.sent[m].message.msg_hash.clone());
                let customer = self.customer();
                let at = self.random_ts(self.all_days());
                if turn.is_multiple_of(2) {
                    let currency = self.config.currency.clone();
                    self.order(&customer, at, &["CREATED", "PLACED", "PAID"], currency, msg_hash);
                } else {
                    let spec = *pick_weighted(&mut self.rng, self.profile.events, |e| e.journey);
                    self.event(&customer, spec, at, msg_hash);
                }
            }

            // An order in a foreign currency: never a conversion.
            let customer = self.customer();
            let currencies = self.profile.foreign_currencies;
            let foreign = currencies[turn % currencies.len()].to_owned();
            let at = self.random_ts(self.all_days());
            self.order(&customer, at, &["CREATED", "PLACED", "PAID", "DELIVERED"], foreign, None);
        }

        // A conversion at the very ms of its touch (t == c is inside the window).
        let customer = self.fresh_customer();
        let m = self.choose(&creditable);
        let t = self.random_ts(self.days_before_end(20));
        self.connecting_touch(&customer, m, t);
        self.edge_conversion(&customer, t, 0);

        // Every EVENT goal converts explicitly at least once.
        for spec in self.goal_event_specs() {
            let m = self.choose(&creditable);
            let msg_hash = Some(self.sent[m].message.msg_hash.clone());
            let customer = self.customer();
            let at = self.sent[m].message.sent_at + self.rng.random_range(MINUTE..DAY);
            self.event(&customer, spec, at, msg_hash);
        }

        // Status timestamps that disagree with the status sequence (the payment provider's
        // clock is behind): PAID is stamped before PLACED, so it is the earliest qualifying.
        let customer = self.customer();
        let at = self.random_ts(self.all_days());
        let currency = self.config.currency.clone();
        let first = self.records.len();
        self.order(&customer, at, &["PLACED", "PAID", "DELIVERED"], currency, None);
        if let [Record::Order(placed), Record::Order(paid), ..] = &mut self.records[first..] {
            paid.ts = placed.ts - self.rng.random_range(SECOND..MINUTE);
        }
    }

    /// A conversion for an edge case, with no `msg_hash`: alternately an event of an EVENT
    /// goal and an order placed (then paid) in the tenant currency.
    fn edge_conversion(&mut self, customer: &str, at: Millis, turn: usize) {
        let goal_events: Vec<EventSpec> = self.goal_event_specs();
        if turn.is_multiple_of(2) && !goal_events.is_empty() {
            let spec = goal_events[turn / 2 % goal_events.len()];
            self.event(customer, spec, at, None);
        } else {
            let currency = self.config.currency.clone();
            self.order(customer, at, &["PLACED", "PAID"], currency, None);
        }
    }

    fn goal_event_specs(&self) -> Vec<EventSpec> {
        self.config
            .goals
            .iter()
            .filter_map(|goal| match &goal.kind {
                GoalKind::Event { event_name } => self.profile.events.iter().find(|e| e.name == event_name).copied(),
                GoalKind::Order { .. } => None,
            })
            .collect()
    }
}
