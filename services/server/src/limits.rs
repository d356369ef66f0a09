//! How much load a server takes before it refuses calls instead of queueing them (the
//! shedding layer, `layers::shed`, applies them), and how large a message may be.

/// How many calls a server runs at once, how many of them one tenant may hold, and how
/// long an ingest stream may go without a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub in_flight: usize,
    pub per_tenant: usize,
    pub stream_idle: std::time::Duration,
    /// Records per second one tenant may ingest through this process; 0: no limit.
    pub tenant_records_per_second: u64,
    /// The largest request message, in bytes.
    pub message_bytes: usize,
    /// Request bytes the server holds at once (messages being received or handled).
    pub request_bytes: usize,
    /// How long a unary call may run before it is cut with DEADLINE_EXCEEDED (a caller's
    /// shorter `grpc-timeout` wins). Streams are bounded by their idle timeout instead.
    pub call_timeout: std::time::Duration,
    /// Calls one connection may have open at once (HTTP/2 concurrent streams): a client
    /// beyond it waits for one of its own calls to end, not for other clients'.
    pub per_connection: u32,
    /// Records logged and not yet attributed beyond which an ingest reply waits for
    /// attribution to catch up (`touchstone_ingest::Backlog`); 0: replies never wait; `None`:
    /// the default for where the workers run.
    pub attribution_backlog: Option<u64>,
}

/// The largest request message: an ingest batch of `MAX_BATCH` records with room to spare.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            in_flight: 256,
            per_tenant: 64,
            stream_idle: touchstone_ingest::STREAM_IDLE_TIMEOUT,
            tenant_records_per_second: 0,
            message_bytes: MAX_MESSAGE_BYTES,
            request_bytes: 256 * 1024 * 1024,
            call_timeout: std::time::Duration::from_secs(30),
            per_connection: 100,
            attribution_backlog: None,
        }
    }
}
