//! [`ConfigStore`]: each tenant's configuration, changed by compare-and-set, and which
//! tenants exist.

use crate::{LogMark, Result};
use async_trait::async_trait;
use touchstone_core::config::TenantConfig;

/// Tenant configurations.
///
/// - **Compare-and-set**: a save applies only over the version it was read at, so two
///   concurrent changes cannot both win.
/// - **Retroactive**: a save appends a `Recompute` entry to the ingest log in the same
///   atomic write, so attribution applies the new config to the whole history.
/// - **Tenants**: a tenant exists from the moment a write that appends to its log returns
///   (an accepted record, a config or badge book save, a recompute); queries of any other
///   tenant are NOT_FOUND.
#[async_trait]
pub trait ConfigStore: Send + Sync + 'static {
    /// The tenant's saved config, or [`TenantConfig::defaults`] (version 0) when none is.
    async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig>;

    /// Saves `config` if the stored version is `config.version - 1` (0: none saved), and
    /// appends a `Recompute` entry for the tenant. Returns that entry's position.
    /// [`StoreError::Conflict`](crate::StoreError::Conflict) when the stored version differs.
    async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark>;

    /// Every tenant that exists, in name order.
    async fn tenants(&self) -> Result<Vec<String>>;

    /// Whether `tenant` exists.
    async fn tenant_exists(&self, tenant: &str) -> Result<bool>;
}
