//! Query latency under concurrent clients, on a store holding a year of data for 1,000
//! campaigns: each kind of query is sent by every client in a loop for a fixed time, with
//! arguments drawn at random from what the store holds. Then the web console's pages on
//! the same store (`console.rs`), through the `--http` listener of the same `touchstone dev`.

use crate::BenchResult;
use crate::datasets::Dataset;
use crate::ingest::{self, Source};
use crate::latencies::Latencies;
use crate::query_targets::{self, Targets};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tonic::transport::Channel;
use touchstone_integration_tests::Server;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::ingest_service_client::IngestServiceClient;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

/// The query store's load, the query latencies and the console's pages.
pub struct QueryRun {
    pub loaded: ingest::IngestRun,
    pub queries: Vec<Latencies>,
    pub pages: Vec<Latencies>,
}

/// How the console's pages are fetched.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleLoad {
    pub clients: usize,
    pub requests: usize,
}

/// The customer given [`LONG_TIMELINE`] badge events before the badge queries, in the first tenant.
const LONG_TIMELINE_CUSTOMER: &str = "bench-long-timeline";
const LONG_TIMELINE: usize = 10_000;

pub async fn run(work: &Path, data: &Dataset, clients: usize, seconds: u64, console: ConsoleLoad) -> BenchResult<QueryRun> {
    let store = work.join("store-queries");
    let _ = std::fs::remove_dir_all(&store);
    let http = crate::console::free_address()?;
    let (store_arg, http_arg) = (store.to_string_lossy().into_owned(), http.to_string());
    let server = Server::start(&["dev", "--listen", "127.0.0.1:0", "--data-dir", &store_arg, "--http", &http_arg]);
    println!("building the query store: {} records ...", data.records);
    let loaded = ingest::load(&server, data, Source::Preloaded).await?;
    wait_until_idle(server.pid()).await;
    let targets = Arc::new(query_targets::read(data)?);
    let channel = server.channel().await;
    add_long_timeline(&channel, &targets.tenants[0].tenant).await?;
    let duration = Duration::from_secs(seconds);
    let mut results = Vec::new();
    for kind in Kind::ALL {
        println!("measuring {} with {clients} clients for {seconds} s ...", kind.name());
        results.push(measure(kind, &channel, &targets, clients, duration).await);
    }
    let long_timeline = (targets.tenants[0].tenant.clone(), LONG_TIMELINE_CUSTOMER.to_owned());
    let pages = crate::console::run(http, &channel, targets, long_timeline, console.clients, console.requests).await?;
    drop(server);
    let _ = std::fs::remove_dir_all(&store);
    Ok(QueryRun { loaded, queries: results, pages })
}

/// Waits (up to two minutes) until the server's CPU use stays under 5% of a core for a
/// second: the store compacts what the load wrote in the background for a while after
/// attribution caught up, and queries measured meanwhile share the cores with it.
async fn wait_until_idle(pid: u32) {
    // /proc/PID/stat counts CPU time in clock ticks, 100 a second on Linux.
    const TICKS_PER_SECOND: u64 = 100;
    let started = Instant::now();
    let mut last = cpu_ticks(pid);
    while started.elapsed() < Duration::from_secs(120) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_ticks(pid);
        let busy = now.zip(last).map(|(now, last)| now.saturating_sub(last));
        last = now;
        if busy.is_none_or(|ticks| ticks * 20 < TICKS_PER_SECOND) {
            break;
        }
    }
    println!("the server was idle {:.1} s after the load", started.elapsed().as_secs_f64());
}

/// User plus system CPU time of a process, in clock ticks.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces; fields after it are plain numbers.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    /// One campaign over the whole year.
    CampaignStatsYear,
    /// One campaign over 30 days starting at a random ms (edges cut through hours).
    CampaignStatsMonth,
    /// The campaign list of a tenant over the whole year.
    ListCampaigns,
    /// Every goal's KPIs of a tenant over the whole year.
    GoalKpis,
    /// Why one order was credited as it was.
    ExplainConversion,
    /// The first page (100 entries) of a customer's badge timeline.
    BadgeTimeline,
    /// The first page of the timeline of a customer with 10,000 badge events.
    LongBadgeTimeline,
    /// A customer's trophy case, with progress towards every rule badge.
    TrophyCase,
    /// A badge's figures per day over the whole year, and its holders now.
    BadgeStats,
    /// Every campaign's conversions and value under all five models over the year: what
    /// `ListCampaigns` gives for last touch alone.
    ModelReport,
    /// A campaign's lift over the year (reads the campaign's exposed customers).
    Lift,
}

