//! A realistic, deterministic dataset generator for
//! `touchstone gen --scale S --seed N [--days D] [--campaigns C] DIR`: the three bulk files of
//! docs/behaviour/records-and-config.md (`config.json`, `messages.jsonl`, `records.jsonl`), about `S × 10,000`
//! records over `D` days (default 60) plus 200 badge events per tenant for its long-timeline
//! member, byte-identical for the same [`GenOptions`].
//!
//! The data is meant to load-test and, above all, to cross-check the engine against
//! `touchstone_core::reference`: it is shaped like real traffic, and it holds every case where
//! an incremental engine tends to drift from the rules, however the dice fall.
//!
//! Modules:
//! - `profiles`: three tenant profiles (a shop in USD, a streaming service in EUR, a gym left
//!   on default currency and partly default channel settings) with different per-channel
//!   `connect_on` / `window_ms`, excluded tags, and extra ORDER goals (statuses, categories,
//!   order channels) and EVENT goals; larger scales add tenants reusing them. By default each
//!   tenant draws from its profile's handful of campaigns; with `campaigns: Some(C)` the
//!   tenants share `C` campaign ids between them in proportion to their size (each at least
//!   one), named after the profile's and numbered across tenants (`winter-sale-2026-0042`),
//!   and every one gets registered messages, hence touches.
//! - `tenant`: one tenant's data:
//!   - messages on all four channels: campaign blasts, triggered messages without a campaign,
//!     transactional ones with an excluded tag, and a few never registered (their touches and
//!     explicit `msg_hash`es name an unknown message);
//!   - SENT → DELIVERED → OPENED → CLICKED funnels with drop-off per channel, conversions
//!     following the connecting touch (inside the window, at its end, past it), some with an
//!     explicit `msg_hash`;
//!   - app events with and without values (fractional: 12.5 seconds), with `msg_hash` (event
//!     hits) or without; orders as several status records (CREATED, PLACED, PAID, DELIVERED,
//!     CANCELLED, REFUNDED) with categories, channels (web, app, pos), coupons changing the
//!     paid amount, equal-ms PLACED/PAID at the till, a PAID stamped before its PLACED, and
//!     some in a foreign currency; badge events from every source, some revoked or expired;
//!   - a member per tenant (`member-long-timeline`) with a long badge history: 200 events
//!     over the whole span, from its own random stream, so the other lines are the ones
//!     generated before it existed, in the same order;
//!   - deliberate edge cases: conversions exactly at `window_ms` after the touch and 1 ms
//!     past it, at the touch's very ms, equal-ts connecting touches of two messages, explicit
//!     `msg_hash` of excluded and unregistered messages, `event_id`s reused across tenants;
//!   - client retries (the same line again) and reused `event_id`s with other content, always
//!     later in the file than the original (the first arrival stands), and a re-registered
//!     message with another campaign and an excluded tag.
//!
//! Times are spread over `days` (default [`SPAN_DAYS`], 60) from 2026-01-01T00:00Z, to the ms
//! and weighted by hour of day, so report ranges cut through hours and days. The number of
//! records does not depend on the span: a longer one spreads them thinner. What has
//! follow-ups (messages and their sends, edge cases with their conversions, badges that may be
//! revoked or expire) starts a few days before the span's end (6, 20 or 10 days, or in the
//! first half of a span too short for that); late deliveries and refunds may run a few weeks
//! past it. `records.jsonl` is shuffled across tenants and kinds, so touches often come after
//! the conversions they explain.
//!
//! Memory: tenants are generated one at a time and turned into JSON lines at once, so what
//! stays is one copy of the records' text and 16 bytes a line for the shuffle;
//! [`generate_to_dir`] writes the shuffled lines straight from it (peak 0.7 GB at scale 300,
//! 2.2 GB at scale 1000), [`generate`] builds a second copy as a `String`.
//!
//! Determinism rests on `rand::rngs::SmallRng` at the version pinned in `Cargo.lock` (its
//! algorithm may change between `rand` releases and differs on 32-bit targets), one stream
//! per tenant so that adding tenants at larger scales leaves the others unchanged, and JSON
//! objects written with sorted keys. With `days` and `campaigns` at their defaults the files
//! are the ones generated before those options existed (`tests/options.rs` pins their bytes).

