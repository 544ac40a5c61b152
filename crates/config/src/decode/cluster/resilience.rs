//! `clusters[i].health_check`, `outlier_detection`, `panic_threshold`, `max_requests`
//! and `retry_budget`.

use std::time::Duration;

use crate::decode::{Decoder, Fields};
use crate::keys;
use crate::model::{ClusterResilience, HealthCheck, OutlierDetection, RetryBudget};
use crate::yaml::Node;

/// `health_check.interval` when absent.
const DEFAULT_INTERVAL: Duration = Duration::from_secs(5);
/// `health_check.timeout` when absent.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(1);

/// Decodes the resilience keys of one cluster mapping; absent keys get their defaults.
pub(crate) fn decode(d: &mut Decoder, f: &Fields) -> ClusterResilience {
    let mut r = ClusterResilience {
        health_check: f
            .get("health_check")
            .and_then(|n| health_check(d, n, &f.path("health_check"))),
        ..Default::default()
    };
    if let Some(n) = f.get("outlier_detection") {
        r.outlier_detection = outlier_detection(d, n, &f.path("outlier_detection"));
    }
    if let Some(v) = f
        .get("panic_threshold")
        .and_then(|n| percent(d, n, &f.path("panic_threshold")))
    {
        r.panic_threshold = v;
    }
    if let Some(v) = f
        .get("max_requests")
        .and_then(|n| d.at_least_one(n, &f.path("max_requests")))
    {
        r.max_requests = v;
    }
    if let Some(n) = f.get("retry_budget") {
        r.retry_budget = retry_budget(d, n, &f.path("retry_budget"));
    }
    r
}

fn health_check(d: &mut Decoder, node: &Node, path: &str) -> Option<HealthCheck> {
    let f = d.map(node, path, keys::HEALTH_CHECK)?;
    let check_path = f
        .required(d, "path")
        .and_then(|n| d.check(n, &f.path("path"), request_path));
    let mut hc = HealthCheck {
        path: String::new(),
        interval: DEFAULT_INTERVAL,
        timeout: DEFAULT_TIMEOUT,
        healthy_threshold: 2,
        unhealthy_threshold: 3,
        host: f
            .get("host")
            .and_then(|n| d.check(n, &f.path("host"), host_header)),
    };
    if let Some(v) = f
        .get("interval")
        .and_then(|n| d.positive_duration(n, &f.path("interval")))
    {
        hc.interval = v;
    }
    if let Some(v) = f
        .get("timeout")
        .and_then(|n| d.positive_duration(n, &f.path("timeout")))
    {
        hc.timeout = v;
    }
    if let Some(v) = f
        .get("healthy_threshold")
        .and_then(|n| d.at_least_one(n, &f.path("healthy_threshold")))
    {
        hc.healthy_threshold = v;
    }
    if let Some(v) = f
        .get("unhealthy_threshold")
        .and_then(|n| d.at_least_one(n, &f.path("unhealthy_threshold")))
    {
        hc.unhealthy_threshold = v;
    }
    hc.path = check_path?;
    Some(hc)
}

fn outlier_detection(d: &mut Decoder, node: &Node, path: &str) -> OutlierDetection {
    let mut o = OutlierDetection::default();
    let Some(f) = d.map(node, path, keys::OUTLIER_DETECTION) else {
        return o;
    };
    // 0 is allowed for both counts: that criterion never ejects.
    if let Some(v) = f
        .get("consecutive_5xx")
        .and_then(|n| d.int(n, &f.path("consecutive_5xx")))
    {
        o.consecutive_5xx = v;
    }
    if let Some(v) = f
        .get("consecutive_connect_failures")
        .and_then(|n| d.int(n, &f.path("consecutive_connect_failures")))
    {
        o.consecutive_connect_failures = v;
    }
    if let Some(v) = f
        .get("base_ejection_time")
        .and_then(|n| d.positive_duration(n, &f.path("base_ejection_time")))
    {
        o.base_ejection_time = v;
    }
    let max = f.get("max_ejection_time").and_then(|n| {
        d.positive_duration(n, &f.path("max_ejection_time"))
            .map(|v| (n, v))
    });
    if let Some((n, v)) = max {
        if v < o.base_ejection_time {
            d.error(
                &f.path("max_ejection_time"),
                n.mark,
                "must be at least base_ejection_time",
            );
        }
        o.max_ejection_time = v;
    } else if f.get("max_ejection_time").is_none() {
        // Only the base was raised: keep the cap at least the base.
        o.max_ejection_time = o.max_ejection_time.max(o.base_ejection_time);
    }
    if let Some(v) = f
        .get("max_ejection_percent")
        .and_then(|n| percent(d, n, &f.path("max_ejection_percent")))
    {
        o.max_ejection_percent = v;
    }
    o
}

fn retry_budget(d: &mut Decoder, node: &Node, path: &str) -> RetryBudget {
    let mut b = RetryBudget::default();
    let Some(f) = d.map(node, path, keys::RETRY_BUDGET) else {
        return b;
    };
    if let Some(v) = f
        .get("percent")
        .and_then(|n| percent(d, n, &f.path("percent")))
    {
        b.percent = v;
    }
    if let Some(v) = f
        .get("min_retries_per_second")
        .and_then(|n| d.int(n, &f.path("min_retries_per_second")))
    {
        b.min_retries_per_second = v;
    }
    b
}

/// An integer from 0 to 100.
fn percent(d: &mut Decoder, node: &Node, path: &str) -> Option<u32> {
    let v: u32 = d.int(node, path)?;
    if v > 100 {
        d.error(path, node.mark, format!("{v} is not a percentage (0-100)"));
        return None;
    }
    Some(v)
}

/// A request target in origin form: `/` followed by visible ASCII.
fn request_path(s: &str) -> Result<String, String> {
    if !s.starts_with('/') {
        return Err(format!("invalid path {s:?}: must start with `/`"));
    }
    if !s.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(format!(
            "invalid path {s:?}: only visible ASCII (percent-encode the rest)"
        ));
    }
    Ok(s.to_string())
}

/// A `Host` header value: `name` or `name:port`, visible ASCII without `/`.
fn host_header(s: &str) -> Result<String, String> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
        return Err(format!("invalid host {s:?}: expected a name or name:port"));
    }
    Ok(s.to_string())
}
