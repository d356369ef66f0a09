//! The attribution service: a worker that follows the ingest log and credits conversions
//! incrementally ([`engine`], [`worker`]), and the `AttributionService` gRPC API that reports
//! its progress and asks for recomputes ([`service`]).

pub mod engine;
pub mod service;
pub mod worker;

pub use service::AttributionApi;
pub use worker::{Worker, WorkerOptions};
