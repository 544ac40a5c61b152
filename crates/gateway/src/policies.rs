//! Route policies (auth, rate limit, lock) in the gateway: built before a plan is compiled
//! (building is async: a JWKS is fetched once), kept across reloads when their config did
//! not change (so JWKS caches, local buckets and backend connections survive), and
//! exported as metrics.

use std::collections::HashMap;
use std::sync::Arc;

use sekisho_config::{
    AuthConfig, Config, ConfigError, LockConfig, RateLimitConfig, Route, RouteAuth,
};
use sekisho_policy::{
    AuthAllow, AuthStats, Authenticator, LockPolicy, RateLimiter, Reject, RequestView,
};
use sekisho_telemetry::metrics::MetricWriter;

/// A route's authentication: its own or the shared `default_auth` authenticator, and the
/// route's own counters (so a shared authenticator's decisions are counted per route).
#[derive(Clone)]
pub struct AuthPolicy {
    /// The authenticator.
    pub authenticator: Arc<Authenticator>,
    /// This route's counters.
    pub stats: Arc<AuthStats>,
}

impl AuthPolicy {
    /// Decides about `req`, counting into the route's stats.
    pub async fn check(&self, req: &RequestView<'_>) -> Result<AuthAllow, Reject> {
        self.authenticator.check_counted(req, &self.stats).await
    }
}

/// The policies one route runs, in order: auth, rate limit, lock.
#[derive(Clone, Default)]
pub struct RoutePolicies {
    /// Who may call the route.
    pub auth: Option<AuthPolicy>,
    /// Requests per period per key.
    pub rate_limit: Option<Arc<RateLimiter>>,
    /// One request in flight per key.
    pub lock: Option<Arc<LockPolicy>>,
}

impl RoutePolicies {
    /// Whether the route has no policy at all (the common case: nothing to do per request).
    pub fn is_empty(&self) -> bool {
        self.auth.is_none() && self.rate_limit.is_none() && self.lock.is_none()
    }
}

/// A built policy with the config it was built from (to decide reuse on reload).
struct Built<C, P> {
    config: C,
    policy: Arc<P>,
}

/// What a route asked for, with its built policies.
#[derive(Default)]
struct RouteBuilt {
    /// The route's own auth (`None` when it inherits or is public).
    auth: Option<Built<AuthConfig, Authenticator>>,
    /// Whether the route uses `default_auth`.
    inherits_auth: bool,
    /// The route's auth counters, with the authenticator they count for (own or default).
    auth_stats: Option<AuthPolicy>,
    rate_limit: Option<Built<RateLimitConfig, RateLimiter>>,
    lock: Option<Built<LockConfig, LockPolicy>>,
}

/// Every route's policies, by route name.
#[derive(Default)]
pub struct Policies {
    default_auth: Option<Built<AuthConfig, Authenticator>>,
    routes: HashMap<String, RouteBuilt>,
}

impl Policies {
    /// The policies of the route named `name` (empty when it has none).
    pub fn for_route(&self, name: &str) -> RoutePolicies {
        let Some(r) = self.routes.get(name) else {
            return RoutePolicies::default();
        };
        RoutePolicies {
            auth: r.auth_stats.clone(),
            rate_limit: r.rate_limit.as_ref().map(|b| b.policy.clone()),
            lock: r.lock.as_ref().map(|b| b.policy.clone()),
        }
    }

    /// Writes the policies' counters (Prometheus conventions). Decisions are counted per
    /// route, `default_auth`'s included; JWKS fetches belong to an authenticator, so the
    /// shared default's are labeled `route="default_auth"`.
    pub fn write_metrics(&self, w: &mut MetricWriter) {
        if let Some(d) = &self.default_auth {
            jwks_metrics(w, "default_auth", &d.policy);
        }
        let mut names: Vec<&String> = self.routes.keys().collect();
        names.sort();
        for name in names {
            let Some(r) = self.routes.get(name) else {
                continue;
            };
            if let Some(a) = &r.auth_stats {
                auth_metrics(w, name, &a.stats);
            }
            if let Some(a) = &r.auth {
                jwks_metrics(w, name, &a.policy);
            }
            if let Some(rl) = &r.rate_limit {
                rate_metrics(w, name, &rl.policy);
            }
            if let Some(l) = &r.lock {
                lock_metrics(w, name, &l.policy);
            }
        }
    }
}

