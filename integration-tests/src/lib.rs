//! The harness of the end-to-end tests: the `touchstone` binary run as real processes.
//!
//! - [`DevServer`]: `touchstone dev` on a free port and a data folder, killed on drop.
//! - [`Server`]: any serving subcommand (`ingest`, `attribution`, `query`), killed on drop.
//! - [`cql_nodes`]: the CQL engine the separate-process tests use, if any.
//! - [`touchstone`]: runs one CLI command and returns its output.
//! - [`Generated`]: a `touchstone gen` dataset and its brute-force reference evaluation.
//! - [`assert_reports_match`], [`assert_badges_match`]: a server's answers against the reference.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::OnceLock;
use touchstone_core::badges::{BadgeDefinition, RuleKind};
use touchstone_core::files::parse_record;
use touchstone_core::model::{BadgeEvent, Record};
use touchstone_core::reference::{Dataset, Reference, evaluate};
use touchstone_core::reference_badges;
use touchstone_core::validate::validate;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::config_service_client::ConfigServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

/// The `touchstone` binary: `TOUCHSTONE_BIN` when set (the benchmark runs the release
/// build), else the one of this build (`target/<profile>/touchstone`), built on first use if
/// `cargo test` did not build it already (it does when testing the workspace).
pub fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        if let Some(path) = std::env::var_os("TOUCHSTONE_BIN").filter(|path| !path.is_empty()) {
            return PathBuf::from(path);
        }
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/touchstone
        let profile_dir = exe.parent().and_then(Path::parent).expect("target profile folder");
        let binary = profile_dir.join(format!("touchstone{}", std::env::consts::EXE_SUFFIX));
        if !binary.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let mut build = Command::new(cargo);
            build.args(["build", "-p", "touchstone", "--bin", "touchstone"]);
            if profile_dir.file_name().is_some_and(|name| name == "release") {
                build.arg("--release");
            }
            let status = build.status().expect("running cargo build");
            assert!(status.success(), "cargo build -p touchstone failed");
        }
        binary
    })
}

/// Runs `touchstone ARGS` to completion.
pub fn touchstone<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(binary()).args(args).output().expect("running touchstone")
}

/// A loopback address nothing listens on now, for a server's second listener (metrics,
/// health, console), whose address the test must know before it starts.
pub fn free_address() -> String {
    // Below the kernel's ephemeral ports (32768 and up on Linux): a port the system handed
    // out could be handed out again, to a process of the test binding port 0, before the one
    // it is for binds it. Spread by process, so test binaries running at once differ.
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    const FIRST: u32 = 20_000;
    const PORTS: u32 = 12_000;
    for _ in 0..PORTS {
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let port = FIRST + (std::process::id().wrapping_mul(97).wrapping_add(n)) % PORTS;
        if let Ok(free) = std::net::TcpListener::bind(("127.0.0.1", port as u16)) {
            return free.local_addr().expect("its address").to_string();
        }
    }
    panic!("no free loopback port from {FIRST} to {}", FIRST + PORTS)
}

/// The whole HTTP/1.1 reply (status line, headers, body) to `GET path` at `address`, with
/// `headers` (each `Name: value`) added.
pub fn http_get(address: &str, path: &str, headers: &[&str]) -> String {
    use std::io::{Read as _, Write as _};
    let mut stream = std::net::TcpStream::connect(address).unwrap_or_else(|err| panic!("connecting to {address}: {err}"));
    let headers: String = headers.iter().map(|header| format!("{header}\r\n")).collect();
    // One write: a server that answers on its first read (the metrics listener) would
    // otherwise close the connection while the rest of the request is still being sent.
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n{headers}Connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap_or_else(|err| panic!("sending the request to {address}: {err}"));
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap_or_else(|err| panic!("reading the reply from {address}: {err}"));
    reply
}

/// Output as text, for assertions.
pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A serving `touchstone` subcommand running as a child process, killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
}

