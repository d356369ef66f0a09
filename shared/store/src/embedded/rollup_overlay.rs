//! Rollup counters as deltas. A commit used to read and rewrite every counter row it
//! touched (`rollups`, `campaign_rollups`, `tenant_rollups`): on input spread over weeks a
//! step's records share few rows, so that was ~4 store operations a record. Now a commit
//! writes its deltas, summed per row, as one `rollup_journal` row in its atomic batch, and
//! adds them to its shard's [`Overlay`] in memory, which reads sum into what they return.
//! When the overlays pass their memory budget, a committing shard folds its own into the
//! rows (each row read and written once for all the commits since the last fold) and
//! deletes the journal rows, in one batch. Opening the store folds what the journal holds,
//! so a crash between a commit and its fold loses nothing and counts nothing twice.
//!
//! Reads take the shard's overlay for reading around their scan, and a commit or a fold
//! takes it for writing around its batch: a read sees a commit's rows and deltas together,
//! and a fold's rows or its deltas, never both or neither.

use super::layout::{Table, campaign_rollup_key, log_key, rollup_key, tenant_rollup_key_of};
use super::{Tables, Writes, backend, decode};
use crate::support::encode_campaign_cells;
use crate::{AttributionCommit, CellKinds, LOG_SHARDS, Result, StoreError, log_shard};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use touchstone_core::rollup::{CAMPAIGN_LEVELS, CampaignCell, CampaignCells, Counters, MESSAGE_LEVELS, Tally};

/// The estimated memory the overlays of every shard may hold: past it, a committing shard
/// holding at least its even share ([`LOG_SHARDS`]) folds its overlay into the rows. The
/// overlays then stay within about twice this, however many shards are idle.
pub(super) const OVERLAY_BYTES: usize = 32 << 20;

/// Estimated bytes of an overlay entry beside its key: a map node and the value.
const ROW_BYTES: usize = 96;
/// Estimated bytes of one cell of a campaign or tenant row in an overlay.
const CELL_BYTES: usize = 112;

/// Rollup deltas summed per stored row (keys as `layout.rs` builds them).
#[derive(Debug, Default)]
pub(super) struct RollupDeltas {
    /// Rows of `rollups`.
    pub(super) rollups: BTreeMap<Vec<u8>, Tally>,
    /// Rows of `campaign_rollups`.
    pub(super) campaigns: BTreeMap<Vec<u8>, CampaignCells>,
    /// Rows of `tenant_rollups`: every campaign's cells of a bucket summed.
    pub(super) tenants: BTreeMap<Vec<u8>, CampaignCells>,
}

impl RollupDeltas {
    /// The commit's message and campaign deltas, at every level, summed per row.
    pub(super) fn of_commit(commit: &AttributionCommit) -> Result<RollupDeltas> {
        let mut deltas = RollupDeltas::default();
        for delta in &commit.rollups {
            for &granularity in MESSAGE_LEVELS {
                let key = rollup_key(&delta.tenant, granularity, granularity.bucket(delta.hour), &delta.cell)?;
                deltas.rollups.entry(key).or_default().add(delta.tally);
            }
        }
        for delta in &commit.campaign_rollups {
            for &granularity in CAMPAIGN_LEVELS {
                let key = campaign_rollup_key(&delta.tenant, granularity, granularity.bucket(delta.hour), &delta.campaign_id);
                deltas.campaigns.entry(key).or_default().add(delta.cell.clone(), delta.tally);
            }
        }
        for (key, cells) in &deltas.campaigns {
            let sum = deltas.tenants.entry(tenant_rollup_key_of(key)?.to_vec()).or_default();
            cells.0.iter().for_each(|(cell, tally)| sum.add(cell.clone(), *tally));
        }
        Ok(deltas)
    }

    fn is_empty(&self) -> bool {
        self.rollups.is_empty() && self.campaigns.is_empty() && self.tenants.is_empty()
    }
}

/// A campaign or tenant row's deltas as a journal row holds them: its key and cells.
type CellRows = Vec<(Vec<u8>, Vec<(CampaignCell, Tally)>)>;

