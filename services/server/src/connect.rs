//! The Connect protocol beside gRPC, for callers to whom HTTP/2 gRPC is a burden (web stacks,
//! `curl`): a unary call is `POST /touchstone.v1.Service/Method` with `application/json`
//! (the proto3 canonical JSON mapping) or `application/proto`, answered in kind; an error
//! is Connect's JSON error with the gRPC code's name and the same details (field
//! violations, ErrorInfo, RetryInfo).
//!
//! One set of handlers serves every protocol: a Connect call is transcoded into a gRPC call
//! and handed to the same service stack the gRPC listener serves, so it is checked (keys),
//! shed, measured, traced and drained as a gRPC call is. The JSON mapping is read from the
//! API's descriptors (`prost-reflect`), so every message of the API is covered without code
//! of its own. A server stream (the badge feed) is Connect's streaming form
//! (`application/connect+json` or `+proto`: enveloped messages, then an end-of-stream
//! message carrying the error, if any); the client stream (`IngestStream`) is gRPC's alone.
//!
//! gRPC-Web calls (`application/grpc-web…`, what browsers can send) reach the same stack
//! through `tonic-web`, on the same listener.

use crate::layers::BoxFuture;
use axum::body::Body;
use base64::Engine as _;
use http_body_util::BodyExt as _;
use prost_reflect::{DescriptorPool, DynamicMessage, MessageDescriptor, MethodDescriptor, SerializeOptions};
use serde_json::{Value, json};
use std::convert::Infallible;
use std::task::{Context, Poll};
use tonic::codegen::http::{self, HeaderMap, HeaderValue, StatusCode, header};
use tonic::codegen::{Bytes, Service};

/// The gRPC service stack a Connect call is handed to.
pub type GrpcService = tower::util::BoxCloneSyncService<http::Request<tonic::body::Body>, http::Response<tonic::body::Body>, Infallible>;

/// The largest Connect request body read (as the gRPC listener's message limit).
const MAX_BODY: usize = crate::limits::MAX_MESSAGE_BYTES;

/// Serves Connect unary calls of the API by transcoding them to `grpc`.
#[derive(Clone)]
pub struct Connect {
    grpc: GrpcService,
    api: DescriptorPool,
    details: DescriptorPool,
}

impl Connect {
    pub fn new(grpc: GrpcService) -> Result<Connect, String> {
        let api = DescriptorPool::decode(touchstone_proto::FILE_DESCRIPTOR_SET).map_err(|err| format!("the API's descriptors: {err}"))?;
        let details =
            DescriptorPool::decode(touchstone_proto::GOOGLE_RPC_DESCRIPTOR_SET).map_err(|err| format!("the error details' descriptors: {err}"))?;
        Ok(Connect { grpc, api, details })
    }

    /// The unary method a path names (`/touchstone.v1.QueryService/ListCampaigns`).
    fn method(&self, path: &str) -> Option<MethodDescriptor> {
        let (service, method) = path.strip_prefix('/')?.split_once('/')?;
        self.api.get_service_by_name(service)?.methods().find(|candidate| candidate.name() == method)
    }

    async fn call(self, request: http::Request<Body>) -> http::Response<Body> {
        let Some(method) = self.method(request.uri().path()).filter(|method| !method.is_client_streaming()) else {
            return self.error(tonic::Code::Unimplemented, "no such method over Connect: the client stream IngestStream is gRPC's alone", &[]);
        };
        if method.is_server_streaming() {
            return self.server_stream(request, method).await;
        }
        if request.method() != http::Method::POST {
            return self.refused(tonic::Code::Unimplemented, StatusCode::METHOD_NOT_ALLOWED, "a Connect unary call is a POST");
        }
        let (codec, grpc_request) = match self.grpc_request(request, &method, false).await {
            Ok(read) => read,
            Err(refused) => return refused,
        };
        let Ok(response) = self.grpc.clone().call(grpc_request).await;
        self.answer(response, &method.output(), codec).await
    }

