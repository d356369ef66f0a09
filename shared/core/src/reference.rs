//! A brute-force reference evaluation of the rules of docs/behaviour/ (records, attribution, reports) over a whole dataset in
//! memory, that tests compare the real (incremental, storage-backed) engine against.
//!
//! It is written straight from the rules in docs/behaviour/ and deliberately shares nothing with the engine
//! (`attribution`, `goals`, `rollup` and the aggregations of `report`): a bug copied into both
//! would make them agree. Only the record types, the tenant config, the file formats,
//! validation and `report::value_json` (the JSON number format) are reused. Everything is
//! recomputed from scratch by scanning; the only concession to size is grouping touches per
//! customer, so that datasets of ~100k records evaluate in seconds.

use crate::config::{Goal, GoalKind, TenantConfig};
use crate::files;
use crate::model::{AppEvent, Message, Micros, Millis, OrderRecord, Record, Touch, TouchKind, MICROS_PER_UNIT};
use crate::report::value_json;
use crate::validate::validate;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// The conversion record names a registered, not excluded message.
pub const EXPLICIT: &str = "EXPLICIT";
/// Credited to the customer's latest connecting touch within the window.
pub const LAST_TOUCH: &str = "LAST_TOUCH";
/// Neither: direct traffic.
pub const UNATTRIBUTED: &str = "UNATTRIBUTED";

/// Everything ingested, as the three bulk files hold it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Dataset {
    /// Tenants named in `config.json`; any other tenant has [`TenantConfig::defaults`].
    pub configs: BTreeMap<String, TenantConfig>,
    pub messages: Vec<Message>,
    pub records: Vec<Record>,
}

impl Dataset {
    /// From the three files' texts (config.json, messages.jsonl, records.jsonl) as
    /// `touchstone import` would load them, in that order. Lines that do not parse or
    /// validate are skipped (the import rejects them); duplicates are kept here and dropped
    /// by [`evaluate`], first arrival standing. An empty config text means no config file.
    pub fn from_files(config_json: &str, messages_jsonl: &str, records_jsonl: &str) -> Result<Dataset, String> {
        let mut configs = BTreeMap::new();
        if !config_json.trim().is_empty() {
            let sections = files::parse_config(config_json).map_err(|e| e.to_string())?;
            for section in sections {
                let mut config = TenantConfig::defaults(&section.tenant);
                files::apply_config_file(&mut config, &section)
                    .map_err(|e| format!("config for tenant {:?}: {e}", section.tenant))?;
                configs.insert(section.tenant.clone(), config);
            }
        }
        let messages = files::parse_lines(messages_jsonl, files::parse_message)
            .filter_map(Result::ok)
            .map(|(_, message)| message)
            .filter(|message| validate(&Record::Message(message.clone())).is_ok())
            .collect();
        let records = files::parse_lines(records_jsonl, files::parse_record)
            .filter_map(Result::ok)
            .map(|(_, record)| record)
            .filter(|record| validate(record).is_ok())
            .collect();
        Ok(Dataset { configs, messages, records })
    }

    /// The configuration a tenant is evaluated with.
    pub fn config(&self, tenant: &str) -> TenantConfig {
        self.configs.get(tenant).cloned().unwrap_or_else(|| TenantConfig::defaults(tenant))
    }
}

/// One conversion and where its credit went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceConversion {
    pub goal_id: String,
    /// `order_id` for an ORDER goal, the event's `event_id` for an EVENT goal.
    pub key: String,
    /// [`EXPLICIT`], [`LAST_TOUCH`] or [`UNATTRIBUTED`].
    pub rule: &'static str,
    /// The credited message; `None` when unattributed.
    pub msg_hash: Option<String>,
    /// The conversion time: the qualifying order record's or the event's `ts`.
    pub ts: Millis,
    pub value_micros: Micros,
    pub customer_id: String,
    /// The `event_id` of the converting record (the qualifying order record or the event).
    pub record_event_id: String,
    /// For [`LAST_TOUCH`]: the `event_id` of the winning touch.
    pub touch_event_id: Option<String>,
    /// docs/behaviour/attribution.md: each model's split, by model name (`last_touch`, `first_touch`,
    /// `linear`, `position_based`, `time_decay`); an empty list when unattributed.
    pub models: BTreeMap<&'static str, Vec<ReferenceShare>>,
}

/// One message's part of a conversion under a model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferenceShare {
    pub msg_hash: String,
    /// Parts per million of the conversion.
    pub ppm: i64,
    /// Whole units: minor units of an order, millionths of an event's value.
    pub value: i128,
}

/// The models of docs/behaviour/attribution.md, as reports name them.
pub const MODELS: [&str; 5] = ["last_touch", "first_touch", "linear", "position_based", "time_decay"];

/// The evaluated result of a [`Dataset`]: per tenant, the accepted records and every
/// conversion with its credit. Reports are computed from these on demand for any range.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    tenants: BTreeMap<String, TenantResult>,
}

#[derive(Debug, Clone)]
struct TenantResult {
    config: TenantConfig,
    /// Registered messages by `msg_hash` (first registration stands).
    messages: BTreeMap<String, Message>,
    touches: Vec<Touch>,
    /// App events that carry a `msg_hash`: the event hits.
    hits: Vec<AppEvent>,
    conversions: Vec<ReferenceConversion>,
}

/// The accepted records of one tenant, before evaluation.
#[derive(Default)]
struct TenantRecords {
    messages: BTreeMap<String, Message>,
    touches: Vec<Touch>,
    events: Vec<AppEvent>,
    orders: Vec<OrderRecord>,
}

/// What is accepted once per tenant: messages by `msg_hash`, everything else by `event_id`,
/// in two separate namespaces.
#[derive(PartialEq, Eq, Hash)]
enum AcceptKey {
    Message(String, String),
    Event(String, String),
}

fn accept_key(record: &Record) -> AcceptKey {
    let tenant = record.tenant().to_owned();
    match record {
        Record::Message(m) => AcceptKey::Message(tenant, m.msg_hash.clone()),
        Record::Touch(_) | Record::Event(_) | Record::Order(_) | Record::Badge(_) => {
            AcceptKey::Event(tenant, record.id().to_owned())
        }
    }
}

/// Evaluates the rules of docs/behaviour/records-and-config.md and attribution.md over the whole dataset.
pub fn evaluate(dataset: &Dataset) -> Reference {
    let mut by_tenant: BTreeMap<String, TenantRecords> =
        dataset.configs.keys().map(|tenant| (tenant.clone(), TenantRecords::default())).collect();

    // Arrival order: the messages file, then the records file. Validation comes before
    // deduplication: a rejected record is not stored, so it cannot shadow a later good one.
    let arrivals = dataset.messages.iter().cloned().map(Record::Message).chain(dataset.records.iter().cloned());
    let mut seen = HashSet::new();
    for record in arrivals {
        if validate(&record).is_err() || !seen.insert(accept_key(&record)) {
            continue;
        }
        let tenant = by_tenant.entry(record.tenant().to_owned()).or_default();
        match record {
            Record::Message(m) => {
                tenant.messages.insert(m.msg_hash.clone(), m);
            }
            Record::Touch(t) => tenant.touches.push(t),
            Record::Event(e) => tenant.events.push(e),
            Record::Order(o) => tenant.orders.push(o),
            // Badges play no part in attribution.
            Record::Badge(_) => {}
        }
    }

    let tenants = by_tenant
        .into_iter()
        .map(|(tenant, records)| {
            let config = dataset.config(&tenant);
            let conversions = tenant_conversions(&config, &records);
            let TenantRecords { messages, touches, events, orders: _ } = records;
            let hits = events.into_iter().filter(|e| e.msg_hash.is_some()).collect();
            (tenant, TenantResult { config, messages, touches, hits, conversions })
        })
        .collect();
    Reference { tenants }
}

