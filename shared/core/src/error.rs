//! What kind of failure an error is, independent of any transport: each crate's error
//! implements [`ServiceError`], and the API layer maps an [`ErrorKind`] to a gRPC code in
//! one place (`touchstone_proto::error`), as quickwit's `ServiceError` does.

/// The kinds of failure a caller can tell apart and act on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The request itself is malformed; sending it again will not help.
    InvalidArgument,
    /// The thing asked about does not exist.
    NotFound,
    /// Valid, but refused in the current state (a 6th goal, changing a saved goal).
    FailedPrecondition,
    /// Lost a race with a concurrent change; retrying the call may succeed.
    Aborted,
    /// A dependency is unreachable or timed out; retrying later may succeed.
    Unavailable,
    /// A bug or a damaged store: nothing the caller did.
    Internal,
    /// No valid credentials came with the request.
    Unauthenticated,
    /// The credentials do not allow this (another tenant's data, a missing scope).
    PermissionDenied,
    /// Over a limit (a tenant's ingest rate): retrying after a while may succeed.
    ResourceExhausted,
}

impl ErrorKind {
    pub const ALL: [ErrorKind; 9] = [
        ErrorKind::InvalidArgument,
        ErrorKind::NotFound,
        ErrorKind::FailedPrecondition,
        ErrorKind::Aborted,
        ErrorKind::Unavailable,
        ErrorKind::Internal,
        ErrorKind::Unauthenticated,
        ErrorKind::PermissionDenied,
        ErrorKind::ResourceExhausted,
    ];
}

/// Why a call failed, as a client's code tells it apart: a stable UPPER_SNAKE name and the
/// resources involved (gRPC's `google.rpc.ErrorInfo` `reason` and `metadata`). The message
/// is for people and may change; a reason's name never does. README's error table lists
/// every name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub name: &'static str,
    pub metadata: Vec<(&'static str, String)>,
}

impl Reason {
    pub fn new(name: &'static str) -> Reason {
        Reason { name, metadata: Vec::new() }
    }

    /// The reason, naming one more resource.
    pub fn with(mut self, key: &'static str, value: impl Into<String>) -> Reason {
        self.metadata.push((key, value.into()));
        self
    }

    pub fn tenant_not_found(tenant: &str) -> Reason {
        Reason::new("TENANT_NOT_FOUND").with("tenant", tenant)
    }

    pub fn campaign_not_found(tenant: &str, campaign_id: &str) -> Reason {
        Reason::new("CAMPAIGN_NOT_FOUND").with("tenant", tenant).with("campaign_id", campaign_id)
    }

    pub fn goal_not_found(tenant: &str, goal_id: &str) -> Reason {
        Reason::new("GOAL_NOT_FOUND").with("tenant", tenant).with("goal_id", goal_id)
    }

    pub fn badge_not_defined(tenant: &str, badge_id: &str) -> Reason {
        Reason::new("BADGE_NOT_DEFINED").with("tenant", tenant).with("badge_id", badge_id)
    }

    /// The server is stopping: the same call to a server that is up succeeds.
    pub fn shutting_down() -> Reason {
        Reason::new("SHUTTING_DOWN")
    }
}

/// An error that knows its [`ErrorKind`]. Its `Display` text is what a client is told.
pub trait ServiceError: std::error::Error {
    fn kind(&self) -> ErrorKind;

    /// Its stable reason, when it has one of its own; else the API layer names it by its
    /// kind and field.
    fn reason(&self) -> Option<Reason> {
        None
    }

    /// The request field an INVALID_ARGUMENT error is about, when it is one field's fault:
    /// clients get it as a `google.rpc.BadRequest` field violation.
    fn field(&self) -> Option<&str> {
        None
    }
}

impl ServiceError for crate::config::ConfigError {
    fn kind(&self) -> ErrorKind {
        use crate::config::ConfigError as E;
        match self {
            E::InvalidGoal(_) | E::InvalidSetting(_) => ErrorKind::InvalidArgument,
            E::GoalNotFound(_) => ErrorKind::NotFound,
            E::TooManyGoals | E::GoalChanged(_) | E::DefaultGoalUndeletable => ErrorKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> Option<Reason> {
        use crate::config::ConfigError as E;
        match self {
            E::InvalidGoal(_) | E::InvalidSetting(_) => None,
            E::GoalNotFound(goal_id) => Some(Reason::new("GOAL_NOT_FOUND").with("goal_id", goal_id)),
            E::TooManyGoals => Some(Reason::new("TOO_MANY_GOALS")),
            E::GoalChanged(goal_id) => Some(Reason::new("GOAL_CHANGED").with("goal_id", goal_id)),
            E::DefaultGoalUndeletable => Some(Reason::new("DEFAULT_GOAL_UNDELETABLE").with("goal_id", "orders")),
        }
    }

    fn field(&self) -> Option<&str> {
        use crate::config::ConfigError as E;
        match self {
            E::InvalidGoal(_) => Some("goal"),
            E::InvalidSetting(_) => Some("settings"),
            _ => None,
        }
    }
}

impl ServiceError for crate::validate::InvalidRecord {
    fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidArgument
    }

    fn field(&self) -> Option<&str> {
        use crate::validate::InvalidRecord as E;
        Some(match self {
            E::Missing(field) | E::TooLong { field } | E::TooMany { field, .. } | E::TimeOutOfRange { field, .. } => field,
            E::BatchTooLarge { .. } => "records",
            E::NegativeAmount(_) | E::AmountTooLarge(_) => "amount_minor",
            E::BadCurrency(_) => "currency",
            E::BadValue(_) => "value",
            E::ReservedBadgeId(_) => "event_id",
        })
    }
}

impl ServiceError for crate::badges::BadgeError {
    fn kind(&self) -> ErrorKind {
        use crate::badges::BadgeError as E;
        match self {
            E::Invalid(_) => ErrorKind::InvalidArgument,
            E::NotFound(_) => ErrorKind::NotFound,
            E::RuleChanged(_) | E::TooMany => ErrorKind::FailedPrecondition,
        }
    }

    fn reason(&self) -> Option<Reason> {
        use crate::badges::BadgeError as E;
        match self {
            E::Invalid(_) => None,
            E::RuleChanged(badge_id) => Some(Reason::new("BADGE_RULE_CHANGED").with("badge_id", badge_id)),
            E::NotFound(badge_id) => Some(Reason::new("BADGE_NOT_DEFINED").with("badge_id", badge_id)),
            E::TooMany => Some(Reason::new("TOO_MANY_BADGES")),
        }
    }

    fn field(&self) -> Option<&str> {
        matches!(self, crate::badges::BadgeError::Invalid(_)).then_some("badge")
    }
}
