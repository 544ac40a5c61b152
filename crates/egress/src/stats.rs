//! `/.api/http-stats`: chocon's request statistics (the go-httpstats JSON shape):
//! `{"request":{"count","status_count"},"response":{"max_time","min_time","average_time",
//! "percentiled_time":{"90","95","99"}}}`, times in seconds over the latest samples.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Response times kept for percentiles (chocon's `--stsize` default).
const SAMPLES: usize = 1000;
/// Statuses always listed, even at zero (go-httpstats' list).
const LISTED: [u16; 10] = [200, 400, 401, 403, 404, 500, 501, 502, 503, 504];

/// Counters and a ring of recent response times.
#[derive(Debug)]
pub(crate) struct HttpStats {
    count: AtomicU64,
    by_status: Vec<AtomicU64>,
    ring: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    samples: Vec<f64>,
    next: usize,
}

impl HttpStats {
    pub(crate) fn new() -> Self {
        Self {
            count: AtomicU64::new(0),
            by_status: (0..600).map(|_| AtomicU64::new(0)).collect(),
            ring: Mutex::new(Ring::default()),
        }
    }

    pub(crate) fn record(&self, status: u16, time: Duration) {
        self.count.fetch_add(1, Ordering::Relaxed);
        if let Some(c) = self.by_status.get(usize::from(status)) {
            c.fetch_add(1, Ordering::Relaxed);
        }
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let secs = time.as_secs_f64();
        if ring.samples.len() < SAMPLES {
            ring.samples.push(secs);
        } else {
            let i = ring.next;
            if let Some(slot) = ring.samples.get_mut(i) {
                *slot = secs;
            }
        }
        ring.next = (ring.next + 1) % SAMPLES;
    }

    /// The JSON document.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let mut samples = self
            .ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .samples
            .clone();
        samples.sort_by(f64::total_cmp);
        let mut status = serde_json::Map::new();
        for (code, c) in self.by_status.iter().enumerate() {
            let n = c.load(Ordering::Relaxed);
            let listed = u16::try_from(code).is_ok_and(|c| LISTED.contains(&c));
            if n > 0 || listed {
                status.insert(code.to_string(), n.into());
            }
        }
        let (min, max) = (
            samples.first().copied().unwrap_or(0.0),
            samples.last().copied().unwrap_or(0.0),
        );
        let avg = if samples.is_empty() {
            0.0
        } else {
            samples.iter().sum::<f64>() / samples.len() as f64
        };
        serde_json::json!({
            "request": {
                "count": self.count.load(Ordering::Relaxed),
                "status_count": status,
            },
            "response": {
                "max_time": max,
                "min_time": min,
                "average_time": avg,
                "percentiled_time": {
                    "90": percentile(&samples, 90.0),
                    "95": percentile(&samples, 95.0),
                    "99": percentile(&samples, 99.0),
                },
            },
        })
    }
}

/// Nearest-rank percentile of sorted samples (0 when empty).
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted
        .get(rank.saturating_sub(1).min(sorted.len() - 1))
        .copied()
        .unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shape_and_values() {
        let s = HttpStats::new();
        for ms in 1..=100 {
            s.record(200, Duration::from_millis(ms));
        }
        s.record(502, Duration::from_millis(1));
        s.record(508, Duration::from_millis(1));
        let j = s.to_json();
        assert_eq!(j["request"]["count"], 102);
        assert_eq!(j["request"]["status_count"]["200"], 100);
        assert_eq!(j["request"]["status_count"]["502"], 1);
        assert_eq!(j["request"]["status_count"]["508"], 1);
        assert_eq!(j["request"]["status_count"]["404"], 0);
        let r = &j["response"];
        assert_eq!(r["max_time"], 0.1);
        assert_eq!(r["min_time"], 0.001);
        assert_eq!(r["percentiled_time"]["90"], 0.09);
        assert_eq!(r["percentiled_time"]["99"], 0.099);
        assert!(r["average_time"]
            .as_f64()
            .is_some_and(|a| a > 0.04 && a < 0.06));
    }

    #[test]
    fn ring_keeps_the_latest() {
        let s = HttpStats::new();
        for _ in 0..SAMPLES {
            s.record(200, Duration::from_secs(1));
        }
        for _ in 0..SAMPLES {
            s.record(200, Duration::from_millis(1));
        }
        assert_eq!(s.to_json()["response"]["max_time"], 0.001);
    }

    #[test]
    fn empty_is_zeroes() {
        let j = HttpStats::new().to_json();
        assert_eq!(j["request"]["count"], 0);
        assert_eq!(j["response"]["percentiled_time"]["99"], 0.0);
    }
}
