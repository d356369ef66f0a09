//! The one table from errors to gRPC status codes. Every crate's error implements
//! [`ServiceError`] (its [`ErrorKind`]); `?` turns it into an [`ApiError`], and this file
//! alone decides the `tonic::Code`. A kind is the only thing that crosses: an internal
//! failure's text is what its error displays, never a panic's.

use tonic::{Code, Status};
use touchstone_core::error::{ErrorKind, Reason, ServiceError};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// The request itself is malformed (missing tenant, unknown enum, bad range).
    #[error("{0}")]
    InvalidArgument(String),
    /// One field of the request is malformed: INVALID_ARGUMENT naming the field.
    #[error("{message}")]
    BadField { field: String, message: String },
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
    /// Over a limit; the status carries when to retry.
    #[error("{0}")]
    ResourceExhausted(String),
    /// Over a tenant's rate; the status's RetryInfo carries `retry_after`, which the
    /// message names.
    #[error("{message}")]
    RateLimited { tenant: String, message: String, retry_after: std::time::Duration },
    /// Over a limit the same request will always be over (a message too large): no retry.
    #[error("{0}")]
    TooLarge(String),
    /// Any kind, with a reason of its own (what is missing, what is in the way).
    #[error("{message}")]
    Named { kind: ErrorKind, reason: Reason, message: String },
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
            ErrorKind::ResourceExhausted => ApiError::ResourceExhausted(message),
        }
    }

    /// INVALID_ARGUMENT about `field` of the request.
    pub fn bad_field(field: &str, message: impl Into<String>) -> ApiError {
        ApiError::BadField { field: field.to_owned(), message: message.into() }
    }

    /// An error of `kind` with its own `reason`.
    pub fn named(kind: ErrorKind, reason: Reason, message: impl Into<String>) -> ApiError {
        ApiError::Named { kind, reason, message: message.into() }
    }

    /// NOT_FOUND of what `reason` names.
    pub fn not_found(reason: Reason, message: impl Into<String>) -> ApiError {
        ApiError::named(ErrorKind::NotFound, reason, message)
    }

    /// The stable reason a client matches on (`ErrorInfo.reason` and its metadata): the
    /// error's own, else one for what the variant says.
    pub fn reason(&self) -> Reason {
        match self {
            ApiError::Named { reason, .. } => reason.clone(),
            ApiError::BadField { field, .. } => Reason::new("INVALID_FIELD").with("field", field.clone()),
            ApiError::InvalidArgument(_) => Reason::new("INVALID_REQUEST"),
            ApiError::RateLimited { tenant, retry_after, .. } => {
                Reason::new("RATE_LIMITED").with("tenant", tenant.clone()).with("retry_after_ms", retry_after.as_millis().to_string())
            }
            ApiError::TooLarge(_) => Reason::new("MESSAGE_TOO_LARGE"),
            ApiError::ResourceExhausted(_) => Reason::new("OVERLOADED"),
            ApiError::Aborted(_) => Reason::new("CONCURRENT_CHANGE"),
            ApiError::Unavailable(_) => Reason::new("UNAVAILABLE"),
            ApiError::Internal(_) => Reason::new("INTERNAL"),
            ApiError::NotFound(_) => Reason::new("NOT_FOUND"),
            ApiError::FailedPrecondition(_) => Reason::new("FAILED_PRECONDITION"),
            ApiError::Unauthenticated(_) => Reason::new("UNAUTHENTICATED"),
            ApiError::PermissionDenied(_) => Reason::new("PERMISSION_DENIED"),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ApiError::InvalidArgument(_) | ApiError::BadField { .. } => ErrorKind::InvalidArgument,
            ApiError::NotFound(_) => ErrorKind::NotFound,
            ApiError::FailedPrecondition(_) => ErrorKind::FailedPrecondition,
            ApiError::Aborted(_) => ErrorKind::Aborted,
            ApiError::Unavailable(_) => ErrorKind::Unavailable,
            ApiError::Internal(_) => ErrorKind::Internal,
            ApiError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            ApiError::PermissionDenied(_) => ErrorKind::PermissionDenied,
            ApiError::ResourceExhausted(_) | ApiError::TooLarge(_) | ApiError::RateLimited { .. } => ErrorKind::ResourceExhausted,
            ApiError::Named { kind, .. } => *kind,
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
        ErrorKind::ResourceExhausted => Code::ResourceExhausted,
    }
}

/// Every crate's error, by its kind. (`ApiError` itself is no `ServiceError`, so this does
/// not overlap the identity conversion.)
impl<E: ServiceError> From<E> for ApiError {
    fn from(error: E) -> ApiError {
        match (error.kind(), error.field(), error.reason()) {
            (ErrorKind::InvalidArgument, Some(field), _) => ApiError::bad_field(field, error.to_string()),
            (kind, _, Some(reason)) => ApiError::named(kind, reason, error.to_string()),
            (kind, _, None) => ApiError::new(kind, error.to_string()),
        }
    }
}

