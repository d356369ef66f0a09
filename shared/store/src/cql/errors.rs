//! Driver errors sorted into [`StoreError::Unavailable`] (transient: the cluster could not be
//! reached or answered in time, the same call may succeed later) and
//! [`StoreError::Backend`] (permanent: bad requests, schema mismatches). The driver's error
//! enums are non-exhaustive, so whatever is not known to be transient counts as permanent.

use crate::StoreError;
use scylla::errors::{
    DbError, ExecutionError, IntoRowsResultError, MaybeFirstRowError, NewSessionError, NextRowError,
    PagerExecutionError, PrepareError, RequestAttemptError, RowsError, SchemaAgreementError,
};

/// Sorts a driver error into transient ([`StoreError::Unavailable`]: the cluster could not
/// be reached or answered in time, the same call may succeed later) or not.
pub(super) fn cql_error(error: impl Into<CqlError>) -> StoreError {
    let error = error.into();
    let text = error.text;
    if error.transient { StoreError::Unavailable(text) } else { StoreError::Backend(text) }
}

/// A driver error, its text and whether it is transient.
pub(super) struct CqlError {
    text: String,
    transient: bool,
}

impl CqlError {
    fn new(error: &impl std::fmt::Display, transient: bool) -> CqlError {
        CqlError { text: error.to_string(), transient }
    }
}

fn attempt_is_transient(error: &RequestAttemptError) -> bool {
    match error {
        RequestAttemptError::UnableToAllocStreamId | RequestAttemptError::BrokenConnectionError(_) => true,
        RequestAttemptError::DbError(db, _) => matches!(
            db,
            DbError::Unavailable { .. }
                | DbError::Overloaded
                | DbError::IsBootstrapping
                | DbError::ReadTimeout { .. }
                | DbError::WriteTimeout { .. }
                | DbError::ReadFailure { .. }
                | DbError::WriteFailure { .. }
                | DbError::RateLimitReached { .. }
                | DbError::TruncateError
        ),
        // The driver's enum is non-exhaustive: anything else (bad requests, protocol errors)
        // will not get better by retrying.
        _ => false,
    }
}

impl From<ExecutionError> for CqlError {
    fn from(error: ExecutionError) -> CqlError {
        let transient = match &error {
            ExecutionError::ConnectionPoolError(_)
            | ExecutionError::RequestTimeout(_)
            | ExecutionError::SchemaAgreementError(_)
            | ExecutionError::MetadataError(_) => true,
            ExecutionError::LastAttemptError(attempt) => attempt_is_transient(attempt),
            ExecutionError::PrepareError(prepare) => prepare_is_transient(prepare),
            // Non-exhaustive: bad queries, empty plans and the like are not transient.
            _ => false,
        };
        CqlError::new(&error, transient)
    }
}

fn prepare_is_transient(error: &PrepareError) -> bool {
    match error {
        PrepareError::ConnectionPoolError(_) => true,
        PrepareError::AllAttemptsFailed { first_attempt } => attempt_is_transient(first_attempt),
        _ => false,
    }
}

impl From<PrepareError> for CqlError {
    fn from(error: PrepareError) -> CqlError {
        let transient = prepare_is_transient(&error);
        CqlError::new(&error, transient)
    }
}

impl From<PagerExecutionError> for CqlError {
    fn from(error: PagerExecutionError) -> CqlError {
        let transient = match &error {
            PagerExecutionError::PrepareError(prepare) => prepare_is_transient(prepare),
            PagerExecutionError::NextPageError(page) => next_page_is_transient(page),
            PagerExecutionError::SchemaAgreementError(_) | PagerExecutionError::MetadataError(_) => true,
            _ => false,
        };
        CqlError::new(&error, transient)
    }
}

fn next_page_is_transient(error: &scylla::errors::NextPageError) -> bool {
    use scylla::errors::{NextPageError, RequestError};
    match error {
        NextPageError::RequestFailure(request) => match request {
            RequestError::ConnectionPoolError(_) | RequestError::RequestTimeout(_) => true,
            RequestError::LastAttemptError(attempt) => attempt_is_transient(attempt),
            _ => false,
        },
        _ => false,
    }
}

impl From<NextRowError> for CqlError {
    fn from(error: NextRowError) -> CqlError {
        let transient = match &error {
            NextRowError::NextPageError(page) => next_page_is_transient(page),
            _ => false,
        };
        CqlError::new(&error, transient)
    }
}

impl From<NewSessionError> for CqlError {
    fn from(error: NewSessionError) -> CqlError {
        // No node answered or the cluster is starting: worth retrying. Bad options are
        // reported the same way; they are visible in the text.
        CqlError::new(&error, true)
    }
}

impl From<SchemaAgreementError> for CqlError {
    fn from(error: SchemaAgreementError) -> CqlError {
        CqlError::new(&error, true)
    }
}

/// Rows that do not have the types the statements ask for: a schema mismatch.
macro_rules! permanent_cql_errors {
    ($($error:ty),+) => {
        $(impl From<$error> for CqlError {
            fn from(error: $error) -> CqlError {
                CqlError::new(&error, false)
            }
        })+
    };
}

permanent_cql_errors!(
    IntoRowsResultError,
    MaybeFirstRowError,
    RowsError,
    scylla::deserialize::TypeCheckError,
    scylla::deserialize::DeserializationError
);
