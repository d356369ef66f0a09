//! One ingest run: config and messages through the CLI, records streamed through
//! `IngestService/IngestStream`, then waiting for attribution to catch up and fetching every
//! tenant's reports. Against `touchstone dev` or separate processes on a CQL engine.

use crate::BenchResult;
use crate::datasets::{ChunkReader, Dataset};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::Channel;
use touchstone_integration_tests::{DevServer, Server, free_address, http_get, text, touchstone};
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::attribution_service_client::AttributionServiceClient;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

/// Where the streamed records come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Parsed into protobuf before the clock starts: the server's speed alone.
    Preloaded,
    /// Parsed from the file while streaming, on the same cores (for runs too big to hold).
    File,
}

pub struct IngestRun {
    pub sent: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// First record sent to the stream's reply (every record durable).
    pub stream: Duration,
    /// The stream's reply to attribution having processed everything.
    pub lag: Duration,
    /// Fetching every tenant's campaign list and goal KPIs once caught up.
    pub reports: Duration,
    /// From the config import to the reports fetched: the time to final reports.
    pub total: Duration,
    /// Peak RSS of the process that ingests and attributes (`touchstone dev` only).
    pub peak_rss: Option<u64>,
    /// RSS of that process (bytes) each time another million records had been sent, and
    /// once more when attribution had caught up (records parsed while streaming only).
    pub rss_by_million: Vec<(u64, u64)>,
    /// Every tenant's campaigns and goals reports as `touchstone report --format json` prints them.
    pub reports_dir: PathBuf,
    /// CPU time (user + system) of the process that ingests and attributes, from its start
    /// to the reports fetched (`touchstone dev` only).
    pub server_cpu: Option<Duration>,
    /// What the store did over the run, from the server's metrics (`touchstone dev` only).
    pub store: Option<StoreCounts>,
    /// Each process of a separate-process run, by role (CQL only).
    pub processes: Vec<ProcessCost>,
    /// What the CQL node served for the run, from its own tables (CQL only).
    pub cql: Option<CqlCounts>,
}

/// One process of a separate-process run: CPU time (user + system) from its start to the
/// reports fetched, and its peak RSS.
pub struct ProcessCost {
    pub role: &'static str,
    pub cpu: Duration,
    pub peak_rss: u64,
}

/// The CQL node's own counts for the run's keyspace (`bench/tools/cql_ops.py --json`):
/// requests served on Touchstone's connections, and partition reads and writes per table.
pub struct CqlCounts {
    pub requests: u64,
    /// Bytes Touchstone's connections sent to the node and received from it (the kernel's
    /// socket counters), when the tool could read them.
    pub bytes: Option<(u64, u64)>,
    pub reads: std::collections::BTreeMap<String, u64>,
    pub writes: std::collections::BTreeMap<String, u64>,
}

impl CqlCounts {
    /// From the tool's JSON: `{"requests": n, "bytes_sent": n, "bytes_received": n, "reads":
    /// {table: n}, "writes": {table: n}}` (the bytes may be missing).
    fn parse(json: &[u8]) -> Option<CqlCounts> {
        let value: serde_json::Value = serde_json::from_slice(json).ok()?;
        let tables = |kind: &str| -> Option<std::collections::BTreeMap<String, u64>> {
            value.get(kind)?.as_object()?.iter().map(|(table, n)| Some((table.clone(), n.as_u64()?))).collect()
        };
        let bytes = value.get("bytes_sent").and_then(|sent| Some((sent.as_u64()?, value.get("bytes_received")?.as_u64()?)));
        Some(CqlCounts { requests: value.get("requests")?.as_u64()?, bytes, reads: tables("reads")?, writes: tables("writes")? })
    }

    /// Partition reads and writes of every table.
    pub fn operations(&self) -> (u64, u64) {
        (self.reads.values().sum(), self.writes.values().sum())
    }
}

impl IngestRun {
    pub fn records_per_sec(&self) -> f64 {
        self.sent as f64 / self.stream.as_secs_f64()
    }

    /// Records over the time from the first import to the final reports fetched.
    pub fn final_records_per_sec(&self) -> f64 {
        self.sent as f64 / self.total.as_secs_f64()
    }

