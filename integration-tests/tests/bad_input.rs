//! Bad input gets a clear error and leaves everything else intact: through the CLI (per
//! line, with line numbers and a failing exit code) and through gRPC (per record in the
//! reply, or the right status code for a bad request).

use serde_json::json;
use tonic::Code;
use touchstone_integration_tests::{DevServer, text};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

const T0: i64 = 1_767_225_600_000;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

#[test]
fn a_records_file_with_bad_lines_imports_the_good_ones_and_names_each_bad_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    let lines = [
        r#"{"type":"touch","tenant":"shop","event_id":"t1","msg_hash":"m1","customer_id":"c1","touch":"OPENED","ts":1767225600000}"#,
        r#"{"type":"touch","tenant":"shop","event_id":"t2", this is not json"#,
        r#"{"type":"touch","tenant":"shop","event_id":"t3","msg_hash":"m1","customer_id":"c1","touch":"LICKED","ts":1767225600000}"#,
        r#"{"type":"order","tenant":"shop","event_id":"o1","order_id":"A","status":"PAID","amount_minor":500,"currency":"USD","categories":[],"channel":"app","ts":1767229200000}"#,
        r#"{"type":"order","tenant":"shop","event_id":"o2","order_id":"B","customer_id":"c1","status":"PAID","amount_minor":-5,"currency":"USD","categories":[],"channel":"app","ts":1767229200000}"#,
        r#"{"type":"event","tenant":"shop","event_id":"e1","customer_id":"c1","name":"checkin","ts":32503680000000}"#,
        "",
        r#"{"type":"refund","tenant":"shop","event_id":"x1"}"#,
        r#"{"type":"order","tenant":"shop","event_id":"o3","order_id":"C","customer_id":"c1","status":"PAID","amount_minor":1250,"currency":"USD","categories":[],"channel":"app","ts":1767229200000}"#,
    ];
    let file = dir.path().join("records.jsonl");
    std::fs::write(&file, lines.join("\n")).unwrap();
    let file = file.to_string_lossy().into_owned();

    let output = server.cli(&["import", "records", &file, "--wait"]);
    assert_eq!(output.status.code(), Some(1), "a rejected line makes the import fail");
    let stderr = text(&output.stderr);
    for (line, reason) in [
        (2, "key must be a string"),
        (3, "unknown TouchKind \"LICKED\""),
        (4, "missing field `customer_id`"),
        (5, "amount_minor -5 is negative"),
        (6, "outside 2000-01-01..2100-01-01"),
        (8, "unknown variant `refund`"),
    ] {
        let expected = format!("{file}:{line}: ");
        let reported = stderr.lines().find(|l| l.starts_with(&expected)).unwrap_or_else(|| panic!("no error for line {line}:\n{stderr}"));
        assert!(reported.contains(reason), "line {line}: {reported}");
    }
    assert!(stderr.contains("8 lines, 2 accepted, 0 duplicates, 6 rejected"), "{stderr}");

    // The good lines are in: the touch and order C (1250) are counted.
    let goals = server.report("goals", "shop", None, None);
    assert_eq!(goals[0]["unattributed"], json!({"conversions": 1, "value": 1250}));
    let messages = server.report("messages", "shop", None, None);
    assert_eq!(messages[0]["opened"], json!(1));

    // Importing the same file again changes nothing: the good lines are duplicates now.
    let again = server.cli(&["import", "records", &file, "--wait"]);
    assert!(text(&again.stderr).contains("8 lines, 0 accepted, 2 duplicates, 6 rejected"), "{}", text(&again.stderr));
    assert_eq!(server.report("goals", "shop", None, None), goals);
}

#[test]
fn a_sixth_goal_and_a_changed_goal_are_refused_and_the_saved_goals_stay() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    let event_goal = |id: &str| json!({"id": id, "kind": "EVENT", "event_name": id});
    let config = |goals: Vec<serde_json::Value>| json!({"tenants": {"shop": {"currency": "EUR", "goals": goals}}}).to_string();
    let path = dir.path().join("config.json");
    let path_text = path.to_string_lossy().into_owned();

    std::fs::write(&path, config(vec![event_goal("a"), event_goal("b"), event_goal("c"), event_goal("d")])).unwrap();
    server.cli_ok(&["import", "config", &path_text]);

    // A sixth goal: refused, the file's other content applies, exit code 1.
    std::fs::write(&path, config(vec![event_goal("a"), event_goal("e")])).unwrap();
    let output = server.cli(&["import", "config", &path_text]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("tenant shop goal e: "), "{}", text(&output.stderr));
    assert!(text(&output.stderr).contains("5 goals"), "{}", text(&output.stderr));

    // Changing a saved goal: refused.
    std::fs::write(&path, config(vec![json!({"id": "a", "kind": "EVENT", "event_name": "other"})])).unwrap();
    let output = server.cli(&["import", "config", &path_text]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("cannot be changed"), "{}", text(&output.stderr));

    runtime().block_on(async {
        let channel = server.channel().await;
        let mut config = ConfigServiceClient::new(channel);
        let goals = config.list_goals(pb::ListGoalsRequest { tenant: "shop".into() }).await.unwrap().into_inner().goals;
        let ids: Vec<&str> = goals.iter().map(|g| g.id.as_str()).collect();
        assert_eq!(ids, ["orders", "a", "b", "c", "d"]);
        assert_eq!(goals[1].event_name, "a", "goal a kept its definition");

        // The same refusals over gRPC carry FAILED_PRECONDITION.
        let goal = |id: &str, name: &str| pb::Goal { id: id.into(), kind: pb::GoalKind::Event.into(), event_name: name.into(), ..Default::default() };
        let sixth = config.create_goal(pb::CreateGoalRequest { tenant: "shop".into(), goal: Some(goal("e", "e")) }).await.unwrap_err();
        assert_eq!(sixth.code(), Code::FailedPrecondition, "{sixth:?}");
        let changed = config.create_goal(pb::CreateGoalRequest { tenant: "shop".into(), goal: Some(goal("a", "other")) }).await.unwrap_err();
        assert_eq!(changed.code(), Code::FailedPrecondition, "{changed:?}");
        // Saving the identical definition again is fine.
        let same = config.create_goal(pb::CreateGoalRequest { tenant: "shop".into(), goal: Some(goal("a", "a")) }).await.unwrap().into_inner();
        assert!(!same.created);
        let no_tenant = config.get_config(pb::GetConfigRequest { tenant: String::new() }).await.unwrap_err();
        assert_eq!(no_tenant.code(), Code::InvalidArgument);
        let bad_currency = config
            .update_settings(pb::UpdateSettingsRequest { tenant: "shop".into(), currency: Some("euros".into()), ..Default::default() })
            .await
            .unwrap_err();
        assert_eq!(bad_currency.code(), Code::InvalidArgument);
        let current = config.get_config(pb::GetConfigRequest { tenant: "shop".into() }).await.unwrap().into_inner();
        assert_eq!(current.currency, "EUR");
    });
}

