//! Badges end to end on `touchstone dev` (docs/behaviour/badges.md and the CLI of docs/behaviour/cli.md):
//! definitions from config.json and the API, rule earns moved by late records, issue,
//! revoke and re-issue, CSV import with line numbers and idempotent re-upload, a timeline of
//! 10,000 events paged without gaps or repeats, and the trophy case with progress.

use serde_json::{Value, json};
use std::collections::HashSet;
use std::io::Write;
use touchstone_integration_tests::{DevServer, text};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

const DAY: i64 = 86_400_000;
/// 2026-01-01T00:00:00Z: long before the rules below are saved.
const T0: i64 = 1_767_225_600_000;

const CONFIG: &str = r#"{"tenants": {"gym": {"currency": "USD", "badges": [
    {"id": "regular", "name": "Regular", "description": "comes often", "criteria": "3 check-ins",
     "icon_url": "https://cdn.example.com/regular.png", "rank": 2, "benefits": ["priority line"],
     "rule": {"kind": "EVENT_COUNT", "event_name": "checkin", "count": 3}, "retro": true},
    {"id": "big_week", "name": "Big week", "criteria": "spend 100.00 within 7 days", "rank": 1,
     "rule": {"kind": "SPEND", "amount_minor": 10000, "period_ms": 604800000}, "retro": true,
     "validity_ms": 2592000000},
    {"id": "newcomer", "name": "Newcomer", "criteria": "a check-in from now on", "rank": 3,
     "rule": {"kind": "EVENT_COUNT", "event_name": "checkin", "count": 1}},
    {"id": "vip", "name": "VIP", "criteria": "invited by the club", "rank": 0}
]}}}"#;

fn write(dir: &std::path::Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::File::create(&path).and_then(|mut f| f.write_all(text.as_bytes())).unwrap();
    path.to_string_lossy().into_owned()
}

fn checkin(event_id: &str, customer: &str, ts: i64) -> String {
    json!({"type": "event", "tenant": "gym", "event_id": event_id, "customer_id": customer, "name": "checkin", "ts": ts}).to_string()
}

fn order(event_id: &str, order_id: &str, customer: &str, status: &str, amount_minor: i64, ts: i64) -> String {
    json!({"type": "order", "tenant": "gym", "event_id": event_id, "order_id": order_id, "customer_id": customer,
           "status": status, "amount_minor": amount_minor, "currency": "USD", "ts": ts})
    .to_string()
}

fn timeline(server: &DevServer, customer: &str, extra: &[&str]) -> Vec<Value> {
    let mut args = vec!["badges", "timeline", "--tenant", "gym", "--customer", customer, "--format", "json"];
    args.extend(extra);
    match serde_json::from_str(&server.cli_ok(&args)).unwrap() {
        Value::Array(entries) => entries,
        other => panic!("timeline is not an array: {other}"),
    }
}

fn trophy_case(server: &DevServer, customer: &str) -> Value {
    serde_json::from_str(&server.cli_ok(&["badges", "trophy-case", "--tenant", "gym", "--customer", customer, "--format", "json"])).unwrap()
}

fn ids_and_times(entries: &[Value]) -> Vec<(String, i64)> {
    entries.iter().map(|e| (e["event_id"].as_str().unwrap().to_owned(), e["ts"].as_i64().unwrap())).collect()
}

fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn rules_earn_from_records_in_any_order_and_late_records_move_the_earn() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    let config = write(dir.path(), "config.json", CONFIG);
    let imported = server.cli(&["import", "config", &config]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    assert!(text(&imported.stderr).contains("4 badges created"), "{}", text(&imported.stderr));
    // Importing the same file again changes nothing and succeeds.
    let again = server.cli(&["import", "config", &config]);
    assert!(again.status.success() && text(&again.stderr).contains("4 saved again"), "{}", text(&again.stderr));

    // Three check-ins on days 10, 20 and 30: the earn is at the third.
    let first = [checkin("c10", "ann", T0 + 10 * DAY), checkin("c20", "ann", T0 + 20 * DAY), checkin("c30", "ann", T0 + 30 * DAY)];
    server.cli_ok(&["import", "records", &write(dir.path(), "first.jsonl", &first.join("\n")), "--wait"]);
    let entries = timeline(&server, "ann", &[]);
    assert_eq!(
        entries,
        vec![json!({"event_id": "rule:regular", "badge_id": "regular", "action": "EARNED", "ts": T0 + 30 * DAY,
                    "source": "RETRO_EARN", "reason": "3 checkin events"})]
    );
    let case = trophy_case(&server, "ann");
    assert_eq!(case["held"], json!([{"badge_id": "regular", "name": "Regular", "rank": 2, "earned_at": T0 + 30 * DAY, "expires_at": null}]));
    // Newcomer counts check-ins from its save on only: none of these.
    let locked: Vec<(&str, &Value)> = case["locked"].as_array().unwrap().iter().map(|b| (b["badge_id"].as_str().unwrap(), &b["progress"])).collect();
    assert_eq!(
        locked,
        vec![("vip", &Value::Null), ("big_week", &json!({"current": 0, "target": 10000})), ("newcomer", &json!({"current": 0, "target": 1}))]
    );

    // A check-in from day 5 arrives late, twice (a retry): the earn moves to day 20, once.
    let late = [checkin("c05", "ann", T0 + 5 * DAY), checkin("c05", "ann", T0 + 5 * DAY)];
    server.cli_ok(&["import", "records", &write(dir.path(), "late.jsonl", &late.join("\n")), "--wait"]);
    assert_eq!(ids_and_times(&timeline(&server, "ann", &[])), vec![("rule:regular".to_owned(), T0 + 20 * DAY)]);

    // Spend within 7 days: 60.00 and 50.00 five days apart earn; the order counts at its
    // earliest PLACED/PAID/DELIVERED record, whichever arrives first.
    let orders = [
        order("o1-paid", "o1", "bob", "PAID", 6_000, T0 + 3 * DAY),
        order("o1-placed", "o1", "bob", "PLACED", 6_000, T0 + DAY),
        order("o2-refunded", "o2", "bob", "REFUNDED", 50_000, T0 + 2 * DAY),
        order("o3-placed", "o3", "bob", "PLACED", 5_000, T0 + 6 * DAY),
        order("o4-eur", "o4", "bob", "PAID", 90_000, T0 + 6 * DAY),
    ];
    let mut eur = orders[4].clone();
    eur = eur.replace("\"USD\"", "\"EUR\"");
    let lines = [orders[0].clone(), orders[1].clone(), orders[2].clone(), orders[3].clone(), eur];
    server.cli_ok(&["import", "records", &write(dir.path(), "orders.jsonl", &lines.join("\n")), "--wait"]);
    let entries = timeline(&server, "bob", &[]);
    // Earned at day 6 (60.00 on day 1 + 50.00 on day 6), valid 30 days: expired on day 36.
    assert_eq!(
        ids_and_times(&entries),
        vec![("expiry:rule:big_week".to_owned(), T0 + 36 * DAY), ("rule:big_week".to_owned(), T0 + 6 * DAY)]
    );
    assert_eq!(entries[0]["action"], "EXPIRED");
    assert_eq!(entries[1]["reason"], "spent 110.00 USD of 100.00 USD", "money as people read it");
    assert!(trophy_case(&server, "bob")["held"].as_array().unwrap().is_empty(), "an expired badge is not held");

    // A check-in after the save counts for the non-retro rule, as RULE.
    let soon = now_ms() + 60_000;
    server.cli_ok(&["import", "records", &write(dir.path(), "new.jsonl", &checkin("c-new", "cy", soon)), "--wait"]);
    let entries = timeline(&server, "cy", &[]);
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert_eq!((entries[0]["event_id"].as_str(), entries[0]["source"].as_str()), (Some("rule:newcomer"), Some("RULE")));

    // Filters: by badge and by range.
    assert!(timeline(&server, "bob", &["--badge", "regular"]).is_empty());
    let from = (T0 + 10 * DAY).to_string();
    assert_eq!(timeline(&server, "bob", &["--from", &from]).len(), 1);
}

