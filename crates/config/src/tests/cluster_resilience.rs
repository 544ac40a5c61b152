//! Cluster resilience keys: health checks, outlier detection, panic threshold, circuit
//! breaking, retry budget.

use std::time::Duration;

use super::{ok, one_error, MINIMAL};
use crate::model::{ClusterResilience, HealthCheck, OutlierDetection, RetryBudget};

/// MINIMAL with extra lines in its only cluster (which starts on line 8; extras from line 10).
fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

#[test]
fn defaults_without_keys() {
    let c = ok(MINIMAL);
    let r = &c.clusters[0].resilience;
    assert_eq!(*r, ClusterResilience::default());
    assert_eq!(r.health_check, None);
    assert_eq!(r.outlier_detection.consecutive_5xx, 5);
    assert_eq!(r.outlier_detection.consecutive_connect_failures, 5);
    assert_eq!(
        r.outlier_detection.base_ejection_time,
        Duration::from_secs(30)
    );
    assert_eq!(
        r.outlier_detection.max_ejection_time,
        Duration::from_secs(300)
    );
    assert_eq!(r.outlier_detection.max_ejection_percent, 50);
    assert_eq!((r.panic_threshold, r.max_requests), (50, 1024));
    assert_eq!(
        r.retry_budget,
        RetryBudget {
            percent: 20,
            min_retries_per_second: 10
        }
    );
}

#[test]
fn every_key() {
    let c = ok(&with(
        "    health_check: { path: /healthz?full=1, interval: 2s, timeout: 300ms, healthy_threshold: 1, unhealthy_threshold: 4, host: items.internal }
    outlier_detection: { consecutive_5xx: 0, consecutive_connect_failures: 2, base_ejection_time: 1s, max_ejection_time: 10s, max_ejection_percent: 100 }
    panic_threshold: 0
    max_requests: 7
    retry_budget: { percent: 50, min_retries_per_second: 0 }
",
    ));
    let r = &c.clusters[0].resilience;
    assert_eq!(
        r.health_check,
        Some(HealthCheck {
            path: "/healthz?full=1".into(),
            interval: Duration::from_secs(2),
            timeout: Duration::from_millis(300),
            healthy_threshold: 1,
            unhealthy_threshold: 4,
            host: Some("items.internal".into()),
        })
    );
    assert_eq!(
        r.outlier_detection,
        OutlierDetection {
            consecutive_5xx: 0,
            consecutive_connect_failures: 2,
            base_ejection_time: Duration::from_secs(1),
            max_ejection_time: Duration::from_secs(10),
            max_ejection_percent: 100,
        }
    );
    assert_eq!((r.panic_threshold, r.max_requests), (0, 7));
    assert_eq!(r.retry_budget.percent, 50);
    assert_eq!(r.retry_budget.min_retries_per_second, 0);
}

#[test]
fn health_check_defaults_and_required_path() {
    let c = ok(&with("    health_check: { path: / }\n"));
    let hc = c.clusters[0].resilience.health_check.clone().expect("set");
    assert_eq!(
        (
            hc.interval,
            hc.timeout,
            hc.healthy_threshold,
            hc.unhealthy_threshold
        ),
        (Duration::from_secs(5), Duration::from_secs(1), 2, 3)
    );
    assert_eq!(hc.host, None);
    one_error(
        &with("    health_check: { interval: 1s }\n"),
        "clusters[0].health_check",
        10,
        "missing required key `path`",
    );
    one_error(
        &with("    health_check: { path: healthz }\n"),
        "clusters[0].health_check.path",
        10,
        "must start with `/`",
    );
    one_error(
        &with("    health_check: { path: /h, interval: 0s }\n"),
        "clusters[0].health_check.interval",
        10,
        "greater than 0",
    );
    one_error(
        &with("    health_check: { path: /h, unhealthy_threshold: 0 }\n"),
        "clusters[0].health_check.unhealthy_threshold",
        10,
        "at least 1",
    );
    one_error(
        &with("    health_check: { path: /h, host: a/b }\n"),
        "clusters[0].health_check.host",
        10,
        "invalid host",
    );
    one_error(
        &with("    health_check: { path: /h, intervall: 1s }\n"),
        "clusters[0].health_check.intervall",
        10,
        "interval",
    );
}

#[test]
fn outlier_detection_errors() {
    one_error(
        &with("    outlier_detection: { base_ejection_time: 10s, max_ejection_time: 5s }\n"),
        "clusters[0].outlier_detection.max_ejection_time",
        10,
        "at least base_ejection_time",
    );
    one_error(
        &with("    outlier_detection: { max_ejection_percent: 101 }\n"),
        "clusters[0].outlier_detection.max_ejection_percent",
        10,
        "not a percentage",
    );
    // Raising only the base keeps the cap at least the base.
    let c = ok(&with(
        "    outlier_detection: { base_ejection_time: 10m }\n",
    ));
    let o = &c.clusters[0].resilience.outlier_detection;
    assert_eq!(o.max_ejection_time, Duration::from_secs(600));
}

#[test]
fn limits_and_budget_errors() {
    one_error(
        &with("    max_requests: 0\n"),
        "clusters[0].max_requests",
        10,
        "at least 1",
    );
    one_error(
        &with("    panic_threshold: 150\n"),
        "clusters[0].panic_threshold",
        10,
        "not a percentage",
    );
    one_error(
        &with("    retry_budget: { percent: -1 }\n"),
        "clusters[0].retry_budget.percent",
        10,
        "non-negative integer",
    );
}

#[test]
fn effective_json_shows_and_reparses() {
    let src = with(
        "    health_check: { path: /h, host: x.internal }\n    max_requests: 9\n    outlier_detection: { consecutive_5xx: 3 }\n",
    );
    let c = ok(&src);
    let v = c.effective_json();
    let cl = &v["clusters"][0];
    assert_eq!(cl["health_check"]["path"], "/h");
    assert_eq!(cl["health_check"]["interval"], "5s");
    assert_eq!(cl["health_check"]["host"], "x.internal");
    assert_eq!(cl["outlier_detection"]["consecutive_5xx"], 3);
    assert_eq!(cl["outlier_detection"]["base_ejection_time"], "30s");
    assert_eq!(cl["panic_threshold"], 50);
    assert_eq!(cl["max_requests"], 9);
    assert_eq!(cl["retry_budget"]["percent"], 20);
    let again = ok(&v.to_string());
    assert_eq!(again.clusters[0].resilience, c.clusters[0].resilience);
    // Without a health check the key is left out.
    assert!(ok(MINIMAL).effective_json()["clusters"][0]
        .get("health_check")
        .is_none());
}
