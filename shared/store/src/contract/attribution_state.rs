//! [`AttributionState`]: what the attribution engine reads, and its atomic commit.

use crate::{BadgeFeedEntry, Lane, RecordReads, Result, SetAside};
use async_trait::async_trait;
use touchstone_core::attribution::Conversion;
use touchstone_core::badge_stats::{BadgeTally, Interval};
use touchstone_core::config::TenantConfig;
use touchstone_core::fold::{CustomerState, OrderState, Segment};
use touchstone_core::model::{AppEvent, BadgeEvent, Millis, OrderRecord, Record};
use touchstone_core::rollup::{CampaignCell, Cell, Tally};

/// One conversion row changing: as stored before (`None`: new) and after (`None`: gone);
/// the fold's own type, which commits carry as it is.
pub use touchstone_core::fold::ConversionChange;

/// A change to one message counter, for the hour holding `hour` and the buckets of every
/// level of [`MESSAGE_LEVELS`](touchstone_core::rollup::MESSAGE_LEVELS) holding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RollupDelta {
    pub tenant: String,
    /// Start of the UTC hour bucket.
    pub hour: Millis,
    pub cell: Cell,
    pub tally: Tally,
}

/// A change to one campaign counter, for the buckets of every level of
/// [`CAMPAIGN_LEVELS`](touchstone_core::rollup::CAMPAIGN_LEVELS) holding `hour`.
/// `campaign_id` is empty for messages of no campaign and for unattributed conversions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CampaignDelta {
    pub tenant: String,
    pub campaign_id: String,
    /// Start of the UTC hour bucket.
    pub hour: Millis,
    pub cell: CampaignCell,
    pub tally: Tally,
}

/// A change to the counters of a message not registered yet: kept by message and lane (the
/// commit's) until its registration, which every lane processes, moves the lane's own to
/// its campaign (a negated delta takes them out again).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingDelta {
    pub tenant: String,
    pub msg_hash: String,
    /// Start of the UTC hour bucket.
    pub hour: Millis,
    pub cell: CampaignCell,
    pub tally: Tally,
}

/// A change to a customer's badge partition: a derived entry (rule earn, expiry) written or
/// removed. Stored badge events are ingest's and never change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BadgeRowChange {
    /// Writes the row of `(tenant, customer_id, ts, event_id)`, replacing one there.
    Put(BadgeEvent),
    Delete { tenant: String, customer_id: String, ts: Millis, event_id: String },
}

impl BadgeRowChange {
    pub fn tenant(&self) -> &str {
        match self {
            BadgeRowChange::Put(event) => &event.tenant,
            BadgeRowChange::Delete { tenant, .. } => tenant,
        }
    }
}

/// A change to one badge's counters at one time (ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadgeStatDelta {
    pub tenant: String,
    pub badge_id: String,
    pub ts: Millis,
    pub tally: BadgeTally,
}

/// When a customer holds a badge, as a commit sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldingChange {
    pub tenant: String,
    pub customer_id: String,
    pub badge_id: String,
    /// Empty: the customer does not hold the badge at any time.
    pub intervals: Vec<Interval>,
}

/// The months of a customer's fold state holding times in `[from, to]` (inclusive).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomerMonths {
    pub tenant: String,
    pub customer_id: String,
    pub from: Millis,
    pub to: Millis,
}

impl CustomerMonths {
    /// Every month of the customer's state.
    pub fn whole(tenant: &str, customer_id: &str) -> CustomerMonths {
        CustomerMonths { tenant: tenant.to_owned(), customer_id: customer_id.to_owned(), from: Millis::MIN, to: Millis::MAX }
    }
}

/// One month of a customer's fold state as a commit sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentWrite {
    pub tenant: String,
    pub customer_id: String,
    /// The month's start ([`segment_of`](touchstone_core::fold::segment_of)).
    pub month: Millis,
    /// `None`: the month is removed.
    pub segment: Option<Segment>,
}

/// One order's fold state as a commit sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStateWrite {
    pub tenant: String,
    pub order_id: String,
    pub state: OrderState,
}

/// A customer whose state names a `msg_hash` that was not registered when it was folded:
/// the message's registration re-credits the customer
/// ([`AttributionState::unregistered_customers`]).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct UnregisteredMark {
    pub tenant: String,
    pub msg_hash: String,
    pub customer_id: String,
}

