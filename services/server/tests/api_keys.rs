//! API keys, driven in-process: a key of tenant `a` gets PERMISSION_DENIED for tenant `b`
//! in every RPC of every service (the walk is checked against the API's descriptor, so a
//! new RPC without a line here fails the test); no key, an unknown key and a revoked key
//! get UNAUTHENTICATED; a key without the method's scope gets PERMISSION_DENIED; health
//! answers without a key; the key's own tenant works.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use touchstone_server::keys::{ALL_TENANTS, KeyRing, KeysFile};
use touchstone_server::serve::Roles;
use touchstone_proto::auth::Scope;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

mod common;

use common::{InProcess, dev_roles, reason};

const TS: i64 = 1_767_225_600_000;

type Authed = InterceptedService<Channel, KeyHeader>;

#[derive(Clone)]
struct KeyHeader(Option<String>);

impl tonic::service::Interceptor for KeyHeader {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(key) = &self.0 {
            request.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {key}")).unwrap());
        }
        Ok(request)
    }
}

struct Clients {
    ingest: IngestServiceClient<Authed>,
    config: ConfigServiceClient<Authed>,
    attribution: AttributionServiceClient<Authed>,
    query: QueryServiceClient<Authed>,
}

fn clients(channel: &Channel, key: Option<&str>) -> Clients {
    let authed = || InterceptedService::new(channel.clone(), KeyHeader(key.map(str::to_owned)));
    Clients {
        ingest: IngestServiceClient::new(authed()),
        config: ConfigServiceClient::new(authed()),
        attribution: AttributionServiceClient::new(authed()),
        query: QueryServiceClient::new(authed()),
    }
}

fn message(tenant: &str) -> pb::Message {
    pb::Message { tenant: tenant.into(), msg_hash: "m1".into(), campaign_id: "c1".into(), channel: pb::Channel::Push.into(), tags: vec![], sent_at: TS }
}

fn event(tenant: &str) -> pb::AppEvent {
    pb::AppEvent { tenant: tenant.into(), event_id: "e1".into(), customer_id: "c1".into(), name: "checkin".into(), ts: TS, value: None, msg_hash: None }
}