    pub fn cpu_us_per_record(&self) -> Option<f64> {
        self.server_cpu.map(|cpu| cpu.as_secs_f64() * 1e6 / self.sent.max(1) as f64)
    }

    /// CQL requests per record sent (CQL only).
    pub fn cql_requests_per_record(&self) -> Option<f64> {
        self.cql.as_ref().map(|cql| cql.requests as f64 / self.sent.max(1) as f64)
    }

    /// Store operations (reads and writes, every table) per record sent.
    pub fn store_ops_per_record(&self) -> Option<f64> {
        self.store.as_ref().map(|store| (store.total.reads + store.total.writes) as f64 / self.sent.max(1) as f64)
    }

    /// How much RSS grew from the 2nd million records sent to the last, as a fraction.
    pub fn rss_growth_after_2m(&self) -> Option<f64> {
        let (_, at_2m) = self.rss_by_million.iter().find(|(sent, _)| *sent >= 2_000_000)?;
        let (sent, last) = self.rss_by_million.last()?;
        (*sent > 2_000_000).then(|| *last as f64 / *at_2m as f64 - 1.0)
    }
}

/// Store operations and bytes over a run, in all and per table.
#[derive(Debug, Clone, Default)]
pub struct StoreCounts {
    pub total: TableCounts,
    pub tables: Vec<(String, TableCounts)>,
}

#[derive(Debug, Clone, Copy, Default)]
pub struct TableCounts {
    pub reads: u64,
    pub read_bytes: u64,
    pub writes: u64,
    pub write_bytes: u64,
}

impl StoreCounts {
    /// The `touchstone_store_{ops,bytes}_total` lines of a Prometheus scrape.
    fn parse(metrics: &str) -> StoreCounts {
        let mut tables: std::collections::BTreeMap<String, TableCounts> = Default::default();
        for line in metrics.lines() {
            let Some((name, rest)) = line.split_once('{') else { continue };
            let Some((labels, value)) = rest.rsplit_once("} ") else { continue };
            let label = |key: &str| labels.split(',').find_map(|pair| pair.strip_prefix(key)?.strip_prefix("=\"")?.strip_suffix('"'));
            let (Some(table), Some(kind), Ok(value)) = (label("table"), label("kind"), value.trim().parse::<f64>()) else { continue };
            let counts = tables.entry(table.to_owned()).or_default();
            let value = value as u64;
            match (name, kind) {
                ("touchstone_store_ops_total", "read") => counts.reads = value,
                ("touchstone_store_ops_total", "write") => counts.writes = value,
                ("touchstone_store_bytes_total", "read") => counts.read_bytes = value,
                ("touchstone_store_bytes_total", "write") => counts.write_bytes = value,
                _ => {}
            }
        }
        let mut total = TableCounts::default();
        for counts in tables.values() {
            total.reads += counts.reads;
            total.read_bytes += counts.read_bytes;
            total.writes += counts.writes;
            total.write_bytes += counts.write_bytes;
        }
        StoreCounts { total, tables: tables.into_iter().collect() }
    }
}

/// The whole pipeline in one `touchstone dev` on a fresh embedded store.
pub async fn embedded(work: &Path, data: &Dataset, source: Source) -> BenchResult<IngestRun> {
    let store = work.join("store-embedded");
    let _ = std::fs::remove_dir_all(&store);
    let metrics = free_address();
    let server = DevServer::start_with(&store, &["--metrics-listen", &metrics]);
    println!("ingesting {} records into touchstone dev ({source:?}) ...", data.records);
    let mut run = pipeline(&server, &server, &server, data, source, None, Some(server.pid())).await?;
    run.peak_rss = peak_rss(server.pid());
    run.server_cpu = cpu_time(server.pid());
    run.store = Some(StoreCounts::parse(&http_get(&metrics, "/metrics", &[])));
    let reports_dir = work.join("reports-embedded");
    write_reports(&server, data, &reports_dir)?;
    run.reports_dir = reports_dir;
    drop(server);
    let _ = std::fs::remove_dir_all(&store);
    Ok(run)
}