/// A `rollup_journal` row: [`RollupDeltas`] as stored.
#[derive(Serialize, Deserialize)]
struct JournalRow {
    rollups: Vec<(Vec<u8>, Tally)>,
    campaigns: CellRows,
    tenants: CellRows,
}

impl JournalRow {
    fn of(deltas: &RollupDeltas) -> JournalRow {
        let cells = |rows: &BTreeMap<Vec<u8>, CampaignCells>| -> CellRows {
            rows.iter().map(|(key, cells)| (key.clone(), cells.0.iter().map(|(cell, tally)| (cell.clone(), *tally)).collect())).collect()
        };
        JournalRow {
            rollups: deltas.rollups.iter().map(|(key, tally)| (key.clone(), *tally)).collect(),
            campaigns: cells(&deltas.campaigns),
            tenants: cells(&deltas.tenants),
        }
    }

    fn into_deltas(self) -> RollupDeltas {
        let cells = |rows: CellRows| -> BTreeMap<Vec<u8>, CampaignCells> {
            // A row's cells are distinct: they were a map's keys.
            rows.into_iter().map(|(key, cells)| (key, Counters(cells.into_iter().collect()))).collect()
        };
        RollupDeltas { rollups: self.rollups.into_iter().collect(), campaigns: cells(self.campaigns), tenants: cells(self.tenants) }
    }
}

/// One shard's committed rollup deltas not yet folded into their rows.
#[derive(Debug, Default)]
pub(super) struct Overlay {
    pub(super) deltas: RollupDeltas,
    /// The shard's journal rows that hold `deltas`, by sequence number.
    journal: Vec<u64>,
    next_seq: u64,
    /// Estimated heap bytes of `deltas` ([`ROW_BYTES`], [`CELL_BYTES`]).
    bytes: usize,
}

impl Overlay {
    /// Adds a commit's deltas; the growth of [`Overlay::bytes`].
    fn add(&mut self, deltas: RollupDeltas) -> usize {
        let before = self.bytes;
        for (key, tally) in deltas.rollups {
            let size = key.len() + ROW_BYTES;
            let entry = self.deltas.rollups.entry(key).or_insert_with(|| {
                self.bytes += size;
                Tally::default()
            });
            entry.add(tally);
        }
        for (rows, new) in [(&mut self.deltas.campaigns, deltas.campaigns), (&mut self.deltas.tenants, deltas.tenants)] {
            for (key, cells) in new {
                let size = key.len() + ROW_BYTES;
                let row = rows.entry(key).or_insert_with(|| {
                    self.bytes += size;
                    CampaignCells::default()
                });
                let held = row.0.len();
                row.merge(cells);
                self.bytes += (row.0.len() - held) * CELL_BYTES;
            }
        }
        self.bytes - before
    }
}

/// The overlays of every shard, and their bytes summed.
pub(super) struct Overlays {
    shards: Vec<RwLock<Overlay>>,
    bytes: std::sync::atomic::AtomicUsize,
    /// [`OVERLAY_BYTES`], smaller in tests.
    budget: usize,
}

impl Overlays {
    pub(super) fn new(budget: usize) -> Overlays {
        Overlays { shards: (0..LOG_SHARDS).map(|_| RwLock::default()).collect(), bytes: Default::default(), budget }
    }
}

