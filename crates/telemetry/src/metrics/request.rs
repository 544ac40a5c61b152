//! Per-(route, cluster) request metrics, recorded without locks or allocation.
//!
//! Status codes are counted exactly. The codes a gateway returns almost all
//! the time live in a fixed table of atomics indexed through a compile-time
//! lookup table. Any other code in 100..=999 goes to a block of 100 atomics
//! for its hundred (1xx, 2xx, ...), allocated the first time such a code is
//! seen on this handle and lock-free afterwards (`OnceLock::get` is one
//! atomic load). Codes outside 100..=999 cannot come from `http::StatusCode`
//! and are counted as `code="other"`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use super::encoder::MetricWriter;
use super::primitives::{Counter, Histogram};

/// Codes with a dedicated slot in every handle.
pub const TRACKED_STATUS_CODES: [u16; 21] = [
    200, 201, 204, 301, 302, 303, 304, 307, 308, 400, 401, 403, 404, 408, 413, 429, 499, 500, 502,
    503, 504,
];

const UNTRACKED: u8 = u8::MAX;

/// `CODE_SLOT[code]` is the index into `TRACKED_STATUS_CODES`, or `UNTRACKED`.
static CODE_SLOT: [u8; 1000] = {
    let mut t = [UNTRACKED; 1000];
    let mut i = 0;
    while i < TRACKED_STATUS_CODES.len() {
        t[TRACKED_STATUS_CODES[i] as usize] = i as u8;
        i += 1;
    }
    t
};

type RareBlock = [AtomicU64; 100];

/// Metric names written by [`RequestMetrics::write_to`].
pub(crate) const REQUESTS_TOTAL: &str = "sekisho_requests_total";
pub(crate) const DURATION_SECONDS: &str = "sekisho_request_duration_seconds";
pub(crate) const REQUEST_BYTES: &str = "sekisho_request_bytes_total";
pub(crate) const RESPONSE_BYTES: &str = "sekisho_response_bytes_total";

/// Request counters for one (route, cluster) label set.
///
/// Obtained from [`Registry::request_metrics`](super::Registry::request_metrics)
/// when the config is compiled; the request path only calls [`record`](Self::record).
#[derive(Debug)]
pub struct RequestMetrics {
    route: Box<str>,
    cluster: Box<str>,
    tracked: [AtomicU64; TRACKED_STATUS_CODES.len()],
    /// Index `h - 1` holds codes `h00..=h99`.
    rare: [OnceLock<Box<RareBlock>>; 9],
    other: AtomicU64,
    duration: Histogram,
    request_bytes: Counter,
    response_bytes: Counter,
}

impl RequestMetrics {
    pub(crate) fn new(route: &str, cluster: &str) -> Self {
        Self {
            route: route.into(),
            cluster: cluster.into(),
            tracked: std::array::from_fn(|_| AtomicU64::new(0)),
            rare: std::array::from_fn(|_| OnceLock::new()),
            other: AtomicU64::new(0),
            duration: Histogram::latency(),
            request_bytes: Counter::new(),
            response_bytes: Counter::new(),
        }
    }

    /// The `route` label.
    pub fn route(&self) -> &str {
        &self.route
    }

    /// The `cluster` label.
    pub fn cluster(&self) -> &str {
        &self.cluster
    }

    /// Records one finished request: its status, total latency and body sizes.
    #[inline]
    pub fn record(&self, status: u16, latency: Duration, req_bytes: u64, resp_bytes: u64) {
        self.status_cell(status).fetch_add(1, Ordering::Relaxed);
        self.duration.observe_duration(latency);
        if req_bytes != 0 {
            self.request_bytes.add(req_bytes);
        }
        if resp_bytes != 0 {
            self.response_bytes.add(resp_bytes);
        }
    }

    #[inline]
    fn status_cell(&self, status: u16) -> &AtomicU64 {
        let slot = CODE_SLOT.get(usize::from(status)).copied();
        match slot {
            Some(s) if s != UNTRACKED => self.tracked.get(usize::from(s)).unwrap_or(&self.other),
            Some(_) => self.rare_cell(status),
            None => &self.other,
        }
    }

