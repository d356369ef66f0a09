//! Every attribution model's split of a conversion, from outside: `report explain` lists
//! each model's shares and credited values, exact and summing to the whole.

use serde_json::json;
use touchstone_integration_tests::DevServer;

const T0: i64 = 1_767_225_600_000;
const HOUR: i64 = 3_600_000;

#[test]
fn explain_lists_every_models_split_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    let write = |name: &str, lines: Vec<serde_json::Value>| {
        let path = dir.path().join(name);
        std::fs::write(&path, lines.iter().map(|line| line.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
        path.to_string_lossy().into_owned()
    };
    // A one-hour half-life: touches 2 h, 1 h and 0 h before the last weigh 1/4, 1/2 and 1.
    let config = dir.path().join("config.json");
    std::fs::write(&config, json!({"tenants": {"shop": {"decay_half_life_ms": HOUR}}}).to_string()).unwrap();
    server.cli_ok(&["import", "config", &config.to_string_lossy()]);
    let message = |hash: &str, campaign: &str| {
        json!({"tenant": "shop", "msg_hash": hash, "campaign_id": campaign, "channel": "PUSH", "tags": [], "sent_at": T0 - HOUR})
    };
    let messages = write("messages.jsonl", vec![message("m1", "a"), message("m2", "b"), message("m3", "c")]);
    let opened = |id: &str, hash: &str, ts: i64| {
        json!({"type": "touch", "tenant": "shop", "event_id": id, "msg_hash": hash, "customer_id": "ann", "touch": "OPENED", "ts": ts})
    };
    let records = write(
        "records.jsonl",
        vec![
            opened("t1", "m1", T0),
            // Opening m1 again later does not make it two candidates: its latest touch stands.
            opened("t1b", "m1", T0 + 30 * 60_000),
            opened("t2", "m2", T0 + HOUR),
            opened("t3", "m3", T0 + 2 * HOUR),
            json!({"type": "order", "tenant": "shop", "event_id": "o1", "order_id": "A", "customer_id": "ann", "status": "PAID",
                   "amount_minor": 1000, "currency": "USD", "categories": [], "channel": "app", "ts": T0 + 3 * HOUR}),
        ],
    );
    server.cli_ok(&["import", "messages", &messages]);
    server.cli_ok(&["import", "records", &records, "--wait"]);

    let explained = server.cli_ok(&["report", "explain", "--tenant", "shop", "--goal", "orders", "--key", "A", "--format", "json"]);
    let explained: serde_json::Value = serde_json::from_str(&explained).unwrap();
    let split = |model: &str| -> Vec<(String, String, serde_json::Value, serde_json::Value)> {
        explained["models"][model]
            .as_array()
            .unwrap_or_else(|| panic!("no {model} in {explained}"))
            .iter()
            .map(|share| {
                (share["msg_hash"].as_str().unwrap().to_owned(), share["touch_event_id"].as_str().unwrap().to_owned(), share["share"].clone(), share["value"].clone())
            })
            .collect()
    };
    let row = |hash: &str, touch: &str, share: serde_json::Value, value: i64| (hash.to_owned(), touch.to_owned(), share, json!(value));
    assert_eq!(split("last_touch"), [row("m3", "t3", json!(1), 1000)]);
    assert_eq!(split("first_touch"), [row("m1", "t1b", json!(1), 1000)]);
    assert_eq!(split("linear"), [row("m1", "t1b", json!(0.333333), 333), row("m2", "t2", json!(0.333333), 333), row("m3", "t3", json!(0.333334), 334)]);
    assert_eq!(split("position_based"), [row("m1", "t1b", json!(0.4), 400), row("m2", "t2", json!(0.2), 200), row("m3", "t3", json!(0.4), 400)]);
    // m1's representative is 1.5 h before m3's: 2^-1.5 against 2^-1 and 1.
    let decay = split("time_decay");
    let weights = [2f64.powf(-1.5), 0.5, 1.0];
    let total: f64 = weights.iter().sum();
    let ppm: Vec<u64> = weights.iter().map(|w| (1_000_000.0 * w / total).floor() as u64).collect();
    let shares: Vec<u64> = decay.iter().map(|(_, _, share, _)| (share.as_f64().unwrap() * 1_000_000.0).round() as u64).collect();
    assert_eq!(shares.iter().sum::<u64>(), 1_000_000);
    for (got, floor) in shares.iter().zip(&ppm) {
        assert!(*got == *floor || *got == floor + 1, "time decay shares {shares:?} against floors {ppm:?}");
    }
    assert_eq!(decay.iter().map(|(_, _, _, value)| value.as_i64().unwrap()).sum::<i64>(), 1000);
    assert_eq!(explained["credited_msg_hash"], "m3", "the rule's credit is last touch's");
}

/// On generated data, every model's split `report explain` gives equals the reference's,
/// written apart from the engine, for a sample of each tenant's attributed conversions.
#[test]
fn every_models_split_equals_the_reference_on_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = touchstone_integration_tests::Generated::new(&dir.path().join("data"), 1, 1);
    let server = DevServer::start(&dir.path().join("store"));
    server.import(&data);
    let mut compared = 0;
    let mut with_several = 0;
    for tenant in data.reference.tenants() {
        let config = data.reference.config(tenant);
        let attributed: Vec<_> = data.reference.conversions(tenant).into_iter().filter(|c| c.msg_hash.is_some()).collect();
        for conversion in attributed.iter().step_by((attributed.len() / 25).max(1)) {
            let args = ["report", "explain", "--tenant", tenant, "--goal", &conversion.goal_id, "--key", &conversion.key, "--format", "json"];
            let explained: serde_json::Value = serde_json::from_str(&server.cli_ok(&args)).unwrap();
            // Whole units: minor units of an order goal, millionths of an event goal's value.
            let micros_per_unit = match config.goal(&conversion.goal_id).map(|goal| &goal.kind) {
                Some(touchstone_core::config::GoalKind::Order { .. }) => 1_000_000,
                _ => 1,
            };
            for (model, shares) in &conversion.models {
                let got: Vec<(String, i64, i128)> = explained["models"][*model]
                    .as_array()
                    .unwrap_or_else(|| panic!("{model} missing: {explained}"))
                    .iter()
                    .map(|share| {
                        let ppm = (share["share"].as_f64().unwrap() * 1e6).round() as i64;
                        let micros = touchstone_core::model::parse_micros(&share["value"].to_string()).unwrap();
                        (share["msg_hash"].as_str().unwrap().to_owned(), ppm, micros)
                    })
                    .collect();
                let expected: Vec<(String, i64, i128)> =
                    shares.iter().map(|share| (share.msg_hash.clone(), share.ppm, share.value * micros_per_unit)).collect();
                assert_eq!(got, expected, "{tenant} {} {}: {model}", conversion.goal_id, conversion.key);
            }
            compared += 1;
            with_several += usize::from(conversion.models["linear"].len() > 1);
        }
    }
    assert!(compared >= 50, "{compared} conversions compared");
    assert!(with_several > 0, "some conversions have several candidate messages");
    // The example data is made so that the models disagree: in every tenant some
    // conversions are shared by several messages.
    for tenant in data.reference.tenants() {
        let shared = data.reference.conversions(tenant).iter().filter(|c| c.models["linear"].len() > 1).count();
        assert!(shared >= 5, "{tenant}: only {shared} conversions with several candidates");
    }
}

