//! Black-box tests of the generated dataset: determinism, that every line is accepted, that
//! each edge case is really in the files, and what the reference evaluation makes of them.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use touchstone_core::config::{Goal, GoalKind, TenantConfig, MAX_GOALS};
use touchstone_core::files::{apply_config_file, parse_config, parse_message, parse_record};
use touchstone_core::model::{Channel, Message, Record, Touch};
use touchstone_core::reference::{evaluate, Dataset, Reference, EXPLICIT, LAST_TOUCH, UNATTRIBUTED};
use touchstone_core::validate::validate;
use touchstone_datagen::{generate, generate_to_dir, GenOptions, GeneratedFiles, BASE_TS};

const DAY: i64 = 86_400_000;

fn scale_one(seed: u64) -> GeneratedFiles {
    generate(&GenOptions { scale: 1, seed, ..GenOptions::default() })
}

/// The files read back: configs applied to the defaults, messages and records with their
/// raw line, everything checked to parse and validate.
struct Parsed {
    configs: BTreeMap<String, TenantConfig>,
    messages: Vec<(String, Message)>,
    records: Vec<(String, Record)>,
}

fn parse(files: &GeneratedFiles) -> Parsed {
    let mut configs = BTreeMap::new();
    for section in parse_config(&files.config_json).expect("config.json parses") {
        let mut config = TenantConfig::defaults(&section.tenant);
        apply_config_file(&mut config, &section).unwrap_or_else(|e| panic!("{}: {e}", section.tenant));
        assert!(config.goals.len() <= MAX_GOALS, "{}: {} goals", section.tenant, config.goals.len());
        if let Some(orders) = section.goals.iter().find(|g| g.id == "orders") {
            assert_eq!(orders, &Goal::default_orders(), "{}: a listed `orders` must be the default", section.tenant);
        }
        configs.insert(section.tenant.clone(), config);
    }
    let messages = lines(&files.messages_jsonl)
        .map(|(n, line)| {
            let message = parse_message(line).unwrap_or_else(|e| panic!("messages.jsonl line {n}: {e}\n{line}"));
            validate(&Record::Message(message.clone()))
                .unwrap_or_else(|e| panic!("messages.jsonl line {n}: {e}\n{line}"));
            (line.to_owned(), message)
        })
        .collect();
    let records = lines(&files.records_jsonl)
        .map(|(n, line)| {
            let record = parse_record(line).unwrap_or_else(|e| panic!("records.jsonl line {n}: {e}\n{line}"));
            validate(&record).unwrap_or_else(|e| panic!("records.jsonl line {n}: {e}\n{line}"));
            (line.to_owned(), record)
        })
        .collect();
    Parsed { configs, messages, records }
}

fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().map(|(i, line)| (i + 1, line))
}

impl Parsed {
    fn tenants(&self) -> impl Iterator<Item = (&String, &TenantConfig)> {
        self.configs.iter()
    }

    /// A tenant's registered messages, first registration standing.
    fn registered(&self, tenant: &str) -> HashMap<&str, &Message> {
        let mut registered = HashMap::new();
        for (_, message) in self.messages.iter().filter(|(_, m)| m.tenant == tenant) {
            registered.entry(message.msg_hash.as_str()).or_insert(message);
        }
        registered
    }

    fn records_of<'a>(&'a self, tenant: &'a str) -> impl Iterator<Item = &'a Record> + 'a {
        self.records.iter().map(|(_, r)| r).filter(move |r| r.tenant() == tenant)
    }
}

#[test]
fn the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes() {
    let first = scale_one(42);
    let again = scale_one(42);
    assert!(first == again, "same (scale, seed) must give byte-identical files");
    let other = scale_one(43);
    assert_ne!(first.records_jsonl, other.records_jsonl);
    assert_ne!(first.messages_jsonl, other.messages_jsonl);
    let larger = generate(&GenOptions { scale: 2, seed: 42, ..GenOptions::default() });
    assert_ne!(first.records_jsonl, larger.records_jsonl);
}

#[test]
fn every_line_parses_and_validates_and_the_config_applies() {
    let files = scale_one(7);
    let parsed = parse(&files);
    assert_eq!(parsed.configs.len(), files.summary.tenants);
    assert_eq!(parsed.messages.len(), files.summary.messages);
    assert_eq!(parsed.records.len(), files.summary.records);
    assert_eq!(files.records_jsonl.lines().count(), files.summary.records, "no blank lines");
    let tenants: BTreeSet<&str> = parsed.configs.keys().map(String::as_str).collect();
    for (_, record) in &parsed.records {
        assert!(tenants.contains(record.tenant()), "record of an unconfigured tenant: {record:?}");
        // Sixty days of activity; late deliveries, refunds and badge expiries may run on.
        assert!((BASE_TS..BASE_TS + 100 * DAY).contains(&record.ts()), "{record:?}");
    }
    // The reference loads the same files without skipping a line.
    let dataset = Dataset::from_files(&files.config_json, &files.messages_jsonl, &files.records_jsonl).unwrap();
    assert_eq!(dataset.records.len(), files.summary.records);
    assert_eq!(dataset.messages.len(), files.summary.messages);
}

