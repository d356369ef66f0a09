//! Conversions between the wire types and the domain core. Every conversion destructures
//! all fields, so a field added to either side breaks the build instead of being dropped.

use crate::v1 as pb;
use touchstone_core::attribution::Rule;
use touchstone_core::badges::{BadgeDefinition, BadgeRule, Progress, RuleKind, TimelineEntry, TrophyCase, TrophyHeld, TrophyLocked};
use touchstone_core::config::{ChannelSetting, Goal, GoalKind, Holdouts, TenantConfig};
use touchstone_core::models::Model;
use touchstone_core::model::{
    self, to_micros, AppEvent, BadgeAction, BadgeEvent, BadgeSource, Channel, Message, OrderRecord, Record,
    Touch, TouchKind,
};
use touchstone_core::validate::check_event_value;

pub mod reports;

/// A wire value that has no domain meaning.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConvertError {
    #[error("{field}: unknown enum value {value}")]
    UnknownEnum { field: &'static str, value: i32 },
    #[error("{0} is unset")]
    Unset(&'static str),
    #[error("{0}")]
    Invalid(#[from] touchstone_core::validate::InvalidRecord),
}


impl touchstone_core::error::ServiceError for ConvertError {
    fn kind(&self) -> touchstone_core::error::ErrorKind {
        touchstone_core::error::ErrorKind::InvalidArgument
    }

    fn field(&self) -> Option<&str> {
        match self {
            ConvertError::UnknownEnum { field, .. } | ConvertError::Unset(field) => Some(field),
            ConvertError::Invalid(invalid) => invalid.field(),
        }
    }
}

fn enum_value<T: TryFrom<i32>>(field: &'static str, value: i32) -> Result<T, ConvertError> {
    T::try_from(value).map_err(|_| ConvertError::UnknownEnum { field, value })
}

pub fn channel_from_pb(field: &'static str, value: i32) -> Result<Channel, ConvertError> {
    match enum_value(field, value)? {
        pb::Channel::Push => Ok(Channel::Push),
        pb::Channel::Email => Ok(Channel::Email),
        pb::Channel::Sms => Ok(Channel::Sms),
        pb::Channel::InApp => Ok(Channel::InApp),
        pb::Channel::Unspecified => Err(ConvertError::Unset(field)),
    }
}

pub fn channel_to_pb(channel: Channel) -> pb::Channel {
    match channel {
        Channel::Push => pb::Channel::Push,
        Channel::Email => pb::Channel::Email,
        Channel::Sms => pb::Channel::Sms,
        Channel::InApp => pb::Channel::InApp,
    }
}

pub fn touch_kind_from_pb(field: &'static str, value: i32) -> Result<TouchKind, ConvertError> {
    match enum_value(field, value)? {
        pb::TouchKind::Sent => Ok(TouchKind::Sent),
        pb::TouchKind::Delivered => Ok(TouchKind::Delivered),
        pb::TouchKind::Opened => Ok(TouchKind::Opened),
        pb::TouchKind::Clicked => Ok(TouchKind::Clicked),
        pb::TouchKind::HeldOut => Ok(TouchKind::HeldOut),
        pb::TouchKind::Unspecified => Err(ConvertError::Unset(field)),
    }
}

/// The model of a wire value; `None` for one this build does not know (or unset).
pub fn model_from_pb(value: i32) -> Option<Model> {
    match pb::AttributionModel::try_from(value).ok()? {
        pb::AttributionModel::LastTouch => Some(Model::LastTouch),
        pb::AttributionModel::FirstTouch => Some(Model::FirstTouch),
        pb::AttributionModel::Linear => Some(Model::Linear),
        pb::AttributionModel::PositionBased => Some(Model::PositionBased),
        pb::AttributionModel::TimeDecay => Some(Model::TimeDecay),
        pb::AttributionModel::Unspecified => None,
    }
}

pub fn model_to_pb(model: Model) -> pb::AttributionModel {
    match model {
        Model::LastTouch => pb::AttributionModel::LastTouch,
        Model::FirstTouch => pb::AttributionModel::FirstTouch,
        Model::Linear => pb::AttributionModel::Linear,
        Model::PositionBased => pb::AttributionModel::PositionBased,
        Model::TimeDecay => pb::AttributionModel::TimeDecay,
    }
}

pub fn touch_kind_to_pb(kind: TouchKind) -> pb::TouchKind {
    match kind {
        TouchKind::Sent => pb::TouchKind::Sent,
        TouchKind::Delivered => pb::TouchKind::Delivered,
        TouchKind::Opened => pb::TouchKind::Opened,
        TouchKind::Clicked => pb::TouchKind::Clicked,
        TouchKind::HeldOut => pb::TouchKind::HeldOut,
    }
}

pub fn badge_action_from_pb(value: i32) -> Result<BadgeAction, ConvertError> {
    match enum_value("action", value)? {
        pb::BadgeAction::Earned => Ok(BadgeAction::Earned),
        pb::BadgeAction::Revoked => Ok(BadgeAction::Revoked),
        pb::BadgeAction::Expired => Ok(BadgeAction::Expired),
        pb::BadgeAction::Unspecified => Err(ConvertError::Unset("action")),
    }
}

pub fn badge_action_to_pb(action: BadgeAction) -> pb::BadgeAction {
    match action {
        BadgeAction::Earned => pb::BadgeAction::Earned,
        BadgeAction::Revoked => pb::BadgeAction::Revoked,
        BadgeAction::Expired => pb::BadgeAction::Expired,
    }
}

pub fn badge_source_from_pb(value: i32) -> Result<BadgeSource, ConvertError> {
    match enum_value("source", value)? {
        pb::BadgeSource::Api => Ok(BadgeSource::Api),
        pb::BadgeSource::Rule => Ok(BadgeSource::Rule),
        pb::BadgeSource::DirectIssue => Ok(BadgeSource::DirectIssue),
        pb::BadgeSource::BulkImport => Ok(BadgeSource::BulkImport),
        pb::BadgeSource::RetroEarn => Ok(BadgeSource::RetroEarn),
        pb::BadgeSource::Migration => Ok(BadgeSource::Migration),
        pb::BadgeSource::Unspecified => Err(ConvertError::Unset("source")),
    }
}

pub fn badge_source_to_pb(source: BadgeSource) -> pb::BadgeSource {
    match source {
        BadgeSource::Api => pb::BadgeSource::Api,
        BadgeSource::Rule => pb::BadgeSource::Rule,
        BadgeSource::DirectIssue => pb::BadgeSource::DirectIssue,
        BadgeSource::BulkImport => pb::BadgeSource::BulkImport,
        BadgeSource::RetroEarn => pb::BadgeSource::RetroEarn,
        BadgeSource::Migration => pb::BadgeSource::Migration,
    }
}

pub fn rule_to_pb(rule: Rule) -> pb::AttributionRule {
    match rule {
        Rule::Explicit => pb::AttributionRule::Explicit,
        Rule::LastTouch => pb::AttributionRule::LastTouch,
        Rule::Unattributed => pb::AttributionRule::Unattributed,
    }
}

/// An empty optional string on the wire means "absent".
fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

impl TryFrom<pb::Message> for Message {
    type Error = ConvertError;
    fn try_from(message: pb::Message) -> Result<Self, ConvertError> {
        let pb::Message { tenant, msg_hash, campaign_id, channel, tags, sent_at } = message;
        Ok(Message { tenant, msg_hash, campaign_id, channel: channel_from_pb("channel", channel)?, tags, sent_at })
    }
}

impl From<Message> for pb::Message {
    fn from(message: Message) -> Self {
        let Message { tenant, msg_hash, campaign_id, channel, tags, sent_at } = message;
        pb::Message { tenant, msg_hash, campaign_id, channel: channel_to_pb(channel).into(), tags, sent_at }
    }
}

impl TryFrom<pb::Touch> for Touch {
    type Error = ConvertError;
    fn try_from(touch: pb::Touch) -> Result<Self, ConvertError> {
        let pb::Touch { tenant, event_id, msg_hash, customer_id, touch, ts } = touch;
        Ok(Touch { tenant, event_id, msg_hash, customer_id, kind: touch_kind_from_pb("touch", touch)?, ts })
    }
}

impl From<Touch> for pb::Touch {
    fn from(touch: Touch) -> Self {
        let Touch { tenant, event_id, msg_hash, customer_id, kind, ts } = touch;
        pb::Touch { tenant, event_id, msg_hash, customer_id, touch: touch_kind_to_pb(kind).into(), ts }
    }
}

impl TryFrom<pb::AppEvent> for AppEvent {
    type Error = ConvertError;
    fn try_from(event: pb::AppEvent) -> Result<Self, ConvertError> {
        let pb::AppEvent { tenant, event_id, customer_id, name, ts, value, msg_hash } = event;
        if let Some(value) = value {
            check_event_value(value)?;
        }
        Ok(AppEvent {
            tenant,
            event_id,
            customer_id,
            name,
            ts,
            value_micros: value.map(to_micros),
            msg_hash: non_empty(msg_hash),
        })
    }
}

impl From<AppEvent> for pb::AppEvent {
    fn from(event: AppEvent) -> Self {
        let AppEvent { tenant, event_id, customer_id, name, ts, value_micros, msg_hash } = event;
        pb::AppEvent {
            tenant,
            event_id,
            customer_id,
            name,
            ts,
            value: value_micros.map(|m| m as f64 / model::MICROS_PER_UNIT as f64),
            msg_hash,
        }
    }
}

impl From<pb::OrderRecord> for OrderRecord {
    fn from(order: pb::OrderRecord) -> Self {
        let pb::OrderRecord {
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
            msg_hash,
        } = order;
        OrderRecord {
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
        }
    }
}

impl From<OrderRecord> for pb::OrderRecord {
    fn from(order: OrderRecord) -> Self {
        let OrderRecord {
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
            msg_hash,
        } = order;
        pb::OrderRecord {
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
            msg_hash,
        }
    }
}

impl TryFrom<pb::BadgeEvent> for BadgeEvent {
    type Error = ConvertError;
    fn try_from(badge: pb::BadgeEvent) -> Result<Self, ConvertError> {
        let pb::BadgeEvent { tenant, event_id, customer_id, badge_id, action, ts, source, reason } = badge;
        Ok(BadgeEvent {
            tenant,
            event_id,
            customer_id,
            badge_id,
            action: badge_action_from_pb(action)?,
            ts,
            source: badge_source_from_pb(source)?,
            reason: non_empty(reason),
        })
    }
}

impl From<BadgeEvent> for pb::BadgeEvent {
    fn from(badge: BadgeEvent) -> Self {
        let BadgeEvent { tenant, event_id, customer_id, badge_id, action, ts, source, reason } = badge;
        pb::BadgeEvent {
            tenant,
            event_id,
            customer_id,
            badge_id,
            action: badge_action_to_pb(action).into(),
            ts,
            source: badge_source_to_pb(source).into(),
            reason,
        }
    }
}

impl TryFrom<pb::Record> for Record {
    type Error = ConvertError;
    fn try_from(record: pb::Record) -> Result<Self, ConvertError> {
        let pb::Record { kind } = record;
        match kind.ok_or(ConvertError::Unset("record"))? {
            pb::record::Kind::Message(m) => Ok(Record::Message(m.try_into()?)),
            pb::record::Kind::Touch(t) => Ok(Record::Touch(t.try_into()?)),
            pb::record::Kind::Event(e) => Ok(Record::Event(e.try_into()?)),
            pb::record::Kind::Order(o) => Ok(Record::Order(o.into())),
            pb::record::Kind::Badge(b) => Ok(Record::Badge(b.try_into()?)),
        }
    }
}

impl From<Record> for pb::Record {
    fn from(record: Record) -> Self {
        let kind = match record {
            Record::Message(m) => pb::record::Kind::Message(m.into()),
            Record::Touch(t) => pb::record::Kind::Touch(t.into()),
            Record::Event(e) => pb::record::Kind::Event(e.into()),
            Record::Order(o) => pb::record::Kind::Order(o.into()),
            Record::Badge(b) => pb::record::Kind::Badge(b.into()),
        };
        pb::Record { kind: Some(kind) }
    }
}

pub fn channel_setting_from_pb(setting: pb::ChannelSetting) -> Result<(Channel, ChannelSetting), ConvertError> {
    let pb::ChannelSetting { channel, connect_on, window_ms } = setting;
    Ok((
        channel_from_pb("channel", channel)?,
        ChannelSetting { connect_on: touch_kind_from_pb("connect_on", connect_on)?, window_ms },
    ))
}

impl TryFrom<pb::Goal> for Goal {
    type Error = ConvertError;
    fn try_from(goal: pb::Goal) -> Result<Self, ConvertError> {
        let pb::Goal { id, kind, statuses, categories, order_channels, event_name } = goal;
        let kind = match enum_value("kind", kind)? {
            pb::GoalKind::Order => GoalKind::Order { statuses, categories, order_channels },
            pb::GoalKind::Event => GoalKind::Event { event_name },
            pb::GoalKind::Unspecified => return Err(ConvertError::Unset("kind")),
        };
        Ok(Goal { id, kind })
    }
}

impl From<Goal> for pb::Goal {
    fn from(goal: Goal) -> Self {
        let Goal { id, kind } = goal;
        match kind {
            GoalKind::Order { statuses, categories, order_channels } => pb::Goal {
                id,
                kind: pb::GoalKind::Order.into(),
                statuses,
                categories,
                order_channels,
                event_name: String::new(),
            },
            GoalKind::Event { event_name } => pb::Goal {
                id,
                kind: pb::GoalKind::Event.into(),
                statuses: Vec::new(),
                categories: Vec::new(),
                order_channels: Vec::new(),
                event_name,
            },
        }
    }
}

impl From<TenantConfig> for pb::TenantConfig {
    fn from(config: TenantConfig) -> Self {
        let TenantConfig { tenant, settings, currency, excluded_tags, goals, version, decay_half_life_ms, holdouts } = config;
        pb::TenantConfig {
            tenant,
            settings: settings
                .into_iter()
                .map(|(channel, ChannelSetting { connect_on, window_ms })| pb::ChannelSetting {
                    channel: channel_to_pb(channel).into(),
                    connect_on: touch_kind_to_pb(connect_on).into(),
                    window_ms,
                })
                .collect(),
            currency,
            excluded_tags,
            goals: goals.into_iter().map(Into::into).collect(),
            version,
            decay_half_life_ms,
            holdouts: Some(holdouts.into()),
        }
    }
}

impl From<Holdouts> for pb::Holdouts {
    fn from(holdouts: Holdouts) -> Self {
        let Holdouts { default_bp, campaigns } = holdouts;
        pb::Holdouts { default_bp, campaigns: campaigns.into_iter().collect() }
    }
}

impl From<pb::Holdouts> for Holdouts {
    fn from(holdouts: pb::Holdouts) -> Self {
        let pb::Holdouts { default_bp, campaigns } = holdouts;
        Holdouts { default_bp, campaigns: campaigns.into_iter().collect() }
    }
}

impl TryFrom<pb::BadgeRule> for BadgeRule {
    type Error = ConvertError;
    fn try_from(rule: pb::BadgeRule) -> Result<Self, ConvertError> {
        let pb::BadgeRule { kind, event_name, count, amount_minor, period_ms } = rule;
        let kind = match enum_value("badge.rule.kind", kind)? {
            pb::BadgeRuleKind::EventCount => RuleKind::EventCount { event_name, count },
            pb::BadgeRuleKind::OrderCount => RuleKind::OrderCount { count },
            pb::BadgeRuleKind::Spend => RuleKind::Spend { amount_minor },
            pb::BadgeRuleKind::Unspecified => return Err(ConvertError::Unset("badge.rule.kind")),
        };
        Ok(BadgeRule { kind, period_ms })
    }
}

impl From<BadgeRule> for pb::BadgeRule {
    fn from(rule: BadgeRule) -> Self {
        let BadgeRule { kind, period_ms } = rule;
        let empty = pb::BadgeRule { period_ms, ..Default::default() };
        match kind {
            RuleKind::EventCount { event_name, count } => {
                pb::BadgeRule { kind: pb::BadgeRuleKind::EventCount.into(), event_name, count, ..empty }
            }
            RuleKind::OrderCount { count } => pb::BadgeRule { kind: pb::BadgeRuleKind::OrderCount.into(), count, ..empty },
            RuleKind::Spend { amount_minor } => pb::BadgeRule { kind: pb::BadgeRuleKind::Spend.into(), amount_minor, ..empty },
        }
    }
}

/// A definition as a client sends it: the server-set times (`rule_saved_at`, when the badge
/// was deactivated) are the server's own and ignored here.
impl TryFrom<pb::BadgeDefinition> for BadgeDefinition {
    type Error = ConvertError;
    fn try_from(badge: pb::BadgeDefinition) -> Result<Self, ConvertError> {
        let pb::BadgeDefinition {
            id, name, description, criteria, icon_url, rank, benefits, active, validity_ms, expires_at, rule, retro,
            rule_saved_at: _, inactive_since: _,
        } = badge;
        Ok(BadgeDefinition {
            id,
            name,
            description,
            criteria,
            icon_url,
            rank,
            benefits,
            active,
            validity_ms,
            expires_at,
            rule: rule.map(BadgeRule::try_from).transpose()?,
            retro,
            rule_saved_at: None,
            inactive_since: None,
        })
    }
}

impl From<BadgeDefinition> for pb::BadgeDefinition {
    fn from(badge: BadgeDefinition) -> Self {
        let BadgeDefinition {
            id, name, description, criteria, icon_url, rank, benefits, active, validity_ms, expires_at, rule, retro,
            rule_saved_at, inactive_since,
        } = badge;
        pb::BadgeDefinition {
            id,
            name,
            description,
            criteria,
            icon_url,
            rank,
            benefits,
            active,
            validity_ms,
            expires_at,
            rule: rule.map(Into::into),
            retro,
            rule_saved_at,
            inactive_since,
        }
    }
}

impl From<TimelineEntry> for pb::BadgeTimelineEntry {
    fn from(entry: TimelineEntry) -> Self {
        let TimelineEntry { event_id, badge_id, action, ts, source, reason } = entry;
        pb::BadgeTimelineEntry {
            event_id,
            badge_id,
            action: badge_action_to_pb(action).into(),
            ts,
            source: badge_source_to_pb(source).into(),
            reason,
        }
    }
}

impl From<TrophyCase> for pb::TrophyCase {
    fn from(case: TrophyCase) -> Self {
        let TrophyCase { held, locked } = case;
        let held = held
            .into_iter()
            .map(|TrophyHeld { badge_id, name, rank, earned_at, expires_at }| pb::HeldBadge { badge_id, name, rank, earned_at, expires_at })
            .collect();
        let locked = locked
            .into_iter()
            .map(|TrophyLocked { badge_id, name, rank, criteria, progress }| pb::LockedBadge {
                badge_id,
                name,
                rank,
                criteria,
                progress: progress.map(|Progress { current, target }| pb::BadgeProgress { current, target, currency: String::new() }),
            })
            .collect();
        pb::TrophyCase { held, locked }
    }
}

pub fn decimal(micros: i128) -> pb::Decimal {
    pb::Decimal { value: model::format_micros(micros) }
}

pub fn tally(tally: touchstone_core::rollup::Tally) -> pb::Tally {
    let touchstone_core::rollup::Tally { count, value_micros } = tally;
    pb::Tally { conversions: count.max(0) as u64, value: Some(decimal(value_micros)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_the_wire_types() {
        let records = vec![
            Record::Message(Message {
                tenant: "t".into(),
                msg_hash: "m".into(),
                campaign_id: "c".into(),
                channel: Channel::InApp,
                tags: vec!["x".into()],
                sent_at: 5,
            }),
            Record::Touch(Touch {
                tenant: "t".into(),
                event_id: "e".into(),
                msg_hash: "m".into(),
                customer_id: "u".into(),
                kind: TouchKind::Clicked,
                ts: 6,
            }),
            Record::Event(AppEvent {
                tenant: "t".into(),
                event_id: "e2".into(),
                customer_id: "u".into(),
                name: "watch".into(),
                ts: 7,
                value_micros: Some(12_500_000),
                msg_hash: Some("m".into()),
            }),
            Record::Badge(BadgeEvent {
                tenant: "t".into(),
                event_id: "e3".into(),
                customer_id: "u".into(),
                badge_id: "gold".into(),
                action: BadgeAction::Revoked,
                ts: 8,
                source: BadgeSource::RetroEarn,
                reason: Some("why".into()),
            }),
        ];
        for record in records {
            let wire = pb::Record::from(record.clone());
            assert_eq!(Record::try_from(wire), Ok(record));
        }
    }

    #[test]
    fn unknown_and_unset_enums_are_named_errors() {
        let touch = pb::Touch { touch: 42, ..Default::default() };
        assert_eq!(Touch::try_from(touch), Err(ConvertError::UnknownEnum { field: "touch", value: 42 }));
        let message = pb::Message::default();
        assert_eq!(Message::try_from(message), Err(ConvertError::Unset("channel")));
        assert_eq!(Record::try_from(pb::Record::default()), Err(ConvertError::Unset("record")));
    }

    #[test]
    fn goals_round_trip() {
        for goal in [Goal::default_orders(), Goal { id: "c".into(), kind: GoalKind::Event { event_name: "checkin".into() } }] {
            assert_eq!(Goal::try_from(pb::Goal::from(goal.clone())), Ok(goal));
        }
    }
}
