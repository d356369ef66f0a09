//! The separate-process deployment on a real CQL engine (Cassandra 5 in `make test`, or the
//! ScyllaDB of `TOUCHSTONE_SCYLLA_NODES`): `touchstone migrate`, two ingest processes, two
//! attribution workers and a query process, sharing nothing but the keyspace.
//!
//! Most of a generated file is imported through both ingest processes at once (dedup must
//! hold across them), one attribution worker is killed with SIGKILL mid-way and started
//! again; the rest goes through a third ingest process killed with SIGKILL mid-import, then
//! the whole file again; every report must still equal the brute-force reference. Both
//! workers commit steps of one tenant's log shard (each holds lanes of it).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use touchstone_integration_tests::{Generated, Server, assert_badges_match, assert_reports_match, binary, cql_nodes, free_address, http_get, text, touchstone};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;

/// A keyspace no other run uses.
fn fresh_keyspace() -> String {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    format!("it_{:x}_{}", nanos, std::process::id())
}

fn start(role: &str, nodes: &str, keyspace: &str, extra: &[&str]) -> Server {
    // Loopback only, and the clients of the checks below send no key (keys: tests/api_keys.rs).
    let mut args = vec![role, "--listen", "127.0.0.1:0", "--scylla-nodes", nodes, "--keyspace", keyspace, "--insecure"];
    args.extend(extra);
    Server::start(&args)
}

/// Polls `server`'s attribution status every `poll` until `done` holds of it or `timeout`
/// has passed; the last status read.
fn wait_for_status(server: &Server, timeout: Duration, poll: Duration, done: impl Fn(&pb::AttributionStatus) -> bool) -> pb::AttributionStatus {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut attribution = AttributionServiceClient::new(server.channel().await);
        let started = Instant::now();
        loop {
            let status = attribution.get_status(pb::GetStatusRequest {}).await.unwrap().into_inner();
            if done(&status) || started.elapsed() > timeout {
                return status;
            }
            tokio::time::sleep(poll).await;
        }
    })
}

/// The records file cut in two: its first two thirds of lines, and the rest.
fn split_records(data: &Generated, dir: &std::path::Path) -> (String, String) {
    let file = std::fs::read_to_string(data.path("records.jsonl")).unwrap();
    let lines: Vec<&str> = file.lines().filter(|line| !line.trim().is_empty()).collect();
    let (first, rest) = lines.split_at(lines.len() * 2 / 3);
    let write = |name: &str, lines: &[&str]| {
        let path = dir.join(name);
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        path.to_string_lossy().into_owned()
    };
    (write("first.jsonl", first), write("rest.jsonl", rest))
}

/// `accepted` and `duplicates` from an import's summary line on stderr.
fn import_counts(stderr: &str) -> (u64, u64) {
    let number_before = |word: &str| -> u64 {
        let words: Vec<&str> = stderr.split([' ', ',', '\n']).filter(|w| !w.is_empty()).collect();
        words
            .windows(2)
            .find(|pair| pair[1].starts_with(word))
            .and_then(|pair| pair[0].parse().ok())
            .unwrap_or_else(|| panic!("no `N {word}` in import output: {stderr}"))
    };
    (number_before("accepted"), number_before("duplicate"))
}

