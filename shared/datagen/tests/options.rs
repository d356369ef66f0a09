//! The `days` and `campaigns` knobs, and that leaving them at their defaults changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;
use touchstone_core::files::{parse_message, parse_record};
use touchstone_core::model::{Message, Record};
use touchstone_core::reference::{evaluate, Dataset, EXPLICIT, LAST_TOUCH, UNATTRIBUTED};
use touchstone_core::validate::validate;
use touchstone_datagen::{generate, generate_to_dir, GenOptions, GeneratedFiles, BASE_TS, MAX_DAYS, SPAN_DAYS};

const DAY: i64 = 86_400_000;

/// FNV-1a, 64 bits: a checksum that no library release can change.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

fn read(dir: &Path, name: &str) -> String {
    std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The three files as `generate_to_dir` writes them.
fn written(options: &GenOptions) -> GeneratedFiles {
    let dir = tempfile::tempdir().unwrap();
    let summary = generate_to_dir(options, dir.path()).unwrap();
    GeneratedFiles {
        config_json: read(dir.path(), "config.json"),
        messages_jsonl: read(dir.path(), "messages.jsonl"),
        records_jsonl: read(dir.path(), "records.jsonl"),
        summary,
    }
}

fn messages(files: &GeneratedFiles) -> Vec<Message> {
    files.messages_jsonl.lines().map(|line| parse_message(line).unwrap_or_else(|e| panic!("{e}: {line}"))).collect()
}

fn records(files: &GeneratedFiles) -> Vec<Record> {
    files
        .records_jsonl
        .lines()
        .map(|line| {
            let record = parse_record(line).unwrap_or_else(|e| panic!("{e}: {line}"));
            validate(&record).unwrap_or_else(|e| panic!("{e}: {line}"));
            record
        })
        .collect()
}

/// The bytes generated before `days` and `campaigns` existed, pinned as (length, FNV-1a)
/// of config.json, messages.jsonl and records.jsonl. config.json was pinned again when it
/// gained badge definitions (the records did not change), and all three when campaigns
/// gained holdouts and conversions shared by several messages. The long-timeline members
/// come from random streams of their own: the pins are of records.jsonl without their lines.
/// When the pins move, bump `GENERATION` in `bench/src/datasets.rs` too (the bench caches
/// generated datasets).
#[test]
fn the_defaults_give_the_same_bytes_as_before_the_knobs() {
    assert_eq!(GenOptions::default(), GenOptions::new(1, 1));
    assert_eq!(GenOptions::new(3, 4), GenOptions { scale: 3, seed: 4, days: 60, campaigns: None });
    /// (scale, seed) and (length, FNV-1a) of each file.
    type Pinned = ((u32, u64), [(usize, u64); 3]);
    let pinned: [Pinned; 2] = [
        ((1, 1), [(11_360, 0x320e_4fb1_5e90_1c41), (16_071, 0xe0c4_ba19_ad23_77ec), (2_013_189, 0x6ca2_f334_fb9e_96dc)]),
        (
            (12, 3),
            [(15_165, 0xf64f_3395_d44b_3eb2), (181_966, 0x1693_a74b_09e8_c02c), (24_445_125, 0xad88_c32b_c085_3b3a)],
        ),
    ];
    for ((scale, seed), expected) in pinned {
        let options = GenOptions::new(scale, seed);
        let files = written(&options);
        let without_long: String =
            files.records_jsonl.split_inclusive('\n').filter(|line| !line.contains("\"member-long-timeline\"")).collect();
        let got = [&files.config_json, &files.messages_jsonl, &without_long].map(|t| (t.len(), fnv1a(t.as_bytes())));
        assert_eq!(got, expected, "scale {scale} seed {seed}: (length, FNV-1a) of the three files");
        let long = files.records_jsonl.lines().count() - without_long.lines().count();
        assert_eq!(long, 200 * files.summary.tenants, "scale {scale} seed {seed}: the long timelines' lines");
        if scale == 1 {
            assert_eq!(generate(&options), files, "generate and generate_to_dir give the same bytes");
        }
    }
}

#[test]
fn the_same_options_give_the_same_bytes() {
    let options = GenOptions { scale: 1, seed: 5, days: 365, campaigns: Some(300) };
    let first = generate(&options);
    assert!(first == generate(&options));
    assert_eq!(first, written(&options));
    let default = generate(&GenOptions::new(1, 5));
    assert_ne!(first.records_jsonl, default.records_jsonl);
    let other_days = generate(&GenOptions { days: 366, ..options });
    assert_ne!(first.records_jsonl, other_days.records_jsonl);
    let other_campaigns = generate(&GenOptions { campaigns: Some(301), ..options });
    assert_ne!(first.messages_jsonl, other_campaigns.messages_jsonl);
}

#[test]
fn a_year_of_days_spreads_the_records_over_a_year() {
    let files = written(&GenOptions { scale: 1, seed: 2, days: 365, ..GenOptions::default() });
    let records = records(&files);
    assert!((9_500..=11_000).contains(&records.len()), "the span leaves the size alone: {}", records.len());
    let min = records.iter().map(Record::ts).min().unwrap();
    let max = records.iter().map(Record::ts).max().unwrap();
    assert!((BASE_TS..BASE_TS + 2 * DAY).contains(&min), "first record {} days in", (min - BASE_TS) / DAY);
    // Late deliveries, refunds and badge expiries may run a few weeks past the span.
    assert!((BASE_TS + 355 * DAY..BASE_TS + 405 * DAY).contains(&max), "last record {} days in", (max - BASE_TS) / DAY);
    // Spread over the whole year, not bunched at its start: every month has its share.
    let mut per_month = [0usize; 12];
    for record in &records {
        let day = (record.ts() - BASE_TS) / DAY;
        if day < 360 {
            per_month[day as usize / 30] += 1;
        }
    }
    assert!(per_month.iter().all(|&n| n >= records.len() / 40), "{per_month:?}");
    for message in messages(&files) {
        assert!((BASE_TS..BASE_TS + 365 * DAY).contains(&message.sent_at), "{message:?}");
    }
    // Spread thin, the attribution cases are all still there.
    let reference =
        evaluate(&Dataset::from_files(&files.config_json, &files.messages_jsonl, &files.records_jsonl).unwrap());
    for tenant in ["acme-shop", "streamly", "fitclub"] {
        let rules: BTreeSet<&str> = reference.conversions(tenant).iter().map(|c| c.rule).collect();
        assert_eq!(rules, BTreeSet::from([EXPLICIT, LAST_TOUCH, UNATTRIBUTED]), "{tenant}");
    }
}

#[test]
fn short_and_overlong_spans_stay_valid() {
    for days in [0, 1, 7, 30] {
        let files = generate(&GenOptions { scale: 1, seed: 3, days, ..GenOptions::default() });
        let span = i64::from(days.max(1));
        for record in records(&files) {
            assert!((BASE_TS..BASE_TS + (span + 45) * DAY).contains(&record.ts()), "days {days}: {record:?}");
        }
        for message in messages(&files) {
            assert!((BASE_TS..BASE_TS + span * DAY).contains(&message.sent_at), "days {days}: {message:?}");
        }
    }
    assert_eq!(
        generate(&GenOptions { days: u32::MAX, ..GenOptions::default() }),
        generate(&GenOptions { days: MAX_DAYS, ..GenOptions::default() }),
        "longer spans are cut to MAX_DAYS"
    );
    assert_eq!(
        generate(&GenOptions { days: SPAN_DAYS as u32, ..GenOptions::default() }),
        generate(&GenOptions::default())
    );
}

/// Campaign ids of first registrations, with their tenants, and touches per campaign.
fn campaigns_and_touches(files: &GeneratedFiles) -> (BTreeMap<String, BTreeSet<String>>, HashMap<String, usize>) {
    let mut campaign_of: HashMap<(String, String), String> = HashMap::new();
    let mut tenants_of: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut seen = BTreeSet::new();
    for message in messages(files) {
        let first = seen.insert((message.tenant.clone(), message.msg_hash.clone()));
        if !first || message.campaign_id.is_empty() {
            continue;
        }
        let key = (message.tenant.clone(), message.msg_hash.clone());
        tenants_of.entry(message.campaign_id.clone()).or_default().insert(message.tenant.clone());
        campaign_of.insert(key, message.campaign_id);
    }
    let mut touches: HashMap<String, usize> = HashMap::new();
    for record in records(files) {
        if let Record::Touch(touch) = record
            && let Some(campaign) = campaign_of.get(&(touch.tenant, touch.msg_hash))
        {
            *touches.entry(campaign.clone()).or_default() += 1;
        }
    }
    (tenants_of, touches)
}

#[test]
fn a_thousand_campaigns_all_have_messages_and_touches() {
    for scale in [1, 12] {
        let files = written(&GenOptions { scale, seed: 4, campaigns: Some(1000), ..GenOptions::default() });
        let (tenants_of, touches) = campaigns_and_touches(&files);
        assert_eq!(tenants_of.len(), 1000, "scale {scale}: distinct campaign ids of registered messages");
        let all_ids: BTreeSet<String> =
            messages(&files).into_iter().map(|m| m.campaign_id).filter(|c| !c.is_empty()).collect();
        // The one conflicting re-registration (which does not stand) names a campaign of its own.
        assert_eq!(all_ids.len(), 1001, "scale {scale}");
        let mut per_tenant: BTreeMap<&str, usize> = BTreeMap::new();
        for (campaign, tenants) in &tenants_of {
            assert_eq!(tenants.len(), 1, "{campaign} belongs to one tenant: {tenants:?}");
            *per_tenant.entry(tenants.first().unwrap()).or_default() += 1;
            assert!(touches.get(campaign).is_some_and(|&n| n >= 3), "{campaign}: {:?} touches", touches.get(campaign));
            let (name, number) = campaign.rsplit_once('-').unwrap();
            assert!(number.len() == 4 && number.bytes().all(|b| b.is_ascii_digit()), "{campaign}");
            assert!(!name.is_empty());
        }
        if scale == 1 {
            let expected = BTreeMap::from([("acme-shop", 400), ("streamly", 300), ("fitclub", 300)]);
            assert_eq!(per_tenant, expected);
            assert!(tenants_of.contains_key("winter-sale-2026-0000"), "named after the profile's campaigns");
            assert!(tenants_of.contains_key("new-season-drop-0400"));
        } else {
            assert_eq!(per_tenant.len(), 4, "{per_tenant:?}");
        }
    }
}

#[test]
fn few_campaigns_give_every_tenant_one() {
    let files = generate(&GenOptions { scale: 1, seed: 6, campaigns: Some(1), ..GenOptions::default() });
    let (tenants_of, touches) = campaigns_and_touches(&files);
    assert_eq!(tenants_of.len(), 3, "{tenants_of:?}");
    assert!(tenants_of.keys().all(|c| touches[c] > 100), "{touches:?}");
}
