//! The Connect protocol on the HTTP listener: a unary call in JSON or binary proto gets what
//! the same gRPC call gets, an error comes as Connect's JSON error with the same code and
//! details, and keys apply as they do to gRPC.

use prost::Message as _;
use serde_json::{Value, json};
use std::time::Duration;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::query_service_client::QueryServiceClient;
use touchstone_server::keys::{KeyRing, KeysFile};
use touchstone_server::serve::Roles;

mod common;

use common::{HeldCall, InProcess, dev_roles};

const TS: i64 = 1_767_225_600_000;

/// `POST path` with `body` as `content_type` over HTTP/1.1: the status and the body.
async fn post(address: std::net::SocketAddr, path: &str, content_type: &str, body: &[u8], key: Option<&str>) -> (u16, Vec<u8>) {
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("the HTTP listener");
    let auth = key.map(|key| format!("authorization: Bearer {key}\r\n")).unwrap_or_default();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: touchstone\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n{auth}connection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(body).await.unwrap();
    let mut answer = Vec::new();
    socket.read_to_end(&mut answer).await.unwrap();
    let split = answer.windows(4).position(|w| w == b"\r\n\r\n").expect("an HTTP answer") + 4;
    let head = String::from_utf8_lossy(&answer[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|code| code.parse().ok()).unwrap_or(0);
    let mut body = answer[split..].to_vec();
    if head.to_ascii_lowercase().contains("transfer-encoding: chunked") {
        body = unchunk(&body);
    }
    (status, body)
}

fn unchunk(mut data: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n").unwrap();
        let size = usize::from_str_radix(std::str::from_utf8(&data[..line_end]).unwrap().trim(), 16).unwrap();
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&data[line_end + 2..line_end + 2 + size]);
        data = &data[line_end + 2 + size + 2..];
    }
}

