//! One attribution step: read a batch of the ingest log, fold it into the stored order and
//! customer states ([`fold`](crate::fold)), and commit what changed (conversion rows, the
//! states, rollup deltas, derived badge entries) together with the new log position.
//!
//! Why this is exact:
//! - Every conversion is a function of the tenant's records and config (docs/behaviour/attribution.md).
//!   The fold keeps, per order and per customer, exactly what that function reads (status
//!   records; touches and credited conversions by month), and is checked against the
//!   brute-force reference on shuffled input (`touchstone_core::fold`'s property test, and
//!   this crate's `matches_reference`).
//! - The states, the conversion rows and the position are one commit: a crash redoes a step
//!   whole or not at all, and folding a record again changes nothing.
//! - A config change appends a `Recompute` entry, which folds every state of the tenant
//!   again under the new config.
//! - Touch and event-hit counters come from log entries only, and the commit that adds them
//!   also moves the position past those entries.
//! - Campaign counters are the message counters under each message's campaign. Those of a
//!   message not registered when its records are counted are kept pending by message; its
//!   registration entry moves them to its campaign. The step looks messages up after
//!   reading its batch, so a registration whose entry is in the batch (or later) is either
//!   seen by the lookup or finds the pending counters committed before it. The same holds
//!   for credit: a customer folded while a message was unregistered is marked under it, and
//!   its registration entry re-credits the customers marked.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use touchstone_core::config::TenantConfig;
use touchstone_core::model::{Millis, Record};
use touchstone_core::model::Message;
use touchstone_core::rollup::{self, CampaignCell, Cell, Granularity, Tally};
use crate::AttributionStore;
use crate::fold;
use touchstone_store::{
    AttributionCommit, CampaignDelta, Lane, LogEntry, LogPayload, PendingDelta, RollupDelta,
    SetAside, StoreError, TraceParent, customer_lane,
};

/// Log entries read and committed per step on the embedded store, at most (a step takes
/// what is there): large enough to amortise the commit's read-modify-writes of counter
/// rows and the batched reads, small enough to keep one step's memory and latency modest.
/// Measured on 1M records: 4,000 gave 13.3 store operations and 78 µs of CPU a record, 20,000 12.7 and
/// 68 µs, 60,000 no better than 20,000 and 35 MiB more RSS.
pub const DEFAULT_BATCH: usize = 20_000;

/// The step size of workers on ScyllaDB / Cassandra, where a step's reads and writes are
/// requests over the network, batched per partition: a larger step shares more partitions
/// among its records. Measured on 200k records (2 workers): 4,000 cost 4.40 CQL requests a
/// record, 20,000 3.38.
pub const CQL_BATCH: usize = 20_000;

/// What a step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StepOutcome {
    pub lane: Lane,
    /// The lane's log position now processed.
    pub processed: u64,
    pub entries: usize,
    pub conversions_changed: usize,
}

/// Sets aside the next entry of `lane` (after its processed position) instead of
/// processing it, recording `reason`: for an entry the worker failed on again and again,
/// alone, so that it cannot stall its lane. `None` when there is no next entry.
/// [`StoreError::Fenced`] when another worker committed the lane meanwhile.
pub async fn set_aside_next(store: &dyn AttributionStore, lane: Lane, reason: String) -> touchstone_store::Result<Option<u64>> {
    let after = store.resume_lane(lane).await?;
    let Some(entry) = store.read_log(lane.shard, after, 1).await?.into_iter().next() else {
        return Ok(None);
    };
    let seq = entry.seq;
    tracing::error!(shard = lane.shard, lane = lane.index, seq, entry = %describe(&entry.payload), %reason, "log entry set aside");
    let set_aside = SetAside { entry, reason, set_aside_at: now_ms() };
    let (shard, lane) = (lane.shard, lane.index);
    let commit = AttributionCommit { shard, lane, after, processed: seq, set_aside: vec![set_aside], ..AttributionCommit::default() };
    store.commit_attribution(commit).await?;
    Ok(Some(seq))
}

/// What a log entry is, in a line for logs and status replies (ids cut short).
pub fn describe(payload: &LogPayload) -> String {
    fn short(id: &str) -> String {
        const MAX: usize = 64;
        match id.char_indices().nth(MAX) {
            Some((end, _)) => format!("{}… ({} bytes)", &id[..end], id.len()),
            None => id.to_owned(),
        }
    }
    match payload {
        LogPayload::Record(record) => {
            let kind = match record {
                Record::Message(_) => "message",
                Record::Touch(_) => "touch",
                Record::Event(_) => "app event",
                Record::Order(_) => "order record",
                Record::Badge(_) => "badge event",
            };
            format!("{kind} {} of tenant {}", short(record.id()), short(record.tenant()))
        }
        LogPayload::Recompute { tenant } => format!("recompute of tenant {}", short(tenant)),
        LogPayload::RederiveBadges { tenant } => format!("badge rederive of tenant {}", short(tenant)),
        LogPayload::Nothing => "an empty position".to_owned(),
    }
}