impl Server {
    /// Runs `touchstone ARGS` (which must include `--listen 127.0.0.1:0`) and waits until it
    /// says where it listens.
    pub fn start(args: &[&str]) -> Server {
        let mut child = Command::new(binary())
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|err| panic!("starting touchstone {args:?}: {err}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("reading the listening line");
        let url = line
            .split_whitespace()
            .find(|word| word.starts_with("http://") || word.starts_with("https://"))
            .unwrap_or_else(|| panic!("touchstone {args:?} did not say where it listens: {line:?}"))
            .to_owned();
        Server { child, url }
    }

    /// The process id, e.g. to read its memory use.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Kills the process at once (SIGKILL on Unix): no shutdown, no flush.
    pub fn kill_hard(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM, as an orchestrator does to stop a process.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("running kill");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits up to `timeout` for the process to exit; its exit status, or `None` if it still
    /// runs.
    pub fn wait_exit(&mut self, timeout: std::time::Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for touchstone") {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }

    /// `touchstone ARGS --server URL`.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all: Vec<&str> = args.to_vec();
        all.extend(["--server", &self.url]);
        touchstone(all)
    }

    /// Runs a CLI command against this server that must succeed; returns its stdout.
    pub fn cli_ok(&self, args: &[&str]) -> String {
        let output = self.cli(args);
        assert!(
            output.status.success(),
            "touchstone {args:?} failed ({}):\n{}",
            output.status,
            text(&output.stderr)
        );
        text(&output.stdout)
    }

    /// A report as JSON.
    pub fn report(&self, kind: &str, tenant: &str, from: Option<i64>, to: Option<i64>) -> serde_json::Value {
        report(self, kind, tenant, from, to)
    }

    /// Imports the three files of a generated dataset, waiting for attribution.
    pub fn import(&self, data: &Generated) {
        self.cli_ok(&["import", "config", &data.path("config.json")]);
        self.cli_ok(&["import", "messages", &data.path("messages.jsonl")]);
        self.cli_ok(&["import", "records", &data.path("records.jsonl"), "--wait"]);
    }

    /// A gRPC channel to the server.
    pub async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Endpoint::from_shared(self.url.clone())
            .expect("server url")
            .connect()
            .await
            .expect("connecting to touchstone")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `touchstone dev` running as a child process; derefs to its [`Server`] for the CLI,
/// reports and gRPC.
pub struct DevServer {
    server: Server,
    pub data_dir: PathBuf,
}

impl DevServer {
    /// Starts a server on a free port over `data_dir` and waits until it listens.
    pub fn start(data_dir: &Path) -> DevServer {
        DevServer::start_with(data_dir, &[])
    }

    /// [`DevServer::start`] with more arguments for `touchstone dev`.
    pub fn start_with(data_dir: &Path, extra: &[&str]) -> DevServer {
        let data = data_dir.to_string_lossy();
        let mut args = vec!["dev", "--listen", "127.0.0.1:0", "--data-dir", &data];
        args.extend_from_slice(extra);
        let server = Server::start(&args);
        DevServer { server, data_dir: data_dir.to_owned() }
    }

    /// Kills the process at once (SIGKILL on Unix): no shutdown, no flush.
    pub fn kill_hard(self) {
        self.server.kill_hard();
    }
}

impl std::ops::Deref for DevServer {
    type Target = Server;

    fn deref(&self) -> &Server {
        &self.server
    }
}

/// `touchstone report KIND --tenant T [--from] [--to] --format json` against `server`.
fn report(server: &Server, kind: &str, tenant: &str, from: Option<i64>, to: Option<i64>) -> serde_json::Value {
    let mut args = vec!["report".to_owned(), kind.to_owned(), "--tenant".into(), tenant.into(), "--format".into(), "json".into()];
    if let Some(from) = from {
        args.extend(["--from".into(), from.to_string()]);
    }
    if let Some(to) = to {
        args.extend(["--to".into(), to.to_string()]);
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = server.cli_ok(&args);
    serde_json::from_str(&out).unwrap_or_else(|err| panic!("report {kind} is not JSON ({err}):\n{out}"))
}

/// The CQL engine for the separate-process tests: `TOUCHSTONE_SCYLLA_NODES`, else
/// `TOUCHSTONE_CASSANDRA_NODES` (set by `make test`, which starts Cassandra 5). Without
/// either the test fails: a test that needs a database never passes without one.
pub fn cql_nodes() -> String {
    ["TOUCHSTONE_SCYLLA_NODES", "TOUCHSTONE_CASSANDRA_NODES"]
        .iter()
        .find_map(|name| std::env::var(name).ok().filter(|nodes| !nodes.is_empty()))
        .expect("no CQL node: run `make test`, which starts Cassandra 5, or set TOUCHSTONE_CASSANDRA_NODES=host:port")
}

/// A generated dataset in a folder, with its reference evaluation.
pub struct Generated {
    pub dir: PathBuf,
    pub reference: Reference,
}

impl Generated {
    /// `touchstone gen --scale SCALE --seed SEED DIR`, evaluated by the reference.
    pub fn new(dir: &Path, scale: u32, seed: u64) -> Generated {
        let output = Command::new(binary())
            .args(["gen", "--scale", &scale.to_string(), "--seed", &seed.to_string()])
            .arg(dir)
            .output()
            .expect("running touchstone gen");
        assert!(output.status.success(), "touchstone gen failed:\n{}", text(&output.stderr));
        let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("reading generated file");
        let dataset = Dataset::from_files(&read("config.json"), &read("messages.jsonl"), &read("records.jsonl"))
            .expect("generated files load");
        Generated { dir: dir.to_owned(), reference: evaluate(&dataset) }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.join(name).to_string_lossy().into_owned()
    }

    /// The three reports of a tenant from the reference, as the CLI prints them.
    pub fn expected(&self, kind: &str, tenant: &str, from: Option<i64>, to: Option<i64>) -> serde_json::Value {
        match kind {
            "campaigns" => self.reference.campaigns_json(tenant, from, to),
            "messages" => self.reference.messages_json(tenant, from, to),
            "goals" => self.reference.goals_json(tenant, from, to),
            "models" => self.reference.models_json(tenant, from, to),
            other => panic!("no report {other}"),
        }
    }
}

/// Ranges that cut through hours and days, for the generated data (2026-01-01 onward).
pub fn unaligned_ranges() -> Vec<(Option<i64>, Option<i64>)> {
    const BASE: i64 = 1_767_225_600_000;
    const HOUR: i64 = 3_600_000;
    const DAY: i64 = 24 * HOUR;
    vec![
        (None, None),
        (Some(BASE + 3 * DAY + 5 * HOUR + 1_234), Some(BASE + 17 * DAY + 13 * HOUR + 59_999)),
        (Some(BASE + 10 * DAY - 1), Some(BASE + 10 * DAY + 1)),
        (Some(BASE + 20 * DAY + 30 * 60_000), None),
        (None, Some(BASE + 40 * DAY + 7)),
        (Some(BASE + 2 * DAY + 17), Some(BASE + 2 * DAY + HOUR - 3)),
    ]
}

/// Every report of every tenant of `data`, over the whole period and unaligned ranges, as
/// `server` prints it, equals the reference.
pub fn assert_reports_match(server: &Server, data: &Generated) {
    for tenant in data.reference.tenants() {
        for (from, to) in unaligned_ranges() {
            for kind in ["campaigns", "messages", "goals", "models"] {
                let actual = server.report(kind, tenant, from, to);
                let expected = data.expected(kind, tenant, from, to);
                assert!(
                    actual == expected,
                    "report {kind} of {tenant} over {from:?}..{to:?} differs from the reference\nactual:   {actual}\nexpected: {expected}"
                );
            }
        }
        // Campaign and message reports under every other model, over all time and a range
        // that cuts through days.
        for (from, to) in [(None, None), unaligned_ranges()[1]] {
            for model in ["first_touch", "linear", "position_based", "time_decay"] {
                for (kind, by_message) in [("campaigns", false), ("messages", true)] {
                    let mut args = vec!["report".to_owned(), kind.into(), "--tenant".into(), tenant.into(), "--model".into(), model.into()];
                    args.extend(["--format".into(), "json".into()]);
                    args.extend(from.iter().flat_map(|from| ["--from".to_owned(), from.to_string()]));
                    args.extend(to.iter().flat_map(|to| ["--to".to_owned(), to.to_string()]));
                    let args: Vec<&str> = args.iter().map(String::as_str).collect();
                    let out = server.cli_ok(&args);
                    let actual: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|err| panic!("report {kind} --model {model} is not JSON ({err}):\n{out}"));
                    let expected = data.reference.stats_json_under(tenant, from, to, model, by_message);
                    assert!(actual == expected, "report {kind} --model {model} of {tenant} over {from:?}..{to:?} differs from the reference\nactual:   {actual}\nexpected: {expected}");
                }
            }
        }
        assert_lift_matches(server, data, tenant);
    }
}

/// `report lift` of every campaign of the tenant, for every goal, over all time and over a
/// range that cuts through days, equals the reference's: counts exactly, figures to 1e-9
/// (relative to their size when above 1).
pub fn assert_lift_matches(server: &Server, data: &Generated, tenant: &str) {
    let goals: Vec<String> = data.reference.config(tenant).goals.iter().map(|goal| goal.id.clone()).collect();
    let mut with_both_groups = 0;
    for campaign_id in data.reference.campaign_ids(tenant) {
        for goal_id in &goals {
            for (from, to) in [(None, None), unaligned_ranges()[1]] {
                let mut args = vec!["report".to_owned(), "lift".into(), "--tenant".into(), tenant.into(), "--campaign".into(), campaign_id.clone()];
                args.extend(["--goal".into(), goal_id.clone(), "--format".into(), "json".into()]);
                args.extend(from.iter().flat_map(|from| ["--from".to_owned(), from.to_string()]));
                args.extend(to.iter().flat_map(|to| ["--to".to_owned(), to.to_string()]));
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                let out = server.cli_ok(&args);
                let actual: serde_json::Value = serde_json::from_str(&out).unwrap_or_else(|err| panic!("report lift is not JSON ({err}):\n{out}"));
                let expected = data.reference.lift_json(tenant, &campaign_id, goal_id, from, to);
                assert!(
                    close_json(&actual, &expected),
                    "report lift of {tenant} {campaign_id} {goal_id} over {from:?}..{to:?} differs from the reference\nactual:   {actual}\nexpected: {expected}"
                );
                with_both_groups += usize::from(actual["p_value"].is_f64());
            }
        }
    }
    assert!(with_both_groups > 0, "no campaign of {tenant} has a lift with both groups and conversions: the comparison would prove little");
}

/// JSON equal but for floating-point figures, which may differ by 1e-9 (relative above 1).
fn close_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Object(a), Value::Object(b)) => a.len() == b.len() && a.iter().all(|(key, value)| b.get(key).is_some_and(|other| close_json(value, other))),
        (Value::Number(x), Value::Number(y)) if x.is_f64() || y.is_f64() => match (x.as_f64(), y.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => false,
        },
        _ => a == b,
    }
}

