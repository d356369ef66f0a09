//! The attribution service: a worker that follows the ingest log and credits conversions
//! incrementally, and the `AttributionService` gRPC API that reports its progress and asks
//! for recomputes.
//!
//! - [`badges`]: the badge entries a step derives (rule earns, expiries).
//! - [`engine`]: one step: read a batch of the log, evaluate what it can have changed,
//!   commit the differences; and setting aside an entry that cannot be processed.
//! - [`fold`]: a step's attribution as a fold of its records into order and customer state.
//! - [`worker`]: leases on a share of the log shards, steps on each, and the rule that a
//!   failing entry is retried alone and then set aside.
//! - [`service`]: the gRPC API.

pub mod badges;
pub mod engine;
pub mod fold;
pub mod service;
pub mod worker;

pub use service::AttributionApi;
pub use worker::{Worker, WorkerOptions};

use touchstone_store::{AttributionState, BadgeStore, ConfigStore, Coordination, IngestLog};

/// The roles of the store an attribution worker uses: it follows the log, reads configs
/// and badge definitions, splits the shards with other workers, and reads and commits
/// attribution state (derived badge entries included).
pub trait AttributionStore: IngestLog + ConfigStore + Coordination + AttributionState + BadgeStore {}

impl<T: IngestLog + ConfigStore + Coordination + AttributionState + BadgeStore + ?Sized> AttributionStore for T {}
