//! The bulk file formats of docs/behaviour/records-and-config.md: `config.json`, `messages.jsonl` and
//! `records.jsonl`. Parsing is per line: a bad line is an error naming its line number and
//! leaves the others untouched. Writing is the inverse, for generated datasets.
//!
//! The badge CSV of `touchstone badges import` is [`badge_csv`]: a module of its own, named
//! by path (`badge_csv::parse_csv`), as it reads CSV rows rather than JSON lines.

pub mod badge_csv;

use crate::badges::{BadgeDefinition, BadgeRule, RuleKind};
use crate::config::{ChannelSetting, ConfigError, Goal, GoalKind, Holdouts};
use crate::model::{
    to_micros, AppEvent, BadgeEvent, Channel, Message, Millis, OrderRecord, Record, Touch, MICROS_PER_UNIT,
};
use crate::validate::check_event_value;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// A line that could not be read.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct LineError {
    /// 1-based.
    pub line: usize,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigFileError {
    #[error("config file is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("tenant {tenant:?}: {message}")]
    Tenant { tenant: String, message: String },
}

/// One tenant's section of `config.json`, decoded and typed.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantConfigFile {
    pub tenant: String,
    pub settings: Vec<(Channel, ChannelSetting)>,
    pub currency: Option<String>,
    pub excluded_tags: Option<Vec<String>>,
    /// The TIME_DECAY half-life, when the file sets it.
    pub decay_half_life_ms: Option<Millis>,
    /// The holdout shares, when the file sets them (replacing the saved ones).
    pub holdouts: Option<Holdouts>,
    pub goals: Vec<Goal>,
    /// Badge definitions (docs/behaviour/badges.md), saved through the badge API.
    pub badges: Vec<BadgeDefinition>,
}

#[derive(Deserialize)]
struct RawConfig {
    tenants: BTreeMap<String, RawTenant>,
}

#[derive(Deserialize)]
struct RawTenant {
    #[serde(default)]
    settings: BTreeMap<String, RawSetting>,
    currency: Option<String>,
    excluded_tags: Option<Vec<String>>,
    decay_half_life_ms: Option<Millis>,
    holdouts: Option<RawHoldouts>,
    #[serde(default)]
    goals: Vec<RawGoal>,
    #[serde(default)]
    badges: Vec<RawBadge>,
}

/// `"holdouts": {"default_bp": 0, "campaigns": {"<campaign_id>": bp}}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoldouts {
    #[serde(default)]
    default_bp: u32,
    #[serde(default)]
    campaigns: BTreeMap<String, u32>,
}

#[derive(Deserialize, Serialize)]
struct RawBadge {
    id: String,
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    criteria: String,
    #[serde(default)]
    icon_url: String,
    #[serde(default)]
    rank: i64,
    #[serde(default)]
    benefits: Vec<String>,
    #[serde(default = "active_by_default")]
    active: bool,
    #[serde(default)]
    validity_ms: Option<Millis>,
    #[serde(default)]
    expires_at: Option<Millis>,
    #[serde(default)]
    rule: Option<RawRule>,
    #[serde(default)]
    retro: bool,
}

fn active_by_default() -> bool {
    true
}

#[derive(Deserialize, Serialize)]
struct RawRule {
    kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    event_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amount_minor: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    period_ms: Option<Millis>,
}

fn badge_from_raw(raw: RawBadge) -> Result<BadgeDefinition, String> {
    let RawBadge { id, name, description, criteria, icon_url, rank, benefits, active, validity_ms, expires_at, rule, retro } = raw;
    let rule = rule
        .map(|RawRule { kind, event_name, count, amount_minor, period_ms }| {
            let missing = |field: &str| format!("badge {id:?}: a {kind} rule needs {field}");
            let kind = match kind.as_str() {
                "EVENT_COUNT" => RuleKind::EventCount {
                    event_name: event_name.ok_or_else(|| missing("event_name"))?,
                    count: count.ok_or_else(|| missing("count"))?,
                },
                "ORDER_COUNT" => RuleKind::OrderCount { count: count.ok_or_else(|| missing("count"))? },
                "SPEND" => RuleKind::Spend { amount_minor: amount_minor.ok_or_else(|| missing("amount_minor"))? },
                other => {
                    return Err(format!("badge {id:?}: unknown rule kind {other:?} (expected EVENT_COUNT, ORDER_COUNT or SPEND)"));
                }
            };
            Ok(BadgeRule { kind, period_ms })
        })
        .transpose()?;
    Ok(BadgeDefinition {
        rule,
        retro,
        validity_ms,
        expires_at,
        ..BadgeDefinition { description, criteria, icon_url, rank, benefits, active, ..BadgeDefinition::new(&id, &name) }
    })
}

