//! `ConfigService`: per-tenant attribution settings, currency, excluded tags, goals and
//! badge definitions.
//!
//! Every change is a compare-and-set on the tenant's config version (retried a few times
//! when another change wins the race) and appends a `Recompute` entry to the ingest log, so
//! attribution applies it to the whole history (docs/behaviour/records-and-config.md: results are retroactive).
//! Badge definitions are a compare-and-set on the tenant's badge book and append a
//! `RederiveBadges` entry, so attribution derives the tenant's rule earns and expiries again.

use crate::now_ms;
use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use touchstone_core::badges::{BadgeBook, BadgeDefinition, BadgeSaved};
use touchstone_core::config::{Goal, GoalSaved, TenantConfig};
use touchstone_core::error::{ErrorKind, Reason};
use touchstone_proto::convert::{ConvertError, channel_setting_from_pb};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::config_service_server::ConfigService;
use touchstone_proto::validate::valid;
use touchstone_store::{BadgeStore, ConfigStore, StoreError};

/// Attempts of a read-modify-write before giving up with ABORTED.
const CAS_ATTEMPTS: usize = 5;

pub struct ConfigApi {
    configs: Arc<dyn ConfigStore>,
    badges: Arc<dyn BadgeStore>,
    wake: Arc<Notify>,
}

impl ConfigApi {
    pub fn new(configs: Arc<dyn ConfigStore>, badges: Arc<dyn BadgeStore>, wake: Arc<Notify>) -> ConfigApi {
        ConfigApi { configs, badges, wake }
    }

