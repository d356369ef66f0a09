//! The web console's pages (the console's target: server time p95 under 50 ms on the year dataset),
//! timed as plain HTTP GETs against the `--http` listener of the `touchstone dev` that holds
//! the query store: each page type is fetched a fixed number of times by a few concurrent
//! clients, with a tenant, range, campaign, order or customer drawn at random from the data.
//!
//! The client is a bare `GET ... HTTP/1.1` with `Connection: close` on a fresh loopback TCP
//! connection, read to EOF: the time is the client's, from connect to the last byte, so it is
//! the server's time plus a loopback connect (tens of microseconds). Only a `200` counts.

use crate::BenchResult;
use crate::latencies::Latencies;
use crate::query_targets::{Targets, TenantTargets};
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tonic::transport::Channel;
use touchstone_proto::v1 as pb;
use touchstone_proto::v1::query_service_client::QueryServiceClient;

/// Days of the range a report page opens on (the console's default).
const MONTH_DAYS: i64 = 30;
/// Orders per tenant checked (by `ExplainConversion`) to be conversions before the run.
const ORDERS_CHECKED: usize = 40;

/// A free loopback address for `--http`.
pub fn free_address() -> BenchResult<SocketAddr> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?)
}

#[derive(Debug, Clone, Copy)]
enum Page {
    /// `/`: tenants and attribution status.
    Index,
    /// `/t/{tenant}/campaigns` without a range: the last 30 days holding the tenant's data.
    CampaignsDefault,
    /// `/t/{tenant}/campaigns?from&to`, 30 days at a random day.
    CampaignsMonth,
    /// `/t/{tenant}/campaigns?from&to`, the whole year.
    CampaignsYear,
    /// `/t/{tenant}/campaigns/{campaign_id}?from&to`, 30 days: the totals, the daily series, the messages.
    Campaign,
    /// `/t/{tenant}/campaigns/{campaign_id}?from=all`: all time, charted over its last 400 days.
    CampaignAllTime,
    /// `/t/{tenant}/goals?from&to&tz=UTC`, 30 days.
    GoalsMonth,
    /// `/t/{tenant}/goals?from&to&tz=UTC`, the whole year.
    GoalsYear,
    /// `/t/{tenant}/explain?goal=orders&key=ORDER_ID`, an order that converted.
    Explain,
    /// `/t/{tenant}/members?customer=CUSTOMER_ID`, a customer with badge events.
    Members,
    /// The same for the customer with 10,000 badge events.
    MembersLong,
    /// `/t/{tenant}/campaigns.csv?from&to`, 30 days.
    CampaignsCsv,
}

/// The name of the all-time campaign page, which the console's target (a year) leaves out.
pub const ALL_TIME_PAGE: &str = "GET /t/T/campaigns/C (all time)";

impl Page {
    const ALL: [Page; 12] = [
        Page::Index,
        Page::CampaignsDefault,
        Page::CampaignsMonth,
        Page::CampaignsYear,
        Page::Campaign,
        Page::CampaignAllTime,
        Page::GoalsMonth,
        Page::GoalsYear,
        Page::Explain,
        Page::Members,
        Page::MembersLong,
        Page::CampaignsCsv,
    ];