#[test]
fn separate_processes_on_cql_report_exactly_the_reference_through_a_kill_9() {
    let nodes = cql_nodes();
    let keyspace = fresh_keyspace();
    let dir = tempfile::tempdir().unwrap();
    let data = Generated::new(&dir.path().join("data"), 1, 5);

    let migrated = touchstone(["migrate", "--scylla-nodes", &nodes, "--keyspace", &keyspace]);
    assert!(migrated.status.success(), "touchstone migrate failed:\n{}", text(&migrated.stderr));

    let ingest_a = start("ingest", &nodes, &keyspace, &[]);
    let ingest_b = start("ingest", &nodes, &keyspace, &[]);
    let console = free_address();
    let query = start("query", &nodes, &keyspace, &["--http", &console]);
    let worker_a = start("attribution", &nodes, &keyspace, &["--worker-id", "worker-a"]);
    let metrics_b = free_address();
    let worker_b = start("attribution", &nodes, &keyspace, &["--worker-id", "worker-b", "--metrics-listen", &metrics_b]);

    // A report asked of the ingest process says where reports are served.
    let wrong = ingest_a.cli(&["report", "goals", "--tenant", "acme-shop", "--format", "json"]);
    assert!(!wrong.status.success());
    let said = text(&wrong.stderr);
    assert!(said.contains("does not serve this call") && said.contains("touchstone query"), "{said}");

    ingest_a.cli_ok(&["import", "config", &data.path("config.json")]);
    ingest_a.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);

    // The first part of the records through both ingest processes at once; the rest later,
    // through a third ingest process killed mid-import.
    let records = data.path("records.jsonl");
    let (first, rest) = split_records(&data, dir.path());
    let import = |server: &Server, file: &str| {
        Command::new(binary())
            .args(["import", "records", file, "--server", &server.url])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (import_a, import_b) = (import(&ingest_a, &first), import(&ingest_b, &first));

    // Kill worker a once attribution is under way, and start it again.
    let status = wait_for_status(&query, Duration::from_secs(120), Duration::from_millis(100), |status| status.processed > 0);
    assert!(status.processed > 0, "attribution made no progress: {status:?}");
    worker_a.kill_hard();
    let metrics_a = free_address();
    let worker_a = start("attribution", &nodes, &keyspace, &["--worker-id", "worker-a-restarted", "--metrics-listen", &metrics_a]);

    let (out_a, out_b) = (import_a.wait_with_output().unwrap(), import_b.wait_with_output().unwrap());
    assert!(out_a.status.success() && out_b.status.success(), "imports failed:\n{}\n{}", text(&out_a.stderr), text(&out_b.stderr));
    let ((accepted_a, duplicates_a), (accepted_b, duplicates_b)) = (import_counts(&text(&out_a.stderr)), import_counts(&text(&out_b.stderr)));
    // The generated file repeats some records on purpose (client retries).
    let file = std::fs::read_to_string(&first).unwrap();
    let lines: Vec<serde_json::Value> = file.lines().filter(|line| !line.trim().is_empty()).map(|line| serde_json::from_str(line).unwrap()).collect();
    let unique: std::collections::HashSet<(String, String)> =
        lines.iter().map(|record| (record["tenant"].to_string(), record["event_id"].to_string())).collect();
    assert_eq!(accepted_a + accepted_b, unique.len() as u64, "each record accepted exactly once across the two ingest processes");
    assert_eq!(duplicates_a + duplicates_b, 2 * lines.len() as u64 - unique.len() as u64, "and a duplicate everywhere else");

    // The rest through a third ingest process, killed with SIGKILL as soon as its first
    // records are in the log: its calls end mid-append, holding shard leases.
    let before = wait_for_status(&query, Duration::ZERO, Duration::ZERO, |_| true).log_head;
    let ingest_c = start("ingest", &nodes, &keyspace, &[]);
    let import_c = import(&ingest_c, &rest);
    let head = wait_for_status(&query, Duration::from_secs(60), Duration::from_millis(5), |status| status.log_head > before).log_head;
    assert!(head > before, "the third ingest process appended nothing");
    ingest_c.kill_hard();
    // It says how to finish (run it again), which the next import does.
    drop(import_c.wait_with_output().unwrap());

    // The whole file again through another process, waiting for attribution to finish
    // everything: what the killed process committed is a duplicate, the rest is accepted
    // once its lapsed leases are taken over.
    let retried = ingest_b.cli_ok(&["import", "records", &records, "--wait"]);
    drop(retried);
    assert_reports_match(&query, &data);
    // The query process serves the console over the same store (pages: tests/console.rs).
    let page = http_get(&console, "/t/acme-shop/goals", &[]);
    assert!(page.starts_with("HTTP/1.1 200") && page.contains("data-goal=\"orders\""), "{page}");
    assert_badges_match(&query, &ingest_a, &data);

    // Both workers did the largest tenant's work: each committed steps of lanes of its
    // shard (a lane may have moved between them while the killed worker's leases lapsed).
    let shard = touchstone_store::log_shard("acme-shop");
    let (lanes_a, lanes_b) = (lanes_stepped(&metrics_a, shard), lanes_stepped(&metrics_b, shard));
    assert!(!lanes_a.is_empty() && !lanes_b.is_empty(), "a worker committed no step of shard {shard}: {lanes_a:?} and {lanes_b:?}");
    assert!(lanes_a.union(&lanes_b).count() > 1, "one lane did all of shard {shard}: {lanes_a:?} and {lanes_b:?}");
    drop((worker_a, worker_b));
}

/// The lanes of `shard` a worker committed steps of, from its metrics.
fn lanes_stepped(metrics: &str, shard: u32) -> std::collections::BTreeSet<u32> {
    let page = http_get(metrics, "/metrics", &[]);
    let shard_label = format!("shard=\"{shard}\"");
    page.lines()
        .filter(|line| line.starts_with("touchstone_attribution_steps_total{") && line.contains(&shard_label))
        .filter(|line| line.rsplit(' ').next().and_then(|count| count.parse::<f64>().ok()).is_some_and(|count| count > 0.0))
        .filter_map(|line| line.split("lane=\"").nth(1)?.split('"').next()?.parse().ok())
        .collect()
}