/// The badge side of a generated dataset: what the server was sent, first arrivals only.
struct BadgeInputs {
    /// Per (tenant, customer): stored badge events and the app events and orders rules count.
    customers: std::collections::BTreeMap<(String, String), (Vec<BadgeEvent>, Vec<Record>)>,
}

impl BadgeInputs {
    fn read(data: &Generated) -> BadgeInputs {
        let text = std::fs::read_to_string(data.dir.join("records.jsonl")).expect("reading records.jsonl");
        let mut seen = std::collections::HashSet::new();
        let mut customers: std::collections::BTreeMap<(String, String), (Vec<BadgeEvent>, Vec<Record>)> = Default::default();
        for line in text.lines().filter(|line| !line.trim().is_empty()) {
            let Ok(record) = parse_record(line) else { continue };
            if validate(&record).is_err() || !seen.insert((record.tenant().to_owned(), record.id().to_owned())) {
                continue;
            }
            let key = |customer: &str| (record.tenant().to_owned(), customer.to_owned());
            match &record {
                Record::Badge(b) => customers.entry(key(&b.customer_id)).or_default().0.push(b.clone()),
                Record::Event(e) => customers.entry(key(&e.customer_id)).or_default().1.push(record.clone()),
                Record::Order(o) => customers.entry(key(&o.customer_id)).or_default().1.push(record.clone()),
                Record::Message(_) | Record::Touch(_) => {}
            }
        }
        BadgeInputs { customers }
    }
}