/// `report models` on generated data equals the reference's side-by-side report, over all
/// time and over ranges that cut through days.
#[test]
fn report_models_equals_the_reference_on_generated_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = touchstone_integration_tests::Generated::new(&dir.path().join("data"), 1, 2);
    let server = DevServer::start(&dir.path().join("store"));
    server.import(&data);
    let mut rows = 0;
    for tenant in data.reference.tenants() {
        for (from, to) in [(None, None)].into_iter().chain(touchstone_integration_tests::unaligned_ranges().into_iter().take(2)) {
            let mut args = vec!["report", "models", "--tenant", tenant, "--format", "json"];
            let (from_text, to_text) = (from.map(|f: i64| f.to_string()), to.map(|t: i64| t.to_string()));
            if let Some(from) = &from_text {
                args.extend(["--from", from]);
            }
            if let Some(to) = &to_text {
                args.extend(["--to", to]);
            }
            let got: serde_json::Value = serde_json::from_str(&server.cli_ok(&args)).unwrap();
            let expected = data.reference.models_json(tenant, from, to);
            assert_eq!(got, expected, "{tenant} [{from:?}, {to:?})");
            rows += got.as_array().unwrap().len();
        }
    }
    assert!(rows > 10, "{rows} rows compared");

    // One campaign's rows, asked for alone: the same as in the whole report.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        use touchstone_proto::v1 as pb;
        let mut query = touchstone_proto::v1::query_service_client::QueryServiceClient::new(server.channel().await);
        let tenant = data.reference.tenants()[0].to_owned();
        let request = |campaign_id: Option<String>, by_message| pb::ModelReportRequest { tenant: tenant.clone(), range: None, goal_id: None, by_message, campaign_id };
        let whole = query.get_model_report(request(None, false)).await.unwrap().into_inner();
        let campaign = whole.rows.first().expect("a row").campaign_id.clone();
        let one = query.get_model_report(request(Some(campaign.clone()), false)).await.unwrap().into_inner();
        let expected: Vec<pb::ModelRow> = whole.rows.iter().filter(|row| row.campaign_id == campaign).cloned().collect();
        assert!(!expected.is_empty());
        assert_eq!(one.rows, expected, "{campaign}");
        let refused = query.get_model_report(request(Some(campaign), true)).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused:?}");
    });
}

