//! [`ConfigStore`] on CQL: a tenant's config in one row, saved by compare-and-set on its
//! version, with the `Recompute` entry the save appends written to the log as an intent
//! first (the log protocol is in `ingest_log.rs`); badge books are saved the same way.

use super::timed;
use super::ingest_log::{ACCEPTED, Appended, DUPLICATE};
use super::layout::seq_value;
use super::{CqlStore, Inner, Lwt};
use crate::support::{StoredPayload, encode};
use crate::{ConfigStore, LogMark, Result, StoreError, log_shard};
use async_trait::async_trait;
use touchstone_core::config::TenantConfig;

#[async_trait]
impl ConfigStore for CqlStore {
    async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        timed("tenant_config", async { self.inner.tenant_config(tenant).await }).await
    }

    async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        timed("save_tenant_config", async { self.inner.save_tenant_config(config).await }).await
    }

    async fn tenants(&self) -> Result<Vec<String>> {
        timed("tenants", async {
            let rows: Vec<(String,)> = self.inner.rows(&self.inner.statements.select_tenants, ()).await?;
            Ok(rows.into_iter().map(|(tenant,)| tenant).collect())
        })
        .await
    }

    async fn tenant_exists(&self, tenant: &str) -> Result<bool> {
        timed("tenant_exists", async {
            let row: Option<(String,)> = self.inner.row(&self.inner.statements.select_tenant, (tenant,)).await?;
            Ok(row.is_some())
        })
        .await
    }
}

impl Inner {
    /// Writes the `tenants` rows of those of `tenants` this process has not written yet;
    /// called before the log entries that make them exist.
    pub(super) async fn note_tenants<'a>(&self, tenants: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let new: Vec<&str> = {
            let known = crate::support::lock(&self.known_tenants);
            let mut new: Vec<&str> = tenants.into_iter().filter(|tenant| !known.contains(*tenant)).collect();
            new.sort_unstable();
            new.dedup();
            new
        };
        if new.is_empty() {
            return Ok(());
        }
        super::all(new.iter().map(|tenant| self.write(&self.statements.insert_tenant, (tenant,)))).await?;
        crate::support::lock(&self.known_tenants).extend(new.into_iter().map(str::to_owned));
        Ok(())
    }

    async fn tenant_config(&self, tenant: &str) -> Result<TenantConfig> {
        let stored: Option<(Option<i64>, Option<Vec<u8>>)> = self.row(&self.statements.select_config, (tenant,)).await?;
        match stored {
            Some((_, Some(config))) => crate::support::decode_config("tenant config", &config),
            _ => Ok(TenantConfig::defaults(tenant)),
        }
    }

    /// Saves the config by compare-and-set on its version, with its `Recompute` entry.
    async fn save_tenant_config(&self, config: &TenantConfig) -> Result<LogMark> {
        let s = &self.statements;
        let tenant = &config.tenant;
        let conflict = || StoreError::Conflict { tenant: tenant.clone() };
        // Version 0 is "never saved": no save can expect a stored version below it.
        let expected = config.version.checked_sub(1).ok_or_else(conflict)?;
        let version = i64::try_from(config.version).map_err(|_| conflict())?;
        let body = encode(config)?;
        let save = async {
            if expected == 0 {
                self.lwt(&s.insert_config_if_absent, (tenant, version, &body)).await
            } else {
                self.lwt(&s.update_config_if_version, (version, &body, tenant, seq_value(expected))).await
            }
        };
        self.save_with_entry(tenant, StoredPayload::Recompute { tenant: tenant.clone() }, save).await
    }

    /// Runs `save` (a compare-and-set) with a log entry that must follow it, written as an
    /// intent first: if this call dies after the save, a reader finds the intent and
    /// accepts it, so a saved change is always followed by its entry. Returns the entry's
    /// position; [`StoreError::Conflict`] when the compare-and-set lost.
    pub(super) async fn save_with_entry(
        &self,
        tenant: &str,
        entry: StoredPayload,
        save: impl std::future::Future<Output = Result<Lwt>>,
    ) -> Result<LogMark> {
        let shard = log_shard(tenant);
        let payload = encode(&entry)?;
        self.note_tenants([tenant]).await?;
        let intent = self.append_one(shard, payload.clone(), Appended::Intent).await?;
        let saved = save.await?;
        let outcome = if saved.applied { ACCEPTED } else { DUPLICATE };
        let settled = self.settle_intent(shard, intent, outcome).await?;
        if !saved.applied {
            // Whatever a reader made of the intent, a spare entry without a change is harmless.
            return Err(StoreError::Conflict { tenant: tenant.to_owned() });
        }
        // A reader that timed out on the intent accepted it already, maybe before the change
        // was saved; and a row written after its position was processed is never read.
        // Either way the entry must come again, after the save.
        if !settled.applied || self.processed_position(shard).await? >= intent.seq {
            let again = self.append_one(shard, payload, Appended::Accepted).await?;
            return Ok(LogMark { shard, seq: again.seq });
        }
        Ok(LogMark { shard, seq: intent.seq })
    }
}
