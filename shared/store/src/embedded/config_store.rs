//! [`ConfigStore`] on fjall: a tenant's config and the `Recompute` entry its save appends,
//! in one batch under the log writer's lock (which makes the version check atomic).

use super::ingest_log::LogAppender;
use super::key::{self, Key};
use super::layout::Table;
use super::{EmbeddedStore, Tables, Writes, backend};
use crate::support::lock;
use crate::{ConfigStore, LogMark, LogPayload, Result, StoreError, log_shard};
use async_trait::async_trait;
use touchstone_core::config::TenantConfig;

#[async_trait]
impl ConfigStore for EmbeddedStore {
    async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        let tenant = tenant.to_owned();
        self.blocking("tenant_config", move |tables| tables.tenant_config(&tenant)).await
    }

    async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        let config = config.clone();
        self.blocking("save_tenant_config", move |tables| tables.save_tenant_config(&config)).await
    }

    async fn tenants(&self) -> Result<Vec<String>> {
        let mut tenants = self.blocking("tenants", |tables| tables.tenants()).await?;
        // Keys are length-prefixed, so they sort by length first: sorted by name here.
        tenants.sort_unstable();
        Ok(tenants)
    }

    async fn tenant_exists(&self, tenant: &str) -> Result<bool> {
        let key = Key::new().str(tenant).into_vec();
        self.blocking("tenant_exists", move |tables| tables.read(Table::Tenants).contains_key(&key).map_err(backend)).await
    }
}

impl Tables {
    pub(super) fn tenants(&self) -> Result<Vec<String>> {
        self.read(Table::Tenants)
            .iter()
            .map(|guard| {
                let key = guard.key().map_err(backend)?;
                let (tenant, _) = key::read_str(&key).ok_or_else(|| StoreError::Corrupt(format!("tenants key {key:?}")))?;
                Ok(tenant.to_owned())
            })
            .collect()
    }

    pub(super) fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        let stored = self.get_config(Table::Configs, Key::new().str(tenant).as_bytes())?;
        Ok(stored.unwrap_or_else(|| TenantConfig::defaults(tenant)))
    }

    fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        let _turn = lock(&self.log_writer);
        let tenant_key = Key::new().str(&config.tenant).into_vec();
        let stored = self.get_config(Table::Configs, &tenant_key)?.map_or(0, |c| c.version);
        // Version 0 is "never saved": no save can expect a stored version below it.
        if config.version.checked_sub(1) != Some(stored) {
            return Err(StoreError::Conflict { tenant: config.tenant.clone() });
        }
        let mut writes = Writes::default();
        writes.put(Table::Configs, tenant_key, config)?;
        let mut log = LogAppender::new(None);
        let mark = log.append(self, log_shard(&config.tenant), LogPayload::Recompute { tenant: config.tenant.clone() }, &mut writes)?;
        log.finish(&mut writes)?;
        self.apply(writes)?;
        Ok(mark)
    }
}