    /// The gRPC request a Connect request stands for, and the codec its answer is written
    /// in; an answer of its own when it is refused. A stream's request is one envelope.
    async fn grpc_request(&self, request: http::Request<Body>, method: &MethodDescriptor, streaming: bool) -> Result<(Codec, http::Request<tonic::body::Body>), http::Response<Body>> {
        let Some(codec) = Codec::of(request.headers(), streaming) else {
            let expected = format!("{} or {}", Codec::Json.content_type(streaming), Codec::Proto.content_type(streaming));
            return Err(self.refused(tonic::Code::InvalidArgument, StatusCode::UNSUPPORTED_MEDIA_TYPE, &format!("Content-Type must be {expected}")));
        };
        let (parts, body) = request.into_parts();
        let body = match http_body_util::Limited::new(body, MAX_BODY).collect().await {
            Ok(body) => body.to_bytes(),
            Err(err) => return Err(self.error(tonic::Code::ResourceExhausted, &format!("cannot read the request body: {err}"), &[])),
        };
        let message = if streaming { body.get(5..) } else { Some(&body[..]) };
        let Some(message) = message else {
            return Err(self.error(tonic::Code::InvalidArgument, "a stream's request is one enveloped message", &[]));
        };
        match codec.decode(&method.input(), message) {
            Ok(message) => Ok((codec, grpc_request(&parts, message))),
            Err(reason) => Err(self.error(tonic::Code::InvalidArgument, &format!("the request is no {}: {reason}", method.input().full_name()), &[])),
        }
    }

    /// The gRPC answer as Connect's: the message in the caller's codec, or the error.
    async fn answer(&self, response: http::Response<tonic::body::Body>, output: &MessageDescriptor, codec: Codec) -> http::Response<Body> {
        let (parts, body) = response.into_parts();
        // Trailers-only (an error before any message): the status is in the headers.
        let (data, trailers) = if parts.headers.contains_key("grpc-status") {
            (Bytes::new(), parts.headers)
        } else {
            match body.collect().await {
                Ok(collected) => {
                    let trailers = collected.trailers().cloned().unwrap_or_default();
                    (collected.to_bytes(), trailers)
                }
                Err(status) => return self.error(status.code(), status.message(), &[]),
            }
        };
        let status = tonic::Status::from_header_map(&trailers).unwrap_or_else(|| tonic::Status::unknown("the call ended without a status"));
        if status.code() != tonic::Code::Ok {
            return self.error(status.code(), status.message(), status.details());
        }
        // One gRPC frame: a flag byte, a 4-byte length, the message.
        let Some(message) = data.get(5..) else {
            return self.error(tonic::Code::Internal, "the call answered no message", &[]);
        };
        match codec.encode(output, message) {
            Ok(body) => http::Response::builder()
                .status(StatusCode::OK)
                .header(header::CONTENT_TYPE, codec.content_type(false))
                .body(Body::from(body))
                .unwrap_or_default(),
            Err(reason) => self.error(tonic::Code::Internal, &format!("cannot write the answer: {reason}"), &[]),
        }
    }

