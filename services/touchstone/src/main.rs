//! The `touchstone` command (docs/behaviour/cli.md): this file parses the arguments and
//! hands each subcommand to its module.
//!
//! - [`processes`]: `dev` (all three services in one process on the embedded store), and
//!   `migrate`, `ingest`, `attribution`, `query` (the separate-process deployment on
//!   ScyllaDB): each opens its store, binds its listeners and runs the `touchstone-server`
//!   library's `serve`.
//! - [`commands`]: `import` (bulk files into a running server, with per-line error
//!   reports), `report` (json, csv or a table), `badges` (timeline, trophy case, CSV
//!   import, figures, feed), `keys` (the API keys file), `gen` (example data).

mod commands;
mod config_file;
mod processes;

use commands::{badges, r#gen, import, keys, report};
use processes::{cluster, dev, listeners};

use clap::{Parser, Subcommand, ValueEnum};

/// mimalloc instead of glibc's malloc: allocating and freeing were about 30% of a console
/// page's CPU; BENCHMARKS.md (eighth session) has ingest and query figures on both.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// `mi_option_purge_delay` in mimalloc's `mi_option_e` (v3; the same index in v2), which the
/// Rust bindings do not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// How long freed memory stays with mimalloc before going back to the OS. Its default, a
/// second, held peak RSS after 1M records ~100 MiB above glibc's (525-568 against 444-454
/// MiB); 100 ms keeps it within ~40 MiB of glibc's (473-494) and most of the speed.
const PURGE_DELAY_MS: std::ffi::c_long = 100;

fn set_allocator_options() {
    // SAFETY: setting an option is not thread safe; this runs first in `main`, before any
    // other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) }
}
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(name = "touchstone", version, about = "Campaign conversion attribution: ingest, credit, report.")]
struct Cli {
    #[command(subcommand)]
    command: Command,
    /// The API key client commands send (`tsk_...`), for servers started with --keys-file.
    #[arg(long, env = "TOUCHSTONE_API_KEY", global = true, hide_env_values = true)]
    api_key: Option<String>,
    /// PEM CA certificate that client commands trust for https:// servers.
    #[arg(long, env = "TOUCHSTONE_TLS_CA", global = true)]
    tls_ca: Option<PathBuf>,
    /// Seconds client commands keep retrying failures that may pass (storage or a server
    /// restarting, a call shed), with backoff, before giving up; 0: never retry.
    #[arg(long, env = "TOUCHSTONE_RETRY_FOR", global = true, default_value_t = 60, value_name = "SECONDS")]
    retry_for: u64,
    /// A file of settings, `NAME=value` a line with the environment variables' names
    /// (TOUCHSTONE_LISTEN=...). Precedence: flag, then environment, then this file, then
    /// the default.
    #[arg(long, env = "TOUCHSTONE_CONFIG", global = true)]
    config: Option<PathBuf>,
}