#[test]
fn scale_sets_the_size_and_larger_scales_add_tenants() {
    let one = scale_one(1).summary;
    assert_eq!(one.tenants, 3);
    assert!((9_500..=11_000).contains(&one.records), "scale 1: {} records", one.records);
    assert!(one.messages >= 3 * 12, "{} messages", one.messages);
    let three = generate(&GenOptions { scale: 3, seed: 1, ..GenOptions::default() }).summary;
    // Shared-credit journeys come after the target, a few percent more.
    assert!((28_500..=32_000).contains(&three.records), "scale 3: {} records", three.records);
    let ten = generate(&GenOptions { scale: 10, seed: 1, ..GenOptions::default() });
    assert_eq!(ten.summary.tenants, 4);
    assert!((95_000..=105_000).contains(&ten.summary.records), "scale 10: {} records", ten.summary.records);
    let configs = parse_config(&ten.config_json).unwrap();
    let names: BTreeSet<&str> = configs.iter().map(|c| c.tenant.as_str()).collect();
    assert_eq!(names.len(), 4, "{names:?}");
    assert_eq!(
        generate(&GenOptions { scale: 0, seed: 1, ..GenOptions::default() }),
        scale_one(1),
        "scale 0 is scale 1"
    );
}

#[test]
fn tenants_are_configured_differently() {
    let parsed = parse(&scale_one(3));
    let configs: Vec<&TenantConfig> = parsed.configs.values().collect();
    let currencies: BTreeSet<&str> = configs.iter().map(|c| c.currency.as_str()).collect();
    assert!(currencies.contains("EUR") && currencies.len() >= 2, "{currencies:?}");
    let settings: BTreeSet<_> = configs.iter().map(|c| format!("{:?}", c.settings)).collect();
    assert_eq!(settings.len(), configs.len(), "every tenant has its own channel settings");
    for config in &configs {
        assert!(config.excluded_tags.contains(&"transactional".to_owned()), "{}", config.tenant);
        let event_goals = config.goals.iter().filter(|g| matches!(g.kind, GoalKind::Event { .. })).count();
        let narrowed_order_goals = config
            .goals
            .iter()
            .filter(|g| matches!(&g.kind, GoalKind::Order { categories, order_channels, .. }
                if !categories.is_empty() && !order_channels.is_empty()))
            .count();
        assert!(event_goals >= 1 && narrowed_order_goals >= 1, "{}: {:?}", config.tenant, config.goals);
    }
}

#[test]
fn the_dataset_holds_every_edge_case() {
    for seed in [11, 12] {
        holds_every_edge_case(seed);
    }
}