impl Tables {
    /// The overlay of the tenant's shard, held for reading: a read of the tenant's rollup
    /// rows holds it around its scan and adds the deltas it has in the scanned range.
    pub(super) fn overlay_of(&self, tenant: &str) -> Result<RwLockReadGuard<'_, Overlay>> {
        self.overlays.shards[log_shard(tenant) as usize].read().map_err(|_| poisoned())
    }

    /// Applies a commit's `writes` with its rollup deltas: the deltas as one journal row in
    /// the same batch, then into the shard's overlay; then folds the overlay if the
    /// overlays are past their budget. The caller holds the shard's commit lock.
    pub(super) fn apply_with_rollups(&self, shard: u32, mut writes: Writes, deltas: RollupDeltas) -> Result<()> {
        let slot = self.overlays.shards.get(shard as usize).ok_or_else(|| StoreError::Backend(format!("log shard {shard} of {LOG_SHARDS}")))?;
        let mut overlay = lock_write(slot)?;
        if deltas.is_empty() {
            return self.apply(writes);
        }
        let seq = overlay.next_seq;
        writes.put(Table::RollupJournal, log_key(shard, seq).to_vec(), &JournalRow::of(&deltas))?;
        self.apply(writes)?;
        overlay.next_seq += 1;
        overlay.journal.push(seq);
        let grown = overlay.add(deltas);
        let total = self.overlays.bytes.fetch_add(grown, Ordering::Relaxed) + grown;
        let budget = self.overlays.budget;
        if total > budget && overlay.bytes >= budget / LOG_SHARDS as usize {
            // The commit stands whatever the fold does: a failed fold leaves the deltas in
            // the overlay and the journal, and the next commit tries again.
            if let Err(error) = self.fold_overlay(shard, &mut overlay) {
                tracing::warn!(shard, %error, "folding rollup deltas into their rows failed; kept in the journal");
            }
        }
        Ok(())
    }

    /// Adds the overlay's deltas to their rows (a row summing to zero is deleted) and
    /// deletes the journal rows holding them, in one batch; then empties the overlay.
    fn fold_overlay(&self, shard: u32, overlay: &mut Overlay) -> Result<()> {
        let mut writes = Writes::default();
        // The overlay is emptied only once the batch is applied: a failed fold keeps it.
        self.add_tallies(&mut writes, Table::Rollups, overlay.deltas.rollups.iter().map(|(key, tally)| (key.clone(), *tally)))?;
        for (table, rows) in [(Table::CampaignRollups, &overlay.deltas.campaigns), (Table::TenantRollups, &overlay.deltas.tenants)] {
            for (key, delta) in rows {
                let mut cells = self.cells_row(table, key, CellKinds::All)?;
                delta.0.iter().for_each(|(cell, tally)| cells.add(cell.clone(), *tally));
                match encode_campaign_cells(cells.0)? {
                    Some(row) => writes.put_raw(table, key.clone(), row),
                    None => writes.delete(table, key.clone()),
                }
            }
        }
        for seq in &overlay.journal {
            writes.delete(Table::RollupJournal, log_key(shard, *seq).to_vec());
        }
        self.apply(writes)?;
        tracing::debug!(shard, rows = overlay.deltas.rollups.len() + overlay.deltas.campaigns.len(), "rollup deltas folded into their rows");
        self.overlays.bytes.fetch_sub(overlay.bytes, Ordering::Relaxed);
        overlay.deltas = RollupDeltas::default();
        overlay.journal.clear();
        overlay.bytes = 0;
        Ok(())
    }

    /// Folds every shard's overlay into the rows: when the store is opened, after the
    /// journal is read back ([`Tables::replay_rollup_journal`]), and when an idle worker
    /// lets the store settle.
    pub(super) fn fold_every_overlay(&self) -> Result<()> {
        for (shard, slot) in (0u32..).zip(&self.overlays.shards) {
            let mut overlay = lock_write(slot)?;
            if !overlay.journal.is_empty() {
                self.fold_overlay(shard, &mut overlay)?;
            }
        }
        Ok(())
    }

    /// Reads the journal left by the last run (commits whose deltas were not folded yet)
    /// into the overlays, and folds them.
    pub(super) fn replay_rollup_journal(&self) -> Result<()> {
        let mut rows = 0usize;
        for guard in self.read(Table::RollupJournal).iter() {
            let (key, value) = guard.into_inner().map_err(backend)?;
            let corrupt = || StoreError::Corrupt("rollup journal key is not a shard and a sequence number".to_owned());
            let (shard, seq) = key.split_first_chunk::<4>().ok_or_else(corrupt)?;
            let (shard, seq) = (u32::from_be_bytes(*shard), u64::from_be_bytes(seq.try_into().map_err(|_| corrupt())?));
            let slot = self.overlays.shards.get(shard as usize).ok_or_else(corrupt)?;
            let mut overlay = lock_write(slot)?;
            let grown = overlay.add(decode::<JournalRow>(Table::RollupJournal, &value)?.into_deltas());
            self.overlays.bytes.fetch_add(grown, Ordering::Relaxed);
            overlay.journal.push(seq);
            overlay.next_seq = overlay.next_seq.max(seq + 1);
            rows += 1;
        }
        if rows > 0 {
            tracing::info!(rows, "folding the rollup journal of the last run into the rollup rows");
        }
        self.fold_every_overlay()
    }
}

