//! A realistic, deterministic dataset generator for `touchstone gen --scale S --seed N DIR`:
//! the three bulk files of SPEC section 7 (`config.json`, `messages.jsonl`, `records.jsonl`),
//! about `S × 10,000` records, byte-identical for the same `(scale, seed)`.
//!
//! The data is meant to load-test and, above all, to cross-check the engine against
//! `touchstone_core::reference`: it is shaped like real traffic, and it holds every case where
//! an incremental engine tends to drift from the rules, however the dice fall.
//!
//! Modules:
//! - `profiles`: three tenant profiles (a shop in USD, a streaming service in EUR, a gym left
//!   on default currency and partly default channel settings) with different per-channel
//!   `connect_on` / `window_ms`, excluded tags, and extra ORDER goals (statuses, categories,
//!   order channels) and EVENT goals; larger scales add tenants reusing them.
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
//!   - deliberate edge cases: conversions exactly at `window_ms` after the touch and 1 ms
//!     past it, at the touch's very ms, equal-ts connecting touches of two messages, explicit
//!     `msg_hash` of excluded and unregistered messages, `event_id`s reused across tenants;
//!   - client retries (the same line again) and reused `event_id`s with other content, always
//!     later in the file than the original (the first arrival stands), and a re-registered
//!     message with another campaign and an excluded tag.
//!
//! Times are spread over 60 days from 2026-01-01T00:00Z, to the ms and weighted by hour of
//! day, so report ranges cut through hours and days. `records.jsonl` is shuffled across
//! tenants and kinds, so touches often come after the conversions they explain.
//!
//! Determinism rests on `rand::rngs::SmallRng` at the version pinned in `Cargo.lock` (its
//! algorithm may change between `rand` releases and differs on 32-bit targets), one stream
//! per tenant so that adding tenants at larger scales leaves the others unchanged, and JSON
//! objects written with sorted keys.

mod profiles;
mod tenant;

use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Map, Value};
use std::path::Path;
use touchstone_core::files::{message_to_json, record_to_json};
use touchstone_core::model::Millis;

/// 2026-01-01T00:00:00Z: where generated time starts.
pub const BASE_TS: Millis = 1_767_225_600_000;
/// Generated activity spans this many days from [`BASE_TS`] (status records and badge
/// changes of late orders may run a few weeks past it).
pub const SPAN_DAYS: i64 = 60;
/// Records per unit of scale.
pub const RECORDS_PER_SCALE: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GenOptions {
    /// About `scale × 10,000` records; 0 is treated as 1.
    pub scale: u32,
    pub seed: u64,
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

/// Generates the dataset in memory.
pub fn generate(options: &GenOptions) -> GeneratedFiles {
    let data = tenants(options);
    let tenants = data.len();

    let sections: Map<String, Value> = data.iter().map(|t| (t.tenant.clone(), t.config_section.clone())).collect();
    let mut config_json =
        serde_json::to_string_pretty(&json!({ "tenants": sections })).expect("a JSON value always serialises");
    config_json.push('\n');

    let mut messages_jsonl = String::new();
    let mut messages = 0;
    let registrations = data.iter().flat_map(|t| &t.messages);
    let re_registrations = data.iter().flat_map(|t| &t.message_repeats);
    for message in registrations.chain(re_registrations) {
        messages_jsonl.push_str(&message_to_json(message).to_string());
        messages_jsonl.push('\n');
        messages += 1;
    }

    let lines = shuffled_records(&data, SmallRng::seed_from_u64(stream_seed(options.seed, 0)));
    let records = lines.len();
    let mut records_jsonl = String::with_capacity(lines.iter().map(|l| l.len() + 1).sum());
    for line in lines {
        records_jsonl.push_str(&line);
        records_jsonl.push('\n');
    }

    GeneratedFiles {
        config_json,
        messages_jsonl,
        records_jsonl,
        summary: GenSummary { tenants, messages, records },
    }
}

/// Generates the dataset and writes `config.json`, `messages.jsonl` and `records.jsonl` into
/// `dir`, creating it if needed.
pub fn generate_to_dir(options: &GenOptions, dir: &Path) -> std::io::Result<GenSummary> {
    let files = generate(options);
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("config.json"), &files.config_json)?;
    std::fs::write(dir.join("messages.jsonl"), &files.messages_jsonl)?;
    std::fs::write(dir.join("records.jsonl"), &files.records_jsonl)?;
    Ok(files.summary)
}

/// Every tenant's data, unshuffled.
fn tenants(options: &GenOptions) -> Vec<tenant::TenantData> {
    let scale = options.scale.max(1);
    let total = scale as usize * RECORDS_PER_SCALE;
    let weights: Vec<usize> = (0..tenant_count(scale)).map(profiles::weight).collect();
    let weight_sum: usize = weights.iter().sum();
    let mut data = Vec::with_capacity(weights.len());
    let mut shared_ids: Vec<String> = Vec::new();
    for (index, weight) in weights.iter().enumerate() {
        let (profile, name) = profiles::tenant(index);
        let rng = SmallRng::seed_from_u64(stream_seed(options.seed, index as u64 + 1));
        let tenant = tenant::generate(profile, name, total * weight / weight_sum, scale, rng, &shared_ids);
        if index == 0 {
            // Some event_ids of the first tenant come back in every other one.
            shared_ids = tenant.records.iter().step_by(997).take(5).map(|r| r.id().to_owned()).collect();
        }
        data.push(tenant);
    }
    data
}

/// A seed per random stream (0: the shuffle, 1..: the tenants), decorrelated by splitmix64.
fn stream_seed(seed: u64, stream: u64) -> u64 {
    let mut z = seed ^ stream.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Every tenant's records as lines, shuffled together: each line gets a random position,
/// and a repeat a random position after its original's, so retries and conflicting
/// duplicates always arrive later than what they repeat.
fn shuffled_records(data: &[tenant::TenantData], mut rng: SmallRng) -> Vec<String> {
    let total: usize = data.iter().map(|t| t.records.len() + t.repeats.len()).sum();
    let mut keyed: Vec<(u64, String)> = Vec::with_capacity(total);
    for tenant in data {
        let first = keyed.len();
        for record in &tenant.records {
            keyed.push((rng.random(), record_to_json(record).to_string()));
        }
        for repeat in &tenant.repeats {
            let after = keyed[first + repeat.of].0;
            keyed.push((rng.random_range(after..=u64::MAX), record_to_json(&repeat.record).to_string()));
        }
    }
    // Stable: a repeat drawn at its original's exact position still sorts after it.
    keyed.sort_by_key(|(key, _)| *key);
    keyed.into_iter().map(|(_, line)| line).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// The files cannot tell an original from its repeat; only the generator knows which
    /// one is meant to stand, so only here can it be checked that it arrives first.
    #[test]
    fn every_repeat_arrives_after_its_original() {
        let options = GenOptions { scale: 1, seed: 3 };
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