    /// A server stream: one enveloped request in, enveloped messages out as the gRPC stream
    /// gives them, then the end-of-stream message (`{}`, or `{"error": …}`).
    async fn server_stream(self, request: http::Request<Body>, method: MethodDescriptor) -> http::Response<Body> {
        let (codec, grpc_request) = match self.grpc_request(request, &method, true).await {
            Ok(read) => read,
            Err(refused) => return refused,
        };
        let Ok(response) = self.grpc.clone().call(grpc_request).await;
        let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(16);
        let output = method.output();
        tokio::spawn(async move {
            let end = self.relay(response, &output, codec, &sender).await;
            let _ = sender.send(envelope(END_STREAM, end.to_string().as_bytes())).await;
        });
        let stream = tokio_stream::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(receiver), Ok::<_, Infallible>);
        http::Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, codec.content_type(true))
            .body(Body::from_stream(stream))
            .unwrap_or_default()
    }

    /// Sends each message of a gRPC stream as a Connect envelope; the end-of-stream message.
    async fn relay(&self, response: http::Response<tonic::body::Body>, output: &MessageDescriptor, codec: Codec, sender: &tokio::sync::mpsc::Sender<Bytes>) -> Value {
        let (parts, mut body) = response.into_parts();
        if let Some(status) = failed(&parts.headers) {
            return json!({"error": self.error_json(status.code(), status.message(), status.details())});
        }
        let mut pending: Vec<u8> = Vec::new();
        while let Some(frame) = body.frame().await {
            let frame = match frame {
                Ok(frame) => frame,
                Err(status) => return json!({"error": self.error_json(status.code(), status.message(), &[])}),
            };
            match frame.into_data() {
                Ok(data) => {
                    pending.extend_from_slice(&data);
                    // Whole gRPC messages: a flag byte, a 4-byte length, the message.
                    while pending.len() >= 5 {
                        let length = u32::from_be_bytes([pending[1], pending[2], pending[3], pending[4]]) as usize;
                        if pending.len() < 5 + length {
                            break;
                        }
                        let message: Vec<u8> = pending.drain(..5 + length).skip(5).collect();
                        let encoded = match codec.encode(output, &message) {
                            Ok(encoded) => encoded,
                            Err(reason) => return json!({"error": self.error_json(tonic::Code::Internal, &reason, &[])}),
                        };
                        if sender.send(envelope(0, &encoded)).await.is_err() {
                            // The caller went away: dropping the body ends the gRPC stream.
                            return Value::Null;
                        }
                    }
                }
                Err(frame) => {
                    if let Some(status) = frame.trailers_ref().and_then(failed) {
                        return json!({"error": self.error_json(status.code(), status.message(), status.details())});
                    }
                }
            }
        }
        json!({})
    }

    /// Connect's error: `{"code", "message", "details": [{"type", "value", "debug"}]}`, with the
    /// HTTP status Connect gives the code; `details` are a gRPC status's (`google.rpc.Status`
    /// bytes, empty for none).
    fn error(&self, code: tonic::Code, message: &str, details: &[u8]) -> http::Response<Body> {
        http::Response::builder()
            .status(http_status(code))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(self.error_json(code, message, details).to_string()))
            .unwrap_or_default()
    }

    /// [`Self::error`] with an HTTP status of its own (a request Connect refuses as HTTP).
    fn refused(&self, code: tonic::Code, http_status: StatusCode, message: &str) -> http::Response<Body> {
        let mut refused = self.error(code, message, &[]);
        *refused.status_mut() = http_status;
        refused
    }

    fn error_json(&self, code: tonic::Code, message: &str, details: &[u8]) -> Value {
        use prost::Message as _;
        let details: Vec<Value> = tonic_types::pb::Status::decode(details)
            .map(|status| status.details)
            .unwrap_or_default()
            .into_iter()
            .map(|any| {
                let type_name = any.type_url.rsplit('/').next().unwrap_or_default().to_owned();
                let debug = self
                    .details
                    .get_message_by_name(&type_name)
                    .and_then(|descriptor| DynamicMessage::decode(descriptor, any.value.as_slice()).ok())
                    .and_then(|message| serde_json::to_value(&message).ok());
                let value = base64::engine::general_purpose::STANDARD_NO_PAD.encode(&any.value);
                let mut detail = json!({"type": type_name, "value": value});
                if let Some(debug) = debug {
                    detail["debug"] = debug;
                }
                detail
            })
            .collect();
        let mut body = json!({"code": code_name(code), "message": message});
        if !details.is_empty() {
            body["details"] = Value::Array(details);
        }
        body
    }
}

impl Service<http::Request<Body>> for Connect {
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Result<Self::Response, Infallible>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<Body>) -> Self::Future {
        let grpc_web = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|content_type| content_type.starts_with("application/grpc-web"));
        if grpc_web {
            let mut web = tower::Layer::layer(&tonic_web::GrpcWebLayer::new(), self.grpc.clone());
            return Box::pin(async move {
                let Ok(response) = web.call(request).await;
                Ok(response.map(Body::new))
            });
        }
        let connect = self.clone();
        Box::pin(async move { Ok(connect.call(request).await) })
    }
}

/// How a Connect call's messages are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Codec {
    Json,
    Proto,
}

impl Codec {
    /// The codec a request's Content-Type names: `application/json|proto` for a unary call,
    /// `application/connect+json|proto` for a stream.
    fn of(headers: &HeaderMap, streaming: bool) -> Option<Codec> {
        let content_type = headers.get(header::CONTENT_TYPE)?.to_str().ok()?.split(';').next()?.trim();
        [Codec::Json, Codec::Proto].into_iter().find(|codec| codec.content_type(streaming) == content_type)
    }