    #[cold]
    fn rare_cell(&self, status: u16) -> &AtomicU64 {
        let hundred = usize::from(status / 100);
        let Some(block) = hundred.checked_sub(1).and_then(|i| self.rare.get(i)) else {
            return &self.other;
        };
        let block = block.get_or_init(|| Box::new(std::array::from_fn(|_| AtomicU64::new(0))));
        block.get(usize::from(status % 100)).unwrap_or(&self.other)
    }

    /// Non-zero request counts by status code, ascending; `None` is `other`.
    pub fn status_counts(&self) -> Vec<(Option<u16>, u64)> {
        let mut v: Vec<(Option<u16>, u64)> = TRACKED_STATUS_CODES
            .iter()
            .zip(&self.tracked)
            .map(|(code, n)| (Some(*code), n.load(Ordering::Relaxed)))
            .collect();
        for (h, block) in (1u16..).zip(&self.rare) {
            if let Some(block) = block.get() {
                for (off, n) in (0u16..).zip(block.iter()) {
                    v.push((Some(h * 100 + off), n.load(Ordering::Relaxed)));
                }
            }
        }
        v.push((None, self.other.load(Ordering::Relaxed)));
        v.retain(|(_, n)| *n != 0);
        v.sort_unstable_by_key(|(c, _)| c.map_or(u16::MAX, |c| c));
        v
    }

    /// Total requests recorded on this handle.
    pub fn requests(&self) -> u64 {
        self.status_counts().iter().map(|(_, n)| n).sum()
    }

    /// Appends this handle's samples to `w`.
    pub(crate) fn write_to(&self, w: &mut MetricWriter) {
        let (route, cluster) = (&*self.route, &*self.cluster);
        let mut code_buf = String::with_capacity(5);
        for (code, n) in self.status_counts() {
            code_buf.clear();
            match code {
                Some(c) => {
                    use std::fmt::Write as _;
                    let _ = write!(code_buf, "{c}");
                }
                None => code_buf.push_str("other"),
            }
            w.counter(
                REQUESTS_TOTAL,
                "Requests handled, by route, cluster and exact status code.",
                &[("route", route), ("cluster", cluster), ("code", &code_buf)],
                n,
            );
        }
        let labels = [("route", route), ("cluster", cluster)];
        w.histogram(
            DURATION_SECONDS,
            "Time from request received to response finished, in seconds.",
            &labels,
            &self.duration.snapshot(),
        );
        w.counter(
            REQUEST_BYTES,
            "Request body bytes received from clients.",
            &labels,
            self.request_bytes.get(),
        );
        w.counter(
            RESPONSE_BYTES,
            "Response body bytes sent to clients.",
            &labels,
            self.response_bytes.get(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slot_table_matches_code_list() {
        for (i, c) in TRACKED_STATUS_CODES.iter().enumerate() {
            assert_eq!(usize::from(CODE_SLOT[usize::from(*c)]), i);
        }
        assert_eq!(CODE_SLOT[418], UNTRACKED);
    }

    #[test]
    fn exact_codes_tracked_rare_and_other() {
        let m = RequestMetrics::new("r", "c");
        let d = Duration::from_millis(1);
        for status in [200, 200, 404, 418, 422, 422, 599, 999, 0, 1000, 42] {
            m.record(status, d, 10, 20);
        }
        assert_eq!(
            m.status_counts(),
            vec![
                (Some(200), 2),
                (Some(404), 1),
                (Some(418), 1),
                (Some(422), 2),
                (Some(599), 1),
                (Some(999), 1),
                (None, 3),
            ]
        );
        assert_eq!(m.requests(), 11);
        assert_eq!(m.request_bytes.get(), 110);
        assert_eq!(m.response_bytes.get(), 220);
        assert_eq!(m.duration.snapshot().count, 11);
    }
}
