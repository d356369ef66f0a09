//! The edge, driven in-process: a 70 KB tenant sent to every RPC is refused with
//! INVALID_ARGUMENT (ingest calls refuse the record, with that code, and store the rest),
//! the refusal names the field without echoing it, and nothing reaches the log.

use std::future::Future;
use tonic::{Code, Status};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

mod common;

use common::{InProcess, dev_roles};

const TS: i64 = 1_767_225_600_000;

fn huge() -> String {
    "t".repeat(70 * 1024)
}

/// The call fails with INVALID_ARGUMENT naming the field, in a short message and as a
/// `google.rpc.BadRequest` field violation, with an `ErrorInfo`.
async fn refused<T: std::fmt::Debug>(rpc: &str, call: impl Future<Output = Result<tonic::Response<T>, Status>>) {
    let status = call.await.expect_err(rpc);
    assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
    assert!(status.message().contains("tenant"), "{rpc}: {}", status.message());
    assert!(status.message().len() < 1_000, "{rpc} echoes what it refused");
    assert_eq!(violated_field(&status).as_deref(), Some("tenant"), "{rpc}: {status:?}");
}

/// The field of the status's first `BadRequest` violation; also checks its `ErrorInfo`.
fn violated_field(status: &Status) -> Option<String> {
    use tonic_types::StatusExt as _;
    let info = status.get_details_error_info().expect("every error carries an ErrorInfo");
    let field = status.get_details_bad_request()?.field_violations.into_iter().next().map(|violation| violation.field);
    match field.as_deref() {
        Some("") | None => assert_eq!((info.reason.as_str(), info.domain.as_str()), ("INVALID_REQUEST", "touchstone.v1")),
        Some(field) => {
            assert_eq!((info.reason.as_str(), info.domain.as_str()), ("INVALID_FIELD", "touchstone.v1"));
            assert_eq!(info.metadata.get("field").map(String::as_str), Some(field), "{status:?}");
        }
    }
    field
}