/// Every conversion of every goal of one tenant, credited; in goal order, then by time.
fn tenant_conversions(config: &TenantConfig, records: &TenantRecords) -> Vec<ReferenceConversion> {
    let mut touches_by_customer: HashMap<&str, Vec<&Touch>> = HashMap::new();
    for touch in &records.touches {
        touches_by_customer.entry(touch.customer_id.as_str()).or_default().push(touch);
    }
    let crediting = Crediting { config, messages: &records.messages, touches_by_customer };

    let mut conversions = Vec::new();
    for goal in &config.goals {
        let mut converted = match &goal.kind {
            GoalKind::Order { .. } => order_conversions(config, goal, &records.orders, &crediting),
            GoalKind::Event { event_name } => records
                .events
                .iter()
                .filter(|event| &event.name == event_name)
                .map(|event| {
                    let credit = crediting.credit(&event.customer_id, event.msg_hash.as_deref(), event.ts);
                    let value = i128::from(event.value_micros.unwrap_or(0));
                    let models = crediting.models(&event.customer_id, event.msg_hash.as_deref(), event.ts, value);
                    ReferenceConversion {
                        goal_id: goal.id.clone(),
                        key: event.event_id.clone(),
                        rule: credit.rule,
                        msg_hash: credit.msg_hash,
                        ts: event.ts,
                        value_micros: event.value_micros.unwrap_or(0),
                        customer_id: event.customer_id.clone(),
                        record_event_id: event.event_id.clone(),
                        touch_event_id: credit.touch_event_id,
                        models,
                    }
                })
                .collect(),
        };
        converted.sort_by(|a, b| (a.ts, &a.key).cmp(&(b.ts, &b.key)));
        conversions.extend(converted);
    }
    conversions
}

/// An ORDER goal: one conversion per order, at its earliest qualifying status record.
fn order_conversions(
    config: &TenantConfig,
    goal: &Goal,
    orders: &[OrderRecord],
    crediting: &Crediting<'_>,
) -> Vec<ReferenceConversion> {
    let mut earliest: BTreeMap<&str, &OrderRecord> = BTreeMap::new();
    for record in orders.iter().filter(|record| order_qualifies(config, goal, record)) {
        let slot = earliest.entry(record.order_id.as_str()).or_insert(record);
        if (record.ts, &record.event_id) < (slot.ts, &slot.event_id) {
            *slot = record;
        }
    }
    earliest
        .into_values()
        .map(|record| {
            let credit = crediting.credit(&record.customer_id, record.msg_hash.as_deref(), record.ts);
            let models = crediting.models(&record.customer_id, record.msg_hash.as_deref(), record.ts, i128::from(record.amount_minor));
            ReferenceConversion {
                goal_id: goal.id.clone(),
                key: record.order_id.clone(),
                rule: credit.rule,
                msg_hash: credit.msg_hash,
                ts: record.ts,
                value_micros: record.amount_minor * MICROS_PER_UNIT,
                customer_id: record.customer_id.clone(),
                record_event_id: record.event_id.clone(),
                touch_event_id: credit.touch_event_id,
                models,
            }
        })
        .collect()
}

/// Whether a status record can convert an ORDER goal: a goal status, a shared category (if
/// the goal names any), a goal order channel (if it names any), the tenant currency.
fn order_qualifies(config: &TenantConfig, goal: &Goal, record: &OrderRecord) -> bool {
    let GoalKind::Order { statuses, categories, order_channels } = &goal.kind else {
        return false;
    };
    statuses.contains(&record.status)
        && (categories.is_empty() || record.categories.iter().any(|c| categories.contains(c)))
        && (order_channels.is_empty() || order_channels.contains(&record.channel))
        && record.currency == config.currency
}

/// What crediting needs of one tenant.
struct Crediting<'a> {
    config: &'a TenantConfig,
    messages: &'a BTreeMap<String, Message>,
    touches_by_customer: HashMap<&'a str, Vec<&'a Touch>>,
}

struct Credit {
    rule: &'static str,
    msg_hash: Option<String>,
    touch_event_id: Option<String>,
}

impl Crediting<'_> {
    /// A registered message without an excluded tag.
    fn creditable(&self, msg_hash: &str) -> Option<&Message> {
        self.messages.get(msg_hash).filter(|message| !self.config.is_excluded(&message.tags))
    }

    /// docs/behaviour/attribution.md: explicit, else last touch, else unattributed.
    fn credit(&self, customer_id: &str, explicit: Option<&str>, at: Millis) -> Credit {
        if let Some(msg_hash) = explicit.filter(|hash| self.creditable(hash).is_some()) {
            return Credit { rule: EXPLICIT, msg_hash: Some(msg_hash.to_owned()), touch_event_id: None };
        }
        let mut best: Option<&Touch> = None;
        for &touch in self.touches_by_customer.get(customer_id).into_iter().flatten() {
            let Some(message) = self.creditable(&touch.msg_hash) else {
                continue;
            };
            let setting = self.config.setting(message.channel);
            let connects = touch.kind == setting.connect_on;
            // Both ends inclusive: t <= c and c - t <= window.
            let in_window = touch.ts <= at && at - touch.ts <= setting.window_ms;
            if !connects || !in_window {
                continue;
            }
            // Latest time wins; at equal times the greater event_id.
            if best.is_none_or(|b| (touch.ts, &touch.event_id) > (b.ts, &b.event_id)) {
                best = Some(touch);
            }
        }
        match best {
            Some(touch) => Credit {
                rule: LAST_TOUCH,
                msg_hash: Some(touch.msg_hash.clone()),
                touch_event_id: Some(touch.event_id.clone()),
            },
            None => Credit { rule: UNATTRIBUTED, msg_hash: None, touch_event_id: None },
        }
    }
}

