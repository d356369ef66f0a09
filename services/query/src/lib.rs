//! The query service: typed reports over any `[from, to)` range (docs/behaviour/reports.md) and the
//! explanation of single conversions.
//!
//! - [`badges`]: a customer's badge timeline and trophy case.
//! - [`explain`]: what explaining a conversion reads.
//! - [`range`]: reading the counters of a range from rollups and raw edges.
//! - [`service`]: the `QueryService` gRPC API.

pub mod badges;
pub mod explain;
pub mod range;
pub mod service;

pub use service::QueryApi;