/// Most traces one step's span links to: a step of records from many traced calls links
/// the first ones (a span with thousands of links helps no one).
const MAX_STEP_LINKS: usize = 32;

/// Links the current step's span to the traces of the ingest calls that appended its
/// entries (OpenTelemetry span links: one step serves many calls, so they are links, not
/// parents), and records their trace ids as the span's `traces` field, for logs.
fn link_ingest_traces(entries: &[LogEntry]) {
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let mut traces: Vec<TraceParent> = Vec::new();
    for trace in entries.iter().filter_map(|entry| entry.trace) {
        if traces.len() == MAX_STEP_LINKS {
            break;
        }
        if !traces.contains(&trace) {
            traces.push(trace);
        }
    }
    if traces.is_empty() {
        return;
    }
    let span = tracing::Span::current();
    let mut ids = Vec::with_capacity(traces.len());
    for trace in traces {
        let trace_id = TraceId::from_bytes(trace.trace_id);
        ids.push(trace_id.to_string());
        let flags = TraceFlags::new(trace.flags);
        span.add_link(SpanContext::new(trace_id, SpanId::from_bytes(trace.span_id), flags, true, TraceState::default()));
    }
    ids.dedup();
    span.record("traces", ids.join(",").as_str());
}

/// The worker's clock, epoch ms: set-aside times and lag reporting.
pub(crate) fn now_ms() -> Millis {
    chrono::Utc::now().timestamp_millis()
}

/// Processes up to `batch` entries of one lane of a log shard after the lane's processed
/// position. `None` when there was nothing to do. [`StoreError::Fenced`] when another
/// worker committed the lane meanwhile: the step is then discarded.
pub async fn step(store: &dyn AttributionStore, lane: Lane, batch: usize) -> touchstone_store::Result<Option<StepOutcome>> {
    let after = store.resume_lane(lane).await?;
    let entries = store.read_log(lane.shard, after, batch).await?;
    if entries.is_empty() {
        return Ok(None);
    }
    process(store, lane, after, entries).await.map(Some)
}

/// Which of a shard's lanes a step is, of how many: what it processes of the entries it
/// reads (all of them with one lane).
///
/// - A touch, app event or badge event: the lane of its customer ([`customer_lane`]).
/// - An order status record: every lane folds it into its copy of the order, whose facts
///   go to the customers of each lane; its customer's lane counts it (the records read by
///   time, badge activity).
/// - A message registration, `Recompute`, `RederiveBadges`: every lane, for its customers;
///   lane 0 counts the message sent.
#[derive(Debug, Clone, Copy)]
pub struct Lanes {
    pub index: u32,
    pub count: u32,
}

impl Lanes {
    /// Whether the customer's records, state and credit are this lane's.
    pub fn owns(self, customer_id: &str) -> bool {
        self.count <= 1 || customer_lane(customer_id, self.count) == self.index
    }

    /// Whether the lane counts a record itself (indexes it, counts it in rollups and badge
    /// activity): those of its customers, and every message in lane 0.
    pub fn counts(self, record: &Record) -> bool {
        match record {
            Record::Touch(touch) => self.owns(&touch.customer_id),
            Record::Event(event) => self.owns(&event.customer_id),
            Record::Order(order) => self.owns(&order.customer_id),
            Record::Badge(badge) => self.owns(&badge.customer_id),
            Record::Message(_) => self.counts_messages(),
        }
    }

    /// Lane 0 counts each message sent (every lane processes its registration).
    pub fn counts_messages(self) -> bool {
        self.index == 0
    }
}

