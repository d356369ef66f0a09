//! The Touchstone server as a library: [`serve::serve`] runs any set of roles (ingest,
//! attribution worker, query) on listeners its caller has bound, until a shutdown future
//! completes. The `touchstone` command parses flags, opens the store, binds the addresses
//! and passes Ctrl-C/SIGTERM; tests run it in-process on port 0.
//!
//! - [`serve`]: the gRPC services, health and reflection, the console and metrics
//!   listeners, one shutdown sequence.
//! - [`layers`]: the tower layers every call passes (trace context, timing, keys, limits).
//! - [`keys`]: the API keys file and the ring that reloads it.
//! - [`limits`]: how much load a server takes before it refuses calls.
//! - [`console`]: the web console's pages, on the HTTP listener.
//! - [`connect`]: the Connect protocol on the HTTP listener, every unary RPC in JSON or
//!   binary proto, transcoded to the same gRPC services and layers.
//! - [`telemetry`]: logs, trace export and the Prometheus endpoint.
//! - [`tls`]: the certificate every listener serves.

pub mod connect;
pub mod console;
pub mod keys;
pub mod layers;
pub mod limits;
pub mod serve;
pub mod telemetry;
pub mod tls;