fn lock_write(slot: &RwLock<Overlay>) -> Result<RwLockWriteGuard<'_, Overlay>> {
    slot.write().map_err(|_| poisoned())
}

/// A panic while an overlay was held may have left it half-added: it no longer matches the
/// journal, so it is not read again. Opening the store rebuilds it from the journal.
fn poisoned() -> StoreError {
    StoreError::Backend("the rollup overlay was left half-updated by a panic; restart the process to rebuild it from the journal".to_owned())
}

#[cfg(test)]
mod tests {
    use super::super::EmbeddedStore;
    use super::*;
    use super::super::EmbeddedOptions;
    use crate::{AttributionState, CampaignDelta, ReportReads, RollupDelta};
    use touchstone_core::attribution::Rule;
    use touchstone_core::model::TouchKind;
    use touchstone_core::rollup::{Cell, DAY_MS, Granularity, HOUR_MS};

    const DAY: i64 = 1_767_225_600_000; // 1 January 2026, UTC

    /// A commit of tenant "t" counting `count` opens of message "m" of campaign "c" at `hour`,
    /// as the commit after `after`.
    fn commit(after: u64, hour: i64, count: i64) -> AttributionCommit {
        let tally = Tally { count, value_micros: 0 };
        AttributionCommit {
            shard: log_shard("t"),
            after,
            processed: after,
            rollups: vec![RollupDelta { tenant: "t".into(), hour, cell: Cell::Touch { msg_hash: "m".into(), kind: TouchKind::Opened }, tally }],
            campaign_rollups: vec![
                CampaignDelta { tenant: "t".into(), campaign_id: "c".into(), hour, cell: CampaignCell::Touch { kind: TouchKind::Opened }, tally },
                CampaignDelta {
                    tenant: "t".into(),
                    campaign_id: "c".into(),
                    hour,
                    cell: CampaignCell::Conversion { goal_id: "g".into(), rule: Rule::LastTouch },
                    tally: Tally { count: 1, value_micros: 5 },
                },
            ],
            ..AttributionCommit::default()
        }
    }

    /// What every rollup read of tenant "t" gives over the first two days, at each level.
    async fn reads(store: &EmbeddedStore) -> Vec<String> {
        let (from, to) = (DAY, DAY + 2 * DAY_MS);
        let mut seen = Vec::new();
        for granularity in [Granularity::Hour, Granularity::Day, Granularity::Month] {
            let mut rollups: Vec<_> = store.rollups("t", granularity, from, to).await.unwrap().0.into_iter().collect();
            rollups.sort_by(|a, b| a.0.cmp(&b.0));
            let all = store.campaign_rollups("t", None, CellKinds::All, granularity, from, to).await.unwrap();
            let one = store.campaign_rollups("t", Some("c"), CellKinds::Conversions, granularity, from, to).await.unwrap();
            let buckets = store.campaign_rollup_buckets("t", None, CellKinds::Stats, granularity, from, to).await.unwrap();
            let of_one = store.campaign_rollup_buckets("t", Some("c"), CellKinds::All, granularity, from, to).await.unwrap();
            let sorted = |cells: &CampaignCells| {
                let mut cells: Vec<_> = cells.0.iter().collect();
                cells.sort_by(|a, b| a.0.cmp(b.0));
                format!("{cells:?}")
            };
            let by_campaign = |rows: &BTreeMap<String, CampaignCells>| rows.iter().map(|(c, cells)| format!("{c}: {}", sorted(cells))).collect::<Vec<_>>();
            let by_bucket = |rows: &[(i64, CampaignCells)]| rows.iter().map(|(b, cells)| format!("{b}: {}", sorted(cells))).collect::<Vec<_>>();
            seen.push(format!("{granularity:?} {rollups:?} {:?} {:?} {:?} {:?}", by_campaign(&all), by_campaign(&one), by_bucket(&buckets), by_bucket(&of_one)));
        }
        seen
    }

