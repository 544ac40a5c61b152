//! Rate limits per route: GCRA per instance, or shared through Redis with a bounded, breaker-
//! guarded call and a fallback, so a dead Redis neither hangs requests nor silently unlimits.

pub mod gcra;
mod redis;

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderMap, HeaderName, StatusCode};

use crate::auth::Identity;
use crate::breaker::Breaker;
use crate::config::{RateBackend, RateFallback, RateKey, RateLimitConfig};
use crate::error::PolicyError;
use crate::net::redis::RedisClient;
use crate::request::{header_value, Reject, RequestView};
use gcra::{LocalGcra, Rate, Step};

static RATELIMIT_LIMIT: HeaderName = HeaderName::from_static("ratelimit-limit");
static RATELIMIT_REMAINING: HeaderName = HeaderName::from_static("ratelimit-remaining");
static RATELIMIT_RESET: HeaderName = HeaderName::from_static("ratelimit-reset");

/// The request may pass; add `headers` to the response sent to the client.
#[derive(Debug, Clone, Default)]
pub struct RateLimitAllow {
    /// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (empty when unlimited by a fallback).
    pub headers: HeaderMap,
}

/// Counters of one rate limit, for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimitCounters {
    /// Requests allowed.
    pub allowed: u64,
    /// Requests answered 429.
    pub limited: u64,
    /// Redis calls that failed or timed out.
    pub backend_errors: u64,
    /// Decisions taken by the fallback (after an error or with the circuit open).
    pub fallbacks: u64,
    /// Requests that skipped Redis because the circuit was open.
    pub breaker_skips: u64,
}

#[derive(Debug, Default)]
struct Counters {
    allowed: AtomicU64,
    limited: AtomicU64,
    backend_errors: AtomicU64,
    fallbacks: AtomicU64,
    breaker_skips: AtomicU64,
}

#[derive(Debug)]
struct Global {
    limiter: redis::RedisGcra,
    breaker: Breaker,
}

/// A rate limit, built once from its config.
#[derive(Debug)]
pub struct RateLimiter {
    key: RateKey,
    limit: u32,
    local: LocalGcra,
    global: Option<Global>,
    fallback: RateFallback,
    counters: Counters,
}

impl RateLimiter {
    /// Builds the limit; `name` (the route's) namespaces the Redis keys.
    pub fn new(name: &str, cfg: &RateLimitConfig) -> Result<Self, PolicyError> {
        if cfg.limit == 0 || cfg.period.is_zero() {
            return Err(PolicyError::invalid(
                "rate_limit",
                "limit and period must be positive",
            ));
        }
        let rate = Rate::new(cfg.limit, cfg.period, cfg.burst);
        let global = match &cfg.backend {
            RateBackend::Local => None,
            RateBackend::Redis(url) => Some(Global {
                limiter: redis::RedisGcra::new(RedisClient::new(url, cfg.timeout)?, name, rate),
                breaker: Breaker::new(cfg.breaker),
            }),
        };
        Ok(Self {
            key: cfg.key.clone(),
            limit: cfg.burst.max(1),
            local: LocalGcra::new(rate),
            global,
            fallback: cfg.on_backend_error,
            counters: Counters::default(),
        })
    }

    /// The bucket key of this request (`ip:`, `h:`, `c:` or `k:` prefixed).
    pub fn key_of(&self, req: &RequestView<'_>, identity: Option<&Identity>) -> String {
        let found = match &self.key {
            RateKey::ClientIp => None,
            RateKey::Header(h) => req.header_str(h).map(|v| format!("h:{v}")),
            RateKey::Claim(c) => identity
                .and_then(|i| i.claim_str(c))
                .map(|v| format!("c:{v}")),
            RateKey::ApiKey => identity
                .and_then(|i| i.api_key_name.as_deref())
                .map(|n| format!("k:{n}")),
        };
        found.unwrap_or_else(|| format!("ip:{}", req.client_ip))
    }

    /// Counts this request and decides: allow (with `RateLimit-*` headers) or 429.
    ///
    /// With a Redis backend this waits at most the configured `timeout`.
    pub async fn check(
        &self,
        req: &RequestView<'_>,
        identity: Option<&Identity>,
    ) -> Result<RateLimitAllow, Reject> {
        let key = self.key_of(req, identity);
        self.check_key(&key).await
    }

    /// Like [`RateLimiter::check`] for an already computed key.
    pub async fn check_key(&self, key: &str) -> Result<RateLimitAllow, Reject> {
        let step = match &self.global {
            None => self.local.check(key),
            Some(g) => {
                if g.breaker.allow() {
                    match g.limiter.check(key).await {
                        Ok(step) => {
                            g.breaker.success();
                            step
                        }
                        Err(e) => {
                            g.breaker.failure();
                            self.counters.backend_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::debug!(error = %e, "rate limit backend failed; falling back");
                            return self.fallback(key);
                        }
                    }
                } else {
                    self.counters.breaker_skips.fetch_add(1, Ordering::Relaxed);
                    return self.fallback(key);
                }
            }
        };
        self.finish(step)
    }

    fn fallback(&self, key: &str) -> Result<RateLimitAllow, Reject> {
        self.counters.fallbacks.fetch_add(1, Ordering::Relaxed);
        match self.fallback {
            RateFallback::Local => self.finish(self.local.check(key)),
            RateFallback::Allow => {
                self.counters.allowed.fetch_add(1, Ordering::Relaxed);
                Ok(RateLimitAllow::default())
            }
            RateFallback::Deny => {
                self.counters.limited.fetch_add(1, Ordering::Relaxed);
                Err(
                    Reject::new(StatusCode::TOO_MANY_REQUESTS, "rate_limit_unavailable")
                        .with_header(http::header::RETRY_AFTER, header_value("1")),
                )
            }
        }
    }

    fn finish(&self, step: Step) -> Result<RateLimitAllow, Reject> {
        let mut headers = HeaderMap::new();
        headers.insert(
            RATELIMIT_LIMIT.clone(),
            header_value(&self.limit.to_string()),
        );
        headers.insert(
            RATELIMIT_REMAINING.clone(),
            header_value(&step.remaining.to_string()),
        );
        headers.insert(
            RATELIMIT_RESET.clone(),
            header_value(&ceil_secs(step.reset).to_string()),
        );
        if step.allowed {
            self.counters.allowed.fetch_add(1, Ordering::Relaxed);
            return Ok(RateLimitAllow { headers });
        }
        self.counters.limited.fetch_add(1, Ordering::Relaxed);
        headers.insert(
            http::header::RETRY_AFTER,
            header_value(&ceil_secs(step.retry_after).max(1).to_string()),
        );
        Err(Reject {
            status: StatusCode::TOO_MANY_REQUESTS,
            reason: "rate_limited",
            headers,
            body: None,
        })
    }

    /// Whether the Redis circuit is open (the fallback is deciding).
    pub fn breaker_open(&self) -> bool {
        self.global.as_ref().is_some_and(|g| g.breaker.is_open())
    }

    /// A snapshot of the counters.
    pub fn counters(&self) -> RateLimitCounters {
        let c = &self.counters;
        RateLimitCounters {
            allowed: c.allowed.load(Ordering::Relaxed),
            limited: c.limited.load(Ordering::Relaxed),
            backend_errors: c.backend_errors.load(Ordering::Relaxed),
            fallbacks: c.fallbacks.load(Ordering::Relaxed),
            breaker_skips: c.breaker_skips.load(Ordering::Relaxed),
        }
    }
}

/// Whole seconds, rounded up (headers carry integers; rounding down would invite early retries).
fn ceil_secs(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}
