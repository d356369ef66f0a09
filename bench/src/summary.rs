//! The figures: printed as they come and as one table at the end, and kept as JSON.

use crate::datasets::Dataset;
use crate::ingest::IngestRun;
use crate::peer::PeerRun;
use crate::latencies::Latencies;
use serde_json::json;
use std::time::Duration;

pub struct Summary {
    pub machine: String,
    lines: Vec<String>,
    pub json: serde_json::Value,
}

fn ms(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1_000.0)
}

fn secs(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

fn shape(data: &Dataset) -> String {
    let tenants = data.tenants.len();
    match data.shape {
        crate::datasets::Shape::Default => format!("{} records, {tenants} tenants, 60 days", data.records),
        crate::datasets::Shape::Year => format!("{} records, {tenants} tenants, 365 days, 1,000 campaigns", data.records),
    }
}

impl Summary {
    /// Records/s acknowledged over Connect JSON beside gRPC.
    pub fn connect(&mut self, run: &crate::connect::ConnectRun) {
        let line = format!(
            "ingest batch calls, {} records: gRPC {:.0} records/s ({}), Connect JSON {:.0} records/s ({}), Connect / gRPC {:.2}",
            run.records,
            run.grpc_per_sec(),
            secs(run.grpc),
            run.connect_per_sec(),
            secs(run.connect_json),
            run.connect_per_sec() / run.grpc_per_sec()
        );
        let record = json!({"section": "connect", "records": run.records, "grpc_records_per_s": run.grpc_per_sec(), "connect_json_records_per_s": run.connect_per_sec()});
        self.add(line, record);
    }

    pub fn new(machine: String) -> Summary {
        Summary { json: json!({ "machine": machine, "runs": [] }), machine, lines: Vec::new() }
    }

    fn add(&mut self, line: String, record: serde_json::Value) {
        println!("{line}");
        self.lines.push(line);
        if let Some(runs) = self.json["runs"].as_array_mut() {
            runs.push(record);
        }
    }

    pub fn ingest(&mut self, what: &str, data: &Dataset, run: &IngestRun) {
        let mut rss = run.peak_rss.map_or(String::new(), |bytes| format!(", peak RSS {} MiB", bytes / (1024 * 1024)));
        if !run.rss_by_million.is_empty() {
            let series: Vec<String> = run.rss_by_million.iter().map(|(_, bytes)| (bytes / (1024 * 1024)).to_string()).collect();
            rss.push_str(&format!(" (RSS MiB per million records, then caught up: {})", series.join(", ")));
        }
        let mut cost = String::new();
        if let Some(cpu) = run.cpu_us_per_record() {
            cost.push_str(&format!("; server CPU {cpu:.1} µs/record"));
        }
        if let (Some(store), Some(ops)) = (&run.store, run.store_ops_per_record()) {
            let per = |n: u64| n as f64 / run.sent.max(1) as f64;
            let mut tables = store.tables.clone();
            tables.sort_by_key(|(_, counts)| std::cmp::Reverse(counts.reads + counts.writes));
            let top: Vec<String> =
                tables.iter().take(8).map(|(table, counts)| format!("{table} {:.2}", per(counts.reads + counts.writes))).collect();
            cost.push_str(&format!(
                "; store {ops:.2} operations/record ({:.2} reads, {:.2} writes; {:.0} bytes written/record; by table: {})",
                per(store.total.reads),
                per(store.total.writes),
                per(store.total.write_bytes),
                top.join(", ")
            ));
        }
        if let (Some(cql), Some(requests)) = (&run.cql, run.cql_requests_per_record()) {
            let per = |n: u64| n as f64 / run.sent.max(1) as f64;
            let (reads, writes) = cql.operations();
            let mut totals: std::collections::BTreeMap<&str, u64> = std::collections::BTreeMap::new();
            for (table, n) in cql.reads.iter().chain(&cql.writes) {
                *totals.entry(table).or_default() += n;
            }
            let mut tables: Vec<(&str, u64)> = totals.into_iter().collect();
            tables.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
            let top: Vec<String> = tables.iter().take(8).map(|(table, n)| format!("{table} {:.2}", per(*n))).collect();
            cost.push_str(&format!(
                "; CQL {requests:.2} requests/record (the node: {:.2} partition reads + {:.2} partition writes a record; by table: {})",
                per(reads),
                per(writes),
                top.join(", ")
            ));
            if let Some((sent, received)) = cql.bytes {
                cost.push_str(&format!("; CQL bytes/record {:.0} to the node, {:.0} back", per(sent), per(received)));
            }
        }
        for process in &run.processes {
            cost.push_str(&format!(
                "; {} CPU {:.1} µs/record, peak RSS {} MiB",
                process.role,
                process.cpu.as_secs_f64() * 1e6 / run.sent.max(1) as f64,
                process.peak_rss / (1024 * 1024)
            ));
        }
        let line = format!(
            "ingest  {what} [{}]: {:.0} records/s through the stream ({} accepted, {} duplicates, {} rejected in {}); \
             attribution lag after input stopped {}; reports {}; time to final reports {} ({:.0} records/s){cost}{rss}",
            shape(data),
            run.records_per_sec(),
            run.accepted,
            run.duplicates,
            run.rejected,
            secs(run.stream),
            secs(run.lag),
            secs(run.reports),
            secs(run.total),
            run.final_records_per_sec(),
        );
        let record = json!({
            "kind": "ingest", "what": what, "data": shape(data),
            "records_per_s": run.records_per_sec().round(), "accepted": run.accepted, "duplicates": run.duplicates,
            "rejected": run.rejected, "stream_s": run.stream.as_secs_f64(), "lag_s": run.lag.as_secs_f64(),
            "reports_s": run.reports.as_secs_f64(), "final_s": run.total.as_secs_f64(),
            "final_records_per_s": run.final_records_per_sec().round(),
            "cpu_us_per_record": run.cpu_us_per_record(), "store_ops_per_record": run.store_ops_per_record(),
            "store_tables": run.store.as_ref().map(|store| store.tables.iter().map(|(table, c)| json!({
                "table": table, "reads": c.reads, "read_bytes": c.read_bytes, "writes": c.writes, "write_bytes": c.write_bytes,
            })).collect::<Vec<_>>()),
            "peak_rss_mib": run.peak_rss.map(|bytes| bytes / (1024 * 1024)),
            "cql_requests_per_record": run.cql_requests_per_record(),
            "cql_bytes_per_record": run.cql.as_ref().and_then(|cql| cql.bytes).map(|(sent, received)| json!({
                "to_node": sent as f64 / run.sent.max(1) as f64, "from_node": received as f64 / run.sent.max(1) as f64,
            })),
            "cql_partition_reads": run.cql.as_ref().map(|cql| &cql.reads),
            "cql_partition_writes": run.cql.as_ref().map(|cql| &cql.writes),
            "processes": run.processes.iter().map(|p| json!({
                "role": p.role, "cpu_s": p.cpu.as_secs_f64(), "peak_rss_mib": p.peak_rss / (1024 * 1024),
            })).collect::<Vec<_>>(),
            "rss_mib_by_records": run.rss_by_million.iter().map(|(sent, bytes)| json!([sent, bytes / (1024 * 1024)])).collect::<Vec<_>>(),
        });
        self.add(line, record);
    }

    pub fn peer(&mut self, data: &Dataset, run: &IngestRun, peer: &PeerRun) {
        let ratio = run.total.as_secs_f64() / peer.total_s;
        let line = format!(
            "peer    DuckDB {} ({} threads) [{}]: load {:.2} s, attribution {:.2} s, reports {:.2} s, total {:.2} s; \
             reports equal Touchstone's: {}; Touchstone / DuckDB time to final reports = {ratio:.2} ({})",
            peer.duckdb_version,
            peer.threads,
            shape(data),
            peer.load_s,
            peer.attribute_s,
            peer.report_s,
            peer.total_s,
            if peer.reports_equal { "yes" } else { "NO" },
            if ratio < 1.0 { "Touchstone faster" } else { "DuckDB faster" },
        );
        let record = json!({
            "kind": "peer", "duckdb": peer.duckdb_version, "threads": peer.threads, "data": shape(data),
            "load_s": peer.load_s, "attribute_s": peer.attribute_s, "report_s": peer.report_s, "total_s": peer.total_s,
            "reports_equal": peer.reports_equal, "touchstone_final_s": run.total.as_secs_f64(), "ratio": ratio,
        });
        self.add(line, record);
    }

    pub fn queries(&mut self, data: &Dataset, clients: usize, latencies: &[Latencies]) {
        for kind in latencies {
            let line = format!(
                "query   {} [{}, {clients} clients]: p50 {}, p99 {}, max {} over {} calls ({} errors)",
                kind.name,
                shape(data),
                ms(kind.p50),
                ms(kind.p99),
                ms(kind.max),
                kind.calls,
                kind.errors
            );
            let record = json!({
                "kind": "query", "rpc": kind.name, "data": shape(data), "clients": clients, "calls": kind.calls,
                "errors": kind.errors, "p50_ms": kind.p50.as_secs_f64() * 1e3, "p99_ms": kind.p99.as_secs_f64() * 1e3,
                "max_ms": kind.max.as_secs_f64() * 1e3,
            });
            self.add(line, record);
        }
    }

    pub fn pages(&mut self, data: &Dataset, clients: usize, pages: &[Latencies]) {
        for page in pages {
            let line = format!(
                "console {} [{}, {clients} clients, time to the last byte on loopback]: p50 {}, p95 {}, p99 {}, max {} over {} requests ({} errors)",
                page.name,
                shape(data),
                ms(page.p50),
                ms(page.p95),
                ms(page.p99),
                ms(page.max),
                page.calls,
                page.errors
            );
            let record = json!({
                "kind": "console", "page": page.name, "data": shape(data), "clients": clients, "requests": page.calls,
                "errors": page.errors, "p50_ms": page.p50.as_secs_f64() * 1e3, "p95_ms": page.p95.as_secs_f64() * 1e3,
                "p99_ms": page.p99.as_secs_f64() * 1e3, "max_ms": page.max.as_secs_f64() * 1e3,
            });
            self.add(line, record);
        }
    }

    pub fn print(&self) {
        println!("\n==== summary ====\n{}", self.machine);
        for line in &self.lines {
            println!("{line}");
        }
    }
}
