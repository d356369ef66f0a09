//! One tenant's messages and records: campaign traffic with funnels and the conversions it
//! causes, deliberate edge cases, badges, organic activity filling the rest, then retries
//! and conflicting duplicates of some records.

use crate::profiles::{EventSpec, Profile, ValueKind, DAY, HOUR, MINUTE};
use crate::BASE_TS;
use rand::rngs::SmallRng;
use rand::seq::index;
use rand::Rng;
use touchstone_core::config::{GoalKind, TenantConfig};
use touchstone_core::lift;
use touchstone_core::files::{apply_config_file, parse_config};
use touchstone_core::model::{
    AppEvent, BadgeAction, BadgeEvent, BadgeSource, Channel, Message, Micros, Millis, OrderRecord, Record,
    Touch, TouchKind,
};

const SECOND: Millis = 1000;

/// A record repeated later in the file under the same `event_id`.
pub(crate) struct Repeat {
    /// Index of the original in [`TenantData::records`].
    pub of: usize,
    /// The repeated record: the original itself (a retry) or one with other content.
    pub record: Record,
}

/// What one tenant is asked for, besides its profile and name.
pub(crate) struct Plan {
    /// About this many records (retries and duplicates included).
    pub target: usize,
    pub scale: u32,
    /// Days of activity from [`BASE_TS`], at least 1.
    pub days: i64,
    /// Campaign ids to use instead of the profile's; every one gets a registered message.
    pub campaigns: Option<Vec<String>>,
}

pub(crate) struct TenantData {
    pub tenant: String,
    pub config_section: serde_json::Value,
    /// Registered messages, in registration order.
    pub messages: Vec<Message>,
    /// Re-registrations of some messages (one retry, one with other content), arriving last.
    pub message_repeats: Vec<Message>,
    /// Every record once, in generation order (not yet shuffled).
    pub records: Vec<Record>,
    pub repeats: Vec<Repeat>,
}

/// A message that touches can name, registered or not.
struct Sent {
    message: Message,
    registered: bool,
    excluded: bool,
    /// How long after `sent_at` the sends go out: minutes for a blast, days for triggered ones.
    spread: Millis,
}

struct TenantGen<'a> {
    profile: &'a Profile,
    tenant: String,
    config: TenantConfig,
    rng: SmallRng,
    /// Days of activity from [`BASE_TS`].
    days: i64,
    /// Campaign ids instead of the profile's, and how many of them have a message yet.
    campaigns: Option<Vec<String>>,
    next_campaign: usize,
    /// Customers `0..customers` take part in ordinary traffic.
    customers: usize,
    /// Edge cases get customers of their own, numbered from `customers` up, so that no other
    /// touch interferes with what they demonstrate.
    next_fresh_customer: usize,
    next_order: usize,
    sent: Vec<Sent>,
    /// When a customer opened a message: organic activity clusters after these moments.
    engaged: Vec<(usize, Millis)>,
    records: Vec<Record>,
}

/// Generates one tenant as `plan` asks. `shared_ids` are `event_id`s of another tenant that
/// some records here reuse: the same id in two tenants names two records.
pub(crate) fn generate(
    profile: &Profile,
    tenant: String,
    plan: Plan,
    rng: SmallRng,
    shared_ids: &[String],
) -> TenantData {
    let Plan { target, scale, days, campaigns } = plan;
    let config_section = profile.config_section();
    let config = effective_config(&tenant, &config_section);
    let mut generator = TenantGen {
        profile,
        tenant,
        config,
        rng,
        days: days.max(1),
        campaigns,
        next_campaign: 0,
        customers: (target / 10).max(50),
        next_fresh_customer: (target / 10).max(50),
        next_order: 100_000,
        sent: Vec::new(),
        engaged: Vec::new(),
        records: Vec::with_capacity(target + target / 20),
    };
    generator.messages(target);
    generator.campaign_traffic(target);
    generator.edge_cases(2 + scale as usize / 2);
    generator.badges(target);
    // Leave room for the retries and duplicates added below.
    generator.organic(target - target * 15 / 1000);
    // After everything else, so that what was drawn before stays as it was.
    generator.shared_journeys(target / 400);
    generator.share_ids(shared_ids);
    let repeats = generator.repeats();
    let message_repeats = generator.message_repeats();
    let TenantGen { tenant, sent, records, .. } = generator;
    let messages = sent.into_iter().filter(|s| s.registered).map(|s| s.message).collect();
    TenantData { tenant, config_section, messages, message_repeats, records, repeats }
}