    fn journal_rows(store: &EmbeddedStore) -> usize {
        store.tables.table(Table::RollupJournal).iter().count()
    }

    /// Reads sum the rows and the deltas not yet folded: the same figures before a fold,
    /// after it, and after a restart that found the journal unfolded (a crash between a
    /// commit and its fold). Counters that cancel leave no row.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_are_the_same_before_and_after_a_fold_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path()).unwrap();
        store.commit_attribution(commit(0, DAY + HOUR_MS, 2)).await.unwrap();
        store.tables.fold_every_overlay().unwrap();
        store.commit_attribution(commit(0, DAY + HOUR_MS, 3)).await.unwrap();
        store.commit_attribution(commit(0, DAY + DAY_MS + 5 * HOUR_MS, 4)).await.unwrap();
        assert_eq!(journal_rows(&store), 2, "one journal row a commit since the fold");
        let before = reads(&store).await;
        assert!(before[0].contains("count: 5") && before[0].contains("count: 4"), "hours summed over rows and deltas: {}", before[0]);
        assert!(before[1].contains("count: 9") || before[2].contains("count: 9"), "{before:?}");

        store.tables.fold_every_overlay().unwrap();
        assert_eq!(journal_rows(&store), 0);
        assert_eq!(reads(&store).await, before, "folded into the rows");

        store.commit_attribution(commit(0, DAY + HOUR_MS, -5)).await.unwrap();
        let cancelled = reads(&store).await;
        drop(store);
        let reopened = EmbeddedStore::open_with(dir.path(), EmbeddedOptions::default()).unwrap();
        assert_eq!(journal_rows(&reopened), 0, "the journal is folded when the store is opened");
        assert_eq!(reads(&reopened).await, cancelled, "the unfolded commit counted once");
        let key = rollup_key("t", Granularity::Hour, DAY + HOUR_MS, &Cell::Touch { msg_hash: "m".into(), kind: TouchKind::Opened }).unwrap();
        assert!(reopened.tables.get_bytes(Table::Rollups, &key).unwrap().is_none(), "a row summing to zero is deleted");
    }

    /// Past the budget, a commit folds its shard's overlay: the journal is emptied and the
    /// rows hold the counts.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_commit_past_the_budget_folds_its_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let small = EmbeddedStore::open_inner(dir.path(), EmbeddedOptions::default(), 1).unwrap();
        small.commit_attribution(commit(0, DAY, 2)).await.unwrap();
        assert_eq!(journal_rows(&small), 0, "folded at once");
        assert_eq!(small.tables.overlays.bytes.load(Ordering::Relaxed), 0);
        let key = campaign_rollup_key("t", Granularity::Day, DAY, "c");
        assert!(small.tables.get_bytes(Table::CampaignRollups, &key).unwrap().is_some());
        let folded = reads(&small).await;
        drop(small);

        let dir = tempfile::tempdir().unwrap();
        let large = EmbeddedStore::open(dir.path()).unwrap();
        large.commit_attribution(commit(0, DAY, 2)).await.unwrap();
        assert_eq!(journal_rows(&large), 1, "held under the budget");
        assert!(large.tables.get_bytes(Table::CampaignRollups, &key).unwrap().is_none());
        assert!(large.tables.overlays.bytes.load(Ordering::Relaxed) > 0);
        assert_eq!(reads(&large).await, folded);
    }
}
