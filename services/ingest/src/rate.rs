//! Per-tenant ingest rate: a token bucket of `per_second` records per tenant, refilled
//! continuously, holding at most a second's worth. A call whose records one of its tenants
//! cannot cover is refused whole (nothing of it is stored) with RESOURCE_EXHAUSTED and
//! when to retry; other tenants are not held back by it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::Instant;

#[derive(Debug)]
pub struct TenantRates {
    per_second: f64,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl TenantRates {
    /// `per_second` > 0.
    pub fn new(per_second: u64) -> TenantRates {
        TenantRates { per_second: per_second as f64, buckets: Mutex::new(HashMap::new()) }
    }

    /// Takes `counts` (records by tenant) from the buckets, all or none; else the first
    /// tenant short and the seconds until its bucket covers the call.
    pub fn take(&self, counts: &BTreeMap<&str, u64>) -> Result<(), (String, f64)> {
        let mut buckets = self.buckets.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        for (&tenant, &count) in counts {
            let (tokens, last) = buckets.entry(tenant.to_owned()).or_insert((self.per_second, now));
            *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.per_second).min(self.per_second);
            *last = now;
            // A call larger than a second's worth may go once the bucket is full.
            let needed = (count as f64).min(self.per_second);
            if *tokens < needed {
                return Err((tenant.to_owned(), (needed - *tokens) / self.per_second));
            }
        }
        for (&tenant, &count) in counts {
            if let Some((tokens, _)) = buckets.get_mut(tenant) {
                *tokens -= count as f64;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenant_over_its_rate_waits_and_others_do_not() {
        let rates = TenantRates::new(10);
        let counts = |pairs: &[(&'static str, u64)]| pairs.iter().copied().collect::<BTreeMap<&str, u64>>();
        assert_eq!(rates.take(&counts(&[("a", 6)])), Ok(()));
        let (tenant, wait) = rates.take(&counts(&[("a", 6), ("b", 1)])).unwrap_err();
        assert_eq!(tenant, "a");
        assert!(wait > 0.1 && wait <= 0.2, "{wait}");
        assert_eq!(rates.take(&counts(&[("b", 10)])), Ok(()), "b has its own bucket, and a's refusal took nothing of it");
        assert_eq!(rates.take(&counts(&[("a", 4)])), Ok(()));
    }
}