/// Separate `ingest`, `attribution` and `query` processes on a fresh keyspace.
pub async fn cql(work: &Path, data: &Dataset, nodes: &str, python: &Path) -> BenchResult<IngestRun> {
    // A keyspace of its own per run (the node may have been warmed with another run).
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let run_no = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let keyspace = format!("bench_{}_{run_no}", std::process::id());
    let migrated = touchstone(["migrate", "--scylla-nodes", nodes, "--keyspace", &keyspace]);
    if !migrated.status.success() {
        return Err(format!("touchstone migrate failed: {}", text(&migrated.stderr)).into());
    }
    // Loopback only: keys would measure the same (one hash per call).
    let start = |role: &str| Server::start(&[role, "--listen", "127.0.0.1:0", "--scylla-nodes", nodes, "--keyspace", &keyspace, "--insecure"]);
    // The deployment the CQL throughput figure is measured on: two ingest processes, two attribution workers
    // and a query process, all on the machine's cores beside the node.
    let ingest = [start("ingest"), start("ingest")];
    let workers = [start("attribution"), start("attribution")];
    let query = start("query");
    println!(
        "ingesting {} records into 2 ingest, 2 attribution and 1 query processes on CQL {nodes}, {CHUNKS_IN_FLIGHT} chunk calls in flight ...",
        data.records
    );
    let mut run = pipeline(&ingest[0], &workers[0], &query, data, Source::Preloaded, Some(&ingest), None).await?;
    let roles = [("ingest", &ingest[0]), ("ingest", &ingest[1]), ("attribution", &workers[0]), ("attribution", &workers[1]), ("query", &query)];
    for (role, server) in roles {
        let (cpu, peak_rss) = (cpu_time(server.pid()).unwrap_or_default(), peak_rss(server.pid()).unwrap_or_default());
        run.processes.push(ProcessCost { role, cpu, peak_rss });
    }
    // Before the processes stop: the node counts requests on open connections only.
    run.cql = cql_counts(python, nodes, &keyspace);
    let reports_dir = work.join("reports-cql");
    write_reports(&query, data, &reports_dir)?;
    run.reports_dir = reports_dir;
    drop((ingest, workers, query));
    // scripts/bench.sh wipes the Cassandra it started; on a cluster of one's own the
    // keyspace is left for inspection.
    println!("(keyspace {keyspace} left in place: DROP KEYSPACE {keyspace} when done)");
    Ok(run)
}

/// The pipeline into one server that plays every role (`touchstone dev`).
pub async fn load(server: &Server, data: &Dataset, source: Source) -> BenchResult<IngestRun> {
    pipeline(server, server, server, data, source, None, None).await
}

/// Chunk calls a client keeps in flight when it sends chunks as calls of their own.
const CHUNKS_IN_FLIGHT: usize = 4;

