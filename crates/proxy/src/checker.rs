//! Active health checks: every `interval`, a `GET path` to each address of the cluster on
//! a connection of its own (never a pool slot), bounded by `timeout`.
//!
//! The task holds only a weak reference between rounds, so it stops once the cluster is
//! dropped; during a round (at most `timeout` long) it holds a strong one.

use std::sync::{Arc, Weak};

use bytes::Bytes;
use http::header::{HOST, USER_AGENT};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use sekisho_config::HealthCheck;
use tokio::task::JoinSet;

use crate::cluster::Cluster;
use crate::connect::Handshake;
use crate::endpoints::Endpoint;
use crate::request::{to_absolute_form, to_origin_form};
use crate::snapshot::CheckResult;
use crate::{BoxError, UpstreamBody};

/// Runs the checks of one cluster until it is dropped. The first round starts at once,
/// so an address that is down at start leaves the rotation after one `timeout`.
pub(crate) async fn run(cluster: Weak<Cluster>, cfg: Arc<HealthCheck>) {
    let mut interval = tokio::time::interval(cfg.interval);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        interval.tick().await;
        let Some(c) = cluster.upgrade() else {
            return;
        };
        let mut checks = JoinSet::new();
        for ep in c.endpoint_list() {
            let (c, cfg) = (c.clone(), cfg.clone());
            checks.spawn(async move {
                let result = check(&c, &ep, &cfg).await;
                (ep, result)
            });
        }
        let mut changed = false;
        while let Some(done) = checks.join_next().await {
            if let Ok((ep, result)) = done {
                if !result.passed {
                    tracing::debug!(cluster = %c.name(), endpoint = %ep.addr, detail = %result.detail, "health check failed");
                }
                if ep.health.apply_check(result, &cfg) {
                    tracing::info!(cluster = %c.name(), endpoint = %ep.addr, status = %ep.health.status(c.now_ms()).as_str(), "endpoint health changed");
                    changed = true;
                }
            }
        }
        if changed {
            c.rebuild();
        }
    }
}

/// One check of one address, bounded by `timeout`.
async fn check(cluster: &Cluster, ep: &Endpoint, cfg: &HealthCheck) -> CheckResult {
    match tokio::time::timeout(cfg.timeout, probe(cluster, ep, cfg)).await {
        Err(_) => CheckResult {
            passed: false,
            detail: format!("timed out after {:?}", cfg.timeout),
        },
        Ok(Err(detail)) => CheckResult {
            passed: false,
            detail,
        },
        Ok(Ok(status)) => CheckResult {
            passed: status.is_success(),
            detail: match status.canonical_reason() {
                Some(reason) => format!("{} {reason}", status.as_u16()),
                None => status.as_u16().to_string(),
            },
        },
    }
}

/// Dials, sends the request and returns the response status. The connection is driven
/// here and dropped (closed) with the future: nothing outlives the check.
async fn probe(cluster: &Cluster, ep: &Endpoint, cfg: &HealthCheck) -> Result<StatusCode, String> {
    let mut req = request(ep, cfg)?;
    let handshake = cluster
        .connector()
        .handshake(ep.addr, ep.origin.server_name.as_ref())
        .await
        .map_err(|e| e.to_string())?;
    match handshake {
        Handshake::H1(mut tx, conn) => {
            to_origin_form(&mut req, &ep.origin);
            tokio::select! {
                r = tx.send_request(req) => r.map(|r| r.status()).map_err(|e| e.to_string()),
                r = conn => Err(closed(r.err())),
            }
        }
        Handshake::H2(mut tx, conn) => {
            to_absolute_form(&mut req, cluster.scheme(), &ep.origin).map_err(|e| e.to_string())?;
            tokio::select! {
                r = tx.send_request(req) => r.map(|r| r.status()).map_err(|e| e.to_string()),
                r = conn => Err(closed(r.err())),
            }
        }
    }
}

fn request(ep: &Endpoint, cfg: &HealthCheck) -> Result<Request<UpstreamBody>, String> {
    let host = match &cfg.host {
        Some(h) => HeaderValue::from_str(h).map_err(|e| e.to_string())?,
        None => ep.origin.host_header.clone(),
    };
    let body = Empty::<Bytes>::new()
        .map_err(|never| -> BoxError { match never {} })
        .boxed_unsync();
    Request::get(cfg.path.as_str())
        .header(HOST, host)
        .header(USER_AGENT, "sekisho-health-check")
        .body(body)
        .map_err(|e| e.to_string())
}

fn closed(err: Option<hyper::Error>) -> String {
    match err {
        Some(e) => format!("connection failed: {e}"),
        None => "connection closed before a response".to_string(),
    }
}
