//! What the store costs, counted per table: read operations (a point read, a membership
//! check or a range scan is one), bytes read, write operations (each key a batch puts or
//! removes) and bytes written. `make bench` divides them by the records ingested, so a change
//! to the data path shows as a number ([`EmbeddedStore::usage`](super::EmbeddedStore::usage)).

use super::layout::Table;
use crate::TableUsage;
use std::sync::atomic::{AtomicU64, Ordering};

/// Relaxed atomics: the counts are read for reporting, never to order anything.
#[derive(Default)]
pub(super) struct Usage {
    tables: [Counts; Table::ALL.len()],
}

#[derive(Default)]
struct Counts {
    reads: AtomicU64,
    read_bytes: AtomicU64,
    writes: AtomicU64,
    write_bytes: AtomicU64,
}

impl Usage {
    pub(super) fn read(&self, table: Table) {
        self.tables[table as usize].reads.fetch_add(1, Ordering::Relaxed);
    }

    pub(super) fn read_bytes(&self, table: Table, bytes: usize) {
        self.tables[table as usize].read_bytes.fetch_add(bytes as u64, Ordering::Relaxed);
    }

    /// A committed batch's writes to `table`.
    pub(super) fn written(&self, table: Table, writes: u64, bytes: u64) {
        let counts = &self.tables[table as usize];
        counts.writes.fetch_add(writes, Ordering::Relaxed);
        counts.write_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Every table's counts so far, tables never used left out.
    pub(super) fn snapshot(&self) -> Vec<TableUsage> {
        Table::ALL
            .iter()
            .zip(&self.tables)
            .map(|(table, counts)| TableUsage {
                table: table.name(),
                reads: counts.reads.load(Ordering::Relaxed),
                read_bytes: counts.read_bytes.load(Ordering::Relaxed),
                writes: counts.writes.load(Ordering::Relaxed),
                write_bytes: counts.write_bytes.load(Ordering::Relaxed),
            })
            .filter(|usage| usage.reads + usage.writes > 0)
            .collect()
    }
}
