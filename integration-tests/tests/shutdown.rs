//! SIGTERM on `touchstone dev`: health turns NOT_SERVING while calls are still taken, an
//! open ingest stream ends with UNAVAILABLE saying what it stored, an open feed ends, the
//! process exits well before any orchestrator's kill deadline, and every record the stream
//! stored is there after a restart.

use std::time::{Duration, Instant};
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::HealthCheckRequest;
use touchstone_integration_tests::{DevServer, Server};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

const T0: i64 = 1_767_225_600_000;

fn badge(event_id: &str) -> pb::Record {
    pb::Record {
        kind: Some(pb::record::Kind::Badge(pb::BadgeEvent {
            tenant: "gym".into(),
            event_id: event_id.into(),
            customer_id: "ann".into(),
            badge_id: "vip".into(),
            action: pb::BadgeAction::Earned.into(),
            ts: T0,
            source: pb::BadgeSource::Migration.into(),
            reason: None,
        })),
    }
}

#[test]
fn sigterm_drains_streams_and_keeps_every_stored_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let data = store.to_string_lossy().into_owned();
    let mut server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &data]);
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.block_on(async {
        let channel = server.channel().await;
        let (chunks, stream) = tokio::sync::mpsc::channel::<pb::IngestChunk>(4);
        let mut ingest = IngestServiceClient::new(channel.clone());
        let call = tokio::spawn(async move { ingest.ingest_stream(tokio_stream::wrappers::ReceiverStream::new(stream)).await });
        chunks.send(pb::IngestChunk { records: vec![badge("m1"), badge("m2"), badge("m3")] }).await.unwrap();
        // Stored once the log holds them; the stream stays open, idle.
        let mut attribution = AttributionServiceClient::new(channel.clone());
        let started = Instant::now();
        while attribution.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner().log_head < 3 {
            assert!(started.elapsed() < Duration::from_secs(10), "the chunk was not stored");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let mut query = QueryServiceClient::new(channel.clone());
        let watch = pb::WatchBadgeEventsRequest { tenant: "gym".into(), ..Default::default() };
        let mut feed = query.watch_badge_events(watch).await.unwrap().into_inner();

        server.terminate();
        let mut health = HealthClient::new(channel.clone());
        let status = health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status();
        let terminated = Instant::now();
        let mut seen = status;
        while seen == ServingStatus::Serving && terminated.elapsed() < Duration::from_millis(800) {
            tokio::time::sleep(Duration::from_millis(20)).await;
            seen = health.check(HealthCheckRequest { service: String::new() }).await.unwrap().into_inner().status();
        }
        assert_eq!(seen, ServingStatus::NotServing, "health during the shutdown notice");

        let ended = tokio::time::timeout(Duration::from_secs(10), call).await.expect("the stream ends").unwrap();
        let status = ended.expect_err("an interrupted stream is no success");
        assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
        assert!(status.message().contains("first 3 records of this stream were stored"), "{}", status.message());
        // The feed may still deliver what attribution committed, then it ends.
        let feed_end = tokio::time::timeout(Duration::from_secs(10), async {
            loop {
                match feed.message().await {
                    Ok(Some(_)) => continue,
                    end => return end,
                }
            }
        })
        .await
        .expect("the feed ends");
        assert!(matches!(feed_end, Err(ref s) if s.code() == tonic::Code::Unavailable) || matches!(feed_end, Ok(None)), "{feed_end:?}");
        drop(chunks);
    });
    let exit = server.wait_exit(Duration::from_secs(15)).expect("exits within 15 s of SIGTERM");
    assert!(exit.success(), "{exit:?}");

    // Everything the stream stored is there.
    let restarted = DevServer::start(&store);
    let timeline = restarted.cli_ok(&["badges", "timeline", "--tenant", "gym", "--customer", "ann", "--format", "json"]);
    let entries: serde_json::Value = serde_json::from_str(&timeline).unwrap();
    assert_eq!(entries.as_array().map(Vec::len), Some(3), "{timeline}");
}

/// An import running when the server is told to stop: the CLI says how far it got and that
/// the same command finishes it; run again on the restarted server, the reports are exact.
/// The import is paused (SIGSTOP) once its first records are stored and resumed after the
/// server has gone, so the shutdown lands mid-import however fast the machine is.
#[test]
fn an_import_cut_by_a_shutdown_says_how_to_finish_and_finishing_is_exact() {
    let dir = tempfile::tempdir().unwrap();
    let data = touchstone_integration_tests::Generated::new(&dir.path().join("data"), 5, 3);
    let store = dir.path().join("store");
    let mut server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &store.to_string_lossy()]);
    server.cli_ok(&["import", "config", &data.path("config.json")]);
    server.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let channel = runtime.block_on(server.channel());
    let log_head = || {
        let mut attribution = AttributionServiceClient::new(channel.clone());
        runtime.block_on(attribution.get_status(pb::GetStatusRequest {})).unwrap().into_inner().log_head
    };
    let before = log_head();
    let import = std::process::Command::new(touchstone_integration_tests::binary())
        .args(["import", "records", &data.path("records.jsonl"), "--server", &server.url, "--retry-for", "1"])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let signal = |name: &str| {
        let sent = std::process::Command::new("kill").args([name, &import.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill {name}");
    };
    let started = Instant::now();
    while log_head() == before {
        assert!(started.elapsed() < Duration::from_secs(30), "the import stored nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    signal("-STOP");
    server.terminate();
    // The paused client holds its connection, so the server waits out its drain deadline.
    server.wait_exit(Duration::from_secs(15)).expect("the server exits");
    signal("-CONT");
    let cut = import.wait_with_output().unwrap();
    let said = touchstone_integration_tests::text(&cut.stderr);
    assert!(!cut.status.success(), "the import finished before the shutdown\n{said}");
    assert!(said.contains("import interrupted") && said.contains("run the same command again"), "{said}");
    assert!(said.contains("records of this stream were stored"), "the server's count is passed on: {said}");

    let restarted = DevServer::start(&store);
    restarted.import(&data);
    touchstone_integration_tests::assert_reports_match(&restarted, &data);
}
