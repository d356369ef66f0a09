//! Holdouts and lift: which customers a campaign holds out ([`held_out`], reproducible by
//! any sender), who was in its treatment and control groups over a range and whether they
//! converted ([`exposure`], [`outcome`], [`campaign_lift`] over the customers' fold state),
//! and what the campaign added over its control group ([`lift`]): conversion rates with
//! the 95% interval of their difference, the pooled two-proportion z-test, incremental
//! conversions, and value per customer with its Welch interval.
//!
//! Every figure that cannot be computed is `None`, never NaN or an infinity.

use crate::attribution::{Conversion, Messages};
use crate::config::{Goal, TenantConfig};
use crate::fold::CustomerState;
use crate::model::{MICROS_PER_UNIT, Millis, Touch, TouchKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

/// The normal quantile of a two-sided 95% interval.
pub const Z_95: f64 = 1.959964;
/// Basis points in a whole.
pub const BP: u64 = 10_000;

/// A customer's place among 10,000 for a campaign: the first 8 bytes of SHA-256 of
/// `tenant`, `campaign_id` and `customer_id` joined by a zero byte, big-endian, mod 10,000.
pub fn holdout_bucket(tenant: &str, campaign_id: &str, customer_id: &str) -> u64 {
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_bytes());
    hasher.update([0]);
    hasher.update(campaign_id.as_bytes());
    hasher.update([0]);
    hasher.update(customer_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    u64::from_be_bytes(first) % BP
}

/// Whether a campaign holding out `bp` basis points holds this customer out.
pub fn held_out(tenant: &str, campaign_id: &str, customer_id: &str, bp: u32) -> bool {
    holdout_bucket(tenant, campaign_id, customer_id) < u64::from(bp)
}

/// One group's customers: how many, how many converted, and the sums of their values
/// (whole units; customers who did not convert add 0) and of the values' squares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Group {
    pub customers: u64,
    pub converted: u64,
    pub value_sum: i128,
    pub value_squares: i128,
}

impl Group {
    /// Adds a customer whose conversions in the window are worth `value` (0: none).
    pub fn add(&mut self, converted: bool, value: i128) {
        self.customers += 1;
        self.converted += u64::from(converted);
        // Saturating: values are bounded at validation, so only absurd sums could reach it.
        self.value_sum = self.value_sum.saturating_add(value);
        self.value_squares = self.value_squares.saturating_add(value.saturating_mul(value));
    }

    fn rate(&self) -> Option<f64> {
        (self.customers > 0).then(|| self.converted as f64 / self.customers as f64)
    }

    /// Mean value per customer in report units (`unit`: whole units per report unit).
    fn mean(&self, unit: f64) -> Option<f64> {
        (self.customers > 0).then(|| self.value_sum as f64 / self.customers as f64 / unit)
    }

    /// Sample variance of the values (`n - 1`) in report units squared; `None` below two
    /// customers. `n Σv² - (Σv)²` exactly in integers when it fits.
    fn variance(&self, unit: f64) -> Option<f64> {
        if self.customers < 2 {
            return None;
        }
        let n = i128::from(self.customers);
        let spread = n
            .checked_mul(self.value_squares)
            .and_then(|a| self.value_sum.checked_mul(self.value_sum).and_then(|b| a.checked_sub(b)))
            .map_or_else(|| n as f64 * self.value_squares as f64 - (self.value_sum as f64).powi(2), |exact| exact as f64);
        Some(spread / (n as f64 * (n - 1) as f64) / (unit * unit))
    }
}

/// The lift report of a campaign for a goal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Lift {
    pub n_t: u64,
    pub converted_t: u64,
    pub n_c: u64,
    pub converted_c: u64,
    pub contaminated: u64,
    pub r_t: Option<f64>,
    pub r_c: Option<f64>,
    pub diff: Option<f64>,
    pub diff_low: Option<f64>,
    pub diff_high: Option<f64>,
    pub lift: Option<f64>,
    pub p_value: Option<f64>,
    pub incremental_conversions: Option<f64>,
    pub value_per_customer_t: Option<f64>,
    pub value_per_customer_c: Option<f64>,
    pub value_diff: Option<f64>,
    pub value_diff_low: Option<f64>,
    pub value_diff_high: Option<f64>,
    pub enough_data: bool,
}