/// How much load a server takes before it refuses calls (RESOURCE_EXHAUSTED, at once).
#[derive(clap::Args, Debug, Clone)]
pub struct LimitArgs {
    /// Calls the server runs at once; more are refused with RESOURCE_EXHAUSTED and RetryInfo
    /// (health, reflection and GetStatus are never refused).
    #[arg(long, env = "TOUCHSTONE_MAX_IN_FLIGHT", default_value_t = touchstone_server::limits::Limits::default().in_flight)]
    pub max_in_flight: usize,
    /// Calls one tenant may have in flight at once, over all its API keys (an operator key,
    /// good for every tenant, has a share of its own).
    #[arg(
        long,
        alias = "max-in-flight-per-key",
        env = "TOUCHSTONE_MAX_IN_FLIGHT_PER_TENANT",
        default_value_t = touchstone_server::limits::Limits::default().per_tenant
    )]
    pub max_in_flight_per_tenant: usize,
    /// Records per second one tenant may ingest through this process (a call over it is
    /// refused whole, RESOURCE_EXHAUSTED with RetryInfo); 0: no limit.
    #[arg(long, env = "TOUCHSTONE_MAX_RECORDS_PER_SECOND_PER_TENANT", default_value_t = 0)]
    pub max_records_per_second_per_tenant: u64,
    /// The largest request message in bytes; a larger one is refused from its length prefix,
    /// before it is buffered (RESOURCE_EXHAUSTED: send smaller batches or stream chunks).
    #[arg(long, env = "TOUCHSTONE_MAX_MESSAGE_BYTES", default_value_t = touchstone_server::limits::Limits::default().message_bytes)]
    pub max_message_bytes: usize,
    /// Request bytes the server holds at once, over all calls (each call counts the message
    /// it is receiving or handling); a message beyond it is refused, RESOURCE_EXHAUSTED with
    /// RetryInfo, so a burst of large batches cannot exhaust the process's memory.
    #[arg(long, env = "TOUCHSTONE_MAX_REQUEST_BYTES_IN_FLIGHT", default_value_t = touchstone_server::limits::Limits::default().request_bytes)]
    pub max_request_bytes_in_flight: usize,
    /// Seconds a unary call may run before it is cut with DEADLINE_EXCEEDED (a caller's
    /// shorter gRPC deadline wins; streams have their idle timeout instead).
    #[arg(long, env = "TOUCHSTONE_CALL_TIMEOUT_SECONDS", default_value_t = touchstone_server::limits::Limits::default().call_timeout.as_secs())]
    pub call_timeout_seconds: u64,
    /// Calls one connection may have open at once (HTTP/2 concurrent streams); more wait in
    /// the client for that connection's own calls.
    #[arg(long, env = "TOUCHSTONE_MAX_CALLS_PER_CONNECTION", default_value_t = touchstone_server::limits::Limits::default().per_connection)]
    pub max_calls_per_connection: u32,
    /// Records logged and not yet attributed beyond which an ingest reply waits (up to 5 s)
    /// for attribution to catch up, so that reports stay fresh under a bulk load; only while
    /// attribution (in this process or another) is seen moving. Default: 100,000 with a
    /// worker in this process, 50,000 when workers run elsewhere (attribution across the
    /// network is slower). 0: replies never wait (faster bulk loads, reports further behind).
    #[arg(long, env = "TOUCHSTONE_MAX_ATTRIBUTION_BACKLOG")]
    pub max_attribution_backlog: Option<u64>,
}

impl LimitArgs {
    pub fn limits(&self) -> touchstone_server::limits::Limits {
        touchstone_server::limits::Limits {
            in_flight: self.max_in_flight.max(1),
            per_tenant: self.max_in_flight_per_tenant.max(1),
            tenant_records_per_second: self.max_records_per_second_per_tenant,
            message_bytes: self.max_message_bytes.max(1),
            request_bytes: self.max_request_bytes_in_flight.max(1),
            call_timeout: std::time::Duration::from_secs(self.call_timeout_seconds.max(1)),
            per_connection: self.max_calls_per_connection.max(1),
            attribution_backlog: self.max_attribution_backlog,
            ..touchstone_server::limits::Limits::default()
        }
    }
}

/// Where the HTTP listener is: the web console and the API over the Connect protocol.
#[derive(clap::Args, Debug, Clone)]
pub struct ConsoleArgs {
    /// Serve HTTP on this address, e.g. 127.0.0.1:8080; off when unset: the web console
    /// (campaigns, goals, explanations, member care; with --keys-file the browser asks for an
    /// API key with the query scope, any user name, the key as password), and every unary RPC
    /// this process serves over the Connect protocol (`POST /touchstone.v1.Service/Method`,
    /// JSON or binary proto, the same keys).
    #[arg(long, env = "TOUCHSTONE_HTTP")]
    pub http: Option<SocketAddr>,
}

/// Where Prometheus scrapes the process.
#[derive(clap::Args, Debug, Clone)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics over HTTP on this address (`GET /metrics`), e.g.
    /// 127.0.0.1:9464; off when unset.
    #[arg(long, env = "TOUCHSTONE_METRICS_LISTEN")]
    pub metrics_listen: Option<SocketAddr>,
}

/// TLS on the gRPC listener (rustls): a PEM certificate chain and its private key.
#[derive(clap::Args, Debug, Clone)]
pub struct TlsArgs {
    /// PEM certificate chain to serve TLS with (clients then use https:// and --tls-ca).
    #[arg(long, env = "TOUCHSTONE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "TOUCHSTONE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Also serve grpc.health.v1 alone, in plaintext, on this address (e.g. 0.0.0.0:8081):
    /// for Kubernetes gRPC probes, which speak no TLS, while every other call needs TLS.
    #[arg(long, env = "TOUCHSTONE_HEALTH_LISTEN")]
    pub health_listen: Option<SocketAddr>,
}

impl TlsArgs {
    /// The identity to serve with, read from the files (`None` without --tls-cert).
    pub fn tls(&self) -> Result<touchstone_server::tls::Tls, String> {
        let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) else {
            return Ok(touchstone_server::tls::Tls::default());
        };
        let read = |path: &PathBuf| std::fs::read(path).map_err(|err| format!("cannot read {}: {err}", path.display()));
        let pem = touchstone_server::tls::TlsPem { cert: read(cert)?, key: read(key)? };
        let identity = tonic::transport::Identity::from_pem(&pem.cert, &pem.key);
        Ok(touchstone_server::tls::Tls { identity: Some(identity), pem: Some(pem) })
    }
}