/// The configuration the tenant ends up with: its section applied to the defaults, exactly
/// as an import does.
fn effective_config(tenant: &str, section: &serde_json::Value) -> TenantConfig {
    let text = serde_json::json!({ "tenants": { tenant: section } }).to_string();
    let files = parse_config(&text).expect("built-in profile config parses");
    let mut config = TenantConfig::defaults(tenant);
    apply_config_file(&mut config, &files[0]).expect("built-in profile config applies");
    config
}

fn pick_weighted<'a, T>(rng: &mut SmallRng, items: &'a [T], weight: impl Fn(&T) -> u32) -> &'a T {
    let total: u32 = items.iter().map(&weight).sum();
    debug_assert!(total > 0, "weights must not all be zero");
    let mut roll = rng.random_range(0..total);
    for item in items {
        let w = weight(item);
        if roll < w {
            return item;
        }
        roll -= w;
    }
    &items[items.len() - 1]
}

/// A random-looking v4 UUID, as SDKs generate event ids.
fn uuid(rng: &mut SmallRng) -> String {
    let (a, b): (u64, u64) = (rng.random(), rng.random());
    format!(
        "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
        a >> 32,
        (a >> 16) & 0xffff,
        a & 0xfff,
        0x8000 | (b >> 48) & 0x3fff,
        b & 0xffff_ffff_ffff
    )
}

/// Activity by hour of day (UTC): quiet nights, a lunch bump, busy evenings.
const HOURS: [i64; 24] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23];
const HOUR_WEIGHTS: [u32; 24] = [2, 1, 1, 1, 1, 2, 4, 6, 8, 8, 8, 9, 11, 10, 8, 8, 9, 11, 13, 15, 15, 12, 8, 4];