impl Crediting<'_> {
    /// docs/behaviour/attribution.md for one conversion worth `value` whole units: every model's split.
    fn models(&self, customer_id: &str, explicit: Option<&str>, at: Millis, value: i128) -> BTreeMap<&'static str, Vec<ReferenceShare>> {
        if let Some(msg_hash) = explicit.filter(|hash| self.creditable(hash).is_some()) {
            let whole = vec![ReferenceShare { msg_hash: msg_hash.to_owned(), ppm: 1_000_000, value }];
            return MODELS.iter().map(|&model| (model, whole.clone())).collect();
        }
        // M: each creditable message with a connecting touch in its window, represented by
        // its latest one; in the representatives' order.
        let mut latest: BTreeMap<&str, &Touch> = BTreeMap::new();
        for &touch in self.touches_by_customer.get(customer_id).into_iter().flatten() {
            let Some(message) = self.creditable(&touch.msg_hash) else { continue };
            let setting = self.config.setting(message.channel);
            if touch.kind != setting.connect_on || touch.ts > at || at - touch.ts > setting.window_ms {
                continue;
            }
            let held = latest.entry(touch.msg_hash.as_str()).or_insert(touch);
            if (touch.ts, &touch.event_id) > (held.ts, &held.event_id) {
                *held = touch;
            }
        }
        let mut m: Vec<&Touch> = latest.into_values().collect();
        m.sort_by(|a, b| (a.ts, &a.event_id).cmp(&(b.ts, &b.event_id)));
        let n = m.len() as i128;
        let mut split = BTreeMap::new();
        for model in MODELS {
            if m.is_empty() {
                split.insert(model, Vec::new());
                continue;
            }
            // Each share as ppm and the remainder left by its floor, comparable across
            // messages: a fraction of a ppm as (numerator, denominator).
            let shares: Vec<(i128, (f64, i128, i128))> = if model == "time_decay" {
                let last = m[m.len() - 1].ts;
                let half_life = self.config.decay_half_life_ms as f64;
                let weights: Vec<f64> = m.iter().map(|t| (-((last - t.ts) as f64) / half_life).exp2()).collect();
                let mut total = 0.0;
                for w in &weights {
                    total += w;
                }
                weights
                    .iter()
                    .map(|w| {
                        let exact = 1_000_000.0 * w / total;
                        (exact.floor() as i128, (exact - exact.floor(), 0, 1))
                    })
                    .collect()
            } else {
                (0..n)
                    .map(|i| {
                        let (num, den): (i128, i128) = match model {
                            "last_touch" => (i128::from(i == n - 1), 1),
                            "first_touch" => (i128::from(i == 0), 1),
                            "linear" => (1, n),
                            _ if n == 1 => (1, 1),
                            _ if n == 2 => (1, 2),
                            _ if i == 0 || i == n - 1 => (2, 5),
                            _ => (1, 5 * (n - 2)),
                        };
                        (1_000_000 * num / den, (0.0, 1_000_000 * num % den, den))
                    })
                    .collect()
            };
            // The ppm still missing, one each to the largest remainders, the later first.
            let mut ppm: Vec<i128> = shares.iter().map(|(floor, _)| *floor).collect();
            let missing = 1_000_000 - ppm.iter().sum::<i128>();
            let larger = |a: &(f64, i128, i128), b: &(f64, i128, i128)| {
                a.0.partial_cmp(&b.0).unwrap_or(std::cmp::Ordering::Equal).then((a.1 * b.2).cmp(&(b.1 * a.2)))
            };
            for i in pick_largest(shares.len(), missing, |a, b| larger(&shares[a].1, &shares[b].1)) {
                ppm[i] += 1;
            }
            // The value: floors of value * ppm / 1e6, the units still missing one each to the
            // largest remainders, the later first.
            let mut values: Vec<i128> = ppm.iter().map(|s| (value * s).div_euclid(1_000_000)).collect();
            let remainders: Vec<i128> = ppm.iter().map(|s| (value * s).rem_euclid(1_000_000)).collect();
            let missing = value - values.iter().sum::<i128>();
            for i in pick_largest(values.len(), missing, |a, b| remainders[a].cmp(&remainders[b])) {
                values[i] += 1;
            }
            let parts = m
                .iter()
                .zip(ppm.iter().zip(values))
                .filter(|(_, (ppm, _))| **ppm > 0)
                .map(|(touch, (ppm, value))| ReferenceShare { msg_hash: touch.msg_hash.clone(), ppm: *ppm as i64, value })
                .collect();
            split.insert(model, parts);
        }
        split
    }
}

/// Parts per million as a JSON number with up to 6 decimals.
/// Parts per million as a JSON number of conversions with up to 6 decimals (`2.333333`).
pub fn ppm_json(ppm: i64) -> Value {
    let text = format!("{}.{:06}", ppm / 1_000_000, ppm % 1_000_000);
    serde_json::from_str(text.trim_end_matches('0').trim_end_matches('.')).unwrap_or(Value::Null)
}

fn is_order_goal(config: &TenantConfig, goal_id: &str) -> bool {
    config.goal(goal_id).is_some_and(|goal| matches!(goal.kind, GoalKind::Order { .. }))
}

/// `count` distinct indexes of `0..len`, each time the largest by `cmp` among those left,
/// the later index on a tie.
fn pick_largest(len: usize, count: i128, cmp: impl Fn(usize, usize) -> std::cmp::Ordering) -> Vec<usize> {
    let mut left: Vec<usize> = (0..len).collect();
    let mut picked = Vec::new();
    while (picked.len() as i128) < count && !left.is_empty() {
        let best = (0..left.len()).max_by(|&a, &b| cmp(left[a], left[b]).then(left[a].cmp(&left[b]))).unwrap_or(0);
        picked.push(left.remove(best));
    }
    picked
}

/// One report row's counters (docs/behaviour/reports.md), per message or per campaign.
#[derive(Debug, Default)]
struct Row {
    sent: i64,
    delivered: i64,
    opened: i64,
    clicked: i64,
    held_out: i64,
    event_hits: BTreeMap<String, i64>,
    /// Credited conversions and their value, per goal id.
    goals: BTreeMap<String, (i64, i128)>,
}

impl Row {
    fn add(&mut self, other: &Row) {
        self.sent += other.sent;
        self.delivered += other.delivered;
        self.opened += other.opened;
        self.clicked += other.clicked;
        self.held_out += other.held_out;
        for (name, n) in &other.event_hits {
            *self.event_hits.entry(name.clone()).or_default() += n;
        }
        for (goal, (n, value)) in &other.goals {
            let tally = self.goals.entry(goal.clone()).or_default();
            tally.0 += n;
            tally.1 += value;
        }
    }

    fn is_zero(&self) -> bool {
        self.sent == 0
            && self.delivered == 0
            && self.opened == 0
            && self.clicked == 0
            && self.held_out == 0
            && self.event_hits.values().all(|&n| n == 0)
            && self.goals.values().all(|&(n, value)| n == 0 && value == 0)
    }

    fn to_json(&self, id_field: &str, id: &str, config: &TenantConfig) -> Value {
        let event_hits: Map<String, Value> =
            self.event_hits.iter().filter(|(_, n)| **n > 0).map(|(name, n)| (name.clone(), json!(n))).collect();
        // Every goal of the tenant, zeros included.
        let goals: Map<String, Value> = config
            .goals
            .iter()
            .map(|goal| {
                let (n, value) = self.goals.get(&goal.id).copied().unwrap_or((0, 0));
                (goal.id.clone(), json!({"conversions": n, "value": value_json(value)}))
            })
            .collect();
        json!({
            id_field: id,
            "sent": self.sent,
            "delivered": self.delivered,
            "opened": self.opened,
            "clicked": self.clicked,
            "event_hits": event_hits,
            "goals": goals,
        })
    }
}

/// `[from, to)`, either end unbounded when `None`.
fn in_range(ts: Millis, from: Option<Millis>, to: Option<Millis>) -> bool {
    from.is_none_or(|from| ts >= from) && to.is_none_or(|to| ts < to)
}

impl Reference {
    /// Every tenant with a config section or any accepted record.
    pub fn tenants(&self) -> Vec<&str> {
        self.tenants.keys().map(String::as_str).collect()
    }

    /// The configuration a tenant was evaluated with.
    pub fn config(&self, tenant: &str) -> TenantConfig {
        self.tenants.get(tenant).map(|t| t.config.clone()).unwrap_or_else(|| TenantConfig::defaults(tenant))
    }

    /// Every conversion of a tenant, in goal order, then by (ts, key).
    pub fn conversions(&self, tenant: &str) -> Vec<ReferenceConversion> {
        self.tenants.get(tenant).map(|t| t.conversions.clone()).unwrap_or_default()
    }

