//! Ordinary traffic: every message's audience going through the SENT → DELIVERED → OPENED →
//! CLICKED funnel with drop-off per channel, the conversions that follow (inside the window,
//! past it, some with an explicit `msg_hash`, none for a campaign's held-out customers),
//! organic activity filling the tenant up, and journeys where several messages touch one
//! customer before a conversion.

use super::{customer_id, pick_weighted, TenantGen, SECOND};
use crate::profiles::{DAY, HOUR, MINUTE};
use rand::seq::index;
use rand::Rng;
use touchstone_core::lift;
use touchstone_core::model::{Channel, Millis, TouchKind};

impl TenantGen<'_> {
    /// Touches of every message's audience with the funnel's drop-off, and the conversions
    /// some of them lead to.
    pub(super) fn campaign_traffic(&mut self, target: usize) {
        // About 45% of the records are touches, 2.3 touches per recipient on average.
        let recipients = target * 19 / 100;
        let per_message = recipients / self.sent.len();
        for m in 0..self.sent.len() {
            let size = (per_message / 2 + self.rng.random_range(0..=per_message)).clamp(3, self.customers);
            for customer in index::sample(&mut self.rng, self.customers, size) {
                self.recipient(m, customer);
            }
        }
    }

    fn recipient(&mut self, m: usize, customer_number: usize) {
        let customer = customer_id(customer_number);
        let channel = self.sent[m].message.channel;
        let (p_delivered, p_opened, p_clicked) = match channel {
            Channel::Push => (0.92, 0.3, 0.4),
            Channel::Email => (0.97, 0.35, 0.3),
            Channel::Sms => (0.98, 0.45, 0.3),
            Channel::InApp => (1.0, 0.6, 0.35),
        };
        let sent_at = self.sent[m].message.sent_at + self.rng.random_range(0..=self.sent[m].spread);
        let mut reached = vec![(TouchKind::Sent, sent_at)];
        if self.rng.random_bool(p_delivered) {
            let delivered = sent_at + self.rng.random_range(200..90 * SECOND);
            reached.push((TouchKind::Delivered, delivered));
            if self.rng.random_bool(p_opened) {
                // Most opens come soon after delivery, some hours later.
                let delay = self.rng.random_range(5 * SECOND..6 * HOUR);
                let delay = delay.min(self.rng.random_range(5 * SECOND..6 * HOUR));
                reached.push((TouchKind::Opened, delivered + delay));
                if self.rng.random_bool(p_clicked) {
                    reached.push((TouchKind::Clicked, delivered + delay + self.rng.random_range(SECOND..3 * MINUTE)));
                }
            }
        }
        let held_out = self.holds_out(m, &customer);
        for (i, &(kind, ts)) in reached.iter().enumerate() {
            match (held_out, i) {
                (false, _) => self.touch(&customer, m, kind, ts),
                // In the campaign's control group: recorded as held out instead of sent.
                (true, 0) => self.touch(&customer, m, TouchKind::HeldOut, ts),
                // What the funnel would have drawn is drawn all the same, so that the rest of
                // the data stays as it was.
                (true, _) => {
                    self.event_id();
                }
            }
        }
        let conversions_from = self.records.len();
        if let Some(&(TouchKind::Opened, opened)) = reached.get(2) {
            self.engaged.push((customer_number, opened));
        }
        let setting = self.config.setting(channel);
        let connect = reached.iter().find(|(kind, _)| *kind == setting.connect_on).map(|(_, ts)| *ts);
        let window = setting.window_ms;
        match connect {
            Some(t) if self.rng.random_bool(0.3) => {
                // Mostly soon after the touch, some anywhere in the window, some too late.
                let delay = match self.rng.random_range(0..100) {
                    0..55 => self.rng.random_range(0..=window / 6),
                    55..85 => self.rng.random_range(0..=window),
                    _ => self.rng.random_range(window + 1..=3 * window),
                };
                let explicit = self.rng.random_bool(0.3).then(|| self.sent[m].message.msg_hash.clone());
                self.journey_conversion(&customer, t + delay, explicit);
            }
            _ => {
                // Opened without connecting (or did not convert right away): sometimes converts
                // later anyway, credited to whatever else touched the customer.
                let &(_, last) = reached.last().expect("SENT is always reached");
                if reached.len() >= 3 && self.rng.random_bool(0.05) {
                    let at = last + self.rng.random_range(MINUTE..2 * DAY);
                    let explicit = self.rng.random_bool(0.2).then(|| self.sent[m].message.msg_hash.clone());
                    self.journey_conversion(&customer, at, explicit);
                }
            }
        }
        if held_out {
            // Not sent the message, a held-out customer does not convert through it: what
            // the campaign adds over its control group is its lift.
            self.records.truncate(conversions_from);
        }
    }

    /// Whether the campaign of message `m` holds `customer` out (its share in the config).
    fn holds_out(&self, m: usize, customer: &str) -> bool {
        let sent = &self.sent[m];
        let campaign = &sent.message.campaign_id;
        sent.registered && !campaign.is_empty() && lift::held_out(&self.tenant, campaign, customer, self.config.holdouts.bp(campaign))
    }

    /// A conversion that follows a message: an order, or an event of a name campaigns aim at.
    fn journey_conversion(&mut self, customer: &str, at: Millis, explicit: Option<String>) {
        if self.rng.random_bool(self.profile.order_share) {
            let currency = self.currency();
            let path = self.order_path();
            self.order(customer, at, path, currency, explicit);
        } else {
            let spec = *pick_weighted(&mut self.rng, self.profile.events, |e| e.journey);
            self.event(customer, spec, at, explicit);
        }
    }

    /// Events and orders that no message led to directly, until the tenant has `until`
    /// records. Customers who opened a message are more active in the days after (whatever
    /// touch is then in its window gets the credit); the rest is spread over the period.
    /// Some still carry a `msg_hash` (an old push opened again), most are direct traffic.
    pub(super) fn organic(&mut self, until: usize) {
        while self.records.len() < until {
            let (customer, ts) = if !self.engaged.is_empty() && self.rng.random_bool(0.6) {
                let (n, opened) = self.engaged[self.rng.random_range(0..self.engaged.len())];
                let delay = self.rng.random_range(0..2 * DAY).min(self.rng.random_range(0..2 * DAY));
                (customer_id(n), opened + delay)
            } else {
                (self.customer(), self.random_ts(self.all_days()))
            };
            let carried = self.rng.random_bool(0.06).then(|| {
                let m = self.rng.random_range(0..self.sent.len());
                self.sent[m].message.msg_hash.clone()
            });
            if self.rng.random_bool(self.profile.order_share * 0.5) {
                let currency = self.currency();
                let path = self.order_path();
                self.order(&customer, ts, path, currency, carried);
            } else {
                let spec = *pick_weighted(&mut self.rng, self.profile.events, |e| e.organic);
                let carried = carried.or_else(|| {
                    // Opening the app from a push carries its hash: an event hit.
                    (spec.name == "app_open" && self.rng.random_bool(0.3)).then(|| {
                        let m = self.rng.random_range(0..self.sent.len());
                        self.sent[m].message.msg_hash.clone()
                    })
                });
                self.event(&customer, spec, ts, carried);
            }
        }
    }

    /// Conversions that several messages led to, so that the attribution models disagree:
    /// each a new customer touched by two to four creditable messages in turn (minutes to
    /// hours apart, each touch within its channel's window of the conversion), then
    /// converting without a `msg_hash`. Messages whose campaign holds the customer out are
    /// left out of the journey.
    pub(super) fn shared_journeys(&mut self, count: usize) {
        let creditable = self.creditable();
        for _ in 0..count {
            let customer = self.fresh_customer();
            let reachable: Vec<usize> = creditable.iter().copied().filter(|&m| !self.holds_out(m, &customer)).collect();
            if reachable.len() < 2 {
                continue;
            }
            let k = self.rng.random_range(2..=4usize).min(reachable.len());
            let picked: Vec<usize> = index::sample(&mut self.rng, reachable.len(), k).into_iter().map(|i| reachable[i]).collect();
            let window = picked.iter().map(|&m| self.config.setting(self.sent[m].message.channel).window_ms).min().unwrap_or(0);
            // The touches and the conversion all fall within the shortest window.
            let span = (window / (2 * k as i64)).max(1);
            let mut t = self.random_ts(self.days_before_end(20));
            for &m in &picked {
                self.connecting_touch(&customer, m, t);
                t += self.rng.random_range(1..=span);
            }
            self.journey_conversion(&customer, t, None);
        }
    }
}