/// The tenant's badge definitions as the server holds them, with the server-set times.
async fn badge_definitions(channel: &tonic::transport::Channel, tenant: &str) -> Vec<BadgeDefinition> {
    let mut config = ConfigServiceClient::new(channel.clone());
    let reply = config.list_badges(pb::ListBadgesRequest { tenant: tenant.to_owned() }).await.expect("ListBadges").into_inner();
    reply
        .badges
        .into_iter()
        .map(|badge| {
            let (rule_saved_at, inactive_since) = (badge.rule_saved_at, badge.inactive_since);
            BadgeDefinition { rule_saved_at, inactive_since, ..BadgeDefinition::try_from(badge).expect("a valid definition") }
        })
        .collect()
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock after 1970");
    i64::try_from(since_epoch.as_millis()).expect("ms fit i64")
}

/// Every customer's badge timeline (paged 7 at a time) and trophy case from `server` equal
/// the brute-force reference of docs/behaviour/badges.md (`touchstone_core::reference_badges`) over
/// what the dataset sent; every fifth customer also through the CLI's JSON. Definitions
/// and currencies are read from `config_server` (the same process in `dev`).
pub fn assert_badges_match(server: &Server, config_server: &Server, data: &Generated) {
    let inputs = BadgeInputs::read(data);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let mut checked = (0usize, 0usize);
    runtime.block_on(async {
        let mut query = QueryServiceClient::new(server.channel().await);
        let channel = config_server.channel().await;
        let mut config = ConfigServiceClient::new(channel.clone());
        let mut definitions = std::collections::BTreeMap::new();
        for (index, ((tenant, customer), (stored, activity))) in inputs.customers.iter().enumerate() {
            if !definitions.contains_key(tenant) {
                let currency =
                    config.get_config(pb::GetConfigRequest { tenant: tenant.clone() }).await.expect("GetConfig").into_inner().currency;
                definitions.insert(tenant.clone(), (badge_definitions(&channel, tenant).await, currency));
            }
            let (badges, currency) = &definitions[tenant];
            let mut entries = Vec::new();
            let mut page_token = String::new();
            loop {
                let request = pb::BadgeTimelineRequest {
                    tenant: tenant.clone(),
                    customer_id: customer.clone(),
                    page_size: 7,
                    page_token: page_token.clone(),
                    ..Default::default()
                };
                let page = query.get_badge_timeline(request).await.expect("GetBadgeTimeline").into_inner();
                entries.extend(page.entries);
                if page.next_page_token.is_empty() {
                    break;
                }
                page_token = page.next_page_token;
            }
            let case = query
                .get_trophy_case(pb::TrophyCaseRequest { tenant: tenant.clone(), customer_id: customer.clone() })
                .await
                .expect("GetTrophyCase")
                .into_inner();
            // The generated data lies months before now: nothing changes between the call and here.
            let now = now_ms();
            let expected = reference_badges::timeline(badges, currency, stored, activity, now);
            let expected_pb: Vec<pb::BadgeTimelineEntry> = expected.iter().cloned().map(Into::into).collect();
            assert_eq!(entries, expected_pb, "badge timeline of {tenant}/{customer}");
            let mut expected_case: pb::TrophyCase = reference_badges::trophy_case(badges, currency, stored, activity, now).into();
            // A spend rule's progress names the currency its minor units are of.
            for locked in &mut expected_case.locked {
                let spend = badges.iter().find(|b| b.id == locked.badge_id).and_then(|b| b.rule.as_ref()).is_some_and(|r| matches!(r.kind, RuleKind::Spend { .. }));
                if let Some(progress) = locked.progress.as_mut().filter(|_| spend) {
                    progress.currency = currency.to_owned();
                }
            }
            assert_eq!(case, expected_case, "trophy case of {tenant}/{customer}");
            checked.0 += expected.len();
            checked.1 += 1;
            if index % 5 == 0 {
                let args = ["badges", "timeline", "--tenant", tenant, "--customer", customer, "--format", "json"];
                let json: serde_json::Value = serde_json::from_str(&server.cli_ok(&args)).expect("timeline JSON");
                let want: Vec<serde_json::Value> = expected
                    .iter()
                    .map(|e| {
                        serde_json::json!({"event_id": e.event_id, "badge_id": e.badge_id, "action": e.action.as_str(),
                                           "ts": e.ts, "source": e.source.as_str(), "reason": e.reason})
                    })
                    .collect();
                assert_eq!(json, serde_json::Value::Array(want), "CLI timeline of {tenant}/{customer}");
                let args = ["badges", "trophy-case", "--tenant", tenant, "--customer", customer, "--format", "json"];
                let json: serde_json::Value = serde_json::from_str(&server.cli_ok(&args)).expect("trophy case JSON");
                assert_eq!(json["held"].as_array().map(Vec::len), Some(case.held.len()), "CLI trophy case of {tenant}/{customer}");
                assert_eq!(json["locked"].as_array().map(Vec::len), Some(case.locked.len()));
            }
        }
        for (tenant, (badges, currency)) in &definitions {
            assert_badge_stats_match(&mut query, tenant, badges, currency, &inputs).await;
        }
    });
    assert!(checked.0 > 0 && checked.1 > 0, "no badge entries were compared");
}