fn holds_every_edge_case(seed: u64) {
    let parsed = parse(&scale_one(seed));

    // Repeats, per tenant: exact retries (same line again) and reused ids with other content.
    let mut by_id: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (line, record) in &parsed.records {
        by_id.entry((record.tenant(), record.id())).or_default().push(line);
    }
    let mut shared_across_tenants: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    for (tenant, id) in by_id.keys() {
        shared_across_tenants.entry(id).or_default().insert(tenant);
    }
    assert!(shared_across_tenants.values().any(|tenants| tenants.len() > 1), "an event_id reused across tenants");

    let mut message_lines: HashMap<(&str, &str), Vec<&str>> = HashMap::new();
    for (line, message) in &parsed.messages {
        message_lines.entry((&message.tenant, &message.msg_hash)).or_default().push(line);
    }

    for (tenant, config) in parsed.tenants() {
        let tenant = tenant.as_str();
        let repeated = || by_id.iter().filter(|((t, _), lines)| *t == tenant && lines.len() > 1);
        // One line repeated verbatim (retries of a record that also had a conflicting
        // duplicate count as conflicting).
        let exact = repeated().filter(|(_, lines)| lines.iter().skip(1).all(|l| *l == lines[0])).count();
        let conflicting = repeated().filter(|(_, lines)| lines.iter().skip(1).any(|l| *l != lines[0])).count();
        assert!(exact >= 5, "{tenant}: {exact} exact retries");
        assert!(conflicting >= 3, "{tenant}: {conflicting} conflicting duplicates");
        let re_registered = message_lines.iter().filter(|((t, _), lines)| *t == tenant && lines.len() > 1);
        let differs = |lines: &Vec<&str>| lines.iter().skip(1).any(|l| *l != lines[0]);
        assert!(re_registered.clone().any(|(_, l)| !differs(l)), "{tenant}: a retried message registration");
        assert!(re_registered.clone().any(|(_, l)| differs(l)), "{tenant}: a conflicting message registration");

        let registered = parsed.registered(tenant);
        let excluded = |hash: &str| registered.get(hash).is_some_and(|m| config.is_excluded(&m.tags));
        assert!(registered.values().any(|m| config.is_excluded(&m.tags)), "{tenant}: an excluded-tag message");
        assert!(
            registered.values().any(|m| m.campaign_id.is_empty() && !config.is_excluded(&m.tags)),
            "{tenant}: a creditable message without a campaign"
        );
        let channels: BTreeSet<Channel> = registered.values().map(|m| m.channel).collect();
        assert_eq!(channels.len(), 4, "{tenant}: all channels");

        let mut unregistered_touches = 0;
        let mut explicit_excluded = 0;
        let mut explicit_unregistered = 0;
        let mut foreign = 0;
        let mut statuses = BTreeSet::new();
        let mut fractional_values = 0;
        let mut valueless_goal_events = 0;
        let mut badge_actions = BTreeSet::new();
        let goal_events: BTreeSet<&str> = config
            .goals
            .iter()
            .filter_map(|g| match &g.kind {
                GoalKind::Event { event_name } => Some(event_name.as_str()),
                GoalKind::Order { .. } => None,
            })
            .collect();
        for record in parsed.records_of(tenant) {
            let explicit = match record {
                Record::Touch(t) => {
                    unregistered_touches += usize::from(!registered.contains_key(t.msg_hash.as_str()));
                    None
                }
                Record::Event(e) => {
                    fractional_values += usize::from(e.value_micros.is_some_and(|v| v % 1_000_000 != 0));
                    let goal = goal_events.contains(e.name.as_str());
                    valueless_goal_events += usize::from(e.value_micros.is_none() && goal);
                    e.msg_hash.as_deref()
                }
                Record::Order(o) => {
                    foreign += usize::from(o.currency != config.currency);
                    statuses.insert(o.status.as_str());
                    o.msg_hash.as_deref()
                }
                Record::Badge(b) => {
                    badge_actions.insert(b.action);
                    None
                }
                Record::Message(_) => unreachable!("parse_record never yields a message"),
            };
            if let Some(hash) = explicit {
                explicit_excluded += usize::from(excluded(hash));
                explicit_unregistered += usize::from(!registered.contains_key(hash));
            }
        }
        assert!(unregistered_touches >= 1, "{tenant}: touches of an unregistered message");
        assert!(explicit_excluded >= 1, "{tenant}: explicit msg_hash of an excluded message");
        assert!(explicit_unregistered >= 1, "{tenant}: explicit msg_hash of an unregistered message");
        assert!(foreign >= 1, "{tenant}: an order in a foreign currency");
        let all_statuses = BTreeSet::from(["CREATED", "PLACED", "PAID", "DELIVERED", "CANCELLED", "REFUNDED"]);
        assert_eq!(statuses, all_statuses, "{tenant}");
        assert!(valueless_goal_events >= 1, "{tenant}: a goal event without a value");
        assert_eq!(badge_actions.len(), 3, "{tenant}: {badge_actions:?}");
        if tenant == "streamly" {
            assert!(fractional_values >= 1, "{tenant}: fractional watch values");
        }
    }
}

/// A tenant's touches by `event_id` with the line they first appear on, and its connecting
/// touches (the message is creditable and the kind is its channel's `connect_on`) per customer.
struct TouchIndex<'a> {
    line_of: HashMap<&'a str, usize>,
    touch_of: HashMap<&'a str, &'a Touch>,
    connecting: HashMap<&'a str, Vec<&'a Touch>>,
}

fn touch_index<'a>(parsed: &'a Parsed, tenant: &str, config: &TenantConfig) -> TouchIndex<'a> {
    let registered = parsed.registered(tenant);
    let mut index = TouchIndex { line_of: HashMap::new(), touch_of: HashMap::new(), connecting: HashMap::new() };
    for (line, (_, record)) in parsed.records.iter().enumerate().filter(|(_, (_, r))| r.tenant() == tenant) {
        if index.line_of.contains_key(record.id()) {
            continue;
        }
        index.line_of.insert(record.id(), line);
        let Record::Touch(touch) = record else { continue };
        index.touch_of.insert(&touch.event_id, touch);
        let creditable = registered.get(touch.msg_hash.as_str()).filter(|m| !config.is_excluded(&m.tags));
        if creditable.is_some_and(|m| config.setting(m.channel).connect_on == touch.kind) {
            index.connecting.entry(&touch.customer_id).or_default().push(touch);
        }
    }
    index
}