/// A badge definition as `config.json` writes it.
pub fn badge_to_json(badge: &BadgeDefinition) -> Value {
    let rule = badge.rule.as_ref().map(|BadgeRule { kind, period_ms }| {
        let (kind, event_name, count, amount_minor) = match kind {
            RuleKind::EventCount { event_name, count } => ("EVENT_COUNT", Some(event_name.clone()), Some(*count), None),
            RuleKind::OrderCount { count } => ("ORDER_COUNT", None, Some(*count), None),
            RuleKind::Spend { amount_minor } => ("SPEND", None, None, Some(*amount_minor)),
        };
        RawRule { kind: kind.to_owned(), event_name, count, amount_minor, period_ms: *period_ms }
    });
    let raw = RawBadge {
        id: badge.id.clone(),
        name: badge.name.clone(),
        description: badge.description.clone(),
        criteria: badge.criteria.clone(),
        icon_url: badge.icon_url.clone(),
        rank: badge.rank,
        benefits: badge.benefits.clone(),
        active: badge.active,
        validity_ms: badge.validity_ms,
        expires_at: badge.expires_at,
        rule,
        retro: badge.retro,
    };
    serde_json::to_value(raw).unwrap_or(Value::Null)
}

#[derive(Deserialize)]
struct RawSetting {
    connect_on: String,
    window_ms: Millis,
}

#[derive(Deserialize, Serialize)]
struct RawGoal {
    id: String,
    kind: String,
    #[serde(default)]
    statuses: Vec<String>,
    #[serde(default)]
    categories: Vec<String>,
    #[serde(default)]
    order_channels: Vec<String>,
    #[serde(default)]
    event_name: String,
}

fn goal_from_raw(raw: RawGoal) -> Result<Goal, String> {
    let RawGoal { id, kind, statuses, categories, order_channels, event_name } = raw;
    let kind = match kind.as_str() {
        "ORDER" => GoalKind::Order { statuses, categories, order_channels },
        "EVENT" => GoalKind::Event { event_name },
        other => return Err(format!("goal {id:?}: unknown kind {other:?} (expected ORDER or EVENT)")),
    };
    Ok(Goal { id, kind })
}

pub fn goal_to_json(goal: &Goal) -> Value {
    match &goal.kind {
        GoalKind::Order { statuses, categories, order_channels } => json!({
            "id": goal.id, "kind": "ORDER", "statuses": statuses,
            "categories": categories, "order_channels": order_channels,
        }),
        GoalKind::Event { event_name } => json!({"id": goal.id, "kind": "EVENT", "event_name": event_name}),
    }
}

/// Parses `config.json`; every tenant section must be well-formed.
pub fn parse_config(text: &str) -> Result<Vec<TenantConfigFile>, ConfigFileError> {
    let raw: RawConfig = serde_json::from_str(text)?;
    raw.tenants
        .into_iter()
        .map(|(tenant, raw)| {
            let fail = |message: String| ConfigFileError::Tenant { tenant: tenant.clone(), message };
            let mut settings = Vec::new();
            for (channel, setting) in raw.settings {
                let channel: Channel = channel.parse().map_err(|e: crate::model::UnknownVariant| fail(e.to_string()))?;
                let connect_on = setting.connect_on.parse().map_err(|e: crate::model::UnknownVariant| fail(e.to_string()))?;
                settings.push((channel, ChannelSetting { connect_on, window_ms: setting.window_ms }));
            }
            let goals = raw.goals.into_iter().map(goal_from_raw).collect::<Result<Vec<_>, _>>().map_err(fail)?;
            let badges = raw.badges.into_iter().map(badge_from_raw).collect::<Result<Vec<_>, _>>().map_err(fail)?;
            Ok(TenantConfigFile {
                tenant: tenant.clone(),
                settings,
                currency: raw.currency,
                excluded_tags: raw.excluded_tags,
                decay_half_life_ms: raw.decay_half_life_ms,
                holdouts: raw.holdouts.map(|RawHoldouts { default_bp, campaigns }| Holdouts { default_bp, campaigns }),
                goals,
                badges,
            })
        })
        .collect()
}

