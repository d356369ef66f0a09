//! Limits that shed instead of freezing, driven in-process: with the server's calls in
//! flight taken by idle ingest streams, or one key's share taken, further calls are refused
//! at once with RESOURCE_EXHAUSTED and RetryInfo, while health and GetStatus answer in
//! milliseconds; an idle stream is closed after its timeout, saying what it stored, and
//! every record a stream stored counts exactly once.

use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Status};
use touchstone_server::keys::{KeyRing, KeysFile};
use touchstone_server::limits::Limits;
use touchstone_server::serve::Roles;
use touchstone_proto::auth::Scope;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;

mod common;

use common::{InProcess, dev_roles};

const TS: i64 = 1_767_225_600_000;

#[derive(Clone)]
struct KeyHeader(String);

impl tonic::service::Interceptor for KeyHeader {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        request.metadata_mut().insert("authorization", MetadataValue::try_from(format!("Bearer {}", self.0)).unwrap());
        Ok(request)
    }
}

type Authed = InterceptedService<Channel, KeyHeader>;

fn event(event_id: &str) -> pb::Record {
    pb::Record {
        kind: Some(pb::record::Kind::Event(pb::AppEvent {
            tenant: "gym".into(),
            event_id: event_id.into(),
            customer_id: "ann".into(),
            name: "checkin".into(),
            ts: TS,
            value: None,
            msg_hash: None,
        })),
    }
}

/// An ingest stream that sent `records` and now idles, holding its call open.
struct IdleStream {
    chunks: mpsc::Sender<pb::IngestChunk>,
    call: tokio::task::JoinHandle<Result<tonic::Response<pb::IngestReply>, Status>>,
}

async fn idle_stream(channel: Authed, records: Vec<pb::Record>) -> IdleStream {
    let (chunks, stream) = mpsc::channel(4);
    let mut ingest = IngestServiceClient::new(channel);
    let call = tokio::spawn(async move { ingest.ingest_stream(tokio_stream::wrappers::ReceiverStream::new(stream)).await });
    chunks.send(pb::IngestChunk { records }).await.unwrap();
    IdleStream { chunks, call }
}

