//! The peer: DuckDB loading the same files and computing the same attribution and reports
//! in SQL (`bench/peer/`), timed by itself, its reports checked equal to Touchstone's.

use crate::BenchResult;
use crate::datasets::Dataset;
use std::path::Path;
use std::process::Command;

pub struct PeerRun {
    pub duckdb_version: String,
    pub threads: u64,
    pub load_s: f64,
    pub attribute_s: f64,
    pub report_s: f64,
    pub total_s: f64,
    /// Whether every tenant's campaigns and goals reports equal Touchstone's.
    pub reports_equal: bool,
}

const PEER: &str = "bench/peer/duckdb_peer.py";
const COMPARE: &str = "bench/peer/compare.py";

pub fn run(python: &Path, work: &Path, data: &Dataset, touchstone_reports: &Path) -> BenchResult<PeerRun> {
    println!("running the DuckDB peer on the same files ...");
    let out = work.join("reports-duckdb");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out)?;
    let output = Command::new(python).arg(PEER).arg(&data.dir).arg(&out).output()?;
    if !output.status.success() {
        return Err(format!("{PEER} failed: {}", String::from_utf8_lossy(&output.stderr)).into());
    }
    let stdout = String::from_utf8_lossy(&output.stdout);
    let line = stdout.lines().rev().find(|line| line.starts_with('{')).ok_or("the peer printed no timings")?;
    let timings: serde_json::Value = serde_json::from_str(line)?;
    let number = |name: &str| timings[name].as_f64().ok_or_else(|| format!("no {name} in the peer's timings: {line}"));

    let compared = Command::new(python).arg(COMPARE).arg(&out).arg(touchstone_reports).output()?;
    if !compared.status.success() {
        eprintln!("the peer's reports differ from Touchstone's:\n{}", String::from_utf8_lossy(&compared.stdout));
    }
    Ok(PeerRun {
        duckdb_version: timings["duckdb"].as_str().unwrap_or("?").to_owned(),
        threads: timings["threads"].as_u64().unwrap_or(0),
        load_s: number("load_s")?,
        attribute_s: number("attribute_s")?,
        report_s: number("report_s")?,
        total_s: number("total_s")?,
        reports_equal: compared.status.success(),
    })
}
