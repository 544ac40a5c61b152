//! Route-level resilience keys: `retry`, `per_try_timeout`, `mirror`.

use std::time::Duration;

use super::{errs, ok, one_error, MINIMAL};
use crate::RetryOn;

fn with_route_keys(extra: &str) -> String {
    MINIMAL.replace(
        "    cluster: backend\n",
        &format!("    cluster: backend\n{extra}"),
    )
}

#[test]
fn retry_mirror_and_per_try_timeout_decode_with_defaults() {
    let c = ok(&with_route_keys(
        "    per_try_timeout: 500ms\n    retry: { attempts: 2 }\n    mirror: { cluster: backend }\n",
    ));
    let r = &c.routes[0];
    assert_eq!(r.per_try_timeout, Some(Duration::from_millis(500)));
    let retry = r.retry.as_ref().unwrap();
    assert_eq!(retry.attempts, 2);
    assert_eq!(retry.on, [RetryOn::ConnectFailure, RetryOn::Reset]);
    assert!(retry.statuses.is_empty() && !retry.non_idempotent);
    assert_eq!(
        (retry.backoff_base, retry.backoff_max),
        (Duration::from_millis(25), Duration::from_millis(250))
    );
    let m = r.mirror.as_ref().unwrap();
    assert_eq!((m.cluster.as_str(), m.percent), ("backend", 100.0));

    let c = ok(&with_route_keys(
        "    retry:\n      attempts: 3\n      on: [5xx, gateway-error, connect-failure]\n      statuses: [409]\n      non_idempotent: true\n      backoff: { base: 10ms, max: 1s }\n    mirror: { cluster: backend, percent: 12.5 }\n",
    ));
    let retry = c.routes[0].retry.as_ref().unwrap();
    assert_eq!(
        retry.on,
        [
            RetryOn::Status5xx,
            RetryOn::GatewayError,
            RetryOn::ConnectFailure
        ]
    );
    assert_eq!(retry.statuses, [409]);
    assert!(retry.non_idempotent);
    assert_eq!(retry.backoff_max, Duration::from_secs(1));
    assert_eq!(c.routes[0].mirror.as_ref().unwrap().percent, 12.5);
    let json = c.effective_json();
    assert_eq!(json["routes"][0]["retry"]["on"][0], "5xx");
    assert_eq!(json["routes"][0]["mirror"]["percent"], 12.5);
}

#[test]
fn retry_and_mirror_errors_name_their_place() {
    one_error(
        &with_route_keys("    retry: { attempts: 11 }\n"),
        "routes[0].retry.attempts",
        7,
        "at most 10 retries",
    );
    one_error(
        &with_route_keys("    retry: { attempts: 0 }\n"),
        "routes[0].retry.attempts",
        7,
        "",
    );
    one_error(
        &with_route_keys("    retry: { on: [reset] }\n"),
        "routes[0].retry",
        7,
        "attempts",
    );
    one_error(
        &with_route_keys("    retry: { attempts: 1, on: [timeouts] }\n"),
        "routes[0].retry.on[0]",
        7,
        "timeouts",
    );
    one_error(
        &with_route_keys("    retry: { attempts: 1, statuses: [700] }\n"),
        "routes[0].retry.statuses[0]",
        7,
        "invalid status 700",
    );
    one_error(
        &with_route_keys("    retry: { attempts: 1, backoff: { base: 2s, max: 1s } }\n"),
        "routes[0].retry.backoff",
        7,
        "`base` must not exceed `max`",
    );
    one_error(
        &with_route_keys("    mirror: { cluster: shadow }\n"),
        "routes[0].mirror.cluster",
        7,
        "unknown cluster `shadow`",
    );
    one_error(
        &with_route_keys("    mirror: { cluster: backend, percent: 150 }\n"),
        "routes[0].mirror.percent",
        7,
        "0 to 100",
    );
    let e = errs(&with_route_keys("    per_try_timeout: 0s\n"));
    assert_eq!(e.0[0].path, "routes[0].per_try_timeout");
}
