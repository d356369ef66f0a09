//! `touchstone_core::fold` against the brute-force reference (`touchstone_core::reference`,
//! written from docs/behaviour/attribution.md apart from it).
//!
//! Random small datasets of one tenant: a handful of customers; messages on every channel
//! with tags (one excluded), some never registered, some registered twice with conflicting
//! content; touches of every kind, of registered and unregistered messages; app events, some
//! carrying a `msg_hash`; orders with several status records (foreign currency, REFUNDED,
//! CANCELLED, records of one order under different customers); `event_id`s reused across
//! records with conflicting content (the first arrival stands). All of it on a coarse time
//! grid across two month ends, so ties, window edges and month segments are hit often.
//!
//! Arrivals are shuffled and cut into random commit windows, folded window by window as a
//! worker would: dedup, register messages, orders through `fold_order`, facts routed to
//! customers, `fold_customer`, then `recredit_messages` on the customers indexed under the
//! messages the window registered. A config change in the middle (settings, excluded tags,
//! currency, goals created, deleted and redefined) is folded with `refold_order`,
//! `recredit_all` and a replay of the events for the EVENT goals it changed.
//!
//! Checked: the final conversions equal the reference's for the final config; the emitted
//! changes (and their rollup deltas) sum to exactly the final conversions; every fold reports
//! exactly the month segments it changed.

use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use touchstone_core::attribution::{Conversion, Messages};
use touchstone_core::config::{ChannelSetting, Goal, GoalKind, TenantConfig};
use touchstone_core::fold::{self, ConversionChange, CustomerDelta, CustomerState, FactChange, FoldContext, OrderState};
use touchstone_core::models::Model;
use touchstone_core::model::{AppEvent, Channel, Message, Millis, OrderRecord, Record, Touch, TouchKind};
use touchstone_core::reference::{self, Dataset};
use touchstone_core::rollup::{self, Cell, Tally};

const TENANT: &str = "t";
/// 2026-01-20T00:00Z: the grid runs past the ends of January and February.
const T0: Millis = 1_768_867_200_000;
/// The grid step: every time is `T0 + slot * STEP`, sometimes 1 ms off.
const STEP: Millis = 86_400_000;
const SLOTS: i64 = 42;
const CUSTOMERS: &[&str] = &["c1", "c2", "c3"];
/// `m7` is never registered.
const MESSAGES: &[&str] = &["m1", "m2", "m3", "m4", "m5", "m6", "m7"];

fn pick<T: Clone + std::fmt::Debug + 'static>(items: &'static [T]) -> impl Strategy<Value = T> {
    proptest::sample::select(items)
}

fn ts() -> impl Strategy<Value = Millis> {
    (0..SLOTS, prop_oneof![6 => Just(0i64), 1 => Just(1), 1 => Just(-1)]).prop_map(|(slot, off)| T0 + slot * STEP + off)
}

/// Event ids whose first letter is random, so that ties on `ts` go either way; the number
/// keeps them unique (until duplicates are made on purpose).
fn event_id(n: usize) -> impl Strategy<Value = String> {
    pick(&["a", "k", "z"]).prop_map(move |letter| format!("{letter}{n}"))
}

fn msg_hash() -> impl Strategy<Value = String> {
    pick(MESSAGES).prop_map(str::to_owned)
}

fn message(msg_hash: &'static str) -> BoxedStrategy<Message> {
    let tags: &'static [&'static [&'static str]] = &[&[], &[], &["promo"], &["transactional"], &["promo", "transactional"], &["news"]];
    (pick(Channel::ALL), pick(tags), pick(&["spring", "summer", ""]), ts())
        .prop_map(move |(channel, tags, campaign, sent_at)| Message {
            tenant: TENANT.into(),
            msg_hash: msg_hash.into(),
            campaign_id: campaign.into(),
            channel,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            sent_at,
        })
        .boxed()
}

/// Registrations: each of m1..m6 with probability 0.85, sometimes twice (another channel
/// or tags: the first arrival stands).
fn registrations() -> BoxedStrategy<Vec<Message>> {
    let one = |hash: &'static str| {
        (proptest::option::weighted(0.85, message(hash)), proptest::option::weighted(0.2, message(hash)))
            .prop_map(|(first, again)| first.into_iter().chain(again).collect::<Vec<_>>())
    };
    (one("m1"), one("m2"), one("m3"), one("m4"), one("m5"), one("m6")).prop_map(|(a, b, c, d, e, f)| [a, b, c, d, e, f].concat()).boxed()
}