    /// Reads the tenant's badge book, applies `change` at the server's clock and saves the
    /// result if it differs, retrying when a concurrent change wins.
    async fn update_badges<T>(
        &self,
        tenant: &str,
        change: impl Fn(&mut BadgeBook, i64) -> Result<T, ApiError>,
    ) -> Result<(BadgeBook, T), ApiError> {
        for _ in 0..CAS_ATTEMPTS {
            let mut book = self.badges.badge_book(tenant).await?;
            let before = book.clone();
            let outcome = change(&mut book, now_ms())?;
            if book == before {
                return Ok((book, outcome));
            }
            book.version = before.version + 1;
            match self.badges.save_badge_book(&book).await {
                Ok(_) => {
                    // Attribution derives the tenant's badge entries again.
                    self.wake.notify_one();
                    return Ok((book, outcome));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(concurrent_change(tenant, format!("badges of tenant {tenant:?} keep changing concurrently; retry")))
    }

    /// Reads the tenant's config, applies `change` and saves the result if it differs,
    /// retrying when a concurrent change wins. Returns the config now in force and what
    /// `change` returned.
    async fn update<T>(
        &self,
        tenant: &str,
        change: impl Fn(&mut TenantConfig) -> Result<T, ApiError>,
    ) -> Result<(TenantConfig, T), ApiError> {
        for _ in 0..CAS_ATTEMPTS {
            let mut config = self.configs.tenant_config(tenant).await?;
            let before = config.clone();
            let outcome = change(&mut config)?;
            if config == before {
                return Ok((config, outcome));
            }
            config.version = before.version + 1;
            match self.configs.save_tenant_config(&config).await {
                Ok(_) => {
                    self.wake.notify_one();
                    return Ok((config, outcome));
                }
                Err(StoreError::Conflict { .. }) => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(concurrent_change(tenant, format!("configuration of tenant {tenant:?} keeps changing concurrently; retry")))
    }
}

fn concurrent_change(tenant: &str, message: String) -> ApiError {
    ApiError::named(ErrorKind::Aborted, Reason::new("CONCURRENT_CHANGE").with("tenant", tenant), message)
}

#[tonic::async_trait]
impl ConfigService for ConfigApi {
    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn get_config(&self, request: Request<pb::GetConfigRequest>) -> Result<Response<pb::TenantConfig>, Status> {
        let pb::GetConfigRequest { tenant } = valid(request)?;
        let config = self.configs.tenant_config(&tenant).await.map_err(ApiError::from)?;
        Ok(Response::new(config.into()))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn update_settings(&self, request: Request<pb::UpdateSettingsRequest>) -> Result<Response<pb::TenantConfig>, Status> {
        let pb::UpdateSettingsRequest { tenant, settings, currency, excluded_tags, decay_half_life_ms, holdouts } = valid(request)?;
        let settings = settings.into_iter().map(channel_setting_from_pb).collect::<Result<Vec<_>, _>>().map_err(ApiError::from)?;
        let (config, ()) = self
            .update(&tenant, |config| {
                for (channel, setting) in &settings {
                    config.set_channel(*channel, *setting)?;
                }
                if let Some(currency) = &currency {
                    config.set_currency(currency)?;
                }
                if let Some(pb::ExcludedTags { tags }) = &excluded_tags {
                    config.set_excluded_tags(tags.clone());
                }
                if let Some(half_life_ms) = decay_half_life_ms {
                    config.set_decay_half_life(half_life_ms)?;
                }
                if let Some(holdouts) = &holdouts {
                    config.set_holdouts(holdouts.clone().into())?;
                }
                Ok(())
            })
            .await?;
        Ok(Response::new(config.into()))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn create_goal(&self, request: Request<pb::CreateGoalRequest>) -> Result<Response<pb::CreateGoalReply>, Status> {
        let pb::CreateGoalRequest { tenant, goal } = valid(request)?;
        let goal = Goal::try_from(goal.ok_or(ConvertError::Unset("goal")).map_err(ApiError::from)?).map_err(ApiError::from)?;
        let (config, saved) = self.update(&tenant, |config| Ok(config.save_goal(goal.clone())?)).await?;
        let goal = config.goal(&goal.id).cloned().map(Into::into);
        Ok(Response::new(pb::CreateGoalReply { goal, created: saved == GoalSaved::Created, config: Some(config.into()) }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn list_goals(&self, request: Request<pb::ListGoalsRequest>) -> Result<Response<pb::ListGoalsReply>, Status> {
        let pb::ListGoalsRequest { tenant } = valid(request)?;
        let config = self.configs.tenant_config(&tenant).await.map_err(ApiError::from)?;
        Ok(Response::new(pb::ListGoalsReply { goals: config.goals.into_iter().map(Into::into).collect() }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn save_badge(&self, request: Request<pb::SaveBadgeRequest>) -> Result<Response<pb::SaveBadgeReply>, Status> {
        let pb::SaveBadgeRequest { tenant, badge } = valid(request)?;
        let badge = BadgeDefinition::try_from(badge.ok_or(ConvertError::Unset("badge")).map_err(ApiError::from)?)
            .map_err(ApiError::from)?;
        let (book, saved) = self.update_badges(&tenant, |book, now| Ok(book.save(badge.clone(), now)?)).await?;
        let badge = book.get(&badge.id).cloned().map(Into::into);
        Ok(Response::new(pb::SaveBadgeReply { badge, created: saved == BadgeSaved::Created }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, badges = request.get_ref().badges.len()))]
    async fn save_badges(&self, request: Request<pb::SaveBadgesRequest>) -> Result<Response<pb::SaveBadgesReply>, Status> {
        let pb::SaveBadgesRequest { tenant, badges } = valid(request)?;
        let badges =
            badges.into_iter().map(BadgeDefinition::try_from).collect::<Result<Vec<_>, _>>().map_err(ApiError::from)?;
        let (book, saved) = self
            .update_badges(&tenant, |book, now| {
                // All or nothing: a refusal leaves the book as it was read, and nothing is saved.
                badges.iter().map(|badge| Ok(book.save(badge.clone(), now)?)).collect::<Result<Vec<_>, ApiError>>()
            })
            .await?;
        let replies = badges
            .iter()
            .zip(saved)
            .map(|(badge, saved)| pb::SaveBadgeReply {
                badge: book.get(&badge.id).cloned().map(Into::into),
                created: saved == BadgeSaved::Created,
            })
            .collect();
        Ok(Response::new(pb::SaveBadgesReply { badges: replies }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant))]
    async fn list_badges(&self, request: Request<pb::ListBadgesRequest>) -> Result<Response<pb::ListBadgesReply>, Status> {
        let pb::ListBadgesRequest { tenant } = valid(request)?;
        let book = self.badges.badge_book(&tenant).await.map_err(ApiError::from)?;
        Ok(Response::new(pb::ListBadgesReply { badges: book.badges.into_iter().map(Into::into).collect() }))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, badge_id = %request.get_ref().badge_id))]
    async fn set_badge_active(&self, request: Request<pb::SetBadgeActiveRequest>) -> Result<Response<pb::BadgeDefinition>, Status> {
        let pb::SetBadgeActiveRequest { tenant, badge_id, active } = valid(request)?;
        let (book, ()) = self.update_badges(&tenant, |book, now| Ok(book.set_active(&badge_id, active, now)?)).await?;
        let badge = book.get(&badge_id).cloned().ok_or_else(|| ApiError::not_found(Reason::badge_not_defined(&tenant, &badge_id), format!("badge {badge_id:?} does not exist")))?;
        Ok(Response::new(badge.into()))
    }

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, goal_id = %request.get_ref().goal_id))]
    async fn delete_goal(&self, request: Request<pb::DeleteGoalRequest>) -> Result<Response<pb::DeleteGoalReply>, Status> {
        let pb::DeleteGoalRequest { tenant, goal_id } = valid(request)?;
        let (config, ()) = self.update(&tenant, |config| Ok(config.delete_goal(&goal_id)?)).await?;
        Ok(Response::new(pb::DeleteGoalReply { config: Some(config.into()) }))
    }
}
