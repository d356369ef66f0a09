//! Prometheus metrics of `touchstone dev --metrics-listen`: records accepted, duplicates and
//! rejects, RPC latency by method and code, attribution steps and the log's gauges move as
//! the server works.

use std::io::{Read, Write};
use std::time::{Duration, Instant};
use touchstone_integration_tests::{Server, free_address};

fn scrape(address: &str) -> String {
    let mut socket = std::net::TcpStream::connect(address).expect("the metrics port");
    socket.write_all(b"GET /metrics HTTP/1.1\r\nhost: touchstone\r\n\r\n").unwrap();
    let mut page = String::new();
    socket.read_to_string(&mut page).unwrap();
    assert!(page.starts_with("HTTP/1.1 200 OK"), "{page}");
    page
}

/// The value of the sample whose line starts with `prefix` (name and labels).
fn sample(page: &str, prefix: &str) -> Option<f64> {
    page.lines().find(|line| line.starts_with(prefix)).and_then(|line| line.rsplit(' ').next()).and_then(|value| value.parse().ok())
}

#[test]
fn metrics_move_as_the_server_works() {
    let dir = tempfile::tempdir().unwrap();
    let address = free_address();
    let data = dir.path().join("store").to_string_lossy().into_owned();
    let server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &data, "--metrics-listen", &address]);
    let records = dir.path().join("records.jsonl");
    let line = |id: &str| format!(r#"{{"type":"event","tenant":"gym","event_id":"{id}","customer_id":"ann","name":"checkin","ts":1767225600000}}"#);
    let text = [line("e1"), line("e2"), line("e1"), r#"{"type":"event","tenant":"gym"}"#.to_owned()].join("\n");
    std::fs::write(&records, text).unwrap();
    let out = server.cli(&["import", "records", &records.to_string_lossy(), "--wait"]);
    assert!(!out.status.success(), "the bad line fails the import");
    let refused = server.cli(&["report", "goals", "--tenant", "gym", "--from", "5", "--to", "1"]);
    assert!(!refused.status.success());

    let started = Instant::now();
    let page = loop {
        let page = scrape(&address);
        if sample(&page, "touchstone_log_pending_entries{shard=").is_some() || started.elapsed() > Duration::from_secs(15) {
            break page;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(sample(&page, "touchstone_records_accepted_total"), Some(2.0), "{page}");
    assert_eq!(sample(&page, "touchstone_records_duplicate_total"), Some(1.0), "{page}");
    // The line without an event_id is refused by the CLI before it is sent.
    let stream = "touchstone_rpc_duration_seconds_count{method=\"/touchstone.v1.IngestService/IngestStream\",code=\"OK\"}";
    assert!(sample(&page, stream).is_some_and(|n| n >= 1.0), "{page}");
    let bad = "touchstone_rpc_duration_seconds_count{method=\"/touchstone.v1.QueryService/GetGoalKpis\",code=\"INVALID_ARGUMENT\"}";
    assert_eq!(sample(&page, bad), Some(1.0), "{page}");
    assert!(sample(&page, "touchstone_attribution_steps_total").is_some_and(|n| n >= 1.0), "{page}");
    assert!(sample(&page, "touchstone_attribution_entries_total").is_some_and(|n| n >= 2.0), "{page}");
    assert!(page.contains("touchstone_attribution_lag_seconds{shard=\"0\"}"), "{page}");
    assert!(page.contains("touchstone_set_aside_entries{shard="), "{page}");
    // Store latency, by role method: the ingest call and the worker's commits.
    let store_ingest = "touchstone_store_call_seconds_count{backend=\"embedded\",op=\"ingest\",outcome=\"ok\"}";
    assert!(sample(&page, store_ingest).is_some_and(|n| n >= 1.0), "{page}");
    let commits = "touchstone_store_call_seconds_count{backend=\"embedded\",op=\"commit_attribution\",outcome=\"ok\"}";
    assert!(sample(&page, commits).is_some_and(|n| n >= 1.0), "{page}");
    // What the store did, per table: a dedup mark per accepted record, the log in chunks.
    let dedup_marks = "touchstone_store_ops_total{backend=\"embedded\",table=\"dedup\",kind=\"write\"}";
    assert_eq!(sample(&page, dedup_marks), Some(2.0), "{page}");
    let chunks = "touchstone_store_ops_total{backend=\"embedded\",table=\"log_chunks\",kind=\"write\"}";
    assert!(sample(&page, chunks).is_some_and(|n| (1.0..=2.0).contains(&n)), "{page}");
    let written = "touchstone_store_bytes_total{backend=\"embedded\",table=\"log_chunks\",kind=\"write\"}";
    assert!(sample(&page, written).is_some_and(|n| n > 50.0), "{page}");
    // Every metric says what it is, and the process metrics every Prometheus user expects.
    for name in ["touchstone_rpc_duration_seconds", "touchstone_records_accepted_total", "touchstone_attribution_lag_seconds", "touchstone_store_ops_total"] {
        assert!(page.contains(&format!("# HELP {name} ")), "no HELP for {name}: {page}");
    }
    assert!(sample(&page, "process_resident_memory_bytes").is_some_and(|bytes| bytes > 1e6), "{page}");
    assert!(sample(&page, "process_cpu_seconds_total").is_some(), "{page}");
    assert!(sample(&page, "process_open_fds").is_some_and(|fds| fds >= 3.0), "{page}");
}