    fn name(self) -> &'static str {
        match self {
            Page::Index => "GET / (tenants, status)",
            Page::CampaignsDefault => "GET /t/T/campaigns (default: last 30 days of data)",
            Page::CampaignsMonth => "GET /t/T/campaigns (30 days)",
            Page::CampaignsYear => "GET /t/T/campaigns (year)",
            Page::Campaign => "GET /t/T/campaigns/C (30 days)",
            Page::CampaignAllTime => ALL_TIME_PAGE,
            Page::GoalsMonth => "GET /t/T/goals (30 days, tz=UTC)",
            Page::GoalsYear => "GET /t/T/goals (year, tz=UTC)",
            Page::Explain => "GET /t/T/explain (a converted order)",
            Page::Members => "GET /t/T/members (a customer with badge events)",
            Page::MembersLong => "GET /t/T/members (10,000-event customer)",
            Page::CampaignsCsv => "GET /t/T/campaigns.csv (30 days)",
        }
    }

    /// The path and query of one request, drawn from the data.
    fn path(self, pages: &Pages, rng: &mut SmallRng) -> String {
        let tenant = &pages.targets.tenants[rng.random_range(0..pages.targets.tenants.len())];
        let t = encode(&tenant.tenant);
        let from = pages.first_day + rng.random_range(0..(pages.last_day - pages.first_day - (MONTH_DAYS - 1)).max(1));
        let month = format!("from={}&to={}", date(from), date(from + MONTH_DAYS - 1));
        let year = format!("from={}&to={}", date(pages.first_day), date(pages.last_day));
        let pick = |items: &[String], rng: &mut SmallRng| encode(&items[rng.random_range(0..items.len())]);
        match self {
            Page::Index => "/".to_owned(),
            Page::CampaignsDefault => format!("/t/{t}/campaigns"),
            Page::CampaignsMonth => format!("/t/{t}/campaigns?{month}"),
            Page::CampaignsYear => format!("/t/{t}/campaigns?{year}"),
            Page::Campaign => format!("/t/{t}/campaigns/{}?{month}", pick(&tenant.campaigns, rng)),
            Page::CampaignAllTime => format!("/t/{t}/campaigns/{}?from=all", pick(&tenant.campaigns, rng)),
            Page::GoalsMonth => format!("/t/{t}/goals?{month}&tz=UTC"),
            Page::GoalsYear => format!("/t/{t}/goals?{year}&tz=UTC"),
            Page::Explain => {
                let orders = &pages.converted[&tenant.tenant];
                format!("/t/{t}/explain?goal=orders&key={}", pick(orders, rng))
            }
            Page::Members => format!("/t/{t}/members?customer={}", pick(&tenant.badge_customers, rng)),
            Page::MembersLong => {
                let (tenant, customer) = &pages.long_timeline;
                format!("/t/{}/members?customer={}", encode(tenant), encode(customer))
            }
            Page::CampaignsCsv => format!("/t/{t}/campaigns.csv?{month}"),
        }
    }

    /// What a page must hold to count: the figures asked for, not an empty form or a problem.
    fn complete(self, body: &str) -> bool {
        match self {
            Page::Explain => body.contains("data-field=\"decision\""),
            Page::Members | Page::MembersLong => body.contains("data-event-id=\""),
            Page::Campaign | Page::CampaignAllTime => body.contains("<svg"),
            Page::CampaignsCsv => body.starts_with("campaign"),
            _ => body.contains("Touchstone"),
        }
    }
}

/// What the pages are asked about.
struct Pages {
    targets: Arc<Targets>,
    /// Per tenant, orders `ExplainConversion` explains as conversions of `orders`.
    converted: std::collections::HashMap<String, Vec<String>>,
    /// The tenant and customer with 10,000 badge events.
    long_timeline: (String, String),
    /// The first and last UTC days of the data, as days since 1970-01-01.
    first_day: i64,
    last_day: i64,
}

/// Every page type, `requests` GETs each by `clients` concurrent clients.
pub async fn run(
    address: SocketAddr,
    channel: &Channel,
    targets: Arc<Targets>,
    long_timeline: (String, String),
    clients: usize,
    requests: usize,
) -> BenchResult<Vec<Latencies>> {
    let day = |ms: i64| ms.div_euclid(86_400_000);
    let converted = converted_orders(channel, &targets.tenants).await?;
    let targets = Arc::new(Targets {
        tenants: targets.tenants.iter().filter(|t| converted.contains_key(&t.tenant)).cloned().collect(),
        from: targets.from,
        to: targets.to,
    });
    if targets.tenants.is_empty() {
        return Err("no tenant of the query dataset has an order ExplainConversion explains".into());
    }
    let pages = Arc::new(Pages { first_day: day(targets.from), last_day: day(targets.to - 1), targets, converted, long_timeline });
    let mut results = Vec::new();
    for page in Page::ALL {
        println!("measuring {} with {clients} clients, {requests} requests ...", page.name());
        results.push(measure(page, address, &pages, clients, requests).await);
    }
    Ok(results)
}