/// Applies a config file section to a tenant config, as the import does through the API.
pub fn apply_config_file(
    config: &mut crate::config::TenantConfig,
    file: &TenantConfigFile,
) -> Result<(), ConfigError> {
    for (channel, setting) in &file.settings {
        config.set_channel(*channel, *setting)?;
    }
    if let Some(currency) = &file.currency {
        config.set_currency(currency)?;
    }
    if let Some(tags) = &file.excluded_tags {
        config.set_excluded_tags(tags.clone());
    }
    if let Some(half_life_ms) = file.decay_half_life_ms {
        config.set_decay_half_life(half_life_ms)?;
    }
    if let Some(holdouts) = &file.holdouts {
        config.set_holdouts(holdouts.clone())?;
    }
    for goal in &file.goals {
        config.save_goal(goal.clone())?;
    }
    Ok(())
}

#[derive(Deserialize)]
struct RawMessage {
    tenant: String,
    msg_hash: String,
    #[serde(default)]
    campaign_id: Option<String>,
    channel: String,
    #[serde(default)]
    tags: Vec<String>,
    sent_at: Millis,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum RawRecord {
    Touch {
        tenant: String,
        event_id: String,
        msg_hash: String,
        customer_id: String,
        touch: String,
        ts: Millis,
    },
    Event {
        tenant: String,
        event_id: String,
        customer_id: String,
        name: String,
        ts: Millis,
        value: Option<f64>,
        msg_hash: Option<String>,
    },
    Order {
        tenant: String,
        event_id: String,
        order_id: String,
        customer_id: String,
        status: String,
        amount_minor: i64,
        currency: String,
        #[serde(default)]
        categories: Vec<String>,
        #[serde(default)]
        channel: String,
        ts: Millis,
        msg_hash: Option<String>,
    },
    Badge {
        tenant: String,
        event_id: String,
        customer_id: String,
        badge_id: String,
        action: String,
        ts: Millis,
        source: String,
        reason: Option<String>,
    },
}

fn parse_enum<T: std::str::FromStr<Err = crate::model::UnknownVariant>>(text: &str) -> Result<T, String> {
    text.parse().map_err(|e: crate::model::UnknownVariant| e.to_string())
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Parses one `messages.jsonl` line (without its number: see [`parse_lines`]).
pub fn parse_message(line: &str) -> Result<Message, String> {
    let RawMessage { tenant, msg_hash, campaign_id, channel, tags, sent_at } =
        serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(Message { tenant, msg_hash, campaign_id: campaign_id.unwrap_or_default(), channel: parse_enum(&channel)?, tags, sent_at })
}

/// Parses one `records.jsonl` line.
pub fn parse_record(line: &str) -> Result<Record, String> {
    let raw: RawRecord = serde_json::from_str(line).map_err(|e| e.to_string())?;
    Ok(match raw {
        RawRecord::Touch { tenant, event_id, msg_hash, customer_id, touch, ts } => {
            Record::Touch(Touch { tenant, event_id, msg_hash, customer_id, kind: parse_enum(&touch)?, ts })
        }
        RawRecord::Event { tenant, event_id, customer_id, name, ts, value, msg_hash } => {
            if let Some(value) = value {
                check_event_value(value).map_err(|e| e.to_string())?;
            }
            Record::Event(AppEvent {
                tenant,
                event_id,
                customer_id,
                name,
                ts,
                value_micros: value.map(to_micros),
                msg_hash: non_empty(msg_hash),
            })
        }
        RawRecord::Order { tenant, event_id, order_id, customer_id, status, amount_minor, currency, categories, channel, ts, msg_hash } => {
            Record::Order(OrderRecord {
                tenant,
                event_id,
                order_id,
                customer_id,
                status,
                amount_minor,
                currency,
                categories,
                channel,
                ts,
                msg_hash: non_empty(msg_hash),
            })
        }
        RawRecord::Badge { tenant, event_id, customer_id, badge_id, action, ts, source, reason } => Record::Badge(BadgeEvent {
            tenant,
            event_id,
            customer_id,
            badge_id,
            action: parse_enum(&action)?,
            ts,
            source: parse_enum(&source)?,
            reason: non_empty(reason),
        }),
    })
}

/// Parses every non-blank line of a JSONL text, each result with its 1-based line number.
pub fn parse_lines<'a, T>(
    text: &'a str,
    parse: impl Fn(&str) -> Result<T, String> + 'a,
) -> impl Iterator<Item = Result<(usize, T), LineError>> + 'a {
    text.lines().enumerate().filter(|(_, line)| !line.trim().is_empty()).map(move |(index, line)| {
        let line_no = index + 1;
        parse(line).map(|value| (line_no, value)).map_err(|message| LineError { line: line_no, message })
    })
}