#[test]
fn issue_revoke_and_reissue_through_the_api_and_definitions_keep_their_rules() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    server.cli_ok(&["import", "config", &write(dir.path(), "config.json", CONFIG)]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = server.channel().await;
        let mut ingest = IngestServiceClient::new(channel.clone());
        let mut config = ConfigServiceClient::new(channel.clone());
        let mut query = QueryServiceClient::new(channel);
        let issue = |event_id: &str, ts: i64| pb::IssueBadgeRequest {
            tenant: "gym".into(),
            event_id: event_id.into(),
            customer_id: "dee".into(),
            badge_id: "vip".into(),
            ts: Some(ts),
            actor: "agent-7".into(),
            reason: Some("gala".into()),
            source: pb::BadgeSource::DirectIssue.into(),
        };
        let reply = ingest.issue_badge(issue("i1", T0)).await.unwrap().into_inner();
        assert!(!reply.duplicate);
        assert_eq!(reply.event.unwrap().reason.as_deref(), Some("gala (by agent-7)"));
        assert!(ingest.issue_badge(issue("i1", T0)).await.unwrap().into_inner().duplicate, "a retry changes nothing");
        ingest.revoke_badge(pb::IssueBadgeRequest { source: 0, ..issue("r1", T0 + DAY) }).await.unwrap();
        ingest.issue_badge(issue("i2", T0 + 2 * DAY)).await.unwrap();

        let unknown = ingest.issue_badge(pb::IssueBadgeRequest { badge_id: "ghost".into(), ..issue("i3", T0) }).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
        let rule_source = ingest.issue_badge(pb::IssueBadgeRequest { source: pb::BadgeSource::Rule.into(), ..issue("i4", T0) }).await.unwrap_err();
        assert_eq!(rule_source.code(), tonic::Code::InvalidArgument);
        // A batch checks each event as IssueBadge does; the good ones are stored.
        let event = |event_id: &str, badge_id: &str, source: pb::BadgeSource| pb::BadgeEvent {
            tenant: "gym".into(),
            event_id: event_id.into(),
            customer_id: "eve".into(),
            badge_id: badge_id.into(),
            action: pb::BadgeAction::Earned.into(),
            ts: T0,
            source: source.into(),
            reason: None,
        };
        let badges = vec![
            event("b1", "vip", pb::BadgeSource::BulkImport),
            event("b2", "ghost", pb::BadgeSource::Api),
            event("b3", "vip", pb::BadgeSource::Rule),
            event("b4", "regular", pb::BadgeSource::RetroEarn),
        ];
        let reply = ingest.record_badge_events(pb::RecordBadgeEventsRequest { badges }).await.unwrap().into_inner();
        assert_eq!(reply.accepted, 1);
        let refused: Vec<(u64, tonic::Code)> = reply.rejected.iter().map(|r| (r.index, tonic::Code::from_i32(r.code))).collect();
        assert_eq!(refused, [(1, tonic::Code::NotFound), (2, tonic::Code::InvalidArgument), (3, tonic::Code::InvalidArgument)]);
        assert!(reply.rejected[0].reason.contains("\"ghost\" is not defined"), "{reply:?}");

        let page = query
            .get_badge_timeline(pb::BadgeTimelineRequest { tenant: "gym".into(), customer_id: "dee".into(), ..Default::default() })
            .await
            .unwrap()
            .into_inner();
        let ids: Vec<(&str, pb::BadgeAction, pb::BadgeSource)> = page.entries.iter().map(|e| (e.event_id.as_str(), e.action(), e.source())).collect();
        assert_eq!(
            ids,
            vec![
                ("i2", pb::BadgeAction::Earned, pb::BadgeSource::DirectIssue),
                ("r1", pb::BadgeAction::Revoked, pb::BadgeSource::Api),
                ("i1", pb::BadgeAction::Earned, pb::BadgeSource::DirectIssue),
            ]
        );
        let case = query.get_trophy_case(pb::TrophyCaseRequest { tenant: "gym".into(), customer_id: "dee".into() }).await.unwrap().into_inner();
        assert_eq!(case.held.iter().map(|h| (h.badge_id.as_str(), h.earned_at)).collect::<Vec<_>>(), vec![("vip", T0 + 2 * DAY)]);

        // A revoke says whether the badge was held then, once attribution has the earns.
        let mut attribution = AttributionServiceClient::new(server.channel().await);
        for _ in 0..200 {
            let status = attribution.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
            if status.processed == status.log_head {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        // (Half a day after i1, before r1: the holding from i2 on stays.)
        let held = ingest.revoke_badge(pb::IssueBadgeRequest { source: 0, ..issue("r2", T0 + DAY / 2) }).await.unwrap().into_inner();
        assert!(held.was_held, "held since i1: {held:?}");
        let not_held = ingest.revoke_badge(pb::IssueBadgeRequest { source: 0, customer_id: "nobody".into(), ..issue("r3", T0 + 3 * DAY) }).await.unwrap().into_inner();
        assert!(!not_held.was_held && !not_held.duplicate, "never held, stored all the same: {not_held:?}");

        // A saved rule cannot change; the text can.
        let badges = config.list_badges(pb::ListBadgesRequest { tenant: "gym".into() }).await.unwrap().into_inner().badges;
        let mut regular = badges.into_iter().find(|b| b.id == "regular").unwrap();
        let saved_at = regular.rule_saved_at.expect("a rule's save time");
        regular.name = "Regular guest".into();
        let saved = config.save_badge(pb::SaveBadgeRequest { tenant: "gym".into(), badge: Some(regular.clone()) }).await.unwrap().into_inner();
        assert!(!saved.created);
        assert_eq!(saved.badge.as_ref().map(|b| (b.name.as_str(), b.rule_saved_at)), Some(("Regular guest", Some(saved_at))));
        let mut changed = regular.clone();
        changed.rule.as_mut().unwrap().count = 4;
        let refused = config.save_badge(pb::SaveBadgeRequest { tenant: "gym".into(), badge: Some(changed) }).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
        let mut invalid = regular;
        invalid.name = String::new();
        let refused = config.save_badge(pb::SaveBadgeRequest { tenant: "gym".into(), badge: Some(invalid) }).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::InvalidArgument);

        // A bulk upload saves every definition or none.
        let definition = |id: &str, count: u64| pb::BadgeDefinition {
            id: id.into(),
            name: id.to_uppercase(),
            active: true,
            rule: Some(pb::BadgeRule { kind: pb::BadgeRuleKind::EventCount.into(), event_name: "checkin".into(), count, ..Default::default() }),
            ..Default::default()
        };
        let listed = |badges: Vec<pb::BadgeDefinition>| badges.into_iter().map(|b| b.id).collect::<Vec<_>>();
        let bulk = |badges| pb::SaveBadgesRequest { tenant: "gym".into(), badges };
        let saved = config.save_badges(bulk(vec![definition("gold", 20), definition("silver", 10)])).await.unwrap().into_inner();
        assert_eq!(saved.badges.iter().map(|b| b.created).collect::<Vec<_>>(), [true, true]);
        let refused = config.save_badges(bulk(vec![definition("bronze", 5), definition("gold", 21)])).await.unwrap_err();
        assert_eq!(refused.code(), tonic::Code::FailedPrecondition, "{refused:?}");
        assert!(refused.message().contains("gold"), "{refused:?}");
        let all = config.list_badges(pb::ListBadgesRequest { tenant: "gym".into() }).await.unwrap().into_inner().badges;
        assert!(!listed(all).contains(&"bronze".to_owned()), "a refused bulk upload saved nothing");

        // Deactivated: no longer offered as locked; holders keep theirs.
        let vip = config
            .set_badge_active(pb::SetBadgeActiveRequest { tenant: "gym".into(), badge_id: "vip".into(), active: false })
            .await
            .unwrap()
            .into_inner();
        assert!(!vip.active && vip.inactive_since.is_some());
        let case = query.get_trophy_case(pb::TrophyCaseRequest { tenant: "gym".into(), customer_id: "dee".into() }).await.unwrap().into_inner();
        assert_eq!(case.held.len(), 1);
        let other = query.get_trophy_case(pb::TrophyCaseRequest { tenant: "gym".into(), customer_id: "eve".into() }).await.unwrap().into_inner();
        assert!(other.locked.iter().all(|b| b.badge_id != "vip"));

        let bad_token = query
            .get_badge_timeline(pb::BadgeTimelineRequest {
                tenant: "gym".into(),
                customer_id: "dee".into(),
                page_token: "zz".into(),
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(bad_token.code(), tonic::Code::InvalidArgument);
    });
}

#[test]
fn csv_import_reports_bad_rows_by_line_is_idempotent_and_a_10000_event_timeline_pages_whole() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    let badges: Vec<Value> = (0..7).map(|i| json!({"id": format!("b{i}"), "name": format!("B{i}"), "rank": i})).collect();
    let config = json!({"tenants": {"shop": {"currency": "USD", "badges": badges}}}).to_string();
    server.cli_ok(&["import", "config", &write(dir.path(), "config.json", &config)]);
    let mut csv = String::from("customer_id,badge_id,action,ts,source,reason,event_id\n");
    for i in 0..10_000i64 {
        let action = if i % 10 == 9 { "REVOKED" } else { "EARNED" };
        // Pairs of equal times: the tie is broken by event id.
        csv.push_str(&format!("many,b{},{action},{},MIGRATION,legacy row {i},\n", i % 7, T0 + (i / 2) * 1_000));
    }
    csv.push_str("many,b1,EARNED,not-a-time,,,\n"); // line 10,002
    csv.push_str("many,b1,WON,5,,,\n"); // line 10,003
    // Only definitions can be issued, and only rules write their own sources (the server
    // refuses these rows, and the CLI still names their lines).
    csv.push_str("many,nosuchbadge,EARNED,2026-01-10T10:00:00Z,,x,\n"); // line 10,004
    csv.push_str("many,b2,EARNED,2026-01-10T10:00:00Z,RULE,,\n"); // line 10,005
    csv.push_str("many,b2,EARNED,2026-01-10T10:00:00Z,retro_earn,,\n"); // line 10,006
    let path = write(dir.path(), "badges.csv", &csv);
    let first = server.cli(&["badges", "import", &path, "--tenant", "shop"]);
    let stderr = text(&first.stderr);
    assert!(!first.status.success(), "bad rows fail the command");
    assert!(stderr.contains("badges.csv:10002: ts \"not-a-time\""), "{stderr}");
    assert!(stderr.contains("badges.csv:10003: action"), "{stderr}");
    assert!(stderr.contains("badges.csv:10004: badge \"nosuchbadge\" is not defined for tenant \"shop\""), "{stderr}");
    assert!(stderr.contains("badges.csv:10005: source RULE is the rules' own"), "{stderr}");
    assert!(stderr.contains("badges.csv:10006: source RETRO_EARN is the rules' own"), "{stderr}");
    assert!(stderr.contains("10005 rows, 10000 accepted, 0 duplicates, 5 rejected"), "{stderr}");
    let again = server.cli(&["badges", "import", &path, "--tenant", "shop"]);
    // Uploading the same file again changes nothing: derived event ids are the same.
    assert!(text(&again.stderr).contains("0 accepted, 10000 duplicates"), "{}", text(&again.stderr));

    let out = server.cli_ok(&["badges", "timeline", "--tenant", "shop", "--customer", "many", "--format", "json"]);
    let entries: Vec<Value> = serde_json::from_str(&out).unwrap();
    assert_eq!(entries.len(), 10_000);
    let keys: Vec<(i64, String)> = entries.iter().map(|e| (e["ts"].as_i64().unwrap(), e["event_id"].as_str().unwrap().to_owned())).collect();
    assert!(keys.windows(2).all(|w| w[0] > w[1]), "newest first, no repeats");
    assert_eq!(keys.iter().map(|(_, id)| id).collect::<HashSet<_>>().len(), 10_000);
    assert_eq!(entries.last().unwrap()["source"], "MIGRATION", "original times and source kept");
    assert_eq!(entries.last().unwrap()["ts"], T0);

    // Pages of 333 through the API: the same entries, in order, no gaps or repeats.
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let paged: Vec<(i64, String)> = runtime.block_on(async {
        let mut query = QueryServiceClient::new(server.channel().await);
        let mut all = Vec::new();
        let mut page_token = String::new();
        loop {
            let request = pb::BadgeTimelineRequest {
                tenant: "shop".into(),
                customer_id: "many".into(),
                page_size: 333,
                page_token: page_token.clone(),
                ..Default::default()
            };
            let page = query.get_badge_timeline(request).await.unwrap().into_inner();
            assert!(page.entries.len() <= 333);
            all.extend(page.entries.into_iter().map(|e| (e.ts, e.event_id)));
            if page.next_page_token.is_empty() {
                break all;
            }
            page_token = page.next_page_token;
        }
    });
    assert_eq!(paged, keys);

    // The trophy case holds the badges whose last entry is an earn (none of them expire).
    let case: Value =
        serde_json::from_str(&server.cli_ok(&["badges", "trophy-case", "--tenant", "shop", "--customer", "many", "--format", "json"])).unwrap();
    let mut last: std::collections::BTreeMap<String, (i64, String, String)> = Default::default();
    for entry in entries.iter().rev() {
        let key = entry["badge_id"].as_str().unwrap().to_owned();
        let value = (entry["ts"].as_i64().unwrap(), entry["event_id"].as_str().unwrap().to_owned(), entry["action"].as_str().unwrap().to_owned());
        last.insert(key, value);
    }
    let held: Vec<&str> = case["held"].as_array().unwrap().iter().map(|b| b["badge_id"].as_str().unwrap()).collect();
    let expected: Vec<&str> = last.iter().filter(|(_, (_, _, action))| action == "EARNED").map(|(id, _)| id.as_str()).collect();
    assert_eq!(held, expected);
}

