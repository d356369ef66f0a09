//! Per-tenant configuration (docs/behaviour/records-and-config.md): attribution settings per channel, currency,
//! excluded tags and goals, with the rules for changing them.

use crate::model::{Channel, MICROS_PER_UNIT, Micros, Millis, TouchKind};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

pub const MAX_GOALS: usize = 5;
pub const DEFAULT_GOAL_ID: &str = "orders";
pub const DEFAULT_CURRENCY: &str = "USD";
/// The longest window a channel may have: a year. Longer windows would make a late touch
/// re-credit an unbounded stretch of history.
pub const MAX_WINDOW_MS: Millis = 366 * DAY_MS;
const HOUR_MS: Millis = 3_600_000;
const DAY_MS: Millis = 24 * HOUR_MS;

/// How one channel connects a message to a conversion.
/// The default `decay_half_life_ms` (the time decay model's): 7 days.
pub const DEFAULT_HALF_LIFE_MS: Millis = 7 * 24 * 3_600_000;
/// The shortest `decay_half_life_ms` a tenant may set: a minute.
pub const MIN_HALF_LIFE_MS: Millis = 60_000;
/// The largest holdout share, in basis points: half of a campaign's audience.
pub const MAX_HOLDOUT_BP: u32 = 5_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelSetting {
    pub connect_on: TouchKind,
    pub window_ms: Millis,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum GoalKind {
    Order {
        statuses: Vec<String>,
        /// Empty = any category.
        categories: Vec<String>,
        /// Empty = any order channel.
        order_channels: Vec<String>,
    },
    Event {
        event_name: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Goal {
    pub id: String,
    pub kind: GoalKind,
}

impl Goal {
    /// How many millionths make a whole unit of this goal's values, the unit credited value
    /// is split in: an ORDER goal's values are amounts in minor units, an EVENT goal's are
    /// counted in millionths.
    pub fn micros_per_unit(&self) -> Micros {
        match self.kind {
            GoalKind::Order { .. } => MICROS_PER_UNIT,
            GoalKind::Event { .. } => 1,
        }
    }

    /// The goal every tenant has.
    pub fn default_orders() -> Goal {
        Goal {
            id: DEFAULT_GOAL_ID.to_owned(),
            kind: GoalKind::Order {
                statuses: ["PLACED", "PAID", "DELIVERED"].map(str::to_owned).to_vec(),
                categories: Vec::new(),
                order_channels: Vec::new(),
            },
        }
    }

    /// The same goal with its lists sorted and deduplicated, so that saving the same
    /// definition in another order is recognised as identical.
    pub fn normalized(mut self) -> Goal {
        if let GoalKind::Order { statuses, categories, order_channels } = &mut self.kind {
            for list in [statuses, categories, order_channels] {
                list.sort();
                list.dedup();
            }
        }
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenantConfig {
    pub tenant: String,
    pub settings: BTreeMap<Channel, ChannelSetting>,
    pub currency: String,
    pub excluded_tags: Vec<String>,
    /// The default goal first, then the others in creation order.
    pub goals: Vec<Goal>,
    /// Bumped on every change; stores save with compare-and-set on it.
    pub version: u64,
    /// The TIME_DECAY model's half-life.
    pub decay_half_life_ms: Millis,
    /// Which customers each campaign holds out.
    pub holdouts: Holdouts,
}

/// Holdout shares in basis points ([`crate::lift::held_out`] applies them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holdouts {
    pub default_bp: u32,
    /// By campaign id: that campaign's share instead of the default.
    pub campaigns: BTreeMap<String, u32>,
}

impl Holdouts {
    /// A campaign's share: its own, else the default.
    pub fn bp(&self, campaign_id: &str) -> u32 {
        self.campaigns.get(campaign_id).copied().unwrap_or(self.default_bp)
    }
}

/// A configuration as stored before the model and holdout settings were added. Stores
/// encode configurations with postcard, which has no optional fields: they decode this when
/// the current layout does not fit, and it reads as the defaults of the new settings.
#[derive(Debug, Deserialize)]
pub struct TenantConfigBeforeModels {
    tenant: String,
    settings: BTreeMap<Channel, ChannelSetting>,
    currency: String,
    excluded_tags: Vec<String>,
    goals: Vec<Goal>,
    version: u64,
}

impl From<TenantConfigBeforeModels> for TenantConfig {
    fn from(old: TenantConfigBeforeModels) -> TenantConfig {
        let TenantConfigBeforeModels { tenant, settings, currency, excluded_tags, goals, version } = old;
        TenantConfig {
            tenant,
            settings,
            currency,
            excluded_tags,
            goals,
            version,
            decay_half_life_ms: DEFAULT_HALF_LIFE_MS,
            holdouts: Holdouts::default(),
        }
    }
}

/// What a configuration change was refused for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("tenant already has {MAX_GOALS} goals (the default `orders` included); delete one first")]
    TooManyGoals,
    #[error("goal {0:?} is already saved with a different definition; goals cannot be changed, only deleted")]
    GoalChanged(String),
    #[error("goal {0:?} does not exist")]
    GoalNotFound(String),
    #[error("the default goal `orders` cannot be deleted")]
    DefaultGoalUndeletable,
    #[error("invalid goal: {0}")]
    InvalidGoal(String),
    #[error("invalid setting: {0}")]
    InvalidSetting(String),
}

/// Whether saving a goal created it or found it already saved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GoalSaved {
    Created,
    AlreadySaved,
}

impl TenantConfig {
    /// A tenant's configuration before anything was saved: sensible per-channel defaults,
    /// USD, no excluded tags, the default goal.
    pub fn defaults(tenant: &str) -> TenantConfig {
        let setting = |connect_on, window_ms| ChannelSetting { connect_on, window_ms };
        TenantConfig {
            tenant: tenant.to_owned(),
            settings: BTreeMap::from([
                (Channel::Push, setting(TouchKind::Opened, DAY_MS)),
                (Channel::Email, setting(TouchKind::Clicked, 7 * DAY_MS)),
                (Channel::Sms, setting(TouchKind::Clicked, DAY_MS)),
                (Channel::InApp, setting(TouchKind::Opened, DAY_MS)),
            ]),
            currency: DEFAULT_CURRENCY.to_owned(),
            excluded_tags: Vec::new(),
            goals: vec![Goal::default_orders()],
            version: 0,
            decay_half_life_ms: DEFAULT_HALF_LIFE_MS,
            holdouts: Holdouts::default(),
        }
    }

    pub fn setting(&self, channel: Channel) -> ChannelSetting {
        // Every config holds all four channels; defaults() fills them and set_channel keeps them.
        self.settings.get(&channel).copied().unwrap_or(ChannelSetting {
            connect_on: TouchKind::Opened,
            window_ms: DAY_MS,
        })
    }

    /// The longest window of any channel: how far back a conversion's candidate touches go.
    pub fn max_window_ms(&self) -> Millis {
        self.settings.values().map(|s| s.window_ms).max().unwrap_or(0)
    }

    pub fn goal(&self, goal_id: &str) -> Option<&Goal> {
        self.goals.iter().find(|g| g.id == goal_id)
    }

    pub fn is_excluded(&self, tags: &[String]) -> bool {
        tags.iter().any(|tag| self.excluded_tags.contains(tag))
    }

    pub fn set_channel(&mut self, channel: Channel, setting: ChannelSetting) -> Result<(), ConfigError> {
        if !(0..=MAX_WINDOW_MS).contains(&setting.window_ms) {
            return Err(ConfigError::InvalidSetting(format!(
                "{channel} window_ms {} must be between 0 and {MAX_WINDOW_MS} (366 days)",
                setting.window_ms
            )));
        }
        if setting.connect_on == TouchKind::HeldOut {
            return Err(ConfigError::InvalidSetting(format!(
                "{channel} cannot connect on HELD_OUT: a held-out customer was not sent the message, so it is never credited"
            )));
        }
        self.settings.insert(channel, setting);
        Ok(())
    }

    /// Sets the TIME_DECAY half-life: at least a minute.
    pub fn set_decay_half_life(&mut self, half_life_ms: Millis) -> Result<(), ConfigError> {
        if half_life_ms < MIN_HALF_LIFE_MS {
            return Err(ConfigError::InvalidSetting(format!(
                "decay_half_life_ms {half_life_ms} must be at least {} (a minute)",
                MIN_HALF_LIFE_MS
            )));
        }
        self.decay_half_life_ms = half_life_ms;
        Ok(())
    }

    /// Replaces the holdout shares: each 0 to 5,000 basis points, campaigns named.
    pub fn set_holdouts(&mut self, holdouts: Holdouts) -> Result<(), ConfigError> {
        let max = MAX_HOLDOUT_BP;
        if holdouts.default_bp > max {
            return Err(ConfigError::InvalidSetting(format!("holdouts default_bp {} must be between 0 and {max}", holdouts.default_bp)));
        }
        for (campaign_id, &bp) in &holdouts.campaigns {
            if campaign_id.is_empty() {
                return Err(ConfigError::InvalidSetting("holdouts name a campaign with an empty id".to_owned()));
            }
            if bp > max {
                return Err(ConfigError::InvalidSetting(format!("holdouts for campaign {campaign_id:?}: {bp} bp must be between 0 and {max}")));
            }
        }
        self.holdouts = holdouts;
        Ok(())
    }

    pub fn set_currency(&mut self, currency: &str) -> Result<(), ConfigError> {
        if !crate::validate::is_currency_code(currency) {
            return Err(ConfigError::InvalidSetting(format!(
                "currency {currency:?} must be an ISO 4217 code such as USD"
            )));
        }
        currency.clone_into(&mut self.currency);
        Ok(())
    }

    pub fn set_excluded_tags(&mut self, mut tags: Vec<String>) {
        tags.sort();
        tags.dedup();
        self.excluded_tags = tags;
    }

    /// Saves a goal: identical to a saved one is accepted, a different one under a saved
    /// id refused, a sixth refused.
    pub fn save_goal(&mut self, goal: Goal) -> Result<GoalSaved, ConfigError> {
        validate_goal(&goal)?;
        let goal = goal.normalized();
        if let Some(saved) = self.goal(&goal.id) {
            return if saved.clone().normalized() == goal {
                Ok(GoalSaved::AlreadySaved)
            } else {
                Err(ConfigError::GoalChanged(goal.id))
            };
        }
        if self.goals.len() >= MAX_GOALS {
            return Err(ConfigError::TooManyGoals);
        }
        self.goals.push(goal);
        Ok(GoalSaved::Created)
    }

    pub fn delete_goal(&mut self, goal_id: &str) -> Result<(), ConfigError> {
        if goal_id == DEFAULT_GOAL_ID {
            return Err(ConfigError::DefaultGoalUndeletable);
        }
        let before = self.goals.len();
        self.goals.retain(|g| g.id != goal_id);
        if self.goals.len() == before {
            return Err(ConfigError::GoalNotFound(goal_id.to_owned()));
        }
        Ok(())
    }
}

fn validate_goal(goal: &Goal) -> Result<(), ConfigError> {
    let id_ok = !goal.id.is_empty()
        && goal.id.len() <= 64
        && goal.id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-' || b == b'.');
    if !id_ok {
        return Err(ConfigError::InvalidGoal(format!(
            "id {:?} must be 1-64 characters of letters, digits, '_', '-' or '.'",
            goal.id
        )));
    }
    match &goal.kind {
        GoalKind::Order { statuses, .. } if statuses.iter().all(|s| s.is_empty()) => Err(
            ConfigError::InvalidGoal(format!("ORDER goal {:?} needs at least one status", goal.id)),
        ),
        GoalKind::Event { event_name } if event_name.is_empty() => Err(ConfigError::InvalidGoal(
            format!("EVENT goal {:?} needs an event_name", goal.id),
        )),
        GoalKind::Order { .. } | GoalKind::Event { .. } => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event_goal(id: &str, name: &str) -> Goal {
        Goal { id: id.into(), kind: GoalKind::Event { event_name: name.into() } }
    }

    #[test]
    fn every_tenant_starts_with_the_default_orders_goal() {
        let config = TenantConfig::defaults("t");
        assert_eq!(config.goals, vec![Goal::default_orders()]);
        assert_eq!(config.settings.len(), 4);
    }

    #[test]
    fn a_sixth_goal_is_refused_and_nothing_changes() {
        let mut config = TenantConfig::defaults("t");
        for i in 0..4 {
            assert_eq!(config.save_goal(event_goal(&format!("g{i}"), "x")), Ok(GoalSaved::Created));
        }
        let before = config.clone();
        assert_eq!(config.save_goal(event_goal("g5", "x")), Err(ConfigError::TooManyGoals));
        assert_eq!(config, before);
    }

    #[test]
    fn saving_an_identical_goal_again_is_idempotent_even_reordered() {
        let mut config = TenantConfig::defaults("t");
        let reordered = Goal {
            id: "orders".into(),
            kind: GoalKind::Order {
                statuses: vec!["DELIVERED".into(), "PLACED".into(), "PAID".into()],
                categories: vec![],
                order_channels: vec![],
            },
        };
        assert_eq!(config.save_goal(reordered), Ok(GoalSaved::AlreadySaved));
        assert_eq!(config.goals.len(), 1);
    }

    #[test]
    fn changing_a_saved_goal_is_refused() {
        let mut config = TenantConfig::defaults("t");
        config.save_goal(event_goal("checkin", "checkin")).unwrap();
        let before = config.clone();
        assert_eq!(
            config.save_goal(event_goal("checkin", "visit")),
            Err(ConfigError::GoalChanged("checkin".into()))
        );
        assert_eq!(config, before);
    }

    #[test]
    fn deleted_goals_free_their_slot_but_the_default_stays() {
        let mut config = TenantConfig::defaults("t");
        config.save_goal(event_goal("a", "a")).unwrap();
        assert_eq!(config.delete_goal("a"), Ok(()));
        assert_eq!(config.delete_goal("a"), Err(ConfigError::GoalNotFound("a".into())));
        assert_eq!(config.delete_goal("orders"), Err(ConfigError::DefaultGoalUndeletable));
        // A deleted id may come back with another definition.
        assert_eq!(config.save_goal(event_goal("a", "b")), Ok(GoalSaved::Created));
    }

    #[test]
    fn invalid_goals_and_settings_are_refused() {
        let mut config = TenantConfig::defaults("t");
        assert!(matches!(config.save_goal(event_goal("", "x")), Err(ConfigError::InvalidGoal(_))));
        assert!(matches!(config.save_goal(event_goal("e", "")), Err(ConfigError::InvalidGoal(_))));
        let no_status = Goal {
            id: "o".into(),
            kind: GoalKind::Order { statuses: vec![], categories: vec![], order_channels: vec![] },
        };
        assert!(matches!(config.save_goal(no_status), Err(ConfigError::InvalidGoal(_))));
        let negative = ChannelSetting { connect_on: TouchKind::Opened, window_ms: -1 };
        assert!(config.set_channel(Channel::Push, negative).is_err());
        assert!(config.set_currency("usd").is_err());
        assert!(config.set_currency("EUR").is_ok());
    }

    #[test]
    fn model_and_holdout_settings_are_checked_and_default_sensibly() {
        let mut config = TenantConfig::defaults("t");
        assert_eq!(config.decay_half_life_ms, 604_800_000, "7 days");
        assert_eq!(config.holdouts, Holdouts::default());
        let held_out = ChannelSetting { connect_on: TouchKind::HeldOut, window_ms: DAY_MS };
        let refused = config.set_channel(Channel::Push, held_out);
        assert!(matches!(&refused, Err(ConfigError::InvalidSetting(m)) if m.contains("HELD_OUT")), "{refused:?}");
        assert_eq!(config.setting(Channel::Push).connect_on, TouchKind::Opened, "unchanged");

        assert!(config.set_decay_half_life(59_999).is_err());
        config.set_decay_half_life(60_000).unwrap();
        assert_eq!(config.decay_half_life_ms, 60_000);

        let holdouts = |default_bp, campaigns: &[(&str, u32)]| Holdouts {
            default_bp,
            campaigns: campaigns.iter().map(|(id, bp)| (id.to_string(), *bp)).collect(),
        };
        assert!(config.set_holdouts(holdouts(5_001, &[])).is_err());
        assert!(config.set_holdouts(holdouts(0, &[("spring", 5_001)])).is_err());
        assert!(config.set_holdouts(holdouts(0, &[("", 100)])).is_err());
        assert_eq!(config.holdouts, Holdouts::default(), "a refused change changes nothing");
        config.set_holdouts(holdouts(500, &[("spring", 5_000), ("summer", 0)])).unwrap();
        assert_eq!((config.holdouts.bp("spring"), config.holdouts.bp("summer"), config.holdouts.bp("autumn")), (5_000, 0, 500));
    }

    #[test]
    fn excluded_tags_match_any_tag() {
        let mut config = TenantConfig::defaults("t");
        config.set_excluded_tags(vec!["transactional".into()]);
        assert!(config.is_excluded(&["promo".into(), "transactional".into()]));
        assert!(!config.is_excluded(&["promo".into()]));
    }
}
