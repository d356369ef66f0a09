//! The one error type of every backend, sorted by what a caller can do about it.

use touchstone_core::error::{ErrorKind, Reason, ServiceError};

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The backend could not be reached or timed out; the same call may succeed later.
    #[error("storage unavailable for now (the call may be retried): {0}")]
    Unavailable(String),
    /// A compare-and-set lost: someone else saved this tenant's config first.
    #[error("configuration of tenant {tenant:?} changed concurrently; read it again and retry")]
    Conflict { tenant: String },
    /// An attribution commit found the shard's processed position moved: another worker
    /// committed that shard first (this one lost its lease). Its step is discarded.
    #[error("log shard {shard} was committed by another worker; read it again")]
    Fenced { shard: u32 },
    /// Stored bytes that do not decode: a bug or a damaged store.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// Any other backend failure; retrying will not help.
    #[error("storage failure: {0}")]
    Backend(String),
}

impl StoreError {
    /// Whether the same call may succeed if retried later.
    pub fn is_transient(&self) -> bool {
        match self {
            StoreError::Unavailable(_) | StoreError::Conflict { .. } | StoreError::Fenced { .. } => true,
            StoreError::Corrupt(_) | StoreError::Backend(_) => false,
        }
    }
}

impl ServiceError for StoreError {
    fn kind(&self) -> ErrorKind {
        match self {
            StoreError::Unavailable(_) | StoreError::Fenced { .. } => ErrorKind::Unavailable,
            StoreError::Conflict { .. } => ErrorKind::Aborted,
            StoreError::Corrupt(_) | StoreError::Backend(_) => ErrorKind::Internal,
        }
    }

    fn reason(&self) -> Option<Reason> {
        Some(match self {
            StoreError::Unavailable(_) => Reason::new("STORAGE_UNAVAILABLE"),
            StoreError::Conflict { tenant } => Reason::new("CONCURRENT_CHANGE").with("tenant", tenant),
            StoreError::Fenced { shard } => Reason::new("SHARD_LEASE_LOST").with("shard", shard.to_string()),
            StoreError::Corrupt(_) => Reason::new("STORAGE_CORRUPT"),
            StoreError::Backend(_) => Reason::new("STORAGE_FAILURE"),
        })
    }
}