impl TenantGen<'_> {
    fn customer(&mut self) -> String {
        let n = self.rng.random_range(0..self.customers);
        customer_id(n)
    }

    fn fresh_customer(&mut self) -> String {
        self.next_fresh_customer += 1;
        customer_id(self.next_fresh_customer)
    }

    /// A moment on a random day in `days`, at an hour of realistic activity, to the ms.
    fn random_ts(&mut self, days: std::ops::Range<i64>) -> Millis {
        let day = self.rng.random_range(days);
        let hour = *pick_weighted(&mut self.rng, &HOURS, |h| HOUR_WEIGHTS[*h as usize]);
        BASE_TS + day * DAY + hour * HOUR + self.rng.random_range(0..HOUR)
    }

    /// The days on which something may start that has follow-ups up to about `margin` days
    /// later, so that they stay inside the span: all but the last `margin` days, yet at least
    /// the first half of a short span.
    fn days_before_end(&self, margin: i64) -> std::ops::Range<i64> {
        0..(self.days - margin).max((self.days + 1) / 2)
    }

    /// Any day of the span.
    fn all_days(&self) -> std::ops::Range<i64> {
        0..self.days
    }

    /// A campaign id for a campaign message: with campaigns of its own, the tenant gives each
    /// a registered message first (in order) and then draws; otherwise the profile's are drawn.
    fn campaign(&mut self, registered: bool) -> String {
        match &self.campaigns {
            None => self.choose(self.profile.campaigns).to_owned(),
            Some(list) if registered && self.next_campaign < list.len() => {
                self.next_campaign += 1;
                list[self.next_campaign - 1].clone()
            }
            Some(list) => list[self.rng.random_range(0..list.len())].clone(),
        }
    }

    /// Campaigns of its own that have no registered message yet.
    fn campaigns_left(&self) -> usize {
        self.campaigns.as_ref().map_or(0, |list| list.len() - self.next_campaign)
    }

    fn event_id(&mut self) -> String {
        uuid(&mut self.rng)
    }

    fn sent_where(&self, keep: impl Fn(&Sent) -> bool) -> Vec<usize> {
        (0..self.sent.len()).filter(|&i| keep(&self.sent[i])).collect()
    }

    /// Registered messages without an excluded tag.
    fn creditable(&self) -> Vec<usize> {
        self.sent_where(|s| s.registered && !s.excluded)
    }

    fn choose<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.rng.random_range(0..items.len())]
    }

    /// Two different entries of `choices` (which holds at least two).
    fn two_distinct(&mut self, choices: &[usize]) -> (usize, usize) {
        let picked = index::sample(&mut self.rng, choices.len(), 2);
        (choices[picked.index(0)], choices[picked.index(1)])
    }

    fn messages(&mut self, target: usize) {
        // Every campaign of the tenant's own gets a registered message (two of the first six
        // have none).
        let registered = (target / 100).max(12).max(self.campaigns_left() + 2);
        let unregistered = 1 + target / 1500;
        for i in 0..registered + unregistered {
            let channel = if i < Channel::ALL.len() {
                Channel::ALL[i]
            } else {
                let weights = self.profile.channel_weights;
                *pick_weighted(&mut self.rng, Channel::ALL, |c| channel_weight(weights, *c))
            };
            // The first few are fixed so that every tenant has each kind; the rest are drawn.
            let class = match i {
                0..4 => Class::Campaign,
                4 => Class::Transactional,
                5 => Class::Triggered,
                _ if i >= registered => Class::Campaign,
                // As many messages left as campaigns without one: they all go to campaigns.
                _ if registered - i <= self.campaigns_left() => Class::Campaign,
                _ => match self.rng.random_range(0..100) {
                    0..12 => Class::Transactional,
                    12..24 => Class::Triggered,
                    _ => Class::Campaign,
                },
            };
            let (campaign_id, tags, spread) = match class {
                Class::Campaign => {
                    let campaign = self.campaign(i < registered);
                    let tags: &[&str] = match self.rng.random_range(0..4) {
                        0 => &["promo"],
                        1 => &["promo", "weekend"],
                        2 => &["newsletter"],
                        _ => &[],
                    };
                    (campaign, tags, 10 * MINUTE)
                }
                Class::Transactional => {
                    let excluded = self.choose(self.profile.excluded_tags);
                    let tags: &[&str] = match (excluded, self.rng.random_range(0..3)) {
                        ("transactional", 0) => &["transactional", "receipt"],
                        ("transactional", 1) => &["transactional", "password_reset"],
                        ("transactional", _) => &["transactional", "delivery_notice"],
                        (_, _) => &["system", "maintenance"],
                    };
                    (String::new(), tags, 14 * DAY)
                }
                Class::Triggered => {
                    let tags: &[&str] = if self.rng.random_bool(0.5) { &["triggered"] } else { &[] };
                    (String::new(), tags, 10 * DAY)
                }
            };
            let tags: Vec<String> = tags.iter().map(|t| (*t).to_owned()).collect();
            let excluded = self.config.is_excluded(&tags);
            let message = Message {
                tenant: self.tenant.clone(),
                msg_hash: format!("{:016x}{:08x}", self.rng.random::<u64>(), self.rng.random::<u32>()),
                campaign_id,
                channel,
                tags,
                sent_at: self.random_ts(self.days_before_end(6)),
            };
            self.sent.push(Sent { message, registered: i < registered, excluded, spread });
        }
        // Registration order: as the sender sent them.
        self.sent.sort_by_key(|s| s.message.sent_at);
    }

    /// Touches of every message's audience with the funnel's drop-off, and the conversions
    /// some of them lead to.
    fn campaign_traffic(&mut self, target: usize) {
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

    fn touch(&mut self, customer: &str, m: usize, kind: TouchKind, ts: Millis) {
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

    fn event(&mut self, customer: &str, spec: EventSpec, ts: Millis, msg_hash: Option<String>) {
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
    fn currency(&mut self) -> String {
        if self.rng.random_bool(0.05) {
            self.choose(self.profile.foreign_currencies).to_owned()
        } else {
            self.config.currency.clone()
        }
    }

    /// The statuses an order goes through, by where it was placed.
    fn order_path(&mut self) -> &'static [&'static str] {
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
    fn order(&mut self, customer: &str, start: Millis, path: &[&str], currency: String, explicit: Option<String>) {
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

    /// Touches up to and including the connecting one at exactly `t` (earlier steps a little
    /// before), for message `m` of a customer.
    fn connecting_touch(&mut self, customer: &str, m: usize, t: Millis) {
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

    /// The cases that must be present however the dice fall, `k` of each kind.
    fn edge_cases(&mut self, k: usize) {
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

    fn badges(&mut self, target: usize) {
        // The first ones cover every source and every later action; the rest are drawn.
        for i in 0..(target / 120).max(6) {
            let customer = self.customer();
            let (badge_id, rule_reason) = self.choose(self.profile.badges);
            let ts = self.random_ts(self.days_before_end(10));
            const SOURCES: &[(BadgeSource, u32)] = &[
                (BadgeSource::Rule, 40),
                (BadgeSource::Api, 20),
                (BadgeSource::DirectIssue, 10),
                (BadgeSource::BulkImport, 10),
                (BadgeSource::RetroEarn, 10),
                (BadgeSource::Migration, 10),
            ];
            let source = match SOURCES.get(i) {
                Some((source, _)) => *source,
                None => pick_weighted(&mut self.rng, SOURCES, |(_, w)| *w).0,
            };
            let reason = match source {
                BadgeSource::Rule | BadgeSource::RetroEarn => Some(rule_reason.to_owned()),
                BadgeSource::Api if self.rng.random_bool(0.5) => Some("granted by support".to_owned()),
                BadgeSource::Api
                | BadgeSource::DirectIssue
                | BadgeSource::BulkImport
                | BadgeSource::Migration => None,
            };
            self.badge(&customer, badge_id, BadgeAction::Earned, ts, source, reason);
            let fate = match i {
                0 => 0,
                1 => 20,
                _ => self.rng.random_range(0..100),
            };
            match fate {
                0..15 => {
                    let later = ts + self.rng.random_range(HOUR..5 * DAY);
                    let reason = Some("issued by mistake".to_owned());
                    self.badge(&customer, badge_id, BadgeAction::Revoked, later, BadgeSource::Api, reason);
                }
                15..25 => {
                    let later = ts + self.rng.random_range(DAY..10 * DAY);
                    self.badge(&customer, badge_id, BadgeAction::Expired, later, BadgeSource::Rule, None);
                }
                _ => {}
            }
        }
    }

    fn badge(
        &mut self,
        customer: &str,
        badge_id: &str,
        action: BadgeAction,
        ts: Millis,
        source: BadgeSource,
        reason: Option<String>,
    ) {
        let badge = BadgeEvent {
            tenant: self.tenant.clone(),
            event_id: self.event_id(),
            customer_id: customer.to_owned(),
            badge_id: badge_id.to_owned(),
            action,
            ts,
            source,
            reason,
        };
        self.records.push(Record::Badge(badge));
    }

    /// Events and orders that no message led to directly, until the tenant has `until`
    /// records. Customers who opened a message are more active in the days after (whatever
    /// touch is then in its window gets the credit); the rest is spread over the period.
    /// Some still carry a `msg_hash` (an old push opened again), most are direct traffic.
    fn organic(&mut self, until: usize) {
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
    fn shared_journeys(&mut self, count: usize) {
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

    /// Reuses another tenant's `event_id`s: per tenant they are distinct records.
    fn share_ids(&mut self, shared_ids: &[String]) {
        let picks = index::sample(&mut self.rng, self.records.len(), shared_ids.len().min(self.records.len()));
        for (i, id) in picks.into_iter().zip(shared_ids) {
            id.clone_into(event_id_mut(&mut self.records[i]));
        }
    }

    /// Client retries (the same record again, once or twice) and records that reuse an
    /// `event_id` with other content; both arrive after the original.
    fn repeats(&mut self) -> Vec<Repeat> {
        let n = self.records.len();
        let mut repeats = Vec::new();
        for of in index::sample(&mut self.rng, n, (n * 12 / 1000).max(5)) {
            let times = if self.rng.random_bool(0.12) { 2 } else { 1 };
            for _ in 0..times {
                repeats.push(Repeat { of, record: self.records[of].clone() });
            }
        }
        for of in index::sample(&mut self.rng, n, (n * 3 / 1000).max(3)) {
            let original = self.records[of].clone();
            let record = self.conflicting(&original);
            debug_assert_ne!(record, original);
            repeats.push(Repeat { of, record });
        }
        repeats
    }

    /// The same `event_id` with other content: what a buggy client sends when it reuses ids.
    fn conflicting(&mut self, original: &Record) -> Record {
        let mut record = original.clone();
        match &mut record {
            Record::Touch(t) => t.ts += self.rng.random_range(1..5 * SECOND),
            Record::Event(e) => e.value_micros = Some(e.value_micros.unwrap_or(0) * 2 + 1_000_000),
            Record::Order(o) => o.amount_minor += self.rng.random_range(100..5_000),
            Record::Badge(b) => {
                b.action = match b.action {
                    BadgeAction::Earned => BadgeAction::Revoked,
                    BadgeAction::Revoked | BadgeAction::Expired => BadgeAction::Earned,
                }
            }
            Record::Message(m) => m.sent_at += 1,
        }
        record
    }

    /// A retried registration and one that names a registered `msg_hash` with another
    /// campaign and an excluded tag: the first registration stands.
    fn message_repeats(&mut self) -> Vec<Message> {
        let registered: Vec<usize> = self.creditable();
        let (retried, changed) = self.two_distinct(&registered);
        let retried = self.sent[retried].message.clone();
        let mut changed = self.sent[changed].message.clone();
        changed.campaign_id = "re-registered".to_owned();
        changed.tags.push(self.profile.excluded_tags[0].to_owned());
        vec![retried, changed]
    }
}

#[derive(Clone, Copy)]
enum Class {
    Campaign,
    Transactional,
    Triggered,
}

#[derive(Clone, Copy)]
enum HashOn {
    All,
    First,
    Last,
}

fn customer_id(n: usize) -> String {
    format!("cust-{n:06}")
}

fn channel_weight(weights: [u32; 4], channel: Channel) -> u32 {
    match channel {
        Channel::Push => weights[0],
        Channel::Email => weights[1],
        Channel::Sms => weights[2],
        Channel::InApp => weights[3],
    }
}

fn event_id_mut(record: &mut Record) -> &mut String {
    match record {
        Record::Touch(t) => &mut t.event_id,
        Record::Event(e) => &mut e.event_id,
        Record::Order(o) => &mut o.event_id,
        Record::Badge(b) => &mut b.event_id,
        // Not in records.jsonl; its msg_hash plays the part of the event_id.
        Record::Message(m) => &mut m.msg_hash,
    }
}

/// Badge events of a tenant's long-timeline member in one tenant.
pub(crate) const LONG_TIMELINE_EVENTS: usize = 200;

/// The customer id of a tenant's long-timeline member.
pub(crate) const LONG_TIMELINE_CUSTOMER: &str = "member-long-timeline";

/// A member with a long badge history (what a support agent pages through): earns of the
/// tenant's badges from every source over the whole span, many revoked or expired again,
/// a few at the same ms. Drawn from `rng`, a stream of its own, so the rest of the data is
/// what it was without this member.
pub(crate) fn long_timeline(tenant: &TenantData, days: i64, rng: &mut SmallRng) -> Vec<Record> {
    let badge_ids: Vec<String> = tenant.config_section["badges"]
        .as_array()
        .map(|badges| badges.iter().filter_map(|b| b["id"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default();
    if badge_ids.is_empty() {
        return Vec::new();
    }
    const SOURCES: [BadgeSource; 5] =
        [BadgeSource::Api, BadgeSource::DirectIssue, BadgeSource::BulkImport, BadgeSource::Migration, BadgeSource::Api];
    let span = days.max(1) * DAY;
    let mut records = Vec::with_capacity(LONG_TIMELINE_EVENTS);
    let mut ts = BASE_TS + rng.random_range(0..HOUR);
    let step = (span / LONG_TIMELINE_EVENTS as i64).max(2);
    while records.len() < LONG_TIMELINE_EVENTS {
        let badge_id = &badge_ids[rng.random_range(0..badge_ids.len())];
        let source = SOURCES[records.len() % SOURCES.len()];
        let action = match rng.random_range(0..10) {
            0..6 => BadgeAction::Earned,
            6..9 => BadgeAction::Revoked,
            _ => BadgeAction::Expired,
        };
        let reason = match action {
            BadgeAction::Earned => Some(format!("{} by support", source.as_str().to_lowercase())),
            BadgeAction::Revoked => Some("issued by mistake".to_owned()),
            BadgeAction::Expired => None,
        };
        records.push(Record::Badge(BadgeEvent {
            tenant: tenant.tenant.clone(),
            event_id: uuid(rng),
            customer_id: LONG_TIMELINE_CUSTOMER.to_owned(),
            badge_id: badge_id.clone(),
            action,
            ts,
            source,
            reason,
        }));
        // Now and then two entries at the same ms.
        if rng.random_range(0..10) != 0 {
            ts += rng.random_range(1..2 * step);
        }
    }
    records
}