/// Whether a built auth policy may serve a new config: same config, and no key material read
/// from files (a reload is how a rotated key file or API key file takes effect).
fn auth_reusable(old: &Built<AuthConfig, Authenticator>, new: &AuthConfig) -> bool {
    let reads_files = new.jwt.as_ref().is_some_and(|j| !j.keys.files.is_empty())
        || new.api_keys.as_ref().is_some_and(|k| k.file.is_some());
    old.config == *new && !reads_files
}

async fn build_auth(
    cfg: &AuthConfig,
    previous: Option<&Built<AuthConfig, Authenticator>>,
) -> Result<Built<AuthConfig, Authenticator>, String> {
    if let Some(old) = previous.filter(|old| auth_reusable(old, cfg)) {
        return Ok(Built {
            config: cfg.clone(),
            policy: old.policy.clone(),
        });
    }
    let policy = Authenticator::new(cfg).await.map_err(|e| e.to_string())?;
    Ok(Built {
        config: cfg.clone(),
        policy: Arc::new(policy),
    })
}

/// Builds the policies of `config`, reusing those of `previous` whose config is unchanged.
/// Errors name the route (or `default_auth`) they come from.
pub async fn prepare(
    config: &Config,
    previous: Option<&Policies>,
) -> Result<Policies, Vec<ConfigError>> {
    let mut errors = Vec::new();
    let mut out = Policies::default();
    if let Some(cfg) = &config.default_auth {
        match build_auth(cfg, previous.and_then(|p| p.default_auth.as_ref())).await {
            Ok(b) => out.default_auth = Some(b),
            Err(e) => errors.push(ConfigError::at(
                &sekisho_config::Location {
                    path: "default_auth".into(),
                    ..Default::default()
                },
                e,
            )),
        }
    }
    for route in &config.routes {
        let old = previous.and_then(|p| p.routes.get(&route.name));
        match build_route(route, old).await {
            Ok(mut built) => {
                let authenticator = match (&built.auth, built.inherits_auth, &out.default_auth) {
                    (Some(b), _, _) => Some(&b.policy),
                    (None, true, Some(d)) => Some(&d.policy),
                    _ => None,
                };
                built.auth_stats = authenticator.map(|a| {
                    // The counters survive a reload that keeps the authenticator.
                    let kept = old
                        .and_then(|o| o.auth_stats.as_ref())
                        .filter(|o| Arc::ptr_eq(&o.authenticator, a));
                    AuthPolicy {
                        authenticator: a.clone(),
                        stats: kept.map_or_else(|| Arc::new(a.new_stats()), |o| o.stats.clone()),
                    }
                });
                out.routes.insert(route.name.clone(), built);
            }
            Err((key, message)) => {
                let at = sekisho_config::Location {
                    path: format!("{}.{key}", route.at.path),
                    ..route.at.clone()
                };
                errors.push(ConfigError::at(&at, message));
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

/// Builds one route's policies; an error names the key (`auth`, `rate_limit`, `lock`).
async fn build_route(
    route: &Route,
    old: Option<&RouteBuilt>,
) -> Result<RouteBuilt, (&'static str, String)> {
    let mut built = RouteBuilt::default();
    match &route.auth {
        RouteAuth::Inherit => built.inherits_auth = true,
        RouteAuth::Public => {}
        RouteAuth::Policy(cfg) => {
            let b = build_auth(cfg, old.and_then(|o| o.auth.as_ref()))
                .await
                .map_err(|e| ("auth", e))?;
            built.auth = Some(b);
        }
    }
    if let Some(cfg) = &route.rate_limit {
        let reuse = old
            .and_then(|o| o.rate_limit.as_ref())
            .filter(|b| b.config == *cfg)
            .map(|b| b.policy.clone());
        let policy = match reuse {
            Some(p) => p,
            None => Arc::new(
                RateLimiter::new(&route.name, cfg).map_err(|e| ("rate_limit", e.to_string()))?,
            ),
        };
        built.rate_limit = Some(Built {
            config: cfg.clone(),
            policy,
        });
    }
    if let Some(cfg) = &route.lock {
        let reuse = old
            .and_then(|o| o.lock.as_ref())
            .filter(|b| b.config == *cfg)
            .map(|b| b.policy.clone());
        let policy = match reuse {
            Some(p) => p,
            None => Arc::new(LockPolicy::new(cfg).map_err(|e| ("lock", e.to_string()))?),
        };
        built.lock = Some(Built {
            config: cfg.clone(),
            policy,
        });
    }
    Ok(built)
}

fn auth_metrics(w: &mut MetricWriter, route: &str, a: &AuthStats) {
    let labels = [("route", route)];
    w.counter(
        "sekisho_auth_allowed_total",
        "Requests the route's authentication let through.",
        &labels,
        a.allowed(),
    );
    for (reason, n) in a.failures() {
        w.counter(
            "sekisho_auth_failures_total",
            "Requests rejected by authentication, by reason.",
            &[("route", route), ("reason", reason)],
            n,
        );
    }
    // Bounded: the names come from the config, never from requests.
    for (key, n) in a.api_key_requests() {
        w.counter(
            "sekisho_auth_api_key_requests_total",
            "Requests allowed by each named API key.",
            &[("route", route), ("key", key)],
            n,
        );
    }
    w.counter(
        "sekisho_auth_jwt_cache_hits_total",
        "Requests whose JWT was found in the verified-token cache (no signature check).",
        &labels,
        a.jwt_cache_hits(),
    );
}

fn jwks_metrics(w: &mut MetricWriter, route: &str, a: &Authenticator) {
    let jwks = a.jwks_counters();
    for (result, n) in [("ok", jwks.fetched), ("error", jwks.failed)] {
        w.counter(
            "sekisho_auth_jwks_fetches_total",
            "JWKS fetches (an error keeps the previous keys).",
            &[("route", route), ("result", result)],
            n,
        );
    }
}

fn rate_metrics(w: &mut MetricWriter, route: &str, r: &RateLimiter) {
    let c = r.counters();
    for (decision, n) in [("allowed", c.allowed), ("limited", c.limited)] {
        w.counter(
            "sekisho_ratelimit_decisions_total",
            "Rate limit decisions.",
            &[("route", route), ("decision", decision)],
            n,
        );
    }
    let labels = [("route", route)];
    w.counter(
        "sekisho_ratelimit_backend_errors_total",
        "Rate limit backend (Redis) calls that failed or timed out.",
        &labels,
        c.backend_errors,
    );
    w.counter(
        "sekisho_ratelimit_fallbacks_total",
        "Rate limit decisions taken by the fallback (backend error or circuit open).",
        &labels,
        c.fallbacks,
    );
    w.gauge(
        "sekisho_ratelimit_breaker_open",
        "1 while the rate limit backend's circuit breaker is open.",
        &labels,
        if r.breaker_open() { 1.0 } else { 0.0 },
    );
}

fn lock_metrics(w: &mut MetricWriter, route: &str, l: &LockPolicy) {
    let c = l.counters();
    for (outcome, n) in [
        ("acquired", c.acquired),
        ("busy", c.busy),
        ("bad_request", c.bad_request),
        ("key_too_long", c.key_too_long),
        ("failed_open", c.failed_open),
        ("failed_closed", c.failed_closed),
    ] {
        w.counter(
            "sekisho_lock_requests_total",
            "Lock decisions by outcome.",
            &[("route", route), ("outcome", outcome)],
            n,
        );
    }
    for (result, n) in [("released", c.released), ("lost", c.release_lost)] {
        w.counter(
            "sekisho_lock_releases_total",
            "Lock releases: released by the holder, or lost (expired before release).",
            &[("route", route), ("result", result)],
            n,
        );
    }
    w.counter(
        "sekisho_lock_backend_errors_total",
        "Lock backend calls that failed or timed out.",
        &[("route", route)],
        c.backend_errors,
    );
    w.gauge(
        "sekisho_lock_breaker_open",
        "1 while the lock backend's circuit breaker is open.",
        &[("route", route)],
        if l.breaker_open() { 1.0 } else { 0.0 },
    );
}