/// A customer with a `SENT` or `HELD_OUT` touch of a registered message of a campaign:
/// the index a campaign's lift reads ([`ReportReads::exposed_customer_states`]). Written
/// when such a touch is folded, when its message is registered after it, and for every
/// customer again by a recompute; writing it twice changes nothing.
///
/// [`ReportReads::exposed_customer_states`]: crate::ReportReads::exposed_customer_states
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Exposure {
    pub tenant: String,
    pub campaign_id: String,
    pub customer_id: String,
}

/// What a commit writes of the fold's state (see [`touchstone_core::fold`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FoldWrites {
    /// At most one per `(tenant, customer_id, month)`.
    pub segments: Vec<SegmentWrite>,
    /// At most one per `(tenant, order_id)`: the commit's lane's copy of the order.
    pub orders: Vec<OrderStateWrite>,
    pub unregistered: Vec<UnregisteredMark>,
    /// `(tenant, msg_hash)` of messages registered now: no mark under them is written (a
    /// mark and a registration in one commit leave none).
    pub registered: Vec<(String, String)>,
    /// Marks removed: those of the customers a registration re-credited now. Only these:
    /// other lanes' customers may be marked under the same message until their lane
    /// processes its registration.
    pub unmarked: Vec<UnregisteredMark>,
    /// The config each tenant's state is now folded under (in the commit's lane), at most
    /// one per tenant.
    pub folded_configs: Vec<TenantConfig>,
    pub exposures: Vec<Exposure>,
}


/// Everything one attribution step writes, applied all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttributionCommit {
    /// The log shard the step read; every conversion and delta is of a tenant of it.
    pub shard: u32,
    /// The lane of the shard the step processed ([`Lane::index`]; 0 on a store of one
    /// lane): its position, and the lane's own state (order copies, pending counters,
    /// folded configs).
    pub lane: u32,
    /// The lane's processed position the step started from. The commit applies only if it
    /// is still the stored one, else [`StoreError::Fenced`](crate::StoreError::Fenced):
    /// this fences off a worker that lost its lease while it worked.
    pub after: u64,
    /// The position the step processed up to (inclusive), `>= after`; equal when it
    /// consumed no log entries.
    pub processed: u64,
    pub conversions: Vec<ConversionChange>,
    /// At most one delta per `(tenant, hour, cell)`.
    pub rollups: Vec<RollupDelta>,
    /// At most one delta per `(tenant, campaign_id, hour, cell)`.
    pub campaign_rollups: Vec<CampaignDelta>,
    /// At most one delta per `(tenant, msg_hash, hour, cell)`.
    pub pending: Vec<PendingDelta>,
    /// Derived badge entries written or removed, at most one change per row.
    pub badge_rows: Vec<BadgeRowChange>,
    /// App events and order status records a badge rule counts, added to their customer's
    /// activity ([`BadgeStore::customer_activity`](crate::BadgeStore::customer_activity));
    /// adding one again is harmless.
    pub activity: Vec<Record>,
    /// Changes to per-badge counters, by exact time: stores keep them by UTC day and by
    /// instant ([`StatLevel`](crate::StatLevel)). At most one delta per `(tenant, badge_id, ts)`.
    pub badge_stats: Vec<BadgeStatDelta>,
    /// Customers' holding intervals of a badge as they are now (empty: none), at most one
    /// per `(tenant, customer_id, badge_id)`.
    pub holdings: Vec<HoldingChange>,
    /// Entries of tenants' badge feeds, each at a position no entry of its tenant has.
    pub badge_feed: Vec<BadgeFeedEntry>,
    /// Entries in `(after, processed]` set aside instead of processed: kept, and counted
    /// in [`LogStatus::set_aside`](crate::LogStatus::set_aside).
    pub set_aside: Vec<SetAside>,
    /// The fold's state: customers' months, orders, the index of unregistered messages.
    pub fold: FoldWrites,
    /// The step's touches, app events, order records and badge events, processed (not set
    /// aside): what the reads by time ([`ReportReads::touches_between`](crate::ReportReads::touches_between),
    /// `events_between`, `tenant_orders`, `tenant_events_named`) and the badge events of
    /// [`BadgeStore::badge_inputs_many`](crate::BadgeStore::badge_inputs_many) return once
    /// committed. A backend that indexed them at ingest ignores them; one that indexes at
    /// commit (CQL, a request per hour or slot partition of a step instead of a row per
    /// record) stores them.
    pub records: Vec<Record>,
}