/// Every RPC of the API against `tenant`, each with its name: what the walk must cover.
async fn walk(c: &mut Clients, tenant: &str, mut check: impl FnMut(&str, Result<(), Status>)) {
    fn done<T>(result: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
        result.map(|_| ())
    }
    async fn call<T>(call: impl Future<Output = Result<tonic::Response<T>, Status>>) -> Result<(), Status> {
        done(call.await)
    }
    let t = || tenant.to_owned();
    let touch = pb::Touch { tenant: t(), event_id: "t1".into(), msg_hash: "m1".into(), customer_id: "c1".into(), touch: pb::TouchKind::Opened.into(), ts: TS };
    let order = pb::OrderRecord {
        tenant: t(),
        event_id: "o1".into(),
        order_id: "o1".into(),
        customer_id: "c1".into(),
        status: "PAID".into(),
        amount_minor: 100,
        currency: "USD".into(),
        categories: vec![],
        channel: "app".into(),
        ts: TS,
        msg_hash: None,
    };
    let badge = pb::BadgeEvent {
        tenant: t(),
        event_id: "b1".into(),
        customer_id: "c1".into(),
        badge_id: "vip".into(),
        action: pb::BadgeAction::Earned.into(),
        ts: TS,
        source: pb::BadgeSource::Api.into(),
        reason: None,
    };
    let issue = pb::IssueBadgeRequest {
        tenant: t(),
        event_id: "i1".into(),
        customer_id: "c1".into(),
        badge_id: "vip".into(),
        ts: Some(TS),
        actor: "agent".into(),
        reason: None,
        source: pb::BadgeSource::DirectIssue.into(),
    };
    let definition = pb::BadgeDefinition { id: "vip".into(), name: "VIP".into(), active: true, ..Default::default() };
    let range = Some(pb::TimeRange { from_ms: Some(TS), to_ms: Some(TS + 86_400_000) });

    check("IngestService/RegisterMessages", call(c.ingest.register_messages(pb::RegisterMessagesRequest { messages: vec![message(tenant)] })).await);
    check("IngestService/RecordTouches", call(c.ingest.record_touches(pb::RecordTouchesRequest { touches: vec![touch] })).await);
    check("IngestService/PostEvents", call(c.ingest.post_events(pb::PostEventsRequest { events: vec![event(tenant)] })).await);
    check("IngestService/RecordOrders", call(c.ingest.record_orders(pb::RecordOrdersRequest { orders: vec![order.clone()] })).await);
    check("IngestService/RecordBadgeEvents", call(c.ingest.record_badge_events(pb::RecordBadgeEventsRequest { badges: vec![badge] })).await);
    check("IngestService/IssueBadge", call(c.ingest.issue_badge(issue.clone())).await);
    check("IngestService/RevokeBadge", call(c.ingest.revoke_badge(pb::IssueBadgeRequest { event_id: "r1".into(), source: 0, ..issue })).await);
    let chunk = pb::IngestChunk { records: vec![pb::Record { kind: Some(pb::record::Kind::Order(order)) }] };
    check("IngestService/IngestStream", call(c.ingest.ingest_stream(tokio_stream::iter(vec![chunk]))).await);

    check("ConfigService/GetConfig", call(c.config.get_config(pb::GetConfigRequest { tenant: t() })).await);
    let settings = pb::UpdateSettingsRequest { tenant: t(), currency: Some("EUR".into()), ..Default::default() };
    check("ConfigService/UpdateSettings", call(c.config.update_settings(settings)).await);
    let goal = pb::Goal { id: "checkin".into(), kind: pb::GoalKind::Event.into(), event_name: "checkin".into(), ..Default::default() };
    check("ConfigService/CreateGoal", call(c.config.create_goal(pb::CreateGoalRequest { tenant: t(), goal: Some(goal) })).await);
    check("ConfigService/ListGoals", call(c.config.list_goals(pb::ListGoalsRequest { tenant: t() })).await);
    check("ConfigService/DeleteGoal", call(c.config.delete_goal(pb::DeleteGoalRequest { tenant: t(), goal_id: "checkin".into() })).await);
    check("ConfigService/SaveBadge", call(c.config.save_badge(pb::SaveBadgeRequest { tenant: t(), badge: Some(definition.clone()) })).await);
    check("ConfigService/SaveBadges", call(c.config.save_badges(pb::SaveBadgesRequest { tenant: t(), badges: vec![definition] })).await);
    check("ConfigService/ListBadges", call(c.config.list_badges(pb::ListBadgesRequest { tenant: t() })).await);
    let active = pb::SetBadgeActiveRequest { tenant: t(), badge_id: "vip".into(), active: false };
    check("ConfigService/SetBadgeActive", call(c.config.set_badge_active(active)).await);

    check("AttributionService/Recompute", call(c.attribution.recompute(pb::RecomputeRequest { tenant: t() })).await);

    let stats = pb::CampaignStatsRequest { tenant: t(), campaign_id: "c1".into(), range };
    check("QueryService/GetCampaignStats", call(c.query.get_campaign_stats(stats)).await);
    check("QueryService/ListCampaigns", call(c.query.list_campaigns(pb::ListCampaignsRequest { tenant: t(), range })).await);
    let messages = pb::ListMessageStatsRequest { tenant: t(), range, campaign_id: None };
    check("QueryService/ListMessageStats", call(c.query.list_message_stats(messages)).await);
    check("QueryService/GetGoalKpis", call(c.query.get_goal_kpis(pb::GoalKpisRequest { tenant: t(), range, goal_id: None, model: 0 })).await);
    let series = pb::GoalSeriesRequest { tenant: t(), goal_id: "orders".into(), range, time_zone: String::new() };
    check("QueryService/GetGoalSeries", call(c.query.get_goal_series(series)).await);
    let series = pb::CampaignSeriesRequest { tenant: t(), campaign_id: "c1".into(), range, time_zone: String::new() };
    check("QueryService/GetCampaignSeries", call(c.query.get_campaign_series(series)).await);
    let explain = pb::ExplainConversionRequest { tenant: t(), goal_id: "orders".into(), conversion_key: "o1".into() };
    check("QueryService/ExplainConversion", call(c.query.explain_conversion(explain)).await);
    let holdout = pb::HoldoutRequest { tenant: t(), campaign_id: "c1".into(), customer_id: "c1".into() };
    check("QueryService/GetHoldout", call(c.query.get_holdout(holdout)).await);
    let lift = pb::LiftRequest { tenant: t(), campaign_id: "c1".into(), goal_id: None, range };
    check("QueryService/GetLift", call(c.query.get_lift(lift)).await);
    let models = pb::ModelReportRequest { tenant: t(), range, goal_id: None, by_message: false, campaign_id: None };
    check("QueryService/GetModelReport", call(c.query.get_model_report(models)).await);
    let timeline = pb::BadgeTimelineRequest { tenant: t(), customer_id: "c1".into(), ..Default::default() };
    check("QueryService/GetBadgeTimeline", call(c.query.get_badge_timeline(timeline)).await);
    check("QueryService/GetTrophyCase", call(c.query.get_trophy_case(pb::TrophyCaseRequest { tenant: t(), customer_id: "c1".into() })).await);
    let badge_stats = pb::BadgeStatsRequest { tenant: t(), badge_id: "vip".into(), range };
    check("QueryService/GetBadgeStats", call(c.query.get_badge_stats(badge_stats)).await);
    let watch = pb::WatchBadgeEventsRequest { tenant: t(), ..Default::default() };
    check("QueryService/WatchBadgeEvents", call(c.query.watch_badge_events(watch)).await);
}

