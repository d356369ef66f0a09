//! The one table from service errors to gRPC status codes. Services turn their typed errors
//! into an [`ApiError`]; this file alone decides the `tonic::Code`.

use tonic::{Code, Status};

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
}

impl ApiError {
    pub fn code(&self) -> Code {
        match self {
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::FailedPrecondition(_) => Code::FailedPrecondition,
            ApiError::Aborted(_) => Code::Aborted,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        }
    }

    /// A storage failure: `Unavailable` when the backend says retrying may help.
    pub fn storage(transient: bool, message: impl std::fmt::Display) -> ApiError {
        if transient {
            ApiError::Unavailable(format!("storage unavailable: {message}"))
        } else {
            ApiError::Internal(format!("storage failure: {message}"))
        }
    }
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        Status::new(error.code(), error.to_string())
    }
}

impl From<Status> for ApiError {
    /// For clients: the inverse of the table, so a round trip keeps the kind.
    fn from(status: Status) -> ApiError {
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

    #[test]
    fn every_error_survives_a_round_trip_through_a_status() {
        let errors = [
            ApiError::InvalidArgument("a".into()),
            ApiError::NotFound("b".into()),
            ApiError::FailedPrecondition("c".into()),
            ApiError::Aborted("d".into()),
            ApiError::Unavailable("e".into()),
            ApiError::Internal("f".into()),
        ];
        for error in errors {
            let status = Status::from(error.clone());
            assert_eq!(status.code(), error.code());
            assert_eq!(ApiError::from(status), error);
        }
    }

    #[test]
    fn storage_errors_are_unavailable_only_when_transient() {
        assert_eq!(ApiError::storage(true, "x").code(), Code::Unavailable);
        assert_eq!(ApiError::storage(false, "x").code(), Code::Internal);
    }
}