/// The figures of treatment `t` against control `c`; `unit` is how many whole units make
/// a report unit (1 for an order goal's minor units, 1,000,000 for an event goal's
/// millionths).
pub fn lift(t: &Group, c: &Group, contaminated: u64, unit: f64) -> Lift {
    let (r_t, r_c) = (t.rate(), c.rate());
    let rates = r_t.zip(r_c);
    let diff = rates.map(|(r_t, r_c)| r_t - r_c);
    let half_width = rates.map(|(r_t, r_c)| Z_95 * (r_t * (1.0 - r_t) / t.customers as f64 + r_c * (1.0 - r_c) / c.customers as f64).sqrt());
    let p_value = rates.and_then(|(r_t, r_c)| {
        let pooled = (t.converted + c.converted) as f64 / (t.customers + c.customers) as f64;
        let se = (pooled * (1.0 - pooled) * (1.0 / t.customers as f64 + 1.0 / c.customers as f64)).sqrt();
        (se > 0.0).then(|| libm::erfc(((r_t - r_c) / se).abs() / std::f64::consts::SQRT_2))
    });
    let (mean_t, mean_c) = (t.mean(unit), c.mean(unit));
    let value_diff = rates.and(mean_t.zip(mean_c)).map(|(m_t, m_c)| m_t - m_c);
    let value_half_width = t
        .variance(unit)
        .zip(c.variance(unit))
        .map(|(v_t, v_c)| Z_95 * (v_t / t.customers as f64 + v_c / c.customers as f64).sqrt());
    let value_interval = value_diff.zip(value_half_width);
    Lift {
        n_t: t.customers,
        converted_t: t.converted,
        n_c: c.customers,
        converted_c: c.converted,
        contaminated,
        r_t,
        r_c,
        diff,
        diff_low: diff.zip(half_width).map(|(d, h)| d - h),
        diff_high: diff.zip(half_width).map(|(d, h)| d + h),
        lift: diff.zip(r_c).and_then(|(d, r_c)| (r_c != 0.0).then(|| d / r_c)),
        p_value,
        incremental_conversions: diff.map(|d| d * t.customers as f64),
        value_per_customer_t: mean_t,
        value_per_customer_c: mean_c,
        value_diff,
        value_diff_low: value_interval.map(|(d, h)| d - h),
        value_diff_high: value_interval.map(|(d, h)| d + h),
        enough_data: c.customers >= 1_000
            && [t.converted, t.customers - t.converted, c.converted, c.customers - c.converted].iter().all(|&count| count >= 10),
    }
}

/// Which group a customer is in for a campaign over a range, and when they entered it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exposure<'a> {
    /// A `SENT` touch of a registered message of the campaign in the range; the earliest.
    Treatment(&'a Touch),
    /// A `HELD_OUT` touch of one; the earliest.
    Control(&'a Touch),
    /// Both: in neither group, counted as contaminated.
    Both,
}

/// A customer's exposure to `campaign_id` over `[from, to)`, or `None` when the customer
/// has neither a `SENT` nor a `HELD_OUT` touch of its registered messages in it (messages
/// with excluded tags included: holding out is about sending, not credit).
pub fn exposure<'a>(touches: impl IntoIterator<Item = &'a Touch>, campaign_id: &str, from: Millis, to: Millis, messages: &Messages) -> Option<Exposure<'a>> {
    let (mut sent, mut held): (Option<&Touch>, Option<&Touch>) = (None, None);
    for touch in touches {
        if touch.ts < from || touch.ts >= to || messages.get(&touch.msg_hash).is_none_or(|message| message.campaign_id != campaign_id) {
            continue;
        }
        let slot = match touch.kind {
            TouchKind::Sent => &mut sent,
            TouchKind::HeldOut => &mut held,
            _ => continue,
        };
        if slot.is_none_or(|earliest| (touch.ts, &touch.event_id) < (earliest.ts, &earliest.event_id)) {
            *slot = Some(touch);
        }
    }
    match (sent, held) {
        (Some(_), Some(_)) => Some(Exposure::Both),
        (Some(entry), None) => Some(Exposure::Treatment(entry)),
        (None, Some(entry)) => Some(Exposure::Control(entry)),
        (None, None) => None,
    }
}

