//! `touchstone gen` data imported into a running `touchstone dev` with `--wait` gives the
//! reports of the brute-force reference, for the whole period and for unaligned ranges,
//! also after a kill -9 and a retried import.

use touchstone_core::currency::{format_money, group_thousands};
use touchstone_core::model::{format_micros, parse_micros};
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
    assert!(table.contains(" USD"), "order goal values are money: {table}");

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

            // Goal KPIs under every model: the contributing campaigns are the reference's
            // side-by-side report for the goal, campaign by campaign, most credited first.
            let side_by_side = data.reference.models_json(tenant, None, None);
            for model in [pb::AttributionModel::LastTouch, pb::AttributionModel::FirstTouch, pb::AttributionModel::Linear, pb::AttributionModel::PositionBased, pb::AttributionModel::TimeDecay] {
                let name = touchstone_proto::convert::model_from_pb(model.into()).unwrap().as_str();
                let request = pb::GoalKpisRequest { tenant: tenant.to_owned(), range: None, goal_id: Some("orders".into()), model: model.into() };
                let kpis = query.get_goal_kpis(request).await.unwrap().into_inner();
                assert_eq!(kpis.model(), model);
                let got: Vec<(String, i128, i128)> = kpis.goals[0]
                    .campaigns
                    .iter()
                    .map(|c| (c.campaign_id.clone(), i128::from(c.conversions_ppm), parse_micros(&c.tally.as_ref().unwrap().value.as_ref().unwrap().value).unwrap()))
                    .collect();
                let mut expected: Vec<(String, i128, i128)> = side_by_side
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|row| row["goal_id"] == "orders")
                    .map(|row| {
                        let figures = &row["models"][name];
                        let ppm = (figures["conversions"].as_f64().unwrap() * 1e6).round() as i128;
                        (row["campaign_id"].as_str().unwrap().to_owned(), ppm, parse_micros(&figures["value"].to_string()).unwrap())
                    })
                    .filter(|(_, ppm, value)| *ppm != 0 || *value != 0)
                    .collect();
                expected.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
                assert_eq!(got, expected, "contributing campaigns of {tenant} under {name}");
            }

            // A daily series in a time zone adds up to the conversions of its range, and each
            // point is what GetGoalKpis gives for the point's own range (the series reads
            // each rollup level once for all days; KPIs read their range alone). Zones whose
            // days start on a UTC day, on a UTC hour, and off the hour.
            let range = pb::TimeRange { from_ms: Some(1_767_225_600_000), to_ms: Some(1_767_225_600_000 + 90 * 86_400_000) };
            for time_zone in ["America/New_York", "UTC", "Asia/Kolkata"] {
                let request = pb::GoalSeriesRequest {
                    tenant: tenant.to_owned(),
                    goal_id: "orders".into(),
                    range: Some(range),
                    time_zone: time_zone.into(),
                };
                let series = query.get_goal_series(request).await.unwrap().into_inner();
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
                assert_eq!(sum as i64, expected, "series of {tenant} in {time_zone}");
                for point in series.points.iter().step_by(3) {
                    let request = pb::GoalKpisRequest {
                        tenant: tenant.to_owned(),
                        range: Some(pb::TimeRange { from_ms: Some(point.from_ms), to_ms: Some(point.to_ms) }),
                        goal_id: Some("orders".into()),
                        model: 0,
                    };
                    let kpis = query.get_goal_kpis(request).await.unwrap().into_inner();
                    let kpi = &kpis.goals[0];
                    let figures = |kpi: &pb::GoalKpis| (kpi.explicit.clone(), kpi.last_touch.clone(), kpi.unattributed.clone());
                    let point_figures = (point.explicit.clone(), point.last_touch.clone(), point.unattributed.clone());
                    assert_eq!(point_figures, figures(kpi), "{tenant}, {time_zone}, {}", point.date);
                }
            }
        }

        // A campaign's daily series: each point is what GetCampaignStats gives for the
        // point's own range, in zones whose days start on a UTC day, on a UTC hour and off
        // the hour (across New York's change to summer time on 8 March: a 23-hour day), and
        // the points add up to the range's stats.
        let range = pb::TimeRange { from_ms: Some(1_767_225_600_000 + 40 * 86_400_000), to_ms: Some(1_767_225_600_000 + 80 * 86_400_000) };
        let mut series_checked = 0;
        for tenant in data.reference.tenants() {
            let campaigns = query.list_campaigns(pb::ListCampaignsRequest { tenant: tenant.to_owned(), range: Some(range) }).await.unwrap().into_inner();
            let busiest = campaigns.campaigns.iter().filter(|c| !c.campaign_id.is_empty()).max_by_key(|c| c.touches.as_ref().map_or(0, |t| t.sent));
            let Some(campaign) = busiest else { continue };
            series_checked += 1;
            for time_zone in ["UTC", "America/New_York", "Asia/Kolkata"] {
                let request = pb::CampaignSeriesRequest {
                    tenant: tenant.to_owned(),
                    campaign_id: campaign.campaign_id.clone(),
                    range: Some(range),
                    time_zone: time_zone.into(),
                };
                let series = query.get_campaign_series(request).await.unwrap().into_inner();
                assert_eq!((series.campaign_id.as_str(), series.time_zone.as_str()), (campaign.campaign_id.as_str(), time_zone));
                assert_eq!(series.points.first().map(|p| p.from_ms), range.from_ms, "{tenant}, {time_zone}");
                assert_eq!(series.points.last().map(|p| p.to_ms), range.to_ms, "{tenant}, {time_zone}");
                if time_zone == "America/New_York" {
                    let short = series.points.iter().find(|p| p.date == "2026-03-08").expect("8 March is in the range");
                    assert_eq!(short.to_ms - short.from_ms, 23 * 3_600_000, "the day New York moves its clocks");
                }
                let (mut sent, mut messages) = (0, 0);
                for point in &series.points {
                    let stats = point.stats.clone().unwrap();
                    sent += stats.touches.as_ref().map_or(0, |t| t.sent);
                    messages += stats.messages;
                    let request = pb::CampaignStatsRequest {
                        tenant: tenant.to_owned(),
                        campaign_id: campaign.campaign_id.clone(),
                        range: Some(pb::TimeRange { from_ms: Some(point.from_ms), to_ms: Some(point.to_ms) }),
                    };
                    let alone = query.get_campaign_stats(request).await.unwrap().into_inner();
                    assert_eq!(stats, alone, "{tenant}, {}, {time_zone}, {}", campaign.campaign_id, point.date);
                }
                let whole = campaign.touches.as_ref().map_or(0, |t| t.sent);
                assert!(whole > 0, "{tenant}: the range holds the campaign's sends, so the points are not all zeros");
                assert_eq!((sent, messages), (whole, campaign.messages), "{tenant}, {}, {time_zone}", campaign.campaign_id);
            }
        }
        assert!(series_checked >= 2, "the range holds campaigns of several tenants ({series_checked})");
        let unknown = pb::CampaignSeriesRequest { tenant: "acme-shop".into(), campaign_id: "no-such-campaign".into(), range: Some(range), time_zone: String::new() };
        assert_eq!(query.get_campaign_series(unknown).await.unwrap_err().code(), tonic::Code::NotFound);

        // Reports say what their values are in, and the tables show the json's figures so.
        for (tenant, currency) in [("acme-shop", "USD"), ("streamly", "EUR"), ("fitclub", "USD")] {
            let request = pb::ListCampaignsRequest { tenant: tenant.into(), range: None };
            let units = query.list_campaigns(request).await.unwrap().into_inner().units.unwrap();
            assert_eq!(units.currency, currency, "{tenant}");
            assert_eq!(units.goals.first().map(|goal| goal.id.as_str()), Some("orders"), "the default goal first: {tenant}");
            let money: Vec<String> =
                units.goals.iter().filter(|goal| goal.kind() == pb::GoalKind::Order).map(|goal| goal.id.clone()).collect();
            assert!(units.goals.iter().any(|goal| goal.kind() == pb::GoalKind::Event), "{tenant} has an EVENT goal");
            assert_tables_show_the_json(&server, tenant, currency, &money);
        }
    });
}

