//! Authentication per route: JWT, API keys and an external auth service.
//!
//! Methods are tried in the order JWT → API key → external auth. A JWT or API-key method whose
//! credential is absent is skipped; the first method that finds a credential decides. External
//! auth, when configured, decides every request that reached it. With no credential at all the
//! route answers 401, unless `optional` lets it through anonymous.

mod apikey;
mod ext;
mod jwt;
mod keys;
mod token_cache;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use serde_json::{Map, Value};

use crate::config::{AuthConfig, FailMode};
use crate::error::PolicyError;
use crate::request::{header_value, Reject, RequestView};
pub use keys::JwksCounters;

/// How a request was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    /// A verified JWT.
    Jwt,
    /// A known API key.
    ApiKey,
    /// The external auth service said yes.
    ExtAuth,
    /// No credential, on an `optional` route.
    Anonymous,
}

/// Who the request is, for rate-limit keys, logs and metrics.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The method that authenticated it.
    pub method: AuthMethod,
    /// The JWT `sub`, if any.
    pub subject: Option<String>,
    /// The API key's configured name, if any.
    pub api_key_name: Option<String>,
    /// The verified JWT claims, if any.
    pub claims: Option<Arc<Map<String, Value>>>,
}

impl AuthMethod {
    /// The method's name in logs: `jwt`, `api_key`, `ext_auth`, `anonymous`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthMethod::Jwt => "jwt",
            AuthMethod::ApiKey => "api_key",
            AuthMethod::ExtAuth => "ext_auth",
            AuthMethod::Anonymous => "anonymous",
        }
    }
}

impl Identity {
    /// Who it is, for the access log: the API key's name, or the JWT `sub`.
    pub fn id(&self) -> Option<&str> {
        self.api_key_name.as_deref().or(self.subject.as_deref())
    }

