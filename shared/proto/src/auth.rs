//! Who is calling and what they may touch.
//!
//! The server's tower layer (`touchstone::auth`) checks the caller's API key and the scope
//! the method needs before a request reaches a service, and puts the key's [`Principal`]
//! into the request's extensions. Which tenants a request touches is only known once it is
//! decoded, so [`crate::validate::valid`] asks every request for its [`Tenants`] and
//! refuses with PERMISSION_DENIED one that names a tenant its key is not for. Without the
//! layer (a server started open) no principal is present and everything is allowed.

use crate::error::ApiError;
use touchstone_core::error::{ErrorKind, Reason};
use crate::v1 as pb;

/// What a key may do: the methods of a service, grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Scope {
    /// `IngestService`: records, badge issue and revoke.
    Ingest,
    /// `QueryService` and the read methods of `ConfigService`.
    Query,
    /// Changing configuration, goals and badge definitions; recomputes.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Ingest, Scope::Query, Scope::Admin];

    pub fn name(self) -> &'static str {
        match self {
            Scope::Ingest => "ingest",
            Scope::Query => "query",
            Scope::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Scope> {
        Scope::ALL.into_iter().find(|scope| scope.name() == name)
    }
}

/// The scopes that allow a method, by its gRPC path (`/touchstone.v1.QueryService/...`);
/// `None` for a method open to anyone (health, reflection). A key needs one of them.
pub fn scopes_for(path: &str) -> Option<&'static [Scope]> {
    let path = path.trim_start_matches('/');
    let (service, method) = path.split_once('/').unwrap_or((path, ""));
    if service.starts_with("grpc.health.") || service.starts_with("grpc.reflection.") {
        return None;
    }
    Some(match (service, method) {
        ("touchstone.v1.IngestService", _) => &[Scope::Ingest],
        // Senders ask it before sending, with their ingest keys.
        ("touchstone.v1.QueryService", "GetHoldout") => &[Scope::Ingest, Scope::Query],
        ("touchstone.v1.QueryService", _) => &[Scope::Query],
        ("touchstone.v1.ConfigService", "GetConfig" | "ListGoals" | "ListBadges") => &[Scope::Query, Scope::Admin],
        ("touchstone.v1.ConfigService", _) => &[Scope::Admin],
        // Status is shard-wide; each caller sees only its tenants' set-aside entries.
        ("touchstone.v1.AttributionService", "GetStatus") => &[Scope::Ingest, Scope::Query, Scope::Admin],
        _ => &[Scope::Admin],
    })
}

/// The caller, as its key says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The key's id (never its secret), for logs.
    pub key_id: String,
    /// The one tenant the key is for; `None` for an operator key, good for every tenant.
    pub tenant: Option<String>,
    pub scopes: Vec<Scope>,
}

impl Principal {
    pub fn may_touch(&self, tenant: &str) -> bool {
        self.tenant.as_deref().is_none_or(|own| own == tenant)
    }

    /// PERMISSION_DENIED unless the key is for `tenant`.
    pub fn check_tenant(&self, tenant: &str) -> Result<(), ApiError> {
        if self.may_touch(tenant) {
            return Ok(());
        }
        let reason = Reason::new("TENANT_NOT_ALLOWED").with("key_id", self.key_id.as_str()).with("tenant", tenant);
        let message = format!("API key {} is for tenant {:?}, not {tenant:?}", self.key_id, self.tenant.as_deref().unwrap_or_default());
        Err(ApiError::named(ErrorKind::PermissionDenied, reason, message))
    }
}

/// The caller of `request`, when the server checks keys.
pub fn principal<T>(request: &tonic::Request<T>) -> Option<Principal> {
    request.extensions().get::<Principal>().cloned()
}

/// PERMISSION_DENIED if `principal` may not touch every tenant `message` names.
pub fn authorize<T: Tenants>(principal: Option<&Principal>, message: &T) -> Result<(), ApiError> {
    let Some(principal) = principal else { return Ok(()) };
    message.tenants().into_iter().try_for_each(|tenant| principal.check_tenant(tenant))
}

/// The tenants a request reads or changes.
pub trait Tenants {
    fn tenants(&self) -> Vec<&str>;
}

macro_rules! one_tenant {
    ($($request:ty),+ $(,)?) => {
        $(impl Tenants for $request {
            fn tenants(&self) -> Vec<&str> {
                vec![self.tenant.as_str()]
            }
        })+
    };
}

