//! Checks of [`ConfigStore`](crate::ConfigStore): defaults, compare-and-set, and the
//! `Recompute` entry each save appends.

use super::tenant;
use crate::{LogMark, LogPayload, Result, Store, StoreError, log_shard};
use touchstone_core::config::TenantConfig;

pub async fn config_defaults_and_compare_and_set(store: &dyn Store) -> Result<()> {
    let t = tenant("config_cas");
    assert_eq!(store.tenant_config(&t).await?, TenantConfig::defaults(&t));

    let conflict = |result: Result<LogMark>| matches!(result, Err(StoreError::Conflict { tenant }) if tenant == t);
    let mut config = TenantConfig::defaults(&t);
    assert!(conflict(store.save_tenant_config(&config).await), "version 0 can never be saved");
    config.version = 2;
    assert!(conflict(store.save_tenant_config(&config).await), "version 2 with nothing saved");

    config.version = 1;
    config.set_excluded_tags(vec!["transactional".into()]);
    let mark = store.save_tenant_config(&config).await?;
    assert_eq!(mark.shard, log_shard(&t));
    assert_eq!(store.tenant_config(&t).await?, config);
    let log = store.read_log(mark.shard, mark.seq - 1, 1).await?;
    assert_eq!(log.first().map(|e| (e.seq, e.payload.clone())), Some((mark.seq, LogPayload::Recompute { tenant: t.clone() })));

    let mut stale = TenantConfig::defaults(&t);
    stale.version = 1;
    assert!(conflict(store.save_tenant_config(&stale).await), "a second save of version 1 must lose");
    assert_eq!(store.tenant_config(&t).await?, config, "a lost save changed the config");

    config.version = 2;
    config.currency = "EUR".into();
    let second = store.save_tenant_config(&config).await?;
    assert!(second.seq > mark.seq);
    assert_eq!(store.tenant_config(&t).await?, config);
    Ok(())
}