/// The attribution engine's reads and its commit.
///
/// - **Atomic commits**: `commit_attribution` applies conversions, rollup deltas (message,
///   campaign and pending counters), derived badge entries and the activity they count,
///   set-aside entries and the processed position all together or not at all, so a step that crashed
///   is simply redone; and only if the lane's processed position is still the one the step
///   started from, so two workers can never both commit the same entries of a lane.
/// - **Lanes** ([`Lane`]): each lane of a shard has its own processed position; the
///   shard's ([`LogStatus::processed`](crate::LogStatus)) is the lowest of its lanes'. Rows
///   that two lanes could both write are kept apart: conversion rows by customer, order
///   states, pending counters and folded configs by lane, marks removed by customer, badge
///   feed positions by lane.
#[async_trait]
pub trait AttributionState: RecordReads {


    /// Every order status record of the tenant, any order (for recomputes).
    async fn tenant_orders(&self, tenant: &str) -> Result<Vec<OrderRecord>>;

    /// Every app event of the tenant named `name`, any order (for recomputes).
    async fn tenant_events_named(&self, tenant: &str, name: &str) -> Result<Vec<AppEvent>>;



    /// The pending counters of a message in a lane (see [`PendingDelta`]), summed per hour
    /// and cell, zeros left out, any order.
    async fn pending_counters(&self, tenant: &str, lane: u32, msg_hash: &str) -> Result<Vec<(Millis, CampaignCell, Tally)>>;

    /// Every conversion of the tenant (for recomputes).
    async fn tenant_conversions(&self, tenant: &str) -> Result<Vec<Conversion>>;

    /// Each customer's months holding times in the span (the part of the state that folding
    /// records of that span reads and writes; empty when there are none), in input order.
    async fn customer_months(&self, spans: &[CustomerMonths]) -> Result<Vec<CustomerState>>;

    /// Each `(tenant, order_id)`'s fold state in the lane (empty when there is none), in
    /// input order.
    async fn order_states(&self, lane: u32, orders: &[(String, String)]) -> Result<Vec<OrderState>>;

    /// Every customer state of the tenant, by customer id, any order (for recomputes).
    async fn tenant_customer_states(&self, tenant: &str) -> Result<Vec<(String, CustomerState)>>;

    /// Every order state of the tenant in the lane, by order id, any order (for recomputes).
    async fn tenant_order_states(&self, tenant: &str, lane: u32) -> Result<Vec<(String, OrderState)>>;

    /// The customers marked under `msg_hash` ([`UnregisteredMark`]), any order.
    async fn unregistered_customers(&self, tenant: &str, msg_hash: &str) -> Result<Vec<String>>;

    /// The config the tenant's state in the lane was last folded under; `None` before the
    /// lane's first commit of the tenant.
    async fn folded_config(&self, tenant: &str, lane: u32) -> Result<Option<TenantConfig>>;



    /// The processed position the next step of `lane` starts after: the last committed
    /// one, with that commit's effects in place first (a backend that applies a commit
    /// after its compare-and-set applies a stored one that nobody finished). For the worker
    /// that holds the lane; status calls use [`IngestLog::log_status`](crate::IngestLog),
    /// which writes nothing.
    async fn resume_lane(&self, lane: Lane) -> Result<u64>;

    /// [`AttributionState::resume_lane`] of the shard's lane 0 (the whole shard on a store
    /// of one lane).
    async fn resume_shard(&self, shard: u32) -> Result<u64> {
        self.resume_lane(Lane { shard, index: 0 }).await
    }

    /// Called by a worker that has had nothing to process for a while: a backend may finish
    /// here what its commits put off (the embedded store folds its rollup deltas into their
    /// rows, so that reads of an idle store read rows alone). Nothing by default.
    async fn settle(&self) -> Result<()> {
        Ok(())
    }

    /// Applies one attribution step atomically (see the trait docs).
    /// [`StoreError::Fenced`](crate::StoreError::Fenced) when the lane's processed position
    /// is no longer `commit.after`. The entries up to `processed` stay in the log, which is
    /// the archive recomputes replay (the embedded store; the CQL backend still trims them,
    /// a declared gap of its conformance run).
    async fn commit_attribution(&self, commit: AttributionCommit) -> Result<()>;
}