    /// A claim as text (strings as is, numbers and booleans printed).
    pub fn claim_str(&self, name: &str) -> Option<String> {
        match self.claims.as_ref()?.get(name)? {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
}

/// The request may pass; edit the upstream request's headers with [`AuthAllow::apply`].
#[derive(Debug, Clone, Default)]
pub struct AuthAllow {
    /// Who it is (`None` only when anonymous on an `optional` route without credentials).
    pub identity: Option<Identity>,
    /// Headers to set on the upstream request (forwarded claims, auth service headers).
    pub set_headers: Vec<(HeaderName, HeaderValue)>,
    /// Headers to remove first (stripped tokens, and every header the gateway vouches for).
    pub remove_headers: Vec<HeaderName>,
}

impl AuthAllow {
    /// Removes then sets headers on the upstream request.
    pub fn apply(&self, headers: &mut HeaderMap) {
        for h in &self.remove_headers {
            headers.remove(h);
        }
        for (h, v) in &self.set_headers {
            headers.append(h.clone(), v.clone());
        }
    }
}

/// Failure reasons, the label of the auth failure metric.
pub const REASONS: &[&str] = &[
    "missing_credentials",
    "malformed",
    "bad_algorithm",
    "no_key",
    "unknown_kid",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "wrong_issuer",
    "wrong_audience",
    "missing_registered_claim",
    "missing_claim",
    "invalid_api_key",
    "ext_auth_denied",
    "ext_auth_unavailable",
];

/// Counters of the requests one caller (a route) had decided: allowed, failures by reason,
/// allowed per API key name, JWTs found in the verified-token cache. One authenticator can
/// serve many routes (`default_auth`), each with its own stats; see
/// [`Authenticator::check_counted`].
#[derive(Debug)]
pub struct AuthStats {
    allowed: AtomicU64,
    failures: Vec<AtomicU64>,
    /// Per key name of the authenticator (config order).
    api_keys: Vec<(String, AtomicU64)>,
    jwt_cache_hits: AtomicU64,
}

impl AuthStats {
    fn new(key_names: &[String]) -> Self {
        Self {
            allowed: AtomicU64::new(0),
            failures: REASONS.iter().map(|_| AtomicU64::new(0)).collect(),
            api_keys: key_names
                .iter()
                .map(|n| (n.clone(), AtomicU64::new(0)))
                .collect(),
            jwt_cache_hits: AtomicU64::new(0),
        }
    }

    fn count(&self, reason: &str) {
        if let Some(i) = REASONS.iter().position(|r| *r == reason) {
            if let Some(c) = self.failures.get(i) {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Requests allowed.
    pub fn allowed(&self) -> u64 {
        self.allowed.load(Ordering::Relaxed)
    }

    /// Failures by reason (every reason of [`REASONS`], zeros included).
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        REASONS
            .iter()
            .zip(&self.failures)
            .map(|(r, c)| (*r, c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Failures for one reason.
    pub fn failures_for(&self, reason: &str) -> u64 {
        REASONS
            .iter()
            .position(|r| *r == reason)
            .and_then(|i| self.failures.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Requests allowed by each API key name (every configured name, zeros included).
    pub fn api_key_requests(&self) -> Vec<(&str, u64)> {
        self.api_keys
            .iter()
            .map(|(n, c)| (n.as_str(), c.load(Ordering::Relaxed)))
            .collect()
    }

    /// Requests whose JWT came from the verified-token cache.
    pub fn jwt_cache_hits(&self) -> u64 {
        self.jwt_cache_hits.load(Ordering::Relaxed)
    }
}

/// The authentication policy of a route, built once from its config.
#[derive(Debug)]
pub struct Authenticator {
    optional: bool,
    jwt: Option<jwt::JwtAuth>,
    api_keys: Option<apikey::ApiKeys>,
    ext: Option<ext::ExtAuth>,
    /// What [`Authenticator::check`] counts into.
    stats: AuthStats,
}

impl Authenticator {
    /// Builds the policy: reads key files and secrets, fetches the JWKS once (a failed first
    /// fetch is logged and retried in the background) and starts its refresh task.
    ///
    /// Must be called inside a tokio runtime.
    pub async fn new(cfg: &AuthConfig) -> Result<Self, PolicyError> {
        let jwt = match &cfg.jwt {
            Some(j) => Some(jwt::JwtAuth::new(j).await?),
            None => None,
        };
        let api_keys = cfg
            .api_keys
            .as_ref()
            .map(apikey::ApiKeys::load)
            .transpose()?;
        let ext = cfg.ext_auth.as_ref().map(ext::ExtAuth::new).transpose()?;
        if jwt.is_none() && api_keys.is_none() && ext.is_none() {
            return Err(PolicyError::invalid(
                "auth",
                "no method: set jwt, api_keys or ext_auth (or make the route public)",
            ));
        }
        let stats = AuthStats::new(api_keys.as_ref().map_or(&[], |k| k.names()));
        Ok(Self {
            optional: cfg.optional,
            jwt,
            api_keys,
            ext,
            stats,
        })
    }

    /// Fresh counters for one more caller of this authenticator (e.g. each route sharing
    /// `default_auth`), sized for its API key names.
    pub fn new_stats(&self) -> AuthStats {
        AuthStats::new(self.api_keys.as_ref().map_or(&[], |k| k.names()))
    }

    /// The counters of [`Authenticator::check`].
    pub fn stats(&self) -> &AuthStats {
        &self.stats
    }

    /// Decides about `req`: allow (with upstream header edits and the identity) or reject.
    /// Counts into the authenticator's own [`Authenticator::stats`].
    pub async fn check(&self, req: &RequestView<'_>) -> Result<AuthAllow, Reject> {
        self.check_counted(req, &self.stats).await
    }

    /// Like [`Authenticator::check`], counting into `stats` (from [`Authenticator::new_stats`]).
    pub async fn check_counted(
        &self,
        req: &RequestView<'_>,
        stats: &AuthStats,
    ) -> Result<AuthAllow, Reject> {
        let result = self.decide(req, stats).await;
        match &result {
            Ok(_) => {
                stats.allowed.fetch_add(1, Ordering::Relaxed);
            }
            Err(r) => stats.count(r.reason),
        }
        result
    }

    async fn decide(&self, req: &RequestView<'_>, stats: &AuthStats) -> Result<AuthAllow, Reject> {
        if let Some(j) = &self.jwt {
            match j.check(req).await {
                jwt::JwtOutcome::Allow { allow, cached } => {
                    if cached {
                        stats.jwt_cache_hits.fetch_add(1, Ordering::Relaxed);
                    }
                    return Ok(allow);
                }
                jwt::JwtOutcome::Reject(r) => return Err(r),
                jwt::JwtOutcome::NoToken => {}
            }
        }
        if let Some(k) = &self.api_keys {
            if let Some(presented) = req.headers.get(&k.header) {
                let found = presented.to_str().ok().and_then(|p| k.lookup(p.trim()));
                let Some((index, name)) = found else {
                    return Err(Reject::new(StatusCode::UNAUTHORIZED, "invalid_api_key")
                        .with_header(
                            http::header::WWW_AUTHENTICATE,
                            header_value(&format!(
                                "ApiKey realm=\"sekisho\", header=\"{}\"",
                                k.header
                            )),
                        ));
                };
                if let Some((_, c)) = stats.api_keys.get(index) {
                    c.fetch_add(1, Ordering::Relaxed);
                }
                return Ok(AuthAllow {
                    identity: Some(Identity {
                        method: AuthMethod::ApiKey,
                        subject: None,
                        api_key_name: Some(name.to_string()),
                        claims: None,
                    }),
                    set_headers: Vec::new(),
                    // The key is the gateway's business, not the service's.
                    remove_headers: vec![k.header.clone()],
                });
            }
        }
        if let Some(x) = &self.ext {
            return match x.check(req).await {
                Ok(ext::Decision::Allow(a)) => Ok(a),
                Ok(ext::Decision::Deny(r)) => Err(r),
                Err(reason) => match x.on_error() {
                    (FailMode::Open, _) => Ok(AuthAllow::default()),
                    (FailMode::Closed, status) => Err(Reject::new(status, reason)),
                },
            };
        }
        if self.optional {
            return Ok(AuthAllow {
                identity: Some(Identity {
                    method: AuthMethod::Anonymous,
                    subject: None,
                    api_key_name: None,
                    claims: None,
                }),
                ..AuthAllow::default()
            });
        }
        Err(jwt::unauthorized("missing_credentials"))
    }

    /// Failures of [`Authenticator::check`] so far by reason (every reason of [`REASONS`]).
    pub fn failures(&self) -> Vec<(&'static str, u64)> {
        self.stats.failures()
    }

    /// Failures of [`Authenticator::check`] so far for one reason.
    pub fn failures_for(&self, reason: &str) -> u64 {
        self.stats.failures_for(reason)
    }

    /// Requests [`Authenticator::check`] allowed so far.
    pub fn allowed(&self) -> u64 {
        self.stats.allowed()
    }

    /// Requests whose JWT came from the verified-token cache, whoever counted them.
    pub fn jwt_cache_hits(&self) -> u64 {
        self.jwt
            .as_ref()
            .map_or(0, |j| j.cache_hits.load(Ordering::Relaxed))
    }

    /// JWKS fetch counters (zero without a JWKS).
    pub fn jwks_counters(&self) -> JwksCounters {
        self.jwt
            .as_ref()
            .map(|j| j.keys.counters())
            .unwrap_or_default()
    }
}