    /// Per-message rows of a tenant over `[from, to)`, all-zero rows left out.
    fn message_rows(&self, tenant: &str, from: Option<Millis>, to: Option<Millis>) -> BTreeMap<String, Row> {
        let mut rows: BTreeMap<String, Row> = BTreeMap::new();
        let Some(result) = self.tenants.get(tenant) else {
            return rows;
        };
        for touch in result.touches.iter().filter(|t| in_range(t.ts, from, to)) {
            let row = rows.entry(touch.msg_hash.clone()).or_default();
            match touch.kind {
                TouchKind::Sent => row.sent += 1,
                TouchKind::Delivered => row.delivered += 1,
                TouchKind::Opened => row.opened += 1,
                TouchKind::Clicked => row.clicked += 1,
                TouchKind::HeldOut => row.held_out += 1,
            }
        }
        for event in result.hits.iter().filter(|e| in_range(e.ts, from, to)) {
            if let Some(msg_hash) = &event.msg_hash {
                *rows.entry(msg_hash.clone()).or_default().event_hits.entry(event.name.clone()).or_default() += 1;
            }
        }
        for conversion in result.conversions.iter().filter(|c| in_range(c.ts, from, to)) {
            if let Some(msg_hash) = &conversion.msg_hash {
                let tally = rows.entry(msg_hash.clone()).or_default().goals.entry(conversion.goal_id.clone()).or_default();
                tally.0 += 1;
                tally.1 += i128::from(conversion.value_micros);
            }
        }
        rows.retain(|_, row| !row.is_zero());
        rows
    }

    /// docs/behaviour/reports.md `report messages --format json`.
    pub fn messages_json(&self, tenant: &str, from: Option<Millis>, to: Option<Millis>) -> Value {
        let config = self.config(tenant);
        let rows = self.message_rows(tenant, from, to);
        Value::Array(rows.iter().map(|(msg_hash, row)| row.to_json("msg_hash", msg_hash, &config)).collect())
    }

    /// docs/behaviour/reports.md `report campaigns --format json`: registered messages with a campaign,
    /// summed per campaign.
    pub fn campaigns_json(&self, tenant: &str, from: Option<Millis>, to: Option<Millis>) -> Value {
        let config = self.config(tenant);
        let Some(result) = self.tenants.get(tenant) else {
            return Value::Array(Vec::new());
        };
        let mut campaigns: BTreeMap<String, Row> = BTreeMap::new();
        for (msg_hash, row) in self.message_rows(tenant, from, to) {
            let Some(message) = result.messages.get(&msg_hash) else {
                continue;
            };
            if message.campaign_id.is_empty() {
                continue;
            }
            campaigns.entry(message.campaign_id.clone()).or_default().add(&row);
        }
        campaigns.retain(|_, row| !row.is_zero());
        Value::Array(campaigns.iter().map(|(id, row)| row.to_json("campaign_id", id, &config)).collect())
    }

    /// docs/behaviour/reports.md `report goals --format json`: every goal in config order, split by rule.
    pub fn goals_json(&self, tenant: &str, from: Option<Millis>, to: Option<Millis>) -> Value {
        let config = self.config(tenant);
        let conversions = self.tenants.get(tenant).map(|t| t.conversions.as_slice()).unwrap_or_default();
        let rows = config
            .goals
            .iter()
            .map(|goal| {
                let split = |rule: &str| {
                    let (n, value) = conversions
                        .iter()
                        .filter(|c| c.goal_id == goal.id && c.rule == rule && in_range(c.ts, from, to))
                        .fold((0i64, 0i128), |(n, value), c| (n + 1, value + i128::from(c.value_micros)));
                    json!({"conversions": n, "value": value_json(value)})
                };
                json!({
                    "goal_id": goal.id,
                    "explicit": split(EXPLICIT),
                    "last_touch": split(LAST_TOUCH),
                    "unattributed": split(UNATTRIBUTED),
                })
            })
            .collect();
        Value::Array(rows)
    }

    /// `report models` as docs/behaviour/reports.md gives it: per campaign (of a registered message
    /// with a campaign) and goal credited under any model, every model's conversions (ppm
    /// summed, as a number of up to 6 decimals) and value; rows by campaign, then goal order.
    pub fn models_json(&self, tenant: &str, from: Option<Millis>, to: Option<Millis>) -> Value {
        let Some(result) = self.tenants.get(tenant) else {
            return json!([]);
        };
        // By (campaign, goal position): each model's (ppm, micros).
        type Sums = BTreeMap<&'static str, (i64, i128)>;
        let mut rows: BTreeMap<(String, usize), Sums> = BTreeMap::new();
        for conversion in result.conversions.iter().filter(|c| in_range(c.ts, from, to)) {
            let Some(goal_at) = result.config.goals.iter().position(|goal| goal.id == conversion.goal_id) else { continue };
            for (&model, shares) in &conversion.models {
                for share in shares {
                    let Some(campaign) = result.messages.get(&share.msg_hash).map(|m| m.campaign_id.clone()).filter(|c| !c.is_empty()) else {
                        continue;
                    };
                    let row = rows.entry((campaign, goal_at)).or_insert_with(|| MODELS.iter().map(|&m| (m, (0, 0))).collect());
                    let sum = row.entry(model).or_default();
                    sum.0 += share.ppm;
                    // Whole units to micros: minor units of an order goal, millionths already of an event goal.
                    sum.1 += share.value * if is_order_goal(&result.config, &conversion.goal_id) { i128::from(MICROS_PER_UNIT) } else { 1 };
                }
            }
        }
        Value::Array(
            rows.into_iter()
                .map(|((campaign_id, goal_at), models)| {
                    let models: Map<String, Value> = models
                        .into_iter()
                        .map(|(model, (ppm, micros))| (model.to_owned(), json!({"conversions": ppm_json(ppm), "value": value_json(micros)})))
                        .collect();
                    json!({"campaign_id": campaign_id, "goal_id": result.config.goals[goal_at].id, "models": models})
                })
                .collect(),
        )
    }

