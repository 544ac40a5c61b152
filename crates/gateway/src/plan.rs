//! Compiling a [`Config`] into the immutable plan that serves requests.
//!
//! The plan holds the router, each route's compiled filters and its cluster handles. A reload
//! builds a new plan and swaps it in; requests in flight keep the plan they started with.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method, StatusCode};
use sekisho_config::Config;
use sekisho_config::{ConfigError, ConfigErrors, Location, Route, RouteAction};
use sekisho_discovery::DnsCache;
use sekisho_proxy::Cluster;
use sekisho_router::{
    BuildError, HeaderLookup, HeaderPredicate, HostMatch, PathMatch, RouteSpec, Router,
    RouterBuilder,
};
use sekisho_telemetry::metrics::{Registry, RequestMetrics};

use crate::forward::{MirrorTarget, RetryPolicy, MIRROR_SLOTS};
use crate::headers::HeaderEdits;
use crate::policies::{Policies, RoutePolicies};
use crate::transcoding::TranscodeRoute;

/// The compiled, immutable form of a config.
pub struct Plan {
    /// Routes by host, path and predicates.
    pub router: Router<Arc<RouteEntry>>,
    /// Clusters by name.
    pub clusters: HashMap<String, Arc<Cluster>>,
    /// The config this plan was compiled from (for `/config`).
    pub config: Arc<Config>,
    /// Every route's auth, rate limit and lock (kept by the next plan when unchanged).
    pub policies: Policies,
}

/// One route, ready to serve.
pub struct RouteEntry {
    /// The route's name (logs, metrics).
    pub name: Arc<str>,
    /// What to do with a matched request.
    pub action: Action,
    /// `rewrite.prefix`.
    pub rewrite_prefix: Option<String>,
    /// Edits of the request sent upstream.
    pub request_headers: HeaderEdits,
    /// Edits of the response sent to the client.
    pub response_headers: HeaderEdits,
    /// Whole-request timeout (until the upstream's response head arrives).
    pub timeout: Duration,
    /// `buffer_request.max_bytes`.
    pub buffer_max: Option<u64>,
    /// Whether `%2F`/`%5C` are accepted in the path.
    pub allow_encoded_slashes: bool,
    /// Bound on each attempt.
    pub per_try_timeout: Option<Duration>,
    /// Retry policy.
    pub retry: Option<RetryPolicy>,
    /// Shadow traffic.
    pub mirror: Option<MirrorTarget>,
    /// HTTP+JSON / Protobuf to gRPC.
    pub transcode: Option<TranscodeRoute>,
    /// Auth, rate limit and lock, run in that order before the action.
    pub policies: RoutePolicies,
    /// Browser origins allowed to call the route.
    pub cors: Option<Arc<crate::cors::CorsPolicy>>,
    /// Metrics for answers the gateway gives itself on this route (direct, redirect, errors
    /// before a cluster is chosen).
    pub local_metrics: Arc<RequestMetrics>,
    /// Plain HTTP/1.1 requests on this route can take the fast path (see `fast`): it needs
    /// nothing but routing, header edits and HTTP/1.1 plaintext clusters.
    pub fast: bool,
}

/// A compiled route action.
pub enum Action {
    /// Proxy to one cluster.
    Upstream(Target),
    /// Proxy to one of several clusters by weight.
    Split(SplitTargets),
    /// Answer directly.
    Direct {
        /// Status.
        status: StatusCode,
        /// Body.
        body: Bytes,
        /// `Content-Type`.
        content_type: HeaderValue,
    },
    /// Answer with a redirect.
    Redirect {
        /// Status (3xx).
        status: StatusCode,
        /// Base location.
        location: String,
        /// Whether the request path and query are appended.
        preserve_path: bool,
    },
}

/// A cluster as seen from one route.
pub struct Target {
    /// The cluster's name.
    pub name: Arc<str>,
    /// The cluster.
    pub cluster: Arc<Cluster>,
    /// Request metrics for (route, cluster).
    pub metrics: Arc<RequestMetrics>,
}

