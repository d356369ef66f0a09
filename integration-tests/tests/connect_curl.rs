//! The API over HTTP with JSON, as a web backend calls it: `curl` posts an app event that
//! carries a push's `msg_hash` to `touchstone dev --http` (the Connect protocol, over TLS,
//! with an API key), reads the campaign's stats as JSON, and gets a bad request back as
//! Connect's JSON error naming the field. The figures equal what the CLI reports over gRPC.

use serde_json::{Value, json};
use std::process::Command;
use touchstone_integration_tests::{Server, certificates, create_key, free_address, text};

const T0: i64 = 1_767_225_600_000;

/// `curl` posting `body` as JSON to `path` over TLS with `key`: the HTTP status and the JSON
/// answer.
fn curl(http: &str, ca: &str, key: &str, path: &str, body: &Value) -> (u16, Value) {
    let out = Command::new("curl")
        .args(["--silent", "--show-error", "--cacert", ca, "--header", "Content-Type: application/json"])
        .args(["--header", &format!("Authorization: Bearer {key}"), "--data-binary"])
        .arg(body.to_string())
        .args(["--write-out", "\n%{http_code}"])
        .arg(format!("https://{http}{path}"))
        .output()
        .expect("curl (the Debian package; .ci/run installs it)");
    assert!(out.status.success(), "curl {path}: {}", text(&out.stderr));
    let answer = text(&out.stdout);
    let (json, status) = answer.rsplit_once('\n').unwrap();
    (status.trim().parse().unwrap(), serde_json::from_str(json).unwrap_or_else(|err| panic!("{path}: {err}: {json}")))
}

#[test]
fn curl_posts_an_event_and_reads_a_campaigns_stats_as_json() {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, tls_key) = certificates(dir.path());
    let keys = dir.path().join("keys.json").to_string_lossy().into_owned();
    let key = create_key(&keys, "shop");
    let http = free_address();
    let data = dir.path().join("store").to_string_lossy().into_owned();
    let server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &data, "--http", &http, "--tls-cert", &cert, "--tls-key", &tls_key, "--keys-file", &keys]);
    let cli = |args: &[&str]| server.cli_ok(&[args, &["--api-key", &key, "--tls-ca", &ca]].concat());

    let call = |path: &str, body: Value| curl(&http, &ca, &key, &format!("/touchstone.v1.{path}"), &body);
    // Without the key: refused as gRPC refuses it.
    let (status, refused) = curl(&http, &ca, "tsk_0000_1111", "/touchstone.v1.QueryService/ListCampaigns", &json!({"tenant": "shop"}));
    assert_eq!((status, refused["code"].as_str()), (401, Some("unauthenticated")), "{refused}");
    let message = json!({"tenant": "shop", "msgHash": "m1", "campaignId": "spring", "channel": "CHANNEL_PUSH", "sentAt": T0.to_string()});
    assert_eq!(call("IngestService/RegisterMessages", json!({"messages": [message]})), (200, json!({"accepted": "1"})));
    let touch = json!({"tenant": "shop", "eventId": "t1", "customerId": "ann", "msgHash": "m1", "touch": "TOUCH_KIND_OPENED", "ts": T0.to_string()});
    assert_eq!(call("IngestService/RecordTouches", json!({"touches": [touch]})).0, 200);
    let checkin = json!({"id": "checkin", "kind": "GOAL_KIND_EVENT", "eventName": "checkin"});
    assert_eq!(call("ConfigService/CreateGoal", json!({"tenant": "shop", "goal": checkin})).0, 200);
    // The event names the push that led there.
    let event = json!({"tenant": "shop", "eventId": "e1", "customerId": "ann", "name": "checkin", "ts": (T0 + 60_000).to_string(), "msgHash": "m1"});
    assert_eq!(call("IngestService/PostEvents", json!({"events": [event]})), (200, json!({"accepted": "1"})));
    cli(&["import", "records", "/dev/null", "--wait"]);

    let (status, stats) = call("QueryService/GetCampaignStats", json!({"tenant": "shop", "campaignId": "spring"}));
    assert_eq!(status, 200, "{stats}");
    let goal = stats["goals"].as_array().unwrap().iter().find(|goal| goal["goalId"] == "checkin").expect("the checkin goal").clone();
    assert_eq!(goal["conversions"], "1", "{stats}");
    assert_eq!(stats["touches"]["opened"], "1", "{stats}");
    // The same figures the CLI reports over gRPC.
    let report: Value = serde_json::from_str(&cli(&["report", "campaigns", "--tenant", "shop", "--format", "json"])).unwrap();
    assert_eq!(report[0]["goals"]["checkin"]["conversions"], 1, "{report}");

    // A bad field: Connect's JSON error, the field named as gRPC names it.
    let (status, error) = call("QueryService/GetCampaignStats", json!({"tenant": "shop", "campaignId": "spring", "range": {"fromMs": "9", "toMs": "1"}}));
    assert_eq!((status, error["code"].as_str()), (400, Some("invalid_argument")), "{error}");
    let violations = error["details"].as_array().unwrap().iter().find(|detail| detail["type"] == "google.rpc.BadRequest").unwrap();
    assert_eq!(violations["debug"]["fieldViolations"][0]["field"], "range", "{error}");
}