/// A table line's cells: columns are two spaces or more apart, and no cell is empty or holds two spaces.
fn cells(line: &str) -> Vec<&str> {
    line.split("  ").map(str::trim).filter(|cell| !cell.is_empty()).collect()
}

/// The exact value of a json number, in millionths.
fn micros(value: &serde_json::Value) -> i128 {
    parse_micros(&value.to_string()).unwrap_or_else(|| panic!("not a decimal: {value}"))
}

/// A count as the table shows it.
fn count(value: &serde_json::Value) -> String {
    group_thousands(u128::from(value.as_u64().unwrap()))
}

/// A plain (EVENT goal) value as the table shows it: exact, the whole part grouped.
fn plain(micros: i128) -> String {
    let text = format_micros(micros);
    let (sign, digits) = text.strip_prefix('-').map_or(("", text.as_str()), |rest| ("-", rest));
    let (whole, fraction) = digits.split_once('.').map_or((digits, String::new()), |(whole, fraction)| (whole, format!(".{fraction}")));
    format!("{sign}{}{fraction}", group_thousands(whole.parse().unwrap()))
}

/// `report campaigns|messages --format table` shows, per row, the json's sent, opened and
/// default goal conversions, and the default goal's value as money of `currency`; with
/// `--goals`, every goal in a table of its own (ORDER goals in `money` as money, EVENT goals
/// as plain numbers), with `--goals G` that one alone; and campaign totals that add up the
/// rows. Every table a report prints fits 120 columns.
fn assert_tables_show_the_json(server: &DevServer, tenant: &str, currency: &str, money: &[String]) {
    let fits = |table: &str, what: &str| {
        let widest = table.lines().map(|line| line.chars().count()).max().unwrap_or(0);
        assert!(widest <= 120, "{tenant} {what}: a line of {widest} columns\n{table}");
    };
    for kind in ["campaigns", "messages"] {
        let rows = server.report(kind, tenant, None, None);
        let rows = rows.as_array().unwrap();
        assert!(!rows.is_empty(), "{tenant} {kind}");
        let id_key = if kind == "campaigns" { "campaign_id" } else { "msg_hash" };
        let shown = |value: i128, goal: &str| {
            if money.iter().any(|id| id == goal) { format_money(value, currency) } else { plain(value) }
        };
        let goal_ids: Vec<String> = rows[0]["goals"].as_object().unwrap().keys().cloned().collect();
        // (The goal, its table) as printed: the default table, then each goal's.
        let mut tables: Vec<(String, String)> = Vec::new();
        let default = server.cli_ok(&["report", kind, "--tenant", tenant, "--format", "table"]);
        fits(&default, kind);
        tables.push(("orders".to_owned(), default.clone()));
        let every = server.cli_ok(&["report", kind, "--tenant", tenant, "--format", "table", "--goals"]);
        fits(&every, &format!("{kind} --goals"));
        let blocks: Vec<&str> = every.split("\n\n").filter(|block| !block.starts_with("total: ")).collect();
        let headings: Vec<&str> = blocks.iter().map(|block| block.lines().next().unwrap().trim_end_matches(':')).collect();
        let mut expected_headings: Vec<&str> = goal_ids.iter().map(String::as_str).collect();
        expected_headings.sort_by_key(|goal| *goal != "orders");
        let mut sorted = headings.clone();
        sorted.sort_by_key(|goal| *goal != "orders");
        assert_eq!(sorted.len(), expected_headings.len(), "a table for every goal: {every}");
        assert_eq!(headings[0], "orders", "the default goal first: {every}");
        for block in &blocks {
            let (heading, table) = block.split_once('\n').unwrap();
            tables.push((heading.trim_end_matches(':').to_owned(), table.to_owned()));
        }
        let last = goal_ids.iter().find(|goal| *goal != "orders").unwrap_or(&goal_ids[0]);
        let one = server.cli_ok(&["report", kind, "--tenant", tenant, "--format", "table", "--goals", last]);
        assert!(one.starts_with(&format!("{last}:\n")) && one.matches(":\n").count() == 1, "--goals {last} shows that goal alone: {one}");

        for (index, (goal, table)) in tables.iter().enumerate() {
            let mut lines = table.lines();
            let header = cells(lines.next().unwrap());
            let value_title = if money.contains(goal) { "REVENUE" } else { "VALUE" };
            let titles = if index == 0 { ["SENT", "OPENED", "ORDERS", value_title, "CONV RATE"] } else { ["SENT", "OPENED", "CONV", value_title, "CONV RATE"] };
            assert_eq!(header[2..7], titles, "{tenant} {kind} {goal}: {table}");
            let by_id: std::collections::HashMap<&str, Vec<&str>> =
                lines.take_while(|line| !line.is_empty()).map(cells).map(|cells| (cells[0], cells)).collect();
            assert_eq!(by_id.len(), rows.len(), "one line per row: {tenant} {kind} {goal}");
            for row in rows {
                let id = row[id_key].as_str().unwrap();
                let tally = &row["goals"][goal.as_str()];
                let expected = [count(&row["sent"]), count(&row["opened"]), count(&tally["conversions"]), shown(micros(&tally["value"]), goal)];
                assert_eq!(by_id[id][2..6], expected, "{tenant} {kind} {id} {goal}");
            }
        }
        if kind == "campaigns" {
            let (purchases, revenue) = rows.iter().fold((0, 0), |(purchases, revenue), row| {
                let orders = &row["goals"]["orders"];
                (purchases + orders["conversions"].as_u64().unwrap(), revenue + micros(&orders["value"]))
            });
            for table in [&default, &every] {
                let total = table.lines().find(|line| line.starts_with("total: ")).unwrap();
                let prefix = format!(
                    "total: {} campaigns, {} purchases, revenue {}, average check ",
                    group_thousands(rows.len() as u128),
                    group_thousands(u128::from(purchases)),
                    format_money(revenue, currency)
                );
                assert!(total.starts_with(&prefix), "{total} (expected {prefix}...)");
            }
        }
    }
    for report in [&["report", "goals"][..], &["report", "models"]] {
        let table = server.cli_ok(&[report, &["--tenant", tenant, "--format", "table"]].concat());
        fits(&table, report[1]);
    }
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
