//! One tenant's messages and records: campaign traffic with funnels and the conversions it
//! causes, deliberate edge cases, badges, organic activity filling the rest, then retries
//! and conflicting duplicates of some records.
//!
//! This module holds the generator's state, the output types, the helpers every part draws
//! with, and the driver ([`generate`]) that runs the parts in a fixed order: each part draws
//! from the tenant's one random stream, so the order of the calls in [`generate`] is what
//! keeps the bytes of a seed the same. The parts, as `impl TenantGen` blocks by what they
//! generate:
//! - `messages`: the registered and unregistered messages of all four channels;
//! - `traffic`: campaign funnels with the conversions they lead to, organic activity, and
//!   journeys that several messages share;
//! - `edge_cases`: the cases that must be present however the dice fall;
//! - `badges`: badge events, and the long-timeline member drawn from a stream of its own;
//! - `repeats`: reused `event_id`s, client retries, conflicting duplicates and
//!   re-registered messages;
//! - `records`: the single records the others build from (touches, app events, orders).

pub(crate) mod badges;
mod edge_cases;
mod messages;
mod records;
mod repeats;
mod traffic;

use crate::profiles::{Profile, DAY, HOUR};
use crate::BASE_TS;
use rand::rngs::SmallRng;
use rand::seq::index;
use rand::Rng;
use touchstone_core::config::TenantConfig;
use touchstone_core::files::{apply_config_file, parse_config};
use touchstone_core::model::{Message, Millis, Record};

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
    // One stream for every part: the order of these calls is the order of the draws.
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
}

fn customer_id(n: usize) -> String {
    format!("cust-{n:06}")
}
