//! `touchstone gen` data imported into a running `touchstone dev` with `--wait` gives the
//! reports of the brute-force reference, for the whole period and for unaligned ranges,
//! also after a kill -9 and a retried import.

use touchstone_integration_tests::{DevServer, Generated, assert_badges_match, assert_reports_match, text};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

#[test]
fn imported_generated_data_reports_exactly_what_the_reference_says() {
    let dir = tempfile::tempdir().unwrap();
    let data = Generated::new(&dir.path().join("data"), 1, 3);
    let server = DevServer::start(&dir.path().join("store"));
    server.import(&data);
    assert_reports_match(&server, &data);
    assert_badges_match(&server, &server, &data);

    // The other formats print without error.
    let csv = server.cli_ok(&["report", "campaigns", "--tenant", "acme-shop", "--format", "csv"]);
    assert!(csv.starts_with("campaign_id,"), "{csv}");
    let table = server.cli_ok(&["report", "goals", "--tenant", "acme-shop", "--format", "table"]);
    assert!(table.contains("orders"), "{table}");

    // The typed API agrees with the reference too.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = server.channel().await;
        let mut query = QueryServiceClient::new(channel.clone());

        // A campaign the tenant never had is NOT_FOUND; one of its campaigns over a range
        // without activity is zeros.
        let stats = |campaign_id: &str, from: i64| pb::CampaignStatsRequest {
            tenant: "acme-shop".into(),
            campaign_id: campaign_id.into(),
            range: Some(pb::TimeRange { from_ms: Some(from), to_ms: Some(from + 86_400_000) }),
        };
        let unknown = query.get_campaign_stats(stats("no-such-campaign", 1_767_225_600_000)).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
        let quiet = query.get_campaign_stats(stats("winter-sale-2026", 1_893_456_000_000)).await.unwrap().into_inner();
        assert_eq!((quiet.campaign_id.as_str(), quiet.messages, quiet.touches.map(|t| t.sent)), ("winter-sale-2026", 0, Some(0)));
        let status = AttributionServiceClient::new(channel).get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
        assert_eq!(status.processed, status.log_head);

        for tenant in data.reference.tenants() {
            // Every conversion's explanation names the credit the reference gives.
            for conversion in data.reference.conversions(tenant).iter().step_by(7) {
                let request = pb::ExplainConversionRequest {
                    tenant: tenant.to_owned(),
                    goal_id: conversion.goal_id.clone(),
                    conversion_key: conversion.key.clone(),
                };
                let explanation = query.explain_conversion(request).await.unwrap().into_inner();
                assert_eq!(explanation.rule().as_str_name(), format!("ATTRIBUTION_RULE_{}", conversion.rule));
                assert_eq!(explanation.credited_msg_hash, conversion.msg_hash.clone().unwrap_or_default());
                assert_eq!(explanation.ts, conversion.ts);
                if conversion.rule == "LAST_TOUCH" {
                    let winners: Vec<_> = explanation
                        .candidates
                        .iter()
                        .filter(|c| c.verdict() == pb::CandidateVerdict::Won)
                        .map(|c| c.event_id.clone())
                        .collect();
                    assert_eq!(winners, vec![conversion.touch_event_id.clone().unwrap()]);
                }
            }

            // A daily series in a time zone adds up to the KPIs of its range.
            let range = pb::TimeRange { from_ms: Some(1_767_225_600_000), to_ms: Some(1_767_225_600_000 + 90 * 86_400_000) };
            let series = query
                .get_goal_series(pb::GoalSeriesRequest {
                    tenant: tenant.to_owned(),
                    goal_id: "orders".into(),
                    range: Some(range),
                    time_zone: "America/New_York".into(),
                })
                .await
                .unwrap()
                .into_inner();
            let sum: u64 = series
                .points
                .iter()
                .map(|p| p.explicit.as_ref().unwrap().conversions + p.last_touch.as_ref().unwrap().conversions + p.unattributed.as_ref().unwrap().conversions)
                .sum();
            let expected: i64 = data
                .reference
                .conversions(tenant)
                .iter()
                .filter(|c| c.goal_id == "orders" && (range.from_ms.unwrap()..range.to_ms.unwrap()).contains(&c.ts))
                .count() as i64;
            assert_eq!(sum as i64, expected, "series of {tenant}");
        }
    });
}

#[test]
fn a_kill_9_and_a_retried_import_lose_nothing_and_count_nothing_twice() {
    let dir = tempfile::tempdir().unwrap();
    let data = Generated::new(&dir.path().join("data"), 1, 11);
    let store = dir.path().join("store");

    // First attempt: killed while attribution is still working through the import.
    let server = DevServer::start(&store);
    server.cli_ok(&["import", "config", &data.path("config.json")]);
    server.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);
    server.cli_ok(&["import", "records", &data.path("records.jsonl")]);
    server.kill_hard();

    // Second attempt: the client retries everything, as it cannot know what landed.
    let server = DevServer::start(&store);
    server.import(&data);
    assert_reports_match(&server, &data);

    // A kill in the middle of an import (into a second data folder, so that records are
    // new), then a retry.
    drop(server);
    let store = dir.path().join("store2");
    let server = DevServer::start(&store);
    server.cli_ok(&["import", "config", &data.path("config.json")]);
    server.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);
    let import = std::process::Command::new(touchstone_integration_tests::binary())
        .args(["import", "records", &data.path("records.jsonl"), "--server", &server.url])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(150));
    server.kill_hard();
    let interrupted = import.wait_with_output().unwrap();
    eprintln!("interrupted import: {}", text(&interrupted.stderr));
    let server = DevServer::start(&store);
    server.import(&data);
    assert_reports_match(&server, &data);
    assert_badges_match(&server, &server, &data);
}