/// Each badge's `GetBadgeStats` over the data's whole span and over a range cut mid-day
/// equals counting the reference's timelines (every entry, expiries ahead of now too) and
/// trophy cases customer by customer.
async fn assert_badge_stats_match(
    query: &mut QueryServiceClient<tonic::transport::Channel>,
    tenant: &str,
    badges: &[BadgeDefinition],
    currency: &str,
    inputs: &BadgeInputs,
) {
    const DAY: i64 = 86_400_000;
    let customers: Vec<&(Vec<BadgeEvent>, Vec<Record>)> =
        inputs.customers.iter().filter(|((t, _), _)| t == tenant).map(|(_, customer)| customer).collect();
    let everything: Vec<_> = customers.iter().flat_map(|(stored, activity)| reference_badges::timeline(badges, currency, stored, activity, i64::MAX)).collect();
    let (Some(first), Some(last)) = (everything.iter().map(|e| e.ts).min(), everything.iter().map(|e| e.ts).max()) else { return };
    let badge_ids: std::collections::BTreeSet<&str> = everything.iter().map(|e| e.badge_id.as_str()).collect();
    let whole = (first - first.rem_euclid(DAY), last + 2 * DAY - last.rem_euclid(DAY));
    let cut = (first + (last - first) / 3 + 12_345, last - (last - first) / 4 + 1);
    for badge_id in badge_ids {
        for (from, to) in [whole, cut] {
            let request = pb::BadgeStatsRequest {
                tenant: tenant.to_owned(),
                badge_id: badge_id.to_owned(),
                range: Some(pb::TimeRange { from_ms: Some(from), to_ms: Some(to) }),
            };
            let stats = query.get_badge_stats(request).await.expect("GetBadgeStats").into_inner();
            let count = |action: touchstone_core::model::BadgeAction, from: i64, to: i64| {
                everything.iter().filter(|e| e.badge_id == badge_id && e.action == action && from <= e.ts && e.ts < to).count() as i64
            };
            let holders = |at: i64| {
                customers
                    .iter()
                    .filter(|(stored, activity)| {
                        reference_badges::trophy_case(badges, currency, stored, activity, at).held.iter().any(|h| h.badge_id == badge_id)
                    })
                    .count() as i64
            };
            use touchstone_core::model::BadgeAction::{Earned, Expired, Revoked};
            let what = format!("badge stats of {tenant}/{badge_id} over [{from}, {to})");
            assert_eq!((stats.earned, stats.revoked, stats.expired), (count(Earned, from, to), count(Revoked, from, to), count(Expired, from, to)), "{what}");
            assert_eq!(stats.holders_now, holders(stats.now_ms), "{what}: holders now");
            let days = (from - from.rem_euclid(DAY)..to).step_by(DAY as usize);
            assert_eq!(stats.days.len(), days.clone().count(), "{what}: days");
            for (day, start) in stats.days.iter().zip(days) {
                let (lo, hi) = (from.max(start), to.min(start + DAY));
                assert_eq!((day.day_ms, day.earned, day.revoked, day.expired), (start, count(Earned, lo, hi), count(Revoked, lo, hi), count(Expired, lo, hi)), "{what}: day {}", day.date);
            }
            let end = stats.days.last().expect("a day at least");
            assert_eq!(end.holders_at_end, holders(to - 1), "{what}: holders at the end");
        }
    }
}