/// The `ErrorInfo` domain of every error this server gives.
pub const ERROR_DOMAIN: &str = "touchstone.v1";
/// How long a client should wait before retrying an UNAVAILABLE or ABORTED call.
pub const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(1);

/// A status with the standard details (`google.rpc`) clients act on: `BadRequest` with the
/// field for INVALID_ARGUMENT, `RetryInfo` for what a retry may fix, `ErrorInfo` (reason and
/// domain) for every error.
impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        use tonic_types::ErrorDetails;
        let message = error.to_string();
        let mut details = ErrorDetails::new();
        match &error {
            ApiError::BadField { field, message } => {
                details.add_bad_request_violation(field.clone(), message.clone());
            }
            // Not one field's fault: the request as a whole.
            ApiError::InvalidArgument(message) => {
                details.add_bad_request_violation("", message.clone());
            }
            ApiError::RateLimited { retry_after, .. } => {
                details.set_retry_info(Some(*retry_after));
            }
            _ if matches!(error.kind(), ErrorKind::Unavailable | ErrorKind::Aborted | ErrorKind::ResourceExhausted)
                && !matches!(error, ApiError::TooLarge(_)) =>
            {
                details.set_retry_info(Some(RETRY_AFTER));
            }
            _ => {}
        }
        status_with_reason(error.code(), message, error.reason(), details)
    }
}

/// A status carrying `reason` as its `ErrorInfo` (domain [`ERROR_DOMAIN`]) beside `details`:
/// for statuses made outside [`ApiError`] (the auth and limit layers).
pub fn status_with_reason(code: Code, message: String, reason: Reason, mut details: tonic_types::ErrorDetails) -> Status {
    use tonic_types::StatusExt as _;
    let metadata: std::collections::HashMap<String, String> =
        reason.metadata.into_iter().map(|(key, value)| (key.to_owned(), value)).collect();
    details.set_error_info(reason.name, ERROR_DOMAIN, metadata);
    Status::with_error_details(code, message, details)
}

/// The canonical gRPC name of a code, as in `grpcurl` and the gRPC docs.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl ApiError {
    /// For clients: the inverse of the table, so a round trip keeps the kind.
    pub fn from_status(status: &Status) -> ApiError {
        let message = status.message().to_owned();
        match status.code() {
            Code::InvalidArgument | Code::OutOfRange => {
                use tonic_types::StatusExt as _;
                let field = status.get_details_bad_request().and_then(|bad| bad.field_violations.into_iter().next()).map(|v| v.field);
                match field {
                    Some(field) if !field.is_empty() => ApiError::BadField { field, message },
                    _ => ApiError::InvalidArgument(message),
                }
            }
            Code::NotFound => ApiError::NotFound(message),
            Code::FailedPrecondition | Code::AlreadyExists => ApiError::FailedPrecondition(message),
            Code::Aborted => ApiError::Aborted(message),
            Code::Unavailable | Code::DeadlineExceeded => ApiError::Unavailable(message),
            Code::ResourceExhausted => ApiError::ResourceExhausted(message),
            Code::Ok
            | Code::Cancelled
            | Code::Unknown
            | Code::Unimplemented
            | Code::Internal
            | Code::DataLoss => ApiError::Internal(message),
            Code::PermissionDenied => ApiError::PermissionDenied(message),
            Code::Unauthenticated => ApiError::Unauthenticated(message),
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
    fn errors_carry_their_reason_and_what_it_names() {
        use tonic_types::StatusExt as _;
        let info = |error: ApiError| Status::from(error).get_details_error_info().expect("an ErrorInfo");
        let missing = info(ApiError::not_found(Reason::campaign_not_found("acme", "spring"), "no campaign"));
        assert_eq!((missing.reason.as_str(), missing.domain.as_str()), ("CAMPAIGN_NOT_FOUND", ERROR_DOMAIN));
        assert_eq!(missing.metadata.get("campaign_id").map(String::as_str), Some("spring"));
        assert_eq!(missing.metadata.get("tenant").map(String::as_str), Some("acme"));
        let field = info(ApiError::bad_field("range", "from after to"));
        assert_eq!((field.reason.as_str(), field.metadata.get("field").map(String::as_str)), ("INVALID_FIELD", Some("range")));
        // Crate errors bring their own reasons; a store that is down says so, with RetryInfo.
        let goal = info(ApiError::from(ConfigError::GoalChanged("g".into())));
        assert_eq!((goal.reason.as_str(), goal.metadata.get("goal_id").map(String::as_str)), ("GOAL_CHANGED", Some("g")));
        let status = Status::from(ApiError::named(ErrorKind::Unavailable, Reason::new("STORAGE_UNAVAILABLE"), "down"));
        assert!(status.get_details_retry_info().is_some(), "{status:?}");
    }

    #[test]
    fn crate_errors_keep_their_kind_and_text() {
        let error = ApiError::from(ConfigError::TooManyGoals);
        assert_eq!(error.code(), Code::FailedPrecondition);
        assert_eq!(error.to_string(), ConfigError::TooManyGoals.to_string());
        assert_eq!(ApiError::from(ConfigError::GoalNotFound("g".into())).code(), Code::NotFound);
    }
}