    /// `report lift` as docs/behaviour/reports.md and attribution.md give it, for `campaign_id` and `goal_id` over
    /// `[from, to)`: the groups from the accepted touches, each customer's outcome from
    /// the conversions whatever credited them, the statistics in doubles.
    pub fn lift_json(&self, tenant: &str, campaign_id: &str, goal_id: &str, from: Option<Millis>, to: Option<Millis>) -> Value {
        let Some(result) = self.tenants.get(tenant) else {
            return Value::Null;
        };
        let Some(goal) = result.config.goal(goal_id) else {
            return Value::Null;
        };
        // Each customer's earliest SENT and earliest HELD_OUT touch of the campaign in range.
        let mut entries: BTreeMap<&str, (Option<&Touch>, Option<&Touch>)> = BTreeMap::new();
        for touch in result.touches.iter().filter(|t| in_range(t.ts, from, to)) {
            if result.messages.get(&touch.msg_hash).is_none_or(|m| m.campaign_id != campaign_id) {
                continue;
            }
            let slots = entries.entry(touch.customer_id.as_str()).or_default();
            let slot = match touch.kind {
                TouchKind::Sent => &mut slots.0,
                TouchKind::HeldOut => &mut slots.1,
                _ => continue,
            };
            if slot.is_none_or(|held| (touch.ts, &touch.event_id) < (held.ts, &held.event_id)) {
                *slot = Some(touch);
            }
        }
        // Whole units: minor units of an order, millionths of an event's value; reported in
        // minor units and in the event's own units.
        let (whole, per_report_unit) = if is_order_goal(&result.config, goal_id) { (MICROS_PER_UNIT, 1.0) } else { (1, 1_000_000.0) };
        let mut groups: [Vec<(bool, f64)>; 2] = [Vec::new(), Vec::new()];
        let mut contaminated = 0u64;
        for (customer_id, slots) in entries {
            let (group, entry) = match slots {
                (Some(_), Some(_)) => {
                    contaminated += 1;
                    continue;
                }
                (Some(entry), None) => (0, entry),
                (None, Some(entry)) => (1, entry),
                (None, None) => continue,
            };
            let window = result.config.setting(result.messages[&entry.msg_hash].channel).window_ms;
            let converted: Vec<&ReferenceConversion> = result
                .conversions
                .iter()
                .filter(|c| c.goal_id == goal.id && c.customer_id == customer_id && entry.ts <= c.ts && c.ts <= entry.ts + window)
                .collect();
            let value: i128 = converted.iter().map(|c| i128::from(c.value_micros / whole)).sum();
            groups[group].push((!converted.is_empty(), value as f64 / per_report_unit));
        }
        let [treatment, control] = &groups;
        let n = |g: &Vec<(bool, f64)>| g.len() as f64;
        let converted = |g: &Vec<(bool, f64)>| g.iter().filter(|(c, _)| *c).count() as f64;
        let rate = |g: &Vec<(bool, f64)>| (!g.is_empty()).then(|| converted(g) / n(g));
        let mean = |g: &Vec<(bool, f64)>| (!g.is_empty()).then(|| g.iter().map(|(_, v)| v).sum::<f64>() / n(g));
        // Sample variance, two passes.
        let variance = |g: &Vec<(bool, f64)>| {
            let m = mean(g)?;
            (g.len() >= 2).then(|| g.iter().map(|(_, v)| (v - m) * (v - m)).sum::<f64>() / (n(g) - 1.0))
        };
        let (r_t, r_c) = (rate(treatment), rate(control));
        let both = r_t.zip(r_c);
        let diff = both.map(|(t, c)| t - c);
        let half = both.map(|(t, c)| 1.959964 * (t * (1.0 - t) / n(treatment) + c * (1.0 - c) / n(control)).sqrt());
        let p_value = both.and_then(|(t, c)| {
            let pooled = (converted(treatment) + converted(control)) / (n(treatment) + n(control));
            let se = (pooled * (1.0 - pooled) * (1.0 / n(treatment) + 1.0 / n(control))).sqrt();
            (se > 0.0).then(|| libm::erfc(((t - c) / se).abs() / 2f64.sqrt()))
        });
        let value_diff = both.and(mean(treatment).zip(mean(control))).map(|(t, c)| t - c);
        let value_half = variance(treatment).zip(variance(control)).map(|(v_t, v_c)| 1.959964 * (v_t / n(treatment) + v_c / n(control)).sqrt());
        let counts = [converted(treatment), n(treatment) - converted(treatment), converted(control), n(control) - converted(control)];
        json!({
            "campaign_id": campaign_id,
            "goal_id": goal_id,
            "n_t": treatment.len(),
            "converted_t": converted(treatment) as u64,
            "n_c": control.len(),
            "converted_c": converted(control) as u64,
            "contaminated": contaminated,
            "r_t": r_t,
            "r_c": r_c,
            "diff": diff,
            "diff_low": diff.zip(half).map(|(d, h)| d - h),
            "diff_high": diff.zip(half).map(|(d, h)| d + h),
            "lift": diff.zip(r_c).and_then(|(d, c)| (c != 0.0).then(|| d / c)),
            "p_value": p_value,
            "incremental_conversions": diff.map(|d| d * n(treatment)),
            "value_per_customer_t": mean(treatment),
            "value_per_customer_c": mean(control),
            "value_diff": value_diff,
            "value_diff_low": value_diff.zip(value_half).map(|(d, h)| d - h),
            "value_diff_high": value_diff.zip(value_half).map(|(d, h)| d + h),
            "enough_data": control.len() >= 1_000 && counts.iter().all(|&count| count >= 10.0),
        })
    }

    /// `report campaigns` (or `messages`, `by_message`) `--model MODEL` as docs/behaviour/reports.md
    /// gives it: the report's rows, each goal's conversions and value as `model` credits
    /// them, and a row of zero counters for what the model credits without activity in the
    /// range. Rows by id.
    pub fn stats_json_under(&self, tenant: &str, from: Option<Millis>, to: Option<Millis>, model: &str, by_message: bool) -> Value {
        let (id_key, stats) =
            if by_message { ("msg_hash", self.messages_json(tenant, from, to)) } else { ("campaign_id", self.campaigns_json(tenant, from, to)) };
        let Some(result) = self.tenants.get(tenant) else {
            return stats;
        };
        let mut credit: BTreeMap<(String, String), (i64, i128)> = BTreeMap::new();
        for conversion in result.conversions.iter().filter(|c| in_range(c.ts, from, to)) {
            let unit = if is_order_goal(&result.config, &conversion.goal_id) { i128::from(MICROS_PER_UNIT) } else { 1 };
            for share in conversion.models.get(model).into_iter().flatten() {
                let subject = if by_message {
                    share.msg_hash.clone()
                } else {
                    match result.messages.get(&share.msg_hash).map(|m| m.campaign_id.clone()) {
                        Some(campaign) if !campaign.is_empty() => campaign,
                        _ => continue,
                    }
                };
                let sum = credit.entry((subject, conversion.goal_id.clone())).or_default();
                sum.0 += share.ppm;
                sum.1 += share.value * unit;
            }
        }
        let mut rows: BTreeMap<String, Value> =
            stats.as_array().into_iter().flatten().map(|row| (row[id_key].as_str().unwrap_or_default().to_owned(), row.clone())).collect();
        for ((id, _), (ppm, _)) in &credit {
            if *ppm > 0 {
                rows.entry(id.clone()).or_insert_with(|| {
                    json!({id_key: id, "sent": 0, "delivered": 0, "opened": 0, "clicked": 0, "event_hits": {}, "goals": {}})
                });
            }
        }
        for (id, row) in &mut rows {
            let goals: Map<String, Value> = result
                .config
                .goals
                .iter()
                .map(|goal| {
                    let (ppm, micros) = credit.get(&(id.clone(), goal.id.clone())).copied().unwrap_or_default();
                    (goal.id.clone(), json!({"conversions": ppm_json(ppm), "value": value_json(micros)}))
                })
                .collect();
            row["goals"] = Value::Object(goals);
        }
        Value::Array(rows.into_values().collect())
    }

    /// The campaigns of a tenant's registered messages (non-empty ids), for tests that walk
    /// every campaign.
    pub fn campaign_ids(&self, tenant: &str) -> BTreeSet<String> {
        self.tenants
            .get(tenant)
            .map(|t| t.messages.values().filter(|m| !m.campaign_id.is_empty()).map(|m| m.campaign_id.clone()).collect())
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ChannelSetting, Goal};
    use crate::model::{Channel, TouchKind};

    const T0: Millis = 1_767_225_600_000; // 2026-01-01T00:00:00Z
    const HOUR: Millis = 3_600_000;
    const DAY: Millis = 24 * HOUR;

    fn config() -> TenantConfig {
        let mut config = TenantConfig::defaults("t");
        config.set_excluded_tags(vec!["transactional".into()]);
        config.save_goal(Goal { id: "checkin".into(), kind: GoalKind::Event { event_name: "checkin".into() } }).unwrap();
        config
    }

