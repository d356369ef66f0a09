//! Connect clients no one here wrote, against `touchstone dev` serving TLS and checking API
//! keys: the Node ecosystem's `@connectrpc/connect-node` (from npm, `clients/node/`) and Go's
//! `connectrpc.com/connect` (from the Go module proxy, `clients/go/`) register a message,
//! record a touch, post an event naming it and read the campaign's stats; Node also issues a
//! badge and reads the badge feed's first item, Go gets a bad request's code. The figures
//! equal what the CLI reports over gRPC.

use serde_json::Value;
use std::path::Path;
use std::process::Command;
use touchstone_integration_tests::{Server, certificates, create_key, free_address, text};

/// `npm ci` in the Node client's folder when its packages are missing.
fn node_client() -> std::path::PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/node");
    if !dir.join("node_modules/@connectrpc/connect-node").exists() {
        let installed = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).output().expect("npm (Node 20; .ci/run installs it)");
        assert!(installed.status.success(), "npm ci: {}", text(&installed.stderr));
    }
    dir
}

/// The Go client, built from `clients/go/` (its modules fetched through the Go proxy).
fn go_client(dir: &Path) -> std::path::PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("clients/go");
    let binary = dir.join("go-connect-client");
    let built = Command::new("go").arg("build").arg("-o").arg(&binary).arg(".").current_dir(&source).output().expect("go (1.22 or newer; .ci/run installs it)");
    assert!(built.status.success(), "go build: {}", text(&built.stderr));
    binary
}

/// `touchstone dev` with TLS, keys and the HTTP listener; its URL, the key, the CA and the
/// API's descriptor set for the clients.
struct Served {
    server: Server,
    url: String,
    api_key: String,
    ca: String,
    descriptors: String,
    _dir: tempfile::TempDir,
}

fn serve() -> Served {
    let dir = tempfile::tempdir().unwrap();
    let (ca, cert, key) = certificates(dir.path());
    let keys = dir.path().join("keys.json").to_string_lossy().into_owned();
    let api_key = create_key(&keys, "shop");
    let descriptors = dir.path().join("touchstone.bin");
    std::fs::write(&descriptors, touchstone_proto::FILE_DESCRIPTOR_SET).unwrap();

    let http = free_address();
    let data = dir.path().join("store").to_string_lossy().into_owned();
    let server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &data, "--http", &http, "--tls-cert", &cert, "--tls-key", &key, "--keys-file", &keys]);
    let descriptors = descriptors.to_string_lossy().into_owned();
    Served { server, url: format!("https://{http}"), api_key, ca, descriptors, _dir: dir }
}

/// The campaign `spring` of tenant `shop` as the CLI reports it over gRPC.
fn spring_over_grpc(served: &Served) -> Value {
    let cli = served.server.cli(&["report", "campaigns", "--tenant", "shop", "--format", "json", "--api-key", &served.api_key, "--tls-ca", &served.ca]);
    assert!(cli.status.success(), "{}", text(&cli.stderr));
    let report: Value = serde_json::from_str(&text(&cli.stdout)).unwrap();
    report.as_array().unwrap().iter().find(|row| row["campaign_id"] == "spring").expect("spring").clone()
}

#[test]
fn the_node_connect_client_ingests_and_reads_what_grpc_reports_over_tls_with_a_key() {
    let client = node_client();
    let served = serve();
    let run = Command::new("node")
        .arg(client.join("client.mjs"))
        .args([&served.url, &served.descriptors, &served.api_key, &served.ca])
        .output()
        .expect("node");
    assert!(run.status.success(), "the Node client failed:\n{}\n{}", text(&run.stdout), text(&run.stderr));
    let out: Value = serde_json::from_str(text(&run.stdout).trim()).unwrap_or_else(|err| panic!("{err}: {}", text(&run.stdout)));
    assert_eq!((&out["messages"], &out["touches"], &out["events"]), (&Value::from("1"), &Value::from("1"), &Value::from("1")), "{out}");
    assert_eq!(out["feed"]["entry"]["badgeId"], "vip", "{out}");
    assert_eq!(out["feed"]["customerId"], "ann", "{out}");

    // The stats the client read are the CLI's over gRPC.
    let stats = &out["stats"];
    let checkin = stats["goals"].as_array().unwrap().iter().find(|goal| goal["goalId"] == "checkin").expect("checkin");
    let spring = spring_over_grpc(&served);
    assert_eq!(checkin["conversions"], spring["goals"]["checkin"]["conversions"].to_string(), "{stats} against {spring}");
    assert_eq!(stats["touches"]["opened"], spring["opened"].to_string(), "{stats} against {spring}");
}

#[test]
fn the_go_connect_client_ingests_and_reads_what_grpc_reports_over_tls_with_a_key() {
    let served = serve();
    let client = go_client(served._dir.path());
    let run_client = || {
        let run = Command::new(&client).args([&served.url, &served.descriptors, &served.api_key, &served.ca]).output().expect("the Go client");
        assert!(run.status.success(), "the Go client failed:\n{}\n{}", text(&run.stdout), text(&run.stderr));
        serde_json::from_str::<Value>(text(&run.stdout).trim()).unwrap_or_else(|err| panic!("{err}: {}", text(&run.stdout)))
    };
    let out = run_client();
    assert_eq!((&out["messages"]["accepted"], &out["touches"]["accepted"], &out["events"]["accepted"]), (&Value::from("1"), &Value::from("1"), &Value::from("1")), "{out}");
    assert_eq!(out["bad_request_code"], "invalid_argument", "{out}");
    // Once attribution has the event: the client's stats (a second run: its records now
    // duplicates) equal the CLI's over gRPC.
    served.server.cli_ok(&["import", "records", "/dev/null", "--wait", "--api-key", &served.api_key, "--tls-ca", &served.ca]);
    let again = run_client();
    assert_eq!(again["events"]["duplicates"], "1", "{again}");
    let stats = &again["stats"];
    let checkin = stats["goals"].as_array().unwrap().iter().find(|goal| goal["goalId"] == "checkin").expect("checkin");
    let spring = spring_over_grpc(&served);
    assert_eq!(checkin["conversions"], spring["goals"]["checkin"]["conversions"].to_string(), "{stats} against {spring}");
    assert_eq!(stats["touches"]["opened"], spring["opened"].to_string(), "{stats} against {spring}");
}
