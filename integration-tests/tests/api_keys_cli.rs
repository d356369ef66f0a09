//! API keys from the command line: `touchstone keys create | list | revoke`, a `dev` server
//! started with `--keys-file`, the CLI's `--api-key` / `TOUCHSTONE_API_KEY`, and cluster
//! processes that refuse to start without keys unless told `--insecure`.

use std::process::Command;
use std::time::{Duration, Instant};
use touchstone_integration_tests::{Server, binary, free_address, http_get, text, touchstone};

const CONFIG: &str = r#"{"tenants": {"gym": {"currency": "EUR", "goals": [
    {"id": "checkins", "kind": "EVENT", "event_name": "checkin"}, {"id": "visits", "kind": "EVENT", "event_name": "visit"}]}}}"#;

#[test]
fn the_cli_sends_its_key_and_servers_refuse_what_the_key_does_not_allow() {
    let dir = tempfile::tempdir().unwrap();
    let keys = dir.path().join("keys.json").to_string_lossy().into_owned();
    let created = touchstone(["keys", "create", "--keys-file", &keys, "--tenant", "gym", "--scopes", "ingest,query,admin", "--name", "gym app"]);
    assert!(created.status.success(), "{}", text(&created.stderr));
    let key = text(&created.stdout).trim().to_owned();
    assert!(key.starts_with("tsk_"), "{key}");
    let stored = std::fs::read_to_string(&keys).unwrap();
    assert!(!stored.contains(key.rsplit('_').next().unwrap()), "the keys file holds the secret");
    let listed = text(&touchstone(["keys", "list", "--keys-file", &keys]).stdout);
    let id = key.split('_').nth(1).unwrap();
    assert!(listed.contains(id) && listed.contains("gym app") && !listed.contains(&key), "{listed}");
    let bad_scope = touchstone(["keys", "create", "--keys-file", &keys, "--tenant", "gym", "--scopes", "everything"]);
    assert!(!bad_scope.status.success() && text(&bad_scope.stderr).contains("unknown scope"), "{}", text(&bad_scope.stderr));

    let data = dir.path().join("store").to_string_lossy().into_owned();
    let console = free_address();
    let server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &data, "--keys-file", &keys, "--http", &console]);
    let config = dir.path().join("config.json");
    std::fs::write(&config, CONFIG).unwrap();
    let config = config.to_string_lossy().into_owned();

    // No key: refused, with what to do.
    let refused = server.cli(&["import", "config", &config]);
    assert!(!refused.status.success());
    let said = text(&refused.stderr);
    assert!(said.contains("needs an API key") && said.contains("--api-key"), "{said}");
    assert_eq!(said.matches("needs an API key").count(), 1, "stops at the first refusal no retry can fix: {said}");
    // The key by flag, then by environment.
    let imported = server.cli(&["import", "config", &config, "--api-key", &key]);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let with_env = |args: &[&str]| {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--server", &server.url]);
        Command::new(binary()).args(all).env("TOUCHSTONE_API_KEY", &key).output().unwrap()
    };
    let report = with_env(&["report", "goals", "--tenant", "gym", "--format", "json"]);
    assert!(report.status.success(), "{}", text(&report.stderr));
    // The server from the environment too, as the key.
    let args = ["report", "goals", "--tenant", "gym", "--format", "json"];
    let by_env = Command::new(binary()).args(args).env("TOUCHSTONE_API_KEY", &key).env("TOUCHSTONE_SERVER", &server.url).output().unwrap();
    assert!(by_env.status.success(), "TOUCHSTONE_SERVER: {}", text(&by_env.stderr));
    assert_eq!(by_env.stdout, report.stdout);
    let other = with_env(&["report", "goals", "--tenant", "acme", "--format", "json"]);
    assert!(!other.status.success());
    assert!(text(&other.stderr).contains("PERMISSION_DENIED"), "{}", text(&other.stderr));

    // The console asks a browser for a key (HTTP Basic, the key as password) and shows a
    // key its own tenant only.
    let get = |path: &str, key: Option<&str>| {
        use base64::Engine as _;
        let auth = key.map(|key| format!("Authorization: Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("support:{key}"))));
        http_get(&console, path, &auth.iter().map(String::as_str).collect::<Vec<_>>())
    };
    let asked = get("/t/gym/goals", None);
    assert!(asked.starts_with("HTTP/1.1 401") && asked.to_lowercase().contains("www-authenticate: basic"), "{asked}");
    assert!(get("/t/gym/goals", Some("tsk_0000_1111")).starts_with("HTTP/1.1 401"));
    let shown = get("/t/gym/goals", Some(&key));
    assert!(shown.starts_with("HTTP/1.1 200"), "{shown}");
    let denied = get("/t/acme/goals", Some(&key));
    assert!(denied.starts_with("HTTP/1.1 403"), "{denied}");
    let index = get("/", Some(&key));
    assert!(index.contains("data-tenant=\"gym\"") && !index.contains("data-tenant=\"acme\""), "{index}");

    // Revoked: refused from the server's next reload on.
    let revoked = touchstone(["keys", "revoke", "--keys-file", &keys, id]);
    assert!(revoked.status.success(), "{}", text(&revoked.stderr));
    let started = Instant::now();
    loop {
        let report = with_env(&["report", "goals", "--tenant", "gym", "--format", "json"]);
        if !report.status.success() {
            assert!(text(&report.stderr).contains("revoked"), "{}", text(&report.stderr));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(15), "a revoked key still works");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn cluster_processes_refuse_to_start_open_unless_told_insecure() {
    for role in ["ingest", "attribution", "query"] {
        // No database is reached: the keys are checked first.
        let out = touchstone([role, "--listen", "127.0.0.1:0", "--scylla-nodes", "127.0.0.1:1"]);
        assert!(!out.status.success(), "{role} started without keys");
        let said = text(&out.stderr);
        assert!(said.contains("--keys-file") && said.contains("--insecure"), "{role}: {said}");
        let missing = touchstone([role, "--listen", "127.0.0.1:0", "--scylla-nodes", "127.0.0.1:1", "--keys-file", "/nonexistent/keys.json"]);
        assert!(!missing.status.success() && text(&missing.stderr).contains("no such keys file"), "{role}: {}", text(&missing.stderr));
    }
}
