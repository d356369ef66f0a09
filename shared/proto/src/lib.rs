//! The `touchstone.v1` API: protobuf messages and tonic client/server stubs, generated at build
//! time from `proto/` and used by every other crate.
//!
//! - [`v1`]: all messages, enums, `*_client` and `*_server` modules.
//! - [`convert`]: conversions between wire types and the domain core, field by field.
//! - [`error`]: the table from service errors to gRPC status codes.
//! - [`validate`]: the edge: every field of every request checked against the core's limits
//!   before a handler acts on it.
//! - [`FILE_DESCRIPTOR_SET`], [`GOOGLE_RPC_DESCRIPTOR_SET`]: the encoded descriptors, served
//!   by gRPC reflection.

pub mod auth;
pub mod convert;
pub mod error;
pub mod validate;

#[allow(clippy::all, missing_docs)]
pub mod v1 {
    tonic::include_proto!("touchstone.v1");
}

/// Encoded `FileDescriptorSet` of the API, for tonic-reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/touchstone_descriptor.bin"));

/// Encoded `FileDescriptorSet` of `google.rpc`'s `Status` and error details (`BadRequest`,
/// `ErrorInfo`, `RetryInfo`, …), so reflection clients such as grpcurl decode the details.
pub const GOOGLE_RPC_DESCRIPTOR_SET: &[u8] =
    include_bytes!(concat!(env!("OUT_DIR"), "/google_rpc_descriptor.bin"));
