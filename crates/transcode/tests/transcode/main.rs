//! Transcoding against a real gRPC server (Python grpcio), one test per rule family.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod field_errors;
mod harness;
mod messages;
mod rules;
mod status;
mod streams;
