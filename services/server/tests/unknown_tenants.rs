//! Queries of a tenant that never wrote anything are NOT_FOUND, every one of them, naming
//! the tenant (a typo must not read as a tenant with no activity); once the tenant has a
//! record, the same queries answer.

use tokio_stream::StreamExt as _;
use tonic::{Code, Status};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

mod common;

use common::{InProcess, dev_roles, metadata, reason};

const TS: i64 = 1_767_225_600_000;

/// Every QueryService RPC for `tenant`: the RPC's name and its outcome.
async fn every_query(query: &mut QueryServiceClient<tonic::transport::Channel>, tenant: &str) -> Vec<(&'static str, Result<(), Status>)> {
    let t = || tenant.to_owned();
    let range = Some(pb::TimeRange { from_ms: Some(TS - 86_400_000), to_ms: Some(TS + 86_400_000) });
    let mut watcher = query.clone();
    let watch = async move {
        let request = pb::WatchBadgeEventsRequest { tenant: t(), ..Default::default() };
        let mut stream = watcher.watch_badge_events(request).await?.into_inner();
        // A feed that opened answers its first message or stays open; either is "found".
        match tokio::time::timeout(std::time::Duration::from_millis(200), stream.next()).await {
            Ok(Some(Err(status))) => Err(status),
            _ => Ok(()),
        }
    };
    vec![
        ("GetCampaignStats", ok(query.get_campaign_stats(pb::CampaignStatsRequest { tenant: t(), campaign_id: "c1".into(), range }).await)),
        ("ListCampaigns", ok(query.list_campaigns(pb::ListCampaignsRequest { tenant: t(), range }).await)),
        ("ListMessageStats", ok(query.list_message_stats(pb::ListMessageStatsRequest { tenant: t(), range, campaign_id: None }).await)),
        ("GetGoalKpis", ok(query.get_goal_kpis(pb::GoalKpisRequest { tenant: t(), range, goal_id: None, model: 0 }).await)),
        (
            "GetGoalSeries",
            ok(query
                .get_goal_series(pb::GoalSeriesRequest { tenant: t(), goal_id: "purchase".into(), range, time_zone: String::new() })
                .await),
        ),
        (
            "GetCampaignSeries",
            ok(query
                .get_campaign_series(pb::CampaignSeriesRequest { tenant: t(), campaign_id: "c1".into(), range, time_zone: String::new() })
                .await),
        ),
        (
            "ExplainConversion",
            ok(query
                .explain_conversion(pb::ExplainConversionRequest { tenant: t(), goal_id: "purchase".into(), conversion_key: "o1".into() })
                .await),
        ),
        (
            "GetBadgeTimeline",
            ok(query.get_badge_timeline(pb::BadgeTimelineRequest { tenant: t(), customer_id: "ann".into(), ..Default::default() }).await),
        ),
        ("GetTrophyCase", ok(query.get_trophy_case(pb::TrophyCaseRequest { tenant: t(), customer_id: "ann".into() }).await)),
        ("GetBadgeStats", ok(query.get_badge_stats(pb::BadgeStatsRequest { tenant: t(), badge_id: "vip".into(), range }).await)),
        ("WatchBadgeEvents", watch.await),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn queries_of_a_tenant_that_never_wrote_are_not_found() {
    let server = InProcess::start(dev_roles()).await;
    let mut query = QueryServiceClient::new(server.channel.clone());
    let outcomes = every_query(&mut query, "ghost").await;
    assert_eq!(outcomes.len(), 11, "every QueryService RPC");
    for (rpc, outcome) in outcomes {
        let status = outcome.expect_err(rpc);
        assert_eq!(status.code(), Code::NotFound, "{rpc}: {status:?}");
        assert!(status.message().contains("no tenant \"ghost\""), "{rpc}: {}", status.message());
        assert_eq!(reason(&status), ("TENANT_NOT_FOUND".to_owned(), metadata(&[("tenant", "ghost")])), "{rpc}");
    }

    let event = pb::AppEvent {
        tenant: "ghost".into(),
        event_id: "e1".into(),
        customer_id: "ann".into(),
        name: "app_open".into(),
        ts: TS,
        value: None,
        msg_hash: None,
    };
    IngestServiceClient::new(server.channel.clone()).post_events(pb::PostEventsRequest { events: vec![event] }).await.unwrap();
    let mut missing = Vec::new();
    for (rpc, outcome) in every_query(&mut query, "ghost").await {
        // What a query asks of the tenant may still be missing (no such campaign,
        // conversion or goal), never the tenant; the reason says which, naming it.
        if let Err(status) = outcome {
            assert!(!status.message().contains("no tenant"), "{rpc}: {status:?}");
            missing.push((rpc, reason(&status)));
        }
    }
    let ghost = |key: &str, value: &str| metadata(&[("tenant", "ghost"), (key, value)]);
    assert_eq!(
        missing,
        [
            ("GetCampaignStats", ("CAMPAIGN_NOT_FOUND".to_owned(), ghost("campaign_id", "c1"))),
            ("GetGoalSeries", ("GOAL_NOT_FOUND".to_owned(), ghost("goal_id", "purchase"))),
            ("GetCampaignSeries", ("CAMPAIGN_NOT_FOUND".to_owned(), ghost("campaign_id", "c1"))),
            ("ExplainConversion", ("GOAL_NOT_FOUND".to_owned(), ghost("goal_id", "purchase"))),
            ("GetBadgeStats", ("BADGE_NOT_DEFINED".to_owned(), ghost("badge_id", "vip"))),
        ]
    );
    server.stop().await;
}

fn ok<T>(result: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
    result.map(drop)
}
