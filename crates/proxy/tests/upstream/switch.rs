//! A test upstream whose health can be switched: `/healthz` answers 503 and (optionally)
//! every other path 500 while it is failing. Counts health checks.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http::{Response, StatusCode};
use sekisho_config::{Cluster as ClusterConfig, HealthCheck, LbPolicy, OutlierDetection, Protocol};

use crate::support::*;

pub struct Switch {
    pub server: Server,
    /// `/healthz` fails (503).
    pub check_fails: Arc<AtomicBool>,
    /// Every other path fails (500).
    pub requests_fail: Arc<AtomicBool>,
    pub checks: Arc<AtomicUsize>,
}

impl Switch {
    pub async fn start() -> Self {
        let check_fails = Arc::new(AtomicBool::new(false));
        let requests_fail = Arc::new(AtomicBool::new(false));
        let checks = Arc::new(AtomicUsize::new(0));
        let (cf, rf, n) = (check_fails.clone(), requests_fail.clone(), checks.clone());
        let h = handler(move |req: http::Request<hyper::body::Incoming>| {
            let (cf, rf, n) = (cf.clone(), rf.clone(), n.clone());
            async move {
                let failing = if req.uri().path() == "/healthz" {
                    assert_eq!(req.headers()["user-agent"], "sekisho-health-check");
                    n.fetch_add(1, Ordering::SeqCst);
                    cf.load(Ordering::SeqCst)
                } else {
                    rf.load(Ordering::SeqCst)
                };
                let status = match (failing, req.uri().path()) {
                    (false, _) => StatusCode::OK,
                    (true, "/healthz") => StatusCode::SERVICE_UNAVAILABLE,
                    (true, _) => StatusCode::INTERNAL_SERVER_ERROR,
                };
                let mut resp = Response::new(text("x"));
                *resp.status_mut() = status;
                resp
            }
        });
        Self {
            server: server(Serve::H1, h).await,
            check_fails,
            requests_fail,
            checks,
        }
    }

    pub fn addr(&self) -> std::net::SocketAddr {
        self.server.addr
    }

    pub fn set_check_fails(&self, v: bool) {
        self.check_fails.store(v, Ordering::SeqCst);
    }

    pub fn set_requests_fail(&self, v: bool) {
        self.requests_fail.store(v, Ordering::SeqCst);
    }

    pub fn checks(&self) -> usize {
        self.checks.load(Ordering::SeqCst)
    }
}

/// A round-robin cluster over `addrs` with outlier detection off unless set.
pub fn rr_cluster(addrs: &[std::net::SocketAddr]) -> ClusterConfig {
    let mut cfg = cluster(
        addrs.iter().map(|a| endpoint(*a, 1)).collect(),
        Protocol::Http1,
    );
    cfg.lb = LbPolicy::RoundRobin;
    cfg.resilience.outlier_detection = OutlierDetection {
        consecutive_5xx: 0,
        consecutive_connect_failures: 0,
        ..OutlierDetection::default()
    };
    cfg
}

/// Fast checks: every 50 ms, 2 in a row to change.
pub fn fast_checks() -> HealthCheck {
    HealthCheck {
        path: "/healthz".into(),
        interval: Duration::from_millis(50),
        timeout: Duration::from_secs(1),
        healthy_threshold: 2,
        unhealthy_threshold: 2,
        host: Some("health.test".into()),
    }
}

/// Outlier detection ejecting after `n` 5xx in a row.
pub fn eject_after(n: u32, base: Duration) -> OutlierDetection {
    OutlierDetection {
        consecutive_5xx: n,
        consecutive_connect_failures: n,
        base_ejection_time: base,
        max_ejection_time: base * 10,
        max_ejection_percent: 50,
    }
}

/// Polls an async condition every 20 ms for up to `secs` seconds.
pub async fn within<F, Fut>(secs: u64, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not within {secs} s: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Sends one GET and returns the answering address and status (None on an error).
pub async fn hit(cluster: &sekisho_proxy::Cluster) -> Option<(std::net::SocketAddr, u16)> {
    let resp = cluster.send(get("/")).await.ok()?;
    let status = resp.response.status().as_u16();
    let addr = resp.endpoint;
    body_string(resp.response).await;
    Some((addr, status))
}
