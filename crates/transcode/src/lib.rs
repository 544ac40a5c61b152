//! HTTP+JSON and HTTP+Protobuf to gRPC transcoding from descriptor sets: `google.api.http`
//! rule matching and message mapping, with no I/O.
//!
//! A [`Transcoder`] is built once per config load from a `FileDescriptorSet`
//! (`protoc --include_imports --descriptor_set_out=...`) and the services to expose. Per
//! request, the gateway:
//!
//! 1. [`Transcoder::route`]s the HTTP method and normalized path to a gRPC method
//!    (a trie over path segments: cost grows with the path, not the number of methods);
//! 2. [`Matched::encode_request`]s the body and query into framed gRPC messages, sent to
//!    `:path` [`Matched::grpc_path`] with the headers from [`metadata::grpc_request_headers`];
//! 3. feeds the gRPC response body to a [`ResponseTranscoder`] ([`Matched::response`]) and
//!    [`finish`](ResponseTranscoder::finish)es it with the trailers, which gives the HTTP
//!    status (gRPC status mapped as Envoy and grpc-gateway do) and the body.
//!
//! ```
//! use bytes::Bytes;
//! use http::{HeaderMap, Method};
//! use sekisho_transcode::{BodyFormat, Options, Transcoder};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let descriptor_set = sekisho_transcode::doc_example_descriptor_set();
//! let t = Transcoder::new(&descriptor_set, &["demo.Echo".to_string()], Options::default())?;
//!
//! // A method without an http rule is reachable as POST /pkg.Service/Method.
//! let m = t.route(&Method::POST, "/demo.Echo/Say", None).expect("auto mapping");
//! let req = m.encode_request(Some("application/json"), Bytes::from_static(br#"{"text":"hi"}"#))?;
//! assert_eq!(m.grpc_path(), "/demo.Echo/Say");
//! assert_eq!(&req.body[..], b"\0\0\0\0\x04\x0a\x02hi"); // 5-byte prefix + message
//!
//! // The upstream answered with the same message and grpc-status 0.
//! let mut resp = m.response(BodyFormat::Json);
//! assert!(resp.push(req.body.clone())?.is_none()); // unary: nothing until the end
//! let mut trailers = HeaderMap::new();
//! trailers.insert("grpc-status", "0".parse()?);
//! let done = resp.finish(&HeaderMap::new(), Some(&trailers))?;
//! assert_eq!(done.status, 200);
//! assert_eq!(&done.body[..], br#"{"text":"hi"}"#);
//! # Ok(()) }
//! ```
//!
//! Errors say whose fault they were ([`TranscodeError::http_status`]): a bad request is
//! 400 naming the field, a bad upstream message 502.

#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(test, allow(clippy::unwrap_used))]

mod codec;
#[doc(hidden)]
pub mod differential;
mod error;
mod fast;
mod fields;
pub mod frame;
pub mod grpc_web;
mod json;
pub mod metadata;
mod request;
mod response;
mod rules;
pub mod status;
pub mod template;
mod transcoder;
mod trie;

pub use error::TranscodeError;
pub use request::{BodyFormat, GrpcRequest, Matched};
pub use response::{Finished, ResponseTranscoder};
pub use status::{http_status_for_grpc, GrpcStatus};
pub use transcoder::{Options, StreamFormat, Transcoder};

/// Re-exported: descriptor types appear in [`Matched::method`] and [`Transcoder::pool`].
pub use prost_reflect;

/// A tiny descriptor set (`demo.Echo/Say`, no http rules) for the crate-level example.
#[doc(hidden)]
pub fn doc_example_descriptor_set() -> Vec<u8> {
    use prost::Message as _;
    use prost_types::{
        field_descriptor_proto::{Label, Type},
        DescriptorProto, FieldDescriptorProto, FileDescriptorProto, FileDescriptorSet,
        MethodDescriptorProto, ServiceDescriptorProto,
    };
    let field = FieldDescriptorProto {
        name: Some("text".into()),
        number: Some(1),
        label: Some(Label::Optional as i32),
        r#type: Some(Type::String as i32),
        json_name: Some("text".into()),
        ..Default::default()
    };
    let file = FileDescriptorProto {
        name: Some("demo.proto".into()),
        package: Some("demo".into()),
        syntax: Some("proto3".into()),
        message_type: vec![DescriptorProto {
            name: Some("Msg".into()),
            field: vec![field],
            ..Default::default()
        }],
        service: vec![ServiceDescriptorProto {
            name: Some("Echo".into()),
            method: vec![MethodDescriptorProto {
                name: Some("Say".into()),
                input_type: Some(".demo.Msg".into()),
                output_type: Some(".demo.Msg".into()),
                ..Default::default()
            }],
            ..Default::default()
        }],
        ..Default::default()
    };
    FileDescriptorSet { file: vec![file] }.encode_to_vec()
}
