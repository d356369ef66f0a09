//! `--config FILE`: settings by their environment names, one precedence for all of them
//! (flag, then environment, then file, then default), and a bad line named by its number.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use touchstone_integration_tests::{binary, text};

/// Starts `touchstone dev` with `args` and `env`, reads where it listens, stops it, and
/// returns that line and its log.
fn run_dev(args: &[&str], env: &[(&str, &str)]) -> (String, Vec<String>) {
    let mut command = Command::new(binary());
    command.args(args).env_remove("TOUCHSTONE_LOG_FORMAT").env("RUST_LOG", "info").stdout(Stdio::piped()).stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    let log: Vec<String> = BufReader::new(child.stderr.take().unwrap()).lines().map_while(Result::ok).collect();
    let _ = child.wait();
    (line, log)
}

fn json(log: &[String]) -> bool {
    !log.is_empty() && log.iter().all(|line| serde_json::from_str::<serde_json::Value>(line).is_ok())
}

#[test]
fn a_config_file_fills_in_what_flags_and_environment_leave_unset() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("touchstone.env");
    let data = dir.path().join("store");
    std::fs::write(
        &config,
        format!("# dev on a free port, JSON logs\nTOUCHSTONE_LISTEN=127.0.0.1:0\nTOUCHSTONE_DATA_DIR={}\nTOUCHSTONE_LOG_FORMAT=json\n", data.display()),
    )
    .unwrap();
    let config = config.to_string_lossy().into_owned();

    // The file alone: its address, its folder, its log format.
    let (line, log) = run_dev(&["dev", "--config", &config], &[]);
    assert!(line.contains("listening on http://127.0.0.1:") && line.contains(&data.display().to_string()), "{line}");
    assert!(json(&log), "{log:?}");
    // The environment over the file, the flag over both.
    let (_, log) = run_dev(&["dev", "--config", &config], &[("TOUCHSTONE_LOG_FORMAT", "text")]);
    assert!(!json(&log), "the environment wins over the file: {log:?}");
    let other = dir.path().join("other");
    let (line, _) = run_dev(&["dev", "--config", &config, "--data-dir", &other.to_string_lossy()], &[("TOUCHSTONE_DATA_DIR", "/nonexistent")]);
    assert!(line.contains(&other.display().to_string()), "the flag wins over both: {line}");

    // A bad line: the file and line, and nothing starts.
    let bad = dir.path().join("bad.env");
    std::fs::write(&bad, "TOUCHSTONE_LISTEN=127.0.0.1:0\nlisten 0.0.0.0\n").unwrap();
    let out = Command::new(binary()).args(["dev", "--config"]).arg(&bad).output().unwrap();
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("bad.env:2: expected NAME=value"), "{}", text(&out.stderr));
}
