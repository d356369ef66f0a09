//! `ConfigService`: per-tenant attribution settings, currency, excluded tags and goals.
//!
//! Every change is a compare-and-set on the tenant's config version (retried a few times
//! when another change wins the race) and appends a `Recompute` entry to the ingest log, so
//! attribution applies it to the whole history (SPEC section 3: results are retroactive).

use std::sync::Arc;
use tokio::sync::Notify;
use tonic::{Request, Response, Status};
use touchstone_core::config::{Goal, GoalSaved, TenantConfig};
use touchstone_proto::convert::{ConvertError, channel_setting_from_pb};
use touchstone_proto::error::ApiError;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::config_service_server::ConfigService;
use touchstone_proto::validate::valid;
use touchstone_store::{ConfigStore, StoreError};

/// Attempts of a read-modify-write before giving up with ABORTED.
const CAS_ATTEMPTS: usize = 5;

pub struct ConfigApi {
    configs: Arc<dyn ConfigStore>,
    wake: Arc<Notify>,
}

impl ConfigApi {
    pub fn new(configs: Arc<dyn ConfigStore>, wake: Arc<Notify>) -> ConfigApi {
        ConfigApi { configs, wake }
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
        Err(ApiError::Aborted(format!("configuration of tenant {tenant:?} keeps changing concurrently; retry")))
    }
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
        let pb::UpdateSettingsRequest { tenant, settings, currency, excluded_tags } = valid(request)?;
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

    #[tracing::instrument(skip_all, fields(tenant = %request.get_ref().tenant, goal_id = %request.get_ref().goal_id))]
    async fn delete_goal(&self, request: Request<pb::DeleteGoalRequest>) -> Result<Response<pb::DeleteGoalReply>, Status> {
        let pb::DeleteGoalRequest { tenant, goal_id } = valid(request)?;
        let (config, ()) = self.update(&tenant, |config| Ok(config.delete_goal(&goal_id)?)).await?;
        Ok(Response::new(pb::DeleteGoalReply { config: Some(config.into()) }))
    }
}
