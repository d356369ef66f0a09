//! `make bench`: Touchstone measured end to end, with the peer a team would use instead
//! (DuckDB loading the same files and computing the same attribution in SQL) beside it.
//!
//! Every figure comes from the release binary run as real processes and driven over gRPC,
//! on data from `touchstone gen`; nothing is a timed test. Sections:
//! - `ingest`: records streamed through `IngestService/IngestStream` into `touchstone dev`
//!   (embedded store): throughput, attribution lag once input stops, time from the first
//!   record to final reports; then DuckDB on the same files, whose reports must equal
//!   Touchstone's, and the ratio of the two times.
//! - `cql`: the same into separate `ingest`, `attribution` and `query` processes on
//!   Cassandra or ScyllaDB (`TOUCHSTONE_CASSANDRA_NODES` / `TOUCHSTONE_SCYLLA_NODES`).
//! - `queries`: p50 / p99 latency of the query RPCs under concurrent clients, on a store
//!   holding a year of data for 1,000 campaigns; then p50 / p95 / p99 of every page type of
//!   the web console (`--http`) on the same store, fetched as plain HTTP GETs.
//! - `memory`: peak RSS of `touchstone dev` while it ingests and attributes 10M records.
//! - `connect`: records/s acknowledged in batch calls over Connect JSON beside gRPC, same
//!   batches, same calls in flight.
//!
//! Generated datasets are kept under the work folder (`.bench/`), so a second run skips
//! generating them.

mod cassandra;
mod connect;
mod console;
mod datasets;
mod ingest;
mod latencies;
mod peer;
mod queries;
mod query_targets;
mod summary;
mod targets;

use clap::{Parser, ValueEnum};
use std::path::PathBuf;
use summary::Summary;

#[derive(Parser)]
#[command(about = "Benchmarks of the touchstone binary, beside DuckDB doing the same attribution in SQL")]
struct Args {
    /// Records of the ingest comparison with DuckDB.
    #[arg(long, env = "BENCH_RECORDS", default_value_t = 1_000_000)]
    records: usize,
    /// Records of the separate-process run on Cassandra / ScyllaDB.
    #[arg(long, env = "BENCH_CQL_RECORDS", default_value_t = 200_000)]
    cql_records: usize,
    /// Records of the query store (a year, 1,000 campaigns).
    #[arg(long, env = "BENCH_QUERY_RECORDS", default_value_t = 1_000_000)]
    query_records: usize,
    /// Seconds each query kind is measured for.
    #[arg(long, env = "BENCH_QUERY_SECONDS", default_value_t = 5)]
    query_seconds: u64,
    /// Concurrent query clients.
    #[arg(long, env = "BENCH_QUERY_CLIENTS", default_value_t = 8)]
    query_clients: usize,
    /// GETs of each console page type (in the queries section).
    #[arg(long, env = "BENCH_CONSOLE_REQUESTS", default_value_t = 200)]
    console_requests: usize,
    /// Concurrent console clients.
    #[arg(long, env = "BENCH_CONSOLE_CLIENTS", default_value_t = 4)]
    console_clients: usize,
    /// Records of the Connect JSON / gRPC comparison.
    #[arg(long, env = "BENCH_CONNECT_RECORDS", default_value_t = 200_000)]
    connect_records: usize,
    /// Records of the memory run.
    #[arg(long, env = "BENCH_RSS_RECORDS", default_value_t = 10_000_000)]
    rss_records: usize,
    /// CQL contact points (ScyllaDB or Cassandra); without them the cql section starts a
    /// Cassandra 5 of its own.
    #[arg(long, env = "BENCH_CQL_NODES")]
    cql_nodes: Option<String>,
    /// The Python that has DuckDB (scripts/bench.sh makes a venv).
    #[arg(long, env = "BENCH_PYTHON", default_value = "python3")]
    python: PathBuf,
    /// Where datasets, stores and outputs go.
    #[arg(long, env = "BENCH_DIR", default_value = ".bench")]
    work: PathBuf,
    /// Sections to run (default: all).
    #[arg(long = "only", value_enum)]
    only: Vec<Section>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Section {
    Ingest,
    Queries,
    Memory,
    Cql,
    Connect,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bench: {err}");
            std::process::ExitCode::FAILURE
        }
    }
}

pub type BenchResult<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

