//! What the query and console benchmarks ask about, read from the query dataset's files:
//! per tenant its campaigns, orders that reached a goal status, customers with badge events
//! or activity, and badges; and the span of the data. The query benchmark reads it and hands
//! it on to the console's.

use crate::BenchResult;
use crate::datasets::Dataset;
use std::collections::BTreeMap;
use std::io::BufRead;

/// What queries can be asked about: per tenant, its campaigns and orders.
pub struct Targets {
    pub tenants: Vec<TenantTargets>,
    pub from: i64,
    pub to: i64,
}

#[derive(Clone)]
pub struct TenantTargets {
    pub tenant: String,
    pub campaigns: Vec<String>,
    pub order_ids: Vec<String>,
    /// Customers with badge events.
    pub badge_customers: Vec<String>,
    /// Customers with app events or orders (what badge rules count).
    pub active_customers: Vec<String>,
    /// Badges with badge events.
    pub badge_ids: Vec<String>,
}

/// Tenants with their campaigns (from `messages.jsonl`) and orders that reached a goal
/// status (from `records.jsonl`), and the span of the data.
pub fn read(data: &Dataset) -> BenchResult<Targets> {
    let mut by_tenant: BTreeMap<String, TenantTargets> = BTreeMap::new();
    let mut registered: std::collections::HashSet<(String, String)> = std::collections::HashSet::new();
    // Orders convert for the default goal only in the tenant's currency: explain those.
    let config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(data.dir.join("config.json"))?)?;
    let currency = |tenant: &str| config["tenants"][tenant]["currency"].as_str().unwrap_or(touchstone_core::config::DEFAULT_CURRENCY).to_owned();
    let (mut from, mut to) = (i64::MAX, i64::MIN);
    for line in std::io::BufReader::new(std::fs::File::open(data.dir.join("messages.jsonl"))?).lines() {
        let message: serde_json::Value = serde_json::from_str(&line?)?;
        let (Some(tenant), Some(campaign)) = (message["tenant"].as_str(), message["campaign_id"].as_str()) else { continue };
        // The first registration of a message stands: a campaign named only by a later one
        // (the generator re-registers a message under another campaign) does not exist.
        let first = registered.insert((tenant.to_owned(), message["msg_hash"].as_str().unwrap_or_default().to_owned()));
        if campaign.is_empty() || !first {
            continue;
        }
        let targets = by_tenant.entry(tenant.to_owned()).or_insert_with(|| TenantTargets::new(tenant));
        if !targets.campaigns.iter().any(|c| c == campaign) {
            targets.campaigns.push(campaign.to_owned());
        }
    }
    for line in std::io::BufReader::new(std::fs::File::open(data.dir.join("records.jsonl"))?).lines() {
        let record: serde_json::Value = serde_json::from_str(&line?)?;
        if let Some(ts) = record["ts"].as_i64() {
            (from, to) = (from.min(ts), to.max(ts + 1));
        }
        if let (Some(tenant), Some(customer)) = (record["tenant"].as_str(), record["customer_id"].as_str())
            && let Some(targets) = by_tenant.get_mut(tenant)
        {
            match record["type"].as_str() {
                Some("badge") => {
                    targets.badge_customers.push(customer.to_owned());
                    if let Some(badge_id) = record["badge_id"].as_str() {
                        targets.badge_ids.push(badge_id.to_owned());
                    }
                }
                Some("event" | "order") => targets.active_customers.push(customer.to_owned()),
                _ => {}
            }
        }
        let paid = matches!(record["status"].as_str(), Some("PLACED" | "PAID" | "DELIVERED"));
        if record["type"] == "order"
            && paid
            && let (Some(tenant), Some(order_id)) = (record["tenant"].as_str(), record["order_id"].as_str())
            && record["currency"].as_str() == Some(currency(tenant).as_str())
            && let Some(targets) = by_tenant.get_mut(tenant)
        {
            targets.order_ids.push(order_id.to_owned());
        }
    }
    let tenants: Vec<TenantTargets> = by_tenant
        .into_values()
        .filter(|t| !t.campaigns.is_empty() && !t.order_ids.is_empty() && !t.badge_customers.is_empty())
        .map(|mut t| {
            for customers in [&mut t.badge_customers, &mut t.active_customers, &mut t.badge_ids] {
                customers.sort_unstable();
                customers.dedup();
            }
            t
        })
        .collect();
    if tenants.is_empty() || from >= to {
        return Err("the query dataset has no campaigns or orders".into());
    }
    Ok(Targets { tenants, from, to })
}

impl TenantTargets {
    fn new(tenant: &str) -> TenantTargets {
        TenantTargets {
            tenant: tenant.to_owned(),
            campaigns: Vec::new(),
            order_ids: Vec::new(),
            badge_customers: Vec::new(),
            badge_ids: Vec::new(),
            active_customers: Vec::new(),
        }
    }
}