mod profiles;
mod tenant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::Path;
use touchstone_core::files::{message_to_json, record_to_json};
use touchstone_core::model::{Millis, Record};

/// 2026-01-01T00:00:00Z: where generated time starts.
pub const BASE_TS: Millis = 1_767_225_600_000;
/// By default generated activity spans this many days from [`BASE_TS`] (status records and
/// badge changes of late orders may run a few weeks past it); [`GenOptions::days`] sets it.
pub const SPAN_DAYS: i64 = 60;
/// The longest span [`GenOptions::days`] may ask for (about 27 years, so that times stay
/// far from the 2100 limit of record validation); longer ones are cut to it.
pub const MAX_DAYS: u32 = 10_000;
/// Records per unit of scale.
pub const RECORDS_PER_SCALE: usize = 10_000;

/// What to generate. [`GenOptions::new`] or [`Default`] give the defaults for `days` and
/// `campaigns`, under which the files are the same as before those knobs existed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    /// About `scale × 10,000` records; 0 is treated as 1.
    pub scale: u32,
    pub seed: u64,
    /// Days of activity from [`BASE_TS`] (default [`SPAN_DAYS`]): the same records spread
    /// over a longer or shorter period. 0 is treated as 1, more than [`MAX_DAYS`] as
    /// [`MAX_DAYS`].
    pub days: u32,
    /// Distinct campaign ids over all tenants, split between them by size (each at least
    /// one), named after the profile's campaigns and numbered (`winter-sale-2026-0042`);
    /// every one has registered messages and touches. `None` (default): each profile's own
    /// handful of campaigns.
    pub campaigns: Option<usize>,
}

impl GenOptions {
    /// `scale` and `seed` with the default span and campaigns.
    pub const fn new(scale: u32, seed: u64) -> Self {
        GenOptions { scale, seed, days: SPAN_DAYS as u32, campaigns: None }
    }
}

impl Default for GenOptions {
    /// Scale 1, seed 1, as `touchstone gen` without flags.
    fn default() -> Self {
        GenOptions::new(1, 1)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenSummary {
    pub tenants: usize,
    /// Lines of `messages.jsonl` (re-registrations included).
    pub messages: usize,
    /// Lines of `records.jsonl` (retries and duplicates included).
    pub records: usize,
}

/// The three files' contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFiles {
    pub config_json: String,
    pub messages_jsonl: String,
    pub records_jsonl: String,
    pub summary: GenSummary,
}

/// How many tenants a scale has: three, and one more per 10 units of scale.
pub fn tenant_count(scale: u32) -> usize {
    3 + scale.max(1) as usize / 10
}

/// Generates the dataset in memory (for tests and small scales: it holds the records text
/// twice; [`generate_to_dir`] writes the same bytes holding it once).
pub fn generate(options: &GenOptions) -> GeneratedFiles {
    let dataset = build(options);
    let mut records_jsonl = String::with_capacity(dataset.records.text.len());
    for line in dataset.records.lines() {
        records_jsonl.push_str(line);
    }
    GeneratedFiles {
        config_json: dataset.config_json,
        messages_jsonl: dataset.messages_jsonl,
        records_jsonl,
        summary: dataset.summary,
    }
}

/// Generates the dataset and writes `config.json`, `messages.jsonl` and `records.jsonl` into
/// `dir`, creating it if needed: the same bytes as [`generate`]. The records are written line
/// by line in their shuffled order from one copy of their text, so memory stays at about the
/// size of `records.jsonl` (plus 16 bytes a line), whatever the scale.
pub fn generate_to_dir(options: &GenOptions, dir: &Path) -> std::io::Result<GenSummary> {
    let dataset = build(options);
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), &dataset.config_json)?;
    std::fs::write(dir.join("messages.jsonl"), &dataset.messages_jsonl)?;
    let mut records = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(dir.join("records.jsonl"))?);
    for line in dataset.records.lines() {
        records.write_all(line.as_bytes())?;
    }
    records.into_inner().map_err(std::io::IntoInnerError::into_error)?;
    Ok(dataset.summary)
}