fn assert_shed(status: &Status, what: &str) {
    use tonic_types::StatusExt as _;
    assert_eq!(status.code(), Code::ResourceExhausted, "{status:?}");
    assert!(status.message().contains(what), "{}", status.message());
    assert!(status.get_details_retry_info().and_then(|info| info.retry_delay).is_some(), "no RetryInfo: {status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_is_refused_at_once_health_never_waits_and_idle_streams_close() {
    let dir = tempfile::tempdir().unwrap();
    let keys_path = dir.path().join("keys.json");
    let mut file = KeysFile::default();
    let (_, busy_key) = file.create("gym", &Scope::ALL, "busy");
    let (_, busy_too) = file.create("gym", &Scope::ALL, "busy too");
    let (_, calm_key) = file.create(touchstone_server::keys::ALL_TENANTS, &Scope::ALL, "calm");
    file.write(&keys_path).unwrap();
    let limits = Limits { in_flight: 3, per_tenant: 2, stream_idle: Duration::from_secs(3), ..Limits::default() };
    let server = InProcess::start(Roles { keys: Some(KeyRing::load(&keys_path).unwrap()), limits, ..dev_roles() }).await;
    let channel = server.channel.clone();
    let busy = InterceptedService::new(channel.clone(), KeyHeader(busy_key));
    let calm = InterceptedService::new(channel.clone(), KeyHeader(calm_key));

    // The tenant's share: two idle streams; its third call is refused at once, whichever of
    // its keys makes it.
    let first = idle_stream(busy.clone(), vec![event("e1"), event("e2")]).await;
    let second = idle_stream(busy.clone(), vec![event("e3")]).await;
    let mut status = AttributionServiceClient::new(calm.clone());
    let started = Instant::now();
    while status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().log_head < 3 {
        assert!(started.elapsed() < Duration::from_secs(10), "the streams' chunks were not stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let asked = Instant::now();
    let refused = ConfigServiceClient::new(busy.clone()).get_config(pb::GetConfigRequest { tenant: "gym".into() }).await.unwrap_err();
    assert_shed(&refused, "tenant \"gym\" already has 2 calls in flight");
    assert_eq!(common::reason(&refused), ("OVERLOADED".to_owned(), common::metadata(&[("limit", "tenant")])));
    assert!(asked.elapsed() < Duration::from_millis(500), "refused late: {:?}", asked.elapsed());
    let other_key_of_gym = InterceptedService::new(channel.clone(), KeyHeader(busy_too));
    let refused = ConfigServiceClient::new(other_key_of_gym).get_config(pb::GetConfigRequest { tenant: "gym".into() }).await.unwrap_err();
    assert_shed(&refused, "tenant \"gym\"");
    // Another tenant's (here an operator's) key is not held back by it.
    ConfigServiceClient::new(calm.clone()).get_config(pb::GetConfigRequest { tenant: "gym".into() }).await.unwrap();

    // The whole server's calls: one more idle stream fills it.
    let third = idle_stream(calm.clone(), vec![]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let asked = Instant::now();
    let refused = ConfigServiceClient::new(calm.clone()).get_config(pb::GetConfigRequest { tenant: "gym".into() }).await.unwrap_err();
    assert_shed(&refused, "the server already runs 3 calls");
    assert_eq!(common::reason(&refused), ("OVERLOADED".to_owned(), common::metadata(&[("limit", "server")])));
    assert!(asked.elapsed() < Duration::from_millis(500), "refused late: {:?}", asked.elapsed());
    // Health and status are never starved.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    for _ in 0..20 {
        let asked = Instant::now();
        health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
        status.get_status(pb::GetStatusRequest {}).await.unwrap();
        assert!(asked.elapsed() < Duration::from_millis(200), "health and status took {:?}", asked.elapsed());
    }

    // A stream that ends frees its call: the next one runs.
    drop(first.chunks);
    let reply = first.call.await.unwrap().unwrap().into_inner();
    assert_eq!((reply.accepted, reply.duplicates), (2, 0));
    ConfigServiceClient::new(calm.clone()).get_config(pb::GetConfigRequest { tenant: "gym".into() }).await.unwrap();

    // Idle streams are closed after their timeout, saying what they stored.
    let closed = tokio::time::timeout(Duration::from_secs(10), second.call).await.expect("the idle stream is closed").unwrap().unwrap_err();
    assert_eq!(closed.code(), Code::DeadlineExceeded, "{closed:?}");
    assert!(closed.message().contains("the first 1 records of it were stored"), "{}", closed.message());
    let closed = tokio::time::timeout(Duration::from_secs(10), third.call).await.unwrap().unwrap().unwrap_err();
    assert_eq!(closed.code(), Code::DeadlineExceeded);
    drop(third.chunks);

    // Sent again after the refusals, the acknowledged records count once.
    let again = idle_stream(busy.clone(), vec![event("e1"), event("e2"), event("e3")]).await;
    drop(again.chunks);
    let reply = again.call.await.unwrap().unwrap().into_inner();
    assert_eq!((reply.accepted, reply.duplicates), (0, 3));
    assert_eq!(status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().log_head, 3);

    server.stop().await;
}

fn app_event(tenant: &str, event_id: &str) -> pb::AppEvent {
    pb::AppEvent { tenant: tenant.into(), event_id: event_id.into(), customer_id: "ann".into(), name: "checkin".into(), ts: TS, value: None, msg_hash: None }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_over_its_ingest_rate_is_refused_whole_and_others_are_not() {
    let limits = Limits { tenant_records_per_second: 5, ..Limits::default() };
    let server = InProcess::start(Roles { limits, ..dev_roles() }).await;
    let channel = server.channel.clone();
    let mut ingest = IngestServiceClient::new(channel.clone());
    let post = |tenant: &str, ids: &[&str]| pb::PostEventsRequest { events: ids.iter().map(|id| app_event(tenant, id)).collect() };

    assert_eq!(ingest.post_events(post("gym", &["e1", "e2", "e3", "e4"])).await.unwrap().into_inner().accepted, 4);
    let refused = ingest.post_events(post("gym", &["e5", "e6", "e7"])).await.unwrap_err();
    assert_shed(&refused, "over its ingest rate");
    assert!(refused.message().contains("nothing of this call was stored"), "{}", refused.message());
    let (why, about) = common::reason(&refused);
    assert_eq!((why.as_str(), about.get("tenant").map(String::as_str)), ("RATE_LIMITED", Some("gym")), "{refused:?}");
    // The wait the message names is the one RetryInfo carries (2 of 3 records short at 5 a
    // second: 0.4 s, give or take the time since the first call).
    {
        use tonic_types::StatusExt as _;
        let delay = refused.get_details_retry_info().and_then(|info| info.retry_delay).expect("RetryInfo");
        assert!(refused.message().contains(&format!("retry in {:.1} s", delay.as_secs_f64())), "{} against {delay:?}", refused.message());
        assert!(delay > Duration::ZERO && delay <= Duration::from_millis(400), "{delay:?}");
    }
    assert_eq!(ingest.post_events(post("spa", &["s1", "s2", "s3"])).await.unwrap().into_inner().accepted, 3, "another tenant is not held back");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let reply = ingest.post_events(post("gym", &["e5", "e6", "e7"])).await.unwrap().into_inner();
    assert_eq!((reply.accepted, reply.duplicates), (3, 0), "the refused call stored nothing: sent again, all three are new");

    // A call larger than a second's worth goes when the bucket is full, and borrows against
    // the next seconds: the tenant's next call waits until that is paid back.
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let ids: Vec<String> = (0..12).map(|i| format!("big{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    assert_eq!(ingest.post_events(post("gym", &ids)).await.unwrap().into_inner().accepted, 12);
    let refused = ingest.post_events(post("gym", &["e8"])).await.unwrap_err();
    assert_shed(&refused, "over its ingest rate");
    assert!(refused.message().contains("retry in 1.6 s") || refused.message().contains("retry in 1.5 s"), "8 records owed at 5 a second: {}", refused.message());

    let status = AttributionServiceClient::new(channel).get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
    assert_eq!(status.log_head, 22);
    server.stop().await;
}

/// `count` valid events of about 280 bytes each, ids starting with `prefix`.
fn wide_events(prefix: &str, count: usize) -> Vec<pb::Record> {
    (0..count).map(|i| event(&format!("{prefix}-{i:0>240}"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_messages_and_a_spent_memory_budget_are_refused_before_buffering() {
    use prost::Message as _;
    use tonic_types::StatusExt as _;
    let limits = Limits { message_bytes: 1_000_000, request_bytes: 1_500_000, ..Limits::default() };
    let server = InProcess::start(Roles { limits, ..dev_roles() }).await;
    let channel = server.channel.clone();
    let open = InterceptedService::new(channel.clone(), KeyHeader(String::new()));

    // One message over the limit: RESOURCE_EXHAUSTED (not OUT_OF_RANGE), no RetryInfo, nothing stored.
    let events: Vec<pb::AppEvent> = (0..4_000).map(|i| app_event("gym", &format!("big-{i:0>240}"))).collect();
    let batch = pb::PostEventsRequest { events };
    assert!(batch.encoded_len() > 1_000_000);
    let refused = IngestServiceClient::new(channel.clone()).post_events(batch).await.unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert!(refused.message().contains("over this server's limit of 1000000 bytes"), "{}", refused.message());
    assert!(refused.get_details_retry_info().is_none());

    // Two streams each holding an 850 kB chunk would hold 1.7 MB: the second is refused,
    // with RetryInfo and what it had stored, while the first goes on.
    let chunk = wide_events("a", 3_000);
    assert!((800_000..1_000_000).contains(&pb::IngestChunk { records: chunk.clone() }.encoded_len()));
    let first = idle_stream(open.clone(), chunk).await;
    let mut status = AttributionServiceClient::new(channel.clone());
    let started = Instant::now();
    while status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().log_head < 3_000 {
        assert!(started.elapsed() < Duration::from_secs(20), "the first stream's chunk was not stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let second = idle_stream(open.clone(), vec![event("b-small")]).await;
    // Its first chunk stored before the big one is sent (the refusal reports it).
    while status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().log_head < 3_001 {
        assert!(started.elapsed() < Duration::from_secs(20), "the second stream's first chunk was not stored");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.chunks.send(pb::IngestChunk { records: wide_events("b", 3_000) }).await.unwrap();
    let refused = tokio::time::timeout(Duration::from_secs(10), second.call).await.unwrap().unwrap().unwrap_err();
    assert_shed(&refused, "requests in flight");
    assert!(refused.message().contains("the first 1 records"), "{}", refused.message());
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();

    // The first stream ends: its charge is freed and the refused chunk goes in.
    drop(first.chunks);
    assert_eq!(first.call.await.unwrap().unwrap().into_inner().accepted, 3_000);
    let again = idle_stream(open.clone(), wide_events("b", 3_000)).await;
    drop(again.chunks);
    assert_eq!(again.call.await.unwrap().unwrap().into_inner().accepted, 3_000);
    assert_eq!(status.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().log_head, 6_001);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unary_calls_past_the_deadline_are_cut_and_streams_are_not() {
    // A deadline shorter than any store call: every limited unary call is cut.
    let limits = Limits { call_timeout: Duration::from_nanos(1), ..Limits::default() };
    let server = InProcess::start(Roles { limits, ..dev_roles() }).await;
    let channel = server.channel.clone();
    // (The timer's resolution is a millisecond: a call of 10,000 records takes longer.)
    let events: Vec<pb::AppEvent> = (0..10_000).map(|i| app_event("gym", &format!("e{i}"))).collect();
    let cut = IngestServiceClient::new(channel.clone()).post_events(pb::PostEventsRequest { events }).await.unwrap_err();
    assert_eq!(cut.code(), Code::DeadlineExceeded, "{cut:?}");
    assert!(cut.message().contains("deadline"), "{}", cut.message());
    // Health and status are exempt; a stream is bounded by its idle timeout instead.
    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    health.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await.unwrap();
    AttributionServiceClient::new(channel.clone()).get_status(pb::GetStatusRequest {}).await.unwrap();
    let open = InterceptedService::new(channel.clone(), KeyHeader(String::new()));
    let stream = idle_stream(open, vec![event("s1")]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(stream.chunks);
    assert_eq!(stream.call.await.unwrap().unwrap().into_inner().accepted, 1);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_beyond_its_calls_waits_for_its_own_and_others_do_not() {
    let limits = Limits { per_connection: 2, ..Limits::default() };
    let server = InProcess::start(Roles { limits, ..dev_roles() }).await;
    let busy = InterceptedService::new(server.channel.clone(), KeyHeader(String::new()));
    let first = idle_stream(busy.clone(), vec![event("e1")]).await;
    let second = idle_stream(busy.clone(), vec![event("e2")]).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // The busy connection's third call waits; another connection's call does not.
    let mut third = ConfigServiceClient::new(busy.clone());
    let waiting = tokio::spawn(async move { third.get_config(pb::GetConfigRequest { tenant: "gym".into() }).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!waiting.is_finished(), "a third call ran on a connection limited to two");
    let address = server.address();
    let other = tonic::transport::Channel::from_shared(format!("http://{address}")).unwrap().connect().await.unwrap();
    let asked = Instant::now();
    ConfigServiceClient::new(other).get_config(pb::GetConfigRequest { tenant: "gym".into() }).await.unwrap();
    assert!(asked.elapsed() < Duration::from_millis(500));

    // One of its calls ends: the waiting one runs.
    drop(first.chunks);
    first.call.await.unwrap().unwrap();
    tokio::time::timeout(Duration::from_secs(5), waiting).await.expect("the waiting call ran").unwrap().unwrap();
    drop(second.chunks);
    second.call.await.unwrap().unwrap();
    server.stop().await;
}