/// How a cluster process serves: who may call it, its limits, TLS and metrics.
#[derive(clap::Args, Debug, Clone)]
pub struct ClusterServerArgs {
    #[command(flatten)]
    access: AccessArgs,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    tls: TlsArgs,
    #[command(flatten)]
    metrics: MetricsArgs,
}

impl ClusterServerArgs {
    fn serving(self, listen: SocketAddr) -> Result<cluster::Serving, String> {
        let ClusterServerArgs { access, limits, tls, metrics } = self;
        let addresses = listeners::Addresses { grpc: listen, health: tls.health_listen, console: None, metrics: metrics.metrics_listen };
        Ok(cluster::Serving { addresses, access, limits: limits.limits(), tls: tls.tls()? })
    }
}

/// Who may call a server: the keys file, or explicitly nobody checked.
#[derive(clap::Args, Debug, Clone)]
pub struct AccessArgs {
    /// The API keys file (`touchstone keys create` writes it); every RPC then needs a key
    /// of the tenant it touches, with the scope its method needs. Reloaded when it changes.
    #[arg(long, env = "TOUCHSTONE_KEYS_FILE")]
    pub keys_file: Option<PathBuf>,
    /// Serve without API keys: anyone who reaches the port reads and changes every tenant.
    #[arg(long, conflicts_with = "keys_file")]
    pub insecure: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run ingest, attribution and query in one process on the embedded store.
    Dev {
        /// Address the gRPC server listens on (port 0 picks a free one and prints it).
        #[arg(long, env = "TOUCHSTONE_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        /// Folder of the embedded store (created if missing).
        #[arg(long, env = "TOUCHSTONE_DATA_DIR", default_value = "./touchstone-data")]
        data_dir: PathBuf,
        /// Fsync every write instead of handing it to the OS (survives power loss, slower).
        #[arg(long)]
        sync: bool,
        /// The API keys file; without it `dev` runs open (and says so).
        #[arg(long, env = "TOUCHSTONE_KEYS_FILE")]
        keys_file: Option<PathBuf>,
        #[command(flatten)]
        console: ConsoleArgs,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        tls: TlsArgs,
        #[command(flatten)]
        metrics: MetricsArgs,
    },
    /// Create or update the keyspace and tables on ScyllaDB (or Cassandra), then exit.
    Migrate {
        #[command(flatten)]
        database: cluster::DatabaseArgs,
        #[command(flatten)]
        schema: cluster::SchemaArgs,
    },
    /// Serve ingestion and configuration on ScyllaDB (any number of processes).
    Ingest {
        #[arg(long, env = "TOUCHSTONE_LISTEN", default_value = "127.0.0.1:50051")]
        listen: SocketAddr,
        #[command(flatten)]
        console: ConsoleArgs,
        #[command(flatten)]
        database: cluster::DatabaseArgs,
        #[command(flatten)]
        server: ClusterServerArgs,
    },
    /// Run an attribution worker on ScyllaDB; workers split the log shards between them.
    Attribution {
        #[arg(long, env = "TOUCHSTONE_LISTEN", default_value = "127.0.0.1:50052")]
        listen: SocketAddr,
        #[command(flatten)]
        console: ConsoleArgs,
        #[command(flatten)]
        database: cluster::DatabaseArgs,
        /// Names this worker in its leases (default: host name and process id).
        #[arg(long, env = "TOUCHSTONE_WORKER_ID")]
        worker_id: Option<String>,
        #[command(flatten)]
        server: ClusterServerArgs,
    },
    /// Serve queries and reports on ScyllaDB (any number of processes).
    Query {
        #[arg(long, env = "TOUCHSTONE_LISTEN", default_value = "127.0.0.1:50053")]
        listen: SocketAddr,
        #[command(flatten)]
        console: ConsoleArgs,
        #[command(flatten)]
        database: cluster::DatabaseArgs,
        #[command(flatten)]
        server: ClusterServerArgs,
    },
    /// Import a bulk file (config.json, messages.jsonl or records.jsonl) into a running server.
    Import {
        #[command(subcommand)]
        what: ImportCommand,
    },
    /// Print a report.
    Report {
        #[command(subcommand)]
        what: ReportCommand,
    },
    /// Badges of a customer (timeline, trophy case), and bulk import of badge events.
    Badges {
        #[command(subcommand)]
        what: badges::BadgesCommand,
    },
    /// API keys: create, list, revoke (in the keys file servers read).
    Keys {
        #[command(subcommand)]
        what: keys::KeysCommand,
    },
    /// Write a generated dataset (config.json, messages.jsonl, records.jsonl) to DIR.
    ///
    /// The same flags always give the same bytes.
    Gen {
        /// About 10,000 records per unit.
        #[arg(long, default_value_t = 1)]
        scale: u32,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Days of activity from 2026-01-01 (late deliveries, refunds and badge expiries run
        /// a few weeks past); the number of records stays as --scale sets it.
        #[arg(
            long,
            default_value_t = 60,
            value_parser = clap::value_parser!(u32).range(1..=i64::from(touchstone_datagen::MAX_DAYS))
        )]
        days: u32,
        /// Distinct campaign ids over all tenants, split by tenant size (each at least one) and
        /// named after the profiles' campaigns (winter-sale-2026-0042), each with messages and
        /// touches [default: each profile's own few]
        #[arg(long)]
        campaigns: Option<usize>,
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum ImportCommand {
    /// Tenant configuration: settings, currency, excluded tags, goals.
    Config {
        file: PathBuf,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
    /// Message registrations, one JSON object a line.
    Messages {
        file: PathBuf,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
    },
    /// Touches, app events, order status records and badge events, one JSON object a line.
    Records {
        file: PathBuf,
        #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
        server: String,
        /// Return once attribution has processed everything imported.
        #[arg(long)]
        wait: bool,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Json,
    Csv,
    Table,
}

#[derive(clap::Args)]
pub struct ReportArgs {
    #[arg(long)]
    pub tenant: String,
    /// Start of the range, epoch ms, inclusive (default: unbounded).
    #[arg(long)]
    pub from: Option<i64>,
    /// End of the range, epoch ms, exclusive (default: unbounded).
    #[arg(long)]
    pub to: Option<i64>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Credit conversions under this attribution model (JSON only for any but last_touch:
    /// `conversions` is then a number with up to 6 decimals). Goal totals are the same
    /// under every model: only which campaign or message gets the credit changes.
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(touchstone_core::models::Model::ALL.map(touchstone_core::models::Model::as_str)))]
    pub model: Option<String>,
    #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
}

/// `report campaigns` and `report messages`: the report, and how many goals its table shows.
#[derive(clap::Args)]
pub struct StatsArgs {
    #[command(flatten)]
    pub report: ReportArgs,
    /// Table: every goal, or with `--goals G[,H]` the ones named, each in a table of its own
    /// (conversions, value, conversion rate, average). Without it the table shows the default
    /// goal only; json and csv always carry every goal, so there the flag changes nothing.
    #[arg(long, num_args = 0..=1, value_delimiter = ',', value_name = "GOAL[,GOAL]")]
    pub goals: Option<Vec<String>>,
}

#[derive(Subcommand)]
pub enum ReportCommand {
    /// Per campaign, with totals.
    Campaigns(StatsArgs),
    /// Per message.
    Messages(StatsArgs),
    /// Per goal: explicit, last touch and unattributed conversions.
    Goals(ReportArgs),
    /// Why one conversion was credited as it was: the rule, the credited message, and every
    /// candidate touch with its verdict.
    Explain(ExplainArgs),
    /// A campaign's lift for a goal: its treatment group (sent a message of it) against its
    /// control group (held out), with the 95% intervals and the z-test's p-value.
    Lift(LiftArgs),
    /// Every attribution model side by side: conversions and value per campaign and goal
    /// under last touch, first touch, linear, position-based and time decay.
    Models(GoalReportArgs),
}

/// `report models` and `report lift`: a tenant, a goal and a range.
#[derive(clap::Args)]
pub struct GoalReportArgs {
    #[arg(long)]
    pub tenant: String,
    /// Only this goal (`report models`: default every goal; `report lift`: default orders).
    #[arg(long)]
    pub goal: Option<String>,
    /// Start of the range, epoch ms, inclusive (`report lift`: of the entry touches).
    #[arg(long)]
    pub from: Option<i64>,
    /// End of the range, epoch ms, exclusive (`report lift`: conversions may follow it).
    #[arg(long)]
    pub to: Option<i64>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ExplainFormat,
    #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
}

#[derive(clap::Args)]
pub struct LiftArgs {
    #[arg(long)]
    pub campaign: String,
    #[command(flatten)]
    pub report: GoalReportArgs,
}

#[derive(clap::Args)]
pub struct ExplainArgs {
    #[arg(long)]
    pub tenant: String,
    /// The goal the conversion is of.
    #[arg(long)]
    pub goal: String,
    /// The conversion: an order_id for an ORDER goal, an event_id for an EVENT goal.
    #[arg(long)]
    pub key: String,
    #[arg(long, value_enum, default_value = "table")]
    pub format: ExplainFormat,
    #[arg(long, env = "TOUCHSTONE_SERVER", default_value = "http://127.0.0.1:50051")]
    pub server: String,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum ExplainFormat {
    Json,
    Table,
}

/// Threads of tokio's blocking pool, where the embedded store runs every call. With the
/// default (512) the pool grew to ~140 threads under load, and glibc malloc spread its heap
/// over an arena per thread (up to 16 on 2 cores), so freed memory stayed scattered and RSS
/// grew with the data: 768 MiB at 4M records with the default, 565 MiB with 8 threads, and
/// faster (BENCHMARKS.md, Memory). Calls beyond 8 wait their turn, which costs nothing on a
/// few cores: each call is CPU or local disk work.
const MAX_BLOCKING_THREADS: usize = 8;

fn main() -> ExitCode {
    set_allocator_options();
    // The config file fills in the environment before the flags are read (flag > env > file).
    if let Some(path) = config_file::named(&std::env::args().collect::<Vec<_>>())
        && let Err(err) = config_file::load(&path)
    {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    let cli = Cli::parse();
    if let Some(key) = &cli.api_key
        && let Err(err) = import::client::use_api_key(key)
    {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    if let Some(ca) = &cli.tls_ca
        && let Err(err) = import::client::use_tls_ca(ca)
    {
        eprintln!("error: {err}");
        return ExitCode::FAILURE;
    }
    import::client::use_retry_for(std::time::Duration::from_secs(cli.retry_for));
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    let runtime = match builder.enable_all().max_blocking_threads(MAX_BLOCKING_THREADS).build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Dev { listen, data_dir, sync, keys_file, console, limits, tls, metrics } => {
                let addresses = listeners::Addresses { grpc: listen, health: tls.health_listen, console: console.http, metrics: metrics.metrics_listen };
                let options = dev::DevOptions { addresses, data_dir, sync, keys_file, limits: limits.limits(), tls: tls.tls()? };
                dev::run(options).await
            }
            Command::Migrate { database, schema } => cluster::migrate(database, schema).await,
            Command::Ingest { listen, console, database, server } => {
                let mut serving = server.serving(listen)?;
                serving.addresses.console = console.http;
                cluster::run(cluster::Role::Ingest, database, None, serving).await
            }
            Command::Attribution { listen, console, database, worker_id, server } => {
                let mut serving = server.serving(listen)?;
                serving.addresses.console = console.http;
                cluster::run(cluster::Role::Attribution, database, worker_id, serving).await
            }
            Command::Query { listen, console, database, server } => {
                let mut serving = server.serving(listen)?;
                serving.addresses.console = console.http;
                cluster::run(cluster::Role::Query, database, None, serving).await
            }
            Command::Keys { what } => keys::run(what),
            Command::Import { what } => import::run(what).await,
            Command::Report { what } => report::run(what).await,
            Command::Badges { what } => badges::run(what).await,
            Command::Gen { scale, seed, days, campaigns, dir } => {
                let options = r#gen::GenOptions { scale, seed, days, campaigns };
                let summary = r#gen::generate_to_dir(&options, &dir)?;
                println!(
                    "wrote {} tenants, {} messages, {} records to {}",
                    summary.tenants,
                    summary.messages,
                    summary.records,
                    dir.display()
                );
                Ok(ExitCode::SUCCESS)
            }
        }
    });
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err}");
            ExitCode::FAILURE
        }
    }
}

/// Errors that end a command. Commands report per-line problems themselves and return
/// a failing exit code; these are the ones that stop everything.
pub type CommandResult = Result<ExitCode, Box<dyn std::error::Error + Send + Sync>>;

#[cfg(test)]
mod tests {
    /// The index is mimalloc's purge delay: it starts at that option's default (1,000 ms in
    /// v3), which no option near it shares, and takes the value set.
    #[test]
    fn the_option_set_at_start_is_mimallocs_purge_delay() {
        // SAFETY: no other test of this binary sets mimalloc options.
        let default = unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) };
        assert_eq!(default, 1000);
        super::set_allocator_options();
        assert_eq!(unsafe { libmimalloc_sys::mi_option_get(super::MI_OPTION_PURGE_DELAY) }, super::PURGE_DELAY_MS);
    }
}