/// The call succeeds and refuses its one record with INVALID_ARGUMENT naming the field.
async fn record_refused(rpc: &str, call: impl Future<Output = Result<tonic::Response<pb::IngestReply>, Status>>) {
    let reply = call.await.unwrap_or_else(|status| panic!("{rpc}: {status:?}")).into_inner();
    assert_eq!((reply.accepted, reply.duplicates, reply.rejected.len()), (0, 0, 1), "{rpc}");
    let rejection = &reply.rejected[0];
    assert_eq!(rejection.code, Code::InvalidArgument as i32, "{rpc}");
    assert!(rejection.reason.contains("tenant"), "{rpc}: {}", rejection.reason);
    assert!(rejection.event_id.len() <= 256, "{rpc} echoes the whole id");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_70_kb_tenant_is_refused_by_every_rpc() {
    let server = InProcess::start(dev_roles()).await;
    let tenant = huge();
    let mut ingest = IngestServiceClient::new(server.channel.clone());
    let mut config = ConfigServiceClient::new(server.channel.clone());
    let mut attribution = AttributionServiceClient::new(server.channel.clone());
    let mut query = QueryServiceClient::new(server.channel.clone());

    let message = pb::Message {
        tenant: tenant.clone(),
        msg_hash: "m1".into(),
        campaign_id: "c1".into(),
        channel: pb::Channel::Push.into(),
        tags: vec![],
        sent_at: TS,
    };
    let touch = pb::Touch {
        tenant: tenant.clone(),
        event_id: "e1".into(),
        msg_hash: "m1".into(),
        customer_id: "c1".into(),
        touch: pb::TouchKind::Opened.into(),
        ts: TS,
    };
    let event = pb::AppEvent {
        tenant: tenant.clone(),
        event_id: "e2".into(),
        customer_id: "c1".into(),
        name: "checkin".into(),
        ts: TS,
        value: None,
        msg_hash: None,
    };
    let order = pb::OrderRecord {
        tenant: tenant.clone(),
        event_id: "e3".into(),
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
        tenant: tenant.clone(),
        event_id: "e4".into(),
        customer_id: "c1".into(),
        badge_id: "b1".into(),
        action: pb::BadgeAction::Earned.into(),
        ts: TS,
        source: pb::BadgeSource::Api.into(),
        reason: None,
    };

    // IngestService: each record alone is refused, with the code a one-record call would get.
    record_refused("RegisterMessages", ingest.register_messages(pb::RegisterMessagesRequest { messages: vec![message] })).await;
    record_refused("RecordTouches", ingest.record_touches(pb::RecordTouchesRequest { touches: vec![touch] })).await;
    record_refused("PostEvents", ingest.post_events(pb::PostEventsRequest { events: vec![event] })).await;
    record_refused("RecordOrders", ingest.record_orders(pb::RecordOrdersRequest { orders: vec![order.clone()] })).await;
    record_refused("RecordBadgeEvents", ingest.record_badge_events(pb::RecordBadgeEventsRequest { badges: vec![badge] })).await;
    let chunk = pb::IngestChunk { records: vec![pb::Record { kind: Some(pb::record::Kind::Order(order)) }] };
    record_refused("IngestStream", ingest.ingest_stream(tokio_stream::iter(vec![chunk]))).await;

    // ConfigService.
    refused("GetConfig", config.get_config(pb::GetConfigRequest { tenant: tenant.clone() })).await;
    let settings = pb::UpdateSettingsRequest { tenant: tenant.clone(), currency: Some("EUR".into()), ..Default::default() };
    refused("UpdateSettings", config.update_settings(settings)).await;
    let goal = pb::Goal { id: "checkin".into(), kind: pb::GoalKind::Event.into(), event_name: "checkin".into(), ..Default::default() };
    refused("CreateGoal", config.create_goal(pb::CreateGoalRequest { tenant: tenant.clone(), goal: Some(goal) })).await;
    refused("ListGoals", config.list_goals(pb::ListGoalsRequest { tenant: tenant.clone() })).await;
    refused("DeleteGoal", config.delete_goal(pb::DeleteGoalRequest { tenant: tenant.clone(), goal_id: "checkin".into() })).await;

    // AttributionService (GetStatus has no field to refuse).
    refused("Recompute", attribution.recompute(pb::RecomputeRequest { tenant: tenant.clone() })).await;

    // QueryService.
    let stats = pb::CampaignStatsRequest { tenant: tenant.clone(), campaign_id: "c1".into(), range: None };
    refused("GetCampaignStats", query.get_campaign_stats(stats)).await;
    refused("ListCampaigns", query.list_campaigns(pb::ListCampaignsRequest { tenant: tenant.clone(), range: None })).await;
    let messages = pb::ListMessageStatsRequest { tenant: tenant.clone(), range: None, campaign_id: None };
    refused("ListMessageStats", query.list_message_stats(messages)).await;
    refused("GetGoalKpis", query.get_goal_kpis(pb::GoalKpisRequest { tenant: tenant.clone(), range: None, goal_id: None, model: 0 })).await;
    let series = pb::GoalSeriesRequest { tenant: tenant.clone(), goal_id: "orders".into(), range: None, time_zone: String::new() };
    refused("GetGoalSeries", query.get_goal_series(series)).await;
    let series = pb::CampaignSeriesRequest { tenant: tenant.clone(), campaign_id: "c1".into(), range: None, time_zone: String::new() };
    refused("GetCampaignSeries", query.get_campaign_series(series)).await;
    let explain = pb::ExplainConversionRequest { tenant: tenant.clone(), goal_id: "orders".into(), conversion_key: "o1".into() };
    refused("ExplainConversion", query.explain_conversion(explain)).await;

    // Nothing was written, nothing was set aside, and the server still answers.
    let status = attribution.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!((status.log_head, status.set_aside), (0, 0));
    let fine = config.get_config(pb::GetConfigRequest { tenant: "acme".into() }).await.unwrap().into_inner();
    assert_eq!(fine.tenant, "acme");
    server.stop().await;
}

/// The message of an INVALID_ARGUMENT answer, which names a field in its details.
fn invalid<T: std::fmt::Debug>(rpc: &str, result: Result<tonic::Response<T>, Status>) -> String {
    let status = result.expect_err(rpc);
    assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
    let field = violated_field(&status);
    assert!(field.is_some_and(|field| !field.is_empty()), "{rpc}: no field named in {status:?}");
    status.message().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_rpcs_apply_the_limits_ingest_applies() {
    let server = InProcess::start(dev_roles()).await;
    let mut config = ConfigServiceClient::new(server.channel.clone());
    let mut query = QueryServiceClient::new(server.channel.clone());

    let tags = pb::ExcludedTags { tags: (0..65).map(|i| format!("tag{i}")).collect() };
    let request = pb::UpdateSettingsRequest { tenant: "acme".into(), excluded_tags: Some(tags), ..Default::default() };
    let message = invalid("UpdateSettings", config.update_settings(request).await);
    assert!(message.contains("excluded_tags has 65 items"), "{message}");

    for currency in ["usd", "US", "EURO", "ABC", "QQQ"] {
        let request = pb::UpdateSettingsRequest { tenant: "acme".into(), currency: Some(currency.into()), ..Default::default() };
        let message = invalid("UpdateSettings", config.update_settings(request).await);
        assert!(message.contains("ISO 4217"), "{message}");
    }

    let goal = pb::Goal { id: "g".repeat(300), kind: pb::GoalKind::Event.into(), event_name: "e".into(), ..Default::default() };
    let message = invalid("CreateGoal", config.create_goal(pb::CreateGoalRequest { tenant: "acme".into(), goal: Some(goal) }).await);
    assert!(message.contains("goal.id is longer than 256 bytes"), "{message}");
    let goal = pb::Goal { id: "g".into(), kind: 99, event_name: "e".into(), ..Default::default() };
    invalid("CreateGoal", config.create_goal(pb::CreateGoalRequest { tenant: "acme".into(), goal: Some(goal) }).await);

    let explain = pb::ExplainConversionRequest { tenant: "acme".into(), goal_id: "orders".into(), conversion_key: "k".repeat(257) };
    let message = invalid("ExplainConversion", query.explain_conversion(explain).await);
    assert!(message.contains("conversion_key is longer"), "{message}");
    let series = pb::GoalSeriesRequest { tenant: "acme".into(), goal_id: "orders".into(), range: None, time_zone: "Z".repeat(300) };
    invalid("GetGoalSeries", query.get_goal_series(series).await);
    let series = pb::CampaignSeriesRequest { tenant: "acme".into(), campaign_id: "c".repeat(257), range: None, time_zone: String::new() };
    let message = invalid("GetCampaignSeries", query.get_campaign_series(series).await);
    assert!(message.contains("campaign_id is longer"), "{message}");
    // A series' zone and length (at most 400 days), each said on its field (of a tenant
    // that exists: an unknown one is NOT_FOUND first).
    let shop = pb::UpdateSettingsRequest { tenant: "series-shop".into(), currency: Some("EUR".into()), ..Default::default() };
    config.update_settings(shop).await.unwrap();
    let series = |from: i64, to: i64, time_zone: &str| pb::CampaignSeriesRequest {
        tenant: "series-shop".into(),
        campaign_id: "c1".into(),
        range: Some(pb::TimeRange { from_ms: Some(from), to_ms: Some(to) }),
        time_zone: time_zone.into(),
    };
    let day = 86_400_000;
    for (request, field, says) in [
        (series(TS, TS + day, "Mars/Olympus"), "time_zone", "unknown time zone"),
        (series(TS, TS + 401 * day, ""), "range", "at most 400 days"),
        (series(TS + 1, TS, ""), "range", "is after"),
    ] {
        let result = query.get_campaign_series(request).await;
        let status = result.as_ref().expect_err("refused");
        assert_eq!(violated_field(status).as_deref(), Some(field), "{status:?}");
        assert!(invalid("GetCampaignSeries", result).contains(says));
    }

    // None of it changed the tenant.
    let stored = config.get_config(pb::GetConfigRequest { tenant: "acme".into() }).await.unwrap().into_inner();
    assert_eq!((stored.version, stored.currency.as_str(), stored.excluded_tags.len()), (0, "USD", 0));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflection_answers_in_both_versions() {
    use tonic_reflection::pb::{v1, v1alpha};
    let server = InProcess::start(dev_roles()).await;
    let mut alpha = v1alpha::server_reflection_client::ServerReflectionClient::new(server.channel.clone());
    let request = v1alpha::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1alpha::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut replies = alpha.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    let reply = replies.message().await.unwrap().expect("a v1alpha reply");
    let Some(v1alpha::server_reflection_response::MessageResponse::ListServicesResponse(list)) = reply.message_response else {
        panic!("no service list: {reply:?}");
    };
    let names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    assert!(names.contains(&"touchstone.v1.QueryService".to_owned()), "{names:?}");

    let mut v1 = v1::server_reflection_client::ServerReflectionClient::new(server.channel.clone());
    let request = v1::ServerReflectionRequest {
        host: String::new(),
        message_request: Some(v1::server_reflection_request::MessageRequest::ListServices(String::new())),
    };
    let mut replies = v1.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
    assert!(replies.message().await.unwrap().is_some(), "a v1 reply");

    // The error details every error carries resolve, so grpcurl can print them decoded.
    for symbol in ["google.rpc.ErrorInfo", "google.rpc.BadRequest", "google.rpc.RetryInfo", "google.rpc.Status"] {
        let request = v1::ServerReflectionRequest {
            host: String::new(),
            message_request: Some(v1::server_reflection_request::MessageRequest::FileContainingSymbol(symbol.to_owned())),
        };
        let mut replies = v1.server_reflection_info(tokio_stream::iter(vec![request])).await.unwrap().into_inner();
        let reply = replies.message().await.unwrap().expect("a v1 reply");
        let Some(v1::server_reflection_response::MessageResponse::FileDescriptorResponse(files)) = reply.message_response else {
            panic!("{symbol} does not resolve: {reply:?}");
        };
        assert!(!files.file_descriptor_proto.is_empty(), "{symbol}");
    }
    server.stop().await;
}
