//! The one table from errors to gRPC status codes. Every crate's error implements
//! [`ServiceError`] (its [`ErrorKind`]); `?` turns it into an [`ApiError`], and this file
//! alone decides the `tonic::Code`. A kind is the only thing that crosses: an internal
//! failure's text is what its error displays, never a panic's.

use tonic::{Code, Status};
use touchstone_core::error::{ErrorKind, ServiceError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed (missing tenant, unknown enum, bad range).
    #[error("{0}")]
    InvalidArgument(String),
    #[error("{0}")]
    NotFound(String),
    /// Valid, but refused in the current state (a 6th goal, changing a saved goal).
    #[error("{0}")]
    FailedPrecondition(String),
    /// Lost a race with a concurrent change; retrying the call may succeed.
    #[error("{0}")]
    Aborted(String),
    /// Storage unreachable or timed out; retrying later may succeed.
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Internal(String),
    #[error("{0}")]
    Unauthenticated(String),
    #[error("{0}")]
    PermissionDenied(String),
}

impl ApiError {
    pub fn new(kind: ErrorKind, message: String) -> ApiError {
        match kind {
            ErrorKind::InvalidArgument => ApiError::InvalidArgument(message),
            ErrorKind::NotFound => ApiError::NotFound(message),
            ErrorKind::FailedPrecondition => ApiError::FailedPrecondition(message),
            ErrorKind::Aborted => ApiError::Aborted(message),
            ErrorKind::Unavailable => ApiError::Unavailable(message),
            ErrorKind::Internal => ApiError::Internal(message),
            ErrorKind::Unauthenticated => ApiError::Unauthenticated(message),
            ErrorKind::PermissionDenied => ApiError::PermissionDenied(message),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::InvalidArgument(_) => ErrorKind::InvalidArgument,
            ApiError::NotFound(_) => ErrorKind::NotFound,
            ApiError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            ApiError::Aborted(_) => ErrorKind::Aborted,
            ApiError::Unavailable(_) => ErrorKind::Unavailable,
            ApiError::Internal(_) => ErrorKind::Internal,
            ApiError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            ApiError::PermissionDenied(_) => ErrorKind::PermissionDenied,
        }
    }

    pub fn code(&self) -> Code {
        code(self.kind())
    }
}

/// The table.
pub fn code(kind: ErrorKind) -> Code {
    match kind {
        ErrorKind::InvalidArgument => Code::InvalidArgument,
        ErrorKind::NotFound => Code::NotFound,
        ErrorKind::FailedPrecondition => Code::FailedPrecondition,
        ErrorKind::Aborted => Code::Aborted,
        ErrorKind::Unavailable => Code::Unavailable,
        ErrorKind::Internal => Code::Internal,
        ErrorKind::Unauthenticated => Code::Unauthenticated,
        ErrorKind::PermissionDenied => Code::PermissionDenied,
    }
}

/// Every crate's error, by its kind. (`ApiError` itself is no `ServiceError`, so this does
/// not overlap the identity conversion.)
impl<E: ServiceError> From<E> for ApiError {
    fn from(error: E) -> ApiError {
        ApiError::new(error.kind(), error.to_string())
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        Status::new(error.code(), error.to_string())
    }
}

impl ApiError {
    /// For clients: the inverse of the table, so a round trip keeps the kind.
    pub fn from_status(status: &Status) -> ApiError {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => ApiError::InvalidArgument(message),
            Code::NotFound => ApiError::NotFound(message),
            Code::FailedPrecondition | Code::AlreadyExists => ApiError::FailedPrecondition(message),
            Code::Aborted => ApiError::Aborted(message),
            Code::Unavailable | Code::DeadlineExceeded | Code::ResourceExhausted => ApiError::Unavailable(message),
            Code::Ok
            | Code::Cancelled
            | Code::Unknown
            | Code::PermissionDenied
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss
            | Code::Unauthenticated => ApiError::Internal(message),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use touchstone_core::config::ConfigError;

    #[test]
    fn every_kind_survives_a_round_trip_through_a_status() {
        for kind in ErrorKind::ALL {
            let error = ApiError::new(kind, format!("{kind:?}"));
            let status = Status::from(error.clone());
            assert_eq!(status.code(), code(kind));
            assert_eq!(ApiError::from_status(&status), error);
            assert_eq!(error.kind(), kind);
        }
    }

    #[test]
    fn crate_errors_keep_their_kind_and_text() {
        let error = ApiError::from(ConfigError::TooManyGoals);
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert_eq!(error.to_string(), ConfigError::TooManyGoals.to_string());
        assert_eq!(ApiError::from(ConfigError::GoalNotFound("g".into())).code(), Code::NotFound);
    }
}