/// A weighted split, with a deterministic schedule so shares are exact over each cycle.
pub struct SplitTargets {
    /// The targets.
    pub targets: Vec<Target>,
    /// Target indexes in smooth weighted round-robin order; one cycle is the sum of weights.
    schedule: Vec<u16>,
    next: AtomicUsize,
    /// The header that forces a target by cluster name.
    pub override_header: HeaderName,
}

impl SplitTargets {
    /// Picks the target for a request: the override header if it names a target, else the
    /// next slot of the schedule.
    pub fn pick<H: HeaderLookup + ?Sized>(&self, headers: &H) -> Option<&Target> {
        if let Some(forced) = headers.first_value(&self.override_header) {
            if let Some(t) = self.targets.iter().find(|t| forced == t.name.as_bytes()) {
                return Some(t);
            }
        }
        let slot = self.next.fetch_add(1, Ordering::Relaxed) % self.schedule.len().max(1);
        let index = self.schedule.get(slot).copied().unwrap_or(0) as usize;
        // The schedule only holds valid indexes; the fallback keeps this panic-free.
        self.targets.get(index).or_else(|| self.targets.first())
    }
}

/// Builds a smooth weighted round-robin schedule (nginx's algorithm): targets interleave
/// instead of coming in runs, and each cycle gives every target exactly its weight.
/// Weights are scaled down to keep the cycle at most 10,000 slots.
fn smooth_schedule(weights: &[u32]) -> Vec<u16> {
    let total: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let scale = total.div_ceil(10_000).max(1);
    let weights: Vec<i64> = weights
        .iter()
        .map(|&w| (u64::from(w) / scale) as i64)
        .collect();
    let total: i64 = weights.iter().sum();
    let mut current = vec![0i64; weights.len()];
    let mut schedule = Vec::with_capacity(total as usize);
    for _ in 0..total {
        let mut best = 0;
        for i in 0..weights.len() {
            current[i] += weights[i];
            if current[i] > current[best] {
                best = i;
            }
        }
        current[best] -= total;
        schedule.push(best as u16);
    }
    schedule
}

/// Compiles a validated config with its policies (built first by
/// [`crate::policies::prepare`]). Errors (an unreadable certificate, conflicting routes) point
/// at the YAML location they come from.
pub fn compile(
    config: Arc<Config>,
    policies: Policies,
    dns: &Arc<DnsCache>,
    registry: &Registry,
    previous: Option<&Plan>,
) -> Result<Plan, ConfigErrors> {
    let mut errors = Vec::new();
    let mut clusters = HashMap::new();
    for c in &config.clusters {
        // A cluster whose definition did not change keeps its pools, health and DNS state.
        if let Some(prev) = previous.and_then(|p| {
            let old = p.config.clusters.iter().find(|o| o.name == c.name)?;
            (strip_location(old) == strip_location(c)).then(|| p.clusters.get(&c.name).cloned())?
        }) {
            clusters.insert(c.name.clone(), prev);
            continue;
        }
        match Cluster::new(c, dns.clone()) {
            Ok(cluster) => {
                clusters.insert(c.name.clone(), cluster);
            }
            Err(e) => errors.push(ConfigError::at(&c.at, e.to_string())),
        }
    }

    let mut builder = RouterBuilder::new();
    for route in &config.routes {
        match compile_route(route, &clusters, registry, policies.for_route(&route.name)) {
            Ok(entry) => {
                builder.add(route_spec(route), Arc::new(entry));
            }
            Err(message) => errors.push(ConfigError::at(&route.at, message)),
        }
    }
    let router = match builder.build() {
        Ok(router) => Some(router),
        Err(build_errors) => {
            for e in build_errors {
                errors.push(router_error(&config, &e));
            }
            None
        }
    };
    match router {
        Some(router) if errors.is_empty() => Ok(Plan {
            router,
            clusters,
            config,
            policies,
        }),
        _ => Err(ConfigErrors(errors)),
    }
}