/// The dataset with `records.jsonl` not yet put together.
struct Built {
    config_json: String,
    messages_jsonl: String,
    records: Shuffle,
    summary: GenSummary,
}

/// Generates the tenants one after the other, keeping only their text: a tenant's records
/// are turned into lines and dropped before the next one is generated.
fn build(options: &GenOptions) -> Built {
    let mut sections = Map::new();
    let mut messages_jsonl = String::new();
    let mut re_registrations = String::new();
    let mut messages = 0;
    let mut records = Shuffle::default();
    let mut rng = SmallRng::seed_from_u64(stream_seed(options.seed, 0));
    for (index, tenant) in Tenants::new(options).enumerate() {
        sections.insert(tenant.tenant.clone(), tenant.config_section.clone());
        for message in &tenant.messages {
            writeln!(messages_jsonl, "{}", message_to_json(message)).expect("writing to a String cannot fail");
        }
        for message in &tenant.message_repeats {
            writeln!(re_registrations, "{}", message_to_json(message)).expect("writing to a String cannot fail");
        }
        messages += tenant.messages.len() + tenant.message_repeats.len();
        records.add(&tenant, &mut rng);
        // Streams of their own: the long timelines leave every other line where it was.
        let mut long_rng = SmallRng::seed_from_u64(stream_seed(options.seed, LONG_TIMELINE_STREAMS + index as u64));
        let long = tenant::badges::long_timeline(&tenant, i64::from(options.days.clamp(1, MAX_DAYS)), &mut long_rng);
        records.add_records(&long, &mut long_rng);
    }
    // Every tenant's registrations first, then every tenant's re-registrations.
    messages_jsonl.push_str(&re_registrations);
    records.sort();
    let tenants = sections.len();
    let mut config_json =
        serde_json::to_string_pretty(&json!({ "tenants": sections })).expect("a JSON value always serialises");
    config_json.push('\n');
    let summary = GenSummary { tenants, messages, records: records.keyed.len() };
    Built { config_json, messages_jsonl, records, summary }
}

/// Every tenant's data, unshuffled, all at once.
#[cfg(test)]
fn tenants(options: &GenOptions) -> Vec<tenant::TenantData> {
    Tenants::new(options).collect()
}

/// The tenants, generated one at a time.
struct Tenants {
    seed: u64,
    scale: u32,
    days: i64,
    total: usize,
    weights: Vec<usize>,
    weight_sum: usize,
    /// Each tenant's own campaigns, taken as the tenants are generated.
    campaigns: Option<std::vec::IntoIter<Vec<String>>>,
    /// Some event_ids of the first tenant, reused in every other one.
    shared_ids: Vec<String>,
    next: usize,
}

impl Tenants {
    fn new(options: &GenOptions) -> Self {
        let scale = options.scale.max(1);
        let count = tenant_count(scale);
        let weights: Vec<usize> = (0..count).map(profiles::weight).collect();
        Tenants {
            seed: options.seed,
            scale,
            days: i64::from(options.days.clamp(1, MAX_DAYS)),
            total: scale as usize * RECORDS_PER_SCALE,
            weight_sum: weights.iter().sum(),
            weights,
            campaigns: options.campaigns.map(|total| profiles::campaign_lists(total, count).into_iter()),
            shared_ids: Vec::new(),
            next: 0,
        }
    }
}

impl Iterator for Tenants {
    type Item = tenant::TenantData;

    fn next(&mut self) -> Option<tenant::TenantData> {
        let index = self.next;
        let weight = *self.weights.get(index)?;
        self.next += 1;
        let (profile, name) = profiles::tenant(index);
        let rng = SmallRng::seed_from_u64(stream_seed(self.seed, index as u64 + 1));
        let plan = tenant::Plan {
            target: self.total * weight / self.weight_sum,
            scale: self.scale,
            days: self.days,
            campaigns: self.campaigns.as_mut().and_then(Iterator::next),
        };
        let tenant = tenant::generate(profile, name, plan, rng, &self.shared_ids);
        if index == 0 {
            self.shared_ids = tenant.records.iter().step_by(997).take(5).map(|r| r.id().to_owned()).collect();
        }
        Some(tenant)
    }
}

/// The first stream of the tenants' long-timeline members (one each, by tenant index).
const LONG_TIMELINE_STREAMS: u64 = 1 << 32;

