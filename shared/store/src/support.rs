//! Small pieces both backends use: the stored form of a log payload, postcard encoding, the
//! store's clock and poison-tolerant locks.

use crate::{LogPayload, Result, StoreError};
use serde::{Deserialize, Serialize};
use std::sync::{Mutex, MutexGuard};
use touchstone_core::model::{Millis, Record};

/// [`LogPayload`] with serde, kept here so the trait's types stay free of a storage format.
#[derive(Serialize, Deserialize)]
// Almost every entry is a record; boxing it to shrink the rare `Recompute` is not worth it.
#[allow(clippy::large_enum_variant)]
pub(crate) enum StoredPayload {
    Record(Record),
    Recompute { tenant: String },
    /// Never stored by either backend (every stored position gets a record or a
    /// recompute); kept so the conversion from [`LogPayload`] is total.
    Nothing,
}

impl From<LogPayload> for StoredPayload {
    fn from(payload: LogPayload) -> Self {
        match payload {
            LogPayload::Record(record) => StoredPayload::Record(record),
            LogPayload::Recompute { tenant } => StoredPayload::Recompute { tenant },
            LogPayload::Nothing => StoredPayload::Nothing,
        }
    }
}

impl From<StoredPayload> for LogPayload {
    fn from(payload: StoredPayload) -> Self {
        match payload {
            StoredPayload::Record(record) => LogPayload::Record(record),
            StoredPayload::Recompute { tenant } => LogPayload::Recompute { tenant },
            StoredPayload::Nothing => LogPayload::Nothing,
        }
    }
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    postcard::to_stdvec(value).map_err(|e| StoreError::Backend(format!("encoding a value: {e}")))
}

/// Epoch milliseconds on this machine's clock.
pub(crate) fn now_millis() -> Millis {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |since| Millis::try_from(since.as_millis()).unwrap_or(Millis::MAX))
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The mutexes guard either no data of their own (the embedded store's data is all in
    // fjall, written atomically) or maps updated by single inserts and removals, so a panic
    // in another holder leaves nothing half-done to refuse.
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