    fn message(msg_hash: &str, campaign_id: &str, channel: Channel, tags: &[&str]) -> Message {
        Message {
            tenant: "t".into(),
            msg_hash: msg_hash.into(),
            campaign_id: campaign_id.into(),
            channel,
            tags: tags.iter().map(|t| t.to_string()).collect(),
            sent_at: T0,
        }
    }

    fn touch(event_id: &str, msg_hash: &str, customer: &str, kind: TouchKind, ts: Millis) -> Record {
        Record::Touch(Touch {
            tenant: "t".into(),
            event_id: event_id.into(),
            msg_hash: msg_hash.into(),
            customer_id: customer.into(),
            kind,
            ts,
        })
    }

    fn order(event_id: &str, order_id: &str, customer: &str, status: &str, amount: i64, ts: Millis) -> OrderRecord {
        OrderRecord {
            tenant: "t".into(),
            event_id: event_id.into(),
            order_id: order_id.into(),
            customer_id: customer.into(),
            status: status.into(),
            amount_minor: amount,
            currency: "USD".into(),
            categories: vec!["shoes".into()],
            channel: "app".into(),
            ts,
            msg_hash: None,
        }
    }

    fn event(event_id: &str, customer: &str, name: &str, ts: Millis, msg_hash: Option<&str>) -> Record {
        Record::Event(AppEvent {
            tenant: "t".into(),
            event_id: event_id.into(),
            customer_id: customer.into(),
            name: name.into(),
            ts,
            value_micros: None,
            msg_hash: msg_hash.map(str::to_owned),
        })
    }

    fn dataset(messages: Vec<Message>, records: Vec<Record>) -> Dataset {
        Dataset { configs: BTreeMap::from([("t".to_owned(), config())]), messages, records }
    }

    /// The (rule, msg_hash) of the "orders" conversion of an order.
    fn credit_of(reference: &Reference, order_id: &str) -> (&'static str, Option<String>) {
        let conversion = reference
            .conversions("t")
            .into_iter()
            .find(|c| c.goal_id == "orders" && c.key == order_id)
            .unwrap_or_else(|| panic!("order {order_id} did not convert"));
        (conversion.rule, conversion.msg_hash)
    }

    /// Three pushes opened before an order of 1,000 (m1 twice: its latest open stands), a
    /// one-hour half-life: every model's split, worked out by hand.
    #[test]
    fn every_model_splits_a_conversion_exactly() {
        let messages = vec![message("m1", "a", Channel::Push, &[]), message("m2", "b", Channel::Push, &[]), message("m3", "c", Channel::Push, &[])];
        let records = vec![
            touch("t1", "m1", "c", TouchKind::Opened, T0),
            touch("t1b", "m1", "c", TouchKind::Opened, T0 + HOUR / 2),
            touch("t2", "m2", "c", TouchKind::Opened, T0 + HOUR),
            touch("t3", "m3", "c", TouchKind::Opened, T0 + 2 * HOUR),
            Record::Order(order("o1", "A", "c", "PAID", 1000, T0 + 3 * HOUR)),
            // An unattributed order and one with an explicit message.
            Record::Order(order("o2", "B", "nobody", "PAID", 7, T0)),
            Record::Order(OrderRecord { msg_hash: Some("m2".into()), ..order("o3", "C", "c", "PAID", 10, T0 + 3 * HOUR) }),
        ];
        let mut data = dataset(messages, records);
        data.configs.get_mut("t").unwrap().set_decay_half_life(HOUR).unwrap();
        let reference = evaluate(&data);
        let conversions = reference.conversions("t");
        let split = |key: &str, model: &str| -> Vec<(String, i64, i128)> {
            let conversion = conversions.iter().find(|c| c.key == key).unwrap();
            conversion.models[model].iter().map(|share| (share.msg_hash.clone(), share.ppm, share.value)).collect()
        };
        let part = |hash: &str, ppm: i64, value: i128| (hash.to_owned(), ppm, value);
        assert_eq!(split("A", "last_touch"), [part("m3", 1_000_000, 1000)]);
        assert_eq!(split("A", "first_touch"), [part("m1", 1_000_000, 1000)]);
        assert_eq!(split("A", "linear"), [part("m1", 333_333, 333), part("m2", 333_333, 333), part("m3", 333_334, 334)]);
        assert_eq!(split("A", "position_based"), [part("m1", 400_000, 400), part("m2", 200_000, 200), part("m3", 400_000, 400)]);
        // Weights 2^-1.5, 2^-1, 1 (m1's latest open is 1.5 h before m3's): 190,743.57,
        // 269,752.14 and 539,504.29 ppm; the one ppm missing goes to m1 (remainder .57).
        // Values: 190.744, 269.752, 539.504; the two units missing go to m2 (.752), m1 (.744).
        assert_eq!(split("A", "time_decay"), [part("m1", 190_744, 191), part("m2", 269_752, 270), part("m3", 539_504, 539)]);
        for model in MODELS {
            assert_eq!(split("B", model), [], "{model}: unattributed");
            assert_eq!(split("C", model), [part("m2", 1_000_000, 10)], "{model}: explicit");
        }
    }

    #[test]
    fn the_window_is_inclusive_at_both_ends_and_one_ms_past_is_out() {
        // PUSH connects on OPENED within a day by default.
        let records = vec![
            touch("a1", "m", "at-edge", TouchKind::Opened, T0),
            Record::Order(order("o1", "edge", "at-edge", "PAID", 100, T0 + DAY)),
            touch("b1", "m", "past", TouchKind::Opened, T0),
            Record::Order(order("o2", "past", "past", "PAID", 100, T0 + DAY + 1)),
            touch("c1", "m", "same-ms", TouchKind::Opened, T0),
            Record::Order(order("o3", "same", "same-ms", "PAID", 100, T0)),
            // A touch after the conversion never explains it.
            touch("d1", "m", "later", TouchKind::Opened, T0 + 1),
            Record::Order(order("o4", "later", "later", "PAID", 100, T0)),
        ];
        let reference = evaluate(&dataset(vec![message("m", "c", Channel::Push, &[])], records));
        assert_eq!(credit_of(&reference, "edge"), (LAST_TOUCH, Some("m".into())));
        assert_eq!(credit_of(&reference, "past"), (UNATTRIBUTED, None));
        assert_eq!(credit_of(&reference, "same"), (LAST_TOUCH, Some("m".into())));
        assert_eq!(credit_of(&reference, "later"), (UNATTRIBUTED, None));
    }

    #[test]
    fn only_the_connecting_touch_kind_of_the_channel_counts() {
        // EMAIL connects on CLICKED (7 days), PUSH on OPENED.
        let records = vec![
            touch("e1", "mail", "c", TouchKind::Opened, T0 + 5 * HOUR),
            touch("e2", "mail", "c", TouchKind::Clicked, T0 + HOUR),
            touch("e3", "push", "c", TouchKind::Clicked, T0 + 6 * HOUR),
            touch("e4", "push", "c", TouchKind::Delivered, T0 + 6 * HOUR),
            Record::Order(order("o1", "o", "c", "PAID", 100, T0 + 7 * HOUR)),
        ];
        let messages = vec![message("mail", "c", Channel::Email, &[]), message("push", "c", Channel::Push, &[])];
        let reference = evaluate(&dataset(messages, records));
        assert_eq!(credit_of(&reference, "o"), (LAST_TOUCH, Some("mail".into())));
    }

