//! Prometheus metrics: lock-free cells, per-route request handles, a registry
//! and a text-format writer for collectors of state owned elsewhere.
//!
//! ```
//! use std::time::Duration;
//! use sekisho_telemetry::metrics::Registry;
//!
//! let registry = Registry::new();
//! // At config compile time, once per route x cluster:
//! let handle = registry.request_metrics("payments", "payment");
//! // Per request: atomics only.
//! handle.record(200, Duration::from_millis(3), 120, 4096);
//! let mut out = String::new();
//! registry.render(&mut out);
//! assert!(out.contains(r#"sekisho_requests_total{route="payments",cluster="payment",code="200"} 1"#));
//! ```

mod encoder;
mod primitives;
mod registry;
mod request;

pub use encoder::{MetricKind, MetricWriter, CONTENT_TYPE};
pub use primitives::{Counter, Gauge, Histogram, HistogramSnapshot, LATENCY_BUCKETS};
pub use registry::{Collector, MetricsError, Registry};
pub use request::{RequestMetrics, TRACKED_STATUS_CODES};

#[cfg(test)]
mod tests;
