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

/// A tenant exists from its first write to the log: an accepted record, a config or badge
/// book save, a recompute; not from reads, failed saves or nothing at all.
pub async fn tenants_exist_from_their_first_write(store: &dyn Store) -> Result<()> {
    use touchstone_core::badges::{BadgeBook, BadgeDefinition};
    use touchstone_core::model::Record;
    let [by_record, by_config, by_recompute, by_badges, never] =
        ["tenants_record", "tenants_config", "tenants_recompute", "tenants_badges", "tenants_never"].map(tenant);
    for t in [&by_record, &by_config, &by_recompute, &by_badges, &never] {
        assert!(!store.tenant_exists(t).await?, "{t} exists before any write");
    }
    // Reads and a lost save make nothing exist.
    store.tenant_config(&never).await?;
    store.badge_book(&never).await?;
    assert!(store.save_tenant_config(&TenantConfig::defaults(&never)).await.is_err());

    let record = Record::Event(super::event(&by_record, "e1", "open", 1_000));
    store.ingest(vec![record.clone()]).await?;
    // A duplicate, and a second record, of a tenant that exists already.
    store.ingest(vec![record, Record::Event(super::event(&by_record, "e2", "open", 2_000))]).await?;
    let mut config = TenantConfig::defaults(&by_config);
    config.version = 1;
    store.save_tenant_config(&config).await?;
    store.append_recompute(&by_recompute).await?;
    let mut book = BadgeBook::empty(&by_badges);
    book.version = 1;
    book.save(BadgeDefinition::new("regular", "Regular"), 1_000).expect("a valid badge");
    store.save_badge_book(&book).await?;

    for t in [&by_record, &by_config, &by_recompute, &by_badges] {
        assert!(store.tenant_exists(t).await?, "{t} does not exist after its first write");
    }
    assert!(!store.tenant_exists(&never).await?);
    let listed = store.tenants().await?;
    let mut sorted = listed.clone();
    sorted.sort();
    assert_eq!(listed, sorted, "tenants are listed in name order");
    let mine: Vec<&String> = listed.iter().filter(|t| t.contains("tenants_")).collect();
    let mut expected = vec![&by_record, &by_config, &by_recompute, &by_badges];
    expected.sort();
    assert_eq!(mine, expected);
    Ok(())
}