/// Up to [`ORDERS_CHECKED`] orders per tenant that convert (paid orders in the tenant's
/// currency may still fall outside every goal's filter).
async fn converted_orders(channel: &Channel, tenants: &[TenantTargets]) -> BenchResult<std::collections::HashMap<String, Vec<String>>> {
    let mut client = QueryServiceClient::new(channel.clone());
    let mut converted = std::collections::HashMap::new();
    for tenant in tenants {
        let step = (tenant.order_ids.len() / ORDERS_CHECKED).max(1);
        let mut orders = Vec::new();
        for order_id in tenant.order_ids.iter().step_by(step).take(ORDERS_CHECKED) {
            let request = pb::ExplainConversionRequest { tenant: tenant.tenant.clone(), goal_id: "orders".into(), conversion_key: order_id.clone() };
            if client.explain_conversion(request).await.is_ok() {
                orders.push(order_id.clone());
            }
        }
        if !orders.is_empty() {
            converted.insert(tenant.tenant.clone(), orders);
        }
    }
    Ok(converted)
}

async fn measure(page: Page, address: SocketAddr, pages: &Arc<Pages>, clients: usize, requests: usize) -> Latencies {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::with_capacity(clients);
    for client_index in 0..clients {
        let (pages, next) = (pages.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut rng = SmallRng::seed_from_u64(client_index as u64);
            let (mut times, mut errors) = (Vec::new(), 0usize);
            while next.fetch_add(1, Ordering::Relaxed) < requests {
                let path = page.path(&pages, &mut rng);
                let started = Instant::now();
                match get(address, &path).await {
                    Ok(body) if page.complete(&body) => times.push(started.elapsed()),
                    Ok(_) => {
                        errors += 1;
                        eprintln!("console: {path}: the page lacks what was asked for");
                    }
                    Err(err) => {
                        errors += 1;
                        eprintln!("console: {path}: {err}");
                    }
                }
            }
            (times, errors)
        }));
    }
    Latencies::gather(page.name(), tasks).await
}

/// One `GET` on a fresh connection; the body if the status is 200.
async fn get(address: SocketAddr, path: &str) -> BenchResult<String> {
    let mut stream = TcpStream::connect(address).await?;
    stream.set_nodelay(true)?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {address}\r\nAccept: text/html\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::with_capacity(64 * 1024);
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut response)).await??;
    let response = String::from_utf8_lossy(&response);
    let (head, body) = response.split_once("\r\n\r\n").ok_or("no end of headers")?;
    let status = head.lines().next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 200 ") {
        return Err(format!("{status}: {}", body.chars().take(200).collect::<String>()).into());
    }
    // A chunked body keeps its chunk sizes: the pages are checked for markers only.
    Ok(body.to_owned())
}

/// `YYYY-MM-DD` of a day counted from 1970-01-01 (proleptic Gregorian; H. Hinnant's civil_from_days).
fn date(days: i64) -> String {
    let z = days + 719_468;
    let (era, doe) = (z.div_euclid(146_097), z.rem_euclid(146_097));
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// A path segment or query value, percent-encoded (unreserved characters kept).
fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_percent_encoded() {
        assert_eq!(encode("acme-shop"), "acme-shop");
        assert_eq!(encode("spring sale/2026"), "spring%20sale%2F2026");
        assert_eq!(encode("é"), "%C3%A9");
    }

    #[test]
    fn days_are_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(19_782), "2024-02-29");
        assert_eq!(date(1_795_381_133_475_i64.div_euclid(86_400_000)), "2026-11-22");
        assert_eq!(date(-1), "1969-12-31");
    }
}