async fn post_json(address: std::net::SocketAddr, path: &str, body: Value, key: Option<&str>) -> (u16, Value) {
    let (status, body) = post(address, path, "application/json", body.to_string().as_bytes(), key).await;
    (status, serde_json::from_slice(&body).unwrap_or_else(|err| panic!("{path}: not JSON ({err}): {}", String::from_utf8_lossy(&body))))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_in_json_and_proto_answer_what_grpc_answers() {
    let (server, http) = InProcess::start_with_console(dev_roles(), None).await;
    let event = json!({"tenant": "gym", "eventId": "e1", "customerId": "ann", "name": "app_open", "ts": TS.to_string()});
    let (status, reply) = post_json(http, "/touchstone.v1.IngestService/PostEvents", json!({"events": [event]}), None).await;
    assert_eq!((status, &reply), (200, &json!({"accepted": "1"})), "uint64 as a string, defaults left out");
    let (_, again) = post_json(http, "/touchstone.v1.IngestService/PostEvents", json!({"events": [event], "someFutureField": 1}), None).await;
    assert_eq!(again, json!({"duplicates": "1"}), "unknown fields are ignored");

    // Binary proto: byte for byte what the gRPC call answers.
    let request = pb::ListCampaignsRequest { tenant: "gym".into(), range: None };
    let (status, body) = post(http, "/touchstone.v1.QueryService/ListCampaigns", "application/proto", &request.encode_to_vec(), None).await;
    assert_eq!(status, 200);
    let connect = pb::CampaignList::decode(body.as_slice()).unwrap();
    let grpc = QueryServiceClient::new(server.channel.clone()).list_campaigns(request.clone()).await.unwrap().into_inner();
    assert_eq!(connect, grpc);
    let (_, list) = post_json(http, "/touchstone.v1.QueryService/ListCampaigns", json!({"tenant": "gym"}), None).await;
    assert_eq!(list["units"]["currency"], "USD", "{list}");

    // gRPC-Web, as a browser sends it: a framed message, answered with a framed message and
    // a trailers frame.
    let message = request.encode_to_vec();
    let mut framed = vec![0u8];
    framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
    framed.extend_from_slice(&message);
    let (status, body) = post(http, "/touchstone.v1.QueryService/ListCampaigns", "application/grpc-web+proto", &framed, None).await;
    assert_eq!(status, 200);
    let length = u32::from_be_bytes(body[1..5].try_into().unwrap()) as usize;
    assert_eq!((body[0], pb::CampaignList::decode(&body[5..5 + length]).unwrap()), (0, grpc));
    let trailers = String::from_utf8_lossy(&body[5 + length + 5..]).to_ascii_lowercase();
    assert!(body[5 + length] == 0x80 && trailers.contains("grpc-status:0"), "{trailers}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_carry_the_grpc_code_and_details_in_connects_form() {
    let (server, http) = InProcess::start_with_console(dev_roles(), None).await;
    let (status, error) = post_json(http, "/touchstone.v1.QueryService/ListCampaigns", json!({"tenant": "ghost"}), None).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")), "{error}");
    let info = error["details"].as_array().unwrap().iter().find(|d| d["type"] == "google.rpc.ErrorInfo").expect("ErrorInfo");
    assert_eq!(info["debug"]["reason"], "TENANT_NOT_FOUND", "{error}");
    assert!(info["value"].as_str().is_some_and(|value| !value.is_empty()));

    // A bad field: the same BadRequest violation gRPC gives (of a tenant that exists).
    let event = json!({"tenant": "gym", "eventId": "e1", "customerId": "ann", "name": "app_open", "ts": TS.to_string()});
    assert_eq!(post_json(http, "/touchstone.v1.IngestService/PostEvents", json!({"events": [event]}), None).await.0, 200);
    let range = json!({"fromMs": "5", "toMs": "1"});
    let (status, error) = post_json(http, "/touchstone.v1.QueryService/GetGoalKpis", json!({"tenant": "gym", "range": range}), None).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("invalid_argument")), "{error}");
    let bad = error["details"].as_array().unwrap().iter().find(|d| d["type"] == "google.rpc.BadRequest").expect("BadRequest");
    assert_eq!(bad["debug"]["fieldViolations"][0]["field"], "range", "{error}");

    // Not JSON of the request's type; no such method; a stream.
    let (status, error) = post_json(http, "/touchstone.v1.QueryService/ListCampaigns", json!({"tenant": 5}), None).await;
    assert_eq!((status, error["code"].as_str()), (400, Some("invalid_argument")), "{error}");
    let (status, error) = post_json(http, "/touchstone.v1.QueryService/NoSuchMethod", json!({}), None).await;
    assert_eq!((status, error["code"].as_str()), (501, Some("unimplemented")), "{error}");
    let (status, _) = post_json(http, "/touchstone.v1.IngestService/IngestStream", json!({}), None).await;
    assert_eq!(status, 501);
    let (status, _) = post(http, "/touchstone.v1.QueryService/ListCampaigns", "text/plain", b"{}", None).await;
    assert_eq!(status, 415);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_apply_to_connect_calls_as_to_grpc() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let mut file = KeysFile::default();
    let (_, key) = file.create("gym", &touchstone_proto::auth::Scope::ALL, "gym");
    file.write(&path).unwrap();
    let roles = Roles { keys: Some(KeyRing::load(&path).unwrap()), ..dev_roles() };
    let (server, http) = InProcess::start_with_console(roles, None).await;
    let call = |key| post_json(http, "/touchstone.v1.ConfigService/GetConfig", json!({"tenant": "gym"}), key);
    let (status, error) = call(None).await;
    assert_eq!((status, error["code"].as_str()), (401, Some("unauthenticated")), "{error}");
    let (status, config) = call(Some(&key)).await;
    assert_eq!((status, config["tenant"].as_str()), (200, Some("gym")), "{config}");
    let (status, error) = post_json(http, "/touchstone.v1.ConfigService/GetConfig", json!({"tenant": "spa"}), Some(&key)).await;
    assert_eq!((status, error["code"].as_str()), (403, Some("permission_denied")), "{error}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    server.stop().await;
}

/// The bytes of a Connect stream's answer until `enough` holds of them (or 10 s pass).
async fn stream_until(address: std::net::SocketAddr, path: &str, request: Value, enough: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let json = request.to_string();
    let mut body = vec![0u8];
    body.extend_from_slice(&(json.len() as u32).to_be_bytes());
    body.extend_from_slice(json.as_bytes());
    let mut socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: touchstone\r\ncontent-type: application/connect+json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&body).await.unwrap();
    let mut seen = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut buffer = [0u8; 4096];
    while !enough(&seen) && tokio::time::Instant::now() < deadline {
        match tokio::time::timeout_at(deadline, socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Err(_) => break,
            Ok(Ok(n)) => seen.extend_from_slice(&buffer[..n]),
            Ok(Err(err)) => panic!("{err}"),
        }
    }
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_badge_feed_streams_over_connect_and_ends_with_the_error_if_any() {
    use touchstone_proto::v1::config_service_client::ConfigServiceClient;
    use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
    let (server, http) = InProcess::start_with_console(dev_roles(), None).await;
    let feed = "/touchstone.v1.QueryService/WatchBadgeEvents";

    // A tenant that does not exist: a 200 whose one envelope is the end of the stream.
    let answer = stream_until(http, feed, json!({"tenant": "ghost"}), |seen| seen.windows(9).any(|w| w == b"not_found")).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 200") && text.contains("application/connect+json"), "{text}");
    assert!(text.contains("\"error\":{\"code\":\"not_found\"") && text.contains("TENANT_NOT_FOUND"), "{text}");

    let definition = pb::BadgeDefinition { id: "vip".into(), name: "VIP".into(), active: true, ..Default::default() };
    ConfigServiceClient::new(server.channel.clone()).save_badge(pb::SaveBadgeRequest { tenant: "gym".into(), badge: Some(definition) }).await.unwrap();
    let issue = pb::IssueBadgeRequest {
        tenant: "gym".into(),
        event_id: "i1".into(),
        customer_id: "ann".into(),
        badge_id: "vip".into(),
        ts: Some(TS),
        actor: "agent".into(),
        reason: None,
        source: pb::BadgeSource::DirectIssue.into(),
    };
    IngestServiceClient::new(server.channel.clone()).issue_badge(issue).await.unwrap();
    let answer = stream_until(http, feed, json!({"tenant": "gym", "fromStart": true}), |seen| seen.windows(3).any(|w| w == b"ann")).await;
    let text = String::from_utf8_lossy(&answer);
    assert!(text.contains("\"customerId\":\"ann\"") && text.contains("\"badgeId\":\"vip\""), "{text}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connect_call_is_shed_and_measured_as_a_grpc_call_is() {
    use touchstone_server::limits::Limits;
    let metrics = touchstone_server::telemetry::handle().unwrap();
    let limits = Limits { in_flight: 1, ..Limits::default() };
    let (server, http) = InProcess::start_with_console(Roles { limits, ..dev_roles() }, None).await;
    let event = json!({"tenant": "gym", "eventId": "e1", "customerId": "ann", "name": "app_open", "ts": TS.to_string()});
    assert_eq!(post_json(http, "/touchstone.v1.IngestService/PostEvents", json!({"events": [event]}), None).await.0, 200);

    // An ingest stream left open holds the server's one call in flight.
    let mut held = HeldCall::open(&server.channel);
    let mut refused = (0, Value::Null);
    for _ in 0..750 {
        refused = post_json(http, "/touchstone.v1.QueryService/ListCampaigns", json!({"tenant": "gym"}), None).await;
        if refused.0 == 429 {
            break;
        }
        held.reopen_if_shed().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (status, error) = refused;
    assert_eq!((status, error["code"].as_str()), (429, Some("resource_exhausted")), "{error}");
    assert!(error["details"].as_array().unwrap().iter().any(|detail| detail["type"] == "google.rpc.RetryInfo"), "{error}");
    held.close().await;

    // Timed under its method and the code it ended with, as gRPC calls are.
    let page = metrics.render();
    let count = |code: &str| {
        let prefix = format!("touchstone_rpc_duration_seconds_count{{method=\"/touchstone.v1.QueryService/ListCampaigns\",code=\"{code}\"}}");
        page.lines().find(|line| line.starts_with(&prefix)).and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert!(count("RESOURCE_EXHAUSTED").is_some_and(|n| n >= 1.0), "{page}");
    server.stop().await;
}