/// `report campaigns|messages --model M` on generated data equals the reference's; goal
/// totals do not change with the model; a table under a model is refused with the fix.
#[test]
fn reports_under_every_model_equal_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let data = touchstone_integration_tests::Generated::new(&dir.path().join("data"), 1, 3);
    let server = DevServer::start(&dir.path().join("store"));
    server.import(&data);
    let tenant = data.reference.tenants()[0].to_owned();
    let (from, to) = touchstone_integration_tests::unaligned_ranges()[1];
    let range: Vec<String> = from.map(|f| vec!["--from".to_owned(), f.to_string()]).unwrap_or_default().into_iter()
        .chain(to.map(|t| vec!["--to".to_owned(), t.to_string()]).unwrap_or_default())
        .collect();
    for model in ["first_touch", "linear", "position_based", "time_decay"] {
        for (kind, by_message) in [("campaigns", false), ("messages", true)] {
            for (from, to, range) in [(None, None, &[][..]), (from, to, &range[..])] {
                let mut args: Vec<&str> = vec!["report", kind, "--tenant", &tenant, "--model", model, "--format", "json"];
                args.extend(range.iter().map(String::as_str));
                let got: serde_json::Value = serde_json::from_str(&server.cli_ok(&args)).unwrap();
                assert_eq!(got, data.reference.stats_json_under(&tenant, from, to, model, by_message), "{kind} --model {model} [{from:?}, {to:?})");
            }
        }
        let goals: serde_json::Value = serde_json::from_str(&server.cli_ok(&["report", "goals", "--tenant", &tenant, "--model", model, "--format", "json"])).unwrap();
        assert_eq!(goals, data.reference.goals_json(&tenant, None, None), "goal totals under {model}");
    }
    let refused = server.cli(&["report", "campaigns", "--tenant", &tenant, "--model", "linear", "--format", "table"]);
    assert!(!refused.status.success());
    assert!(touchstone_integration_tests::text(&refused.stderr).contains("--format json"));
}