/// The next `n` feed items, failing after a generous wait (the feed polls every 200 ms).
async fn next_items(feed: &mut tonic::Streaming<pb::BadgeFeedItem>, n: usize) -> Vec<pb::BadgeFeedItem> {
    let mut items = Vec::new();
    while items.len() < n {
        let item = tokio::time::timeout(std::time::Duration::from_secs(20), feed.message()).await;
        items.push(item.expect("a feed item within 20 s").expect("the feed").expect("an open feed"));
    }
    items
}

fn feed_view(items: &[pb::BadgeFeedItem]) -> Vec<(pb::BadgeFeedChange, String, String, i64)> {
    items
        .iter()
        .map(|item| {
            let entry = item.entry.as_ref().expect("an entry");
            (item.change(), item.customer_id.clone(), entry.event_id.clone(), entry.ts)
        })
        .collect()
}

#[test]
fn the_feed_follows_issues_and_rule_earns_as_they_happen_and_badge_stats_count_them() {
    let dir = tempfile::tempdir().unwrap();
    let server = DevServer::start(&dir.path().join("store"));
    server.cli_ok(&["import", "config", &write(dir.path(), "config.json", CONFIG)]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = server.channel().await;
        let mut ingest = IngestServiceClient::new(channel.clone());
        let mut query = QueryServiceClient::new(channel);
        let watch = |after: String, from_start: bool, badge_id: Option<&str>| pb::WatchBadgeEventsRequest {
            tenant: "gym".into(),
            after,
            from_start,
            badge_id: badge_id.map(str::to_owned),
        };
        let mut feed = query.watch_badge_events(watch(String::new(), false, None)).await.unwrap().into_inner();
        let mut vip_only = query.watch_badge_events(watch(String::new(), false, Some("vip"))).await.unwrap().into_inner();

        let issue = pb::IssueBadgeRequest {
            tenant: "gym".into(),
            event_id: "i1".into(),
            customer_id: "eve".into(),
            badge_id: "vip".into(),
            ts: Some(T0),
            actor: "agent-7".into(),
            reason: None,
            source: pb::BadgeSource::DirectIssue.into(),
        };
        ingest.issue_badge(issue.clone()).await.unwrap();
        use pb::BadgeFeedChange::{Added, Removed};
        let first = next_items(&mut feed, 1).await;
        assert_eq!(feed_view(&first), vec![(Added, "eve".to_owned(), "i1".to_owned(), T0)]);

        // Three check-ins earn `regular`; a late, earlier one moves the earn.
        let checkins = [checkin("c10", "eve", T0 + 10 * DAY), checkin("c20", "eve", T0 + 20 * DAY), checkin("c30", "eve", T0 + 30 * DAY)];
        server.cli_ok(&["import", "records", &write(dir.path(), "checkins.jsonl", &checkins.join("\n")), "--wait"]);
        let earned = next_items(&mut feed, 1).await;
        assert_eq!(feed_view(&earned), vec![(Added, "eve".to_owned(), "rule:regular".to_owned(), T0 + 30 * DAY)]);
        server.cli_ok(&["import", "records", &write(dir.path(), "late.jsonl", &checkin("c05", "eve", T0 + 5 * DAY)), "--wait"]);
        let moved = next_items(&mut feed, 2).await;
        assert_eq!(
            feed_view(&moved),
            vec![
                (Removed, "eve".to_owned(), "rule:regular".to_owned(), T0 + 30 * DAY),
                (Added, "eve".to_owned(), "rule:regular".to_owned(), T0 + 20 * DAY)
            ]
        );
        ingest.revoke_badge(pb::IssueBadgeRequest { event_id: "r1".into(), ts: Some(T0 + DAY), source: 0, ..issue.clone() }).await.unwrap();
        let revoked = next_items(&mut feed, 1).await;
        assert_eq!(feed_view(&revoked), vec![(Added, "eve".to_owned(), "r1".to_owned(), T0 + DAY)]);
        // The filtered feed saw the vip entries only.
        let vip = next_items(&mut vip_only, 2).await;
        assert_eq!(vip.iter().map(|i| i.entry.as_ref().unwrap().event_id.as_str()).collect::<Vec<_>>(), ["i1", "r1"]);

        // Resuming from a cursor gives what followed it, nothing twice; from the start, all.
        let mut resumed = query.watch_badge_events(watch(first[0].cursor.clone(), false, None)).await.unwrap().into_inner();
        let rest = next_items(&mut resumed, 4).await;
        assert_eq!(rest, [earned, moved.clone(), revoked.clone()].concat());
        let mut everything = query.watch_badge_events(watch(String::new(), true, None)).await.unwrap().into_inner();
        let everything_first_cursor = first[0].cursor.clone();
        assert_eq!(next_items(&mut everything, 5).await, [first, rest].concat());
        let bad = query.watch_badge_events(watch("nope".into(), false, None)).await.unwrap_err();
        assert_eq!(bad.code(), tonic::Code::InvalidArgument, "{bad:?}");

        // Stats: `regular` earned on day 20 and held since; `vip` issued on day 0 and revoked on day 1.
        let stats = |badge_id: &str, from: i64, to: i64| pb::BadgeStatsRequest {
            tenant: "gym".into(),
            badge_id: badge_id.into(),
            range: Some(pb::TimeRange { from_ms: Some(from), to_ms: Some(to) }),
        };
        let regular = query.get_badge_stats(stats("regular", T0, T0 + 40 * DAY)).await.unwrap().into_inner();
        assert_eq!((regular.earned, regular.revoked, regular.holders_now, regular.days.len()), (1, 0, 1, 40));
        assert_eq!(regular.days[20].earned, 1);
        assert_eq!((regular.days[19].holders_at_end, regular.days[20].holders_at_end, regular.days[20].date.as_str()), (0, 1, "2026-01-21"));
        let vip = query.get_badge_stats(stats("vip", T0 + 12 * 3_600_000, T0 + DAY + 1)).await.unwrap().into_inner();
        assert_eq!((vip.earned, vip.revoked, vip.holders_now), (0, 1, 0));
        assert_eq!(vip.days.iter().map(|d| d.holders_at_end).collect::<Vec<_>>(), [1, 0]);
        let unknown = query.get_badge_stats(stats("ghost", T0, T0 + DAY)).await.unwrap_err();
        assert_eq!(unknown.code(), tonic::Code::NotFound, "{unknown:?}");
        let open = query.get_badge_stats(pb::BadgeStatsRequest { range: None, ..stats("vip", 0, 1) }).await.unwrap_err();
        assert_eq!(open.code(), tonic::Code::InvalidArgument, "{open:?}");

        // The CLI: `badges stats` as JSON, `badges watch` as JSON lines from the start.
        let (from, to) = ((T0 + 12 * 3_600_000).to_string(), (T0 + DAY + 1).to_string());
        let json: Value =
            serde_json::from_str(&server.cli_ok(&["badges", "stats", "--tenant", "gym", "--badge", "vip", "--from", &from, "--to", &to, "--format", "json"]))
                .unwrap();
        assert_eq!((json["earned"].as_i64(), json["revoked"].as_i64(), json["holders_now"].as_i64()), (Some(0), Some(1), Some(0)));
        assert_eq!(json["days"][0], json!({"date": "2026-01-01", "day_ms": T0, "earned": 0, "revoked": 0, "expired": 0, "holders_at_end": 1}));
        let mut watch = std::process::Command::new(touchstone_integration_tests::binary())
            .args(["badges", "watch", "--tenant", "gym", "--from-start", "--server", &server.url])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(watch.stdout.take().unwrap()));
        let first: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        let second: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
        watch.kill().unwrap();
        let _ = watch.wait();
        assert_eq!(
            first,
            json!({"cursor": everything_first_cursor, "change": "ADDED", "customer_id": "eve", "event_id": "i1", "badge_id": "vip",
                   "action": "EARNED", "ts": T0, "source": "DIRECT_ISSUE", "reason": "by agent-7"})
        );
        assert_eq!((second["event_id"].as_str(), second["action"].as_str()), (Some("rule:regular"), Some("EARNED")));
    });
}
