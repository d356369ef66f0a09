//! The server's processes: `dev` (every role, embedded store) and the cluster's `ingest`,
//! `attribution` and `query` (and `migrate`) on ScyllaDB, each binding its listeners
//! (`listeners`) and calling the server library's `serve`.

pub mod cluster;
pub mod dev;
pub mod listeners;