/// One `messages.jsonl` line for a message.
pub fn message_to_json(message: &Message) -> Value {
    json!({
        "tenant": message.tenant, "msg_hash": message.msg_hash, "campaign_id": message.campaign_id,
        "channel": message.channel.as_str(), "tags": message.tags, "sent_at": message.sent_at,
    })
}

fn micros_to_json(micros: i64) -> Value {
    if micros % MICROS_PER_UNIT == 0 {
        json!(micros / MICROS_PER_UNIT)
    } else {
        json!(micros as f64 / MICROS_PER_UNIT as f64)
    }
}

/// One `records.jsonl` line for a record (messages go to `messages.jsonl`).
pub fn record_to_json(record: &Record) -> Value {
    match record {
        Record::Message(message) => message_to_json(message),
        Record::Touch(t) => json!({
            "type": "touch", "tenant": t.tenant, "event_id": t.event_id, "msg_hash": t.msg_hash,
            "customer_id": t.customer_id, "touch": t.kind.as_str(), "ts": t.ts,
        }),
        Record::Event(e) => {
            let mut line = json!({
                "type": "event", "tenant": e.tenant, "event_id": e.event_id,
                "customer_id": e.customer_id, "name": e.name, "ts": e.ts,
            });
            if let Some(value) = e.value_micros {
                line["value"] = micros_to_json(value);
            }
            if let Some(msg_hash) = &e.msg_hash {
                line["msg_hash"] = json!(msg_hash);
            }
            line
        }
        Record::Order(o) => {
            let mut line = json!({
                "type": "order", "tenant": o.tenant, "event_id": o.event_id, "order_id": o.order_id,
                "customer_id": o.customer_id, "status": o.status, "amount_minor": o.amount_minor,
                "currency": o.currency, "categories": o.categories, "channel": o.channel, "ts": o.ts,
            });
            if let Some(msg_hash) = &o.msg_hash {
                line["msg_hash"] = json!(msg_hash);
            }
            line
        }
        Record::Badge(b) => {
            let mut line = json!({
                "type": "badge", "tenant": b.tenant, "event_id": b.event_id, "customer_id": b.customer_id,
                "badge_id": b.badge_id, "action": b.action.as_str(), "ts": b.ts, "source": b.source.as_str(),
            });
            if let Some(reason) = &b.reason {
                line["reason"] = json!(reason);
            }
            line
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TenantConfig;
    use crate::model::TouchKind;

    #[test]
    fn records_round_trip_through_their_lines() {
        let lines = [
            r#"{"type":"touch","tenant":"t","event_id":"e1","msg_hash":"m","customer_id":"c","touch":"OPENED","ts":1700000000000}"#,
            r#"{"type":"event","tenant":"t","event_id":"e2","customer_id":"c","name":"watch","ts":1700000000001,"value":12.5,"msg_hash":"m"}"#,
            r#"{"type":"order","tenant":"t","event_id":"e3","order_id":"o","customer_id":"c","status":"PAID","amount_minor":1999,"currency":"USD","categories":["a"],"channel":"app","ts":1700000000002}"#,
            r#"{"type":"badge","tenant":"t","event_id":"e4","customer_id":"c","badge_id":"b","action":"EARNED","ts":1700000000003,"source":"RULE","reason":"10 checkins"}"#,
        ];
        for line in lines {
            let record = parse_record(line).unwrap();
            let again = parse_record(&record_to_json(&record).to_string()).unwrap();
            assert_eq!(again, record);
        }
    }

    #[test]
    fn unknown_fields_are_ignored() {
        let line = r#"{"type":"touch","tenant":"t","event_id":"e1","msg_hash":"m","customer_id":"c","touch":"SENT","ts":1,"sdk":"ios"}"#;
        assert!(matches!(parse_record(line), Ok(Record::Touch(Touch { kind: TouchKind::Sent, .. }))));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number_and_the_rest_still_parse() {
        let text = [
            r#"{"type":"touch","tenant":"t","event_id":"e1","msg_hash":"m","customer_id":"c","touch":"OPENED","ts":1}"#,
            "not json",
            "",
            r#"{"type":"touch","tenant":"t","event_id":"e2","msg_hash":"m","customer_id":"c","touch":"LICKED","ts":1}"#,
            r#"{"type":"order","tenant":"t","event_id":"e3"}"#,
            r#"{"type":"refund","tenant":"t"}"#,
            r#"{"type":"touch","tenant":"t","event_id":"e5","msg_hash":"m","customer_id":"c","touch":"CLICKED","ts":2}"#,
        ]
        .join("\n");
        let results: Vec<_> = parse_lines(&text, parse_record).collect();
        assert_eq!(results.len(), 6, "blank lines are skipped");
        assert!(matches!(results[0], Ok((1, _))));
        let errors: Vec<&LineError> = results.iter().filter_map(|r| r.as_ref().err()).collect();
        assert_eq!(errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2, 4, 5, 6]);
        assert!(errors[1].message.contains("unknown TouchKind \"LICKED\""), "{}", errors[1]);
        assert!(errors[2].message.contains("missing field"), "{}", errors[2]);
        assert!(errors[3].message.contains("unknown variant `refund`"), "{}", errors[3]);
        assert!(matches!(results[5], Ok((7, _))));
    }

    #[test]
    fn messages_parse_with_or_without_a_campaign() {
        let message = parse_message(r#"{"tenant":"t","msg_hash":"m","campaign_id":"","channel":"SMS","tags":[],"sent_at":5}"#).unwrap();
        assert_eq!(message.campaign_id, "");
        assert_eq!(message.channel, Channel::Sms);
        assert!(parse_message(r#"{"tenant":"t","msg_hash":"m","channel":"FAX","sent_at":5}"#).unwrap_err().contains("FAX"));
    }

    #[test]
    fn config_files_apply_like_the_api() {
        let text = r#"{"tenants": {"shop": {"settings": {"PUSH": {"connect_on": "OPENED", "window_ms": 3600000}},
            "currency": "EUR", "excluded_tags": ["transactional"],
            "goals": [{"id": "orders", "kind": "ORDER", "statuses": ["PLACED","PAID","DELIVERED"], "categories": [], "order_channels": []},
                      {"id": "checkin", "kind": "EVENT", "event_name": "checkin"}]}}}"#;
        let files = parse_config(text).unwrap();
        let mut config = TenantConfig::defaults("shop");
        apply_config_file(&mut config, &files[0]).unwrap();
        assert_eq!(config.currency, "EUR");
        assert_eq!(config.setting(Channel::Push).window_ms, 3_600_000);
        assert_eq!(config.goals.len(), 2);
        let bad = r#"{"tenants": {"shop": {"settings": {"FAX": {"connect_on": "OPENED", "window_ms": 1}}}}}"#;
        assert!(parse_config(bad).unwrap_err().to_string().contains("FAX"));
    }

    #[test]
    fn config_files_set_the_decay_half_life_and_holdouts() {
        let text = r#"{"tenants": {"shop": {"decay_half_life_ms": 86400000,
            "holdouts": {"default_bp": 1000, "campaigns": {"spring": 5000}}}}}"#;
        let files = parse_config(text).unwrap();
        let mut config = TenantConfig::defaults("shop");
        apply_config_file(&mut config, &files[0]).unwrap();
        assert_eq!(config.decay_half_life_ms, 86_400_000);
        assert_eq!((config.holdouts.bp("spring"), config.holdouts.bp("other")), (5_000, 1_000));
        // A file without them leaves them as they are.
        let mut kept = config.clone();
        apply_config_file(&mut kept, &parse_config(r#"{"tenants": {"shop": {"currency": "EUR"}}}"#).unwrap()[0]).unwrap();
        assert_eq!((kept.decay_half_life_ms, &kept.holdouts), (config.decay_half_life_ms, &config.holdouts));
        // Out of range: refused where applied, like the API; a misspelt key: refused as read.
        let over = parse_config(r#"{"tenants": {"shop": {"holdouts": {"campaigns": {"spring": 6000}}}}}"#).unwrap();
        assert!(matches!(apply_config_file(&mut config, &over[0]), Err(ConfigError::InvalidSetting(_))));
        let misspelt = parse_config(r#"{"tenants": {"shop": {"holdouts": {"default": 100}}}}"#).unwrap_err().to_string();
        assert!(misspelt.contains("default"), "{misspelt}");
    }
}