fn reference(files: &GeneratedFiles) -> Reference {
    evaluate(&Dataset::from_files(&files.config_json, &files.messages_jsonl, &files.records_jsonl).unwrap())
}

#[test]
fn the_reference_credits_every_rule_in_every_tenant_and_every_goal_converts() {
    for seed in [1, 2, 3] {
        every_rule_and_goal(seed);
    }
}

fn every_rule_and_goal(seed: u64) {
    let files = scale_one(seed);
    let reference = reference(&files);
    let parsed = parse(&files);
    for (tenant, config) in parsed.tenants() {
        let conversions = reference.conversions(tenant);
        let mut by_rule: BTreeMap<&str, usize> = BTreeMap::new();
        for conversion in &conversions {
            *by_rule.entry(conversion.rule).or_default() += 1;
        }
        for rule in [EXPLICIT, LAST_TOUCH, UNATTRIBUTED] {
            assert!(by_rule.get(rule).is_some_and(|&n| n >= 5), "seed {seed} {tenant}: {by_rule:?}");
        }
        // Every goal, the EVENT goals included, converts.
        for goal in &config.goals {
            let n = conversions.iter().filter(|c| c.goal_id == goal.id).count();
            assert!(n >= 1, "seed {seed} {tenant}: goal {} never converts", goal.id);
        }
    }
}

#[test]
fn window_ends_ties_and_late_touches_resolve_as_intended() {
    for seed in [5, 6] {
        window_ends_ties_and_late_touches(seed);
    }
}

fn window_ends_ties_and_late_touches(seed: u64) {
    let files = scale_one(seed);
    let parsed = parse(&files);
    let reference = reference(&files);
    for (tenant, config) in parsed.tenants() {
        let index = touch_index(&parsed, tenant, config);
        let registered = parsed.registered(tenant);
        let window_of = |touch: &Touch| config.setting(registered[touch.msg_hash.as_str()].channel).window_ms;
        let (mut at_end, mut past_end, mut at_touch, mut ties, mut late) = (0, 0, 0, 0, 0);
        for conversion in reference.conversions(tenant) {
            let connecting = index.connecting.get(conversion.customer_id.as_str()).map(Vec::as_slice).unwrap_or(&[]);
            if conversion.rule == UNATTRIBUTED {
                past_end += usize::from(connecting.iter().any(|t| conversion.ts - t.ts == window_of(t) + 1));
            }
            if conversion.rule != LAST_TOUCH {
                continue;
            }
            let winner = index.touch_of[conversion.touch_event_id.as_deref().unwrap()];
            at_end += usize::from(conversion.ts - winner.ts == window_of(winner));
            at_touch += usize::from(conversion.ts == winner.ts);
            ties += usize::from(connecting.iter().any(|t| t.ts == winner.ts && t.event_id != winner.event_id));
            let conversion_line = index.line_of[conversion.record_event_id.as_str()];
            late += usize::from(index.line_of[winner.event_id.as_str()] > conversion_line);
        }
        assert!(at_end >= 2, "{tenant}: {at_end} conversions credited exactly at the window's end");
        assert!(past_end >= 2, "{tenant}: {past_end} unattributed conversions 1 ms past a window");
        assert!(at_touch >= 1, "{tenant}: {at_touch} conversions at their touch's very ms");
        assert!(ties >= 2, "{tenant}: {ties} conversions won by one of equal-ts touches");
        assert!(late >= 10, "{tenant}: {late} touches that arrive after the conversion they explain");
    }
}

#[test]
fn generate_to_dir_writes_the_three_files() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("nested").join("dataset");
    let options = GenOptions { scale: 1, seed: 9, ..GenOptions::default() };
    let summary = generate_to_dir(&options, &out).unwrap();
    let files = generate(&options);
    assert_eq!(summary, files.summary);
    assert_eq!(std::fs::read_to_string(out.join("config.json")).unwrap(), files.config_json);
    assert_eq!(std::fs::read_to_string(out.join("messages.jsonl")).unwrap(), files.messages_jsonl);
    assert_eq!(std::fs::read_to_string(out.join("records.jsonl")).unwrap(), files.records_jsonl);
}