/// With `chunk_calls`, each chunk is its own call to one of those servers (in turn,
/// [`CHUNKS_IN_FLIGHT`] at once), retried while the server answers UNAVAILABLE (a CQL
/// timeout under load), as a production client would; else one stream into `ingest`.
/// With `watch_rss`, the RSS of that process is printed every million records sent.
#[allow(clippy::too_many_arguments)]
async fn pipeline(
    ingest: &Server,
    attribution: &Server,
    query: &Server,
    data: &Dataset,
    source: Source,
    chunk_calls: Option<&[Server]>,
    watch_rss: Option<u32>,
) -> BenchResult<IngestRun> {
    let preloaded = match source {
        Source::Preloaded => Some(data.chunks()?),
        Source::File => None,
    };
    let started = Instant::now();
    ingest.cli_ok(&["import", "config", &data.path("config.json")]);
    ingest.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);

    let mut client = IngestServiceClient::new(ingest.channel().await);
    let mut callers = Vec::new();
    for server in chunk_calls.unwrap_or_default() {
        callers.push(IngestServiceClient::new(server.channel().await));
    }
    let stream_started = Instant::now();
    let mut rss_by_million = Vec::new();
    let reply = match preloaded {
        Some(chunks) if !callers.is_empty() => send_chunks_with_retries(callers, chunks).await?,
        Some(chunks) => client.ingest_stream(tokio_stream::iter(chunks)).await?.into_inner(),
        None => {
            // Parsed on a blocking thread while streaming, a few chunks ahead.
            let (sender, receiver) = tokio::sync::mpsc::channel::<pb::IngestChunk>(4);
            let mut reader = ChunkReader::open(data)?;
            let producer = tokio::task::spawn_blocking(move || -> BenchResult<Vec<(u64, u64)>> {
                let (mut sent, mut rss_by_million) = (0u64, Vec::new());
                while let Some(chunk) = reader.next_chunk()? {
                    let before = sent;
                    sent += chunk.records.len() as u64;
                    if sender.blocking_send(chunk).is_err() {
                        break;
                    }
                    if let Some(pid) = watch_rss
                        && sent / 1_000_000 > before / 1_000_000
                        && let Some(rss) = rss(pid)
                    {
                        println!("  {:>2}M records sent: RSS {} MiB", sent / 1_000_000, rss / (1024 * 1024));
                        rss_by_million.push((sent, rss));
                    }
                }
                Ok(rss_by_million)
            });
            let reply = client.ingest_stream(ReceiverStream::new(receiver)).await?.into_inner();
            rss_by_million = producer.await??;
            reply
        }
    };
    let stream = stream_started.elapsed();

    let mut status = AttributionServiceClient::new(attribution.channel().await);
    wait_caught_up(&mut status).await?;
    let lag = stream_started.elapsed() - stream;
    if let (Some(pid), Some(&(sent, _))) = (watch_rss, rss_by_million.last())
        && let Some(rss) = rss(pid)
    {
        println!("  caught up: RSS {} MiB", rss / (1024 * 1024));
        rss_by_million.push((sent, rss));
    }

    let reports_started = Instant::now();
    fetch_reports(query.channel().await, &data.tenants).await?;
    let reports = reports_started.elapsed();
    let sent = reply.accepted + reply.duplicates + reply.rejected.len() as u64;
    Ok(IngestRun {
        sent,
        accepted: reply.accepted,
        duplicates: reply.duplicates,
        rejected: reply.rejected.len() as u64,
        stream,
        lag,
        reports,
        total: started.elapsed(),
        peak_rss: None,
        rss_by_million,
        reports_dir: PathBuf::new(),
        server_cpu: None,
        store: None,
        processes: Vec::new(),
        cql: None,
    })
}

/// One call per chunk, [`CHUNKS_IN_FLIGHT`] at once over the `clients` in turn, each retried
/// with backoff while the server is unavailable; the replies summed (a retried chunk's
/// records stored by the failed attempt count as duplicates, so accepted + duplicates still
/// equals what was sent).
async fn send_chunks_with_retries(clients: Vec<IngestServiceClient<Channel>>, chunks: Vec<pb::IngestChunk>) -> BenchResult<pb::IngestReply> {
    let mut lanes: Vec<Vec<pb::IngestChunk>> = vec![Vec::new(); CHUNKS_IN_FLIGHT];
    for (i, chunk) in chunks.into_iter().enumerate() {
        lanes[i % CHUNKS_IN_FLIGHT].push(chunk);
    }
    let mut senders = tokio::task::JoinSet::new();
    for (lane, chunks) in lanes.into_iter().enumerate() {
        let client = clients[lane % clients.len()].clone();
        senders.spawn(send_lane(client, chunks));
    }
    let mut total = pb::IngestReply::default();
    while let Some(reply) = senders.join_next().await {
        let reply = reply.map_err(|e| e.to_string())??;
        total.accepted += reply.accepted;
        total.duplicates += reply.duplicates;
        total.rejected.extend(reply.rejected);
    }
    Ok(total)
}