    #[test]
    fn equal_touch_times_go_to_the_greater_event_id() {
        let records = vec![
            touch("touch-b", "m2", "c", TouchKind::Opened, T0),
            touch("touch-a", "m1", "c", TouchKind::Opened, T0),
            touch("touch-c", "m3", "c", TouchKind::Opened, T0 - 1),
            Record::Order(order("o1", "o", "c", "PAID", 100, T0 + HOUR)),
        ];
        let messages = ["m1", "m2", "m3"].map(|m| message(m, "c", Channel::Push, &[])).to_vec();
        let reference = evaluate(&dataset(messages, records));
        let conversion = reference.conversions("t").into_iter().find(|c| c.key == "o").unwrap();
        assert_eq!(conversion.msg_hash.as_deref(), Some("m2"));
        assert_eq!(conversion.touch_event_id.as_deref(), Some("touch-b"));
    }

    #[test]
    fn explicit_credit_needs_a_registered_not_excluded_message_else_falls_back() {
        let with_hash = |event_id: &str, order_id: &str, hash: &str| {
            Record::Order(OrderRecord { msg_hash: Some(hash.into()), ..order(event_id, order_id, "c", "PAID", 100, T0 + HOUR) })
        };
        let records = vec![
            touch("t1", "promo", "c", TouchKind::Opened, T0),
            // Touches of excluded or unregistered messages never connect.
            touch("t2", "reset", "c", TouchKind::Opened, T0 + 1),
            touch("t3", "ghost", "c", TouchKind::Opened, T0 + 2),
            with_hash("o1", "explicit", "other"),
            with_hash("o2", "to-excluded", "reset"),
            with_hash("o3", "to-unknown", "ghost"),
            Record::Order(order("o4", "no-touch", "nobody", "PAID", 100, T0)),
        ];
        let messages = vec![
            message("promo", "c", Channel::Push, &[]),
            message("other", "c", Channel::Sms, &[]),
            message("reset", "", Channel::Push, &["transactional"]),
        ];
        let reference = evaluate(&dataset(messages, records));
        assert_eq!(credit_of(&reference, "explicit"), (EXPLICIT, Some("other".into())));
        assert_eq!(credit_of(&reference, "to-excluded"), (LAST_TOUCH, Some("promo".into())));
        assert_eq!(credit_of(&reference, "to-unknown"), (LAST_TOUCH, Some("promo".into())));
        assert_eq!(credit_of(&reference, "no-touch"), (UNATTRIBUTED, None));
        // The excluded and the unregistered message still show their own stats.
        let rows = reference.messages_json("t", None, None);
        let hashes: Vec<&str> = rows.as_array().unwrap().iter().map(|r| r["msg_hash"].as_str().unwrap()).collect();
        assert_eq!(hashes, ["ghost", "other", "promo", "reset"]);
    }

    #[test]
    fn an_order_converts_once_at_its_earliest_qualifying_record() {
        let records = vec![
            Record::Order(order("o-created", "o", "c", "CREATED", 1, T0)),
            Record::Order(order("o-delivered", "o", "c", "DELIVERED", 4, T0 + 3 * HOUR)),
            Record::Order(order("o-paid-b", "o", "c", "PAID", 3, T0 + 2 * HOUR)),
            Record::Order(order("o-paid-a", "o", "c", "PLACED", 2, T0 + 2 * HOUR)),
            Record::Order(order("o-refunded", "o", "c", "REFUNDED", 9, T0 + 4 * HOUR)),
            // Never a goal status: no conversion at all.
            Record::Order(order("x-cancelled", "x", "c", "CANCELLED", 5, T0)),
        ];
        let reference = evaluate(&dataset(vec![], records));
        let orders: Vec<_> = reference.conversions("t").into_iter().filter(|c| c.goal_id == "orders").collect();
        assert_eq!(orders.len(), 1);
        assert_eq!(orders[0].record_event_id, "o-paid-a");
        assert_eq!(orders[0].ts, T0 + 2 * HOUR);
        assert_eq!(orders[0].value_micros, 2 * MICROS_PER_UNIT);
    }

    #[test]
    fn foreign_currency_records_are_ignored_and_a_later_one_in_currency_converts() {
        let records = vec![
            Record::Order(OrderRecord { currency: "EUR".into(), ..order("e1", "o", "c", "PLACED", 100, T0) }),
            Record::Order(order("e2", "o", "c", "PAID", 120, T0 + HOUR)),
            Record::Order(OrderRecord { currency: "EUR".into(), ..order("e3", "eur-only", "c", "PAID", 100, T0) }),
        ];
        let reference = evaluate(&dataset(vec![], records));
        let orders: Vec<_> = reference.conversions("t").into_iter().filter(|c| c.goal_id == "orders").collect();
        assert_eq!(orders.len(), 1);
        assert_eq!((orders[0].key.as_str(), orders[0].ts, orders[0].value_micros), ("o", T0 + HOUR, 120_000_000));
    }

    #[test]
    fn goal_categories_and_order_channels_filter_records() {
        let mut config = config();
        let shoes_on_web = Goal {
            id: "web_shoes".into(),
            kind: GoalKind::Order {
                statuses: vec!["PAID".into()],
                categories: vec!["shoes".into(), "bags".into()],
                order_channels: vec!["web".into()],
            },
        };
        config.save_goal(shoes_on_web).unwrap();
        let records = vec![
            Record::Order(order("a1", "app-order", "c", "PAID", 1, T0)),
            Record::Order(OrderRecord { channel: "web".into(), ..order("b1", "web-order", "c", "PAID", 2, T0) }),
            Record::Order(OrderRecord {
                channel: "web".into(),
                categories: vec!["hats".into()],
                ..order("c1", "web-hats", "c", "PAID", 3, T0)
            }),
        ];
        let dataset = Dataset { configs: BTreeMap::from([("t".to_owned(), config)]), messages: vec![], records };
        let reference = evaluate(&dataset);
        let keys: Vec<String> =
            reference.conversions("t").into_iter().filter(|c| c.goal_id == "web_shoes").map(|c| c.key).collect();
        assert_eq!(keys, ["web-order"]);
    }

    #[test]
    fn duplicates_count_once_and_the_first_arrival_stands() {
        let messages = vec![message("m", "first", Channel::Push, &[]), message("m", "second", Channel::Push, &[])];
        let records = vec![
            touch("t1", "m", "c", TouchKind::Opened, T0),
            touch("t1", "m", "c", TouchKind::Opened, T0),
            // Same event_id, different content: a duplicate all the same.
            touch("t1", "m", "c", TouchKind::Clicked, T0 + 5),
            Record::Order(order("o1", "o", "c", "PAID", 100, T0 + HOUR)),
            Record::Order(order("o1", "o", "c", "PAID", 999, T0 + 10)),
            // A rejected record does not block a later good one with the same event_id.
            Record::Order(OrderRecord { amount_minor: -5, ..order("o2", "p", "c", "PAID", 1, T0) }),
            Record::Order(order("o2", "p", "c", "PAID", 7, T0 + 2 * HOUR)),
        ];
        let reference = evaluate(&dataset(messages, records));
        let campaigns = reference.campaigns_json("t", None, None);
        assert_eq!(
            campaigns,
            json!([{"campaign_id": "first", "sent": 0, "delivered": 0, "opened": 1, "clicked": 0, "event_hits": {},
                    "goals": {"orders": {"conversions": 2, "value": 107}, "checkin": {"conversions": 0, "value": 0}}}])
        );
    }