/// A cluster definition without its source position, to compare across reloads.
fn strip_location(c: &sekisho_config::Cluster) -> sekisho_config::Cluster {
    let mut c = c.clone();
    c.at = Location::default();
    for e in &mut c.endpoints {
        e.at = Location::default();
    }
    c
}

fn router_error(config: &Config, e: &BuildError) -> ConfigError {
    let route = |i: usize| config.routes.get(i);
    match e {
        BuildError::Conflict { first, second } => {
            let (a, b) = (route(*first), route(*second));
            let at = b.or(a).map(|r| r.at.clone()).unwrap_or_default();
            ConfigError::at(
                &at,
                format!(
                    "conflicting matches: routes[{second}] {:?} and routes[{first}] {:?} match the same requests",
                    b.map(|r| r.name.as_str()).unwrap_or("?"),
                    a.map(|r| r.name.as_str()).unwrap_or("?"),
                ),
            )
        }
        other => ConfigError::at(&Location::default(), other.to_string()),
    }
}

fn route_spec(route: &Route) -> RouteSpec {
    let m = &route.matcher;
    let host = match &m.host {
        None => HostMatch::Any,
        Some(h) => match h.strip_prefix('*') {
            Some(suffix) => HostMatch::Wildcard(suffix.to_string()),
            None => HostMatch::Exact(h.clone()),
        },
    };
    let path = match &m.path {
        sekisho_config::PathMatch::Exact(p) => PathMatch::Exact(p.clone()),
        sekisho_config::PathMatch::Prefix(p) => PathMatch::Prefix(p.clone()),
        sekisho_config::PathMatch::Template(p) => PathMatch::Template(p.clone()),
    };
    RouteSpec {
        host,
        path,
        // Validated by the config loader; an unparsable one cannot appear here.
        methods: m
            .methods
            .iter()
            .filter_map(|s| Method::from_bytes(s.as_bytes()).ok())
            .collect(),
        headers: m
            .headers
            .iter()
            .filter_map(|h| {
                Some(HeaderPredicate {
                    name: HeaderName::from_bytes(h.name.as_bytes()).ok()?,
                    value: match &h.value {
                        Some(v) => Some(HeaderValue::from_str(v).ok()?),
                        None => None,
                    },
                })
            })
            .collect(),
    }
}