/// The campaigns these touches expose their customer to: those of the registered messages
/// of their `SENT` and `HELD_OUT` touches (the customers a campaign's lift looks at; which
/// group, if any, depends on the range: [`exposure`]).
pub fn exposed_campaigns<'a>(touches: impl IntoIterator<Item = &'a Touch>, messages: &'a Messages) -> BTreeSet<&'a str> {
    touches
        .into_iter()
        .filter(|touch| matches!(touch.kind, TouchKind::Sent | TouchKind::HeldOut))
        .filter_map(|touch| messages.get(&touch.msg_hash).map(|message| message.campaign_id.as_str()))
        .filter(|campaign_id| !campaign_id.is_empty())
        .collect()
}

/// Whether a customer who entered at `entry` converted for `goal_id` within the entry
/// message's channel window (`e <= c <= e + window_ms`, the conversion may fall after the
/// range), and what those conversions are worth in whole units ([`Goal::micros_per_unit`]).
pub fn outcome<'a>(entry: &Touch, conversions: impl IntoIterator<Item = &'a Conversion>, goal: &Goal, messages: &Messages, config: &TenantConfig) -> (bool, i128) {
    let unit = goal.micros_per_unit();
    let window_ms = messages.get(&entry.msg_hash).map_or(0, |message| config.setting(message.channel).window_ms);
    let mut converted = false;
    let mut value: i128 = 0;
    for conversion in conversions {
        let fact = &conversion.fact;
        if fact.goal_id == goal.id && entry.ts <= fact.ts && fact.ts - entry.ts <= window_ms {
            converted = true;
            value += i128::from(fact.value_micros / unit);
        }
    }
    (converted, value)
}