    #[test]
    fn messages_without_a_campaign_show_in_messages_but_not_campaigns() {
        let messages = vec![message("solo", "", Channel::InApp, &[]), message("m", "spring", Channel::InApp, &[])];
        let records = vec![
            touch("t1", "solo", "c", TouchKind::Opened, T0),
            event("e1", "c", "checkin", T0 + 10, None),
            touch("t2", "m", "d", TouchKind::Sent, T0),
            // Touches of an unregistered message belong to no campaign.
            touch("t3", "ghost", "d", TouchKind::Sent, T0),
        ];
        let reference = evaluate(&dataset(messages, records));
        let rows = reference.messages_json("t", None, None);
        assert_eq!(rows.as_array().unwrap().len(), 3);
        assert_eq!(rows[2]["msg_hash"], "solo");
        assert_eq!(rows[2]["goals"]["checkin"], json!({"conversions": 1, "value": 0}));
        let campaigns = reference.campaigns_json("t", None, None);
        assert_eq!(campaigns.as_array().unwrap().len(), 1);
        assert_eq!(campaigns[0]["campaign_id"], "spring");
        assert_eq!(campaigns[0]["sent"], 1);
    }

    #[test]
    fn event_goals_take_the_event_value_and_event_hits_need_a_msg_hash() {
        let records = vec![
            Record::Event(AppEvent {
                value_micros: Some(2_500_000),
                ..match event("e1", "c", "checkin", T0, Some("m")) {
                    Record::Event(e) => e,
                    _ => unreachable!(),
                }
            }),
            event("e2", "c", "checkin", T0 + 1, None),
            event("e3", "c", "view", T0 + 2, Some("m")),
            event("e4", "c", "view", T0 + 3, None),
        ];
        let reference = evaluate(&dataset(vec![message("m", "c", Channel::Push, &[])], records));
        let rows = reference.messages_json("t", None, None);
        assert_eq!(rows[0]["event_hits"], json!({"checkin": 1, "view": 1}));
        assert_eq!(rows[0]["goals"]["checkin"], json!({"conversions": 1, "value": 2.5}));
        assert_eq!(
            reference.goals_json("t", None, None),
            json!([
                {"goal_id": "orders", "explicit": {"conversions": 0, "value": 0},
                 "last_touch": {"conversions": 0, "value": 0}, "unattributed": {"conversions": 0, "value": 0}},
                {"goal_id": "checkin", "explicit": {"conversions": 1, "value": 2.5},
                 "last_touch": {"conversions": 0, "value": 0}, "unattributed": {"conversions": 1, "value": 0}},
            ])
        );
    }

    #[test]
    fn ranges_are_half_open_and_cut_by_each_record_own_time() {
        let records = vec![
            touch("t1", "m", "c", TouchKind::Opened, T0 + 999),
            touch("t2", "m", "c", TouchKind::Opened, T0 + 1000),
            // The conversion counts at its own time, the credited touch at the touch's.
            Record::Order(order("o1", "o", "c", "PAID", 50, T0 + 2000)),
        ];
        let reference = evaluate(&dataset(vec![message("m", "camp", Channel::Push, &[])], records));
        let opened = |from, to| reference.messages_json("t", from, to)[0]["opened"].clone();
        assert_eq!(opened(Some(T0 + 1000), None), json!(1));
        assert_eq!(opened(None, Some(T0 + 1000)), json!(1));
        assert_eq!(opened(Some(T0 + 999), Some(T0 + 1001)), json!(2));
        let converted = |from, to| reference.goals_json("t", from, to)[0]["last_touch"]["conversions"].clone();
        assert_eq!(converted(Some(T0 + 2000), Some(T0 + 2001)), json!(1));
        assert_eq!(converted(Some(T0), Some(T0 + 2000)), json!(0));
        // Only the conversion falls in range: the row is there for its goals alone.
        let rows = reference.campaigns_json("t", Some(T0 + 1500), None);
        assert_eq!(rows[0]["opened"], 0);
        assert_eq!(rows[0]["goals"]["orders"], json!({"conversions": 1, "value": 50}));
        // Nothing in range: no rows.
        assert_eq!(reference.messages_json("t", Some(T0 + 3000), None), json!([]));
    }

    #[test]
    fn window_settings_come_from_the_message_channel() {
        let mut config = config();
        config
            .set_channel(Channel::Sms, ChannelSetting { connect_on: TouchKind::Delivered, window_ms: HOUR })
            .unwrap();
        let records = vec![
            touch("s1", "sms", "c", TouchKind::Delivered, T0),
            Record::Order(order("o1", "in", "c", "PAID", 1, T0 + HOUR)),
            Record::Order(order("o2", "out", "c", "PAID", 1, T0 + HOUR + 1)),
        ];
        let dataset = Dataset {
            configs: BTreeMap::from([("t".to_owned(), config)]),
            messages: vec![message("sms", "c", Channel::Sms, &[])],
            records,
        };
        let reference = evaluate(&dataset);
        assert_eq!(credit_of(&reference, "in"), (LAST_TOUCH, Some("sms".into())));
        assert_eq!(credit_of(&reference, "out"), (UNATTRIBUTED, None));
    }

    #[test]
    fn files_load_like_the_import_and_unknown_tenants_get_defaults() {
        let config = r#"{"tenants": {"t": {"currency": "EUR", "excluded_tags": ["transactional"],
            "goals": [{"id": "checkin", "kind": "EVENT", "event_name": "checkin"}]}}}"#;
        let messages = [
            r#"{"tenant":"t","msg_hash":"m","campaign_id":"c","channel":"PUSH","tags":[],"sent_at":1767225600000}"#,
            "garbage",
            r#"{"tenant":"t","msg_hash":"m","campaign_id":"other","channel":"PUSH","tags":[],"sent_at":1767225600000}"#,
        ]
        .join("\n");
        let records = [
            r#"{"type":"touch","tenant":"t","event_id":"t1","msg_hash":"m","customer_id":"c","touch":"OPENED","ts":1767225600000}"#,
            r#"{"type":"touch","tenant":"t","event_id":"t2","msg_hash":"m","customer_id":"c","touch":"OPENED","ts":5}"#,
            r#"{"type":"order","tenant":"t","event_id":"o1","order_id":"o","customer_id":"c","status":"PAID","amount_minor":1999,"currency":"EUR","categories":[],"channel":"web","ts":1767225600001}"#,
            r#"{"type":"order","tenant":"u","event_id":"o1","order_id":"o","customer_id":"c","status":"PAID","amount_minor":1999,"currency":"USD","categories":[],"channel":"web","ts":1767225600001}"#,
        ]
        .join("\n");
        let dataset = Dataset::from_files(config, &messages, &records).unwrap();
        assert_eq!(dataset.messages.len(), 2, "the garbage line is skipped, the duplicate kept for evaluate");
        assert_eq!(dataset.records.len(), 3, "the touch with an absurd ts is rejected");
        let reference = evaluate(&dataset);
        assert_eq!(reference.tenants(), ["t", "u"]);
        assert_eq!(reference.config("t").goals.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(), ["orders", "checkin"]);
        assert_eq!(reference.campaigns_json("t", None, None)[0]["goals"]["orders"], json!({"conversions": 1, "value": 1999}));
        assert_eq!(reference.goals_json("u", None, None)[0]["unattributed"]["conversions"], 1);
        assert!(Dataset::from_files("{", "", "").is_err());
    }
}