fn compile_route(
    route: &Route,
    clusters: &HashMap<String, Arc<Cluster>>,
    registry: &Registry,
    policies: RoutePolicies,
) -> Result<RouteEntry, String> {
    let target = |name: &str| -> Result<Target, String> {
        let cluster = clusters
            .get(name)
            .cloned()
            .ok_or_else(|| format!("cluster {name:?} is not available"))?;
        Ok(Target {
            name: Arc::from(name),
            cluster,
            metrics: registry.request_metrics(&route.name, name),
        })
    };
    let action = match &route.action {
        RouteAction::Cluster(name) => Action::Upstream(target(name)?),
        RouteAction::Split(split) => {
            if split.targets.len() > usize::from(u16::MAX) {
                return Err("too many split targets".into());
            }
            let targets = split
                .targets
                .iter()
                .map(|t| target(&t.cluster))
                .collect::<Result<Vec<_>, _>>()?;
            let weights: Vec<u32> = split.targets.iter().map(|t| t.weight).collect();
            Action::Split(SplitTargets {
                targets,
                schedule: smooth_schedule(&weights),
                next: AtomicUsize::new(0),
                override_header: HeaderName::from_bytes(split.override_header.as_bytes())
                    .map_err(|_| format!("invalid split_header {:?}", split.override_header))?,
            })
        }
        RouteAction::Direct(d) => Action::Direct {
            status: StatusCode::from_u16(d.status)
                .map_err(|_| format!("invalid status {}", d.status))?,
            body: Bytes::from(d.body.clone()),
            content_type: HeaderValue::from_str(&d.content_type)
                .map_err(|_| format!("invalid content_type {:?}", d.content_type))?,
        },
        RouteAction::Redirect(r) => Action::Redirect {
            status: StatusCode::from_u16(r.status)
                .map_err(|_| format!("invalid status {}", r.status))?,
            location: r.location.clone(),
            preserve_path: r.preserve_path,
        },
    };
    let fast = fast_eligible(route, &action, &policies);
    Ok(RouteEntry {
        fast,
        name: Arc::from(route.name.as_str()),
        action,
        rewrite_prefix: route.rewrite.as_ref().map(|r| r.prefix.clone()),
        request_headers: HeaderEdits::compile(&route.request_headers)?,
        response_headers: HeaderEdits::compile(&route.response_headers)?,
        timeout: route.timeout,
        buffer_max: route.buffer_request.as_ref().map(|b| b.max_bytes),
        allow_encoded_slashes: route.allow_encoded_slashes,
        per_try_timeout: route.per_try_timeout,
        retry: route.retry.as_ref().map(RetryPolicy::new),
        mirror: match &route.mirror {
            Some(m) => Some(MirrorTarget {
                cluster: clusters
                    .get(&m.cluster)
                    .cloned()
                    .ok_or_else(|| format!("mirror cluster {:?} is not available", m.cluster))?,
                fraction: m.percent / 100.0,
                slots: Arc::new(tokio::sync::Semaphore::new(MIRROR_SLOTS)),
            }),
            None => None,
        },
        transcode: route
            .transcode
            .as_ref()
            .map(TranscodeRoute::new)
            .transpose()?,
        policies,
        cors: match &route.cors {
            Some(c) => Some(Arc::new(crate::cors::CorsPolicy::compile(c)?)),
            None => None,
        },
        local_metrics: registry.request_metrics(&route.name, ""),
    })
}

/// Whether a route's requests can take the fast path: proxying to HTTP/1.1 plaintext
/// clusters (or answering directly) with no per-request filter beyond header edits and
/// retries. Everything else (policies, CORS, transcoding, mirroring, TLS or HTTP/2
/// upstreams) goes through the general pipeline.
fn fast_eligible(route: &Route, action: &Action, policies: &RoutePolicies) -> bool {
    let plain = route.transcode.is_none()
        && route.cors.is_none()
        && route.mirror.is_none()
        && policies.is_empty();
    plain
        && match action {
            Action::Upstream(t) => t.cluster.leases_raw_http1(),
            Action::Split(s) => s.targets.iter().all(|t| t.cluster.leases_raw_http1()),
            Action::Direct { .. } | Action::Redirect { .. } => true,
        }
}

#[cfg(test)]
mod tests {
    use super::smooth_schedule;

    #[test]
    fn schedule_gives_exact_shares_interleaved() {
        let s = smooth_schedule(&[5, 95]);
        assert_eq!(s.len(), 100);
        assert_eq!(s.iter().filter(|&&i| i == 0).count(), 5);
        // Interleaved: the minority target never comes twice in a row.
        assert!(s.windows(2).all(|w| !(w[0] == 0 && w[1] == 0)));
        let s = smooth_schedule(&[1, 1, 2]);
        assert_eq!(s, vec![2, 0, 1, 2]);
    }

    #[test]
    fn schedule_scales_huge_weights() {
        let s = smooth_schedule(&[1_000_000, 3_000_000]);
        assert!(s.len() <= 10_000);
        let a = s.iter().filter(|&&i| i == 0).count();
        assert_eq!(a * 3, s.len() - a);
    }

    #[test]
    fn zero_weight_is_never_scheduled() {
        let s = smooth_schedule(&[0, 10]);
        assert!(s.iter().all(|&i| i == 1));
    }
}
