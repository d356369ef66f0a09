//! The in-memory filter in front of the `dedup` table: a record whose dedup key the filter
//! has never seen is new without a read, so ingest reads the table only for the few keys
//! the filter may hold (a retry, a duplicate, or a false positive, about 1 in 100).
//!
//! A scalable Bloom filter (`growable-bloom-filter`): it grows by adding filters, each
//! tighter than the last, so the false-positive rate stays bounded however many keys come,
//! at ~10-12 bits a key (~15 MB at 10M records) where a set of the keys took 272 MB. It
//! is filled from the table's keys when the store opens.

use fjall::Keyspace;
use growable_bloom_filter::GrowableBloom;

/// Chance that a key never inserted is reported as maybe present.
const FALSE_POSITIVES: f64 = 0.01;
/// Keys the first filter is sized for; later ones double.
const FIRST_CAPACITY: usize = 1 << 20;

pub(super) struct DedupFilter(GrowableBloom);

impl DedupFilter {
    /// A filter holding every key of the `dedup` table.
    pub(super) fn load(dedup: &Keyspace) -> fjall::Result<DedupFilter> {
        let mut filter = DedupFilter(GrowableBloom::new(FALSE_POSITIVES, FIRST_CAPACITY));
        for guard in dedup.iter() {
            filter.insert(&guard.key()?);
        }
        Ok(filter)
    }

    /// `false`: the key was never inserted. `true`: it may have been (read the table).
    pub(super) fn may_contain(&self, key: &[u8]) -> bool {
        self.0.contains(key)
    }

    /// Inserting a key whose write then fails only costs a read later.
    pub(super) fn insert(&mut self, key: &[u8]) {
        self.0.insert(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserted_keys_are_always_found_and_others_rarely() {
        let mut filter = DedupFilter(GrowableBloom::new(FALSE_POSITIVES, 1_000));
        let key = |i: u32| format!("tenant/e/event-{i}").into_bytes();
        (0..50_000).for_each(|i| filter.insert(&key(i)));
        assert!((0..50_000).all(|i| filter.may_contain(&key(i))), "no false negatives, past several growths");
        let false_positives = (50_000..150_000).filter(|&i| filter.may_contain(&key(i))).count();
        assert!(false_positives < 3_000, "{false_positives} false positives in 100,000");
    }
}