/// One step over a non-empty batch (a span only when there is work, so an idle worker's
/// polling does not flood the traces). Reads are batched: a handful of store calls per
/// step, whatever its size, so a backend across the network pays round trips per step.
#[tracing::instrument(
    name = "attribution_step",
    skip_all,
    fields(shard = lane.shard, lane = lane.index, entries = entries.len(), traces = tracing::field::Empty)
)]
async fn process(store: &dyn AttributionStore, lane: Lane, after: u64, entries: Vec<LogEntry>) -> touchstone_store::Result<StepOutcome> {
    link_ingest_traces(&entries);
    let lanes = Lanes { index: lane.index, count: store.lanes() };
    let processed = entries.last().map_or(after, |last| last.seq);
    let configs = Configs::load(store, &entries).await?;
    // What the lane counts itself: the entries of other lanes' customers go (orders stay
    // for the fold, which keeps every lane's copy of them).
    let own: Vec<&LogEntry> = entries
        .iter()
        .filter(|entry| match &entry.payload {
            LogPayload::Record(record) => lanes.counts(record),
            _ => true,
        })
        .collect();

    let mut deltas = Deltas::default();
    for entry in &own {
        count(&mut deltas, entry);
    }
    let folded = fold::fold_step(store, &entries, lanes, |tenant| configs.get(tenant)).await?;
    let changes = folded.conversions;
    for (tenant, ts, cell, tally) in touchstone_core::fold::conversion_deltas(&changes) {
        deltas.add(tenant, ts, cell, tally);
    }
    let campaigns = CampaignDeltas::of(store, &entries, lanes, &deltas).await?;
    let currency = |tenant: &str| Ok(configs.get(tenant)?.currency.clone());
    let badges = crate::badges::derive(store, &own, processed, lanes, currency).await?;
    let outcome = StepOutcome { lane, processed, entries: entries.len(), conversions_changed: changes.len() };
    let records = own
        .into_iter()
        .filter_map(|entry| match &entry.payload {
            LogPayload::Record(record @ (Record::Touch(_) | Record::Event(_) | Record::Order(_) | Record::Badge(_))) => Some(record.clone()),
            _ => None,
        })
        .collect();
    let commit = AttributionCommit {
        shard: lane.shard,
        lane: lane.index,
        after,
        processed,
        conversions: changes,
        rollups: deltas.into_vec(),
        campaign_rollups: campaigns.campaign_deltas(),
        pending: campaigns.pending_deltas(),
        badge_rows: badges.rows,
        activity: badges.activity,
        badge_stats: badges.stats,
        holdings: badges.holdings,
        badge_feed: badges.feed,
        set_aside: Vec::new(),
        fold: folded.writes,
        records,
    };
    store.commit_attribution(commit).await?;
    Ok(outcome)
}

/// The configs of every tenant in a step, read once at its start.
struct Configs(HashMap<String, TenantConfig>);

impl Configs {
    async fn load(store: &dyn AttributionStore, entries: &[LogEntry]) -> touchstone_store::Result<Configs> {
        let tenants: BTreeSet<&str> = entries.iter().filter_map(|entry| entry.payload.tenant()).collect();
        let mut configs = HashMap::with_capacity(tenants.len());
        for tenant in tenants {
            configs.insert(tenant.to_owned(), store.tenant_config(tenant).await?);
        }
        Ok(Configs(configs))
    }

    fn get(&self, tenant: &str) -> touchstone_store::Result<&TenantConfig> {
        self.0
            .get(tenant)
            .ok_or_else(|| StoreError::Backend(format!("no config loaded for tenant {tenant:?}")))
    }
}

/// Rollup deltas summed per (tenant, hour, cell).
#[derive(Default)]
struct Deltas(HashMap<(String, Millis, Cell), Tally>);

impl Deltas {
    fn add(&mut self, tenant: &str, ts: Millis, cell: Cell, tally: Tally) {
        let hour = Granularity::Hour.bucket(ts);
        self.0.entry((tenant.to_owned(), hour, cell)).or_default().add(tally);
    }

    fn into_vec(self) -> Vec<RollupDelta> {
        self.0
            .into_iter()
            .filter(|(_, tally)| !tally.is_zero())
            .map(|((tenant, hour, cell), tally)| RollupDelta { tenant, hour, cell, tally })
            .collect()
    }
}

/// Per `(tenant, key, hour, cell)`: the key a campaign id or a `msg_hash`.
type CampaignSums = HashMap<(String, String, Millis, CampaignCell), Tally>;

/// The step's campaign counters (see the module docs): message deltas under their
/// message's campaign or pending by message, messages counted at their `sent_at`, and the
/// pending counters of messages registered in the step moved to their campaign.
#[derive(Default)]
struct CampaignDeltas {
    campaigns: CampaignSums,
    pending: CampaignSums,
}

