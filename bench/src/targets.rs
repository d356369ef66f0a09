//! The figures the data path is held to (and the console pages' bar), each printed beside
//! its floor and goal at the end of a run (and kept in `results.json`), so a run says at a
//! glance what holds and what does not.

use serde_json::json;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
}

#[derive(Debug, Clone, Copy)]
pub struct Target {
    figure: &'static str,
    unit: &'static str,
    floor: f64,
    goal: f64,
    better: Better,
}

const fn higher(figure: &'static str, unit: &'static str, floor: f64, goal: f64) -> Target {
    Target { figure, unit, floor, goal, better: Better::Higher }
}

const fn lower(figure: &'static str, unit: &'static str, floor: f64, goal: f64) -> Target {
    Target { figure, unit, floor, goal, better: Better::Lower }
}

pub const EMBEDDED_THROUGHPUT: Target =
    higher("touchstone dev, 1M records: IngestStream to final reports", "records/s", 90_000.0, 300_000.0);
pub const VERSUS_DUCKDB: Target = lower("time to final reports / DuckDB's load + compute, same files, same run", "x", 3.0, 1.0);
pub const STORE_OPS: Target = lower("store operations per record, every table, ingest + attribution", "ops", 3.0, 1.5);
pub const CPU_PER_RECORD: Target = lower("server CPU (user + system) per record, 1M records", "µs", 20.0, 8.0);
pub const LAG: Target = lower("attribution lag once input stops (1M records)", "s", 1.0, 0.2);
pub const CAMPAIGN_STATS_P99: Target = lower("GetCampaignStats p99, a year x 1,000 campaigns", "ms", 5.0, 2.0);
pub const GOAL_KPIS_P99: Target = lower("GetGoalKpis p99, a year x 1,000 campaigns", "ms", 10.0, 3.0);
pub const EXPLAIN_P99: Target = lower("ExplainConversion p99", "ms", 5.0, 2.0);
pub const CONSOLE_P95: Target = lower("slowest console page p95, a year x 1,000 campaigns", "ms", 50.0, 50.0);
pub const PEAK_RSS: Target = lower("peak RSS of touchstone dev over the memory run", "MiB", 512.0, 256.0);
pub const RSS_GROWTH: Target = lower("RSS growth from 2M records to the end of the memory run", "%", 5.0, 5.0);
pub const CQL_THROUGHPUT: Target = higher("separate processes on CQL, records/s to final reports", "records/s", 5_000.0, 20_000.0);
pub const CQL_REQUESTS: Target = lower("separate processes on CQL, CQL requests per record, ingest + attribution", "requests", 0.3, 0.1);
pub const CONNECT_VERSUS_GRPC: Target = higher("Connect JSON ingest records/s / gRPC's, same batches", "x", 0.5, 0.8);
pub const CQL_LAG: Target = lower("separate processes on CQL, attribution lag", "s", 5.0, 1.0);

/// The figures measured in this run, in the order they came.
#[derive(Default)]
pub struct Measured(Vec<(Target, f64)>);

impl Measured {
    pub fn record(&mut self, target: Target, value: f64) {
        self.0.push((target, value));
    }

    pub fn lines(&self) -> Vec<String> {
        self.0
            .iter()
            .map(|(target, value)| {
                format!(
                    "target  {}: {} {} (floor {} {}, goal {} {}): {}",
                    target.figure,
                    number(*value),
                    target.unit,
                    number(target.floor),
                    target.unit,
                    number(target.goal),
                    target.unit,
                    verdict(target, *value)
                )
            })
            .collect()
    }

    pub fn json(&self) -> serde_json::Value {
        let rows = self.0.iter().map(|(target, value)| {
            json!({
                "figure": target.figure, "unit": target.unit, "value": value,
                "floor": target.floor, "goal": target.goal, "verdict": verdict(target, *value),
            })
        });
        serde_json::Value::Array(rows.collect())
    }
}

fn meets(target: &Target, value: f64, bound: f64) -> bool {
    match target.better {
        Better::Higher => value >= bound,
        Better::Lower => value <= bound,
    }
}

fn verdict(target: &Target, value: f64) -> &'static str {
    if meets(target, value, target.goal) {
        "goal met"
    } else if meets(target, value, target.floor) {
        "floor met"
    } else {
        "BELOW THE FLOOR"
    }
}

fn number(value: f64) -> String {
    if value >= 100.0 { format!("{value:.0}") } else { format!("{value:.2}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_follow_the_direction_of_each_figure() {
        assert_eq!(verdict(&EMBEDDED_THROUGHPUT, 20_000.0), "BELOW THE FLOOR");
        assert_eq!(verdict(&EMBEDDED_THROUGHPUT, 100_000.0), "floor met");
        assert_eq!(verdict(&EMBEDDED_THROUGHPUT, 300_000.0), "goal met");
        assert_eq!(verdict(&LAG, 2.5), "BELOW THE FLOOR");
        assert_eq!(verdict(&LAG, 0.5), "floor met");
        assert_eq!(verdict(&LAG, 0.2), "goal met");
    }
}
