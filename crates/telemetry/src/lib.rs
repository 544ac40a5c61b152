//! Telemetry for the gateway: Prometheus metrics, JSON access logs, request
//! ids and W3C trace context propagation.
//!
//! Everything a request touches is prepared ahead of time (metric handles
//! per route x cluster, a log writer thread), so per-request work is atomics,
//! a little formatting into reused buffers and a channel send.
#![deny(missing_docs)]
// Tests may panic on a broken invariant; the library itself never unwraps.
#![cfg_attr(test, allow(clippy::unwrap_used))]

pub mod access_log;
pub mod metrics;
pub mod request_id;
pub mod trace_context;

mod hex;
