//! The logs on stderr: with `TOUCHSTONE_LOG_FORMAT=json` every line is one JSON object, with
//! level, message and fields, for log pipelines; by default Touchstone logs at info and the
//! libraries under it at warn.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use touchstone_integration_tests::binary;

/// The stderr lines of a `touchstone dev` started with these environment variables (`None`:
/// removed) and stopped with SIGTERM once it listens.
fn dev_log(env: &[(&str, Option<&str>)]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(binary());
    command.args(["dev", "--listen", "127.0.0.1:0", "--data-dir"]).arg(dir.path().join("store"));
    for (name, value) in env {
        match value {
            Some(value) => command.env(name, value),
            None => command.env_remove(name),
        };
    }
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    assert!(line.contains("listening on http://"), "{line}");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let lines: Vec<String> = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok).collect();
    let _ = child.wait();
    lines
}

#[test]
fn json_logs_are_one_object_a_line() {
    let lines = dev_log(&[("TOUCHSTONE_LOG_FORMAT", Some("json")), ("RUST_LOG", Some("info"))]);
    assert!(lines.len() >= 2, "{lines:?}");
    let mut open_warning = false;
    for line in &lines {
        let object: serde_json::Value = serde_json::from_str(line).unwrap_or_else(|err| panic!("not JSON ({err}): {line}"));
        assert!(object["level"].is_string() && object["fields"].is_object(), "{line}");
        open_warning |= object["level"] == "WARN" && object["fields"]["message"].as_str().is_some_and(|m| m.contains("OPEN"));
    }
    assert!(open_warning, "dev without keys says it is open: {lines:?}");
}

/// Without `RUST_LOG`, a start and a stop print Touchstone's own lines, not the storage
/// engine's progress.
#[test]
fn the_default_log_level_keeps_library_progress_out() {
    let lines = dev_log(&[("RUST_LOG", None), ("TOUCHSTONE_LOG_FORMAT", None)]);
    assert!(lines.iter().any(|line| line.contains("INFO") && line.contains("touchstone")), "Touchstone's own info lines: {lines:?}");
    let libraries: Vec<&String> = lines.iter().filter(|line| line.contains("lsm_tree") || line.contains("fjall")).collect();
    assert!(libraries.is_empty(), "library progress at the default level: {libraries:?}");
}