impl CampaignDeltas {
    async fn of(store: &dyn AttributionStore, entries: &[LogEntry], lanes: Lanes, deltas: &Deltas) -> touchstone_store::Result<CampaignDeltas> {
        let registrations: Vec<&Message> = entries
            .iter()
            .filter_map(|entry| match &entry.payload {
                LogPayload::Record(Record::Message(message)) => Some(message),
                _ => None,
            })
            .collect();
        // Registered messages: those the step registers, and the stored ones.
        let mut wanted: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for (tenant, _, cell) in deltas.0.keys() {
            let msg_hash = cell.msg_hash();
            if !msg_hash.is_empty() {
                wanted.entry(tenant).or_default().insert(msg_hash);
            }
        }
        let mut registered: HashMap<(&str, &str), &str> = HashMap::new();
        let mut stored = Vec::new();
        for (tenant, hashes) in wanted {
            let hashes: Vec<String> = hashes.into_iter().map(str::to_owned).collect();
            stored.push((tenant, store.messages(tenant, &hashes).await?));
        }
        for (tenant, messages) in &stored {
            for message in messages.values() {
                registered.insert((tenant, &message.msg_hash), &message.campaign_id);
            }
        }
        for message in &registrations {
            registered.insert((&message.tenant, &message.msg_hash), &message.campaign_id);
        }

        let mut sums = CampaignDeltas::default();
        for ((tenant, hour, cell), tally) in &deltas.0 {
            let (msg_hash, cell) = cell.clone().into_campaign_cell();
            let registered = registered.get(&(tenant.as_str(), msg_hash.as_str())).copied();
            match rollup::campaign_of(&msg_hash, &cell, registered) {
                Some(campaign_id) => sums.add_campaign(tenant, campaign_id, *hour, cell, *tally),
                None => sums.add(Pending, tenant, &msg_hash, *hour, cell, *tally),
            }
        }
        for message in registrations {
            let (tenant, campaign_id) = (&message.tenant, &message.campaign_id);
            if lanes.counts_messages() {
                sums.add_campaign(tenant, campaign_id, Granularity::Hour.bucket(message.sent_at), CampaignCell::Message, Tally::ONE);
            }
            // Each lane moves the counters it kept pending.
            for (hour, cell, tally) in store.pending_counters(tenant, lanes.index, &message.msg_hash).await? {
                sums.add(Pending, tenant, &message.msg_hash, hour, cell.clone(), tally.negated());
                sums.add_campaign(tenant, campaign_id, hour, cell, tally);
            }
        }
        Ok(sums)
    }

    fn add_campaign(&mut self, tenant: &str, campaign_id: &str, hour: Millis, cell: CampaignCell, tally: Tally) {
        self.add(Campaign, tenant, campaign_id, hour, cell, tally);
    }

    fn add(&mut self, family: Family, tenant: &str, key: &str, hour: Millis, cell: CampaignCell, tally: Tally) {
        let sums = match family {
            Campaign => &mut self.campaigns,
            Pending => &mut self.pending,
        };
        sums.entry((tenant.to_owned(), key.to_owned(), hour, cell)).or_default().add(tally);
    }

    fn campaign_deltas(&self) -> Vec<CampaignDelta> {
        let nonzero = self.campaigns.iter().filter(|(_, tally)| !tally.is_zero());
        nonzero
            .map(|((tenant, campaign_id, hour, cell), tally)| CampaignDelta {
                tenant: tenant.clone(),
                campaign_id: campaign_id.clone(),
                hour: *hour,
                cell: cell.clone(),
                tally: *tally,
            })
            .collect()
    }

    fn pending_deltas(&self) -> Vec<PendingDelta> {
        let nonzero = self.pending.iter().filter(|(_, tally)| !tally.is_zero());
        nonzero
            .map(|((tenant, msg_hash, hour, cell), tally)| PendingDelta {
                tenant: tenant.clone(),
                msg_hash: msg_hash.clone(),
                hour: *hour,
                cell: cell.clone(),
                tally: *tally,
            })
            .collect()
    }
}

#[derive(Clone, Copy)]
enum Family {
    Campaign,
    Pending,
}
use Family::{Campaign, Pending};

/// Counts what the entry adds by itself: a touch its touch cell, an app event its event
/// cell. (Conversions are counted from the fold's changes.)
fn count(deltas: &mut Deltas, entry: &LogEntry) {
    match &entry.payload {
        LogPayload::Record(Record::Touch(touch)) => deltas.add(&touch.tenant, touch.ts, rollup::touch_cell(touch), Tally::ONE),
        LogPayload::Record(Record::Event(event)) => {
            if let Some(cell) = rollup::event_cell(event) {
                deltas.add(&event.tenant, event.ts, cell, Tally::ONE);
            }
        }
        _ => {}
    }
}