impl Kind {
    const ALL: [Kind; 11] = [
        Kind::CampaignStatsYear,
        Kind::CampaignStatsMonth,
        Kind::ListCampaigns,
        Kind::GoalKpis,
        Kind::ExplainConversion,
        Kind::BadgeTimeline,
        Kind::LongBadgeTimeline,
        Kind::TrophyCase,
        Kind::BadgeStats,
        Kind::ModelReport,
        Kind::Lift,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::CampaignStatsYear => "GetCampaignStats (year)",
            Kind::CampaignStatsMonth => "GetCampaignStats (30 days, unaligned)",
            Kind::ListCampaigns => "ListCampaigns (year)",
            Kind::GoalKpis => "GoalKpis (year)",
            Kind::ExplainConversion => "ExplainConversion",
            Kind::BadgeTimeline => "GetBadgeTimeline (first page)",
            Kind::LongBadgeTimeline => "GetBadgeTimeline (10,000 events, first page)",
            Kind::TrophyCase => "GetTrophyCase",
            Kind::BadgeStats => "GetBadgeStats (year)",
            Kind::ModelReport => "GetModelReport (year, every campaign)",
            Kind::Lift => "GetLift (year)",
        }
    }

    async fn call(self, client: &mut QueryServiceClient<Channel>, targets: &Targets, rng: &mut SmallRng) -> Result<(), tonic::Status> {
        let tenant = &targets.tenants[rng.random_range(0..targets.tenants.len())];
        let year = Some(pb::TimeRange { from_ms: Some(targets.from), to_ms: Some(targets.to) });
        match self {
            Kind::CampaignStatsYear | Kind::CampaignStatsMonth => {
                let campaign_id = tenant.campaigns[rng.random_range(0..tenant.campaigns.len())].clone();
                let range = match self {
                    Kind::CampaignStatsYear => year,
                    _ => {
                        let month = 30 * 86_400_000;
                        let from = rng.random_range(targets.from..targets.to - month);
                        Some(pb::TimeRange { from_ms: Some(from), to_ms: Some(from + month) })
                    }
                };
                client.get_campaign_stats(pb::CampaignStatsRequest { tenant: tenant.tenant.clone(), campaign_id, range }).await?;
            }
            Kind::ListCampaigns => {
                client.list_campaigns(pb::ListCampaignsRequest { tenant: tenant.tenant.clone(), range: year }).await?;
            }
            Kind::GoalKpis => {
                client.get_goal_kpis(pb::GoalKpisRequest { tenant: tenant.tenant.clone(), range: year, goal_id: None, model: 0 }).await?;
            }
            Kind::ExplainConversion => {
                let conversion_key = tenant.order_ids[rng.random_range(0..tenant.order_ids.len())].clone();
                let request = pb::ExplainConversionRequest { tenant: tenant.tenant.clone(), goal_id: "orders".into(), conversion_key };
                client.explain_conversion(request).await?;
            }
            Kind::BadgeTimeline | Kind::LongBadgeTimeline => {
                let (tenant, customer_id) = match self {
                    Kind::LongBadgeTimeline => (targets.tenants[0].tenant.clone(), LONG_TIMELINE_CUSTOMER.to_owned()),
                    _ => (tenant.tenant.clone(), pick(&tenant.badge_customers, rng)),
                };
                let request = pb::BadgeTimelineRequest { tenant, customer_id, page_size: 100, ..Default::default() };
                client.get_badge_timeline(request).await?;
            }
            Kind::TrophyCase => {
                let customer_id = pick(&tenant.active_customers, rng);
                client.get_trophy_case(pb::TrophyCaseRequest { tenant: tenant.tenant.clone(), customer_id }).await?;
            }
            Kind::BadgeStats => {
                let badge_id = pick(&tenant.badge_ids, rng);
                client.get_badge_stats(pb::BadgeStatsRequest { tenant: tenant.tenant.clone(), badge_id, range: year }).await?;
            }
            Kind::ModelReport => {
                client.get_model_report(pb::ModelReportRequest { tenant: tenant.tenant.clone(), range: year, goal_id: None, by_message: false, campaign_id: None }).await?;
            }
            Kind::Lift => {
                let campaign_id = tenant.campaigns[rng.random_range(0..tenant.campaigns.len())].clone();
                client.get_lift(pb::LiftRequest { tenant: tenant.tenant.clone(), campaign_id, goal_id: None, range: year }).await?;
            }
        }
        Ok(())
    }
}

fn pick(items: &[String], rng: &mut SmallRng) -> String {
    items.get(rng.random_range(0..items.len().max(1))).cloned().unwrap_or_default()
}

/// Gives one customer [`LONG_TIMELINE`] badge events (a long-standing member migrated from
/// another system), in chunks of 5,000 on one stream.
async fn add_long_timeline(channel: &Channel, tenant: &str) -> BenchResult<()> {
    let mut ingest = IngestServiceClient::new(channel.clone());
    let events: Vec<pb::BadgeEvent> = (0..LONG_TIMELINE)
        .map(|i| pb::BadgeEvent {
            tenant: tenant.to_owned(),
            event_id: format!("long-{i}"),
            customer_id: LONG_TIMELINE_CUSTOMER.to_owned(),
            badge_id: format!("legacy-{}", i % 40),
            action: if i % 9 == 8 { pb::BadgeAction::Revoked } else { pb::BadgeAction::Earned }.into(),
            ts: 1_704_067_200_000 + i as i64 * 3_600_000,
            source: pb::BadgeSource::Migration.into(),
            reason: Some("migrated".into()),
        })
        .collect();
    // History from another system is records (badges without definitions here included),
    // not badges issued now: the record stream takes it as it was.
    let chunks: Vec<pb::IngestChunk> = events
        .chunks(5_000)
        .map(|badges| pb::IngestChunk {
            records: badges.iter().map(|badge| pb::Record { kind: Some(pb::record::Kind::Badge(badge.clone())) }).collect(),
        })
        .collect();
    ingest.ingest_stream(tokio_stream::iter(chunks)).await?;
    Ok(())
}

async fn measure(kind: Kind, channel: &Channel, targets: &Arc<Targets>, clients: usize, duration: Duration) -> Latencies {
    let deadline = Instant::now() + duration;
    let mut tasks = Vec::with_capacity(clients);
    for client_index in 0..clients {
        let mut client = QueryServiceClient::new(channel.clone());
        let targets = targets.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(client_index as u64);
            let (mut times, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let started = Instant::now();
                match kind.call(&mut client, &targets, &mut rng).await {
                    Ok(()) => times.push(started.elapsed()),
                    // NotFound: an order that converted to no goal; anything else is counted too.
                    Err(_) => errors += 1,
                }
            }
            (times, errors)
        }));
    }
    Latencies::gather(kind.name(), tasks).await
}