fn customer() -> impl Strategy<Value = String> {
    pick(CUSTOMERS).prop_map(str::to_owned)
}

fn touch(n: usize) -> BoxedStrategy<Record> {
    let kind = prop_oneof![
        1 => Just(TouchKind::Sent),
        1 => Just(TouchKind::Delivered),
        4 => Just(TouchKind::Opened),
        4 => Just(TouchKind::Clicked),
    ];
    (event_id(n), msg_hash(), customer(), kind, ts())
        .prop_map(|(event_id, msg_hash, customer_id, kind, ts)| {
            Record::Touch(Touch { tenant: TENANT.into(), event_id, msg_hash, customer_id, kind, ts })
        })
        .boxed()
}

fn app_event(n: usize) -> BoxedStrategy<Record> {
    let value = proptest::option::of(pick(&[0i64, 1_500_000, 2_000_000, 123]));
    (event_id(n), customer(), pick(&["checkin", "checkin", "view", "other"]), ts(), value, proptest::option::weighted(0.3, msg_hash()))
        .prop_map(|(event_id, customer_id, name, ts, value_micros, msg_hash)| {
            Record::Event(AppEvent { tenant: TENANT.into(), event_id, customer_id, name: name.into(), ts, value_micros, msg_hash })
        })
        .boxed()
}