/// A seed per random stream (0: the shuffle, 1..: the tenants, [`LONG_TIMELINE_STREAMS`]..:
/// their long-timeline members), decorrelated by splitmix64.
fn stream_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Every tenant's records as lines, shuffled together: each line gets a random position,
/// and a repeat a random position after its original's, so retries and conflicting
/// duplicates always arrive later than what they repeat.
///
/// The lines are kept in one text, in generation order, each ending in a newline (compact
/// JSON has none inside); the order is a sort of (position, where the line starts).
#[derive(Default)]
struct Shuffle {
    text: String,
    /// Random position and start in `text` of every line.
    keyed: Vec<(u64, usize)>,
}

impl Shuffle {
    /// Adds a tenant's lines, drawing their positions from `rng`: its records, then its
    /// repeats.
    fn add(&mut self, tenant: &tenant::TenantData, rng: &mut SmallRng) {
        let first = self.keyed.len();
        for record in &tenant.records {
            let key = rng.random();
            self.push(key, record_to_json(record));
        }
        for repeat in &tenant.repeats {
            let after = self.keyed[first + repeat.of].0;
            let key = rng.random_range(after..=u64::MAX);
            self.push(key, record_to_json(&repeat.record));
        }
    }

    /// Adds lines at positions drawn from `rng`.
    fn add_records(&mut self, records: &[Record], rng: &mut SmallRng) {
        for record in records {
            let key = rng.random();
            self.push(key, record_to_json(record));
        }
    }

    fn push(&mut self, key: u64, line: Value) {
        self.keyed.push((key, self.text.len()));
        writeln!(self.text, "{line}").expect("writing to a String cannot fail");
    }

    /// Puts the lines in their shuffled order. Starts grow with the order lines were added,
    /// so a repeat drawn at its original's exact position still sorts after it.
    fn sort(&mut self) {
        self.keyed.sort_unstable();
    }

    /// The lines, newline included, in their order.
    fn lines(&self) -> impl Iterator<Item = &str> + '_ {
        self.keyed.iter().map(|&(_, start)| {
            let rest = &self.text[start..];
            &rest[..=rest.find('\n').expect("every line ends in a newline")]
        })
    }
}

/// Every tenant's records as lines (without newline), shuffled together.
#[cfg(test)]
fn shuffled_records(data: &[tenant::TenantData], mut rng: SmallRng) -> Vec<String> {
    let mut shuffle = Shuffle::default();
    for tenant in data {
        shuffle.add(tenant, &mut rng);
    }
    shuffle.sort();
    shuffle.lines().map(|line| line.trim_end_matches('\n').to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The files cannot tell an original from its repeat; only the generator knows which
    /// one is meant to stand, so only here can it be checked that it arrives first.
    #[test]
    fn every_repeat_arrives_after_its_original() {
        let options = GenOptions { scale: 1, seed: 3, ..GenOptions::default() };
        let data = tenants(&options);
        let lines = shuffled_records(&data, SmallRng::seed_from_u64(stream_seed(options.seed, 0)));
        let mut first_line: HashMap<&str, usize> = HashMap::new();
        let mut last_line: HashMap<&str, usize> = HashMap::new();
        for (number, line) in lines.iter().enumerate() {
            first_line.entry(line).or_insert(number);
            last_line.insert(line, number);
        }
        let mut checked = 0;
        for tenant in &data {
            for repeat in &tenant.repeats {
                let original = record_to_json(&tenant.records[repeat.of]).to_string();
                let repeated = record_to_json(&repeat.record).to_string();
                if original == repeated {
                    assert!(last_line[original.as_str()] > first_line[original.as_str()], "a retry is a second line");
                } else {
                    assert!(first_line[original.as_str()] < first_line[repeated.as_str()], "{original}\n{repeated}");
                }
                checked += 1;
            }
        }
        assert!(checked > 100, "{checked} repeats");
    }

    #[test]
    fn streams_are_decorrelated() {
        let seeds: std::collections::BTreeSet<u64> =
            (0..4).flat_map(|seed| (0..4).map(move |stream| stream_seed(seed, stream))).collect();
        assert_eq!(seeds.len(), 16);
    }
}
