//! End-to-end tests: the gateway over real sockets, in front of upstreams started here and
//! real servers (nginx, dnsmasq) started by the harness.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod admin;
mod clusters;
mod common;
mod config_cli;
mod connections;
mod dns;
mod errors;
mod fast_path;
mod fuzz_replay;
mod grpc_web;
mod h2_limits;
mod hardening;
mod mirror;
mod normalization;
mod policies;
mod process;
mod protocols;
mod proxying;
mod reload;
mod retries;
mod routing;
mod tls;
mod transcoding;
