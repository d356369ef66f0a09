//! The server side of the `touchstone` command, as a library so that tests can run it
//! in-process: [`serve::serve`] runs any set of roles on a bound listener until a shutdown
//! future completes. The command itself (`main.rs`) parses flags, opens the store, binds
//! the address and passes Ctrl-C/SIGTERM as the shutdown.

pub mod auth;
pub mod layers;
pub mod limits;
pub mod metrics;
pub mod request_bytes;
pub mod serve;
pub mod trace_context;