    fn content_type(self, streaming: bool) -> &'static str {
        match (self, streaming) {
            (Codec::Json, false) => "application/json",
            (Codec::Proto, false) => "application/proto",
            (Codec::Json, true) => "application/connect+json",
            (Codec::Proto, true) => "application/connect+proto",
        }
    }

    /// The request as protobuf bytes. Unknown JSON fields are ignored, as Connect's own
    /// implementations do (a newer client may send fields this server does not know).
    fn decode(self, input: &MessageDescriptor, body: &[u8]) -> Result<Vec<u8>, String> {
        use prost::Message as _;
        match self {
            Codec::Proto => DynamicMessage::decode(input.clone(), body).map(|message| message.encode_to_vec()).map_err(|err| err.to_string()),
            Codec::Json => {
                let text = if body.is_empty() { &b"{}"[..] } else { body };
                let mut deserializer = serde_json::Deserializer::from_slice(text);
                let options = prost_reflect::DeserializeOptions::new().deny_unknown_fields(false);
                let message = DynamicMessage::deserialize_with_options(input.clone(), &mut deserializer, &options).map_err(|err| err.to_string())?;
                deserializer.end().map_err(|err| err.to_string())?;
                Ok(message.encode_to_vec())
            }
        }
    }

    fn encode(self, output: &MessageDescriptor, message: &[u8]) -> Result<Vec<u8>, String> {
        match self {
            Codec::Proto => Ok(message.to_vec()),
            Codec::Json => {
                let message = DynamicMessage::decode(output.clone(), message).map_err(|err| err.to_string())?;
                let mut serializer = serde_json::Serializer::new(Vec::new());
                // Canonical JSON: 64-bit integers as strings, enums by name, defaults left out.
                message.serialize_with_options(&mut serializer, &SerializeOptions::new()).map_err(|err| err.to_string())?;
                Ok(serializer.into_inner())
            }
        }
    }
}

/// The gRPC request a Connect call stands for, at the same path (a method's Connect path is
/// its gRPC path): the caller's key, trace context and deadline carried over.
fn grpc_request(parts: &http::request::Parts, message: Vec<u8>) -> http::Request<tonic::body::Body> {
    let mut request = http::Request::builder()
        .method(http::Method::POST)
        .uri(parts.uri.path())
        .version(http::Version::HTTP_2)
        .body(tonic::body::Body::new(http_body_util::Full::new(envelope(0, &message))))
        .unwrap_or_default();
    let headers = request.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/grpc"));
    headers.insert(header::TE, HeaderValue::from_static("trailers"));
    for name in [header::AUTHORIZATION.as_str(), "x-api-key", "traceparent", "tracestate"] {
        if let Some(value) = parts.headers.get(name) {
            headers.insert(http::HeaderName::from_static(name), value.clone());
        }
    }
    // Connect's deadline, in ms, as gRPC's.
    if let Some(timeout) = parts.headers.get("connect-timeout-ms").and_then(|value| value.to_str().ok()).and_then(|ms| ms.parse::<u64>().ok())
        && let Ok(value) = HeaderValue::from_str(&format!("{timeout}m"))
    {
        headers.insert("grpc-timeout", value);
    }
    request
}

/// The flag of Connect's end-of-stream envelope.
const END_STREAM: u8 = 0x02;

/// A Connect envelope, laid out as a gRPC message frame: a flag byte, a 4-byte big-endian
/// length, the bytes.
fn envelope(flags: u8, bytes: &[u8]) -> Bytes {
    let mut framed = Vec::with_capacity(5 + bytes.len());
    framed.push(flags);
    framed.extend_from_slice(&u32::try_from(bytes.len()).unwrap_or(u32::MAX).to_be_bytes());
    framed.extend_from_slice(bytes);
    Bytes::from(framed)
}

/// The status of headers or trailers, when it is an error.
fn failed(headers: &HeaderMap) -> Option<tonic::Status> {
    tonic::Status::from_header_map(headers).filter(|status| status.code() != tonic::Code::Ok)
}

/// A gRPC code as Connect names it: `invalid_argument`.
fn code_name(code: tonic::Code) -> String {
    touchstone_proto::error::code_name(code).to_ascii_lowercase()
}

/// The HTTP status Connect gives a code.
fn http_status(code: tonic::Code) -> StatusCode {
    use tonic::Code as C;
    match code {
        C::Ok => StatusCode::OK,
        C::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        C::InvalidArgument | C::FailedPrecondition | C::OutOfRange => StatusCode::BAD_REQUEST,
        C::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        C::NotFound => StatusCode::NOT_FOUND,
        C::AlreadyExists | C::Aborted => StatusCode::CONFLICT,
        C::PermissionDenied => StatusCode::FORBIDDEN,
        C::ResourceExhausted => StatusCode::TOO_MANY_REQUESTS,
        C::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        C::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        C::Unauthenticated => StatusCode::UNAUTHORIZED,
        C::Unknown | C::Internal | C::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