/// One chunk call after another, each retried while the server is unavailable.
async fn send_lane(mut client: IngestServiceClient<Channel>, chunks: Vec<pb::IngestChunk>) -> Result<pb::IngestReply, String> {
    const ATTEMPTS: u32 = 8;
    let mut total = pb::IngestReply::default();
    for chunk in chunks {
        let mut attempt = 1;
        let reply = loop {
            match client.ingest_stream(tokio_stream::iter([chunk.clone()])).await {
                Ok(reply) => break reply.into_inner(),
                Err(status) if status.code() == tonic::Code::Unavailable && attempt < ATTEMPTS => {
                    eprintln!("chunk attempt {attempt}: {} (retrying)", status.message());
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(attempt))).await;
                    attempt += 1;
                }
                Err(status) => return Err(status.to_string()),
            }
        };
        total.accepted += reply.accepted;
        total.duplicates += reply.duplicates;
        total.rejected.extend(reply.rejected);
    }
    Ok(total)
}

/// Waits until every shard has processed what the first status call saw at its head.
async fn wait_caught_up(status: &mut AttributionServiceClient<Channel>) -> BenchResult<()> {
    let heads = status.get_status(pb::GetStatusRequest {}).await?.into_inner().shards;
    loop {
        let shards = status.get_status(pb::GetStatusRequest {}).await?.into_inner().shards;
        let caught_up = heads
            .iter()
            .all(|head| shards.iter().any(|shard| shard.shard == head.shard && shard.processed >= head.head));
        if caught_up {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// What a dashboard shows once the data is in: every tenant's campaign list and goal KPIs
/// over the whole period.
async fn fetch_reports(channel: Channel, tenants: &[String]) -> BenchResult<()> {
    let mut query = QueryServiceClient::new(channel);
    for tenant in tenants {
        query.list_campaigns(pb::ListCampaignsRequest { tenant: tenant.clone(), range: None }).await?;
        query.get_goal_kpis(pb::GoalKpisRequest { tenant: tenant.clone(), range: None, goal_id: None, model: 0 }).await?;
    }
    Ok(())
}

/// `touchstone report campaigns|goals --format json` of every tenant into `dir`, for the
/// comparison with the peer.
fn write_reports(server: &Server, data: &Dataset, dir: &Path) -> BenchResult<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    for tenant in &data.tenants {
        for kind in ["campaigns", "goals"] {
            let json = server.cli_ok(&["report", kind, "--tenant", tenant, "--format", "json"]);
            std::fs::write(dir.join(format!("{tenant}.{kind}.json")), json)?;
        }
    }
    Ok(())
}

/// The CQL node's counts for `keyspace`, from `bench/tools/cql_ops.py` (its Python needs
/// `cassandra-driver`, which `scripts/bench.sh` installs); `None`, said, when that fails.
fn cql_counts(python: &Path, nodes: &str, keyspace: &str) -> Option<CqlCounts> {
    let node = nodes.split(',').next().unwrap_or(nodes);
    let (host, port) = node.rsplit_once(':').unwrap_or((node, "9042"));
    let tool = concat!(env!("CARGO_MANIFEST_DIR"), "/tools/cql_ops.py");
    let output = Command::new(python).args([tool, keyspace, "--host", host, "--port", port, "--json"]).output();
    match output {
        Ok(output) if output.status.success() => {
            let counts = CqlCounts::parse(&output.stdout);
            if counts.is_none() {
                println!("(CQL counts unreadable: {})", String::from_utf8_lossy(&output.stdout));
            }
            counts
        }
        Ok(output) => {
            println!("(no CQL counts: cql_ops.py failed: {})", String::from_utf8_lossy(&output.stderr).lines().last().unwrap_or(""));
            None
        }
        Err(error) => {
            println!("(no CQL counts: running {}: {error})", python.display());
            None
        }
    }
}

/// `VmRSS` of a process: its resident memory now, in bytes.
fn rss(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmRSS:").map(|kib| kib * 1024)
}

/// `VmHWM` of a process: the peak of its resident memory, in bytes.
fn peak_rss(pid: u32) -> Option<u64> {
    proc_status_kib(pid, "VmHWM:").map(|kib| kib * 1024)
}

/// User + system CPU time of a process so far (`/proc/PID/stat` fields 14 and 15, in clock
/// ticks of 1/100 s, Linux's `USER_HZ` on every architecture it runs on here).
fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; the fields after it are plain numbers.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

/// A `kB` line of `/proc/PID/status`.
fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix(field))?.split_whitespace().next()?.parse().ok()
}
