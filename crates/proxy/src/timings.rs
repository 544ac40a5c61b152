//! Network timings per cluster (for the egress proxy, per destination): how long requests
//! waited for DNS, TCP connects, TLS handshakes, and the time to the response head.

use std::time::Duration;

use sekisho_telemetry::metrics::{Histogram, HistogramSnapshot, MetricWriter};

/// Latency histograms of one cluster's network steps (seconds).
#[derive(Debug)]
pub(crate) struct Timings {
    dns: Histogram,
    connect: Histogram,
    tls: Histogram,
    ttfb: Histogram,
}

/// A copy of a cluster's timings, for `/clusters` and metrics.
#[derive(Debug, Clone)]
pub struct TimingsSnapshot {
    /// DNS lookups a request had to wait for (a name's first resolution; later refreshes
    /// happen in the background and cost requests nothing).
    pub dns: HistogramSnapshot,
    /// TCP connects.
    pub connect: HistogramSnapshot,
    /// TLS handshakes.
    pub tls: HistogramSnapshot,
    /// From sending a request (including any wait for a connection) to its response head.
    pub ttfb: HistogramSnapshot,
}

impl TimingsSnapshot {
    /// Writes the four histograms as `{prefix}_{dns,connect,tls_handshake,first_byte}_seconds`.
    pub fn write(&self, w: &mut MetricWriter, prefix: &str, labels: &[(&str, &str)]) {
        let parts: [(&str, &str, &HistogramSnapshot); 4] = [
            (
                "dns",
                "Time requests waited for a DNS answer (first resolution of a name).",
                &self.dns,
            ),
            ("connect", "TCP connect time.", &self.connect),
            ("tls_handshake", "TLS handshake time.", &self.tls),
            (
                "first_byte",
                "Time from sending a request to its response head.",
                &self.ttfb,
            ),
        ];
        for (step, help, snap) in parts {
            w.histogram(&format!("{prefix}_{step}_seconds"), help, labels, snap);
        }
    }
}

impl Timings {
    pub(crate) fn new() -> Self {
        Timings {
            dns: Histogram::latency(),
            connect: Histogram::latency(),
            tls: Histogram::latency(),
            ttfb: Histogram::latency(),
        }
    }

    pub(crate) fn dns(&self, d: Duration) {
        self.dns.observe_duration(d);
    }

    pub(crate) fn connect(&self, d: Duration) {
        self.connect.observe_duration(d);
    }

    pub(crate) fn tls(&self, d: Duration) {
        self.tls.observe_duration(d);
    }

    pub(crate) fn ttfb(&self, d: Duration) {
        self.ttfb.observe_duration(d);
    }

    pub(crate) fn snapshot(&self) -> TimingsSnapshot {
        TimingsSnapshot {
            dns: self.dns.snapshot(),
            connect: self.connect.snapshot(),
            tls: self.tls.snapshot(),
            ttfb: self.ttfb.snapshot(),
        }
    }
}