#[test]
fn grpc_batches_reject_bad_records_one_by_one_and_bad_queries_get_the_right_status() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    runtime().block_on(async {
        let channel = server.channel().await;
        let mut ingest = IngestServiceClient::new(channel.clone());
        let mut query = QueryServiceClient::new(channel);

        let order = |event_id: &str, amount_minor: i64, ts: i64| pb::OrderRecord {
            tenant: "shop".into(),
            event_id: event_id.into(),
            order_id: event_id.into(),
            customer_id: "c1".into(),
            status: "PAID".into(),
            amount_minor,
            currency: "USD".into(),
            channel: "app".into(),
            ts,
            ..Default::default()
        };
        let reply = ingest
            .record_orders(pb::RecordOrdersRequest {
                orders: vec![order("o1", -1, T0), order("o2", 700, T0), order("o3", 5, 0), order("", 5, T0), order("o2", 999, T0)],
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!((reply.accepted, reply.duplicates), (1, 1));
        let rejected: Vec<(u64, &str)> = reply.rejected.iter().map(|r| (r.index, r.reason.as_str())).collect();
        assert_eq!(rejected.len(), 3, "{rejected:?}");
        assert!(rejected[0].0 == 0 && rejected[0].1.contains("negative"), "{rejected:?}");
        assert!(rejected[1].0 == 2 && rejected[1].1.contains("outside"), "{rejected:?}");
        assert!(rejected[2].0 == 3 && rejected[2].1.contains("missing event_id"), "{rejected:?}");

        let touch = pb::Touch { tenant: "shop".into(), event_id: "t1".into(), msg_hash: "m1".into(), customer_id: "c1".into(), touch: 99, ts: T0 };
        let reply = ingest.record_touches(pb::RecordTouchesRequest { touches: vec![touch] }).await.unwrap().into_inner();
        assert_eq!(reply.accepted, 0);
        assert!(reply.rejected[0].reason.contains("unknown enum value 99"), "{:?}", reply.rejected);

        let range = |from, to| Some(pb::TimeRange { from_ms: Some(from), to_ms: Some(to) });
        let reversed = query.get_goal_kpis(pb::GoalKpisRequest { tenant: "shop".into(), range: range(T0 + 1, T0), goal_id: None, model: 0 }).await.unwrap_err();
        assert_eq!(reversed.code(), Code::InvalidArgument);
        let unknown_model = query.get_goal_kpis(pb::GoalKpisRequest { tenant: "shop".into(), range: None, goal_id: None, model: 42 }).await.unwrap_err();
        assert_eq!(unknown_model.code(), Code::InvalidArgument);
        assert!(unknown_model.message().contains("model"), "{unknown_model:?}");
        let unknown_goal = query
            .get_goal_kpis(pb::GoalKpisRequest { tenant: "shop".into(), range: None, goal_id: Some("nope".into()), model: 0 })
            .await
            .unwrap_err();
        assert_eq!(unknown_goal.code(), Code::NotFound);
        let bad_zone = query
            .get_goal_series(pb::GoalSeriesRequest { tenant: "shop".into(), goal_id: "orders".into(), range: range(T0, T0 + 1), time_zone: "Mars/Olympus".into() })
            .await
            .unwrap_err();
        assert_eq!(bad_zone.code(), Code::InvalidArgument);
        let missing = query
            .explain_conversion(pb::ExplainConversionRequest { tenant: "shop".into(), goal_id: "orders".into(), conversion_key: "zzz".into() })
            .await
            .unwrap_err();
        assert_eq!(missing.code(), Code::NotFound);
        let no_tenant = query.list_campaigns(pb::ListCampaignsRequest { tenant: String::new(), range: None }).await.unwrap_err();
        assert_eq!(no_tenant.code(), Code::InvalidArgument);
    });

    // The accepted order is reported with its first-arrival amount (700, not 999). An empty
    // import with --wait waits for everything ingested before it, here over gRPC.
    let status_wait = server.cli(&["import", "records", "/dev/null", "--wait"]);
    assert!(status_wait.status.success(), "{}", text(&status_wait.stderr));
    let goals = server.report("goals", "shop", None, None);
    assert_eq!(goals[0]["unattributed"], json!({"conversions": 1, "value": 700}));
}