one_tenant!(
    pb::GetConfigRequest,
    pb::UpdateSettingsRequest,
    pb::CreateGoalRequest,
    pb::ListGoalsRequest,
    pb::DeleteGoalRequest,
    pb::RecomputeRequest,
    pb::CampaignStatsRequest,
    pb::ListCampaignsRequest,
    pb::ListMessageStatsRequest,
    pb::GoalKpisRequest,
    pb::GoalSeriesRequest,
    pb::CampaignSeriesRequest,
    pb::ExplainConversionRequest,
    pb::HoldoutRequest,
    pb::LiftRequest,
    pb::ModelReportRequest,
    pb::IssueBadgeRequest,
    pb::SaveBadgeRequest,
    pb::SaveBadgesRequest,
    pb::ListBadgesRequest,
    pb::SetBadgeActiveRequest,
    pb::BadgeTimelineRequest,
    pb::BadgeStatsRequest,
    pb::WatchBadgeEventsRequest,
    pb::TrophyCaseRequest,
    pb::Message,
    pb::Touch,
    pb::AppEvent,
    pb::OrderRecord,
    pb::BadgeEvent,
);

/// Status names no tenant: it is filtered per caller instead.
impl Tenants for pb::GetStatusRequest {
    fn tenants(&self) -> Vec<&str> {
        Vec::new()
    }
}

impl Tenants for pb::Record {
    fn tenants(&self) -> Vec<&str> {
        use pb::record::Kind;
        match &self.kind {
            Some(Kind::Message(m)) => m.tenants(),
            Some(Kind::Touch(t)) => t.tenants(),
            Some(Kind::Event(e)) => e.tenants(),
            Some(Kind::Order(o)) => o.tenants(),
            Some(Kind::Badge(b)) => b.tenants(),
            None => Vec::new(),
        }
    }
}

fn all<T: Tenants>(items: &[T]) -> Vec<&str> {
    let mut tenants: Vec<&str> = items.iter().flat_map(Tenants::tenants).collect();
    tenants.sort_unstable();
    tenants.dedup();
    tenants
}

/// Requests carrying a list of records: every tenant they name.
macro_rules! many_tenants {
    ($($request:ty => $items:ident),+ $(,)?) => {
        $(impl Tenants for $request {
            fn tenants(&self) -> Vec<&str> {
                all(&self.$items)
            }
        })+
    };
}

many_tenants!(
    pb::RegisterMessagesRequest => messages,
    pb::RecordTouchesRequest => touches,
    pb::PostEventsRequest => events,
    pb::RecordOrdersRequest => orders,
    pb::RecordBadgeEventsRequest => badges,
    pb::IngestChunk => records,
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_need_their_scopes_and_probes_none() {
        assert_eq!(scopes_for("/grpc.health.v1.Health/Check"), None);
        assert_eq!(scopes_for("/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"), None);
        assert_eq!(scopes_for("/touchstone.v1.IngestService/PostEvents"), Some(&[Scope::Ingest][..]));
        assert_eq!(scopes_for("/touchstone.v1.ConfigService/UpdateSettings"), Some(&[Scope::Admin][..]));
        assert_eq!(scopes_for("/touchstone.v1.ConfigService/ListBadges"), Some(&[Scope::Query, Scope::Admin][..]));
        assert_eq!(scopes_for("/touchstone.v1.AttributionService/Recompute"), Some(&[Scope::Admin][..]));
        assert_eq!(scopes_for("/touchstone.v1.QueryService/GetHoldout"), Some(&[Scope::Ingest, Scope::Query][..]), "senders ask it");
        assert_eq!(scopes_for("/touchstone.v1.QueryService/GetGoalKpis"), Some(&[Scope::Query][..]));
        assert_eq!(scopes_for("/touchstone.v1.Unknown/X"), Some(&[Scope::Admin][..]));
    }

    #[test]
    fn a_tenant_key_touches_its_tenant_only() {
        let key = Principal { key_id: "k1".into(), tenant: Some("a".into()), scopes: vec![Scope::Ingest] };
        let events = pb::PostEventsRequest {
            events: vec![pb::AppEvent { tenant: "a".into(), ..Default::default() }, pb::AppEvent { tenant: "b".into(), ..Default::default() }],
        };
        let denied = authorize(Some(&key), &events).unwrap_err();
        assert_eq!(denied.code(), tonic::Code::PermissionDenied);
        assert!(denied.to_string().contains("\"b\""), "{denied}");
        let own = pb::PostEventsRequest { events: vec![pb::AppEvent { tenant: "a".into(), ..Default::default() }] };
        assert_eq!(authorize(Some(&key), &own), Ok(()));
        let operator = Principal { tenant: None, ..key };
        assert_eq!(authorize(Some(&operator), &events), Ok(()));
        assert_eq!(authorize(None, &events), Ok(()), "an open server allows everything");
    }
}