/// A CA and a certificate it signs for 127.0.0.1, made by openssl as an operator would.
pub fn certificates(dir: &Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    let (ca, ca_key, cert, key, csr, ext) = (path("ca.pem"), path("ca.key"), path("cert.pem"), path("key.pem"), path("server.csr"), path("ext.cnf"));
    std::fs::write(&ext, "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n").unwrap();
    let openssl = |args: &[&str]| {
        let made = Command::new("openssl").args(args).output().expect("openssl (the Debian package; .ci/run installs it)");
        assert!(made.status.success(), "openssl {args:?}: {}", text(&made.stderr));
    };
    openssl(&["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=touchstone test CA", "-keyout", &ca_key, "-out", &ca]);
    openssl(&["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", &key, "-out", &csr]);
    openssl(&["x509", "-req", "-in", &csr, "-CA", &ca, "-CAkey", &ca_key, "-CAcreateserial", "-days", "1", "-extfile", &ext, "-out", &cert]);
    (ca, cert, key)
}

/// A new API key of `tenant` with every scope, written to `keys_file` by `touchstone keys
/// create` (which prints the key alone).
pub fn create_key(keys_file: &str, tenant: &str) -> String {
    let created = touchstone(["keys", "create", "--keys-file", keys_file, "--tenant", tenant, "--scopes", "ingest,query,admin"]);
    assert!(created.status.success(), "touchstone keys create: {}", text(&created.stderr));
    let key = text(&created.stdout).trim().to_owned();
    assert!(key.starts_with("tsk_"), "{key}");
    key
}
