//! The console's pages pass the server's layers as calls do: shed when the server is at its
//! limit (503 with `Retry-After`), timed in the metrics, and drained on shutdown (a page in
//! flight is answered before the server stops).

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use touchstone_server::limits::Limits;
use touchstone_server::serve::Roles;

mod common;

use common::{HeldCall, InProcess, dev_roles};

/// `GET path` over HTTP/1.1: the status line and the whole answer.
async fn get(address: std::net::SocketAddr, path: &str) -> String {
    let mut socket = tokio::net::TcpStream::connect(address).await.expect("the console's port");
    let request = format!("GET {path} HTTP/1.1\r\nhost: touchstone\r\nconnection: close\r\n\r\n");
    socket.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    socket.read_to_string(&mut answer).await.unwrap();
    answer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_is_shed_like_a_call_and_timed() {
    let metrics = touchstone_server::telemetry::handle().unwrap();
    let limits = Limits { in_flight: 1, ..Limits::default() };
    let (server, console) = InProcess::start_with_console(Roles { limits, ..dev_roles() }, None).await;
    assert!(get(console, "/").await.starts_with("HTTP/1.1 200"), "the index page while idle");

    // An ingest stream left open holds the server's one call in flight.
    let mut held = HeldCall::open(&server.channel);
    let mut refused = String::new();
    for _ in 0..750 {
        refused = get(console, "/").await;
        if refused.starts_with("HTTP/1.1 503") {
            break;
        }
        held.reopen_if_shed().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(refused.starts_with("HTTP/1.1 503"), "{refused}");
    assert!(refused.to_ascii_lowercase().contains("\r\nretry-after: 1\r\n"), "{refused}");
    assert!(refused.contains("the server already runs 1 calls"), "{refused}");
    held.close().await;
    assert!(get(console, "/").await.starts_with("HTTP/1.1 200"), "taken again once the call ended");

    let page = metrics.render();
    let count = |status: &str| {
        let prefix = format!("touchstone_console_request_seconds_count{{page=\"/\",status=\"{status}\"}}");
        page.lines().find(|line| line.starts_with(&prefix)).and_then(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
    };
    assert!(count("200").is_some_and(|n| n >= 2.0), "{page}");
    assert!(count("503").is_some_and(|n| n >= 1.0), "{page}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_in_flight_at_shutdown_is_answered_before_the_server_stops() {
    // A page that takes longer than the shutdown's notice: it is still being made when the
    // server starts draining.
    let slow = axum::Router::new().route(
        "/slow",
        axum::routing::get(|| async {
            tokio::time::sleep(Duration::from_millis(2_500)).await;
            "made slowly"
        }),
    );
    let (mut server, console) = InProcess::start_with_console(dev_roles(), Some(slow)).await;
    let started = Instant::now();
    let page = tokio::spawn(get(console, "/slow"));
    tokio::time::sleep(Duration::from_millis(200)).await;
    server.begin_stop();
    let answer = page.await.unwrap();
    assert!(answer.starts_with("HTTP/1.1 200") && answer.ends_with("made slowly"), "{answer}");
    assert!(started.elapsed() >= Duration::from_millis(2_500));
    // The server stops once the slow page is answered, not at its drain deadline.
    for _ in 0..100 {
        if server.stopped() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(server.stopped(), "the server waits for nothing else");
    server.stop().await;
}