async fn run(args: Args) -> BenchResult<()> {
    let touchstone = touchstone_integration_tests::binary();
    if !touchstone.exists() {
        return Err(format!("no touchstone binary at {} (set TOUCHSTONE_BIN)", touchstone.display()).into());
    }
    std::fs::create_dir_all(&args.work)?;
    let wanted = |section| args.only.is_empty() || args.only.contains(&section);
    let mut summary = Summary::new(machine());
    let mut measured = targets::Measured::default();
    println!("{}", summary.machine);

    if wanted(Section::Ingest) {
        let data = datasets::Dataset::generate(&args.work, args.records, datasets::Shape::Default)?;
        let run = ingest::embedded(&args.work, &data, ingest::Source::Preloaded).await?;
        summary.ingest("embedded (touchstone dev)", &data, &run);
        let peer = peer::run(&args.python, &args.work, &data, &run.reports_dir)?;
        summary.peer(&data, &run, &peer);
        measured.record(targets::EMBEDDED_THROUGHPUT, run.final_records_per_sec());
        measured.record(targets::VERSUS_DUCKDB, run.total.as_secs_f64() / peer.total_s);
        if let Some(ops) = run.store_ops_per_record() {
            measured.record(targets::STORE_OPS, ops);
        }
        if let Some(cpu) = run.cpu_us_per_record() {
            measured.record(targets::CPU_PER_RECORD, cpu);
        }
        measured.record(targets::LAG, run.lag.as_secs_f64());
    }
    if wanted(Section::Queries) {
        let data = datasets::Dataset::generate(&args.work, args.query_records, datasets::Shape::Year)?;
        let console = queries::ConsoleLoad { clients: args.console_clients, requests: args.console_requests };
        let run = queries::run(&args.work, &data, args.query_clients, args.query_seconds, console).await?;
        summary.ingest("embedded, a year of 1,000 campaigns", &data, &run.loaded);
        summary.queries(&data, args.query_clients, &run.queries);
        summary.pages(&data, args.console_clients, &run.pages);
        for kind in &run.queries {
            let target = match kind.name {
                "GetCampaignStats (year)" => targets::CAMPAIGN_STATS_P99,
                "GoalKpis (year)" => targets::GOAL_KPIS_P99,
                "ExplainConversion" => targets::EXPLAIN_P99,
                _ => continue,
            };
            measured.record(target, kind.p99.as_secs_f64() * 1_000.0);
        }
        // The target is over a year: an all-time page (every day since 2000 in its totals,
        // lift and models) is printed beside it, not held to it.
        let within_a_year = run.pages.iter().filter(|page| page.name != crate::console::ALL_TIME_PAGE);
        if let Some(slowest) = within_a_year.max_by_key(|page| page.p95) {
            measured.record(targets::CONSOLE_P95, slowest.p95.as_secs_f64() * 1_000.0);
        }
    }
    if wanted(Section::Memory) {
        let data = datasets::Dataset::generate(&args.work, args.rss_records, datasets::Shape::Default)?;
        let run = ingest::embedded(&args.work, &data, ingest::Source::File).await?;
        summary.ingest("embedded, records parsed while streaming", &data, &run);
        if let Some(peak) = run.peak_rss {
            measured.record(targets::PEAK_RSS, peak as f64 / (1024.0 * 1024.0));
        }
        if let Some(growth) = run.rss_growth_after_2m() {
            measured.record(targets::RSS_GROWTH, growth * 100.0);
        }
    }
    if wanted(Section::Connect) {
        let data = datasets::Dataset::generate(&args.work, args.connect_records, datasets::Shape::Default)?;
        let run = connect::run(&args.work, &data).await?;
        summary.connect(&run);
        measured.record(targets::CONNECT_VERSUS_GRPC, run.connect_per_sec() / run.grpc_per_sec());
    }
    // Last, so that the JVM of a local Cassandra does not share the cores with the rest.
    if wanted(Section::Cql) {
        let local = match &args.cql_nodes {
            Some(_) => None,
            None => Some(cassandra::LocalCassandra::start(&args.work)?),
        };
        let nodes = args.cql_nodes.clone().or_else(|| local.as_ref().map(|c| c.nodes.clone())).unwrap_or_default();
        let data = datasets::Dataset::generate(&args.work, args.cql_records, datasets::Shape::Default)?;
        if local.is_some() {
            // A node just started runs its first minutes partly interpreted: a run on it
            // measured the JVM's warm-up (a third fewer records/s than the next run; a
            // quarter of the records was not enough to warm it), not a node in service. It
            // is warmed with the same run into a keyspace of its own, whose figures are dropped.
            println!("warming the node with the same run (not measured) ...");
            ingest::cql(&args.work, &data, &nodes, &args.python).await?;
        }
        let run = ingest::cql(&args.work, &data, &nodes, &args.python).await?;
        summary.ingest("CQL, separate ingest/attribution/query processes", &data, &run);
        measured.record(targets::CQL_THROUGHPUT, run.final_records_per_sec());
        if let Some(requests) = run.cql_requests_per_record() {
            measured.record(targets::CQL_REQUESTS, requests);
        }
        measured.record(targets::CQL_LAG, run.lag.as_secs_f64());
        drop(local);
    }
    summary.print();
    println!("\n==== each figure beside its floor and goal ====");
    for line in measured.lines() {
        println!("{line}");
    }
    summary.json["targets"] = measured.json();
    let results = args.work.join("results.json");
    std::fs::write(&results, serde_json::to_string_pretty(&summary.json)?)?;
    println!("\nfigures also in {}", results.display());
    Ok(())
}

/// CPU model, cores and memory, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name").map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, usize::from);
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .map_or(0.0, |kib| kib as f64 / 1024.0 / 1024.0);
    format!("machine: {model}, {cores} cores, {mem_gib:.0} GiB")
}
