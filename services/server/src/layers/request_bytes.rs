//! Memory-aware request limits. A gRPC message arrives as a 5-byte prefix (compressed flag,
//! big-endian length) and then its bytes, which tonic buffers whole before decoding. The
//! request body is read through [`MeteredBody`], which reads each prefix as it arrives and,
//! before a byte of the message is buffered:
//! - refuses a message over the largest the server takes (RESOURCE_EXHAUSTED, no retry:
//!   split the batch), instead of tonic's OUT_OF_RANGE after buffering it;
//! - charges the message's length to the server's budget of request bytes held at once, and
//!   refuses it (RESOURCE_EXHAUSTED with RetryInfo) when the budget is spent.
//!
//! A call's charge is its latest message, held until the call ends (the decoded message
//! lives in the handler until then) or its next message begins (a stream's chunks are
//! handled one at a time).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tonic::Status;
use tonic::codegen::Bytes;
use touchstone_core::error::{ErrorKind, Reason};
use touchstone_proto::error::ApiError;

/// The largest message, and the request bytes the server holds at once.
#[derive(Debug, Clone)]
pub struct RequestBytes {
    message_limit: usize,
    budget: Arc<Semaphore>,
    budget_bytes: usize,
}

impl RequestBytes {
    pub fn new(message_limit: usize, budget_bytes: usize) -> RequestBytes {
        let budget_bytes = budget_bytes.clamp(1, Semaphore::MAX_PERMITS);
        RequestBytes { message_limit, budget: Arc::new(Semaphore::new(budget_bytes)), budget_bytes }
    }

    /// Meters `body`; the charge goes to `held`, which the call keeps until it ends.
    pub fn meter<B>(&self, body: B, held: Held) -> MeteredBody<B> {
        MeteredBody { inner: body, limits: self.clone(), prefix: [0; 5], prefix_len: 0, payload_left: 0, held, failed: false }
    }

    /// Takes `len` bytes of the budget for a message that is about to arrive.
    fn charge(&self, len: usize) -> Result<Option<OwnedSemaphorePermit>, Status> {
        if len > self.message_limit {
            metrics::counter!("touchstone_rpc_shed_total", "limit" => "message_size").increment(1);
            return Err(ApiError::TooLarge(format!(
                "a request message of {len} bytes is over this server's limit of {} bytes; send it in smaller parts \
                 (fewer records a batch or a stream chunk)",
                self.message_limit
            ))
            .into());
        }
        if len == 0 {
            return Ok(None);
        }
        // `len` fits: it is at most the message limit, which is below u32::MAX by the prefix.
        let permits = u32::try_from(len).unwrap_or(u32::MAX);
        self.budget.clone().try_acquire_many_owned(permits).map(Some).map_err(|_| {
            metrics::counter!("touchstone_rpc_shed_total", "limit" => "request_memory").increment(1);
            let message = format!(
                "the server already holds its {} bytes of requests in flight and cannot take a message of {len} bytes; \
                 retry shortly or on another replica",
                self.budget_bytes
            );
            ApiError::named(ErrorKind::ResourceExhausted, Reason::new("OVERLOADED").with("limit", "request_memory"), message).into()
        })
    }
}

/// What one call holds of the budget: its latest message.
pub type Held = Arc<Mutex<Option<OwnedSemaphorePermit>>>;

/// A request body read through the budget (see the module comment).
pub struct MeteredBody<B> {
    inner: B,
    limits: RequestBytes,
    prefix: [u8; 5],
    prefix_len: usize,
    payload_left: usize,
    held: Held,
    failed: bool,
}

impl<B> MeteredBody<B> {
    /// Follows the message framing through `data`, charging each message as its prefix
    /// completes.
    fn read(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.payload_left > 0 {
                let step = self.payload_left.min(data.len());
                self.payload_left -= step;
                data = &data[step..];
                continue;
            }
            let step = (5 - self.prefix_len).min(data.len());
            self.prefix[self.prefix_len..self.prefix_len + step].copy_from_slice(&data[..step]);
            self.prefix_len += step;
            data = &data[step..];
            if self.prefix_len == 5 {
                self.prefix_len = 0;
                let len = u32::from_be_bytes([self.prefix[1], self.prefix[2], self.prefix[3], self.prefix[4]]) as usize;
                // The previous message is handled (or being handled) by now: its charge goes
                // before the next is taken, so a stream holds one chunk's worth.
                let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                *held = None;
                *held = self.limits.charge(len)?;
                self.payload_left = len;
            }
        }
        Ok(())
    }
}

impl<B> tonic::codegen::Body for MeteredBody<B>
where
    B: tonic::codegen::Body<Data = Bytes> + Unpin,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Data = Bytes;
    type Error = tonic::codegen::StdError;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        if self.failed {
            return Poll::Ready(None);
        }
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
            Poll::Ready(None) => return Poll::Ready(None),
            Poll::Pending => return Poll::Pending,
        };
        if let Some(data) = frame.data_ref()
            && let Err(status) = self.read(data)
        {
            // tonic finds the status in the body's error and answers with it.
            self.failed = true;
            return Poll::Ready(Some(Err(Box::new(status))));
        }
        Poll::Ready(Some(Ok(frame)))
    }

    fn is_end_stream(&self) -> bool {
        self.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(len: usize) -> Vec<u8> {
        let mut bytes = vec![0];
        bytes.extend_from_slice(&(len as u32).to_be_bytes());
        bytes.resize(5 + len, 7);
        bytes
    }

    fn metered(limits: &RequestBytes) -> MeteredBody<()> {
        limits.meter((), Held::default())
    }

    #[test]
    fn messages_are_charged_across_frames_one_at_a_time() {
        let limits = RequestBytes::new(100, 150);
        let mut body = metered(&limits);
        let stream = [message(60), message(80), message(0)].concat();
        // Frames cut anywhere, the prefix included.
        for frame in stream.chunks(3) {
            body.read(frame).unwrap();
        }
        assert_eq!(body.payload_left, 0);
        // The empty last message holds nothing; the earlier ones were released.
        assert_eq!(limits.budget.available_permits(), 150);
        body.read(&message(90)[..5]).unwrap();
        assert_eq!(limits.budget.available_permits(), 60);
    }

    #[test]
    fn an_oversized_message_is_refused_from_its_prefix() {
        let limits = RequestBytes::new(100, 1_000);
        let mut body = metered(&limits);
        let status = body.read(&message(101)[..5]).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        assert!(status.message().contains("over this server's limit of 100 bytes"), "{}", status.message());
        use tonic_types::StatusExt as _;
        assert!(status.get_details_retry_info().is_none(), "retrying the same message cannot help");
    }

    #[test]
    fn the_budget_is_shared_by_calls_and_freed_when_a_call_ends() {
        let limits = RequestBytes::new(100, 150);
        let first_held = Held::default();
        let mut first = limits.meter((), first_held.clone());
        first.read(&message(100)[..5]).unwrap();
        let mut second = metered(&limits);
        let status = second.read(&message(80)[..5]).unwrap_err();
        assert_eq!(status.code(), tonic::Code::ResourceExhausted);
        use tonic_types::StatusExt as _;
        assert!(status.get_details_retry_info().is_some());
        // The first call's body is gone (decoded) but the call goes on: still held.
        drop(first);
        assert_eq!(limits.budget.available_permits(), 50);
        drop(first_held);
        second.read(&message(80)[..5]).unwrap();
    }
}