/// Every RPC of the touchstone.v1 services, as `Service/Method`, from the API's descriptor.
fn every_rpc() -> BTreeSet<String> {
    use prost::Message as _;
    let set = prost_types::FileDescriptorSet::decode(touchstone_proto::FILE_DESCRIPTOR_SET).unwrap();
    set.file
        .iter()
        .filter(|file| file.package() == "touchstone.v1")
        .flat_map(|file| file.service.iter())
        .flat_map(|service| service.method.iter().map(move |method| format!("{}/{}", service.name(), method.name())))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_confine_every_rpc_to_their_tenant_and_scopes() {
    let dir = tempfile::tempdir().unwrap();
    let keys_path = dir.path().join("keys.json");
    let mut file = KeysFile::default();
    let (_, key_a) = file.create("a", &Scope::ALL, "a, everything");
    let (_, key_a_query) = file.create("a", &[Scope::Query], "a, reports");
    let (revoked_stored, key_revoked) = file.create("a", &Scope::ALL, "to revoke");
    let (_, operator) = file.create(ALL_TENANTS, &[Scope::Admin, Scope::Query], "ops");
    file.write(&keys_path).unwrap();

    let server = InProcess::start(Roles { keys: Some(KeyRing::load(&keys_path).unwrap()), ..dev_roles() }).await;
    let channel = server.channel.clone();

    // Tenant a's key, tenant b's data: denied everywhere, and every RPC is walked.
    let mut walked = BTreeSet::new();
    walk(&mut clients(&channel, Some(&key_a)), "b", |rpc, result| {
        let status = result.expect_err(rpc);
        assert_eq!(status.code(), Code::PermissionDenied, "{rpc}: {status:?}");
        assert!(status.message().contains("\"b\""), "{rpc}: {}", status.message());
        let (why, about) = reason(&status);
        assert_eq!((why.as_str(), about.get("tenant").map(String::as_str)), ("TENANT_NOT_ALLOWED", Some("b")), "{rpc}: {status:?}");
        walked.insert(rpc.to_owned());
    })
    .await;
    walked.insert("AttributionService/GetStatus".to_owned());
    assert_eq!(walked, every_rpc(), "the walk must cover every RPC of the API");

    // No key, a made-up key: UNAUTHENTICATED everywhere.
    for (key, why) in [(None, "API_KEY_MISSING"), (Some("tsk_0000_1111"), "API_KEY_UNKNOWN"), (Some("garbage"), "API_KEY_UNKNOWN")] {
        walk(&mut clients(&channel, key), "a", |rpc, result| {
            let status = result.expect_err(rpc);
            assert_eq!(status.code(), Code::Unauthenticated, "{rpc} with {key:?}");
            assert_eq!(reason(&status).0, why, "{rpc} with {key:?}");
        })
        .await;
    }

    // The query-only key: reads of its tenant pass the checks, anything else is denied.
    // (Tenant a exists once it has a record: queries of a tenant that does not are NOT_FOUND.)
    let first = pb::AppEvent { event_id: "e0".into(), ..event("a") };
    clients(&channel, Some(&key_a)).ingest.post_events(pb::PostEventsRequest { events: vec![first] }).await.unwrap();
    let mut reads = 0;
    walk(&mut clients(&channel, Some(&key_a_query)), "a", |rpc, result| {
        let read = rpc.starts_with("QueryService/") || ["ConfigService/GetConfig", "ConfigService/ListGoals", "ConfigService/ListBadges"].contains(&rpc);
        match result {
            Err(status) if status.code() == Code::PermissionDenied => {
                assert!(!read, "{rpc} is a read: {status:?}");
                let (why, about) = reason(&status);
                assert_eq!((why.as_str(), about.contains_key("key_id")), ("SCOPE_MISSING", true), "{rpc}: {status:?}");
            }
            // Reads may still fail for what they ask (no such badge or conversion), never for the key.
            Err(status) => assert!(read && status.code() == Code::NotFound, "{rpc}: {status:?}"),
            Ok(()) => {
                assert!(read, "{rpc} passed with a query-only key");
                reads += 1;
            }
        }
    })
    .await;
    assert!(reads >= 10, "{reads} reads passed");

    // Its own tenant with the full key, and any tenant with the operator's: allowed.
    let mut own = clients(&channel, Some(&key_a));
    let reply = own.ingest.post_events(pb::PostEventsRequest { events: vec![event("a")] }).await.unwrap().into_inner();
    assert_eq!(reply.accepted, 1);
    let mut ops = clients(&channel, Some(&operator));
    assert_eq!(ops.config.get_config(pb::GetConfigRequest { tenant: "b".into() }).await.unwrap().into_inner().tenant, "b");
    let refused = ops.ingest.post_events(pb::PostEventsRequest { events: vec![event("b")] }).await.unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "the operator key has no ingest scope");
    own.attribution.get_status(pb::GetStatusRequest {}).await.unwrap();

    // Health needs no key.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let check = health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap().into_inner();
    assert_eq!(check.status(), tonic_health::pb::health_check_response::ServingStatus::Serving);

    // A key revoked in the file is refused once the server has reloaded it.
    let mut revoked = clients(&channel, Some(&key_revoked));
    revoked.config.get_config(pb::GetConfigRequest { tenant: "a".into() }).await.unwrap();
    let mut file = KeysFile::read(&keys_path).unwrap();
    assert!(file.revoke(&revoked_stored.id));
    file.write(&keys_path).unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        match revoked.config.get_config(pb::GetConfigRequest { tenant: "a".into() }).await {
            Err(status) if status.code() == Code::Unauthenticated => {
                assert_eq!(reason(&status).0, "API_KEY_REVOKED", "{status:?}");
                break;
            }
            other => assert!(tokio::time::Instant::now() < deadline, "a revoked key still works: {other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    server.stop().await;
}
