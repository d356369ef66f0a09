//! The database goes away and comes back during an import: the services answer UNAVAILABLE
//! with RetryInfo while it is down, the CLI waits that out by itself (`--retry-for`) and
//! sends the file again, and every report still equals the reference: nothing lost, nothing
//! twice, no person needed.
//!
//! The CQL engine is stopped and started by the commands in `TOUCHSTONE_CQL_STOP` and
//! `TOUCHSTONE_CQL_START` (`make test` sets them to `deploy/cassandra/stop.sh` and
//! `start.sh`); without them the test fails, as every test that needs a database does.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use touchstone_integration_tests::{Generated, Server, assert_reports_match, binary, cql_nodes, text, touchstone};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;

fn engine_command(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| panic!("{name} is unset: `make test` sets it (the command that stops or starts the CQL engine)"))
}

fn run_shell(command: &str) {
    let out = Command::new("bash").args(["-c", command]).output().expect("bash");
    assert!(out.status.success(), "{command}: {}\n{}", text(&out.stdout), text(&out.stderr));
}

/// Waits until the log holds some records: the import is under way.
fn wait_until_logged(server: &Server, timeout: Duration) -> u64 {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let mut attribution = AttributionServiceClient::new(server.channel().await);
        let started = Instant::now();
        loop {
            if let Ok(status) = attribution.get_status(pb::GetStatusRequest {}).await {
                let head = status.into_inner().log_head;
                if head > 0 || started.elapsed() > timeout {
                    return head;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

#[test]
fn an_import_outlives_a_database_restart_and_reports_stay_exact() {
    let (stop, start) = (engine_command("TOUCHSTONE_CQL_STOP"), engine_command("TOUCHSTONE_CQL_START"));
    let nodes = cql_nodes();
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    let keyspace = format!("restart_{nanos:x}");
    let dir = tempfile::tempdir().unwrap();
    // About 30,000 records: an import of some seconds, long enough to be cut.
    let data = Generated::new(&dir.path().join("data"), 3, 11);

    let migrated = touchstone(["migrate", "--scylla-nodes", &nodes, "--keyspace", &keyspace]);
    assert!(migrated.status.success(), "touchstone migrate failed:\n{}", text(&migrated.stderr));
    let start_role = |role: &str| Server::start(&[role, "--listen", "127.0.0.1:0", "--scylla-nodes", &nodes, "--keyspace", &keyspace, "--insecure"]);
    let ingest = start_role("ingest");
    let worker = start_role("attribution");
    let query = start_role("query");
    ingest.cli_ok(&["import", "config", &data.path("config.json")]);
    ingest.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);

    let import = Command::new(binary())
        .args(["import", "records", &data.path("records.jsonl"), "--wait", "--retry-for", "300", "--server", &ingest.url])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    assert!(wait_until_logged(&query, Duration::from_secs(60)) > 0, "the import stored nothing");
    // Down and up again while the import runs (start returns once CQL answers). The import
    // is paused while the engine stops and resumed while it is down, so its next call meets
    // the outage however fast the machine is.
    let signal = |name: &str| run_shell(&format!("kill {name} {}", import.id()));
    signal("-STOP");
    run_shell(&stop);
    signal("-CONT");
    std::thread::sleep(Duration::from_secs(2));
    run_shell(&start);

    let out = import.wait_with_output().unwrap();
    let said = text(&out.stderr);
    assert!(out.status.success(), "the import gave up:\n{said}");
    assert!(said.contains("retrying in"), "the import was not cut by the restart (it says when it waits):\n{said}");
    assert!(said.contains("UNAVAILABLE") || said.contains("cannot reach"), "{said}");
    assert_reports_match(&query, &data);
    drop((ingest, worker, query));
}
