//! The cluster's health-aware half: choosing an address in rotation (avoiding the ones a
//! retry already tried), learning from each outcome, ejecting and re-admitting
//! addresses, and the retry budget.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use http::uri::Scheme;
use hyper::body::Incoming;
use sekisho_config::LbPolicy;

use super::Cluster;
use crate::connect::Connector;
use crate::endpoints::{Endpoint, EndpointSet};
use crate::error::UpstreamError;
use crate::health::{may_eject, Outcome};
use crate::lb::{Balancer, ThreadRandom};

impl Cluster {
    /// Takes one retry from the cluster's retry budget: true while retries over the last
    /// ten seconds stay within `retry_budget.percent` of the requests, or fewer than
    /// `retry_budget.min_retries_per_second` were taken this second. Call it before each
    /// retry (not before a first try); a refusal is counted
    /// ([`ClusterSnapshot::retry_budget_exhausted_total`](crate::ClusterSnapshot::retry_budget_exhausted_total)).
    pub fn try_acquire_retry(&self) -> bool {
        self.budget.try_acquire()
    }

    /// An address from the rotation, preferring one not in `exclude`.
    pub(super) async fn pick(
        &self,
        exclude: &[SocketAddr],
    ) -> Result<Arc<Endpoint>, UpstreamError> {
        if !self.set.load().resolved {
            // Only before the first DNS answers are in: afterwards the set is refreshed
            // in the background and requests never wait on DNS.
            self.refresh().await;
        }
        let set = self.set.load();
        if set.panic {
            self.panic_routed.fetch_add(1, Ordering::Relaxed);
        }
        let first = set
            .balancer
            .pick(&set.rotation, &mut ThreadRandom)
            .and_then(|i| set.rotation.get(i));
        match first {
            Some(e) if exclude.is_empty() || !exclude.contains(&e.addr) => Ok(e.clone()),
            Some(e) => Ok(pick_other(&set, exclude).unwrap_or_else(|| e.clone())),
            None if set.endpoints.is_empty() => Err(UpstreamError::NoEndpoints {
                cluster: self.name.clone(),
            }),
            None => Err(UpstreamError::NoHealthyEndpoints {
                cluster: self.name.clone(),
            }),
        }
    }

    /// Feeds one request's outcome to outlier detection; ejects the address when it
    /// reached a threshold and the cluster may spare it.
    pub(super) fn observe(
        &self,
        ep: &Arc<Endpoint>,
        result: &Result<http::Response<Incoming>, UpstreamError>,
    ) {
        let outcome = match result {
            Ok(r) if r.status().is_server_error() => Outcome::ServerError,
            Ok(_) => Outcome::Success,
            Err(
                UpstreamError::ConnectFailed { .. }
                | UpstreamError::ConnectTimeout { .. }
                | UpstreamError::Tls { .. }
                | UpstreamError::Handshake { .. },
            ) => Outcome::ConnectFailure,
            Err(UpstreamError::Reset { .. } | UpstreamError::Protocol { .. }) => {
                Outcome::ServerError
            }
            Err(_) => Outcome::Neutral,
        };
        self.record_outcome(ep, outcome);
    }

    /// Counts one outcome against `ep`; ejects it when that reaches a threshold.
    pub(super) fn record_outcome(&self, ep: &Arc<Endpoint>, outcome: Outcome) {
        if ep.health.record(outcome, &self.outlier) {
            self.try_eject(ep);
        }
    }

    /// Ejects `ep` unless that would eject more than `max_ejection_percent` of the
    /// addresses; either way its failure counts start over.
    fn try_eject(&self, ep: &Arc<Endpoint>) {
        let length = {
            let _rebuilding = self.rebuilding.lock();
            let now = self.clock.now_ms();
            if ep.health.is_ejected(now) {
                return;
            }
            let set = self.set.load();
            let total = set.endpoints.len();
            let ejected = set
                .endpoints
                .iter()
                .filter(|e| e.health.is_ejected(now))
                .count();
            if !set.endpoints.iter().any(|e| Arc::ptr_eq(e, ep))
                || !may_eject(ejected, total, self.outlier.max_ejection_percent)
            {
                ep.health.clear_counts();
                return;
            }
            let length = ep.health.eject(now, &self.outlier);
            self.store_rebuilt(&set, now);
            length
        };
        tracing::warn!(cluster = %self.name, endpoint = %ep.addr, ejection = ?length, "endpoint ejected (outlier detection)");
        // Re-admit when the ejection ends; a strong reference would keep the cluster alive.
        let me = self.me.clone();
        tokio::spawn(async move {
            tokio::time::sleep(length).await;
            if let Some(cluster) = me.upgrade() {
                cluster.rebuild();
            }
        });
    }

    /// Rebuilds the rotation from every address's current health.
    pub(crate) fn rebuild(&self) {
        let _rebuilding = self.rebuilding.lock();
        let now = self.clock.now_ms();
        let set = self.set.load();
        if !set.is_current(now) {
            self.store_rebuilt(&set, now);
        }
    }

    /// Stores a set with `set`'s addresses and a fresh rotation; the caller holds `rebuilding`.
    fn store_rebuilt(&self, set: &EndpointSet, now: u64) {
        let next = EndpointSet::new(set.config, set.endpoints.clone(), set.resolved, now);
        if next.panic && !set.panic {
            tracing::warn!(cluster = %self.name, healthy = next.healthy, total = next.endpoints.len(), "too few healthy endpoints: panic mode, routing to all");
        }
        self.set.store(Arc::new(next));
    }

    /// The current addresses (for health checks).
    pub(crate) fn endpoint_list(&self) -> Vec<Arc<Endpoint>> {
        self.set.load().endpoints.clone()
    }

    pub(crate) fn connector(&self) -> &Connector {
        &self.connector
    }

    pub(crate) fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    pub(crate) fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

/// An address from the rotation not in `exclude`, if there is one. Only on retries, so
/// it may allocate: weighted random among the others (least request: power of two
/// choices), since round robin's position is the main balancer's.
fn pick_other(set: &EndpointSet, exclude: &[SocketAddr]) -> Option<Arc<Endpoint>> {
    let others: Vec<Arc<Endpoint>> = set
        .rotation
        .iter()
        .filter(|e| !exclude.contains(&e.addr))
        .cloned()
        .collect();
    let policy = match set.config.policy {
        LbPolicy::LeastRequest => LbPolicy::LeastRequest,
        LbPolicy::RoundRobin | LbPolicy::Random => LbPolicy::Random,
    };
    let balancer = Balancer::new(policy, others.iter().map(|e| e.origin.weight));
    let i = balancer.pick(&others, &mut ThreadRandom)?;
    others.get(i).cloned()
}