/// The lift of a campaign for a goal over `[from, to)` from every customer's fold state
/// (touches and conversions): groups by [`exposure`], outcomes by [`outcome`].
pub fn campaign_lift<'a>(
    customers: impl IntoIterator<Item = &'a CustomerState>,
    campaign_id: &str,
    goal: &Goal,
    from: Millis,
    to: Millis,
    messages: &Messages,
    config: &TenantConfig,
) -> Lift {
    let (mut treatment, mut control, mut contaminated) = (Group::default(), Group::default(), 0);
    for state in customers {
        let (group, entry) = match exposure(state.touches(), campaign_id, from, to, messages) {
            Some(Exposure::Treatment(entry)) => (&mut treatment, entry),
            Some(Exposure::Control(entry)) => (&mut control, entry),
            Some(Exposure::Both) => {
                contaminated += 1;
                continue;
            }
            None => continue,
        };
        let (converted, value) = outcome(entry, state.conversions(), goal, messages, config);
        group.add(converted, value);
    }
    // Whole units per report unit: minor units are reported as they are, millionths as units.
    let per_report_unit = MICROS_PER_UNIT as f64 / goal.micros_per_unit() as f64;
    lift(&treatment, &control, contaminated, per_report_unit)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(customers: u64, values: &[i128]) -> Group {
        let mut group = Group::default();
        for i in 0..customers {
            let value = values.get(i as usize).copied().unwrap_or(0);
            group.add(value > 0, value);
        }
        group
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn the_bucket_is_sha256_of_the_ids_joined_by_zero_bytes() {
        // Computed apart, with Python's hashlib:
        // int.from_bytes(sha256(b"t\0c\0u").digest()[:8], "big") % 10000.
        assert_eq!(holdout_bucket("t", "c", "u"), 1_390);
        assert_eq!(holdout_bucket("acme", "spring-sale", "customer-42"), 6_605);
        // The zero byte keeps ("ab", "c") apart from ("a", "bc").
        assert_ne!(Sha256::digest(b"t\0ab\0c"), Sha256::digest(b"t\0a\0bc"));
        assert!(!held_out("t", "c", "u", 0), "0 bp holds no one out");
        assert!(held_out("t", "c", "u", 10_000), "every bucket is below 10,000");
        // About bp / 10,000 of customers are held out.
        let held = (0..100_000).filter(|i| held_out("t", "spring", &format!("customer-{i}"), 1_000)).count();
        assert!((9_500..10_500).contains(&held), "{held} of 100,000 at 10%");
    }

    #[test]
    fn rates_interval_p_value_and_incremental_conversions() {
        // 200 of 1,000 against 150 of 1,000.
        let t = Group { customers: 1_000, converted: 200, ..Group::default() };
        let c = Group { customers: 1_000, converted: 150, ..Group::default() };
        let lift = lift(&t, &c, 7, 1.0);
        assert!(close(lift.r_t, 0.2) && close(lift.r_c, 0.15) && close(lift.diff, 0.05));
        let half = Z_95 * (0.2f64 * 0.8 / 1_000.0 + 0.15 * 0.85 / 1_000.0).sqrt();
        assert!(close(lift.diff_low, 0.05 - half) && close(lift.diff_high, 0.05 + half));
        assert!(close(lift.lift, 0.05 / 0.15));
        assert!(close(lift.incremental_conversions, 50.0));
        // Pooled p = 0.175, se = sqrt(0.175 * 0.825 * 0.002), z = 2.942449...: two-sided
        // p = erfc(z / sqrt 2) = 0.00325626962841 (Python's math.erfc).
        let p = lift.p_value.unwrap();
        assert!((p - 0.003_256_269_628_41).abs() < 1e-12, "p = {p}");
        assert_eq!(lift.contaminated, 7);
        assert!(lift.enough_data);
    }

    #[test]
    fn values_per_customer_with_a_welch_interval() {
        // Treatment: 4 customers worth 10, 20, 0, 0; control: 3 worth 5, 0, 0.
        let t = group(4, &[10, 20]);
        let c = group(3, &[5]);
        let lift = lift(&t, &c, 0, 1.0);
        assert!(close(lift.value_per_customer_t, 7.5) && close(lift.value_per_customer_c, 5.0 / 3.0));
        assert!(close(lift.value_diff, 7.5 - 5.0 / 3.0));
        // Sample variances: t = (100 + 400 - 4 * 56.25) / 3 = 91.666..., c = (25 - 3 * 25/9) / 2 = 8.333...
        let half = Z_95 * (275.0f64 / 3.0 / 4.0 + 25.0 / 3.0 / 3.0).sqrt();
        assert!(close(lift.value_diff_low, 7.5 - 5.0 / 3.0 - half));
        assert!(close(lift.value_diff_high, 7.5 - 5.0 / 3.0 + half));
        // An event goal's millionths report in the event's units.
        let events = super::lift(&group(2, &[1_500_000]), &group(2, &[]), 0, 1_000_000.0);
        assert!(close(events.value_per_customer_t, 0.75) && close(events.value_per_customer_c, 0.0));
        assert!(!events.enough_data);
    }

    #[test]
    fn what_cannot_be_computed_is_none_never_nan() {
        let empty = Group::default();
        let some = Group { customers: 10, converted: 0, ..Group::default() };
        let no_control = lift(&some, &empty, 0, 1.0);
        assert_eq!(no_control.r_c, None);
        assert_eq!((no_control.diff, no_control.diff_low, no_control.lift, no_control.p_value), (None, None, None, None));
        assert_eq!((no_control.incremental_conversions, no_control.value_diff, no_control.value_diff_low), (None, None, None));
        assert_eq!(no_control.value_per_customer_c, None);
        assert!(close(no_control.value_per_customer_t, 0.0));
        // Nobody converted anywhere: the pooled standard error is 0, so no p-value; r_c = 0,
        // so no relative lift; the difference is 0 with a zero-width interval.
        let flat = lift(&some, &some, 0, 1.0);
        assert_eq!((flat.p_value, flat.lift), (None, None));
        assert!(close(flat.diff, 0.0) && close(flat.diff_low, 0.0));
        // One customer in a group: no value interval, the rest stands.
        let single = lift(&group(1, &[3]), &group(5, &[1, 1]), 0, 1.0);
        assert_eq!((single.value_diff_low, single.value_diff_high), (None, None));
        assert!(single.value_diff.is_some() && single.p_value.is_some());
        for report in [no_control, flat, single] {
            let json = serde_json::to_string(&report).unwrap();
            assert!(!json.contains("NaN") && !json.contains("inf"), "{json}");
        }
    }

    mod groups {
        use super::super::*;
        use super::close;
        use crate::attribution::ConversionFact;
        use crate::attribution::fixtures::{HOUR, config, message, messages};
        use crate::fold::{FactChange, FoldContext, fold_customer};
        use crate::model::Channel;

        const T0: Millis = 1_767_225_600_000;

        fn touch(id: &str, customer: &str, msg: &str, kind: TouchKind, ts: Millis) -> Touch {
            Touch { tenant: "t".into(), event_id: id.into(), msg_hash: msg.into(), customer_id: customer.into(), kind, ts }
        }

        fn order(key: &str, customer: &str, ts: Millis, amount_minor: i64) -> FactChange {
            let fact = ConversionFact {
                tenant: "t".into(),
                goal_id: "orders".into(),
                key: key.into(),
                customer_id: customer.into(),
                ts,
                value_micros: amount_minor * MICROS_PER_UNIT,
                source_event_id: key.into(),
                explicit_msg_hash: None,
            };
            FactChange { goal_id: "orders".into(), key: key.into(), old: None, new: Some(fact) }
        }

        fn all_messages() -> Messages {
            let mut messages = messages(T0 - 10 * HOUR);
            let mut other = message("other", Channel::Push, &[], T0);
            other.campaign_id = "another".into();
            messages.insert("other".into(), other);
            messages
        }

        fn state(touches: &[Touch], orders: &[FactChange]) -> CustomerState {
            let messages = all_messages();
            let mut state = CustomerState::default();
            fold_customer(&mut state, touches, orders, FoldContext { config: &config(), messages: &messages });
            state
        }

        /// Only SENT and HELD_OUT touches of registered messages with a campaign expose.
        #[test]
        fn sent_and_held_out_touches_of_campaign_messages_expose() {
            let messages = all_messages();
            let campaign = messages["push"].campaign_id.clone();
            let touches = [
                touch("a", "c1", "push", TouchKind::Opened, T0),
                touch("b", "c1", "unknown", TouchKind::Sent, T0),
                touch("c", "c1", "other", TouchKind::HeldOut, T0),
            ];
            assert_eq!(exposed_campaigns(&touches, &messages), BTreeSet::from(["another"]));
            let sent = touch("d", "c1", "push", TouchKind::Sent, T0);
            assert_eq!(exposed_campaigns([&sent], &messages), BTreeSet::from([campaign.as_str()]));
        }

        /// Push windows are 24 h; the range is [T0 - 1 h, T0 + 2 h).
        #[test]
        fn groups_entries_and_outcomes_follow_the_rules() {
            use TouchKind::{HeldOut, Sent};
            let customers = [
                // Treatment, converted 5 h after entry.
                state(&[touch("a1", "a", "push", Sent, T0)], &[order("oa", "a", T0 + 5 * HOUR, 100)]),
                // Control, the order 30 h after entry: past the window.
                state(&[touch("b1", "b", "push", HeldOut, T0)], &[order("ob", "b", T0 + 30 * HOUR, 70)]),
                // Both: contaminated.
                state(&[touch("c1", "c", "push", Sent, T0), touch("c2", "c", "push2", HeldOut, T0 + 1)], &[]),
                // The email before the range does not count: entry is the push, and an order
                // exactly a window later converts; one after `to` is fine.
                state(
                    &[touch("d1", "d", "mail", Sent, T0 - 2 * HOUR), touch("d2", "d", "push", Sent, T0 + HOUR)],
                    &[order("od", "d", T0 + 25 * HOUR, 200)],
                ),
                // Another campaign, an unregistered message, and a SENT touch after `to`.
                state(&[touch("e1", "e", "other", Sent, T0)], &[order("oe", "e", T0 + HOUR, 10)]),
                state(&[touch("g1", "g", "nowhere", Sent, T0)], &[order("og", "g", T0 + HOUR, 10)]),
                state(&[touch("h1", "h", "push", Sent, T0 + 2 * HOUR)], &[order("oh", "h", T0 + 3 * HOUR, 10)]),
                // Held out of a message with an excluded tag: in control all the same.
                state(&[touch("f1", "f", "reset", HeldOut, T0)], &[order("of", "f", T0 + HOUR, 50)]),
            ];
            let messages = all_messages();
            let orders = Goal::default_orders();
            let report = campaign_lift(&customers, "camp", &orders, T0 - HOUR, T0 + 2 * HOUR, &messages, &config());
            assert_eq!((report.n_t, report.converted_t, report.n_c, report.converted_c, report.contaminated), (2, 2, 2, 1, 1));
            assert!(close(report.value_per_customer_t, 150.0), "{report:?}");
            assert!(close(report.value_per_customer_c, 25.0), "{report:?}");
            assert!(close(report.r_t, 1.0) && close(report.r_c, 0.5) && close(report.lift, 1.0));

            // The entry is the earliest touch by (ts, event_id).
            let both_sent = [touch("z", "x", "push", Sent, T0), touch("y", "x", "push2", Sent, T0)];
            assert_eq!(exposure(&both_sent, "camp", T0, T0 + 1, &messages), Some(Exposure::Treatment(&both_sent[1])));
            assert_eq!(exposure(&both_sent, "camp", T0 + 1, T0 + 2, &messages), None, "outside the range");
        }

        /// An EVENT goal's values are millionths of the event's units.
        #[test]
        fn event_values_count_in_millionths() {
            let goal = Goal { id: "watch".into(), kind: crate::config::GoalKind::Event { event_name: "watch".into() } };
            assert_eq!(goal.micros_per_unit(), 1);
            assert_eq!(Goal::default_orders().micros_per_unit(), MICROS_PER_UNIT);
            let entry = touch("a1", "a", "push", TouchKind::Sent, T0);
            let fact = ConversionFact {
                tenant: "t".into(),
                goal_id: "watch".into(),
                key: "w1".into(),
                customer_id: "a".into(),
                ts: T0 + HOUR,
                value_micros: 1_500_000,
                source_event_id: "w1".into(),
                explicit_msg_hash: None,
            };
            let conversion = Conversion { fact, credit: crate::attribution::Credit::unattributed(), split: None };
            assert_eq!(outcome(&entry, [&conversion], &goal, &all_messages(), &config()), (true, 1_500_000));
            assert_eq!(outcome(&entry, [&conversion], &Goal::default_orders(), &all_messages(), &config()), (false, 0));
        }
    }

    #[test]
    fn enough_data_needs_a_thousand_controls_and_ten_of_each_outcome() {
        let enough = |t: (u64, u64), c: (u64, u64)| {
            let g = |(customers, converted)| Group { customers, converted, ..Group::default() };
            lift(&g(t), &g(c), 0, 1.0).enough_data
        };
        assert!(enough((100, 10), (1_000, 10)));
        assert!(!enough((100, 10), (999, 10)), "fewer than 1,000 in control");
        assert!(!enough((100, 9), (1_000, 10)), "fewer than 10 converted in treatment");
        assert!(!enough((19, 10), (1_000, 10)), "fewer than 10 unconverted in treatment");
        assert!(!enough((100, 10), (1_000, 9)), "fewer than 10 converted in control");
        assert!(!enough((100, 10), (1_000, 991)), "fewer than 10 unconverted in control");
    }
}