fn order(n: usize) -> BoxedStrategy<Record> {
    let categories: &'static [&'static [&'static str]] = &[&[], &["shoes"], &["bags", "shoes"], &["hats"]];
    (
        (event_id(n), pick(&["o1", "o2", "o3", "o4", "o5"]), prop_oneof![4 => Just(0usize), 1 => 1usize..4]),
        pick(&["CREATED", "PLACED", "PAID", "PAID", "DELIVERED", "CANCELLED", "REFUNDED"]),
        pick(&[0i64, 50, 100, 250]),
        pick(&["USD", "USD", "USD", "EUR"]),
        (pick(categories), pick(&["web", "app"]), ts(), proptest::option::weighted(0.3, msg_hash())),
    )
        .prop_map(|((event_id, order_id, other), status, amount_minor, currency, (categories, channel, ts, msg_hash))| {
            // Mostly the order's own customer; sometimes another one.
            let owner = order_id[1..].parse::<usize>().unwrap_or(0);
            Record::Order(OrderRecord {
                tenant: TENANT.into(),
                event_id,
                order_id: order_id.into(),
                customer_id: CUSTOMERS[(owner + other) % CUSTOMERS.len()].into(),
                status: status.into(),
                amount_minor,
                currency: currency.into(),
                categories: categories.iter().map(|c| c.to_string()).collect(),
                channel: channel.into(),
                ts,
                msg_hash,
            })
        })
        .boxed()
}

/// `n` of a kind of record, numbered from `first` so that event ids stay unique.
fn many(first: usize, max: usize, one: fn(usize) -> BoxedStrategy<Record>) -> BoxedStrategy<Vec<Record>> {
    (0..=max).prop_flat_map(move |n| (first..first + n).map(one).collect::<Vec<_>>()).boxed()
}

fn setting() -> impl Strategy<Value = ChannelSetting> {
    let kind = prop_oneof![1 => Just(TouchKind::Delivered), 3 => Just(TouchKind::Opened), 3 => Just(TouchKind::Clicked)];
    let window = pick(&[0, STEP, 3 * STEP, 7 * STEP, 14 * STEP, 30 * STEP]);
    (kind, window).prop_map(|(connect_on, window_ms)| ChannelSetting { connect_on, window_ms })
}

fn event_goal(id: &str, name: &str) -> Goal {
    Goal { id: id.into(), kind: GoalKind::Event { event_name: name.into() } }
}

fn order_goal(id: &str, statuses: &[&str], categories: &[&str], order_channels: &[&str]) -> Goal {
    let list = |items: &[&str]| items.iter().map(|item| item.to_string()).collect();
    Goal { id: id.into(), kind: GoalKind::Order { statuses: list(statuses), categories: list(categories), order_channels: list(order_channels) } }
}

/// A config: settings, excluded tags, currency and which of a few goals it has.
fn config() -> BoxedStrategy<TenantConfig> {
    let tags: &'static [&'static [&'static str]] = &[&["transactional"], &["transactional"], &["promo"], &[]];
    (
        (setting(), setting(), setting(), setting()),
        pick(tags),
        pick(&["USD", "USD", "USD", "EUR"]),
        (any::<bool>(), any::<bool>(), pick(&[None, Some("checkin"), Some("view")]), any::<bool>()),
        pick(&[7 * STEP, STEP, 60_000]),
    )
        .prop_map(|((push, email, sms, in_app), tags, currency, (checkin, shoes, redefined, paid), half_life)| {
            let mut config = TenantConfig::defaults(TENANT);
            for (channel, setting) in [(Channel::Push, push), (Channel::Email, email), (Channel::Sms, sms), (Channel::InApp, in_app)] {
                config.set_channel(channel, setting).expect("a valid setting");
            }
            config.set_excluded_tags(tags.iter().map(|t| t.to_string()).collect());
            config.set_currency(currency).expect("a valid currency");
            config.set_decay_half_life(half_life).expect("a valid half-life");
            let mut goals = Vec::new();
            if checkin {
                goals.push(event_goal("checkin", "checkin"));
            }
            if shoes {
                goals.push(order_goal("shoes", &["PAID", "DELIVERED"], &["shoes"], &["web"]));
            }
            // The same id under two definitions across configs: a goal deleted and saved again.
            if let Some(name) = redefined {
                goals.push(event_goal("visits", name));
            }
            if paid {
                goals.push(order_goal("paid", &["PAID"], &[], &[]));
            }
            for goal in goals {
                config.save_goal(goal).expect("at most 5 goals");
            }
            config
        })
        .boxed()
}

#[derive(Debug, Clone)]
struct Case {
    initial: TenantConfig,
    /// The config from window `change.0` on, if it changes.
    change: Option<(usize, TenantConfig)>,
    /// Every arrival, in order, cut into windows.
    windows: Vec<Vec<Record>>,
}

fn case() -> BoxedStrategy<Case> {
    let records = (many(0, 40, touch), many(100, 8, app_event), many(200, 10, order), prop::collection::vec((0usize..64, 0usize..64), 0..4));
    (registrations(), records, config(), proptest::option::weighted(0.5, (config(), 0usize..8)))
        .prop_flat_map(|(messages, (touches, events, orders, duplicates), initial, change)| {
            let mut records: Vec<Record> = touches.into_iter().chain(events).chain(orders).collect();
            // Reuse an event_id on another record: whichever arrives first stands.
            for (from, to) in duplicates {
                if !records.is_empty() {
                    let id = records[from % records.len()].id().to_owned();
                    let len = records.len();
                    set_event_id(&mut records[to % len], id);
                }
            }
            let arrivals: Vec<Record> = messages.into_iter().map(Record::Message).chain(records).collect();
            let len = arrivals.len();
            (Just(arrivals).prop_shuffle(), prop::collection::vec(0..=len, 0..6), Just(initial), Just(change))
        })
        .prop_map(|(arrivals, mut cuts, initial, change)| {
            cuts.push(arrivals.len());
            cuts.sort_unstable();
            let mut windows = Vec::new();
            let mut start = 0;
            for cut in cuts {
                windows.push(arrivals[start..cut].to_vec());
                start = cut;
            }
            let change = change.map(|(config, at)| (at % (windows.len() + 1), config));
            Case { initial, change, windows }
        })
        .boxed()
}

fn set_event_id(record: &mut Record, id: String) {
    match record {
        Record::Touch(t) => t.event_id = id,
        Record::Event(e) => e.event_id = id,
        Record::Order(o) => o.event_id = id,
        Record::Message(_) | Record::Badge(_) => {}
    }
}

/// A conversion as the reference describes one.
type Row = (String, String, &'static str, Option<String>, Millis, i64, String, String, Option<String>);

/// Each model's shares of a conversion as `(msg_hash, ppm, whole units)`, zero shares left
/// out, by model name.
type Shares = BTreeMap<&'static str, Vec<(String, i64, i128)>>;

fn reference_shares(c: &reference::ReferenceConversion) -> Shares {
    c.models.iter().map(|(&model, shares)| (model, shares.iter().map(|s| (s.msg_hash.clone(), s.ppm, s.value)).collect())).collect()
}

/// A conversion's shares from what the fold keeps: last touch's credit, and its split when
/// there is one (else every model credits as last touch does).
fn model_shares(c: &Conversion, config: &TenantConfig) -> Shares {
    let unit = config.goal(&c.fact.goal_id).expect("a configured goal").micros_per_unit();
    let whole: Vec<(String, i64, i128)> = c.credit.msg_hash.iter().map(|m| (m.clone(), 1_000_000, i128::from(c.fact.value_micros / unit))).collect();
    let mut shares: Shares = Model::ALL.iter().map(|m| (m.as_str(), whole.clone())).collect();
    if let Some(split) = &c.split {
        for (model, parts) in Model::SPLIT.iter().zip(&split.parts) {
            let parts = split.messages.iter().zip(parts).filter(|(_, (ppm, _))| *ppm > 0);
            shares.insert(model.as_str(), parts.map(|(m, &(ppm, micros))| (m.clone(), i64::from(ppm), i128::from(micros / unit))).collect());
        }
    }
    shares
}

fn row(c: &Conversion) -> Row {
    (
        c.fact.goal_id.clone(),
        c.fact.key.clone(),
        c.credit.rule.as_str(),
        c.credit.msg_hash.clone(),
        c.fact.ts,
        c.fact.value_micros,
        c.fact.customer_id.clone(),
        c.fact.source_event_id.clone(),
        c.credit.touch_event_id.clone(),
    )
}

/// The worker: keyed state, folded window by window, with what every fold emitted.
struct Worker {
    config: TenantConfig,
    messages: Messages,
    orders: BTreeMap<String, OrderState>,
    customers: BTreeMap<String, CustomerState>,
    /// Accepted app events: the log a new EVENT goal is replayed from.
    events: Vec<AppEvent>,
    seen: HashSet<String>,
    /// Unregistered `msg_hash` -> customers whose state names it.
    unregistered: HashMap<String, BTreeSet<String>>,
    /// Every emitted conversion row change, summed: +1 new, -1 old.
    ledger: HashMap<Row, i64>,
    /// Every emitted rollup delta, summed per (cell, ts).
    rollups: BTreeMap<(Cell, Millis), Tally>,
    calls: usize,
}

type Facts = BTreeMap<String, Vec<FactChange>>;

fn route(facts: &mut Facts, changes: Vec<FactChange>) {
    for change in changes {
        for (customer, part) in change.by_customer() {
            facts.entry(customer).or_default().push(part);
        }
    }
}

impl Worker {
    fn new(config: TenantConfig) -> Worker {
        Worker {
            config,
            messages: Messages::new(),
            orders: BTreeMap::new(),
            customers: BTreeMap::new(),
            events: Vec::new(),
            seen: HashSet::new(),
            unregistered: HashMap::new(),
            ledger: HashMap::new(),
            rollups: BTreeMap::new(),
            calls: 0,
        }
    }

    /// Runs one fold of a customer and checks and books what it emitted.
    fn fold(
        &mut self,
        customer: &str,
        f: impl FnOnce(&mut CustomerState, FoldContext<'_>) -> CustomerDelta,
    ) -> Result<(), TestCaseError> {
        let mut state = self.customers.remove(customer).unwrap_or_default();
        let before = state.clone();
        let delta = f(&mut state, FoldContext { config: &self.config, messages: &self.messages });
        self.calls += 1;
        // Exactly the months that changed are dirty.
        let months: BTreeSet<Millis> = before.segments.keys().chain(state.segments.keys()).copied().collect();
        let changed: BTreeSet<Millis> = months.into_iter().filter(|m| before.segments.get(m) != state.segments.get(m)).collect();
        prop_assert_eq!(&delta.dirty_segments, &changed, "dirty segments of {}", customer);
        for ConversionChange { old, new } in &delta.conversions {
            prop_assert!(old != new, "only rows that differ");
            for (conversion, sign) in [(old, -1), (new, 1)] {
                if let Some(c) = conversion {
                    prop_assert_eq!(&c.fact.customer_id, customer);
                    *self.ledger.entry(row(c)).or_default() += sign;
                }
            }
        }
        for (_, ts, cell, tally) in fold::conversion_deltas(&delta.conversions) {
            self.rollups.entry((cell, ts)).or_default().add(tally);
        }
        for msg_hash in delta.unregistered_messages {
            prop_assert!(!self.messages.contains_key(&msg_hash));
            self.unregistered.entry(msg_hash).or_default().insert(customer.to_owned());
        }
        self.customers.insert(customer.to_owned(), state);
        Ok(())
    }

    fn fold_facts(&mut self, facts: Facts, touches: &BTreeMap<String, Vec<Touch>>) -> Result<(), TestCaseError> {
        let customers: BTreeSet<&String> = facts.keys().chain(touches.keys()).collect();
        for customer in customers {
            let facts = facts.get(customer).map_or(&[][..], Vec::as_slice);
            let touches = touches.get(customer).map_or(&[][..], Vec::as_slice);
            self.fold(customer, |state, ctx| fold::fold_customer(state, touches, facts, ctx))?;
        }
        Ok(())
    }

    /// A config change: orders refolded, every customer re-credited, then the new facts
    /// folded and the events replayed for the EVENT goals it changed.
    fn change_config(&mut self, config: TenantConfig) -> Result<(), TestCaseError> {
        let rebuilt = fold::changed_event_goals(&self.config, &config);
        self.config = config;
        let mut facts = Facts::new();
        for order in self.orders.values_mut() {
            route(&mut facts, fold::refold_order(order, &self.config));
        }
        let customers: Vec<String> = self.customers.keys().cloned().collect();
        for customer in customers {
            self.fold(&customer, |state, ctx| fold::recredit_all(state, &rebuilt, ctx))?;
        }
        for event in &self.events {
            route(&mut facts, fold::event_facts(&self.config, event).into_iter().filter(|f| rebuilt.contains(&f.goal_id)).collect());
        }
        self.fold_facts(facts, &BTreeMap::new())
    }

    fn window(&mut self, records: &[Record]) -> Result<(), TestCaseError> {
        // Dedup: the first arrival stands (messages by msg_hash, the rest by event_id).
        let mut registered = BTreeSet::new();
        let mut orders: BTreeMap<String, Vec<OrderRecord>> = BTreeMap::new();
        let mut touches: BTreeMap<String, Vec<Touch>> = BTreeMap::new();
        let mut facts = Facts::new();
        for record in records {
            match record {
                Record::Message(m) => {
                    if !self.messages.contains_key(&m.msg_hash) {
                        self.messages.insert(m.msg_hash.clone(), m.clone());
                        registered.insert(m.msg_hash.clone());
                    }
                    continue;
                }
                _ if !self.seen.insert(record.id().to_owned()) => continue,
                Record::Touch(t) => touches.entry(t.customer_id.clone()).or_default().push(t.clone()),
                Record::Order(o) => orders.entry(o.order_id.clone()).or_default().push(o.clone()),
                Record::Event(e) => {
                    route(&mut facts, fold::event_facts(&self.config, e));
                    self.events.push(e.clone());
                }
                Record::Badge(_) => {}
            }
        }
        for (order_id, new) in orders {
            let state = self.orders.entry(order_id).or_default();
            route(&mut facts, fold::fold_order(state, &new, &self.config));
        }
        self.fold_facts(facts, &touches)?;
        // Messages registered in the window: the customers indexed under them.
        let mut recredit: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for msg_hash in registered {
            for customer in self.unregistered.remove(&msg_hash).unwrap_or_default() {
                recredit.entry(customer).or_default().insert(msg_hash.clone());
            }
        }
        for (customer, hashes) in recredit {
            self.fold(&customer, |state, ctx| fold::recredit_messages(state, &hashes, ctx))?;
        }
        Ok(())
    }
}

/// What the reference evaluates: every arrival (duplicates too, in arrival order, so the
/// same first arrivals stand) under the final config.
fn dataset(case: &Case) -> Dataset {
    let final_config = case.change.as_ref().map_or(&case.initial, |(_, config)| config);
    let (mut messages, mut records) = (Vec::new(), Vec::new());
    for record in case.windows.iter().flatten() {
        match record {
            Record::Message(m) => messages.push(m.clone()),
            other => records.push(other.clone()),
        }
    }
    Dataset { configs: BTreeMap::from([(TENANT.to_owned(), final_config.clone())]), messages, records }
}

fn run(case: &Case) -> Result<(), TestCaseError> {
    let mut worker = Worker::new(case.initial.clone());
    for (i, window) in case.windows.iter().enumerate() {
        if let Some((at, config)) = &case.change
            && *at == i
        {
            worker.change_config(config.clone())?;
        }
        worker.window(window)?;
    }
    if let Some((at, config)) = &case.change
        && *at == case.windows.len()
    {
        worker.change_config(config.clone())?;
    }

    let reference_conversions = reference::evaluate(&dataset(case)).conversions(TENANT);
    // Every model's split, as kept with each conversion, equals the reference's.
    let expected_models: BTreeMap<(String, String), Shares> =
        reference_conversions.iter().map(|c| ((c.goal_id.clone(), c.key.clone()), reference_shares(c))).collect();
    let actual_models: BTreeMap<(String, String), Shares> = worker
        .customers
        .values()
        .flat_map(CustomerState::conversions)
        .map(|c| ((c.fact.goal_id.clone(), c.fact.key.clone()), model_shares(c, &worker.config)))
        .collect();
    prop_assert_eq!(actual_models, expected_models);
    let mut expected: Vec<Row> = reference_conversions
        .into_iter()
        .map(|c| (c.goal_id, c.key, c.rule, c.msg_hash, c.ts, c.value_micros, c.customer_id, c.record_event_id, c.touch_event_id))
        .collect();
    expected.sort();
    let mut actual: Vec<Row> = worker.customers.values().flat_map(CustomerState::conversions).map(row).collect();
    actual.sort();
    prop_assert_eq!(&actual, &expected);

    // No leak: what was emitted sums to exactly what is held.
    let mut ledger: Vec<Row> = Vec::new();
    for (row, count) in worker.ledger {
        prop_assert!((0..=1).contains(&count), "{:?} summed to {}", row, count);
        if count == 1 {
            ledger.push(row);
        }
    }
    ledger.sort();
    prop_assert_eq!(&ledger, &expected);
    let mut held: BTreeMap<(Cell, Millis), Tally> = BTreeMap::new();
    for conversion in worker.customers.values().flat_map(CustomerState::conversions) {
        for (cell, tally) in rollup::conversion_cells(conversion) {
            held.entry((cell, conversion.fact.ts)).or_default().add(tally);
        }
    }
    // Two conversions at one time may shift a model's credit both ways: a zero is no row.
    held.retain(|_, tally| !tally.is_zero());
    let summed: BTreeMap<(Cell, Millis), Tally> = worker.rollups.into_iter().filter(|(_, tally)| !tally.is_zero()).collect();
    prop_assert_eq!(summed, held);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn folding_windows_gives_the_reference_conversions(case in case()) {
        run(&case)?;
    }
}

/// The generator is only worth something if it reaches the cases that matter.
#[test]
fn the_generator_reaches_the_interesting_cases() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::TestRunner;

    let mut runner = TestRunner::deterministic();
    let strategy = case();
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for _ in 0..1000 {
        let case = strategy.new_tree(&mut runner).expect("a case").current();
        let dataset = dataset(&case);
        let conversions = reference::evaluate(&dataset).conversions(TENANT);
        let mut see = |what: &'static str, yes: bool| *seen.entry(what).or_default() += usize::from(yes);
        see("explicit", conversions.iter().any(|c| c.rule == reference::EXPLICIT));
        see("last touch", conversions.iter().any(|c| c.rule == reference::LAST_TOUCH));
        see("two last touches", conversions.iter().filter(|c| c.rule == reference::LAST_TOUCH).count() >= 2);
        see("unattributed", conversions.iter().any(|c| c.rule == reference::UNATTRIBUTED));
        see("event goal conversion", conversions.iter().any(|c| c.goal_id != "orders" && c.key.len() > 2));
        see("conversions in two months", conversions.iter().map(|c| fold::segment_of(c.ts)).collect::<BTreeSet<_>>().len() >= 2);
        see("several windows", case.windows.len() >= 3);
        see("a conversion split among messages", conversions.iter().any(|c| c.models["linear"].len() >= 2));
        see("config change mid-stream", case.change.as_ref().is_some_and(|(at, _)| 0 < *at && *at < case.windows.len()));
        let touch_ids: BTreeSet<&str> = dataset.records.iter().map(Record::id).collect();
        see("duplicate event_id", touch_ids.len() < dataset.records.len());
        let mut customers_of_orders: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for record in &dataset.records {
            if let Record::Order(o) = record {
                customers_of_orders.entry(&o.order_id).or_default().insert(&o.customer_id);
            }
        }
        see("order with records of two customers", customers_of_orders.values().any(|c| c.len() > 1));
    }
    println!("{seen:#?}");
    for (what, count) in &seen {
        assert!(*count >= 30, "only {count} cases with {what}");
    }
}
