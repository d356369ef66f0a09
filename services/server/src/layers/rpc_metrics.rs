//! The tower layer that times every RPC by method and the status it ended with
//! (`touchstone_rpc_duration_seconds{method,code}`): from the headers for an error before any
//! message, else from the trailers at the response body's end, so a stream is timed whole.

use crate::layers::{BoxFuture, take_ready};
use std::task::{Context, Poll};
use std::time::Instant;
use tonic::codegen::http;

/// Times every RPC by method and gRPC code.
#[derive(Clone, Default)]
pub struct RpcMetricsLayer;

impl<S> tower::Layer<S> for RpcMetricsLayer {
    type Service = RpcMetrics<S>;

    fn layer(&self, inner: S) -> RpcMetrics<S> {
        RpcMetrics { inner }
    }
}

#[derive(Clone)]
pub struct RpcMetrics<S> {
    inner: S,
}

impl<S, B> tower::Service<http::Request<B>> for RpcMetrics<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let call = CallTimer { method: request.uri().path().to_owned(), started: Instant::now() };
        let mut inner = take_ready(&mut self.inner);
        Box::pin(async move {
            let response = inner.call(request).await?;
            // An error known before any message is in the headers (a trailers-only
            // response); otherwise the status comes in the trailers, at the body's end.
            if let Some(code) = grpc_status(response.headers()) {
                call.record(code);
                return Ok(response);
            }
            Ok(response.map(|body| tonic::body::Body::new(TimedBody { inner: body, call: Some(call) })))
        })
    }
}

/// One call's method and start, recorded once its final status is known.
struct CallTimer {
    method: String,
    started: Instant,
}

impl CallTimer {
    fn record(self, code: tonic::Code) {
        let code = touchstone_proto::error::code_name(code);
        metrics::histogram!("touchstone_rpc_duration_seconds", "method" => self.method, "code" => code).record(self.started.elapsed().as_secs_f64());
    }
}

/// The `grpc-status` of headers or trailers.
fn grpc_status(headers: &http::HeaderMap) -> Option<tonic::Code> {
    let value = headers.get("grpc-status")?.to_str().ok()?.parse::<i32>().ok()?;
    Some(tonic::Code::from_i32(value))
}

/// A response body that records its call when the status arrives in the trailers (a
/// stream's late error included); a body that fails counts as UNKNOWN, and one dropped
/// before its end (the client went away) as CANCELLED.
struct TimedBody {
    inner: tonic::body::Body,
    call: Option<CallTimer>,
}

impl TimedBody {
    fn record(&mut self, code: tonic::Code) {
        if let Some(call) = self.call.take() {
            call.record(code);
        }
    }
}

impl http_body::Body for TimedBody {
    type Data = tonic::codegen::Bytes;
    type Error = tonic::Status;

    fn poll_frame(mut self: std::pin::Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(code) = frame.trailers_ref().and_then(grpc_status) {
                    self.record(code);
                }
            }
            Poll::Ready(Some(Err(status))) => self.record(status.code()),
            // Ended without trailers: nothing said otherwise.
            Poll::Ready(None) => self.record(tonic::Code::Ok),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for TimedBody {
    fn drop(&mut self) {
        self.record(tonic::Code::Cancelled);
    }
}
